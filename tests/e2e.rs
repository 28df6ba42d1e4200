//! Every kind of spec, dropped into the inbox, ends archived with the bytes the platform served.

use base64::Engine as _;
use serde_json::json;
use vidkeep::jobs::JobState;

use crate::support::{Env, assert_archived_as_served, sha256_file};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_model_kind_is_archived_with_the_served_bytes() {
    let mut env = Env::default().await;
    env.copy_example("lantern-first.png");
    env.copy_example("lantern-last.png");
    env.start();
    env.drop_spec(
        "text.json",
        &json!({"model":"viduq1-text","prompt":"a red fox in snow","style":"anime","aspect_ratio":"16:9"}).to_string(),
    );
    env.drop_spec(
        "image-remote.json",
        &json!({"model":"viduq1-image","image_url":"https://example.com/first.png","prompt":"it glows"}).to_string(),
    );
    env.drop_spec("image-local.toml", "model = \"viduq1-image\"\nimage_url = \"lantern-first.png\"\n");
    env.drop_spec(
        "start-end.json",
        &json!({"model":"viduq1-start-end","image_url":["lantern-first.png","lantern-last.png"]}).to_string(),
    );
    env.drop_spec(
        "vidu2.json",
        &json!({"model":"vidu2-image","image_url":"https://example.com/a.jpg","duration":4,"size":"1280x720"})
            .to_string(),
    );
    env.drop_spec(
        "cog.json",
        &json!({"model":"cogvideox-3","prompt":"city at night","quality":"speed","fps":30,"duration":5}).to_string(),
    );
    env.drop_spec("bare.txt", "a lantern festival over a river\n");
    let jobs = env.wait_all_ended(7).await;
    assert_archived_as_served(&env, &jobs);
    let stats = env.sim.stats();
    assert_eq!(stats.accepted, 7, "one submission per spec");

    // What went on the wire: local images as data URIs of the file's bytes, remote URLs verbatim.
    let sent =
        |spec: &str| env.sim.task(env.job_by_spec(spec).task_id.as_deref().unwrap_or_default()).expect("task").request;
    let local = sent("image-local.toml");
    let uri = local["image_url"].as_str().expect("string image");
    let b64 = uri.strip_prefix("data:image/png;base64,").expect("png data uri");
    let png = std::fs::read(env.inbox().join("lantern-first.png")).expect("png");
    assert_eq!(base64::engine::general_purpose::STANDARD.decode(b64).expect("base64"), png);
    assert_eq!(sent("image-remote.json")["image_url"], "https://example.com/first.png");
    assert_eq!(sent("start-end.json")["image_url"].as_array().map(Vec::len), Some(2));
    assert_eq!(sent("bare.txt")["model"], "viduq1-text", "[defaults] filled the model");
    assert!(sent("text.json").get("vidkeep").is_none());

    // Spec files moved to done/ with a report naming the hashes; sidecars beside the assets.
    for job in &jobs {
        let report = env.report("done", &job.spec_name);
        assert_eq!(report["state"], "archived");
        assert_eq!(report["job_id"], job.id.as_str());
        let assets = env.assets(&job.id);
        let video = assets.iter().find(|a| a.kind == vidkeep::catalog::AssetKind::Video).expect("video");
        // Every model's simulated clip is what that model promises.
        let probe = video.probe.as_ref().expect("probed");
        assert!(probe.findings.is_empty(), "{}: {probe:?}", job.spec_name);
        assert!(report["assets"].as_array().expect("assets").iter().any(|a| a["sha256"] == video.sha256.as_str()));
        assert!(env.inbox().join("done").join(&job.spec_name).exists());
        let sidecar_key = video.key.replace("video.mp4", "vidkeep.json");
        let sidecar: serde_json::Value =
            serde_json::from_slice(&std::fs::read(env.archive_dir().join(sidecar_key)).expect("sidecar"))
                .expect("json");
        assert_eq!(sidecar["task_id"], job.task_id.as_deref().unwrap_or_default());
        assert!(!sidecar.to_string().contains(&vidkeep::sim::SimConfig::default().api_key), "no secret in the sidecar");
    }
    assert!(std::fs::read_dir(env.inbox().join("processing")).expect("processing").next().is_none());
    env.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_passes_then_finds_a_flipped_byte_and_a_missing_object() {
    let mut env = Env::default().await;
    env.start();
    env.drop_spec("fox.json", &json!({"model":"viduq1-text","prompt":"a fox"}).to_string());
    let jobs = env.wait_all_ended(1).await;
    env.stop().await;
    assert_eq!(jobs[0].state, JobState::Archived);
    let ok = env.cli(&["verify"]);
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stdout));

    let assets = env.assets(&jobs[0].id);
    let video = assets.iter().find(|a| a.kind == vidkeep::catalog::AssetKind::Video).expect("video");
    let path = env.archive_dir().join(&video.key);
    let mut bytes = std::fs::read(&path).expect("read");
    bytes[1000] ^= 0x01;
    std::fs::write(&path, &bytes).expect("write");
    assert_ne!(sha256_file(&path), video.sha256);
    let bad = env.cli(&["verify"]);
    let out = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(bad.status.code(), Some(1), "{out}");
    assert!(out.contains("MISMATCH") && out.contains(&video.key), "{out}");

    let cover = assets.iter().find(|a| a.kind == vidkeep::catalog::AssetKind::Cover).expect("cover");
    std::fs::remove_file(env.archive_dir().join(&cover.key)).expect("remove");
    let out = String::from_utf8_lossy(&env.cli(&["verify"]).stdout).into_owned();
    assert!(out.contains("MISSING") && out.contains(&cover.key), "{out}");
}
