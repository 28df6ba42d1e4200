//! `[catalog] url`: where the PostgreSQL catalogue lives and how vidkeep logs in to it. Parsed
//! and checked with the config; [`PgTarget::connect`] (in `catalog`, which re-exports all of this
//! as `catalog::PgTarget`) makes the connection.
//!
//! `[catalog] url` names the server and database (`postgres://user@host:port/dbname`, or
//! `postgresql://`); it never holds a password, and a URL that does is refused without echoing
//! it. The password is looked up when connecting, from the first of:
//!
//! 1. `[catalog] password_file`: a file holding only the password, refused if its group or others
//!    may read it (the same checks as `api.key_file`);
//! 2. the `PGPASSWORD` environment variable;
//! 3. the pgpass file `PGPASSFILE` (default `~/.pgpass`), in libpq's
//!    `host:port:database:user:password` format with `*` wildcards and `\:` escapes, refused if
//!    its group or others may read it.
//!
//! No password at all is fine: the server may trust the connection (peer or trust auth).
//!
//! TLS follows the URL's `sslmode`: `disable` is plain TCP; `prefer` (the default) tries TLS
//! first; `require`, `verify-ca` and `verify-full` insist on it. Whenever TLS is used, the
//! server's certificate is verified against the system's roots and must name the host (rustls
//! knows no unverified TLS): stricter than libpq's `prefer` and `require`, which accept any
//! certificate. `sslrootcert=/path/ca.pem` trusts that file's certificates instead of the
//! system's roots (a private CA), as libpq does; `sslrootcert=system` is the default.
//!
//! [`PgTarget::connect`] is blocking (the `postgres` crate runs its own small runtime): call it
//! on a blocking thread, never on an async worker.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use postgres::config::{Host, SslMode};

use crate::secret::{PrivateFileError, Secret, read_private_file};

/// How long connecting may take when the URL sets no `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The `application_name` the server sees when the URL sets none.
const APPLICATION_NAME: &str = "vidkeep";

/// Where a local server's socket is when the URL names no host (Debian's libpq default).
const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";

/// Longest password file read.
const MAX_PASSWORD_FILE_BYTES: u64 = 4096;

/// Longest pgpass file read.
const MAX_PGPASS_BYTES: u64 = 1024 * 1024;

/// Why the PostgreSQL catalogue cannot be reached. No message holds a password.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The URL cannot be used.
    #[error("[catalog] url {message}")]
    Url {
        /// What is wrong (never quotes a password).
        message: String,
    },
    /// The URL holds a password.
    #[error(
        "[catalog] url holds a password: remove it from the URL; vidkeep reads the password from \
         [catalog] password_file, the PGPASSWORD variable or a pgpass file (PGPASSFILE, default ~/.pgpass)"
    )]
    PasswordInUrl,
    /// An `sslmode` vidkeep does not support.
    #[error("[catalog] url: sslmode={0} is not supported: use disable, prefer, require, verify-ca or verify-full")]
    SslMode(String),
    /// `[catalog] password_file` cannot be used (never quotes its content).
    #[error("catalog.password_file {}: {message}", path.display())]
    PasswordFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The pgpass file cannot be used (never quotes its content).
    #[error("pgpass file {}: {message}", path.display())]
    Pgpass {
        /// The file (`PGPASSFILE` or `~/.pgpass`).
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// TLS could not be set up (no usable root certificates, for example).
    #[error("cannot set up TLS for {target}: {message}")]
    Tls {
        /// The target, as [`PgTarget::display`] shows it.
        target: String,
        /// What failed.
        message: String,
    },
    /// The server refused the login: wrong or missing password, unknown user, `pg_hba.conf`.
    #[error("cannot log in to the catalogue at {target}: {message}")]
    Auth {
        /// The target, as [`PgTarget::display`] shows it.
        target: String,
        /// The server's or the client's message, with any password removed.
        message: String,
    },
    /// Any other failure to connect: the server is down or unreachable, no such database, TLS.
    #[error("cannot connect to the catalogue at {target}: {message}")]
    Connect {
        /// The target, as [`PgTarget::display`] shows it.
        target: String,
        /// The server's or the client's message, with any password removed.
        message: String,
    },
}

impl ConnectError {
    /// A stable code for scripts, reports and alerts.
    pub fn code(&self) -> &'static str {
        match self {
            ConnectError::Url { .. } => "catalog-url",
            ConnectError::PasswordInUrl => "catalog-url-password",
            ConnectError::SslMode(_) => "catalog-sslmode",
            ConnectError::PasswordFile { .. } => "catalog-password-file",
            ConnectError::Pgpass { .. } => "catalog-pgpass",
            ConnectError::Tls { .. } => "catalog-tls",
            ConnectError::Auth { .. } => "catalog-auth",
            ConnectError::Connect { .. } => "catalog-connect",
        }
    }
}

/// What the URL's `sslmode` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tls {
    /// Plain TCP.
    Disable,
    /// TLS if the server offers it, verified when used.
    Prefer,
    /// TLS or nothing, verified (`require`, `verify-ca`, `verify-full`).
    Require,
}

/// Where the password came from, for messages ("from PGPASSWORD").
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordSource {
    /// `[catalog] password_file`.
    PasswordFile(PathBuf),
    /// The `PGPASSWORD` variable.
    Env,
    /// A matching line of this pgpass file.
    Pgpass(PathBuf),
}

/// A PostgreSQL catalogue to connect to: the parsed `[catalog] url` (which holds no password)
/// and where the password is to be found. `Debug` and `Display` show no secret.
#[derive(Clone)]
pub struct PgTarget {
    /// The connection settings, without a password.
    pub(crate) config: postgres::Config,
    /// What `sslmode` asked for.
    pub(crate) tls: Tls,
    /// `[catalog] password_file`.
    password_file: Option<PathBuf>,
    /// `sslrootcert`: the only roots trusted, instead of the system's.
    pub(crate) root_cert: Option<PathBuf>,
    /// `postgres://user@host:port/dbname`.
    pub(crate) shown: String,
}

impl fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgTarget")
            .field("target", &self.shown)
            .field("tls", &self.tls)
            .field("root_cert", &self.root_cert)
            .field("password_file", &self.password_file)
            .finish_non_exhaustive()
    }
}

impl fmt::Display for PgTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl PgTarget {
    /// Parses `[catalog] url` (no connection is made, no file is read). `password_file` is
    /// `[catalog] password_file`, already resolved against the config's folder.
    pub fn parse(url: &str, password_file: Option<&Path>) -> Result<PgTarget, ConnectError> {
        let url = url.trim();
        let bad = |message: &str| ConnectError::Url { message: message.to_owned() };
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(bad("must start with postgres:// or postgresql://"));
        }
        if holds_password(url) {
            return Err(ConnectError::PasswordInUrl);
        }
        // tokio-postgres knows sslmode disable/prefer/require only; vidkeep reads it itself.
        let (base, query) = url.split_once('?').unwrap_or((url, ""));
        let mut sslmode = None;
        let mut root_cert = None;
        let mut kept = Vec::new();
        for param in query.split('&').filter(|p| !p.is_empty()) {
            match param.split_once('=') {
                Some(("sslmode", value)) => sslmode = Some(value.to_owned()),
                Some(("sslrootcert", "system")) => root_cert = None,
                Some(("sslrootcert", "")) => {
                    return Err(bad("has an empty sslrootcert: name a PEM file of CA certificates"));
                }
                Some(("sslrootcert", path)) => root_cert = Some(PathBuf::from(path)),
                _ => kept.push(param),
            }
        }
        let tls = match sslmode.as_deref() {
            None | Some("prefer") => Tls::Prefer,
            Some("disable") => Tls::Disable,
            Some("require" | "verify-ca" | "verify-full") => Tls::Require,
            Some(other) => return Err(ConnectError::SslMode(other.to_owned())),
        };
        let rebuilt = if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) };
        let mut config: postgres::Config = rebuilt
            .parse()
            .map_err(|e: postgres::Error| ConnectError::Url { message: format!("is not usable: {e}") })?;
        if config.get_password().is_some() {
            return Err(ConnectError::PasswordInUrl);
        }
        config.ssl_mode(match tls {
            Tls::Disable => SslMode::Disable,
            Tls::Prefer => SslMode::Prefer,
            Tls::Require => SslMode::Require,
        });
        if config.get_hosts().is_empty() && config.get_hostaddrs().is_empty() {
            config.host(DEFAULT_SOCKET_DIR);
        }
        if config.get_user().is_none() {
            // What tokio-postgres would use anyway; set here so messages and pgpass agree.
            let user = whoami::username()
                .map_err(|e| bad(&format!("names no user, and the system user name cannot be read: {e}")))?;
            config.user(&user);
        }
        if config.get_application_name().is_none() {
            config.application_name(APPLICATION_NAME);
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let shown = show(&config);
        Ok(PgTarget { config, tls, password_file: password_file.map(Path::to_owned), root_cert, shown })
    }

    /// `postgres://user@host:port/dbname`, for logs and messages; never a password.
    pub fn display(&self) -> String {
        self.shown.clone()
    }

    /// The `[catalog] password_file` this target reads, if any.
    pub fn password_file(&self) -> Option<&Path> {
        self.password_file.as_deref()
    }

    /// The password and where it came from, or `None` when none is set anywhere. `env` reads
    /// an environment variable (the process environment in [`PgTarget::connect`]).
    pub fn password(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<(Secret, PasswordSource)>, ConnectError> {
        if let Some(path) = &self.password_file {
            return read_password_file(path).map(|s| Some((s, PasswordSource::PasswordFile(path.clone()))));
        }
        if let Some(value) = env("PGPASSWORD").filter(|v| !v.is_empty()) {
            return Ok(Some((Secret::new(value), PasswordSource::Env)));
        }
        let path = match env("PGPASSFILE").filter(|v| !v.is_empty()) {
            Some(file) => PathBuf::from(file),
            None => match env("HOME").filter(|v| !v.is_empty()) {
                Some(home) => Path::new(&home).join(".pgpass"),
                None => return Ok(None),
            },
        };
        let text = match read_private_file(&path, MAX_PGPASS_BYTES, true) {
            Ok(text) => text,
            // libpq ignores a missing pgpass file, and so does vidkeep.
            Err(e) if e.is_missing() => return Ok(None),
            Err(e) => return Err(ConnectError::Pgpass { path, message: pgpass_problem(e) }),
        };
        let db = self.config.get_dbname().or(self.config.get_user()).unwrap_or_default();
        let user = self.config.get_user().unwrap_or_default();
        let mut hosts: Vec<String> = self
            .config
            .get_hosts()
            .iter()
            .map(|host| match host {
                Host::Tcp(name) => name.clone(),
                // libpq looks a socket connection up as "localhost".
                Host::Unix(_) => "localhost".to_owned(),
            })
            .collect();
        if hosts.is_empty() {
            // Only hostaddr given: libpq looks the address up.
            hosts = self.config.get_hostaddrs().iter().map(ToString::to_string).collect();
        }
        for (i, host) in hosts.iter().enumerate() {
            let port = self.port(i).to_string();
            if let Some(found) = pgpass_lookup(text.expose(), host, &port, db, user) {
                return Ok(Some((found, PasswordSource::Pgpass(path))));
            }
        }
        Ok(None)
    }

    /// The port of the `i`th host: one port for all, one per host, or 5432.
    fn port(&self, i: usize) -> u16 {
        let ports = self.config.get_ports();
        ports.get(i).or(ports.first()).copied().unwrap_or(5432)
    }
}

/// Whether the URL carries a password: `user:password@` before the host, or a `password=`
/// parameter. Looked at before any parsing, so no parser's message can quote it.
fn holds_password(url: &str) -> bool {
    let (before_query, query) = url.split_once('?').unwrap_or((url, ""));
    let rest = before_query.split_once("://").map_or(before_query, |(_, r)| r);
    let userinfo_has_colon = rest.rsplit_once('@').is_some_and(|(userinfo, _)| userinfo.contains(':'));
    let param = query.split('&').any(|p| p.split('=').next().is_some_and(|k| k.trim() == "password"));
    userinfo_has_colon || param
}

/// `postgres://user@host:port[,host:port]/dbname`.
fn show(config: &postgres::Config) -> String {
    let user = config.get_user().unwrap_or_default();
    let ports = config.get_ports();
    let mut hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            Host::Tcp(name) if name.contains(':') => format!("[{name}]"),
            Host::Tcp(name) => name.clone(),
            Host::Unix(path) => path.display().to_string().replace('/', "%2F"),
        })
        .collect();
    if hosts.is_empty() {
        hosts = config.get_hostaddrs().iter().map(ToString::to_string).collect();
    }
    let hosts: Vec<String> = hosts
        .into_iter()
        .enumerate()
        .map(|(i, h)| format!("{h}:{}", ports.get(i).or(ports.first()).copied().unwrap_or(5432)))
        .collect();
    let db = config.get_dbname().unwrap_or(user);
    format!("postgres://{user}@{}/{db}", hosts.join(","))
}

/// Reads `[catalog] password_file`: its whole content but the line break at its end.
fn read_password_file(path: &Path) -> Result<Secret, ConnectError> {
    let bad = |message: String| ConnectError::PasswordFile { path: path.to_owned(), message };
    let text = read_private_file(path, MAX_PASSWORD_FILE_BYTES, false).map_err(|e| match e {
        PrivateFileError::TooBig(len) => bad(format!("is {len} bytes; a password file holds only the password")),
        other => bad(other.to_string()),
    })?;
    let password = text.expose().trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        return Err(bad("is empty: write the database password into it".to_owned()));
    }
    if password.contains('\n') {
        return Err(bad("has more than one line: it must hold only the password".to_owned()));
    }
    Ok(Secret::new(password))
}

/// Why a pgpass file was refused, with the fix.
fn pgpass_problem(e: PrivateFileError) -> String {
    match e {
        PrivateFileError::Exposed { mode, path } => format!(
            "is readable or writable by its group or others (mode {mode:04o}), so its passwords are not \
             private: run `chmod 600 {path}`"
        ),
        other => other.to_string(),
    }
}

/// The password of the first pgpass line matching the connection, libpq's way: fields
/// `host:port:database:user:password`, `*` matches anything, `\` escapes `:` and `\`, lines
/// starting with `#` are comments.
fn pgpass_lookup(text: &str, host: &str, port: &str, db: &str, user: &str) -> Option<Secret> {
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let fields = pgpass_fields(line);
        let [h, p, d, u, password, ..] = fields.as_slice() else {
            continue;
        };
        let matches = |field: &(String, bool), want: &str| field.1 || field.0 == want;
        if matches(h, host) && matches(p, port) && matches(d, db) && matches(u, user) {
            return Some(Secret::new(password.0.clone()));
        }
    }
    None
}

/// A pgpass line's fields, unescaped, each with whether it is the wildcard `*` (unescaped).
fn pgpass_fields(line: &str) -> Vec<(String, bool)> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut escaped_any = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                field.push(chars.next().unwrap_or('\\'));
                escaped_any = true;
            }
            ':' => {
                let wildcard = field == "*" && !escaped_any;
                fields.push((std::mem::take(&mut field), wildcard));
                escaped_any = false;
            }
            c => field.push(c),
        }
    }
    let wildcard = field == "*" && !escaped_any;
    fields.push((field, wildcard));
    fields
}

/// A catalogue URL with any password cut out, for `Debug` of a config that failed validation.
pub fn redact_url(url: &str) -> String {
    if !holds_password(url) {
        return url.to_owned();
    }
    let (before_query, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let redacted = match before_query.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((userinfo, host)) if userinfo.contains(':') => {
                let user = userinfo.split(':').next().unwrap_or_default();
                format!("{scheme}://{user}:[redacted]@{host}")
            }
            _ => before_query.to_owned(),
        },
        None => before_query.to_owned(),
    };
    match query {
        None => redacted,
        Some(query) => {
            let params: Vec<&str> = query
                .split('&')
                .map(|p| {
                    if p.split('=').next().is_some_and(|k| k.trim() == "password") { "password=[redacted]" } else { p }
                })
                .collect();
            format!("{redacted}?{}", params.join("&"))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    const SECRET: &str = "pa55:w0rd";

    fn write(dir: &Path, name: &str, text: &str, mode: u32) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
        path
    }

    fn target(url: &str) -> PgTarget {
        PgTarget::parse(url, None).expect("parses")
    }

    #[test]
    fn both_schemes_parse_and_display_without_secrets() {
        let t = target("postgres://vk@db.example:6543/catalog");
        assert_eq!(t.display(), "postgres://vk@db.example:6543/catalog");
        assert_eq!(t.to_string(), t.display());
        let t = target("postgresql://vk@db.example/catalog?sslmode=disable");
        assert_eq!(t.display(), "postgres://vk@db.example:5432/catalog");
        assert_eq!(t.tls, Tls::Disable);
        // The database defaults to the user, the host to the local socket.
        let t = target("postgres://vk@/");
        assert_eq!(t.display(), "postgres://vk@%2Fvar%2Frun%2Fpostgresql:5432/vk");
        let t = target("postgres://vk@a:1,b:2/x");
        assert_eq!(t.display(), "postgres://vk@a:1,b:2/x");
        assert!(format!("{t:?}").contains("postgres://vk@a:1,b:2/x"));
    }

    #[test]
    fn application_name_and_timeout_have_defaults_unless_given() {
        let t = target("postgres://vk@h/db");
        assert_eq!(t.config.get_application_name(), Some(APPLICATION_NAME));
        assert_eq!(t.config.get_connect_timeout(), Some(&CONNECT_TIMEOUT));
        let t = target("postgres://vk@h/db?application_name=mine&connect_timeout=3");
        assert_eq!(t.config.get_application_name(), Some("mine"));
        assert_eq!(t.config.get_connect_timeout(), Some(&Duration::from_secs(3)));
    }

    #[test]
    fn sslmode_is_read_by_vidkeep() {
        for (mode, tls) in [
            ("disable", Tls::Disable),
            ("prefer", Tls::Prefer),
            ("require", Tls::Require),
            ("verify-ca", Tls::Require),
            ("verify-full", Tls::Require),
        ] {
            let t = target(&format!("postgres://vk@h/db?application_name=x&sslmode={mode}"));
            assert_eq!(t.tls, tls, "{mode}");
            assert_eq!(t.config.get_application_name(), Some("x"));
        }
        assert_eq!(target("postgres://vk@h/db").tls, Tls::Prefer);
        let t = target("postgres://vk@h/db?sslmode=verify-full&sslrootcert=/etc/vidkeep/ca.pem");
        assert_eq!((t.tls, t.root_cert.as_deref()), (Tls::Require, Some(Path::new("/etc/vidkeep/ca.pem"))));
        assert_eq!(target("postgres://vk@h/db?sslrootcert=system").root_cert, None);
        let e = PgTarget::parse("postgres://vk@h/db?sslmode=allow", None).expect_err("allow");
        assert_eq!(e.code(), "catalog-sslmode");
        assert!(e.to_string().contains("verify-full"), "{e}");
    }

    #[test]
    fn a_password_in_the_url_is_refused_without_echoing_it() {
        for url in [
            "postgres://vk:s3cr3t@h/db",
            "postgresql://vk:s3cr3t@h:5432/db?sslmode=disable",
            "postgres://vk:s3c@r3t@h/db",
            "postgres://vk@h/db?password=s3cr3t",
            "postgres://vk@h/db?sslmode=disable&password=s3cr3t",
            "postgres://:s3cr3t@h/db",
        ] {
            let e = PgTarget::parse(url, None).expect_err(url);
            assert_eq!(e.code(), "catalog-url-password", "{url}");
            let text = format!("{e} {e:?}");
            assert!(!text.contains("s3cr3t") && text.contains("PGPASSWORD"), "{text}");
            assert!(!redact_url(url).contains("s3cr3t"), "{}", redact_url(url));
        }
        assert_eq!(redact_url("postgres://vk@h/db"), "postgres://vk@h/db");
    }

    #[test]
    fn bad_urls_are_refused_with_a_reason() {
        for url in ["mysql://vk@h/db", "host=h user=vk", "postgres://vk@h/db?nonsense=1", "postgres://vk@h:notaport/db"]
        {
            let e = PgTarget::parse(url, None).expect_err(url);
            assert_eq!(e.code(), "catalog-url", "{url}: {e}");
            assert!(e.to_string().starts_with("[catalog] url "), "{e}");
        }
    }

    #[test]
    fn the_password_file_comes_first_then_pgpassword_then_pgpass() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = write(dir.path(), "pw", "from-file\n", 0o600);
        let pgpass = write(dir.path(), "pgpass", "*:*:*:*:from-pgpass\n", 0o600);
        let pgpass_name = pgpass.display().to_string();
        let with_file = PgTarget::parse("postgres://vk@h/db", Some(&file)).expect("parse");
        let plain = target("postgres://vk@h/db");
        let all = |name: &str| match name {
            "PGPASSWORD" => Some("from-env".to_owned()),
            "PGPASSFILE" => Some(pgpass_name.clone()),
            _ => None,
        };
        let only_pgpass = |name: &str| (name == "PGPASSFILE").then(|| pgpass_name.clone());
        let (s, from) = with_file.password(all).expect("ok").expect("some");
        assert_eq!((s.expose(), from), ("from-file", PasswordSource::PasswordFile(file.clone())));
        let (s, from) = plain.password(all).expect("ok").expect("some");
        assert_eq!((s.expose(), from), ("from-env", PasswordSource::Env));
        let (s, from) = plain.password(only_pgpass).expect("ok").expect("some");
        assert_eq!((s.expose(), from), ("from-pgpass", PasswordSource::Pgpass(pgpass.clone())));
        // ~/.pgpass without PGPASSFILE; none at all is fine (trust or peer auth).
        write(dir.path(), ".pgpass", "h:5432:db:vk:from-home\n", 0o600);
        let home = dir.path().display().to_string();
        let (s, _) = plain.password(|n: &str| (n == "HOME").then(|| home.clone())).expect("ok").expect("some");
        assert_eq!(s.expose(), "from-home");
        let empty = tempfile::tempdir().expect("tempdir");
        let home = empty.path().display().to_string();
        assert!(plain.password(|n: &str| (n == "HOME").then(|| home.clone())).expect("ok").is_none());
        assert!(plain.password(|_: &str| None).expect("ok").is_none());
    }

    #[test]
    fn exposed_or_bad_password_files_are_refused_naming_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, text, mode, says) in [
            ("group", "s3cr3t\n", 0o640, "chmod 600"),
            ("world", "s3cr3t\n", 0o604, "chmod 600"),
            ("empty", "\n", 0o600, "is empty"),
            ("two", "s3cr3t\ns3cr3t\n", 0o600, "more than one line"),
        ] {
            let path = write(dir.path(), name, text, mode);
            let t = PgTarget::parse("postgres://vk@h/db", Some(&path)).expect("parse");
            let e = t.password(|_: &str| None).expect_err(name);
            let text = e.to_string();
            assert_eq!(e.code(), "catalog-password-file");
            assert!(text.contains(&path.display().to_string()) && text.contains(says), "{text}");
            assert!(!text.contains("s3cr3t"), "{text}");
        }
        let t = PgTarget::parse("postgres://vk@h/db", Some(&dir.path().join("missing"))).expect("parse");
        assert!(t.password(|_: &str| None).expect_err("missing").to_string().contains("cannot be opened"));
    }

    #[test]
    fn an_exposed_pgpass_file_is_refused_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write(dir.path(), "pgpass", "*:*:*:*:s3cr3t\n", 0o644);
        let name = path.display().to_string();
        let e = target("postgres://vk@h/db").password(|n: &str| (n == "PGPASSFILE").then(|| name.clone()));
        let e = e.expect_err("exposed");
        assert_eq!(e.code(), "catalog-pgpass");
        let text = e.to_string();
        assert!(text.contains(&format!("pgpass file {name}")) && text.contains(&format!("chmod 600 {name}")), "{text}");
        assert!(!text.contains("s3cr3t"), "{text}");
    }

    #[test]
    fn pgpass_lines_match_like_libpq() {
        let text = "\
# a comment:*:*:*:nope
other:5432:db:vk:wrong-host
h:5433:db:vk:wrong-port
h:5432:db:vk:exact
*:*:*:*:fallback
";
        let find = |host: &str, port: &str, db: &str, user: &str| {
            pgpass_lookup(text, host, port, db, user).map(|s| s.expose().to_owned())
        };
        assert_eq!(find("h", "5432", "db", "vk").as_deref(), Some("exact"));
        assert_eq!(find("h", "5434", "db", "vk").as_deref(), Some("fallback"));
        // Escapes: `\:` and `\\` in any field; the password is the fifth field.
        let text = "db\\:host:*:*:vk:p\\:a\\\\ss:ignored\nh:*:*:vk:*\n";
        assert_eq!(
            pgpass_lookup(text, "db:host", "1", "x", "vk").map(|s| s.expose().to_owned()).as_deref(),
            Some("p:a\\ss")
        );
        // A literal `*` password, and an escaped `\*` is not a wildcard.
        assert_eq!(pgpass_lookup(text, "h", "1", "x", "vk").map(|s| s.expose().to_owned()).as_deref(), Some("*"));
        assert!(pgpass_lookup("\\*:*:*:*:p\n", "h", "1", "x", "vk").is_none());
        // Short lines are skipped; CRLF files work.
        assert!(pgpass_lookup("h:5432:db\n", "h", "5432", "db", "vk").is_none());
        assert_eq!(
            pgpass_lookup("h:5432:db:vk:crlf\r\n", "h", "5432", "db", "vk").map(|s| s.expose().to_owned()).as_deref(),
            Some("crlf")
        );
    }

    #[test]
    fn a_socket_connection_is_looked_up_as_localhost() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path =
            write(dir.path(), "pgpass", &format!("localhost:5432:vk:vk:{}\n", SECRET.replace(':', "\\:")), 0o600);
        let name = path.display().to_string();
        let t = target("postgres://vk@%2Frun%2Fpg/vk");
        let (s, _) = t.password(|n: &str| (n == "PGPASSFILE").then(|| name.clone())).expect("ok").expect("some");
        assert_eq!(s.expose(), SECRET);
        // With only hostaddr, the address is looked up.
        let path = write(dir.path(), "pgpass2", "10.0.0.7:5432:vk:vk:by-address\n", 0o600);
        let name = path.display().to_string();
        let t = target("postgres://vk@/vk?hostaddr=10.0.0.7");
        assert_eq!(t.display(), "postgres://vk@10.0.0.7:5432/vk");
        let (s, _) = t.password(|n: &str| (n == "PGPASSFILE").then(|| name.clone())).expect("ok").expect("some");
        assert_eq!(s.expose(), "by-address");
    }
}
