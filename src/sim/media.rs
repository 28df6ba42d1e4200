//! The files a finished task serves: the bundled clip and cover, made unique per task and still
//! valid, described as segments and generated as they are sent, so any byte range of a file of
//! any size is produced without holding the file in memory.
//!
//! - Video: one of the model's four clips, chosen by the task id, so a grid of simulated jobs
//!   does not show one picture (playable H.264 MP4s with `moov` first: 1920x1080 24 fps 5 s for
//!   Vidu Q1 and the others, 1280x720 24 fps 4 s for Vidu 2, 1920x1080 30 fps 5 s for
//!   CogVideoX; made once with ffmpeg, see `assets/sim/README.md`), then one top-level `free`
//!   box holding `vidkeep-sim <task id>` and, when a minimum size is asked for, pseudo-random
//!   padding. Players skip `free` boxes, so the file still plays.
//! - Cover: a 640x360 JPEG drawn for the task: a gradient in a colour of its own and the first
//!   words of the prompt (see [`super::cover`]), with a `COM` segment `vidkeep-sim <task id>`
//!   after its header (after SOI, and after the JFIF `APP0` segment, which JFIF requires first).

use std::io;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use bytes::{BufMut, Bytes, BytesMut};
use futures::Stream;
use sha2::{Digest, Sha256};

/// The first bundled clip of Vidu Q1 (5 s, 24 fps, 1920x1080: the test pattern).
pub(super) static CLIP: &[u8] = include_bytes!("../../assets/sim/clip.mp4");
/// The clips of Vidu Q1 and any model not below: the test pattern in three hues, and colour bars.
pub(super) static CLIPS_Q1: [&[u8]; 4] = [
    CLIP,
    include_bytes!("../../assets/sim/clip-hue120.mp4"),
    include_bytes!("../../assets/sim/clip-hue240.mp4"),
    include_bytes!("../../assets/sim/clip-bars.mp4"),
];
/// The Vidu 2 clips (4 s, 24 fps, 1280x720), four colours.
static CLIPS_VIDU2: [&[u8]; 4] = [
    include_bytes!("../../assets/sim/clip-vidu2.mp4"),
    include_bytes!("../../assets/sim/clip-vidu2-308050.mp4"),
    include_bytes!("../../assets/sim/clip-vidu2-805030.mp4"),
    include_bytes!("../../assets/sim/clip-vidu2-604080.mp4"),
];
/// The CogVideoX clips (5 s, 30 fps, 1920x1080: the defaults), four colours.
static CLIPS_COG: [&[u8]; 4] = [
    include_bytes!("../../assets/sim/clip-cogvideox.mp4"),
    include_bytes!("../../assets/sim/clip-cogvideox-206030.mp4"),
    include_bytes!("../../assets/sim/clip-cogvideox-203060.mp4"),
    include_bytes!("../../assets/sim/clip-cogvideox-606020.mp4"),
];

/// The clip task `task_id` of `model` is served: `file`'s bytes when given and readable, else
/// one of the bundled clips of the model's family, chosen by the task id.
pub(super) fn clip(model: &str, file: Option<&std::path::Path>, task_id: &str) -> Bytes {
    if let Some(path) = file {
        match std::fs::read(path) {
            Ok(bytes) => return Bytes::from(bytes),
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "simulator: cannot read clip_file; serving the bundled clip")
            }
        }
    }
    let family = if model.starts_with("vidu2") {
        &CLIPS_VIDU2
    } else if model.starts_with("cogvideox") {
        &CLIPS_COG
    } else {
        &CLIPS_Q1
    };
    let pick = usize::try_from(task_seed(task_id, "clip") % family.len() as u64).unwrap_or(0);
    Bytes::from_static(family[pick])
}

/// Largest piece a body stream yields.
const CHUNK: u64 = 64 * 1024;
/// Size of an MP4 box header with a 32-bit size, and with a 64-bit `largesize`.
const BOX_HEADER: u64 = 8;
const BOX_HEADER_LARGE: u64 = 16;
/// Longest text a JPEG `COM` segment holds (its length field counts itself).
const MAX_COMMENT: usize = u16::MAX as usize - 2;

/// Which of a task's two files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MediaKind {
    /// The MP4.
    Video,
    /// The JPEG cover image.
    Cover,
}

impl MediaKind {
    /// The `Content-Type` it is served with.
    pub(super) fn content_type(self) -> &'static str {
        match self {
            MediaKind::Video => "video/mp4",
            MediaKind::Cover => "image/jpeg",
        }
    }
}

/// One result file, with its SHA-256 computed on first request.
#[derive(Debug)]
pub(super) struct Media {
    body: OnceLock<Synthetic>,
    /// How to draw a cover on first use (so a submission, made under the simulator's lock, does
    /// not wait for a JPEG to be encoded): its task id, seed and prompt.
    draw: Option<(String, u64, String)>,
    sha256: OnceLock<String>,
}

impl Media {
    /// The video of task `task_id`: `clip`, padded to at least `min_len` bytes if given.
    pub(super) fn video(task_id: &str, min_len: Option<u64>, clip: Bytes) -> Media {
        Media::new(video(task_id, min_len, clip))
    }

    /// The cover of task `task_id`, showing the first words of `prompt`.
    pub(super) fn cover(task_id: &str, prompt: Option<&str>) -> Media {
        let draw = (task_id.to_owned(), task_seed(task_id, "cover"), prompt.unwrap_or_default().to_owned());
        Media { body: OnceLock::new(), draw: Some(draw), sha256: OnceLock::new() }
    }

    fn new(body: Synthetic) -> Media {
        Media { body: OnceLock::from(body), draw: None, sha256: OnceLock::new() }
    }

    /// The file's contents.
    pub(super) fn body(&self) -> &Synthetic {
        self.body.get_or_init(|| {
            let (task_id, seed, prompt) =
                self.draw.as_ref().map_or(("", 0, ""), |(t, s, p)| (t.as_str(), *s, p.as_str()));
            let picture = super::cover::draw(seed, prompt);
            Synthetic::new(vec![Segment::Bytes(cover(task_id, &picture))])
        })
    }

    /// Length in bytes.
    pub(super) fn len(&self) -> u64 {
        self.body().len()
    }

    /// Lower-hex SHA-256 of the whole file, streamed through the hasher once and then cached.
    pub(super) fn sha256(&self) -> &str {
        self.sha256.get_or_init(|| {
            let mut hasher = Sha256::new();
            for chunk in self.body().chunks(0..self.body().len()) {
                hasher.update(&chunk);
            }
            hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
        })
    }
}

/// A part of a synthetic file.
#[derive(Debug, Clone)]
enum Segment {
    /// Literal bytes (the bundled media are `'static`, so cloning them costs nothing).
    Bytes(Bytes),
    /// `len` pseudo-random bytes determined by `seed`.
    Noise { seed: u64, len: u64 },
}

impl Segment {
    fn len(&self) -> u64 {
        match self {
            Segment::Bytes(b) => b.len() as u64,
            Segment::Noise { len, .. } => *len,
        }
    }

    /// `len` bytes from `offset` within this segment (the caller keeps them in bounds).
    fn read(&self, offset: u64, len: u64) -> Bytes {
        match self {
            Segment::Bytes(b) => {
                let start = usize::try_from(offset).unwrap_or(usize::MAX).min(b.len());
                let end = usize::try_from(offset.saturating_add(len)).unwrap_or(usize::MAX).min(b.len());
                b.slice(start..end)
            }
            Segment::Noise { seed, .. } => noise(*seed, offset, len),
        }
    }
}

/// A file described by its segments; cheap to clone and to stream in any range.
#[derive(Debug, Clone)]
pub(super) struct Synthetic {
    segments: Arc<[Segment]>,
    len: u64,
}

impl Synthetic {
    fn new(segments: Vec<Segment>) -> Synthetic {
        let len = segments.iter().map(Segment::len).sum();
        Synthetic { segments: segments.into(), len }
    }

    /// Length in bytes.
    pub(super) fn len(&self) -> u64 {
        self.len
    }

    /// The bytes in `range` (clamped to the file), in pieces of at most 64 KiB.
    pub(super) fn chunks(&self, range: Range<u64>) -> Chunks {
        Chunks { body: self.clone(), pos: range.start, end: range.end.min(self.len) }
    }

    /// [`Synthetic::chunks`] as a body stream.
    pub(super) fn stream(&self, range: Range<u64>) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
        futures::stream::iter(self.chunks(range).map(Ok))
    }
}

/// The pieces of a range of a [`Synthetic`] file.
#[derive(Debug)]
pub(super) struct Chunks {
    body: Synthetic,
    pos: u64,
    end: u64,
}

impl Iterator for Chunks {
    type Item = Bytes;

    fn next(&mut self) -> Option<Bytes> {
        let mut seg_start = 0;
        for segment in self.body.segments.iter() {
            let seg_end = seg_start + segment.len();
            if self.pos < seg_end && self.pos < self.end {
                let n = CHUNK.min(seg_end - self.pos).min(self.end - self.pos);
                let piece = segment.read(self.pos - seg_start, n);
                self.pos += n;
                return Some(piece);
            }
            seg_start = seg_end;
        }
        None
    }
}

fn video(task_id: &str, min_len: Option<u64>, clip: Bytes) -> Synthetic {
    let payload = format!("vidkeep-sim {task_id}").into_bytes();
    let clip_len = clip.len() as u64;
    let payload_len = payload.len() as u64;
    let total = min_len.unwrap_or(0).max(clip_len + BOX_HEADER + payload_len);
    let box_len = total - clip_len;
    let (header, padding) = match u32::try_from(box_len) {
        Ok(size) => (free_box_header(&size.to_be_bytes()), box_len - BOX_HEADER - payload_len),
        Err(_) => (free_box_header_large(box_len), box_len - BOX_HEADER_LARGE - payload_len),
    };
    let mut head = BytesMut::with_capacity(header.len() + payload.len());
    head.put_slice(&header);
    head.put_slice(&payload);
    let mut segments = vec![Segment::Bytes(clip), Segment::Bytes(head.freeze())];
    if padding > 0 {
        segments.push(Segment::Noise { seed: noise_seed(task_id), len: padding });
    }
    Synthetic::new(segments)
}

/// `[size]["free"]` with a 32-bit size.
fn free_box_header(size: &[u8; 4]) -> Vec<u8> {
    [size.as_slice(), b"free"].concat()
}

/// `[1]["free"][largesize]`, for boxes of 4 GiB and more.
fn free_box_header_large(size: u64) -> Vec<u8> {
    [1_u32.to_be_bytes().as_slice(), b"free", &size.to_be_bytes()].concat()
}

/// `jpeg` with the comment `vidkeep-sim <task id>` after its header.
fn cover(task_id: &str, jpeg: &[u8]) -> Bytes {
    let comment = format!("vidkeep-sim {task_id}");
    let text = comment.as_bytes().get(..MAX_COMMENT).unwrap_or(comment.as_bytes());
    let split = jpeg_header_end(jpeg);
    let (head, rest) = jpeg.split_at(split);
    let mut out = BytesMut::with_capacity(jpeg.len() + 4 + text.len());
    out.put_slice(head);
    out.put_slice(&[0xFF, 0xFE]);
    out.put_u16(u16::try_from(text.len() + 2).unwrap_or(u16::MAX));
    out.put_slice(text);
    out.put_slice(rest);
    out.freeze()
}

/// Where a comment may go in `jpeg`: after SOI, and after the JFIF `APP0` segment if it comes
/// next. 0 if `jpeg` does not start with SOI.
fn jpeg_header_end(jpeg: &[u8]) -> usize {
    if !jpeg.starts_with(&[0xFF, 0xD8]) {
        return 0;
    }
    let app0_len = match jpeg.get(2..6) {
        Some([0xFF, 0xE0, hi, lo]) => usize::from(u16::from_be_bytes([*hi, *lo])),
        _ => return 2,
    };
    let end = 4 + app0_len;
    if end <= jpeg.len() { end } else { 2 }
}

/// A seed for a task's padding, from its id.
fn noise_seed(task_id: &str) -> u64 {
    task_seed(task_id, "padding")
}

/// A number drawn from a task id for `what` (its padding, clip, cover colour).
fn task_seed(task_id: &str, what: &str) -> u64 {
    let digest = Sha256::digest(format!("vidkeep-sim {what} {task_id}").as_bytes());
    let mut first = [0; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(first)
}

/// `len` bytes of the noise stream `seed`, from `offset`. Byte `i` is byte `i % 8` of a hash of
/// (`seed`, `i / 8`), so any range is produced directly, without the bytes before it.
fn noise(seed: u64, offset: u64, len: u64) -> Bytes {
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    let mut out = BytesMut::with_capacity(len);
    let mut word = offset / 8;
    let mut skip = (offset % 8) as usize;
    while out.len() < len {
        let bytes = splitmix64(seed ^ word.wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_le_bytes();
        let take = (len - out.len()).min(8 - skip);
        out.put_slice(&bytes[skip..skip + take]);
        skip = 0;
        word = word.wrapping_add(1);
    }
    out.freeze()
}

/// The SplitMix64 finaliser: a fast, well-mixed 64-bit hash.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(body: &Synthetic, range: Range<u64>) -> Vec<u8> {
        body.chunks(range).flat_map(|c| c.to_vec()).collect()
    }

    /// The top-level MP4 boxes of `file`: (type, size).
    fn boxes(file: &[u8]) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        let mut pos = 0;
        while pos < file.len() {
            let size = u64::from(u32::from_be_bytes(file[pos..pos + 4].try_into().expect("4 bytes")));
            let kind = String::from_utf8_lossy(&file[pos + 4..pos + 8]).into_owned();
            let size =
                if size == 1 { u64::from_be_bytes(file[pos + 8..pos + 16].try_into().expect("8 bytes")) } else { size };
            out.push((kind, size));
            pos += usize::try_from(size).expect("fits");
        }
        assert_eq!(pos, file.len(), "boxes tile the file exactly");
        out
    }

    #[test]
    fn video_is_the_clip_plus_one_free_box_naming_the_task() {
        let body = video("task-1", None, Bytes::from_static(CLIP));
        let file = collect(&body, 0..body.len());
        assert_eq!(file.len() as u64, body.len());
        assert!(file.starts_with(CLIP));
        let tail = &file[CLIP.len()..];
        assert_eq!(&tail[4..8], b"free");
        assert_eq!(&tail[8..], b"vidkeep-sim task-1");
        let kinds: Vec<String> = boxes(&file).into_iter().map(|(k, _)| k).collect();
        assert_eq!(kinds.first().map(String::as_str), Some("ftyp"));
        assert_eq!(kinds.last().map(String::as_str), Some("free"));
    }

    #[test]
    fn padded_video_has_the_asked_length_and_any_range_matches_the_whole() {
        let want = 300_000;
        let body = video("task-2", Some(want), Bytes::from_static(CLIP));
        assert_eq!(body.len(), want);
        let file = collect(&body, 0..want);
        assert_eq!(file.len() as u64, want);
        assert_eq!(boxes(&file).last(), Some(&("free".to_owned(), want - CLIP.len() as u64)));
        for range in [0..1, 3..70_000, 109_000..109_100, 131_071..200_003, 299_990..300_000, 299_999..400_000] {
            let end = range.end.min(want) as usize;
            assert_eq!(collect(&body, range.clone()), &file[range.start as usize..end], "{range:?}");
        }
        assert!(body.chunks(0..want).all(|c| c.len() as u64 <= CHUNK));
        assert_ne!(
            file,
            collect(&video("task-3", Some(want), Bytes::from_static(CLIP)), 0..want),
            "padding differs per task"
        );
    }

    #[test]
    fn huge_videos_use_a_large_size_box_without_materialising() {
        let want = 5 * 1024 * 1024 * 1024;
        let body = video("big", Some(want), Bytes::from_static(CLIP));
        assert_eq!(body.len(), want);
        let head = collect(&body, CLIP.len() as u64..CLIP.len() as u64 + 16);
        assert_eq!(&head[..8], &[0, 0, 0, 1, b'f', b'r', b'e', b'e']);
        assert_eq!(u64::from_be_bytes(head[8..16].try_into().expect("8 bytes")), want - CLIP.len() as u64);
        assert_eq!(collect(&body, want - 10..want + 10).len(), 10);
    }

    #[test]
    fn cover_carries_a_comment_after_the_jfif_header() {
        let picture = super::super::cover::draw(7, "a fox");
        let file = cover("task-9", &picture);
        assert!(file.starts_with(&[0xFF, 0xD8, 0xFF, 0xE0]), "JFIF APP0 stays first");
        let at = jpeg_header_end(&picture);
        assert!(at > 2, "the drawn cover has a JFIF header");
        assert_eq!(&file[..at], &picture[..at]);
        let text = b"vidkeep-sim task-9";
        assert_eq!(&file[at..at + 2], &[0xFF, 0xFE]);
        assert_eq!(u16::from_be_bytes([file[at + 2], file[at + 3]]) as usize, text.len() + 2);
        assert_eq!(&file[at + 4..at + 4 + text.len()], text);
        assert_eq!(&file[at + 4 + text.len()..], &picture[at..]);
        assert!(file.ends_with(&[0xFF, 0xD9]), "EOI kept");
    }

    #[test]
    fn tasks_get_different_clips_of_their_models_shape() {
        let ids: Vec<String> = (0..40).map(|i| format!("task-{i}")).collect();
        for (model, family) in [("viduq1-text", &CLIPS_Q1), ("vidu2-image", &CLIPS_VIDU2), ("cogvideox-3", &CLIPS_COG)]
        {
            let picked: std::collections::HashSet<&[u8]> = ids
                .iter()
                .map(|id| family.iter().copied().find(|c| *c == &clip(model, None, id)[..]).expect("a bundled clip"))
                .collect();
            assert_eq!(picked.len(), 4, "{model}: 40 tasks use all four clips");
            assert_eq!(clip(model, None, "task-1"), clip(model, None, "task-1"), "the same task, the same clip");
        }
    }

    #[test]
    fn header_end_tolerates_odd_input() {
        assert_eq!(jpeg_header_end(b""), 0);
        assert_eq!(jpeg_header_end(&[0xFF, 0xD8]), 2);
        assert_eq!(jpeg_header_end(&[0xFF, 0xD8, 0xFF, 0xE0, 0xFF, 0xFF]), 2);
        assert_eq!(jpeg_header_end(&[0xFF, 0xD8, 0xFF, 0xDB, 0, 4, 0, 0]), 2);
    }

    #[test]
    fn sha256_is_of_the_served_bytes() {
        let media = Media::video("t", Some(200_000), Bytes::from_static(CLIP));
        let file = collect(media.body(), 0..media.len());
        let want: String = Sha256::digest(&file).iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(media.sha256(), want);
        assert_eq!(media.sha256().len(), 64);
    }
}
