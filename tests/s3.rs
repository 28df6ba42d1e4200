//! The real daemon archiving into a real S3-compatible server (moto): specs dropped → objects in
//! the bucket with the SHA-256 the platform served; `verify` and `export` against the bucket;
//! and a server outage in the middle of a run.

use std::time::Duration;

use futures::TryStreamExt as _;
use object_store::path::Path as Key;
use object_store::{ObjectStoreExt as _, PutPayload};
use serde_json::json;
use vidkeep::catalog::{AssetKind, JobRecord};
use vidkeep::config::StorageConfig;
use vidkeep::jobs::JobState;
use vidkeep::sim::SimConfig;
use vidkeep::store::{STAGING, Store};

use crate::support::s3::{ACCESS_KEY, Moto, SECRET_KEY};
use crate::support::{Env, fast_sim};

/// Reads a whole object back from the configured store.
async fn read(store: &Store, key: &str) -> Vec<u8> {
    store.backend().get(&Key::from(key)).await.expect("get").bytes().await.expect("body").to_vec()
}

/// Every job archived, each asset in the store hashing to what the simulator served.
async fn assert_in_store_as_served(env: &Env, store: &Store, jobs: &[JobRecord]) {
    for job in jobs {
        assert_eq!(job.state, JobState::Archived, "{} {:?}", job.spec_name, job.error);
        let task = env.sim.task(job.task_id.as_deref().expect("task id")).expect("task");
        let assets = env.assets(&job.id);
        assert_eq!(assets.len(), 2, "video and cover of {}", job.spec_name);
        for asset in assets {
            let (sha, len) = match asset.kind {
                AssetKind::Video => (&task.video_sha256, task.video_bytes),
                AssetKind::Cover => (&task.cover_sha256, task.cover_bytes),
            };
            assert_eq!((&asset.sha256, asset.bytes), (sha, len), "{} {:?}", job.spec_name, asset.kind);
            let stored = read(store, &asset.key).await;
            assert_eq!(&vidkeep::archive::sha256_hex(&stored), sha, "bytes in the bucket at {}", asset.key);
        }
    }
    let staging: Vec<_> = store.backend().list(Some(&Key::from(STAGING))).try_collect().await.expect("list");
    assert!(staging.is_empty(), "no staging object left: {staging:?}");
}

/// A moto server with `bucket` and an environment archiving into `url` on it, with `storage`
/// added to `[storage]`; `None` when the server is missing outside CI (the helper said so).
async fn bucket_env(sim: SimConfig, bucket: &str, url: &str, storage: &str) -> Option<(Moto, Env)> {
    let moto = Moto::start().await?;
    moto.create_bucket(bucket).await;
    let section = format!("{}{storage}", moto.storage_toml(url));
    let env = Env::with_storage(sim, "[defaults]\nmodel = \"viduq1-text\"\n", &section).await;
    Some((moto, env))
}

fn storage(env: &Env) -> Store {
    Store::open(&env.config.storage).expect("open the bucket")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn specs_are_archived_into_the_bucket_and_verified_there() {
    let Some((_moto, mut env)) = bucket_env(fast_sim(), "vidkeep-e2e", "s3://vidkeep-e2e/studio/archive", "").await
    else {
        return;
    };
    env.start();
    env.drop_spec("fox.json", &json!({"model":"viduq1-text","prompt":"a red fox in snow"}).to_string());
    env.drop_spec("harbour.txt", "a harbour at dawn\n");
    env.drop_spec("cog.json", &json!({"model":"cogvideox-3","prompt":"city at night"}).to_string());
    let jobs = env.wait_all_ended(3).await;
    env.stop().await;
    let store = storage(&env);
    assert_in_store_as_served(&env, &store, &jobs).await;

    // The bucket holds the objects under the prefix, each describing itself.
    let bucket = Store::open(&StorageConfig { url: "s3://vidkeep-e2e".to_owned(), ..env.config.storage.clone() })
        .expect("whole bucket");
    let all: Vec<String> =
        bucket.backend().list(None).map_ok(|m| m.location.to_string()).try_collect().await.expect("list");
    assert_eq!(all.len(), 9, "video, cover and sidecar per job: {all:#?}");
    assert!(all.iter().all(|k| k.starts_with("studio/archive/2")), "{all:#?}");
    let video = env.assets(&jobs[0].id).into_iter().find(|a| a.kind == AssetKind::Video).expect("video");
    let head = store
        .backend()
        .get_opts(&Key::from(video.key.as_str()), object_store::GetOptions { head: true, ..Default::default() })
        .await
        .expect("head");
    let meta = head.attributes.get(&object_store::Attribute::Metadata("sha256".into()));
    assert_eq!(meta.map(|v| v.as_ref()), Some(video.sha256.as_str()));
    let sidecar: serde_json::Value =
        serde_json::from_slice(&read(&store, &video.key.replace("video.mp4", "vidkeep.json")).await).expect("json");
    assert_eq!(sidecar["task_id"], jobs[0].task_id.as_deref().unwrap_or_default());

    // export: keys relative to the storage root (no bucket, no prefix), the same as locally.
    let export = env.cli(&["export"]);
    assert!(export.status.success(), "{}", String::from_utf8_lossy(&export.stderr));
    let exported: serde_json::Value = serde_json::from_slice(&export.stdout).expect("export json");
    for job in exported.as_array().expect("jobs") {
        for asset in job["assets"].as_array().expect("assets") {
            let key = asset["key"].as_str().expect("key");
            assert!(key.starts_with("20") && !key.contains("studio"), "relative key: {key}");
        }
    }

    // verify streams every object back from the bucket; then finds a changed one.
    let ok = env.cli(&["verify"]);
    let out = String::from_utf8_lossy(&ok.stdout).into_owned();
    assert!(ok.status.success() && out.contains("6 ok"), "{out}");
    let mut bytes = read(&store, &video.key).await;
    bytes[1000] ^= 1;
    store.backend().put(&Key::from(video.key.as_str()), PutPayload::from(bytes)).await.expect("tamper");
    let bad = env.cli(&["verify"]);
    let out = String::from_utf8_lossy(&bad.stdout).into_owned();
    assert_eq!(bad.status.code(), Some(1), "{out}");
    assert!(out.contains("MISMATCH") && out.contains(&video.key), "{out}");
    let all_output = [ok.stdout, ok.stderr, bad.stdout, bad.stderr, export.stderr].concat();
    let debug = format!("{store:?} {:?}", env.config);
    for text in [String::from_utf8_lossy(&all_output).into_owned(), debug] {
        assert!(!text.contains(SECRET_KEY) && !text.contains(ACCESS_KEY), "no credential shown: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_server_in_mid_run_loses_nothing_and_archiving_resumes() {
    // Videos of 12 MiB in 5 MiB parts: each upload is several requests, so the freeze lands
    // in the middle of uploads.
    let sim = SimConfig { video_bytes: Some(12 * 1024 * 1024), ..fast_sim() };
    let parts = "part_size = 5242880\n";
    let Some((moto, mut env)) = bucket_env(sim, "vidkeep-outage", "s3://vidkeep-outage/p", parts).await else { return };
    env.start();
    for i in 0..4 {
        env.drop_spec(&format!("clip-{i}.txt"), &format!("clip number {i}\n"));
    }
    env.wait_until("a download to start", |jobs| jobs.iter().any(|j| j.state == JobState::Downloading)).await;
    moto.pause();
    tokio::time::sleep(Duration::from_secs(6)).await;
    env.assert_daemon_alive().await;
    let during: Vec<_> = env.jobs().into_iter().filter(|j| j.state == JobState::Archived).map(|j| j.id).collect();
    moto.resume();
    let jobs = env.wait_all_ended(4).await;
    env.stop().await;
    let store = storage(&env);
    assert_in_store_as_served(&env, &store, &jobs).await;
    assert!(during.len() < 4, "the freeze happened while work was left: {during:?}");
    let ok = env.cli(&["verify"]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stdout));
    // The local fixture folder holds no archive: everything went to the bucket.
    assert!(!env.archive_dir().exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_upload_leaves_nothing_half_written_and_the_restart_cleans_up() {
    let sim = SimConfig { video_bytes: Some(24 * 1024 * 1024), ..fast_sim() };
    let parts = "part_size = 5242880\nmax_concurrent_parts = 1\n";
    let Some((_moto, mut env)) = bucket_env(sim, "vidkeep-crash", "s3://vidkeep-crash/c", parts).await else { return };
    env.start();
    for i in 0..3 {
        env.drop_spec(&format!("clip-{i}.txt"), &format!("clip number {i}\n"));
    }
    let store = storage(&env);
    // Kill the daemon as SIGKILL would (no abort, no cleanup) while uploads are under way.
    env.wait_until("a download to start", |jobs| jobs.iter().any(|j| j.state == JobState::Downloading)).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    env.crash().await;
    // Requests the killed daemon had already put on the wire still reach the server; a real
    // restart takes longer than this, and what lands after a start is cleaned at the next one.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let interrupted: Vec<JobRecord> = env.jobs().into_iter().filter(|j| j.state == JobState::Downloading).collect();
    assert!(!interrupted.is_empty(), "the crash interrupted a download");
    // What a kill in mid-upload leaves (uploads go straight to their final keys), made sure of:
    // an unfinished multipart upload under the folder of a job that is still downloading.
    let cut = &interrupted[0];
    let cut_key = Key::from(format!("{}/{}/video.mp4", vidkeep::time::date_path(cut.created_at), cut.id));
    let mut upload = store.backend().put_multipart(&cut_key).await.expect("start an upload");
    upload.put_part(PutPayload::from(vec![7u8; 5 * 1024 * 1024])).await.expect("a part");
    drop(upload);
    // Nothing half-written under a final key: every video there (recorded yet or not: a crash
    // can fall between storing and recording) is whole, with the bytes the platform served.
    let videos: Vec<String> = store
        .backend()
        .list(None)
        .map_ok(|m| m.location.to_string())
        .try_filter(|k| futures::future::ready(k.ends_with("/video.mp4")))
        .try_collect()
        .await
        .expect("list");
    for key in &videos {
        let job = env.jobs().into_iter().find(|j| key.contains(&j.id)).expect("a job of this key");
        let task = env.sim.task(job.task_id.as_deref().expect("task id")).expect("task");
        let stored = read(&store, key).await;
        assert_eq!(vidkeep::archive::sha256_hex(&stored), task.video_sha256, "{key} is whole");
    }

    env.start();
    let jobs = env.wait_all_ended(3).await;
    env.stop().await;
    assert_in_store_as_served(&env, &store, &jobs).await;
    assert_eq!(store.clean_staging(&[]).await.expect("clean"), 0, "the restart left no upload or staging object");
    // Uploads go straight to their final keys: the restart aborted what the kill cut short.
    for job in &jobs {
        let folder = Key::from(format!("{}/{}", vidkeep::time::date_path(job.created_at), job.id));
        assert_eq!(store.abort_unfinished(&folder).await.expect("list uploads"), 0, "an upload left under {folder}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_plays_and_downloads_from_the_bucket_with_range_requests() {
    let Some((_moto, mut env)) = bucket_env(fast_sim(), "vidkeep-ui", "s3://vidkeep-ui/lib", "").await else { return };
    let origin = env.start_serving(None).await;
    env.drop_spec("fox.txt", "a fox served from the bucket");
    let jobs = env.wait_all_ended(1).await;
    let video = env.assets(&jobs[0].id).into_iter().find(|a| a.kind == AssetKind::Video).expect("video");
    let stored = read(&storage(&env), &video.key).await;
    let http = reqwest::Client::new();
    let url = format!("{origin}/assets/{}", video.sha256);

    let part = http.get(&url).header("range", "bytes=1000-4999").send().await.expect("range");
    assert_eq!(part.status().as_u16(), 206);
    assert_eq!(part.headers()["content-range"], format!("bytes 1000-4999/{}", stored.len()).as_str());
    assert_eq!(part.bytes().await.expect("bytes").as_ref(), &stored[1000..5000], "the bytes from the bucket");
    let whole = http.get(format!("{url}?download=1")).send().await.expect("download");
    assert!(whole.headers()["content-disposition"].to_str().unwrap_or_default().starts_with("attachment"));
    assert_eq!(vidkeep::archive::sha256_hex(&whole.bytes().await.expect("bytes")), video.sha256);
    let past = http.get(&url).header("range", format!("bytes={}-", stored.len())).send().await.expect("416");
    assert_eq!(past.status().as_u16(), 416);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_sha256_metadata_uploads_go_straight_to_their_keys() {
    let direct = "sha256_metadata = false\n";
    let Some((_moto, mut env)) = bucket_env(fast_sim(), "vidkeep-direct", "s3://vidkeep-direct/a", direct).await else {
        return;
    };
    env.start();
    env.drop_spec("fox.txt", "a fox, published without a copy");
    let jobs = env.wait_all_ended(1).await;
    env.stop().await;
    let store = storage(&env);
    assert_in_store_as_served(&env, &store, &jobs).await;
    let video = env.assets(&jobs[0].id).into_iter().find(|a| a.kind == AssetKind::Video).expect("video");
    let head = store
        .backend()
        .get_opts(&Key::from(video.key.as_str()), object_store::GetOptions { head: true, ..Default::default() })
        .await
        .expect("head");
    assert!(head.attributes.get(&object_store::Attribute::Metadata("sha256".into())).is_none(), "no copy, no metadata");
    assert!(env.cli(&["verify"]).status.success(), "the catalogue's hash still verifies the object");
}

/// The server completes an upload, but its answer is lost on the way (a timeout while a slow
/// server assembles a large object, a connection reset): object_store retries the completion,
/// which a server whose completion is not idempotent answers `NoSuchUpload`. The object is whole
/// at its key with its SHA-256, so the upload succeeded: reporting it failed would fetch the
/// result again, or, once its URL has expired, lose a paid result that is safely stored. (moto,
/// still assembling a 4 GiB upload when object_store's old 30 s timeout retried it, answered so,
/// and every 4 GiB result failed.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_completed_by_the_server_is_archived_even_when_its_answer_is_lost() {
    use sha2::Digest as _;
    let Some(moto) = Moto::start().await else { return };
    moto.create_bucket("vidkeep-lost").await;
    let proxy = crate::support::s3::LoseFirstCompletion::start(&moto.endpoint).await;
    let spool = tempfile::tempdir().expect("spool dir");
    let config = StorageConfig {
        url: "s3://vidkeep-lost/a".to_owned(),
        endpoint: Some(proxy.endpoint.clone()),
        allow_http: true,
        part_size: 5 * 1024 * 1024,
        spool_dir: Some(spool.path().to_path_buf()),
        ..StorageConfig::default()
    };
    let store = Store::open(&config).expect("open the bucket");
    let bytes: Vec<u8> = (0..12 * 1024 * 1024_u32).map(|i| (i % 251) as u8).collect();
    let sha256: [u8; 32] = sha2::Sha256::digest(&bytes).into();
    let key = Key::from("clip/video.mp4");
    let mut upload = store.start_upload(&key, "video/mp4").await.expect("start");
    upload.write(&bytes).await.expect("write");
    upload.finish(&sha256).await.expect("the server made the object whole: the upload succeeded");
    assert_eq!((proxy.lost(), proxy.refused()), (1, 1), "the answer was lost, and the repeat refused");
    assert_eq!(read(&store, "clip/video.mp4").await, bytes);
}
