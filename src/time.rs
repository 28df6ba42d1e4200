//! Wall-clock timestamps as the catalogue stores them: Unix milliseconds, shown as RFC 3339 UTC.
//! [`Clock`] is the wall clock the expiry decisions read, so tests can move it by hours.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The wall clock for decisions that span hours (result expiry, expiry warnings): the system's,
/// or a manual one that tests set and move. Cloning shares the same clock.
#[derive(Debug, Clone, Default)]
pub struct Clock {
    manual: Option<Arc<AtomicI64>>,
}

impl Clock {
    /// The system's wall clock.
    pub fn system() -> Clock {
        Clock { manual: None }
    }

    /// A clock that stands at `ms` until it is set or advanced.
    pub fn manual(ms: i64) -> Clock {
        Clock { manual: Some(Arc::new(AtomicI64::new(ms))) }
    }

    /// Milliseconds since the Unix epoch, by this clock.
    pub fn now_ms(&self) -> i64 {
        self.manual.as_ref().map_or_else(now_ms, |t| t.load(Ordering::SeqCst))
    }

    /// Moves a manual clock forward by `d` (the system clock cannot be moved; nothing happens).
    pub fn advance(&self, d: Duration) {
        if let Some(t) = &self.manual {
            t.fetch_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX), Ordering::SeqCst);
        }
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)).unwrap_or(0)
}

/// `ms` plus `d`, saturating.
pub fn after(ms: i64, d: Duration) -> i64 {
    ms.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// RFC 3339 UTC with milliseconds, e.g. `2026-11-24T08:00:00.123Z`.
pub fn rfc3339(ms: i64) -> String {
    let t = UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(t).to_string()
}

/// The UTC date of `ms` as `YYYY/MM/DD`, for storage key layout.
pub fn date_path(ms: i64) -> String {
    let s = rfc3339(ms);
    format!("{}/{}/{}", &s[0..4], &s[5..7], &s[8..10])
}

/// Parses an RFC 3339 timestamp or a plain `YYYY-MM-DD` date (midnight UTC) into Unix ms.
pub fn parse_date(s: &str) -> Option<i64> {
    let full = if s.len() == 10 { format!("{s}T00:00:00Z") } else { s.to_owned() };
    let t = humantime::parse_rfc3339_weak(&full).ok()?;
    t.duration_since(UNIX_EPOCH).ok().map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Serialises Unix milliseconds as RFC 3339 UTC (`#[serde(serialize_with = ...)]`), so every
/// time in vidkeep's JSON reads the same way.
pub fn serialize_rfc3339<S: serde::Serializer>(ms: &i64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&rfc3339(*ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let clock = Clock::manual(1_000);
        let shared = clock.clone();
        assert_eq!(clock.now_ms(), 1_000);
        shared.advance(Duration::from_secs(3600));
        assert_eq!(clock.now_ms(), 1_000 + 3_600_000);
        assert!(Clock::system().now_ms() > 1_700_000_000_000);
    }

    #[test]
    fn formats_and_parses() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(date_path(1_764_000_000_000), "2025/11/24");
        assert_eq!(parse_date("2025-11-24"), Some(1_763_942_400_000));
        assert_eq!(parse_date("nonsense"), None);
    }
}
