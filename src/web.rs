//! The HTTP server on `[http] listen`: one axum router composed of route groups (the ops
//! endpoints from [`crate::ops::health`] and the catalogue UI from [`ui`]),
//! behind an optional bearer token, stopped by the daemon's cancellation token.
//!
//! With `[http] token` set every route needs `Authorization: Bearer <token>` or the cookie
//! `vidkeep_token=<token>` (which a browser UI can set from the token). The comparison takes the
//! same time whatever the guess, and the token never reaches a log.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
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

/// How the server treats connections (from `[http]`, with the stop's grace period).
#[derive(Debug, Clone, Copy)]
pub struct ServeSettings {
    /// A request's headers must arrive within this (also the keep-alive wait for the next one).
    pub header_timeout: Duration,
    /// A connection with no byte moving either way for this long is closed.
    pub idle_timeout: Duration,
    /// Most connections served at once.
    pub max_connections: usize,
    /// On stop, how long open connections may take to finish before they are closed.
    pub grace: Duration,
}

impl ServeSettings {
    /// The settings `[http]` describes, with `grace` for the stop.
    pub fn new(http: &HttpConfig, grace: Duration) -> ServeSettings {
        ServeSettings {
            header_timeout: http.header_timeout,
            idle_timeout: http.idle_timeout,
            max_connections: http.max_connections,
            grace,
        }
    }
}

/// Serves `app` on `listener` until `cancel`. At most `max_connections` connections are
/// accepted at once (the rest wait in the kernel's accept queue, holding no descriptor of
/// ours); each must send its headers within `header_timeout` and is closed after
/// `idle_timeout` without traffic. On stop, open connections finish their request within
/// `grace`, then are closed, so a half-sent request cannot hold the stop.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    cancel: CancellationToken,
    settings: ServeSettings,
) -> Result<(), WebError> {
    let permits = Arc::new(Semaphore::new(settings.max_connections.max(1)));
    let mut connections = JoinSet::new();
    let mut accept_failing = false;
    loop {
        let permit = tokio::select! {
            () = cancel.cancelled() => break,
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
        };
        let accepted = tokio::select! {
            () = cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        while connections.try_join_next().is_some() {}
        match accepted {
            Ok((stream, _peer)) => {
                accept_failing = false;
                connections.spawn(serve_connection(stream, app.clone(), settings, cancel.clone(), permit));
            }
            Err(e) => {
                // EMFILE and the like: say so once, back off a little, keep serving.
                if !accept_failing {
                    tracing::warn!(error = %e, "HTTP server: cannot accept a connection; retrying");
                    accept_failing = true;
                }
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(ACCEPT_BACKOFF) => {}
                }
            }
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(settings.grace, async { while connections.join_next().await.is_some() {} });
    if drained.await.is_err() {
        tracing::warn!(open = connections.len(), "closing HTTP connections still open after the grace period");
        connections.shutdown().await;
    }
    Ok(())
}

/// Pause after a failed `accept` (out of descriptors, say) before the next try.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves one connection: HTTP/1.1 with the header timeout, closed when idle, shut down
/// gracefully when `cancel` fires (the caller closes it for good after the grace period).
async fn serve_connection(
    stream: tokio::net::TcpStream,
    app: Router,
    settings: ServeSettings,
    cancel: CancellationToken,
    _permit: OwnedSemaphorePermit,
) {
    let activity = Activity::new();
    let io = TokioIo::new(Watched { inner: stream, activity: activity.clone() });
    let service = hyper_util::service::TowerToHyperService::new(app);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(settings.header_timeout);
    let connection = builder.serve_connection(io, service);
    tokio::pin!(connection);
    let mut stopping = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "HTTP connection ended with an error");
                }
                return;
            }
            () = cancel.cancelled(), if !stopping => {
                connection.as_mut().graceful_shutdown();
                stopping = true;
            }
            () = tokio::time::sleep_until(activity.last() + settings.idle_timeout) => {
                if activity.last().elapsed() >= settings.idle_timeout {
                    tracing::debug!("closing an idle HTTP connection");
                    return;
                }
            }
        }
    }
}

/// When a connection last moved a byte.
#[derive(Debug, Clone)]
struct Activity {
    start: tokio::time::Instant,
    since_start_ms: Arc<AtomicU64>,
}

impl Activity {
    fn new() -> Activity {
        Activity { start: tokio::time::Instant::now(), since_start_ms: Arc::new(AtomicU64::new(0)) }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.since_start_ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> tokio::time::Instant {
        self.start + Duration::from_millis(self.since_start_ms.load(Ordering::Relaxed))
    }
}

/// A stream that records each read and write in its [`Activity`].
struct Watched {
    inner: tokio::net::TcpStream,
    activity: Activity,
}

impl tokio::io::AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        polled
    }
}

impl tokio::io::AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(polled, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Descriptors kept free for the engine, the store and the catalogue beside the HTTP server.
pub const FD_RESERVE: u64 = 256;

/// Raises the soft open-file limit to the hard one and returns the soft limit now in force
/// (`None` when it cannot be read, or is unlimited).
pub fn raise_open_file_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current != limit.maximum {
        let raised = rustix::process::Rlimit { current: limit.maximum, maximum: limit.maximum };
        match setrlimit(Resource::Nofile, raised) {
            Ok(()) => limit = getrlimit(Resource::Nofile),
            Err(e) => tracing::debug!(error = %e, "cannot raise the open-file limit"),
        }
    }
    limit.current
}

/// `wanted` connections, lowered so that the server can use at most half of what the open-file
/// limit leaves after [`FD_RESERVE`].
pub fn connection_cap(wanted: usize, open_files: Option<u64>) -> usize {
    let Some(limit) = open_files else { return wanted };
    let room = usize::try_from(limit.saturating_sub(FD_RESERVE) / 2).unwrap_or(usize::MAX).max(1);
    wanted.min(room)
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
    let said = "a valid token is required: send `Authorization: Bearer <token>`, or open any page once with \
                ?token=<token> (from [http] token) to set a cookie";
    let challenge = [(header::WWW_AUTHENTICATE, "Bearer realm=\"vidkeep\"")];
    // Scripts read every /api/* answer as JSON, errors included.
    if request.uri().path().starts_with("/api/") {
        let body = axum::Json(serde_json::json!({ "error": said, "status": StatusCode::UNAUTHORIZED.as_u16() }));
        return (StatusCode::UNAUTHORIZED, challenge, body).into_response();
    }
    (StatusCode::UNAUTHORIZED, challenge, format!("{said}\n")).into_response()
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
