//! Jobs: the state machine ([`state`], re-exported from [`crate::domain`]), the engine that drives it against the platform
//! ([`engine`]; its steps: a task's submission and polls in `task`, the download in `download`), the in-flight
//! limiter, and crash repair at start ([`reconcile`]).

mod download;
pub mod engine;
mod limiter;
pub mod rebuild;
pub mod reconcile;
mod schedule;
mod task;

use std::collections::BTreeMap;
use std::time::Duration;

/// The state machine lives in [`crate::domain::state`], which every stage shares.
pub use crate::domain::state::{self, Change, JobError, JobState, UnknownState};
pub use engine::{Engine, EngineError, EngineSettings};
pub use limiter::Limiter;
pub use reconcile::reconcile;

/// The engine settings a config reload may change while jobs run (see [`Engine::with_ops`]).
#[derive(Debug, Clone)]
pub struct LiveSettings {
    /// Timing and concurrency.
    pub settings: EngineSettings,
    /// The account-wide in-flight limit.
    pub max_in_flight: usize,
    /// Per-model in-flight limits.
    pub max_in_flight_per_model: BTreeMap<String, usize>,
    /// The inbox where new specs arrive (specs already taken settle in the inbox they came from).
    pub inbox: crate::domain::Inbox,
}

/// Delay before retry number `attempt` (1-based): `base · 2^(attempt-1)`, capped at `max`,
/// with ±25 % jitter so many jobs refused together do not come back together.
pub fn backoff(base: Duration, max: Duration, attempt: u32) -> Duration {
    let exp = base.saturating_mul(1u32 << attempt.saturating_sub(1).min(20));
    let capped = exp.min(max);
    let jitter: f64 = rand::random_range(0.75..1.25);
    capped.mul_f64(jitter).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let b = Duration::from_secs(2);
        let m = Duration::from_secs(60);
        let first = backoff(b, m, 1);
        assert!(first >= Duration::from_millis(1500) && first <= Duration::from_millis(2500), "{first:?}");
        let fourth = backoff(b, m, 4);
        assert!(fourth >= Duration::from_secs(12) && fourth <= Duration::from_secs(20), "{fourth:?}");
        assert!(backoff(b, m, 30) <= m);
    }
}
