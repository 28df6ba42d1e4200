//! Each fault at probability 1.0 behaves as documented on [`Faults`].

use super::*;

async fn with_faults(faults: Faults) -> Fixture {
    Fixture::new(SimConfig { faults, ..fast() }).await
}

#[tokio::test]
async fn submit_5xx_creates_no_task() {
    let f = with_faults(Faults { submit_5xx: 1.0, ..Faults::default() }).await;
    let (status, answer) = f.submit(&text_request()).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(answer, json!({"error": {"code": "500", "message": "Internal Error"}}));
    let stats = f.sim.stats();
    assert_eq!((stats.accepted, stats.refused.get("500")), (0, Some(&1)));
    assert!(f.sim.tasks().is_empty());
}

#[tokio::test]
async fn submit_1305_creates_no_task() {
    let f = with_faults(Faults { submit_1305: 1.0, ..Faults::default() }).await;
    let (status, answer) = f.submit(&text_request()).await;
    assert_eq!((status, code(&answer)), (StatusCode::TOO_MANY_REQUESTS, "1305"));
    assert_eq!(f.sim.stats().accepted, 0);
}

#[tokio::test]
async fn submit_lost_creates_the_task_but_the_answer_breaks_off() {
    let f = with_faults(Faults { submit_lost: 1.0, ..Faults::default() }).await;
    let request = f.http.post(f.url("/videos/generations")).bearer_auth(SimConfig::default().api_key);
    let response = request.json(&text_request()).send().await.expect("headers arrive");
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.bytes().await.is_err(), "the body must break off");
    let stats = f.sim.stats();
    assert_eq!(stats.accepted, 1);
    let tasks = f.sim.tasks();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].request, text_request());
    assert_eq!(f.wait_done(&tasks[0].id).await["task_status"], "SUCCESS", "the task runs anyway");
}

#[tokio::test]
async fn poll_5xx_answers_500() {
    let f = with_faults(Faults { poll_5xx: 1.0, ..Faults::default() }).await;
    let id = f.submit_ok(&text_request()).await;
    let (status, answer) = f.poll(&id).await;
    assert_eq!((status, code(&answer)), (StatusCode::INTERNAL_SERVER_ERROR, "500"));
    assert_eq!(f.sim.stats().polls, 1);
}

#[tokio::test]
async fn fail_ends_tasks_without_results() {
    let f = with_faults(Faults { fail: 1.0, ..Faults::default() }).await;
    let id = f.submit_ok(&text_request()).await;
    let done = f.wait_done(&id).await;
    assert_eq!(done["task_status"], "FAIL");
    let mut fields: Vec<&str> = done.as_object().expect("object").keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["created", "id", "model", "request_id", "task_status"]);
    let task = f.sim.task(&id).expect("task");
    assert_eq!(task.status, "FAIL");
    assert_eq!(f.get(&task.video_url, None).await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn download_reset_cuts_the_body_halfway() {
    let f = with_faults(Faults { download_reset: 1.0, ..Faults::default() }).await;
    let (id, video_url, _) = f.finished_task().await;
    let task = f.sim.task(&id).expect("task");
    let mut response = f.get(&video_url, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CONTENT_LENGTH], task.video_bytes.to_string().as_str());
    let mut received = 0;
    let error = loop {
        match response.chunk().await {
            Ok(Some(chunk)) => received += chunk.len() as u64,
            Ok(None) => panic!("the body ended cleanly after {received} bytes"),
            Err(e) => break e,
        }
    };
    assert!(error.is_body() || error.is_decode() || error.is_request(), "{error:?}");
    assert!(received > 0 && received <= task.video_bytes / 2 + 1, "about half was sent: {received}");
    assert_eq!(f.sim.stats().downloads, 1);
}

#[tokio::test]
async fn submit_1302_creates_no_task() {
    let f = with_faults(Faults { submit_1302: 1.0, ..Faults::default() }).await;
    let (status, answer) = f.submit(&text_request()).await;
    assert_eq!((status, code(&answer)), (StatusCode::TOO_MANY_REQUESTS, "1302"));
    assert_eq!(f.sim.stats().accepted, 0);
}

#[tokio::test]
async fn download_truncate_ends_cleanly_short_of_the_announced_length() {
    let f = with_faults(Faults { download_truncate: 1.0, ..Faults::default() }).await;
    let (id, video_url, _) = f.finished_task().await;
    let task = f.sim.task(&id).expect("task");
    let mut response = f.get(&video_url, None).await;
    assert_eq!(response.headers()[CONTENT_LENGTH], task.video_bytes.to_string().as_str());
    let mut received = 0;
    while let Ok(Some(chunk)) = response.chunk().await {
        received += chunk.len() as u64;
    }
    assert!(received > 0 && received < task.video_bytes, "short of the announced length: {received}");
}

#[tokio::test]
async fn download_gone_answers_404_and_counts_no_download() {
    let f = with_faults(Faults { download_gone: 1.0, ..Faults::default() }).await;
    let (_, video_url, _) = f.finished_task().await;
    assert_eq!(f.get(&video_url, None).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(f.sim.stats().downloads, 0);
}

#[tokio::test]
async fn unknown_status_shows_while_processing() {
    let f = with_faults(Faults { unknown_status: 1.0, ..Faults::default() }).await;
    let id = f.submit_ok(&text_request()).await;
    let (_, polled) = f.poll(&id).await;
    assert_eq!(polled["task_status"], "SUBMITTED");
    assert_eq!(f.sim.task(&id).expect("task").status, "PROCESSING", "the truth is unchanged");
    assert_eq!(f.wait_done(&id).await["task_status"], "SUCCESS", "terminal states are reported as they are");
}

#[tokio::test]
async fn faults_follow_the_seed() {
    let run = |seed: u64| async move {
        let faults = Faults { submit_5xx: 0.5, ..Faults::default() };
        let f = Fixture::new(SimConfig { seed: Some(seed), faults, model_limit: 100, ..fast() }).await;
        let mut outcomes = Vec::new();
        for _ in 0..16 {
            outcomes.push(f.submit(&text_request()).await.0.as_u16());
        }
        outcomes
    };
    let first = run(3).await;
    assert_eq!(first, run(3).await, "the same seed gives the same faults");
    assert!(first.contains(&200) && first.contains(&500), "{first:?}");
}
