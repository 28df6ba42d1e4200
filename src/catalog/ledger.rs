//! The spend ledger: one `submissions` row per submission with its price, read through the
//! `ledger` view as `charged` / `possibly-charged` / `not-charged`; and the budget check that
//! runs in the same transaction as the `submitting` transition it guards.

use serde::Serialize;

use super::conn::{Begin, Sql, args};
use super::jobs::apply_change;
use super::{Catalog, CatalogError};
use crate::domain::{Change, JobState};
use crate::money::{Budget, Prices, Spent};

/// What a job's submissions cost, attempts apart from charges.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Money {
    /// Submissions started.
    pub attempts: i64,
    /// Fen the platform charged (it returned a task id).
    pub charged_fen: i64,
    /// Fen that may have been charged (answer lost, or in flight).
    pub possibly_charged_fen: i64,
    /// Submissions that were refused or never sent: not charged.
    pub not_charged: i64,
    /// Fen paid for a result that expired before it was archived (`result-expired`): money
    /// lost, nothing kept. Part of `charged_fen`, not in addition to it.
    pub lost_fen: i64,
}

/// One charged or possibly-charged submission, as `vidkeep spend --format csv` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerRow {
    /// When the submission started (unix ms).
    pub started_at: i64,
    /// The job.
    pub job_id: String,
    /// The spec's file name.
    pub spec_name: String,
    /// Model code.
    pub model: String,
    /// Project, if any.
    pub project: Option<String>,
    /// Platform task id, if accepted.
    pub task_id: Option<String>,
    /// Price in fen.
    pub price_fen: i64,
    /// `charged` or `possibly-charged`.
    pub outcome: String,
    /// Charged for a result that expired before it was archived (`result-expired`): money lost.
    pub lost: bool,
}

/// The answer of [`Catalog::submit_within_budget`].
#[derive(Debug, Clone, PartialEq)]
pub enum BudgetCheck {
    /// The job is now `submitting`; send this body.
    Submit(serde_json::Map<String, serde_json::Value>),
    /// The job waits in `waiting_budget` for this reason.
    Wait(String),
    /// The account has as many tasks in flight as it may (in all, or of this job's model), counting
    /// every daemon's: the job stays as it was, to be tried when one ends.
    Full,
}

/// How many tasks the account may have in flight, counted across every daemon on the catalogue
/// in the same transaction as the submission they would admit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InFlight {
    /// In all.
    pub total: usize,
    /// Of the job's model, if it has a cap of its own.
    pub model: Option<usize>,
}

impl InFlight {
    /// No limit.
    pub const UNLIMITED: InFlight = InFlight { total: usize::MAX, model: None };
}

const SPENT: &str = "SELECT CAST(COALESCE(SUM(price_fen), 0) AS BIGINT) FROM ledger \
    WHERE money <> 'not-charged' AND started_at >= ?1 AND started_at < ?2";

impl Catalog {
    /// Charged plus possibly-charged fen in the budget's day and month around `now`, and this
    /// month for `project`.
    pub fn spent(&self, budget: &Budget, project: Option<&str>, now: i64) -> Result<Spent, CatalogError> {
        spent_in(&self.conn, budget, project, now)
    }

    /// The `queued → submitting` (or `waiting_budget → submitting`) transition with its budget
    /// check, in one `IMMEDIATE` transaction: the spend it reads includes every pending row, so
    /// two jobs can never both spend the last yuan. Over budget, a queued job becomes
    /// `waiting_budget` with the reason; a waiting job keeps waiting (its reason refreshed).
    pub fn submit_within_budget(
        &mut self,
        job_id: &str,
        request_id: &str,
        prices: &Prices,
        budget: &Budget,
        limits: InFlight,
        now: i64,
    ) -> Result<BudgetCheck, CatalogError> {
        let tx = self.conn.begin("begin submit", Begin::Immediate)?;
        let row: Option<(String, String, Option<String>, Option<String>)> = tx.first(
            "read job",
            "SELECT state, model, project, error_message FROM jobs WHERE id = ?1",
            args![job_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?;
        let (state, model, project, message) = row.ok_or_else(|| CatalogError::NoJob(job_id.to_owned()))?;
        let from: JobState =
            state.parse().map_err(|e: crate::domain::UnknownState| CatalogError::Corrupt(e.to_string()))?;
        if !matches!(from, JobState::Queued | JobState::WaitingBudget) {
            return Err(CatalogError::Conflict { job_id: job_id.to_owned(), expected: JobState::Queued, found: from });
        }
        let (total, of_model): (usize, usize) = tx.one(
            "count in flight",
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE model = ?1) FROM jobs INDEXED BY jobs_by_state \
             WHERE state IN ('submitting', 'submitted')",
            args![model],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        if total >= limits.total || limits.model.is_some_and(|cap| of_model >= cap) {
            return Ok(BudgetCheck::Full);
        }
        let price = prices.fen(&model);
        let spent = spent_in(&tx, budget, project.as_deref(), now)?;
        let mut reached = None;
        let (change, answer) = match budget.check(spent, price, project.as_deref()) {
            Err(blocked) if from == JobState::WaitingBudget => {
                if message.as_deref() != Some(blocked.reason.as_str()) {
                    tx.execute(
                        "refresh budget reason",
                        "UPDATE jobs SET error_message = ?2, updated_at = ?3 WHERE id = ?1",
                        args![job_id, blocked.reason, now],
                    )?;
                }
                tx.commit("commit budget wait")?;
                return Ok(BudgetCheck::Wait(blocked.reason));
            }
            Err(blocked) => {
                reached = Some((blocked.limit, blocked.reason.clone()));
                (Change::WaitBudget { reason: blocked.reason.clone() }, BudgetCheck::Wait(blocked.reason))
            }
            Ok(()) => {
                let body: String =
                    tx.one("read request", "SELECT body FROM job_requests WHERE job_id = ?1", args![job_id], |r| {
                        r.get(0)
                    })?;
                let body =
                    serde_json::from_str(&body).map_err(|e| CatalogError::Corrupt(format!("request body: {e}")))?;
                tx.execute("set price", "UPDATE jobs SET price_fen = ?2 WHERE id = ?1", args![job_id, price])?;
                (Change::Submitting { request_id: request_id.to_owned() }, BudgetCheck::Submit(body))
            }
        };
        let to = change.target();
        let set_state = || {
            tx.execute(
                "set state",
                "UPDATE jobs SET state = ?2, updated_at = ?3 WHERE id = ?1 AND state = ?4",
                args![job_id, to.as_str(), now, from.as_str()],
            )
        };
        // The schema wants a reason on every waiting_budget row: leave that state before the
        // submission clears it, and give the reason before entering it.
        let note = if to == JobState::Submitting {
            set_state()?;
            apply_change(&tx, job_id, &change, now)?
        } else {
            let note = apply_change(&tx, job_id, &change, now)?;
            set_state()?;
            note
        };
        tx.execute(
            "insert event",
            "INSERT INTO job_events (job_id, at, from_state, to_state, note) VALUES (?1, ?2, ?3, ?4, ?5)",
            args![job_id, now, from.as_str(), to.as_str(), note],
        )?;
        if let Some((limit, reason)) = reached {
            // Once per budget and period: the first job it stops says the budget is reached.
            let p = budget.periods(now);
            let period = if limit == "daily" { p.day_start } else { p.month_start };
            let scope = if limit == "project" { project.clone().unwrap_or_default() } else { String::new() };
            let key = format!("budget-reached:{limit}:{scope}:{period}");
            let extra = serde_json::json!({ "budget": limit, "reason": reason });
            super::outbox::enqueue_job_event(&tx, &self.notify, "budget_reached", job_id, Some(&key), extra, now)?;
            super::outbox::enqueue_job_event(
                &tx,
                &self.notify,
                "waiting_budget",
                job_id,
                None,
                serde_json::json!({}),
                now,
            )?;
        }
        tx.commit("commit submit")?;
        Ok(answer)
    }

    /// The job's attempts, charged and possibly-charged amounts.
    pub fn job_money(&self, job_id: &str) -> Result<Money, CatalogError> {
        self.conn.one(
            "read job money",
            "SELECT COUNT(*), \
             CAST(COALESCE(SUM(CASE money WHEN 'charged' THEN price_fen END), 0) AS BIGINT), \
             CAST(COALESCE(SUM(CASE money WHEN 'possibly-charged' THEN price_fen END), 0) AS BIGINT), \
             COUNT(*) FILTER (WHERE money = 'not-charged'), \
             CAST(COALESCE(SUM(CASE WHEN money = 'charged' AND lost THEN price_fen END), 0) AS BIGINT) \
             FROM (SELECT l.*, (j.state = 'failed' AND j.error_code = 'result-expired') AS lost \
                   FROM ledger l JOIN jobs j ON j.id = l.job_id WHERE l.job_id = ?1) AS m",
            args![job_id],
            |r| {
                Ok(Money {
                    attempts: r.get(0)?,
                    charged_fen: r.get(1)?,
                    possibly_charged_fen: r.get(2)?,
                    not_charged: r.get(3)?,
                    lost_fen: r.get(4)?,
                })
            },
        )
    }

    /// Charged and possibly-charged fen started in `[since, until)`, by model.
    pub fn spend_by_model(
        &self,
        since: i64,
        until: i64,
    ) -> Result<std::collections::BTreeMap<String, i64>, CatalogError> {
        let rows = self.conn.rows(
            "spend by model",
            "SELECT model, CAST(SUM(price_fen) AS BIGINT) FROM ledger WHERE money <> 'not-charged' \
             AND started_at >= ?1 AND started_at < ?2 GROUP BY model",
            args![since, until],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(rows.into_iter().collect())
    }

    /// Charged and possibly-charged submissions started in `[since, until)`, oldest first.
    pub fn ledger(&self, since: i64, until: i64) -> Result<Vec<LedgerRow>, CatalogError> {
        self.conn.rows(
            "read ledger",
            "SELECT started_at, job_id, spec_name, model, project, task_id, price_fen, money, \
             money = 'charged' AND EXISTS (SELECT 1 FROM jobs j WHERE j.id = ledger.job_id \
               AND j.state = 'failed' AND j.error_code = 'result-expired') FROM ledger \
             WHERE money <> 'not-charged' AND started_at >= ?1 AND started_at < ?2 ORDER BY started_at, id",
            args![since, until],
            |r| {
                Ok(LedgerRow {
                    started_at: r.get(0)?,
                    job_id: r.get(1)?,
                    spec_name: r.get(2)?,
                    model: r.get(3)?,
                    project: r.get(4)?,
                    task_id: r.get(5)?,
                    price_fen: r.get(6)?,
                    outcome: r.get(7)?,
                    lost: r.get(8)?,
                })
            },
        )
    }
}

fn spent_in(conn: &impl Sql, budget: &Budget, project: Option<&str>, now: i64) -> Result<Spent, CatalogError> {
    let p = budget.periods(now);
    let sum = |a: i64, b: i64| conn.one("sum spend", SPENT, args![a, b], |r| r.get::<i64>(0));
    let day = sum(p.day_start, p.next_day)?;
    let month = sum(p.month_start, p.next_month)?;
    let project_month = match project {
        Some(name) => conn.one(
            "sum project spend",
            &format!("{SPENT} AND project = ?3"),
            args![p.month_start, p.next_month, name],
            |r| r.get::<i64>(0),
        )?,
        None => 0,
    };
    Ok(Spent { day, month, project_month })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::catalog::NewJob;
    use crate::spec::{SpecContext, SpecFormat};

    fn job(c: &mut Catalog, n: usize) -> String {
        let defaults = serde_json::Map::new();
        let ctx =
            SpecContext { defaults: &defaults, spec_dir: std::path::Path::new("."), inbox: std::path::Path::new(".") };
        let text = format!(r#"{{"model":"viduq1-text","prompt":"a lighthouse at dusk, take {n}"}}"#);
        let spec = crate::spec::parse(&format!("s{n}.json"), text.as_bytes(), &ctx).expect("spec");
        let id = format!("job-{n}");
        c.insert_job(&NewJob {
            id: id.clone(),
            spec_name: format!("s{n}.json"),
            spec_sha256: format!("{n}"),
            spec_format: SpecFormat::Json,
            spec,
            take: None,
        })
        .expect("insert");
        id
    }

    fn budget(daily: i64) -> Budget {
        let mut b = Budget::unlimited("Asia/Shanghai").expect("zone");
        b.daily = Some(daily);
        b
    }

    #[test]
    fn the_budget_check_counts_pending_rows_and_resets_at_midnight_in_its_zone() {
        crate::catalog::testing::each_backend(|c, _| {
            let ids: Vec<String> = (0..3).map(|n| job(c, n)).collect();
            let prices = Prices::default();
            let b = budget(500);
            // 2026-12-01 23:00 Shanghai (15:00Z); the next Shanghai day starts an hour later.
            let late = 1_796_137_200_000;
            let mut submitted = 0;
            for (n, id) in ids.iter().enumerate() {
                match c
                    .submit_within_budget(id, &format!("r{n}"), &prices, &b, InFlight::UNLIMITED, late)
                    .expect("check")
                {
                    BudgetCheck::Submit(_) => submitted += 1,
                    BudgetCheck::Wait(reason) => {
                        assert_eq!(reason, "daily budget 5.00 RMB: 5.00 spent, next day starts 00:00 Asia/Shanghai");
                    }
                    BudgetCheck::Full => panic!("no in-flight limit was set"),
                }
            }
            assert_eq!(submitted, 2, "two pending 2.50 submissions fill a 5.00 budget before either is answered");
            assert_eq!(c.job(&ids[2]).expect("job").state, JobState::WaitingBudget);
            assert_eq!(c.spent(&b, None, late).expect("spent").day, 500);
            // Still the same Shanghai day one minute before midnight: it keeps waiting.
            let again = c
                .submit_within_budget(&ids[2], "r2", &prices, &b, InFlight::UNLIMITED, late + 59 * 60_000)
                .expect("check");
            assert!(matches!(again, BudgetCheck::Wait(_)));
            // 00:00:01 Shanghai (16:00:01Z, still 2026-12-01 in UTC): a new budget day.
            let next = c
                .submit_within_budget(&ids[2], "r2", &prices, &b, InFlight::UNLIMITED, late + 3_601_000)
                .expect("check");
            assert!(matches!(next, BudgetCheck::Submit(_)), "{next:?}");
            assert_eq!(c.job(&ids[2]).expect("job").state, JobState::Submitting);
            let money = c.job_money(&ids[2]).expect("money");
            assert_eq!(
                money,
                Money { attempts: 1, charged_fen: 0, possibly_charged_fen: 250, not_charged: 0, lost_fen: 0 }
            );
        });
    }

    #[test]
    fn the_ledger_tells_charges_from_attempts() {
        crate::catalog::testing::each_backend(|c, _| {
            let id = job(c, 0);
            let prices = Prices::new(BTreeMap::from([("viduq1-text".to_owned(), 199)]));
            let b = Budget::default();
            let refused = crate::domain::JobError::new("api-network", "never sent");
            c.submit_within_budget(&id, "r1", &prices, &b, InFlight::UNLIMITED, 1000).expect("submit");
            c.transition(&id, JobState::Submitting, &Change::Requeue { next_attempt_at: 0, error: refused })
                .expect("requeue");
            c.submit_within_budget(&id, "r2", &prices, &b, InFlight::UNLIMITED, 2000).expect("submit");
            c.transition(&id, JobState::Submitting, &Change::Submitted { task_id: "t1".to_owned() }).expect("accept");
            let money = c.job_money(&id).expect("money");
            assert_eq!(
                money,
                Money { attempts: 2, charged_fen: 199, possibly_charged_fen: 0, not_charged: 1, lost_fen: 0 }
            );
            let rows = c.ledger(0, i64::MAX).expect("ledger");
            assert_eq!(rows.len(), 1, "only the charged submission is on the bill");
            assert_eq!(
                (rows[0].task_id.as_deref(), rows[0].price_fen, rows[0].outcome.as_str()),
                (Some("t1"), 199, "charged")
            );
        });
    }

    #[test]
    fn the_account_limit_is_counted_in_the_submissions_own_transaction() {
        crate::catalog::testing::each_backend(|c, _| {
            let ids: Vec<String> = (0..3).map(|n| job(c, n)).collect();
            let (prices, b) = (Prices::default(), Budget::default());
            let two = InFlight { total: 2, model: None };
            let submit = |c: &mut Catalog, n: usize, limits| {
                c.submit_within_budget(&ids[n], &format!("r{n}"), &prices, &b, limits, 1_000).expect("check")
            };
            assert!(matches!(submit(c, 0, two), BudgetCheck::Submit(_)));
            let one_of_model = InFlight { total: 2, model: Some(1) };
            assert_eq!(submit(c, 1, one_of_model), BudgetCheck::Full, "the model's one slot is taken");
            assert_eq!(c.job(&ids[1]).expect("job").state, JobState::Queued, "a full account changes nothing");
            assert!(matches!(submit(c, 1, two), BudgetCheck::Submit(_)));
            assert_eq!(submit(c, 2, two), BudgetCheck::Full, "two in flight in all");
            c.transition(&ids[0], JobState::Submitting, &Change::Submitted { task_id: "t0".into() }).expect("accept");
            assert_eq!(submit(c, 2, two), BudgetCheck::Full, "submitted tasks count until they end");
            let failed = crate::domain::JobError::new("task-failed", "FAIL");
            c.transition(&ids[0], JobState::Submitted, &Change::Failed(failed)).expect("fail");
            assert!(matches!(submit(c, 2, two), BudgetCheck::Submit(_)), "a slot came free");
        });
    }
}
