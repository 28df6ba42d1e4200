//! The inbox: bad specs never reach the platform; half-written files are not taken early.

use std::io::Write as _;
use std::time::Duration;

use serde_json::json;
use vidkeep::jobs::JobState;

use crate::support::Env;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_specs_land_in_failed_with_reports_and_are_never_submitted() {
    let mut env = Env::new(crate::support::fast_sim(), "", "").await;
    env.start();
    env.drop_spec("broken.json", "{\"model\": \"viduq1-text\", \"prompt\": ");
    env.drop_spec("unknown-model.json", &json!({"model":"viduq9-text","prompt":"x"}).to_string());
    env.drop_spec("no-prompt.json", &json!({"model":"viduq1-text","style":"anime"}).to_string());
    env.drop_spec("no-model.txt", "a prompt but no default model in the config");
    env.drop_spec("empty.txt", "  \n");
    let rejections = env.wait_rejections(5).await;
    for (spec, code, words) in [
        ("broken.json", "spec-syntax", "not valid JSON"),
        ("unknown-model.json", "spec-unknown-model", "unknown model `viduq9-text`"),
        ("no-prompt.json", "spec-invalid", "`prompt` is required"),
        ("no-model.txt", "spec-invalid", "[defaults]"),
        ("empty.txt", "spec-empty", "empty"),
    ] {
        assert!(rejections.iter().any(|r| r.spec_name == spec && r.error_code == code), "{spec}: {rejections:?}");
        let report = env.report("failed", spec);
        assert_eq!(report["state"], "rejected");
        assert_eq!(report["submitted"], false);
        let message = report["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(words), "{spec}: {message}");
        assert!(env.inbox().join("failed").join(spec).exists(), "{spec} moved to failed/");
    }
    let stats = env.sim.stats();
    assert_eq!(stats.accepted, 0);
    assert!(stats.refused.is_empty(), "nothing reached the platform: {:?}", stats.refused);
    assert!(env.jobs().is_empty());

    // The daemon is still up and takes the next good spec.
    env.drop_spec("good.json", &json!({"model":"viduq1-text","prompt":"a fox"}).to_string());
    let jobs = env.wait_all_ended(1).await;
    assert_eq!(jobs[0].state, JobState::Archived);
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_growing_file_is_not_taken_until_it_is_quiet() {
    let mut env = Env::with_quiet(crate::support::fast_sim(), "", "[defaults]\nmodel = \"viduq1-text\"\n", "1s").await;
    env.start();
    let path = env.inbox().join("slow.json");
    let mut file = std::fs::File::create(&path).expect("create");
    let body =
        json!({"model":"viduq1-text","prompt":"a slowly written prompt about a lighthouse in a storm"}).to_string();
    // Written a few bytes at a time for ~2.4 s, much longer than the 1 s quiet period, with
    // pauses well below it: the file is invalid JSON until the last byte.
    let chunks: Vec<&[u8]> = body.as_bytes().chunks(body.len() / 12 + 1).collect();
    for chunk in chunks {
        file.write_all(chunk).expect("write");
        file.flush().expect("flush");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(env.jobs().is_empty() && env.rejections().is_empty(), "taken while still being written");
    }
    drop(file);
    let jobs = env.wait_all_ended(1).await;
    assert_eq!(jobs[0].state, JobState::Archived, "{:?}", jobs[0].error);
    assert!(env.rejections().is_empty(), "never seen half-written");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignored_names_and_images_are_left_alone() {
    let mut env = Env::default().await;
    env.start();
    for name in [".hidden.json", "draft.json.tmp", "upload.json.part", "backup.json~", "notes.md"] {
        std::fs::write(env.inbox().join(name), "{}").expect("write");
    }
    env.copy_example("lantern-first.png");
    env.drop_spec("real.txt", "a real prompt");
    env.wait_all_ended(1).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(env.jobs().len(), 1);
    assert!(env.rejections().is_empty());
    for name in [".hidden.json", "draft.json.tmp", "upload.json.part", "backup.json~", "notes.md", "lantern-first.png"]
    {
        assert!(env.inbox().join(name).exists(), "{name} left in place");
    }
    env.stop().await;
}

/// The same request dropped again (another file name, another format) is not paid for again: it
/// goes to done/ with a report naming the job that has it. `vidkeep.force` makes one more, and
/// `vidkeep.takes = 3` makes three takes, one charge each, grouped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_request_is_paid_once_unless_a_take_is_asked_for() {
    let mut env = Env::default().await;
    env.start();
    env.drop_spec("fox.txt", "a fox in the snow");
    let first = env.wait_all_ended(1).await.remove(0);
    assert_eq!(first.state, JobState::Archived);

    env.drop_spec("fox-again.json", &json!({"prompt":"a fox in the snow","model":"viduq1-text"}).to_string());
    let done = env.inbox().join("done").join("fox-again.json");
    for _ in 0..200 {
        if done.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let report = env.report("done", "fox-again.json");
    assert_eq!(report["state"], "already-paid", "{report}");
    assert_eq!(report["submitted"], false);
    assert_eq!(report["existing_job"], first.id.as_str());
    assert_eq!(report["assets"].as_array().map(Vec::len), Some(2), "names the video and cover it has");
    assert!(report["next_step"].as_str().unwrap_or_default().contains("vidkeep.takes"), "{report}");
    assert_eq!(env.jobs().len(), 1);
    assert_eq!(env.sim.stats().accepted, 1, "not paid again");

    let forced = json!({"model":"viduq1-text","prompt":"a fox in the snow","vidkeep":{"force":true}});
    env.drop_spec("fox-forced.json", &forced.to_string());
    env.wait_all_ended(2).await;
    assert_eq!(env.sim.stats().accepted, 2, "force makes one more");

    let takes = json!({"model":"viduq1-text","prompt":"a hare at dusk","vidkeep":{"takes":3}});
    env.drop_spec("hare.json", &takes.to_string());
    let jobs = env.wait_all_ended(5).await;
    assert_eq!(env.sim.stats().accepted, 5, "three takes, one charge each");
    let hares: Vec<_> = jobs.iter().filter(|j| j.spec_name == "hare.json").collect();
    assert_eq!(hares.len(), 3);
    assert!(hares.iter().all(|j| j.state == JobState::Archived && j.take_group == hares[0].take_group));
    let mut numbers: Vec<i64> = hares.iter().map(|j| j.take_no).collect();
    numbers.sort_unstable();
    assert_eq!(numbers, [1, 2, 3]);
    for n in 1..=3 {
        let path = env.inbox().join("done").join(format!("hare.json.take-{n}.report.json"));
        for _ in 0..200 {
            if path.exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(path.exists(), "a report per take: {path:?}");
    }
    let out = env.cli(&["show", &hares[0].id]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("of 3"), "show lists the takes: {text}");
    for h in &hares[1..] {
        assert!(text.contains(&h.id), "show names every other take: {text}");
    }
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_specs_renamed_in_at_once_are_taken_by_their_rename_once_each() {
    // A platform that never finishes: this is about intake, which records many specs per
    // catalogue transaction (group commit) across several batches. The quiet period is an hour,
    // so every spec must be taken because it was renamed in: a burst of renames must not lose
    // that hint (a bounded event queue once dropped all but the first thousand).
    let sim = vidkeep::sim::SimConfig {
        latency_min: Duration::from_secs(3600),
        latency_max: Duration::from_secs(3600),
        ..crate::support::fast_sim()
    };
    let mut env = Env::with_quiet(sim, "", "", "1h").await;
    let stage = env.dir.path().join("stage");
    std::fs::create_dir(&stage).expect("stage");
    const N: usize = 3000;
    for i in 0..N {
        // Every 100th spec repeats the request of the one before it, under its own name, and
        // one of each pair lands in another batch than its twin (batches hold 256 specs).
        let prompt = if i % 100 == 99 { format!("prompt {}", i - 1) } else { format!("prompt {i}") };
        let body = json!({"model": "viduq1-text", "prompt": prompt}).to_string();
        std::fs::write(stage.join(format!("s{i:04}.json")), body).expect("write");
    }
    env.start();
    // Files already there at start are taken by the quiet period (they may be half-written):
    // wait until the watcher is up, shown by a first spec taken on its rename alone.
    let part = env.dir.path().join("first.json");
    std::fs::write(&part, json!({"model": "viduq1-text", "prompt": "first"}).to_string()).expect("write");
    let first = env.inbox().join("first.json");
    for _ in 0..100 {
        std::fs::rename(&part, &first).expect("rename in");
        tokio::time::sleep(Duration::from_millis(300)).await;
        if !env.jobs().is_empty() {
            break;
        }
        if std::fs::rename(&first, &part).is_err() {
            break; // taken meanwhile: its job is being recorded
        }
    }
    env.wait_until("the first spec, taken on its rename", |jobs| jobs.len() == 1).await;
    for i in 0..N {
        let name = format!("s{i:04}.json");
        std::fs::rename(stage.join(&name), env.inbox().join(&name)).expect("rename in");
    }
    let duplicates = N / 100;
    let jobs = env.wait_until("every spec recorded", |jobs| jobs.len() > N - duplicates).await;
    let jobs: Vec<_> = jobs.into_iter().filter(|j| j.spec_name != "first.json").collect();
    let done = env.inbox().join("done");
    for _ in 0..400 {
        let reports = std::fs::read_dir(&done).map(|d| d.count()).unwrap_or(0);
        if reports >= 2 * duplicates {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut names: Vec<&str> = jobs.iter().map(|j| j.spec_name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), N - duplicates, "one job per distinct request, never two for one file");
    for i in (99..N).step_by(100) {
        let name = format!("s{i:04}.json");
        assert!(!names.contains(&name.as_str()), "{name} repeats a request: not a job");
        let report = env.report("done", &name);
        assert_eq!(report["state"], "already-paid", "{report}");
        assert_eq!(report["existing_job"], env.job_by_spec(&format!("s{:04}.json", i - 1)).id.as_str());
    }
    let left: Vec<_> = std::fs::read_dir(env.inbox())
        .expect("inbox")
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .collect();
    assert!(left.is_empty(), "nothing left in the inbox: {left:?}");
    let processing = std::fs::read_dir(env.inbox().join("processing")).expect("processing").count();
    assert_eq!(processing, N - duplicates + 1, "each taken spec is in processing/ once");
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spec_left_in_processing_without_a_job_is_taken_at_the_next_start() {
    // A stop between the claim (the move into processing/) and the record leaves this.
    let mut env = Env::default().await;
    let processing = env.inbox().join("processing");
    std::fs::create_dir_all(&processing).expect("processing");
    std::fs::write(processing.join("orphan.json"), json!({"model":"viduq1-text","prompt":"an orphan"}).to_string())
        .expect("write");
    env.start();
    let jobs = env.wait_all_ended(1).await;
    assert_eq!(jobs[0].spec_name, "orphan.json");
    assert_eq!(jobs[0].state, JobState::Archived);
    assert_eq!(env.sim.stats().accepted, 1);
    assert!(env.inbox().join("done").join("orphan.json").exists());
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_yaml_spec_or_a_folder_of_specs_gets_a_report_instead_of_silence() {
    let mut env = Env::default().await;
    env.start();
    env.drop_spec("harbour.yaml", "model: viduq1-text\nprompt: a harbour at dawn\n");
    let batch = env.inbox().join("batch-1");
    std::fs::create_dir(&batch).expect("folder");
    std::fs::write(batch.join("fox.json"), json!({"model":"viduq1-text","prompt":"a fox"}).to_string()).expect("spec");
    let failed = env.inbox().join("failed");
    for _ in 0..200 {
        if failed.join("harbour.yaml.report.json").exists() && failed.join("batch-1.report.json").exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let yaml = env.report("failed", "harbour.yaml");
    assert_eq!(yaml["error"]["code"], "spec-format", "{yaml}");
    let message = yaml["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(".json, .toml and .txt"), "{message}");
    assert!(failed.join("harbour.yaml").exists(), "the file is kept beside its report");
    let folder = env.report("failed", "batch-1");
    assert_eq!(folder["error"]["code"], "spec-in-folder", "{folder}");
    assert_eq!(folder["submitted"], false);
    assert!(batch.join("fox.json").exists(), "the folder is left as it is");
    assert!(env.jobs().is_empty(), "nothing was taken or paid");
    assert_eq!(env.sim.stats().accepted, 0);
    // Listed with the other refusals (`jobs --rejected`, the UI), as the metric counts it: once.
    let rejections = env.wait_rejections(2).await;
    let codes: Vec<&str> = rejections.iter().map(|r| r.error_code.as_str()).collect();
    assert!(codes.contains(&"spec-in-folder") && codes.contains(&"spec-format"), "{codes:?}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(env.rejections().len(), 2, "a rescan does not list the folder again");
    env.stop().await;
}
