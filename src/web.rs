//! The HTTP server on `[http] listen`: one axum router composed of route groups (the ops
//! endpoints from [`crate::ops::health`] and the catalogue UI from [`ui`]),
//! behind an optional bearer token, stopped by the daemon's cancellation token.
//!
//! With `[http] token` set every route needs `Authorization: Bearer <token>` or the cookie
//! `vidkeep_token=<token>` (which a browser UI can set from the token). The comparison takes the
//! same time whatever the guess, and the token never reaches a log.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::HttpConfig;
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

/// Who may be answered: the token (if set), the host names, and how the cookie is marked.
#[derive(Debug, Clone)]
struct Guard {
    token: Option<Secret>,
    hosts: Arc<Vec<String>>,
    cookie_secure: bool,
}

/// `routes` behind the server's guards: the `Host` check, the token check when `[http] token` is
/// set (`/healthz` is exempt from both: liveness probes send neither), and security headers on
/// every answer.
pub fn app(routes: Router, http: &HttpConfig) -> Router {
    let guard = Guard {
        token: http.token(),
        hosts: Arc::new(http.hosts.iter().map(|h| h.trim().to_ascii_lowercase()).collect()),
        cookie_secure: http.cookie_secure,
    };
    routes.layer(middleware::from_fn_with_state(guard, require_guard)).layer(middleware::map_response(security_headers))
}

/// Headers that keep an answer from being framed, sniffed into a script type, or leaking the URL.
async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if let Ok(csp) = HeaderValue::from_str(ui::content_security_policy()) {
        h.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    response
}

/// Whether `host` (a `Host` header, maybe with a port) names this server: a loopback name, an IP
/// address (a rebinding attack needs a DNS name), or one of `[http] hosts`.
fn host_allowed(host: &str, hosts: &[String]) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host
            .rsplit_once(':')
            .map_or(host, |(n, port)| if port.bytes().all(|b| b.is_ascii_digit()) { n } else { host }),
    };
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost"
        || name.ends_with(".localhost")
        || name.parse::<std::net::IpAddr>().is_ok()
        || hosts.contains(&name)
}

async fn require_guard(State(guard): State<Guard>, request: Request, next: Next) -> Response {
    if request.uri().path() == "/healthz" {
        return next.run(request).await;
    }
    let host = request.headers().get(header::HOST).and_then(|v| v.to_str().ok());
    if host.is_some_and(|h| !host_allowed(h, &guard.hosts)) {
        let body = "this server does not answer to that host name; add it to [http] hosts\n";
        return (StatusCode::MISDIRECTED_REQUEST, body).into_response();
    }
    match &guard.token {
        Some(token) => require_token(token, guard.cookie_secure, request, next).await,
        None => next.run(request).await,
    }
}

/// Serves `app` on `listener` until `cancel`; requests in progress finish first.
pub async fn serve(listener: TcpListener, app: Router, cancel: CancellationToken) -> Result<(), WebError> {
    axum::serve(listener, app).with_graceful_shutdown(cancel.cancelled_owned()).await.map_err(WebError::Serve)
}

async fn require_token(token: &Secret, cookie_secure: bool, request: Request, next: Next) -> Response {
    if presented(request.headers()).is_some_and(|given| same(given.as_bytes(), token.expose().as_bytes())) {
        return next.run(request).await;
    }
    // A browser cannot send a bearer header on a link: `?token=...` on any URL sets the cookie
    // and redirects to the same URL without the token, so it stays out of history and logs.
    let (from_query, rest) = split_token_param(request.uri().path(), request.uri().query());
    if from_query.as_deref().is_some_and(|given| same(given.as_bytes(), token.expose().as_bytes())) {
        let secure = if cookie_secure { "; Secure" } else { "" };
        let cookie = format!("{TOKEN_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict{secure}", token.expose());
        let headers =
            [(header::LOCATION, rest), (header::SET_COOKIE, cookie), (header::CACHE_CONTROL, "no-store".to_owned())];
        return (StatusCode::SEE_OTHER, headers).into_response();
    }
    let body = "a valid token is required: send `Authorization: Bearer <token>`, or open any page once with \
                ?token=<token> (from [http] token) to set a cookie\n";
    (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Bearer realm=\"vidkeep\"")], body).into_response()
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
    // Never off-site: `//evil.example/` or `/\\evil.example` would be read as another host.
    let path = format!("/{}", path.trim_start_matches(['/', '\\']));
    (token, if kept.is_empty() { path } else { format!("{path}?{kept}") })
}

/// The token a request carries: the bearer token, else the cookie.
fn presented(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
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
        assert_eq!(split_token_param("//evil.example/", Some("token=t")).1, "/evil.example/", "never off-site");
        assert_eq!(split_token_param("/\\evil.example", None).1, "/evil.example");
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("bearer lower"));
        assert_eq!(presented(&h), Some("lower"), "the scheme is case-insensitive");
    }

    #[test]
    fn only_this_servers_host_names_are_answered() {
        let hosts = vec!["vidkeep.studio.lan".to_owned()];
        for ok in ["localhost", "localhost:8780", "127.0.0.1:8780", "[::1]:8780", "10.0.0.5", "VidKeep.Studio.Lan:80"] {
            assert!(host_allowed(ok, &hosts), "{ok}");
        }
        for bad in ["evil.example", "evil.example:8780", "vidkeep.studio.lan.evil.example", "127.0.0.1.nip.io"] {
            assert!(!host_allowed(bad, &hosts), "{bad}");
        }
    }
}
