//! What the official SDK sends (`zai-sdk` 0.2.3): nulls for unset fields, its extra fields, the
//! raw key or a signed token; and what tells simulator instances apart (their seed).

use super::*;
use crate::time::now_ms;

const KEY: &str = "sim-key.sim-secret";

fn now() -> u64 {
    u64::try_from(now_ms()).unwrap_or(0)
}

async fn submit_with(f: &Fixture, authorization: &str) -> (StatusCode, Value) {
    let request = f.http.post(f.url("/videos/generations")).header("authorization", authorization);
    answer(request.json(&text_request())).await
}

#[tokio::test]
async fn the_raw_key_and_a_signed_token_with_or_without_bearer_are_accepted() {
    let f = Fixture::new(fast()).await;
    let token = sign_token(KEY, now(), now() + 210_000).expect("token");
    for authorization in [format!("Bearer {KEY}"), format!("Bearer {token}"), format!("bearer {token}"), token.clone()]
    {
        let (status, body) = submit_with(&f, &authorization).await;
        assert_eq!(status, StatusCode::OK, "{authorization}: {body}");
    }
    let (status, _) = answer(f.http.get(f.url("/async-result/nope")).header("authorization", &token)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a token works for polls too (1233 for an unknown id)");
}

#[tokio::test]
async fn expired_or_wrongly_signed_tokens_are_refused() {
    let f = Fixture::new(fast()).await;
    let expired = sign_token(KEY, now() - 300_000, now() - 90_000).expect("token");
    let (status, body) = submit_with(&f, &format!("Bearer {expired}")).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "1003"), "{body}");
    let forged = sign_token("sim-key.guessed-secret", now(), now() + 210_000).expect("token");
    let other_id = sign_token("other-key.sim-secret", now(), now() + 210_000).expect("token");
    for token in [forged, other_id, "a.b.c".to_owned()] {
        let (status, body) = submit_with(&f, &format!("Bearer {token}")).await;
        assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "1002"), "{token}: {body}");
    }
    let (status, body) = submit_with(&f, KEY).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "1002"), "the raw key goes with Bearer: {body}");
    assert_eq!(f.sim.stats().accepted, 0);
}

#[tokio::test]
async fn an_sdk_body_with_nulls_and_extra_fields_is_accepted() {
    let f = Fixture::new(fast()).await;
    // zai-sdk 0.2.3 `Videos.generations(model="viduq1-text", prompt=..., quality=..., fps=...)`.
    let body = json!({"model":"viduq1-text","prompt":"a fox","image_url":null,"quality":"quality","with_audio":null,
        "size":"1920x1080","duration":5,"fps":30,"style":"anime","aspect_ratio":"16:9","off_peak":true,
        "movement_amplitude":"auto","sensitive_word_check":{"type":"ALL","status":"DISABLE"},"request_id":null,
        "user_id":null,"watermark_enabled":false});
    let (status, answer) = f.submit(&body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    let id = answer["id"].as_str().expect("id");
    assert_eq!(answer["request_id"], id, "a null request_id is none: the platform mints one");
    assert_eq!(f.sim.task(id).expect("task").request, body, "kept exactly as received");
    let cog3 = json!({"model":"cogvideox-3","prompt":"x","image_url":{"url":"https://a/b.png"},"quality":"speed",
        "with_audio":true,"fps":60,"duration":null,"style":null});
    assert_eq!(f.submit(&cog3).await.0, StatusCode::OK);
    let (status, refused) = f.submit(&json!({"model":"cogvideox-3","prompt":"x","quality":"high","fps":null})).await;
    assert_eq!((status, code(&refused)), (StatusCode::BAD_REQUEST, "1214"), "documented values still hold");
}

#[tokio::test]
async fn simulators_without_a_seed_mint_different_ids() {
    let (a, b) = (Fixture::new(fast()).await, Fixture::new(fast()).await);
    assert_ne!(a.sim.stats().seed, b.sim.stats().seed);
    let (ia, ib) = (a.submit_ok(&text_request()).await, b.submit_ok(&text_request()).await);
    assert_ne!(ia[14..], ib[14..], "the random suffixes differ: {ia} {ib}");
    let seeded = Fixture::new(SimConfig { seed: Some(5), ..fast() }).await;
    assert_eq!(seeded.sim.stats().seed, 5);
}

#[tokio::test]
async fn the_request_log_keeps_bodies_exactly_and_never_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("requests.jsonl");
    let f = Fixture::new(SimConfig { request_log: Some(log.clone()), ..fast() }).await;
    let exact = r#"{"model":"viduq1-text","prompt":"a fox","fps":null}"#;
    let request = f.http.post(f.url("/videos/generations")).bearer_auth(KEY).header("content-type", "application/json");
    let (status, _) = answer(request.body(exact)).await;
    assert_eq!(status, StatusCode::OK);
    let token = sign_token(KEY, now(), now() + 60_000).expect("token");
    let _ = answer(f.http.get(f.url("/async-result/x")).bearer_auth(&token)).await;
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(!text.contains("sim-secret") && !text.contains(&token), "{text}");
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect("JSON line")).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["body"], exact, "the exact text");
    assert_eq!(lines[0]["path"], "/api/paas/v4/videos/generations");
    assert_eq!(lines[0]["headers"]["authorization"], json!({"scheme":"Bearer","form":"api-key"}));
    assert_eq!(lines[1]["method"], "GET");
    assert_eq!(lines[1]["headers"]["authorization"]["form"], "token");
    assert_eq!(lines[1]["headers"]["authorization"]["jwt_payload"]["api_key"], "sim-key");
}

#[tokio::test]
async fn model_case_fault_echoes_the_display_case() {
    let f = Fixture::new(SimConfig { faults: Faults { model_case: 1.0, ..Faults::default() }, ..fast() }).await;
    let id = f.submit_ok(&json!({"model": "cogvideox-flash", "prompt": "x"})).await;
    assert_eq!(f.poll(&id).await.1["model"], "CogVideoX-Flash");
    let id = f.submit_ok(&text_request()).await;
    assert_eq!(f.poll(&id).await.1["model"], "ViduQ1-Text");
}
