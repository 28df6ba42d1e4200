//! Several daemons on one catalogue (issue 12): who works which job, leases kept alive by
//! heartbeat, taking over the jobs of a daemon whose lease ran out, and what the platform said
//! about the whole account (a pause, a model's lowered cap) so every daemon heeds it.
//!
//! A daemon's lease is one row in `daemons`, renewed by [`Catalog::heartbeat`]; each job names
//! its `owner`. The heartbeat that finds another daemon's lease run out takes over, in the same
//! transaction (the catalogue's write lock, an advisory lock on PostgreSQL, so two survivors
//! cannot both take one job): its `submitted` and `downloading` jobs become the survivor's (their
//! results expire a day after they are ready, so they must not wait for the dead one), and its
//! `submitting` ones become `uncertain` (their POST's fate is unknown; only a person submits them
//! again). Its queued jobs wait for it: nothing is paid for them yet, and their spec files are in
//! its inbox. A job's `origin`, the daemon whose inbox its spec came from, never changes: only
//! that daemon moves the spec file to `done/` or `failed/`.

use super::conn::{Begin, Dialect, Sql as _, args};
use super::jobs::apply_change;
use super::{Catalog, CatalogError};
use crate::domain::{Change, DaemonId, JobError, JobState};

/// What one heartbeat did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Heartbeat {
    /// This daemon's lease runs to here (unix ms).
    pub lease_until: i64,
    /// Daemons whose lease had run out and whose jobs this heartbeat took over (a daemon long
    /// gone with nothing left to take is not named again).
    pub took_over_from: Vec<String>,
    /// Jobs taken over (submitted or downloading), now this daemon's.
    pub taken: Vec<String>,
    /// Jobs a dead daemon left `submitting`, now `uncertain`.
    pub made_uncertain: Vec<String>,
}

/// A signal about the whole account, heeded by every daemon until it ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountSignal {
    /// No submission on the account until `until`: a business code that stops them all.
    Pause {
        /// The code that paused it.
        code: String,
        /// In words.
        reason: String,
        /// Unix ms.
        until: i64,
    },
    /// At most `cap` tasks of `model` in flight until `until` (the platform answered 1302).
    ModelCap {
        /// The model.
        model: String,
        /// Its cap.
        cap: usize,
        /// Unix ms.
        until: i64,
    },
}

/// `FOR UPDATE SKIP LOCKED` where the engine has it (PostgreSQL): rows another transaction holds
/// are left for later. SQLite's one writer at a time already serialises.
fn skip_locked(d: Dialect) -> &'static str {
    match d {
        Dialect::Sqlite => "",
        Dialect::Postgres => " FOR UPDATE OF j SKIP LOCKED",
    }
}

impl Catalog {
    /// Makes this connection the daemon `id`'s: the jobs it records are `id`'s (owner and
    /// origin), and the engine's reads (due, polling, downloads, settling, expiry warnings) see
    /// only `id`'s jobs.
    pub fn set_daemon(&mut self, id: &DaemonId) {
        self.daemon = Some(id.as_str().to_owned());
    }

    /// The daemon this connection works for, if any.
    pub fn daemon(&self) -> Option<&str> {
        self.daemon.as_deref()
    }

    /// Makes every unfinished job, and every spec not yet settled, the daemon's own: for a
    /// catalogue only one daemon may use (SQLite, held by [`super::DaemonLock`]), where a job
    /// recorded by an older vidkeep, or under another host name, is still this daemon's work.
    /// How many jobs changed hands.
    pub fn adopt_all(&mut self) -> Result<usize, CatalogError> {
        let Some(me) = self.daemon.clone() else { return Ok(0) };
        let tx = self.conn.begin("begin adoption", Begin::Immediate)?;
        let n = tx.execute(
            "adopt jobs",
            "UPDATE jobs SET owner = ?1 WHERE state NOT IN ('archived', 'archived_with_warnings', 'failed') \
             AND (owner IS NULL OR owner <> ?1)",
            args![me],
        )?;
        tx.execute(
            "adopt spec files",
            "UPDATE jobs SET origin = ?1 WHERE spec_place IN ('inbox', 'processing') \
             AND (origin IS NULL OR origin <> ?1)",
            args![me],
        )?;
        tx.commit("commit adoption")?;
        Ok(n)
    }

    /// Renews this daemon's lease to `now + lease_ms` and takes over from every daemon whose
    /// lease ran out before `now` (see the module). Jobs recorded before daemons had owners
    /// (`owner` NULL) are adopted the same way. Needs [`Catalog::set_daemon`].
    pub fn heartbeat(&mut self, host: &str, pid: u32, now: i64, lease_ms: i64) -> Result<Heartbeat, CatalogError> {
        let Some(me) = self.daemon.clone() else {
            return Err(CatalogError::Unsupported("a heartbeat needs the daemon's id (set_daemon)"));
        };
        let lease_until = now.saturating_add(lease_ms);
        let tx = self.conn.begin("begin heartbeat", Begin::Immediate)?;
        let renewed = tx.execute(
            "renew lease",
            "UPDATE daemons SET host = ?2, pid = ?3, heartbeat_at = ?4, lease_until = ?5 WHERE id = ?1",
            args![me, host, pid, now, lease_until],
        )?;
        if renewed == 0 {
            tx.execute(
                "register daemon",
                "INSERT INTO daemons (id, host, pid, started_at, heartbeat_at, lease_until) \
                 VALUES (?1, ?2, ?3, ?4, ?4, ?5)",
                args![me, host, pid, now, lease_until],
            )?;
        }
        let mut beat = Heartbeat { lease_until, ..Heartbeat::default() };
        // Jobs of the lapsed daemons, and jobs no daemon owns, that are paid for and in flight. On
        // PostgreSQL a row another transaction holds (a lapsed daemon that is slow, not dead, in
        // the middle of a transition) is skipped, not waited for: the next heartbeat gets it.
        let orphans: Vec<(String, String, Option<String>)> = tx.rows(
            "find orphaned jobs",
            &format!(
                "SELECT j.id, j.state, j.owner FROM jobs j \
                 WHERE j.state IN ('submitting', 'submitted', 'downloading', 'uncertain', 'queued', 'waiting_budget') \
                 AND j.state NOT IN ('archived', 'archived_with_warnings', 'failed') \
                 AND (j.owner IS NULL OR j.owner IN (SELECT d.id FROM daemons d WHERE d.lease_until < ?1 AND d.id <> ?2)) \
                 ORDER BY j.created_at{}",
                skip_locked(tx.dialect())
            ),
            args![now, me],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        for (id, state, owner) in orphans {
            let state: JobState =
                state.parse().map_err(|e: crate::domain::UnknownState| CatalogError::Corrupt(e.to_string()))?;
            let from = owner.clone().unwrap_or_else(|| "an older vidkeep".to_owned());
            let mut took = true;
            match (state, owner.is_some()) {
                (JobState::Submitting, true) => {
                    let error = JobError::new(
                        "daemon-lost",
                        format!(
                            "the daemon {from} stopped while submitting it, before it knew the platform's answer: it may \
                             have been charged. vidkeep never submits it again by itself; resolve it with `vidkeep resolve`"
                        ),
                    );
                    let note = apply_change(&tx, &id, &Change::Uncertain(error), now)?;
                    tx.execute(
                        "mark uncertain",
                        "UPDATE jobs SET state = 'uncertain', owner = ?2, updated_at = ?3 WHERE id = ?1 AND state = 'submitting'",
                        args![id, me, now],
                    )?;
                    tx.execute(
                        "insert event",
                        "INSERT INTO job_events (job_id, at, from_state, to_state, note) \
                         VALUES (?1, ?2, 'submitting', 'uncertain', ?3)",
                        args![id, now, note],
                    )?;
                    if let Some(event) = super::outbox::event_for(JobState::Uncertain) {
                        let extra = serde_json::json!({});
                        super::outbox::enqueue_job_event(&tx, &self.notify, event, &id, None, extra, now)?;
                    }
                    beat.made_uncertain.push(id);
                }
                (JobState::Submitted | JobState::Downloading | JobState::Uncertain, _) | (_, false) => {
                    tx.execute("take over job", "UPDATE jobs SET owner = ?2 WHERE id = ?1", args![id, me])?;
                    let note = format!("taken over by daemon {me} from {from}, whose lease had run out");
                    tx.execute(
                        "insert event",
                        "INSERT INTO job_events (job_id, at, from_state, to_state, note) VALUES (?1, ?2, ?3, ?3, ?4)",
                        args![id, now, state.as_str(), note],
                    )?;
                    beat.taken.push(id);
                }
                // A lapsed daemon's queued jobs wait for it: nothing is paid yet, and their spec
                // files are in its inbox.
                _ => took = false,
            }
            if let Some(owner) = owner.filter(|o| took && !beat.took_over_from.contains(o)) {
                beat.took_over_from.push(owner);
            }
        }
        beat.took_over_from.sort();
        tx.commit("commit heartbeat")?;
        Ok(beat)
    }

    /// Daemons whose lease ran out before `before` (for cleaning their staging areas).
    pub fn lapsed_daemons(&self, before: i64) -> Result<Vec<DaemonId>, CatalogError> {
        let ids: Vec<String> = self.conn.rows(
            "list lapsed daemons",
            "SELECT id FROM daemons WHERE lease_until < ?1 ORDER BY id",
            args![before],
            |r| r.get(0),
        )?;
        Ok(ids.iter().filter_map(|id| DaemonId::parse(id).ok()).collect())
    }

    /// Records `signal` for every daemon on the account (replacing one of its kind and model).
    pub fn raise_signal(&mut self, signal: &AccountSignal) -> Result<(), CatalogError> {
        let (kind, model, value, code, reason, until) = match signal {
            AccountSignal::Pause { code, reason, until } => ("pause", "", 0, code.as_str(), reason.as_str(), *until),
            AccountSignal::ModelCap { model, cap, until } => {
                ("model_cap", model.as_str(), i64::try_from(*cap).unwrap_or(i64::MAX), "1302", "", *until)
            }
        };
        self.conn.execute(
            "record account signal",
            "INSERT INTO account_signals (kind, model, value, code, reason, until) VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
             ON CONFLICT (kind, model) DO UPDATE SET value = excluded.value, code = excluded.code, \
             reason = excluded.reason, until = excluded.until",
            args![kind, model, value, code, reason, until],
        )?;
        Ok(())
    }

    /// The account signals still in force at `now`.
    pub fn signals(&self, now: i64) -> Result<Vec<AccountSignal>, CatalogError> {
        self.conn.rows(
            "read account signals",
            "SELECT kind, model, value, code, reason, until FROM account_signals WHERE until > ?1 ORDER BY kind, model",
            args![now],
            |r| {
                let kind: String = r.get(0)?;
                Ok(if kind == "pause" {
                    AccountSignal::Pause { code: r.get(3)?, reason: r.get(4)?, until: r.get(5)? }
                } else {
                    AccountSignal::ModelCap { model: r.get(1)?, cap: r.get(2)?, until: r.get(5)? }
                })
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Recorded, SpecJobs};

    fn daemon(name: &str) -> DaemonId {
        DaemonId::parse(name).expect("id")
    }

    /// A job `n` recorded by the catalogue's daemon, moved to `state` along the state machine.
    fn job_in(c: &mut Catalog, n: u32, state: JobState) -> String {
        let id = format!("job-{n}");
        let body = format!(r#"{{"model":"viduq1-text","prompt":"take {n}"}}"#);
        let answers = c.record_specs(&[SpecJobs::for_test(&id, &format!("s{n}.json"), &body)]).expect("record");
        assert!(matches!(answers[..], [Recorded::New]));
        let path = [
            (JobState::Queued, Change::Submitting { request_id: format!("r{n}") }),
            (JobState::Submitting, Change::Submitted { task_id: format!("t{n}") }),
            (
                JobState::Submitted,
                Change::ResultReady {
                    video_url: "http://x/v.mp4".into(),
                    cover_url: None,
                    result_json: "{}".into(),
                    expires_at: None,
                },
            ),
        ];
        for (from, change) in path {
            if from == state {
                break;
            }
            c.transition(&id, from, &change).expect("transition");
        }
        assert_eq!(c.job(&id).expect("job").state, state);
        id
    }

    #[test]
    fn a_lapsed_daemons_paid_jobs_are_taken_over_and_its_submissions_become_uncertain() {
        crate::catalog::testing::each_backend(|c, _| {
            let (a, b) = (daemon("host-a-00000001"), daemon("host-b-00000002"));
            c.set_daemon(&a);
            assert_eq!(c.heartbeat("host-a", 1, 1_000, 60_000).expect("beat").took_over_from, Vec::<String>::new());
            let queued = job_in(c, 1, JobState::Queued);
            let submitting = job_in(c, 2, JobState::Submitting);
            let submitted = job_in(c, 3, JobState::Submitted);
            let downloading = job_in(c, 4, JobState::Downloading);
            assert_eq!(c.due_queued(i64::MAX, 10).expect("due").len(), 1, "a's own queued job");

            // Daemon b starts while a's lease runs: it takes nothing and sees none of a's jobs.
            c.set_daemon(&b);
            let beat = c.heartbeat("host-b", 2, 30_000, 60_000).expect("beat");
            assert!(beat.taken.is_empty() && beat.made_uncertain.is_empty(), "{beat:?}");
            assert!(c.due_queued(i64::MAX, 10).expect("due").is_empty());
            assert!(c.jobs_in(JobState::Submitted).expect("jobs").is_empty());

            // a's lease ran out at 61 s: b's next heartbeat takes over.
            let beat = c.heartbeat("host-b", 2, 61_001, 60_000).expect("beat");
            assert_eq!(beat.took_over_from, [a.to_string()]);
            assert_eq!(beat.taken, [submitted.clone(), downloading.clone()]);
            assert_eq!(beat.made_uncertain, [submitting.as_str()]);
            let ids = |jobs: Vec<crate::catalog::JobRecord>| jobs.into_iter().map(|j| j.id).collect::<Vec<_>>();
            assert_eq!(ids(c.jobs_in(JobState::Submitted).expect("jobs")), [submitted.as_str()]);
            assert_eq!(ids(c.downloads_by_expiry(10).expect("jobs")), [downloading.as_str()]);
            assert_eq!(ids(c.jobs_in(JobState::Uncertain).expect("jobs")), [submitting.as_str()]);
            let lost = c.job(&submitting).expect("job");
            assert_eq!(lost.error.as_ref().map(|e| e.code.as_str()), Some("daemon-lost"));
            assert_eq!(c.job_money(&submitting).expect("money").possibly_charged_fen, 250, "possibly charged");
            assert!(c.due_queued(i64::MAX, 10).expect("due").is_empty(), "a's queued job waits for a");
            // A second heartbeat finds nothing more to take.
            let again = c.heartbeat("host-b", 2, 62_000, 60_000).expect("beat");
            assert!(again.taken.is_empty() && again.made_uncertain.is_empty());
            assert!(again.took_over_from.is_empty(), "a daemon gone with nothing left to take is not named again");

            // a comes back: its queued job is still its own, and the spec files it took stay its
            // to settle, whoever archived the job.
            c.set_daemon(&a);
            c.heartbeat("host-a", 3, 70_000, 60_000).expect("beat");
            assert_eq!(ids(c.due_queued(i64::MAX, 10).expect("due")), [queued]);
            assert!(c.jobs_in(JobState::Submitted).expect("jobs").is_empty(), "b keeps what it took");
            let files = c.spec_files_in_processing().expect("files");
            assert_eq!(files.len(), 4, "all four specs came from a's inbox: {files:?}");
            assert_eq!(
                c.lapsed_daemons(200_000).expect("lapsed").iter().map(DaemonId::to_string).collect::<Vec<_>>(),
                [a.to_string(), b.to_string()]
            );
        });
    }

    #[test]
    fn account_signals_are_shared_until_they_end() {
        crate::catalog::testing::each_backend(|c, _| {
            let pause = AccountSignal::Pause { code: "1113".into(), reason: "balance".into(), until: 5_000 };
            let cap = AccountSignal::ModelCap { model: "viduq1-text".into(), cap: 2, until: 3_000 };
            c.raise_signal(&pause).expect("pause");
            c.raise_signal(&cap).expect("cap");
            assert_eq!(c.signals(1_000).expect("signals"), [cap.clone(), pause.clone()]);
            let lower = AccountSignal::ModelCap { model: "viduq1-text".into(), cap: 1, until: 4_000 };
            c.raise_signal(&lower).expect("replace");
            assert_eq!(c.signals(3_500).expect("signals"), [lower, pause]);
            assert!(c.signals(5_000).expect("signals").is_empty(), "both ended");
        });
    }

    #[test]
    fn a_sole_daemon_adopts_every_unfinished_job() {
        crate::catalog::testing::each_backend(|c, _| {
            let old = job_in(c, 1, JobState::Submitted);
            c.set_daemon(&daemon("renamed-host-00000001"));
            assert!(c.jobs_in(JobState::Submitted).expect("jobs").is_empty(), "recorded with no daemon");
            assert_eq!(c.adopt_all().expect("adopt"), 1);
            assert_eq!(c.jobs_in(JobState::Submitted).expect("jobs")[0].id, old);
            assert_eq!(c.spec_files_in_processing().expect("files").len(), 1);
        });
    }
}
