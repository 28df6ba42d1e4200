use std::sync::Arc;

use async_trait::async_trait;
use futures::stream::BoxStream;
use object_store::memory::InMemory;
use object_store::path::Path as Key;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, PutMultipartOptions,
    PutOptions, PutPayload, PutResult,
};
use tokio::io::AsyncReadExt as _;
use tokio::sync::Notify;

use super::*;

/// An in-memory store whose reads of `held` wait until `release` is notified; `asked` is
/// notified when such a read starts.
#[derive(Debug)]
struct Held {
    inner: InMemory,
    held: Key,
    asked: Arc<Notify>,
    release: Arc<Notify>,
}

impl std::fmt::Display for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Held")
    }
}

#[async_trait]
impl ObjectStore for Held {
    async fn put_opts(&self, l: &Key, p: PutPayload, o: PutOptions) -> object_store::Result<PutResult> {
        self.inner.put_opts(l, p, o).await
    }
    async fn put_multipart_opts(
        &self,
        l: &Key,
        o: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(l, o).await
    }
    async fn get_opts(&self, l: &Key, o: GetOptions) -> object_store::Result<GetResult> {
        if *l == self.held {
            self.asked.notify_one();
            self.release.notified().await;
        }
        self.inner.get_opts(l, o).await
    }
    fn delete_stream(
        &self,
        l: BoxStream<'static, object_store::Result<Key>>,
    ) -> BoxStream<'static, object_store::Result<Key>> {
        self.inner.delete_stream(l)
    }
    fn list(&self, p: Option<&Key>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(p)
    }
    async fn list_with_delimiter(&self, p: Option<&Key>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(p).await
    }
    async fn copy_opts(&self, f: &Key, t: &Key, o: CopyOptions) -> object_store::Result<()> {
        self.inner.copy_opts(f, t, o).await
    }
}

fn asset(job: &JobRecord, kind: AssetKind, key: &str, bytes: &[u8]) -> Asset {
    Asset {
        job_id: job.id.clone(),
        kind,
        sha256: crate::domain::hex(&Sha256::digest(bytes)),
        bytes: bytes.len() as u64,
        key: key.to_owned(),
        content_type: if kind == AssetKind::Video { "video/mp4" } else { "image/jpeg" }.to_owned(),
        source_url: String::new(),
        probe: None,
    }
}

fn job(id: &str, spec: &str) -> JobRecord {
    JobRecord { spec_name: spec.to_owned(), ..JobRecord::for_test(id) }
}

/// Every entry of a zip: (name, bytes).
async fn entries(zip: Vec<u8>) -> Vec<(String, Vec<u8>)> {
    let reader = async_zip::base::read::mem::ZipFileReader::new(zip).await.expect("a readable zip");
    let mut out = Vec::new();
    for i in 0..reader.file().entries().len() {
        let entry = &reader.file().entries()[i];
        let name = entry.filename().as_str().expect("utf8").to_owned();
        assert_eq!(entry.compression(), Compression::Stored, "{name} is stored");
        let mut data = Vec::new();
        let mut r = reader.reader_with_entry(i).await.expect("entry");
        r.read_to_end_checked(&mut data).await.expect("read with its CRC checked");
        out.push((name, data));
    }
    out
}

#[tokio::test]
async fn the_zip_streams_each_file_as_it_is_read_and_ends_with_its_manifest() {
    let (one, two) = (
        job("01a2125a-e8e6-751d-a110-8b36979f7ec5", "fox.txt"),
        job("01a2125a-e8e6-751d-b3c0-5d1e22a40b19", "fox.txt"),
    );
    let first = vec![7u8; 300_000];
    let second = b"the second video".to_vec();
    let held = Key::from("b/video.mp4");
    let (asked, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let backend =
        Held { inner: InMemory::new(), held: held.clone(), asked: Arc::clone(&asked), release: Arc::clone(&release) };
    backend.inner.put_opts(&Key::from("a/video.mp4"), first.clone().into(), PutOptions::default()).await.expect("put");
    backend.inner.put_opts(&held, second.clone().into(), PutOptions::default()).await.expect("put");
    let store = Store::from_backend(Arc::new(backend), "memory://");
    let failed = JobRecord {
        state: crate::domain::JobState::Failed,
        ..job("01a2125a-e8e6-751d-c000-000000000003", "doomed.txt")
    };
    let plan = vec![
        Planned {
            job: one.clone(),
            file: Some((asset(&one, AssetKind::Video, "a/video.mp4", &first), "fox-979f7ec5.mp4".into())),
        },
        Planned {
            job: two.clone(),
            file: Some((asset(&two, AssetKind::Video, "b/video.mp4", &second), "fox-22a40b19.mp4".into())),
        },
        Planned { job: failed.clone(), file: None },
    ];
    let (mut reader, writer) = tokio::io::duplex(64 * 1024);
    let zipping = tokio::spawn(async move { write_zip(&store, &plan, writer).await.map(drop) });

    // The first video's bytes arrive while the second is not even read yet: nothing waits for
    // the whole zip, and the pipe (64 KiB here) bounds what is held.
    let mut got = Vec::new();
    let mut buf = vec![0; 16 * 1024];
    while got.windows(first.len()).all(|w| w != first.as_slice()) {
        let n = reader.read(&mut buf).await.expect("read");
        assert!(n > 0, "the zip ended before the first file was sent");
        got.extend_from_slice(&buf[..n]);
    }
    asked.notified().await;
    assert!(!zipping.is_finished(), "the second file is still held");
    release.notify_one();
    reader.read_to_end(&mut got).await.expect("the rest");
    zipping.await.expect("task").expect("zip written");

    let files = entries(got).await;
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["fox-979f7ec5.mp4", "fox-22a40b19.mp4", "manifest.csv"]);
    assert_eq!((files[0].1.as_slice(), files[1].1.as_slice()), (first.as_slice(), second.as_slice()));
    let manifest = String::from_utf8(files[2].1.clone()).expect("utf8");
    let lines: Vec<&str> = manifest.lines().collect();
    assert_eq!(lines[0], "job_id,spec,name,project,state,kind,file,bytes,sha256,status");
    let sha = crate::domain::hex(&Sha256::digest(&first));
    assert_eq!(lines[1], format!("{},fox.txt,,,queued,video,fox-979f7ec5.mp4,300000,{sha},ok", one.id));
    assert!(lines[2].ends_with(",ok") && lines[2].contains("fox-22a40b19.mp4,16,"), "{manifest}");
    assert_eq!(lines[3], format!("{},doomed.txt,,,failed,,,,,nothing archived (failed)", failed.id));
}

#[tokio::test]
async fn a_missing_or_changed_file_is_named_in_the_manifest() {
    let backend = InMemory::new();
    backend.put_opts(&Key::from("a/video.mp4"), b"changed".to_vec().into(), PutOptions::default()).await.expect("put");
    let store = Store::from_backend(Arc::new(backend), "memory://");
    let one = job("01a2125a-e8e6-751d-a110-8b36979f7ec5", "fox.txt");
    let plan = vec![
        Planned {
            job: one.clone(),
            file: Some((asset(&one, AssetKind::Video, "a/video.mp4", b"original"), "a.mp4".into())),
        },
        Planned {
            job: one.clone(),
            file: Some((asset(&one, AssetKind::Cover, "a/cover.jpg", b"gone"), "a-cover.jpg".into())),
        },
    ];
    let zip = write_zip(&store, &plan, Vec::new()).await.expect("zip");
    let files = entries(zip).await;
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["a.mp4", "manifest.csv"], "the missing cover is not in the zip");
    let manifest = String::from_utf8(files[1].1.clone()).expect("utf8");
    let sha = crate::domain::hex(&Sha256::digest(b"changed"));
    assert!(
        manifest.contains(&format!("differs from the catalogue: the store gave 7 bytes with SHA-256 {sha}")),
        "{manifest}"
    );
    assert!(
        manifest.contains(",cover,,4,") && manifest.contains("missing from the store: not in the zip"),
        "{manifest}"
    );
}

#[test]
fn names_are_unique_and_never_the_manifest() {
    let mut taken = HashSet::new();
    assert_eq!(unique(&mut taken, "fox-1.mp4".into()), "fox-1.mp4");
    assert_eq!(unique(&mut taken, "fox-1.mp4".into()), "fox-1-2.mp4");
    assert_eq!(unique(&mut taken, "fox-1.mp4".into()), "fox-1-3.mp4");
    assert_eq!(unique(&mut taken, "manifest.csv".into()), "manifest-2.csv");
    assert_eq!(unique(&mut taken, "noext".into()), "noext");
    assert_eq!(unique(&mut taken, "noext".into()), "noext-2");
}

#[test]
fn a_selection_is_read_from_form_fields_and_bounded() {
    let form = "job=a&takes_of=b&q=ignored&job=&job=+c+";
    assert_eq!(
        picks(form.as_bytes()).expect("picks"),
        [(false, "a".to_owned()), (true, "b".to_owned()), (false, "c".to_owned())]
    );
    assert!(matches!(picks(b"q=fox"), Err(UiError::BadRequest(_))));
    let many: Vec<String> = (0..=MAX_ZIP_JOBS).map(|i| format!("job={i}")).collect();
    assert!(matches!(picks(many.join("&").as_bytes()), Err(UiError::TooLarge(m)) if m.contains("at most 500")));
    assert!(picks(many[..MAX_ZIP_JOBS].join("&").as_bytes()).is_ok());
}
