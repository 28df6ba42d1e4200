//! Which daemon a staging area (and, with a shared catalogue, a job) belongs to.

use std::path::Path;

use sha2::{Digest as _, Sha256};

use super::DomainError;

/// The name of one daemon: `<host>-<8 hex digits of its inbox's path>`, so it stays the same
/// across restarts (a start cleans its own staging area) and differs between two daemons on one
/// machine (each watches its own inbox). It is a storage key segment: `.staging/<id>/…`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DaemonId(String);

impl DaemonId {
    /// Checks an id given by a person or read back from storage.
    pub fn parse(id: &str) -> Result<DaemonId, DomainError> {
        let ok = (1..=64).contains(&id.len())
            && !id.starts_with('.')
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if ok { Ok(DaemonId(id.to_owned())) } else { Err(DomainError::DaemonId(id.to_owned())) }
    }

    /// The id of the daemon on `host` watching `inbox` (made absolute first, without touching
    /// the disk). Characters of the host name that cannot be in a key become `-`.
    pub fn derive(host: &str, inbox: &Path) -> DaemonId {
        let mut name: String = host
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' })
            .take(40)
            .collect();
        if name.is_empty() {
            name.push_str("host");
        }
        let inbox = std::path::absolute(inbox).unwrap_or_else(|_| inbox.to_owned());
        let digest = Sha256::digest(inbox.as_os_str().as_encoded_bytes());
        let short: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
        DaemonId(format!("{name}-{short}"))
    }

    /// The id of the daemon on this machine watching `inbox`.
    pub fn for_inbox(inbox: &Path) -> DaemonId {
        let uname = rustix::system::uname();
        DaemonId::derive(&uname.nodename().to_string_lossy(), inbox)
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for DaemonId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_ids_are_stable_per_inbox_and_safe_as_a_key_segment() {
        let a = DaemonId::derive("render-01.studio.lan", Path::new("/srv/vidkeep/inbox"));
        assert_eq!(a, DaemonId::derive("render-01.studio.lan", Path::new("/srv/vidkeep/inbox")), "stable");
        assert!(a.as_str().starts_with("render-01-studio-lan-"), "{a}");
        assert_ne!(a, DaemonId::derive("render-01.studio.lan", Path::new("/srv/other/inbox")), "one per inbox");
        assert_eq!(DaemonId::parse(a.as_str()).expect("its own id parses"), a);
        let odd = DaemonId::derive("../\u{1b}[31m/", Path::new("/i"));
        assert!(DaemonId::parse(odd.as_str()).is_ok(), "{odd}");
        for bad in ["", ".hidden", "a/b", "a b", &"x".repeat(65)] {
            assert!(DaemonId::parse(bad).is_err(), "{bad:?}");
        }
    }
}
