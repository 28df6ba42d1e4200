//! The HTTP server on `[http] listen`: one axum router composed of route groups (the ops
//! endpoints from [`crate::ops::health`] and the catalogue UI from [`ui`]),
//! behind an optional bearer token, stopped by the daemon's cancellation token.
//!
//! With `[http] token` set every route needs `Authorization: Bearer <token>` or the cookie
//! `vidkeep_token=<token>` (which a browser UI can set from the token). The comparison takes the
//! same time whatever the guess, and the token never reaches a log.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::secret::Secret;

pub mod range;
pub mod ui;

/// The cookie that may carry the token instead of the `Authorization` header.
pub const TOKEN_COOKIE: &str = "vidkeep_token";

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The listen address could not be bound.
    #[error("cannot listen on {addr} ([http] listen): {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The server stopped on an I/O error.
    #[error("HTTP server: {0}")]
    Serve(std::io::Error),
}

/// Binds `addr` (port 0 picks a free port).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, WebError> {
    TcpListener::bind(addr).await.map_err(|source| WebError::Bind { addr, source })
}

/// `routes` behind the token check when `token` is set.
pub fn app(routes: Router, token: Option<Secret>) -> Router {
    match token {
        Some(token) => routes.layer(middleware::from_fn_with_state(token, require_token)),
        None => routes,
    }
}

/// Serves `app` on `listener` until `cancel`; requests in progress finish first.
pub async fn serve(listener: TcpListener, app: Router, cancel: CancellationToken) -> Result<(), WebError> {
    axum::serve(listener, app).with_graceful_shutdown(cancel.cancelled_owned()).await.map_err(WebError::Serve)
}

async fn require_token(State(token): State<Secret>, request: Request, next: Next) -> Response {
    if presented(request.headers()).is_some_and(|given| same(given.as_bytes(), token.expose().as_bytes())) {
        return next.run(request).await;
    }
    // A browser cannot send a bearer header on a link: `?token=...` on any URL sets the cookie
    // and redirects to the same URL without the token, so it stays out of history and logs.
    let (from_query, rest) = split_token_param(request.uri().path(), request.uri().query());
    if from_query.as_deref().is_some_and(|given| same(given.as_bytes(), token.expose().as_bytes())) {
        let cookie = format!("{TOKEN_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict", token.expose());
        let headers =
            [(header::LOCATION, rest), (header::SET_COOKIE, cookie), (header::CACHE_CONTROL, "no-store".to_owned())];
        return (StatusCode::SEE_OTHER, headers).into_response();
    }
    (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer realm=\"vidkeep\"")], "a valid token is required\n")
        .into_response()
}

/// The `token` query parameter, and the path with the other parameters.
fn split_token_param(path: &str, query: Option<&str>) -> (Option<String>, String) {
    let mut token = None;
    let mut kept = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if k == "token" {
            token = Some(v.into_owned());
        } else {
            kept.append_pair(&k, &v);
        }
    }
    let kept = kept.finish();
    (token, if kept.is_empty() { path.to_owned() } else { format!("{path}?{kept}") })
}

/// The token a request carries: the bearer token, else the cookie.
fn presented(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    bearer.or_else(|| {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .find_map(|kv| kv.trim().strip_prefix(TOKEN_COOKIE).and_then(|rest| rest.strip_prefix('=')))
    })
}

/// Constant-time equality (for equal lengths; the length itself is not secret).
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn token_from_header_or_cookie() {
        let mut h = HeaderMap::new();
        assert_eq!(presented(&h), None);
        h.insert(header::COOKIE, HeaderValue::from_static("a=b; vidkeep_token=abc"));
        assert_eq!(presented(&h), Some("abc"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer xyz"));
        assert_eq!(presented(&h), Some("xyz"));
        assert!(same(b"abc", b"abc") && !same(b"abc", b"abd") && !same(b"abc", b"ab"));
        let (token, rest) = split_token_param("/", Some("q=fox&token=s%20t&page=2"));
        assert_eq!((token.as_deref(), rest.as_str()), (Some("s t"), "/?q=fox&page=2"));
        assert_eq!(split_token_param("/jobs/x", None), (None, "/jobs/x".to_owned()));
    }
}
