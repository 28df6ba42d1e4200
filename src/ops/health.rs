//! `GET /healthz` (the process answers), `GET /readyz` (catalogue answers, inbox watcher runs,
//! platform answered recently) and `GET /metrics` (Prometheus text). The routes only read
//! [`Ops`]; the web server decides who may call them.

use crate::telemetry::Escaped;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{Ops, metrics};
use crate::time::now_ms;

/// A catalogue query slower than this makes `/readyz` fail.
const CATALOG_TIMEOUT: Duration = Duration::from_secs(5);

/// The ops routes, to be merged into the web server's router.
pub fn routes(ops: Ops) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(ops)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(ops): State<Ops>) -> Response {
    let catalog = match tokio::time::timeout(CATALOG_TIMEOUT, ops.catalog_answers()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("catalogue: {e}")),
        Err(_) => Err("catalogue: no answer within 5 s".to_owned()),
    };
    let mut problems = Vec::new();
    if let Err(e) = catalog {
        problems.push(e);
    }
    if !ops.watcher_alive() {
        problems.push("inbox watcher: not running".to_owned());
    }
    if let Some(problem) = ops.intake_problem() {
        problems.push(format!("inbox: intake paused: {problem}"));
    }
    if !ops.platform_fresh() {
        let mut problem = match ops.platform_seen_ms() {
            Some(t) => format!("platform: last answered {} s ago", (now_ms() - t) / 1000),
            None => "platform: has not answered yet".to_owned(),
        };
        if let Some(why) = ops.platform_problem() {
            problem.push_str(&format!(" (last try: {})", crate::telemetry::Escaped(&why)));
        }
        problems.push(problem);
    }
    if problems.is_empty() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, format!("not ready\n{}\n", problems.join("\n"))).into_response()
    }
}

async fn metrics_text(State(ops): State<Ops>) -> Response {
    match ops.snapshot().await {
        Ok(snapshot) => {
            ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], ops.metrics().render(&snapshot, ops.clock().now_ms()))
                .into_response()
        }
        Err(e) => {
            tracing::warn!(error = %Escaped(&e), "metrics: cannot read the catalogue");
            (StatusCode::SERVICE_UNAVAILABLE, format!("cannot read the catalogue: {e}\n")).into_response()
        }
    }
}
