//! One storage conformance suite, run against every backend vidkeep supports: the local file
//! store in a temp folder, `InMemory`, and a real S3-compatible server (moto) with a key prefix.
//! Every case drives the real [`Archiver`] (HTTP download → SHA-256 → multipart → publish).

use std::time::Duration;

use axum::body::Body;
use axum::extract::Path as UrlPath;
use axum::response::Response;
use futures::TryStreamExt as _;
use object_store::path::Path as Key;
use object_store::{ObjectStoreExt as _, PutPayload};
use vidkeep::archive::{ArchiveError, Archiver, Check, sha256_hex, verify_object};
use vidkeep::config::StorageConfig;
use vidkeep::store::{STAGING, Store, UploadSettings};

use crate::support::s3::Moto;

const MIB: usize = 1024 * 1024;

/// Deterministic, non-repeating-ish bytes.
fn blob(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u64).wrapping_mul(2_654_435_761).to_le_bytes()[3]).collect()
}

/// A loopback HTTP server with `/blob/{len}` (the bytes of [`blob`]) and `/cut/{len}` (announces
/// `len` bytes, sends half, then breaks the connection).
struct Blobs {
    base: String,
    task: tokio::task::JoinHandle<()>,
}

impl Blobs {
    async fn start() -> Blobs {
        async fn whole(UrlPath(len): UrlPath<usize>) -> Response {
            Response::builder().header("content-type", "video/mp4").body(Body::from(blob(len))).expect("response")
        }
        async fn cut(UrlPath(len): UrlPath<usize>) -> Response {
            let half = blob(len / 2);
            let chunks: Vec<Result<bytes::Bytes, std::io::Error>> =
                vec![Ok(half.into()), Err(std::io::Error::other("connection cut"))];
            Response::builder()
                .header("content-type", "video/mp4")
                .header("content-length", len)
                .body(Body::from_stream(futures::stream::iter(chunks)))
                .expect("response")
        }
        let app = axum::Router::new()
            .route("/blob/{len}", axum::routing::get(whole))
            .route("/cut/{len}", axum::routing::get(cut));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Blobs { base, task }
    }

    fn url(&self, route: &str, len: usize) -> String {
        format!("{}/{route}/{len}", self.base)
    }
}

impl Drop for Blobs {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Small parts, so a few MiB make several parts and exercise `wait_for_capacity`.
fn small_parts(store: Store) -> Store {
    store.with_upload(UploadSettings { part_size: 5 * MIB, max_concurrent_parts: 2, sha256_metadata: true })
}

async fn archiver(store: &Store) -> Archiver {
    let limits = vidkeep::config::ArchiveConfig {
        allowed_networks: vec!["127.0.0.1".to_owned()],
        ..vidkeep::config::ArchiveConfig::default()
    };
    Archiver::with_config(store.clone(), Duration::from_secs(30), &limits).expect("archiver")
}

async fn staging_is_empty(store: &Store) -> bool {
    let staging = Key::from(STAGING);
    let left: Vec<_> = store.backend().list(Some(&staging)).try_collect().await.expect("list staging");
    left.is_empty()
}

/// Streams objects of 0 B, 1 KiB and 12 MiB (3 parts) and reads them back whole.
async fn round_trip_with_hash(store: &Store) {
    let (blobs, archiver) = (Blobs::start().await, archiver(store).await);
    for len in [0, 1024, 12 * MIB + 7] {
        let key = Key::from(format!("2026/01/02/job-{len}/video.mp4"));
        let stored = archiver.fetch(&blobs.url("blob", len), &key, "video/mp4").await.expect("fetch");
        let want = blob(len);
        assert_eq!(stored.sha256, sha256_hex(&want), "{len} bytes");
        assert_eq!(stored.bytes, len as u64);
        assert_eq!(stored.content_type, "video/mp4");
        let got = store.backend().get(&key).await.expect("get").bytes().await.expect("body");
        assert!(got == want, "stored bytes of {len}");
        assert_eq!(verify_object(store, &key, &stored.sha256, stored.bytes).await.expect("verify"), Check::Ok);
        if store.is_s3() {
            // The bucket describes itself: sha256 and type are the object's own metadata.
            let head = store
                .backend()
                .get_opts(&key, object_store::GetOptions { head: true, ..Default::default() })
                .await
                .expect("head");
            let meta = head.attributes.get(&object_store::Attribute::Metadata("sha256".into()));
            assert_eq!(meta.map(|v| v.as_ref()), Some(stored.sha256.as_str()), "x-amz-meta-sha256 of {key}");
            let ct = head.attributes.get(&object_store::Attribute::ContentType);
            assert_eq!(ct.map(|v| v.as_ref()), Some("video/mp4"));
        }
    }
    assert!(staging_is_empty(store).await, "publishing removes the staging objects");
}

/// A download cut short leaves nothing under the final key, and no staging object.
async fn interrupted_upload_leaves_nothing(store: &Store) {
    let (blobs, archiver) = (Blobs::start().await, archiver(store).await);
    let key = Key::from("2026/01/02/job-cut/video.mp4");
    let err = archiver.fetch(&blobs.url("cut", 12 * MIB), &key, "video/mp4").await.expect_err("cut short");
    assert!(matches!(err, ArchiveError::Network(_) | ArchiveError::Truncated { .. }), "{err}");
    let head = store.backend().head(&key).await;
    assert!(matches!(head, Err(object_store::Error::NotFound { .. })), "nothing under the final key: {head:?}");
    assert!(staging_is_empty(store).await, "no staging object left");
}

/// `verify` finds a changed object and a missing one.
async fn verify_detects_mismatch_and_missing(store: &Store) {
    let (blobs, archiver) = (Blobs::start().await, archiver(store).await);
    let key = Key::from("2026/01/02/job-v/video.mp4");
    let stored = archiver.fetch(&blobs.url("blob", 4096), &key, "video/mp4").await.expect("fetch");
    let mut changed = blob(4096);
    changed[100] ^= 1;
    store.backend().put(&key, PutPayload::from(changed.clone())).await.expect("overwrite");
    let check = verify_object(store, &key, &stored.sha256, stored.bytes).await.expect("verify");
    assert_eq!(check, Check::Mismatch { sha256: sha256_hex(&changed), bytes: 4096 });
    store.backend().delete(&key).await.expect("delete");
    assert_eq!(verify_object(store, &key, &stored.sha256, stored.bytes).await.expect("verify"), Check::Missing);
}

/// Keys are relative to the storage root: listing the store shows exactly the key written.
async fn keys_are_relative_to_the_root(store: &Store) {
    let (blobs, archiver) = (Blobs::start().await, archiver(store).await);
    let key = Key::from("2026/03/04/job-k/cover.jpg");
    archiver.fetch(&blobs.url("blob", 10), &key, "image/jpeg").await.expect("fetch");
    archiver.put_small(&Key::from("2026/03/04/job-k/vidkeep.json"), b"{}".to_vec()).await.expect("sidecar");
    let listed: Vec<String> = store
        .backend()
        .list(Some(&Key::from("2026/03/04")))
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .expect("list");
    let mut listed = listed;
    listed.sort();
    assert_eq!(listed, ["2026/03/04/job-k/cover.jpg", "2026/03/04/job-k/vidkeep.json"]);
}

/// Range reads return exactly the bytes asked for (HTTP Range requests on S3).
async fn range_reads(store: &Store) {
    let (blobs, archiver) = (Blobs::start().await, archiver(store).await);
    let key = Key::from("2026/01/02/job-r/video.mp4");
    let len = 6 * MIB + 5;
    archiver.fetch(&blobs.url("blob", len), &key, "video/mp4").await.expect("fetch");
    let want = blob(len);
    for range in [0..1, 1000..2000, (5 * MIB - 3) as u64..(5 * MIB + 3) as u64, (len - 5) as u64..len as u64] {
        let got = store.read_range(&key, range.clone()).await.expect("range");
        assert_eq!(&got[..], &want[range.start as usize..range.end as usize], "{range:?}");
    }
}

/// What a crash leaves in staging (objects and, on S3, unfinished multipart uploads) is removed.
async fn staging_cleanup(store: &Store) {
    let backend = store.backend();
    backend.put(&store.staging_key(), PutPayload::from(vec![1u8; 10])).await.expect("leftover object");
    let mut upload = backend.put_multipart(&store.staging_key()).await.expect("start upload");
    upload.put_part(PutPayload::from(vec![2u8; 5 * MIB])).await.expect("part");
    drop(upload); // as after a crash: neither completed nor aborted
    let kept = Key::from("2026/05/06/job-s/video.mp4");
    backend.put(&kept, PutPayload::from(vec![3u8; 10])).await.expect("a real object");
    let removed = store.clean_staging(&[]).await.expect("clean");
    assert!(removed >= 1, "removed {removed}");
    assert!(staging_is_empty(store).await);
    assert_eq!(store.clean_staging(&[]).await.expect("clean again"), 0, "nothing left, not even an upload");
    backend.head(&kept).await.expect("objects outside staging are kept");
}

/// Several daemons may share a storage root: a start cleans its own staging area and loose
/// leftovers directly under `.staging/`, never another daemon's uploads in flight.
async fn staging_areas_are_per_daemon(store: &Store) {
    let owned = |id: &str| store.clone().with_staging_owner(vidkeep::domain::DaemonId::parse(id).expect("id"));
    let (me, other) = (owned("render-01-aa"), owned("render-02-bb"));
    let backend = store.backend();
    assert!(me.staging_key().as_ref().starts_with(".staging/render-01-aa/"), "{}", me.staging_key());
    backend.put(&me.staging_key(), PutPayload::from(vec![1u8; 10])).await.expect("my leftover");
    backend.put(&store.staging_key(), PutPayload::from(vec![1u8; 10])).await.expect("a loose leftover");
    let theirs = other.staging_key();
    backend.put(&theirs, PutPayload::from(vec![4u8; 10])).await.expect("their upload in flight");
    let mut upload = backend.put_multipart(&other.staging_key()).await.expect("their multipart upload");
    upload.put_part(PutPayload::from(vec![2u8; 5 * MIB])).await.expect("part");
    let their_multipart = store.is_s3();
    if !their_multipart {
        drop(upload);
    }
    assert_eq!(me.clean_staging(&[]).await.expect("clean mine"), 2, "mine and the loose one");
    backend.head(&theirs).await.expect("another daemon's staged object is kept");
    // Once the other daemon's lease on a shared catalogue is long gone, a start cleans its area too.
    let lapsed = [vidkeep::domain::DaemonId::parse("render-02-bb").expect("id")];
    let removed = me.clean_staging(&lapsed).await.expect("clean theirs");
    assert_eq!(removed, if their_multipart { 2 } else { 1 }, "their object (and on S3 their unfinished upload)");
    drop(other);
    assert!(staging_is_empty(store).await);
}

/// On S3 uploads go straight to their final keys: the daemon aborts what a stop left unfinished
/// under the folder of a job it downloads again, and only there.
async fn unfinished_uploads_in_a_jobs_folder_are_aborted(store: &Store) {
    let backend = store.backend();
    let mut cut = backend.put_multipart(&Key::from("2026/05/06/job-u/video.mp4")).await.expect("start upload");
    cut.put_part(PutPayload::from(vec![2u8; 5 * MIB])).await.expect("part");
    let mut other = backend.put_multipart(&Key::from("2026/05/06/job-v/video.mp4")).await.expect("start upload");
    other.put_part(PutPayload::from(vec![3u8; 5 * MIB])).await.expect("part");
    let pending = usize::from(store.is_s3());
    assert_eq!(store.abort_unfinished(&Key::from("2026/05/06/job-u")).await.expect("abort"), pending);
    assert_eq!(store.abort_unfinished(&Key::from("2026/05/06/job-u")).await.expect("again"), 0, "it is gone");
    assert_eq!(store.abort_unfinished(&Key::from("2026/05/06/job-v")).await.expect("other"), pending, "untouched");
    drop((cut, other));
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod local {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let dir = tempfile::tempdir().expect("tempdir");
                let url = url::Url::from_directory_path(dir.path()).expect("url").to_string();
                let store = super::small_parts(
                    super::Store::open(&super::StorageConfig { url, ..Default::default() }).expect("open"),
                );
                super::$case(&store).await;
            })*
        }
        mod memory {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let backend = std::sync::Arc::new(object_store::memory::InMemory::new());
                let store = super::small_parts(super::Store::from_backend(backend, "memory://"));
                super::$case(&store).await;
            })*
        }
        mod s3 {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let Some(moto) = super::Moto::start().await else { return };
                moto.create_bucket("vidkeep-conformance").await;
                let store = super::s3_store(&moto, "s3://vidkeep-conformance/studio/archive");
                super::$case(&store).await;
            })*
        }
    };
}

/// A store on moto with small parts.
fn s3_store(moto: &Moto, url: &str) -> Store {
    let config = StorageConfig {
        url: url.to_owned(),
        endpoint: Some(moto.endpoint.clone()),
        allow_http: true,
        ..StorageConfig::default()
    };
    small_parts(Store::open(&config).expect("open s3"))
}

conformance!(
    round_trip_with_hash,
    interrupted_upload_leaves_nothing,
    verify_detects_mismatch_and_missing,
    keys_are_relative_to_the_root,
    range_reads,
    staging_cleanup,
    staging_areas_are_per_daemon,
    unfinished_uploads_in_a_jobs_folder_are_aborted,
);

/// On S3, the prefix is where the objects really are, and nothing escapes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_objects_live_under_the_prefix() {
    let Some(moto) = Moto::start().await else { return };
    moto.create_bucket("vidkeep-prefix").await;
    let store = s3_store(&moto, "s3://vidkeep-prefix/a/b");
    let blobs = Blobs::start().await;
    let key = Key::from("2026/01/02/job-p/video.mp4");
    archiver(&store).await.fetch(&blobs.url("blob", 100), &key, "video/mp4").await.expect("fetch");
    let whole_bucket = s3_store(&moto, "s3://vidkeep-prefix");
    let all: Vec<String> =
        whole_bucket.backend().list(None).map_ok(|m| m.location.to_string()).try_collect().await.expect("list");
    assert_eq!(all, ["a/b/2026/01/02/job-p/video.mp4"]);
}
