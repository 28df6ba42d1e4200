//! Custody of paid output: the bytes are on the disk before the catalogue says they are kept.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::json;
use vidkeep::store::{Durability, Fsync};

use vidkeep::jobs::JobState;

use crate::support::Env;

/// One flush, with what the catalogue said at that moment.
#[derive(Debug, Clone)]
struct Flush {
    /// `file` or `dir`.
    what: &'static str,
    /// The path relative to the storage root (`""` for the root).
    path: String,
    /// Assets recorded in the catalogue when the flush ran.
    assets: Vec<String>,
    /// The job's state when the flush ran.
    state: String,
}

/// Really fsyncs, and records each call with a look at the catalogue (a second connection to
/// the real SQLite file) taken at that moment.
struct Recorder {
    root: PathBuf,
    catalog: PathBuf,
    flushes: Mutex<Vec<Flush>>,
}

impl Recorder {
    fn record(&self, what: &'static str, path: &Path) {
        let c = rusqlite::Connection::open_with_flags(&self.catalog, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("catalogue");
        let mut q = c.prepare("SELECT key FROM assets ORDER BY key").expect("query");
        let assets = q.query_map([], |r| r.get(0)).expect("assets").map(|k| k.expect("key")).collect();
        let state = c.query_row("SELECT state FROM jobs", [], |r| r.get(0)).unwrap_or_default();
        let path = path.strip_prefix(&self.root).expect("under the root").to_string_lossy().into_owned();
        self.flushes.lock().expect("lock").push(Flush { what, path, assets, state });
    }
}

impl Durability for Recorder {
    fn sync_file(&self, path: &Path) -> std::io::Result<()> {
        self.record("file", path);
        Fsync.sync_file(path)
    }

    fn sync_dir(&self, path: &Path) -> std::io::Result<()> {
        self.record("dir", path);
        Fsync.sync_dir(path)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_store_fsyncs_file_then_folders_before_the_catalogue_records_them() {
    let mut env = Env::default().await;
    let root = env.archive_dir().canonicalize().unwrap_or_else(|_| env.archive_dir());
    let recorder = Arc::new(Recorder { root, catalog: env.config.catalog.path.clone(), flushes: Mutex::default() });
    env.start_with_durability(Arc::clone(&recorder) as Arc<dyn Durability>);
    env.drop_spec("fox.json", &json!({"model":"viduq1-text","prompt":"a fox"}).to_string());
    let jobs = env.wait_all_ended(1).await;
    env.stop().await;
    let job = &jobs[0];
    assert_eq!(job.state, vidkeep::jobs::JobState::Archived);
    let assets = env.assets(&job.id);
    let video = assets.iter().find(|a| a.kind == vidkeep::catalog::AssetKind::Video).expect("video");
    let folder = video.key.strip_suffix("/video.mp4").expect("job folder").to_owned();
    let flushes = recorder.flushes.lock().expect("lock").clone();
    let seq: Vec<(&str, &str)> = flushes.iter().map(|f| (f.what, f.path.as_str())).collect();

    // Each published file: its staged bytes, then its folder. The first also flushes every
    // folder above, up to the root: each is new, and its entry lives in its parent. After that
    // the job folder's entry is known to be on the disk, and only the folder itself changes.
    let mut ancestors: Vec<String> = Vec::new();
    let mut f = Some(Path::new(&folder));
    while let Some(p) = f {
        ancestors.push(p.to_string_lossy().into_owned());
        f = p.parent();
    }
    let mut at = 0;
    for (i, asset) in assets.iter().enumerate() {
        let staged = flushes[at..].iter().position(|f| f.what == "file" && f.path.starts_with(".staging/"));
        let start =
            at + staged.unwrap_or_else(|| panic!("asset {i} ({}): no staged file flushed in {seq:?}", asset.key));
        let dirs = if i == 0 { &ancestors[..] } else { &ancestors[..1] };
        for (k, dir) in dirs.iter().enumerate() {
            assert_eq!(seq[start + 1 + k], ("dir", dir.as_str()), "folders after the staged file: {seq:?}");
        }
        // The asset this flush belongs to is not yet in the catalogue.
        for f in &flushes[start..=start + dirs.len()] {
            assert!(
                f.assets.len() == i,
                "{} flushed with {} asset(s) already recorded: {seq:?}",
                f.path,
                f.assets.len()
            );
        }
        at = start + 1 + dirs.len();
    }
    // Then the sidecar and its folder, all before the job is archived.
    let sidecar = format!("{folder}/vidkeep.json");
    assert_eq!(seq[at], ("file", sidecar.as_str()), "{seq:?}");
    assert_eq!(seq[at + 1], ("dir", folder.as_str()), "{seq:?}");
    assert!(flushes.iter().all(|f| f.state != "archived"), "a flush ran after `archived`: {flushes:?}");
    assert_eq!(seq.len(), at + 2, "nothing else flushed: {seq:?}");
}

/// Runs one Vidu Q1 job with the simulator serving `clip`, and returns its video asset and the
/// report and `show` output of the job.
async fn archive_with_clip(clip: Option<&[u8]>) -> (vidkeep::catalog::Asset, serde_json::Value, String) {
    let clips = tempfile::tempdir().expect("tempdir");
    let clip_file = clip.map(|bytes| {
        let path = clips.path().join("clip.mp4");
        std::fs::write(&path, bytes).expect("write clip");
        path
    });
    let sim = vidkeep::sim::SimConfig { clip_file, ..crate::support::fast_sim() };
    let mut env = Env::new(sim, "", "").await;
    env.start();
    env.drop_spec("fox.json", &json!({"model":"viduq1-text","prompt":"a fox"}).to_string());
    let jobs = env.wait_all_ended(1).await;
    env.stop().await;
    let job = &jobs[0];
    let video = env.assets(&job.id).into_iter().find(|a| a.kind == vidkeep::catalog::AssetKind::Video).expect("video");
    // The asset is kept either way; a finding makes the job archived_with_warnings, with the
    // finding as its error, in the report and in show.
    let findings = video.probe.as_ref().is_some_and(|p| !p.ok());
    let want = if findings { JobState::ArchivedWithWarnings } else { JobState::Archived };
    assert_eq!(job.state, want, "{:?}", job.error);
    if findings {
        assert_eq!(job.error.as_ref().map(|e| e.code.as_str()), Some("probe-mismatch"));
    }
    let report = env.report("done", &job.spec_name);
    let show = env.cli(&["show", &job.id]);
    assert!(show.status.success(), "{}", String::from_utf8_lossy(&show.stderr));
    (video, report, String::from_utf8_lossy(&show.stdout).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bundled_clip_passes_the_probe_and_its_figures_are_recorded() {
    let (video, report, show) = archive_with_clip(None).await;
    let probe = video.probe.expect("probed");
    assert!(probe.findings.is_empty(), "{probe:?}");
    let f = probe.figures.expect("figures");
    assert_eq!((f.width, f.height, f.codec.as_str()), (1920, 1080, "avc1"));
    assert!((f.duration_s - 5.0).abs() < 0.01 && (f.fps - 24.0).abs() < 0.01, "{f:?}");
    assert_eq!(report["assets"][0]["probe"]["figures"]["width"], 1920, "{report}");
    assert!(show.contains("probe   5.000 s, 24.000 fps, 1920x1080, avc1"), "{show}");
    assert!(!show.contains("WARNING"), "{show}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_clip_is_kept_with_the_finding_in_the_catalogue_report_and_show() {
    let vidu2 = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/sim/clip-vidu2.mp4")).expect("clip");
    let (video, report, show) = archive_with_clip(Some(&vidu2)).await;
    let probe = video.probe.expect("probed");
    assert_eq!(
        probe.findings,
        ["duration is 4.000 s, the model promises 5 s", "resolution is 1280x720, the model promises 1920x1080"]
    );
    assert_eq!(report["assets"][0]["probe"]["findings"][1], "resolution is 1280x720, the model promises 1920x1080");
    assert!(show.contains("WARNING resolution is 1280x720, the model promises 1920x1080"), "{show}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_clip_is_kept_with_the_finding() {
    let q1 = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/sim/clip.mp4")).expect("clip");
    let (video, _report, show) = archive_with_clip(Some(&q1[..q1.len() * 2 / 3])).await;
    let probe = video.probe.expect("probed");
    assert!(probe.figures.is_none(), "{probe:?}");
    assert!(probe.findings[0].starts_with("the MP4 is truncated"), "{probe:?}");
    assert!(show.contains("WARNING the MP4 is truncated"), "{show}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sidecar_and_show_carry_the_chain_and_inputs_are_kept_once_by_hash() {
    use sha2::Digest as _;
    let mut env = Env::default().await;
    env.copy_example("lantern-first.png");
    env.copy_example("lantern-last.png");
    env.start();
    let spec = json!({"model":"viduq1-start-end","image_url":["lantern-first.png","lantern-last.png"]}).to_string();
    env.drop_spec("a.json", &spec);
    env.drop_spec("b.toml", "model = \"viduq1-image\"\nimage_url = \"lantern-first.png\"\n");
    let jobs = env.wait_all_ended(2).await;
    env.stop().await;
    let hex = |b: &[u8]| sha2::Sha256::digest(b).iter().map(|x| format!("{x:02x}")).collect::<String>();
    let first = hex(&std::fs::read(env.inbox().join("lantern-first.png")).expect("png"));
    let last = hex(&std::fs::read(env.inbox().join("lantern-last.png")).expect("png"));
    let job = jobs.iter().find(|j| j.spec_name == "a.json").expect("job a");
    let video = env.assets(&job.id).into_iter().find(|a| a.kind == vidkeep::catalog::AssetKind::Video).expect("video");
    let sidecar_path = env.archive_dir().join(video.key.replace("video.mp4", "vidkeep.json"));
    let sidecar: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sidecar_path).expect("sidecar")).expect("json");
    let chain = &sidecar["provenance"];
    assert_eq!(chain["spec_sha256"], hex(spec.as_bytes()));
    assert_eq!(chain["fingerprint"], job.fingerprint.as_str());
    assert_eq!(chain["request_id"], job.request_id.as_deref().unwrap_or_default());
    assert_eq!(chain["task_id"], job.task_id.as_deref().unwrap_or_default());
    assert_eq!(chain["video_sha256"], video.sha256.as_str());
    let keys: Vec<&str> =
        chain["inputs"].as_array().expect("inputs").iter().filter_map(|i| i["key"].as_str()).collect();
    assert_eq!(keys, [format!("inputs/{first}.png"), format!("inputs/{last}.png")]);
    for (key, sha) in keys.iter().zip([&first, &last]) {
        assert_eq!(&crate::support::sha256_file(&env.archive_dir().join(key)), sha, "{key} holds the image");
    }
    // Both jobs used lantern-first.png: it is stored once.
    assert_eq!(std::fs::read_dir(env.archive_dir().join("inputs")).expect("inputs").count(), 2);
    let show = env.cli(&["show", &job.id]);
    let show = String::from_utf8_lossy(&show.stdout);
    assert!(show.contains(&format!("chain     spec sha256 {}", hex(spec.as_bytes()))), "{show}");
    assert!(show.contains(&format!("-> video sha256 {}", video.sha256)), "{show}");
    assert!(show.contains(&format!("inputs/{last}.png")), "{show}");
}
