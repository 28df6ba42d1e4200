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
