//! Connecting to the PostgreSQL catalogue: [`PgTarget::connect`], blocking, with TLS through
//! rustls and the platform's verifier (the system's roots), and failures that name the target
//! and never the password. The target itself (`[catalog] url`, where the password comes from) is
//! parsed and checked with the config, in `config::pg`, and re-exported from here.

use std::sync::Arc;

use crate::config::pg::Tls;
pub use crate::config::pg::{ConnectError, PasswordSource, PgTarget, redact_url};
use crate::secret::Secret;

impl PgTarget {
    /// Connects, blocking: looks the password up now (password file, `PGPASSWORD`, pgpass),
    /// then logs in with TLS as `sslmode` says. Never call this on an async worker thread.
    pub fn connect(&self) -> Result<postgres::Client, ConnectError> {
        let password = self.password(|name| std::env::var_os(name).map(|v| v.to_string_lossy().into_owned()))?;
        let mut config = self.config.clone();
        if let Some((secret, _)) = &password {
            config.password(secret.expose());
        }
        let secret = password.as_ref().map(|(s, _)| s);
        let connected = match self.tls {
            Tls::Disable => config.connect(postgres::NoTls),
            Tls::Prefer | Tls::Require => config.connect(self.tls_connector()?),
        };
        connected.map_err(|e| self.server_error(&e, secret))
    }

    /// rustls with the platform's verifier (the system's roots), as reqwest uses it, or with
    /// only the roots of `sslrootcert`.
    fn tls_connector(&self) -> Result<tokio_postgres_rustls::MakeRustlsConnect, ConnectError> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject as _;
        use rustls_platform_verifier::BuilderVerifierExt as _;
        let fail = |message: String| ConnectError::Tls { target: self.shown.clone(), message };
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| fail(e.to_string()))?;
        let config = match &self.root_cert {
            None => builder.with_platform_verifier().map_err(|e| fail(e.to_string()))?.with_no_client_auth(),
            Some(path) => {
                let bad = |message: String| fail(format!("sslrootcert {}: {message}", path.display()));
                let mut roots = rustls::RootCertStore::empty();
                for cert in CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))? {
                    roots.add(cert.map_err(|e| bad(e.to_string()))?).map_err(|e| bad(e.to_string()))?;
                }
                if roots.is_empty() {
                    return Err(bad("holds no PEM certificate".to_owned()));
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
        };
        Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
    }

    /// A connection failure as a [`ConnectError`] naming the target, with the password removed
    /// from the message should the server or a library ever quote it.
    fn server_error(&self, e: &postgres::Error, password: Option<&Secret>) -> ConnectError {
        let mut message = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(cause) = source {
            let text = cause.to_string();
            if !message.contains(&text) {
                message = format!("{message}: {text}");
            }
            source = cause.source();
        }
        if let Some(secret) = password.filter(|s| !s.expose().is_empty()) {
            message = message.replace(secret.expose(), "[redacted]");
        }
        let target = self.shown.clone();
        let auth_state = e.as_db_error().map(|db| db.code().code().to_owned());
        if message.contains("password missing") {
            let message = format!(
                "{message} (the server asks for a password: set [catalog] password_file, PGPASSWORD, or a line in \
                 the pgpass file)"
            );
            return ConnectError::Auth { target, message };
        }
        if matches!(auth_state.as_deref(), Some("28P01" | "28000")) {
            return ConnectError::Auth { target, message };
        }
        if message.contains("certificate") || message.contains("TLS") {
            message = format!(
                "{message} (vidkeep verifies the server's certificate against the system's roots, or sslrootcert's, \
                 and the host name; sslmode=disable turns TLS off, on a network you trust)"
            );
        }
        ConnectError::Connect { target, message }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> PgTarget {
        PgTarget::parse(url, None).expect("parses")
    }

    #[test]
    fn server_errors_name_the_target_and_never_the_password() {
        // Nothing listens on port 1: the error names the target and is a connect error.
        let t = target("postgres://vk@127.0.0.1:1/db?sslmode=disable&connect_timeout=2");
        let Err(e) = t.connect() else { panic!("nothing listens on port 1") };
        assert_eq!(e.code(), "catalog-connect");
        assert!(e.to_string().contains("postgres://vk@127.0.0.1:1/db"), "{e}");
    }
}
