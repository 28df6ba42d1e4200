//! When the engine must read its lists of running jobs again, and when it must wake.
//!
//! The catalogue is the truth, but reading every submitted and downloading job on every turn
//! of the loop (a turn follows each finished step) made the CPU per job grow with the number
//! of jobs in flight. Only the engine moves a job into `submitted` or `downloading` (intake
//! makes `queued` jobs; a person's `resolve` makes `queued` or `failed` ones), so the engine
//! knows when those lists can have changed: after a step of its own ended, or when a poll or
//! download retry it scheduled comes due. It reads them then, and in any case every
//! [`REFRESH`], and otherwise sleeps until the next scheduled time instead of a fixed tick.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

/// The longest the engine goes without reading the lists again, whatever it knows.
pub(super) const REFRESH: Duration = Duration::from_secs(5);

/// One list of running jobs (submitted, to poll; or downloading, to fetch): whether it must be
/// read on the next turn.
#[derive(Debug)]
pub(super) struct List {
    /// Something may have added a job to it, or the last pass stopped at the concurrency cap
    /// with due jobs left.
    dirty: bool,
    /// When it was last read.
    read_at: Option<Instant>,
}

impl Default for List {
    fn default() -> List {
        List::new()
    }
}

impl List {
    /// A list that has never been read (so the first turn reads it).
    pub(super) fn new() -> List {
        List { dirty: true, read_at: None }
    }

    /// Something may have changed the list (a step of the engine ended).
    pub(super) fn touch(&mut self) {
        self.dirty = true;
    }

    /// Whether the next turn must read the list: it may have changed, one of `due` (the times
    /// the engine scheduled for its jobs) has come, or it was last read [`REFRESH`] ago.
    pub(super) fn must_read<'a>(&self, now: Instant, mut due: impl Iterator<Item = &'a Instant>) -> bool {
        self.dirty || self.read_at.is_none_or(|at| now >= at + REFRESH) || due.any(|t| *t <= now)
    }

    /// The list was read at `now`; `left_due` says whether the pass stopped at the concurrency
    /// cap with jobs still due (then the next turn reads it again, after a slot frees).
    pub(super) fn read(&mut self, now: Instant, left_due: bool) {
        self.read_at = Some(now);
        self.dirty = left_due;
    }

    /// When the list must next be read if nothing changes: the refresh time, or now if dirty.
    pub(super) fn next_read(&self, now: Instant) -> Instant {
        match (self.dirty, self.read_at) {
            (true, _) | (_, None) => now,
            (false, Some(at)) => at + REFRESH,
        }
    }
}

/// The earliest of `times` for jobs not `busy`, if any.
pub(super) fn earliest<'a, V: 'a>(
    times: impl Iterator<Item = (&'a String, &'a V)>,
    at: impl Fn(&V) -> Instant,
    busy: &std::collections::HashSet<String>,
) -> Option<Instant> {
    times.filter(|(id, _)| !busy.contains(*id)).map(|(_, v)| at(v)).min()
}

/// Drops the scheduled times of jobs no longer in the list just read (they moved on), so a
/// stale time never keeps the engine reading.
pub(super) fn keep_only<V>(times: &mut HashMap<String, V>, present: &std::collections::HashSet<&str>) {
    times.retain(|id, _| present.contains(id.as_str()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_list_is_read_when_touched_due_or_stale_and_not_otherwise() {
        let t0 = Instant::now();
        let mut list = List::new();
        assert!(list.must_read(t0, std::iter::empty()), "never read");
        list.read(t0, false);
        assert!(!list.must_read(t0, std::iter::empty()), "just read, nothing due");
        let later = t0 + Duration::from_millis(200);
        assert!(!list.must_read(t0, [later].iter()), "a poll scheduled later is not due yet");
        assert!(list.must_read(later, [later].iter()), "…and is when its time comes");
        list.touch();
        assert!(list.must_read(t0, std::iter::empty()), "a step ended");
        list.read(t0, true);
        assert!(list.must_read(t0, std::iter::empty()), "the pass stopped at the cap with jobs due");
        list.read(t0, false);
        assert!(list.must_read(t0 + REFRESH, std::iter::empty()), "stale");
        assert_eq!(list.next_read(t0), t0 + REFRESH);
        list.touch();
        assert_eq!(list.next_read(t0), t0);
    }

    #[test]
    fn the_earliest_time_skips_busy_jobs_and_stale_times_are_dropped() {
        let t0 = Instant::now();
        let mut times = HashMap::from([
            ("a".to_owned(), t0 + Duration::from_secs(3)),
            ("b".to_owned(), t0 + Duration::from_secs(1)),
            ("c".to_owned(), t0 + Duration::from_secs(2)),
        ]);
        let busy = std::collections::HashSet::from(["b".to_owned()]);
        assert_eq!(earliest(times.iter(), |t| *t, &busy), Some(t0 + Duration::from_secs(2)));
        keep_only(&mut times, &std::collections::HashSet::from(["a"]));
        assert_eq!(times.keys().collect::<Vec<_>>(), ["a"]);
    }
}
