//! Narrow read-only queries for operations: the counts and times that `/metrics`, `/readyz`
//! and the systemd status line show. Each is one aggregate query; none reads a job row.

use std::collections::BTreeMap;

use super::conn::{Sql as _, args};
use super::{Catalog, CatalogError};

pub use crate::domain::RESULT_URL_LIFETIME_MS;

/// A snapshot of the catalogue for operators.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpsSnapshot {
    /// Jobs per state name (`queued`, `submitted`, ...); states with no job are absent.
    pub by_state: BTreeMap<String, u64>,
    /// Queued jobs whose retry time has come, waiting only for an in-flight slot.
    pub queued_due: u64,
    /// When the earliest result URL not yet archived expires (Unix ms), if any is waiting.
    pub earliest_expiry_ms: Option<i64>,
    /// List price (0.01 CNY) of the submissions accepted since `since_ms`.
    pub spend_fen: i64,
    /// Paid results not yet archived that expire within `[alerts] expiry_warning` (set by
    /// `Ops::snapshot`).
    pub expiring: u64,
    /// Notification events pending and dead (set by `Ops::snapshot`).
    pub outbox: super::OutboxCounts,
    /// Why the oldest `waiting_budget` job waits, if one does.
    pub budget_wait: Option<String>,
    /// Charged and possibly-charged fen this month (budget zone) by model.
    pub spend_month_by_model: BTreeMap<String, i64>,
    /// Fen left of each set budget (`daily`, `monthly`); negative when overspent.
    pub budget_remaining: BTreeMap<&'static str, i64>,
}

impl OpsSnapshot {
    /// Jobs in `state`.
    pub fn count(&self, state: &str) -> u64 {
        self.by_state.get(state).copied().unwrap_or(0)
    }
}

impl Catalog {
    /// Counts for operators at `now_ms`; spend counts submissions accepted since `since_ms`.
    pub fn ops_snapshot(&self, now_ms: i64, since_ms: i64) -> Result<OpsSnapshot, CatalogError> {
        let counts: Vec<(String, u64)> =
            self.conn.rows("count jobs", "SELECT state, COUNT(*) FROM jobs GROUP BY state", args![], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })?;
        let by_state: BTreeMap<String, u64> = counts.into_iter().collect();
        let queued_due: i64 = self.conn.one(
            "count due jobs",
            "SELECT COUNT(*) FROM jobs WHERE state = 'queued' AND next_attempt_at <= ?1",
            args![now_ms],
            |r| r.get(0),
        )?;
        let earliest_expiry: Option<i64> = self.conn.one(
            "earliest result",
            "SELECT MIN(COALESCE(expires_at, result_at + ?1)) FROM jobs WHERE state = 'downloading'",
            args![RESULT_URL_LIFETIME_MS],
            |r| r.get(0),
        )?;
        let spend_fen: i64 = self.conn.one(
            "spend",
            "SELECT CAST(COALESCE(SUM(j.price_fen), 0) AS BIGINT) FROM submissions s JOIN jobs j ON j.id = s.job_id \
             WHERE s.outcome = 'accepted' AND s.started_at >= ?1",
            args![since_ms],
            |r| r.get(0),
        )?;
        let budget_wait: Option<String> = self
            .conn
            .first(
                "budget wait",
                "SELECT error_message FROM jobs INDEXED BY jobs_by_state WHERE state = 'waiting_budget' \
                 ORDER BY created_at LIMIT 1",
                args![],
                |r| r.get(0),
            )?
            .flatten();
        Ok(OpsSnapshot {
            spend_month_by_model: BTreeMap::new(),
            budget_remaining: BTreeMap::new(),
            budget_wait,
            by_state,
            queued_due: u64::try_from(queued_due).unwrap_or(0),
            earliest_expiry_ms: earliest_expiry,
            expiring: 0,
            outbox: super::OutboxCounts::default(),
            spend_fen,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_of_a_seeded_catalogue() {
        crate::catalog::testing::each_backend(|c, _| {
            use crate::catalog::conn::{Sql as _, args};
            assert_eq!(c.ops_snapshot(1_000, 0).expect("empty"), OpsSnapshot::default());
            let insert = |id: &str, state: &str, next: i64, result_at: Option<i64>, price: i64| {
                c.conn
                    .execute(
                        "test",
                        "INSERT INTO jobs (id, spec_name, spec_file, spec_place, spec_sha256, spec_format, fingerprint, \
                         model, request_display, price_fen, state, next_attempt_at, task_id, video_url, result_at, \
                         created_at, updated_at) VALUES (?1, 's', 's', 'processing', 'h', 'json', 'f', 'viduq1-text', \
                         '{}', ?5, ?2, ?3, 't', 'u', ?4, 0, 0)",
                        args![id, state, next, result_at, price],
                    )
                    .expect("insert job");
            };
            insert("a", "queued", 0, None, 25);
            insert("b", "queued", 5_000, None, 25);
            insert("c", "downloading", 0, Some(3_000), 40);
            insert("d", "downloading", 0, Some(2_000), 40);
            for (job, started, outcome) in [("c", 100, "accepted"), ("d", 2_000, "accepted"), ("a", 2_000, "refused")] {
                c.conn
                    .execute(
                        "test",
                        "INSERT INTO submissions (job_id, request_id, started_at, outcome) VALUES (?1, ?2, ?3, ?4)",
                        args![job, format!("{job}{started}"), started, outcome],
                    )
                    .expect("insert submission");
            }
            let s = c.ops_snapshot(1_000, 1_000).expect("snapshot");
            assert_eq!((s.count("queued"), s.count("downloading"), s.count("archived")), (2, 2, 0));
            assert_eq!(s.queued_due, 1, "b waits for its retry time");
            assert_eq!(s.earliest_expiry_ms, Some(2_000 + RESULT_URL_LIFETIME_MS));
            assert_eq!(s.spend_fen, 40, "only d was accepted since 1000");
        });
    }
}
