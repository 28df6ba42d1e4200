//! The media probe: is the stored MP4 what was paid for?
//!
//! The probe reads the stored object back with range requests, never whole: the header of each
//! top-level box (16 bytes), then `ftyp` and `moov` (metadata, kilobytes), and hands those to the
//! `mp4` crate over a sparse reader that holds only them (it seeks over `mdat`). A top-level box
//! or a sample chunk that ends past the end of the object means the file is truncated.
//!
//! What it finds is compared with the model's promise ([`Promise::for_job`]): Vidu Q1 5 s,
//! 24 fps, 1920x1080; Vidu 2 4 s, 24 fps, 1280x720; CogVideoX by the request's `duration`, `fps`
//! (default 5 s, 30 fps) and `size` when the request names one.

use std::io::{Read, Seek, SeekFrom};

use bytes::Bytes;
use object_store::path::Path as Key;
use serde::Serialize;

use crate::store::{Store, StoreError};

/// Largest `moov` the probe reads (metadata of hours of video is a few MiB).
const MAX_MOOV: u64 = 64 * 1024 * 1024;
/// Most top-level boxes the probe walks before giving up.
const MAX_BOXES: usize = 1024;

/// What the probe read from the file.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Figures {
    /// Duration of the video track in seconds.
    pub duration_s: f64,
    /// Frames per second (samples over the track's duration).
    pub fps: f64,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// The codec, e.g. `avc1`.
    pub codec: String,
}

/// Figures are never NaN (a zero duration gives 0 fps), so equality is an equivalence.
impl Eq for Figures {}

/// The outcome of probing one video.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Probe {
    /// The figures, when the MP4 parsed.
    pub figures: Option<Figures>,
    /// What does not match the promise, in words; empty when all is well.
    pub findings: Vec<String>,
}

impl Eq for Probe {}

impl Probe {
    /// Whether the video is what was promised.
    pub fn ok(&self) -> bool {
        self.findings.is_empty()
    }
}

/// Tolerances for [`Promise::check`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tolerance {
    /// Allowed difference in duration, seconds.
    pub duration_s: f64,
    /// Allowed difference in frame rate, frames per second.
    pub fps: f64,
}

/// What a model promises for a request; `None` where nothing is promised.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Promise {
    /// Seconds.
    pub duration_s: Option<f64>,
    /// Frames per second.
    pub fps: Option<f64>,
    /// Width and height.
    pub size: Option<(u32, u32)>,
}

impl Promise {
    /// The promise of `model` for the request `request` (the body as sent or shown).
    pub fn for_job(model: &str, request: &serde_json::Value) -> Promise {
        let size =
            |default: Option<(u32, u32)>| request.get("size").and_then(|s| s.as_str()).and_then(parse_size).or(default);
        let num = |field: &str, default: f64| request.get(field).and_then(serde_json::Value::as_f64).unwrap_or(default);
        if model.starts_with("viduq1") {
            Promise { duration_s: Some(5.0), fps: Some(24.0), size: Some((1920, 1080)) }
        } else if model.starts_with("vidu2") {
            Promise { duration_s: Some(4.0), fps: Some(24.0), size: size(Some((1280, 720))) }
        } else if model.starts_with("cogvideox") {
            Promise { duration_s: Some(num("duration", 5.0)), fps: Some(num("fps", 30.0)), size: size(None) }
        } else {
            Promise::default()
        }
    }

    /// What in `figures` breaks this promise.
    pub fn check(&self, figures: &Figures, tolerance: Tolerance) -> Vec<String> {
        let mut findings = Vec::new();
        if let Some(want) = self.duration_s.filter(|w| (figures.duration_s - w).abs() > tolerance.duration_s) {
            findings.push(format!("duration is {:.3} s, the model promises {want} s", figures.duration_s));
        }
        if let Some(want) = self.fps.filter(|w| (figures.fps - w).abs() > tolerance.fps) {
            findings.push(format!("frame rate is {:.3} fps, the model promises {want} fps", figures.fps));
        }
        if let Some((w, h)) = self.size.filter(|s| *s != (figures.width, figures.height)) {
            findings.push(format!("resolution is {}x{}, the model promises {w}x{h}", figures.width, figures.height));
        }
        findings
    }
}

fn parse_size(s: &str) -> Option<(u32, u32)> {
    let (w, h) = s.split_once(['x', 'X', '*'])?;
    Some((w.trim().parse().ok()?, h.trim().parse().ok()?))
}

/// Probes the object of `len` bytes at `key` and checks it against `promise`. A store failure is
/// an error (retry later); a file that does not parse is a finding.
pub async fn probe(
    store: &Store,
    key: &Key,
    len: u64,
    promise: &Promise,
    tolerance: Tolerance,
) -> Result<Probe, StoreError> {
    Ok(match read_figures(store, key, len).await? {
        Ok(figures) => Probe { findings: promise.check(&figures, tolerance), figures: Some(figures) },
        Err(why) => Probe { figures: None, findings: vec![why] },
    })
}

/// Reads the figures, or says in words why the file is not a complete MP4.
async fn read_figures(store: &Store, key: &Key, len: u64) -> Result<Result<Figures, String>, StoreError> {
    let mut pieces = Vec::new();
    let mut at = 0u64;
    let mut boxes = 0;
    while at < len {
        boxes += 1;
        if boxes > MAX_BOXES {
            return Ok(Err(format!("the MP4 has more than {MAX_BOXES} top-level boxes")));
        }
        let head = store.read_range(key, at..(at + 16).min(len)).await?;
        if head.len() < 8 {
            return Ok(Err(format!("the MP4 is truncated: a box header at byte {at} is cut off")));
        }
        let size32 = u64::from(u32::from_be_bytes([head[0], head[1], head[2], head[3]]));
        let name = [head[4], head[5], head[6], head[7]];
        let size = match size32 {
            0 => len - at,
            1 if head.len() == 16 => u64::from_be_bytes(head[8..16].try_into().unwrap_or_default()),
            1 => return Ok(Err(format!("the MP4 is truncated: a box header at byte {at} is cut off"))),
            n => n,
        };
        if size < 8 {
            return Ok(Err(format!("the MP4 is damaged: a box at byte {at} has size {size}")));
        }
        let end = at.saturating_add(size);
        if end > len {
            return Ok(Err(format!(
                "the MP4 is truncated: its `{}` box ends at byte {end}, the file has {len}",
                String::from_utf8_lossy(&name)
            )));
        }
        if &name == b"moov" || &name == b"ftyp" {
            if size > MAX_MOOV {
                return Ok(Err(format!("the MP4's `moov` box is {size} bytes, more than the probe reads")));
            }
            pieces.push((at, store.read_range(key, at..end).await?));
        } else {
            pieces.push((at, head));
        }
        at = end;
    }
    let reader = Sparse { len, pos: 0, pieces };
    let mp4 = match mp4::Mp4Reader::read_header(reader, len) {
        Ok(mp4) => mp4,
        Err(e) => return Ok(Err(format!("the MP4 does not parse: {e}"))),
    };
    let Some(track) = mp4.tracks().values().find(|t| matches!(t.track_type(), Ok(mp4::TrackType::Video))) else {
        return Ok(Err("the MP4 has no video track".to_owned()));
    };
    let stbl = &track.trak.mdia.minf.stbl;
    let last_chunk = match (&stbl.stco, &stbl.co64) {
        (Some(stco), _) => stco.entries.iter().map(|o| u64::from(*o)).max(),
        (None, Some(co64)) => co64.entries.iter().copied().max(),
        (None, None) => None,
    };
    if let Some(offset) = last_chunk.filter(|o| *o >= len) {
        return Ok(Err(format!("the MP4 is truncated: a sample chunk starts at byte {offset}, the file has {len}")));
    }
    let duration_s = track.duration().as_secs_f64();
    let samples = track.sample_count();
    let fps = if duration_s > 0.0 { f64::from(samples) / duration_s } else { 0.0 };
    let codec = track.box_type().map(|b| b.to_string()).unwrap_or_else(|_| "unknown".to_owned());
    Ok(Ok(Figures { duration_s, fps, width: u32::from(track.width()), height: u32::from(track.height()), codec }))
}

/// A file of `len` bytes of which only some pieces are held: enough for the `mp4` crate, which
/// reads box headers, `ftyp` and `moov`, and seeks over everything else.
struct Sparse {
    len: u64,
    pos: u64,
    pieces: Vec<(u64, Bytes)>,
}

impl Read for Sparse {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.pos >= self.len || buf.is_empty() {
            return Ok(0);
        }
        let pos = self.pos;
        let Some((start, bytes)) =
            self.pieces.iter().find(|(start, bytes)| pos >= *start && pos < start + bytes.len() as u64)
        else {
            return Err(std::io::Error::other(format!("the probe did not read byte {pos}")));
        };
        let from = (pos - start) as usize;
        let n = buf.len().min(bytes.len() - from);
        buf[..n].copy_from_slice(&bytes[from..from + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Sparse {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        let target = match to {
            SeekFrom::Start(n) => Some(n),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = target.ok_or_else(|| std::io::Error::other("seek before the start"))?;
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use object_store::ObjectStoreExt as _;
    use serde_json::json;

    use super::*;

    static Q1: &[u8] = include_bytes!("../assets/sim/clip.mp4");
    static VIDU2: &[u8] = include_bytes!("../assets/sim/clip-vidu2.mp4");
    const TOL: Tolerance = Tolerance { duration_s: 0.1, fps: 0.5 };

    /// Puts `bytes` in a real local store (a temp folder) and probes it against `promise`.
    async fn probe_bytes(bytes: &[u8], promise: Promise) -> Probe {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = url::Url::from_directory_path(dir.path()).expect("url").to_string();
        let store = Store::open(&crate::config::StorageConfig { url, ..Default::default() }).expect("store");
        let key = Key::from("2026/12/01/job/video.mp4");
        store.backend().put(&key, bytes.to_vec().into()).await.expect("put");
        probe(&store, &key, bytes.len() as u64, &promise, TOL).await.expect("probe")
    }

    #[tokio::test]
    async fn the_vidu_q1_clip_is_what_q1_promises() {
        let promise = Promise::for_job("viduq1-text", &json!({}));
        let p = probe_bytes(Q1, promise).await;
        assert!(p.ok(), "{p:?}");
        let f = p.figures.expect("figures");
        assert_eq!((f.width, f.height), (1920, 1080));
        assert!((f.duration_s - 5.0).abs() < 0.01 && (f.fps - 24.0).abs() < 0.01, "{f:?}");
        assert_eq!(f.codec, "avc1");
    }

    #[tokio::test]
    async fn the_vidu2_clip_is_what_vidu2_promises_and_not_what_q1_does() {
        let p = probe_bytes(VIDU2, Promise::for_job("vidu2-image", &json!({"size":"1280x720"}))).await;
        assert!(p.ok(), "{p:?}");
        let wrong = probe_bytes(VIDU2, Promise::for_job("viduq1-image", &json!({}))).await;
        assert_eq!(wrong.findings.len(), 2, "{wrong:?}");
        assert!(wrong.findings[0].contains("duration is 4.000 s, the model promises 5 s"), "{wrong:?}");
        assert!(wrong.findings[1].contains("resolution is 1280x720, the model promises 1920x1080"), "{wrong:?}");
        assert!(wrong.figures.is_some());
    }

    #[tokio::test]
    async fn a_truncated_clip_is_a_finding_not_an_error() {
        let half = &Q1[..Q1.len() / 2];
        let p = probe_bytes(half, Promise::for_job("viduq1-text", &json!({}))).await;
        assert!(p.figures.is_none(), "{p:?}");
        assert!(p.findings[0].starts_with("the MP4 is truncated"), "{p:?}");
        let junk = probe_bytes(b"not an mp4 at all, just text", Promise::default()).await;
        assert!(!junk.ok(), "{junk:?}");
    }

    #[test]
    fn cogvideox_promises_what_was_asked() {
        let p = Promise::for_job("cogvideox-3", &json!({"fps":60,"duration":10,"size":"1280x720"}));
        assert_eq!(p, Promise { duration_s: Some(10.0), fps: Some(60.0), size: Some((1280, 720)) });
        let d = Promise::for_job("cogvideox-3", &json!({}));
        assert_eq!(d, Promise { duration_s: Some(5.0), fps: Some(30.0), size: None });
    }

    #[tokio::test]
    async fn a_clip_padded_with_a_free_box_still_probes() {
        // The simulator pads videos with a trailing `free` box; the probe seeks over it.
        let mut file = Q1.to_vec();
        let pad = 4 * 1024 * 1024u32;
        file.extend_from_slice(&pad.to_be_bytes());
        file.extend_from_slice(b"free");
        file.resize(file.len() + pad as usize - 8, 0);
        let p = probe_bytes(&file, Promise::for_job("viduq1-text", &json!({}))).await;
        assert!(p.ok(), "{p:?}");
    }
}
