//! Facts every stage shares, with no dependency on any other module of the crate: a leaf, so
//! the stages can all use it without depending on one another.
//!
//! - [`state`]: the job state machine, its changes and the job error with its stable code.
//! - [`place`]: the inbox folder layout and which folder a spec is in.
//! - [`hash`]: the SHA-256 helpers every stage names files and bodies by.
//! - [`DaemonId`]: which daemon a staging area (and, with a shared catalogue, a job) belongs to.
//! - [`RESULT_URL_LIFETIME_MS`]: how long the platform keeps a result URL.

pub mod daemon;
pub mod hash;
pub mod place;
pub mod state;

pub use daemon::DaemonId;
pub use hash::{hex, sha256_hex};
pub use place::{Inbox, OWN_FOLDER_MODE, SpecPlace};
pub use state::{Change, JobError, JobState, UnknownState};

/// How long the platform keeps a result URL (video and cover) after the task succeeded: "valid
/// for one day" (API reference §7). The downloader's `expired` decision, the alarms and the
/// operators' expiry figures share it.
pub const RESULT_URL_LIFETIME_MS: i64 = 24 * 60 * 60 * 1000;

/// Errors from the domain types.
#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    /// A daemon id that cannot be a storage key segment.
    #[error("daemon id {0:?} must be 1 to 64 characters of A-Z, a-z, 0-9, '-', '_' or '.', not starting with '.'")]
    DaemonId(String),
    /// A spec place name the catalogue does not know.
    #[error("unknown spec place `{0}`")]
    SpecPlace(String),
}

impl DomainError {
    /// A stable code for reports and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            DomainError::DaemonId(_) => "daemon-id",
            DomainError::SpecPlace(_) => "spec-place",
        }
    }
}
