//! The daemon against a scripted platform that answers in the shapes the official SDK shows the
//! platform may use (`zai-sdk` 0.2.3, `zai.types.video.VideoObject`: `id` optional, every field
//! nullable) and the reference has seen: a numeric task id, `"video_result": null` while
//! `PROCESSING`, and `model` echoed in another case (`CogVideoX-Flash`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::support::{Env, fast_sim};

/// Polls answered `PROCESSING` (with `video_result: null`) before the task succeeds.
const PROCESSING_POLLS: u64 = 3;

#[derive(Default)]
struct Script {
    origin: std::sync::OnceLock<String>,
    submits: AtomicU64,
    polls: AtomicU64,
}

/// Serves the scripted platform on a loopback port; returns its API base URL.
async fn scripted_platform(script: Arc<Script>) -> String {
    async fn submit(State(s): State<Arc<Script>>) -> impl IntoResponse {
        s.submits.fetch_add(1, Ordering::SeqCst);
        // A numeric id, as in the old official example, beside fields that are null or odd.
        let text = r#"{"id":8868902201637896192,"request_id":null,"model":"CogVideoX-Flash","task_status":null}"#;
        ([("content-type", "application/json")], text)
    }
    async fn poll(State(s): State<Arc<Script>>, axum::extract::Path(id): axum::extract::Path<String>) -> Json<Value> {
        assert_eq!(id, "8868902201637896192", "polled with the id as the platform wrote it");
        let n = s.polls.fetch_add(1, Ordering::SeqCst);
        let origin = s.origin.get().cloned().unwrap_or_default();
        Json(if n < PROCESSING_POLLS {
            json!({"id": 8868902201637896192_u64, "model": "CogVideoX-Flash", "task_status": "PROCESSING", "video_result": null, "usage": null})
        } else {
            json!({"id": 8868902201637896192_u64, "model": "CogVideoX-Flash", "task_status": "SUCCESS",
                   "video_result": [{"url": format!("{origin}/files/v_0.mp4"), "cover_image_url": null}]})
        })
    }
    async fn video() -> impl IntoResponse {
        let clip = std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/sim/clip.mp4")).expect("clip");
        ([("content-type", "video/mp4")], clip)
    }
    let app = axum::Router::new()
        .route("/api/paas/v4/videos/generations", post(submit))
        .route("/api/paas/v4/async-result/{id}", get(poll))
        .route("/files/v_0.mp4", get(video))
        .with_state(Arc::clone(&script));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let origin = format!("http://{}", listener.local_addr().expect("addr"));
    script.origin.set(origin.clone()).expect("origin set once");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("{origin}/api/paas/v4")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numeric_ids_null_results_and_model_case_are_understood() {
    let script = Arc::new(Script::default());
    let base_url = scripted_platform(Arc::clone(&script)).await;
    let mut env = Env::new(fast_sim(), "", "[defaults]\nmodel = \"cogvideox-flash\"\n").await;
    env.config.api.base_url = base_url;
    let url = env.start_serving(None).await;
    env.drop_spec("fox.txt", "a fox in snow");
    let jobs = env.wait_all_ended(1).await;
    let job = &jobs[0];
    // Stored either way; this scripted platform serves the Vidu Q1 clip (24 fps) for a CogVideoX
    // job (30 fps promised), so the media probe rightly adds a warning.
    assert!(job.state.is_archived(), "{:?} {:?}", job.state, job.error);
    assert_eq!(job.task_id.as_deref(), Some("8868902201637896192"), "a numeric id is kept as its digits");
    assert_eq!(script.submits.load(Ordering::SeqCst), 1, "accepted at the first answer, never uncertain");
    assert_eq!(script.polls.load(Ordering::SeqCst), PROCESSING_POLLS + 1);
    let metrics = reqwest::get(format!("{url}/metrics")).await.expect("metrics").text().await.expect("text");
    assert!(!metrics.contains("api-bad-answer"), "no answer was misread: {metrics}");
    env.stop().await;
}
