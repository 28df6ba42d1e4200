//! Memory is bounded by what the store is told, not by the object's size or the downloads running:
//! multipart parts in flight across all downloads stay within `[storage] max_bytes_in_flight`
//! (seen by an instrumented store that counts the bytes of every part it is still receiving), and
//! the local store writes a download into its staging file as it arrives instead of holding parts.

use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use futures::StreamExt as _;
use futures::stream::BoxStream;
use object_store::memory::InMemory;
use object_store::path::Path as Key;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore, ObjectStoreExt as _,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, UploadPart,
};
use vidkeep::archive::{Archiver, sha256_hex};
use vidkeep::config::{ArchiveConfig, DEFAULT_MAX_BYTES_IN_FLIGHT, StorageConfig};
use vidkeep::store::{STAGING, Store, UploadSettings};

const MIB: usize = 1024 * 1024;

fn blob(len: usize, seed: u64) -> Vec<u8> {
    (0..len as u64).map(|i| (i.wrapping_add(seed).wrapping_mul(2_654_435_761) >> 11) as u8).collect()
}

/// Counts the bytes of the parts being received and the most ever at once. Each part takes
/// 200 ms, so parts of concurrent uploads overlap as they would on a slow network.
#[derive(Debug, Default)]
struct Meter {
    now: AtomicUsize,
    peak: AtomicUsize,
}

#[derive(Debug)]
struct Metered {
    inner: InMemory,
    meter: Arc<Meter>,
}

impl std::fmt::Display for Metered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Metered({})", self.inner)
    }
}

#[derive(Debug)]
struct MeteredUpload {
    inner: Box<dyn MultipartUpload>,
    meter: Arc<Meter>,
}

#[async_trait::async_trait]
impl MultipartUpload for MeteredUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let len = data.content_length();
        let meter = Arc::clone(&self.meter);
        let sending = self.inner.put_part(data);
        Box::pin(async move {
            let now = meter.now.fetch_add(len, Ordering::SeqCst) + len;
            meter.peak.fetch_max(now, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(200)).await;
            let sent = sending.await;
            meter.now.fetch_sub(len, Ordering::SeqCst);
            sent
        })
    }

    async fn complete(&mut self) -> object_store::Result<PutResult> {
        self.inner.complete().await
    }

    async fn abort(&mut self) -> object_store::Result<()> {
        self.inner.abort().await
    }
}

#[async_trait::async_trait]
impl ObjectStore for Metered {
    async fn put_opts(&self, key: &Key, payload: PutPayload, opts: PutOptions) -> object_store::Result<PutResult> {
        self.inner.put_opts(key, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        key: &Key,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        let inner = self.inner.put_multipart_opts(key, opts).await?;
        Ok(Box::new(MeteredUpload { inner, meter: Arc::clone(&self.meter) }))
    }

    async fn get_opts(&self, key: &Key, options: GetOptions) -> object_store::Result<GetResult> {
        self.inner.get_opts(key, options).await
    }

    async fn get_ranges(&self, key: &Key, ranges: &[Range<u64>]) -> object_store::Result<Vec<Bytes>> {
        self.inner.get_ranges(key, ranges).await
    }

    fn delete_stream(
        &self,
        keys: BoxStream<'static, object_store::Result<Key>>,
    ) -> BoxStream<'static, object_store::Result<Key>> {
        self.inner.delete_stream(keys)
    }

    fn list(&self, prefix: Option<&Key>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Key>) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Key, to: &Key, options: CopyOptions) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Key, to: &Key, options: RenameOptions) -> object_store::Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

/// Serves `/blob/{n}` (`blobs[n]`) and `/slow` (`head` bytes of `blob(len, 0)`, then the rest
/// once `release` is notified).
async fn serve(
    blobs: Arc<Vec<Bytes>>,
    len: usize,
    head: usize,
    release: Arc<tokio::sync::Notify>,
) -> (String, tokio::task::JoinHandle<()>) {
    let blob_route = move |axum::extract::Path(n): axum::extract::Path<usize>| {
        let blobs = Arc::clone(&blobs);
        async move {
            Response::builder()
                .header("content-type", "video/mp4")
                .body(Body::from(blobs[n].clone()))
                .expect("response")
        }
    };
    let slow_route = move || {
        let release = Arc::clone(&release);
        async move {
            let all = Bytes::from(blob(len, 0));
            let (first, rest) = (all.slice(..head), all.slice(head..));
            let chunks = futures::stream::iter([0, 1]).then(move |i| {
                let (first, rest, release) = (first.clone(), rest.clone(), Arc::clone(&release));
                async move {
                    if i == 0 {
                        Ok::<Bytes, std::io::Error>(first)
                    } else {
                        release.notified().await;
                        Ok(rest)
                    }
                }
            });
            Response::builder()
                .header("content-type", "video/mp4")
                .header("content-length", len)
                .body(Body::from_stream(chunks))
                .expect("response")
        }
    };
    let app = axum::Router::new()
        .route("/blob/{n}", axum::routing::get(blob_route))
        .route("/slow", axum::routing::get(slow_route));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (base, task)
}

fn archiver(store: &Store) -> Archiver {
    let limits = ArchiveConfig { allowed_networks: vec!["127.0.0.1".to_owned()], ..ArchiveConfig::default() };
    Archiver::with_config(store.clone(), Duration::from_secs(30), &limits).expect("archiver")
}

/// Twelve downloads at once, each wanting 2 parts of 5 MiB in flight plus one filling (15 MiB,
/// 180 MiB together), share the default budget: the store never receives more than it at once,
/// and every object arrives whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_multipart_uploads_stay_within_the_shared_byte_budget() {
    const LEN: usize = 4 * 5 * MIB + 123;
    let meter = Arc::new(Meter::default());
    let backend = Arc::new(Metered { inner: InMemory::new(), meter: Arc::clone(&meter) });
    let store = Store::from_backend(backend, "memory://metered").with_upload(UploadSettings {
        part_size: 5 * MIB,
        max_concurrent_parts: 2,
        sha256_metadata: true,
    });
    let blobs: Arc<Vec<Bytes>> = Arc::new((0..12).map(|n| Bytes::from(blob(LEN, n))).collect());
    let (base, server) = serve(Arc::clone(&blobs), LEN, 0, Arc::new(tokio::sync::Notify::new())).await;
    let archiver = archiver(&store);
    let downloads = (0..12usize).map(|n| {
        let (archiver, url) = (archiver.clone(), format!("{base}/blob/{n}"));
        tokio::spawn(async move {
            let key = Key::from(format!("2026/01/02/job-{n}/video.mp4"));
            archiver.fetch(&url, &key, "video/mp4").await.map(|stored| (n, key, stored))
        })
    });
    for download in futures::future::join_all(downloads).await {
        let (n, key, stored) = download.expect("join").expect("fetch");
        assert_eq!(stored.sha256, sha256_hex(&blobs[n]), "object {n}");
        let got = store.backend().get(&key).await.expect("get").bytes().await.expect("bytes");
        assert_eq!(got.len(), LEN, "object {n} is whole");
    }
    server.abort();
    let peak = meter.peak.load(Ordering::SeqCst);
    assert!(peak > 0, "parts were sent");
    assert!(
        peak <= DEFAULT_MAX_BYTES_IN_FLIGHT,
        "{} MiB of parts were in flight at once; the budget is {} MiB",
        peak / MIB,
        DEFAULT_MAX_BYTES_IN_FLIGHT / MIB
    );
}

/// On the local store a download goes into its staging file as it arrives: with 3 MiB received
/// and the rest held back by the server, at least 2 MiB are already in the file (a multipart
/// part of 16 MiB would hold them all in memory).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_store_streams_into_the_staging_file_as_bytes_arrive() {
    const LEN: usize = 6 * MIB;
    let dir = tempfile::tempdir().expect("tempdir");
    let config = StorageConfig { url: format!("file://{}", dir.path().display()), ..StorageConfig::default() };
    let store = Store::open(&config).expect("store");
    let release = Arc::new(tokio::sync::Notify::new());
    let (base, server) = serve(Arc::new(Vec::new()), LEN, 3 * MIB, Arc::clone(&release)).await;
    let archiver = archiver(&store);
    let key = Key::from("2026/01/02/job-slow/video.mp4");
    let fetch = tokio::spawn({
        let (archiver, key, url) = (archiver.clone(), key.clone(), format!("{base}/slow"));
        async move { archiver.fetch(&url, &key, "video/mp4").await }
    });
    let staging = dir.path().join(STAGING);
    let staged_bytes = || -> u64 {
        std::fs::read_dir(&staging)
            .map(|entries| entries.filter_map(|e| e.ok()?.metadata().ok()).map(|m| m.len()).sum())
            .unwrap_or(0)
    };
    let mut on_disk = 0;
    for _ in 0..500 {
        on_disk = staged_bytes();
        if on_disk >= 2 * MIB as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    release.notify_one();
    let stored = fetch.await.expect("join").expect("fetch");
    server.abort();
    assert!(on_disk >= 2 * MIB as u64, "only {on_disk} of the 3 MiB received were in the staging file");
    assert_eq!(stored.sha256, sha256_hex(&blob(LEN, 0)));
    assert_eq!(std::fs::read(dir.path().join(key.as_ref())).expect("read").len(), LEN);
}

/// A budget of a single part still lets every download finish (one part at a time, never two),
/// because no download waits for room while holding a buffer it has not sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_of_one_part_serialises_parts_without_deadlock() {
    const LEN: usize = 3 * 5 * MIB + 1;
    let meter = Arc::new(Meter::default());
    let backend = Arc::new(Metered { inner: InMemory::new(), meter: Arc::clone(&meter) });
    let store = Store::from_backend(backend, "memory://metered")
        .with_upload(UploadSettings { part_size: 5 * MIB, max_concurrent_parts: 2, sha256_metadata: true })
        .with_budget(5 * MIB);
    let blobs: Arc<Vec<Bytes>> = Arc::new((0..4).map(|n| Bytes::from(blob(LEN, n))).collect());
    let (base, server) = serve(Arc::clone(&blobs), LEN, 0, Arc::new(tokio::sync::Notify::new())).await;
    let archiver = archiver(&store);
    let downloads = (0..4usize).map(|n| {
        let (archiver, url) = (archiver.clone(), format!("{base}/blob/{n}"));
        tokio::spawn(async move {
            let key = Key::from(format!("2026/01/03/job-{n}/video.mp4"));
            archiver.fetch(&url, &key, "video/mp4").await.map(|stored| (n, stored))
        })
    });
    let finished = tokio::time::timeout(Duration::from_secs(120), futures::future::join_all(downloads))
        .await
        .expect("every download finishes (no deadlock)");
    for download in finished {
        let (n, stored) = download.expect("join").expect("fetch");
        assert_eq!(stored.sha256, sha256_hex(&blobs[n]), "object {n}");
    }
    server.abort();
    assert_eq!(store.budget().available(), store.budget().total(), "every grant was given back");
    assert!(meter.peak.load(Ordering::SeqCst) <= 5 * MIB, "never more than one part in flight");
}
