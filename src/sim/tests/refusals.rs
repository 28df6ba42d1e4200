//! Submits the platform refuses: auth, schema, duplicates, concurrency, balance, unknown tasks.

use super::*;

#[tokio::test]
async fn missing_or_wrong_keys_get_401() {
    let f = Fixture::new(fast()).await;
    let submit = || f.http.post(f.url("/videos/generations")).json(&text_request());
    let (status, body) = answer(submit()).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "1001"));
    assert_eq!(body["error"]["message"], "Header中未收到Authorization参数，无法进行身份验证。");
    let (status, body) = answer(submit().bearer_auth("sim-key.wrong")).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "1002"));
    let (status, body) = answer(submit().basic_auth("sim-key", Some("sim-secret"))).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "1002"));
    let (status, body) = answer(f.http.get(f.url("/async-result/x"))).await;
    assert_eq!((status, code(&body)), (StatusCode::UNAUTHORIZED, "1001"));

    let stats = f.sim.stats();
    assert_eq!(stats.accepted, 0);
    assert_eq!(stats.refused, [("1001".to_owned(), 1), ("1002".to_owned(), 2)].into());
    assert_eq!(stats.polls, 0, "unauthenticated polls are not counted");
}

#[tokio::test]
async fn invalid_bodies_get_the_platforms_codes() {
    let f = Fixture::new(fast()).await;
    let cases = [
        (json!({"model": "viduq9", "prompt": "x"}), "1211"),
        (json!({"prompt": "x"}), "1213"),
        (json!({"model": "viduq1-text"}), "1213"),
        (json!({"model": "viduq1-text", "prompt": "x", "duration": 4}), "1214"),
        (json!({"model": "viduq1-image", "image_url": ["https://a/b.png"]}), "1214"),
        (json!({"model": "viduq1-text", "prompt": "x".repeat(513)}), "1261"),
        (json!(["not", "an", "object"]), "1210"),
    ];
    for (body, want) in &cases {
        let (status, answer) = f.submit(body).await;
        assert_eq!((status, code(&answer)), (StatusCode::BAD_REQUEST, *want), "{body}: {answer}");
        assert!(answer["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let request = f.http.post(f.url("/videos/generations")).bearer_auth(SimConfig::default().api_key);
    let (status, answer) = answer(request.body("{not json")).await;
    assert_eq!((status, code(&answer)), (StatusCode::BAD_REQUEST, "1210"));

    let stats = f.sim.stats();
    assert_eq!(stats.accepted, 0);
    let refused = |c: &str| stats.refused.get(c).copied().unwrap_or(0);
    assert_eq!((refused("1210"), refused("1211"), refused("1213"), refused("1214"), refused("1261")), (2, 1, 2, 2, 1));
}

#[tokio::test]
async fn unknown_fields_are_ignored_unless_configured_otherwise() {
    // `seed` and `bgm` are Vidu-native fields that neither this platform nor its SDK has.
    let body = json!({"model": "viduq1-text", "prompt": "x", "seed": 42, "bgm": true});
    let lenient = Fixture::new(fast()).await;
    let id = lenient.submit_ok(&body).await;
    assert_eq!(lenient.sim.task(&id).expect("task").request, body, "the body is kept as received");

    let strict = Fixture::new(SimConfig { reject_unknown_fields: true, ..fast() }).await;
    let (status, answer) = strict.submit(&body).await;
    assert_eq!((status, code(&answer)), (StatusCode::BAD_REQUEST, "1210"), "{answer}");
}

#[tokio::test]
async fn request_id_is_echoed_and_a_numeric_id_minted() {
    let f = Fixture::new(fast()).await;
    let mut body = text_request();
    body["request_id"] = json!("job-7f3c2a");
    let (status, submitted) = f.submit(&body).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(submitted["request_id"], "job-7f3c2a");
    let id = submitted["id"].as_str().expect("id");
    assert_eq!(id.len(), 19);
    assert!(id.bytes().all(|b| b.is_ascii_digit()) && !id.starts_with('0'), "{id}");
    let (_, polled) = f.poll(id).await;
    assert_eq!(polled["request_id"], "job-7f3c2a");
    assert_eq!(f.sim.task(id).expect("task").request_id, "job-7f3c2a");
}

#[tokio::test]
async fn duplicate_request_id_in_flight_gets_1231() {
    let f = Fixture::new(fast()).await;
    let mut body = text_request();
    body["request_id"] = json!("job-1");
    let first = f.submit_ok(&body).await;
    let (status, answer) = f.submit(&body).await;
    assert_eq!((status, code(&answer)), (StatusCode::BAD_REQUEST, "1231"));
    assert_eq!(answer["error"]["message"], "您已有请求：job-1");
    assert!(answer.get("id").is_none(), "the first task's id is never given back");

    f.wait_done(&first).await;
    let second = f.submit_ok(&body).await;
    assert_ne!(first, second);
    let stats = f.sim.stats();
    assert_eq!(stats.accepted_by_request_id.get("job-1"), Some(&2));
    assert_eq!(stats.refused.get("1231"), Some(&1));
}

#[tokio::test]
async fn per_model_limit_gets_1302_and_in_flight_is_counted() {
    let slow = Duration::from_secs(2);
    let config = SimConfig {
        latency_min: slow,
        latency_max: slow,
        model_limit: 2,
        model_limits: [("cogvideox-flash".to_owned(), 1)].into(),
        ..fast()
    };
    let f = Fixture::new(config).await;
    let flash = json!({"model": "cogvideox-flash", "prompt": "x"});
    let mut accepted = vec![f.submit_ok(&text_request()).await, f.submit_ok(&text_request()).await];
    let (status, answer) = f.submit(&text_request()).await;
    assert_eq!((status, code(&answer)), (StatusCode::TOO_MANY_REQUESTS, "1302"));
    assert_eq!(answer["error"]["message"], "您当前使用该API的并发数过高，请降低并发，或联系客服增加限额。");
    accepted.push(f.submit_ok(&flash).await);
    let (status, answer) = f.submit(&flash).await;
    assert_eq!((status, code(&answer)), (StatusCode::TOO_MANY_REQUESTS, "1302"));

    let stats = f.sim.stats();
    assert_eq!((stats.accepted, stats.in_flight, stats.max_in_flight), (3, 3, 3));
    let by_model = [("cogvideox-flash".to_owned(), 1), ("viduq1-text".to_owned(), 2)].into();
    assert_eq!(stats.max_in_flight_by_model, by_model);
    assert_eq!(stats.refused.get("1302"), Some(&2));

    for id in &accepted {
        f.wait_done(id).await;
    }
    assert_eq!(f.sim.stats().in_flight, 0, "tasks leave flight when their latency has passed");
    f.submit_ok(&text_request()).await;
    assert_eq!(f.sim.stats().max_in_flight, 3);
}

#[tokio::test]
async fn balance_runs_out_with_1113() {
    let f = Fixture::new(SimConfig { balance_fen: Some(500), ..fast() }).await;
    f.submit_ok(&text_request()).await;
    f.submit_ok(&text_request()).await;
    let (status, answer) = f.submit(&text_request()).await;
    assert_eq!((status, code(&answer)), (StatusCode::TOO_MANY_REQUESTS, "1113"));
    f.submit_ok(&json!({"model": "cogvideox-flash", "prompt": "free of charge"})).await;
    let stats = f.sim.stats();
    assert_eq!((stats.accepted, stats.spent_fen), (3, 500));
}

#[tokio::test]
async fn unknown_task_gets_1233() {
    let f = Fixture::new(fast()).await;
    let (status, answer) = f.poll("20990101000000deadbeefdeadbeef").await;
    assert_eq!((status, code(&answer)), (StatusCode::BAD_REQUEST, "1233"));
    assert_eq!(answer["error"]["message"], "任务：20990101000000deadbeefdeadbeef不存在");
}
