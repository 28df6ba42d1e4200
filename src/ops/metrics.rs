//! Prometheus metrics. Counters and the histogram move where events happen (the engine calls
//! [`Metrics`] through [`crate::ops::Ops`]); gauges that describe the catalogue are read from it
//! at scrape time ([`Metrics::render`]), so they can never drift from the truth.
//!
//! `prometheus-client` rather than the `metrics` facade: its registry is a value, not a
//! process-wide recorder, so several daemons in one test binary each count their own jobs,
//! and nothing opens a listener of its own.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::catalog::OpsSnapshot;
use crate::domain::JobState;

/// Label set with one label.
type Label = [(&'static str, String); 1];

/// The content type of [`Metrics::render`]'s output (OpenMetrics text, which Prometheus reads).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Every metric vidkeep exports.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    submissions: Family<Label, Counter>,
    platform_errors: Family<Label, Counter>,
    downloads: Family<Label, Counter>,
    archived_bytes: Counter,
    archive_seconds: Histogram,
    jobs: Family<Label, Gauge>,
    expiry_seconds: Family<Vec<(&'static str, String)>, Gauge<f64, AtomicU64>>,
    spend_fen: Gauge,
    intake_scans: Counter,
    engine_reads: Family<Label, Counter>,
    intake_paused: Gauge,
    spend_month: Family<Label, Gauge>,
    budget_remaining: Family<Label, Gauge>,
    results_expiring: Gauge,
    notifications: Family<Label, Counter>,
    notify_outbox: Family<Label, Gauge>,
    rejected_specs: Family<Label, Counter>,
    verify_problems: Family<Label, Counter>,
    account_paused: Family<Label, Gauge>,
    in_flight: Family<Label, Gauge>,
    model_limit: Family<Label, Gauge>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// A fresh registry with every metric at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("vidkeep");
        let submissions = Family::<Label, Counter>::default();
        registry.register(
            "submissions",
            "Submissions to the platform by outcome (accepted, refused, uncertain)",
            submissions.clone(),
        );
        let platform_errors = Family::<Label, Counter>::default();
        registry.register(
            "platform_errors",
            "Errors from the platform API (submit and poll) by code: platform-<business code> or api-*",
            platform_errors.clone(),
        );
        let downloads = Family::<Label, Counter>::default();
        registry.register("downloads", "Result downloads by result (archived, retry, expired)", downloads.clone());
        let archived_bytes = Counter::default();
        registry.register("archived_bytes", "Bytes of video and cover archived", archived_bytes.clone());
        let archive_seconds = Histogram::new(exponential_buckets(0.25, 2.0, 13));
        registry.register(
            "archive_duration_seconds",
            "Time to archive one job's results (download, hash, store)",
            archive_seconds.clone(),
        );
        let jobs = Family::<Label, Gauge>::default();
        registry.register("jobs", "Jobs in the catalogue by state", jobs.clone());
        let expiry_seconds = Family::<Vec<(&'static str, String)>, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "result_url_expiry_seconds",
            "Seconds until the earliest result URL not yet archived expires (absent when none waits)",
            expiry_seconds.clone(),
        );
        let spend_fen = Gauge::default();
        registry.register(
            "spend_today_fen",
            "List price of the submissions accepted since midnight UTC, in 0.01 CNY",
            spend_fen.clone(),
        );
        let intake_scans = Counter::default();
        registry.register(
            "intake_scans",
            "Scans of the inbox (on start, after file events, on the rescan timer)",
            intake_scans.clone(),
        );
        let engine_reads = Family::<Label, Counter>::default();
        registry.register(
            "engine_reads",
            "Reads of the running jobs from the catalogue by the engine, by list (submitted, downloading)",
            engine_reads.clone(),
        );
        let intake_paused = Gauge::default();
        registry.register(
            "intake_paused",
            "1 while intake is paused because processing/, done/ or failed/ cannot be used (see /readyz)",
            intake_paused.clone(),
        );
        let spend_month = Family::<Label, Gauge>::default();
        registry.register(
            "spend_month_fen",
            "Charged plus possibly-charged fen this month ([budget] timezone), by model",
            spend_month.clone(),
        );
        let budget_remaining = Family::<Label, Gauge>::default();
        registry.register(
            "budget_remaining_fen",
            "Fen left of each set budget (period daily or monthly); absent when no budget is set",
            budget_remaining.clone(),
        );
        let results_expiring = Gauge::default();
        registry.register(
            "results_expiring",
            "Paid results not yet archived whose links expire within [alerts] expiry_warning",
            results_expiring.clone(),
        );
        let notifications = Family::<Label, Counter>::default();
        registry.register(
            "notifications",
            "Notification deliveries by result (delivered, retry, dead)",
            notifications.clone(),
        );
        let notify_outbox = Family::<Label, Gauge>::default();
        registry.register(
            "notify_outbox",
            "Notification events in the outbox by status (pending, dead)",
            notify_outbox.clone(),
        );
        for result in ["delivered", "retry", "dead"] {
            let _ = notifications.get_or_create(&[("result", result.to_owned())]);
        }
        let rejected_specs = Family::<Label, Counter>::default();
        registry.register(
            "rejected_specs",
            "Specs refused at intake by reason (the rejection code; each has a report in failed/)",
            rejected_specs.clone(),
        );
        let verify_problems = Family::<Label, Counter>::default();
        registry.register(
            "verify_problems",
            "Stored objects the scheduled verification found missing, changed or unreadable",
            verify_problems.clone(),
        );
        let in_flight = Family::<Label, Gauge>::default();
        registry.register("in_flight", "Tasks submitted and not finished, by model", in_flight.clone());
        let model_limit = Family::<Label, Gauge>::default();
        registry.register(
            "model_limit",
            "Tasks a model may have in flight now: its configured limit (or the account's), lowered after a 1302",
            model_limit.clone(),
        );
        for model in crate::spec::models::MODELS {
            let _ = in_flight.get_or_create(&[("model", model.name.to_owned())]);
        }
        let account_paused = Family::<Label, Gauge>::default();
        registry.register(
            "account_paused",
            "1 while submissions are paused for the whole account, labelled with the platform's reason code",
            account_paused.clone(),
        );
        let build_info = Family::<Label, Gauge>::default();
        registry.register("build_info", "The running vidkeep's version (always 1)", build_info.clone());
        build_info.get_or_create(&[("version", env!("CARGO_PKG_VERSION").to_owned())]).set(1);
        for code in crate::spec::SpecError::CODES {
            let _ = rejected_specs.get_or_create(&[("reason", (*code).to_owned())]);
        }
        let _ = account_paused.get_or_create(&[("reason", String::new())]);
        for result in ["missing", "mismatch", "unreadable"] {
            let _ = verify_problems.get_or_create(&[("result", result.to_owned())]);
        }
        for state in JobState::ALL {
            let _ = jobs.get_or_create(&[("state", state.as_str().to_owned())]);
        }
        for outcome in ["accepted", "refused", "uncertain"] {
            let _ = submissions.get_or_create(&[("outcome", outcome.to_owned())]);
        }
        for result in ["archived", "retry", "expired"] {
            let _ = downloads.get_or_create(&[("result", result.to_owned())]);
        }
        Metrics {
            registry,
            submissions,
            platform_errors,
            downloads,
            archived_bytes,
            archive_seconds,
            jobs,
            expiry_seconds,
            spend_fen,
            intake_scans,
            engine_reads,
            intake_paused,
            spend_month,
            budget_remaining,
            results_expiring,
            notifications,
            notify_outbox,
            rejected_specs,
            verify_problems,
            account_paused,
            in_flight,
            model_limit,
        }
    }

    /// A notification delivery ended with `result` (`delivered`, `retry` or `dead`).
    pub fn notification(&self, result: &'static str) {
        self.notifications.get_or_create(&[("result", result.to_owned())]).inc();
    }

    /// A spec was refused at intake with rejection code `code`.
    pub fn rejected_spec(&self, code: &str) {
        self.rejected_specs.get_or_create(&[("reason", code.to_owned())]).inc();
    }

    /// Verification found a stored object `result` (`missing`, `mismatch`, `unreadable`).
    pub fn verify_problem(&self, result: &str) {
        self.verify_problems.get_or_create(&[("result", result.to_owned())]).inc();
    }

    /// `model` has `in_flight` tasks running and may have `limit` now.
    pub fn set_model_load(&self, model: &str, in_flight: usize, limit: usize) {
        let label = [("model", model.to_owned())];
        self.in_flight.get_or_create(&label).set(i64::try_from(in_flight).unwrap_or(i64::MAX));
        self.model_limit.get_or_create(&label).set(i64::try_from(limit).unwrap_or(i64::MAX));
    }

    /// Submissions are paused for the account for the error `code`, or (None) running again.
    pub fn set_account_paused(&self, code: Option<&str>) {
        self.account_paused.clear();
        match code {
            Some(code) => self.account_paused.get_or_create(&[("reason", code.to_owned())]).set(1),
            None => self.account_paused.get_or_create(&[("reason", String::new())]).set(0),
        };
    }

    /// The inbox was scanned once.
    pub fn intake_scanned(&self) {
        self.intake_scans.inc();
    }

    /// The engine read the list of running jobs `list` (`submitted` or `downloading`).
    pub fn engine_read(&self, list: &'static str) {
        self.engine_reads.get_or_create(&[("list", list.to_owned())]).inc();
    }

    /// Intake is paused (true) or running (false).
    pub fn set_intake_paused(&self, paused: bool) {
        self.intake_paused.set(i64::from(paused));
    }

    /// A submission ended with `outcome` (`accepted`, `refused` or `uncertain`).
    pub fn submission(&self, outcome: &'static str) {
        self.submissions.get_or_create(&[("outcome", outcome.to_owned())]).inc();
    }

    /// The platform API answered with an error `code` (never a message: codes are few, messages are not).
    pub fn platform_error(&self, code: &str) {
        self.platform_errors.get_or_create(&[("code", code.to_owned())]).inc();
    }

    /// A download attempt ended with `result` (`archived`, `retry` or `expired`).
    pub fn download(&self, result: &'static str) {
        self.downloads.get_or_create(&[("result", result.to_owned())]).inc();
    }

    /// A job's results were archived: `bytes` stored in `seconds`.
    pub fn archived(&self, bytes: u64, seconds: f64) {
        self.archived_bytes.inc_by(bytes);
        self.archive_seconds.observe(seconds);
    }

    /// The metrics as OpenMetrics text, with the catalogue gauges set from `snapshot` at `now_ms`.
    pub fn render(&self, snapshot: &OpsSnapshot, now_ms: i64) -> String {
        for state in JobState::ALL {
            let n = i64::try_from(snapshot.count(state.as_str())).unwrap_or(i64::MAX);
            self.jobs.get_or_create(&[("state", state.as_str().to_owned())]).set(n);
        }
        match snapshot.earliest_expiry_ms {
            Some(at) => {
                // Milliseconds to seconds: f64 holds any realistic span exactly enough.
                #[allow(clippy::cast_precision_loss)]
                let seconds = (at - now_ms) as f64 / 1000.0;
                self.expiry_seconds.get_or_create(&Vec::new()).set(seconds);
            }
            None => self.expiry_seconds.clear(),
        }
        self.spend_fen.set(snapshot.spend_fen);
        self.results_expiring.set(i64::try_from(snapshot.expiring).unwrap_or(i64::MAX));
        self.notify_outbox
            .get_or_create(&[("status", "pending".to_owned())])
            .set(i64::try_from(snapshot.outbox.pending).unwrap_or(i64::MAX));
        self.notify_outbox
            .get_or_create(&[("status", "dead".to_owned())])
            .set(i64::try_from(snapshot.outbox.dead).unwrap_or(i64::MAX));
        self.spend_month.clear();
        for (model, fen) in &snapshot.spend_month_by_model {
            self.spend_month.get_or_create(&[("model", model.clone())]).set(*fen);
        }
        self.budget_remaining.clear();
        for (period, fen) in &snapshot.budget_remaining {
            self.budget_remaining.get_or_create(&[("period", (*period).to_owned())]).set(*fen);
        }
        let mut out = String::new();
        if let Err(e) = encode(&mut out, &self.registry) {
            return format!("# cannot encode metrics: {e}\n# EOF\n");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_catalogue_gauges_render() {
        let m = Metrics::new();
        m.submission("accepted");
        m.submission("accepted");
        m.platform_error("platform-1302");
        m.archived(1500, 2.0);
        let mut snap = OpsSnapshot { spend_fen: 50, earliest_expiry_ms: Some(61_000), ..OpsSnapshot::default() };
        snap.spend_month_by_model.insert("viduq1-text".to_owned(), 750);
        snap.budget_remaining.insert("daily", 250);
        snap.by_state.insert("queued".to_owned(), 3);
        let text = m.render(&snap, 1_000);
        for line in [
            "vidkeep_submissions_total{outcome=\"accepted\"} 2",
            "vidkeep_submissions_total{outcome=\"refused\"} 0",
            "vidkeep_platform_errors_total{code=\"platform-1302\"} 1",
            "vidkeep_archived_bytes_total 1500",
            "vidkeep_archive_duration_seconds_count 1",
            "vidkeep_jobs{state=\"queued\"} 3",
            "vidkeep_jobs{state=\"archived\"} 0",
            "vidkeep_result_url_expiry_seconds 60.0",
            "vidkeep_spend_today_fen 50",
            "vidkeep_spend_month_fen{model=\"viduq1-text\"} 750",
            "vidkeep_budget_remaining_fen{period=\"daily\"} 250",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert!(text.ends_with("# EOF\n"));
        // Present at 0 from the start, so a dashboard and an alert see them before the first event.
        for line in [
            "vidkeep_rejected_specs_total{reason=\"spec-syntax\"} 0",
            "vidkeep_verify_problems_total{result=\"mismatch\"} 0",
            &format!("vidkeep_build_info{{version=\"{}\"}} 1", env!("CARGO_PKG_VERSION")),
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        m.rejected_spec("spec-syntax");
        m.set_account_paused(Some("platform-1113"));
        let text = m.render(&OpsSnapshot::default(), 1_000);
        assert!(text.contains("vidkeep_rejected_specs_total{reason=\"spec-syntax\"} 1"), "{text}");
        assert!(text.contains("vidkeep_account_paused{reason=\"platform-1113\"} 1"), "{text}");
        assert!(text.contains("vidkeep_in_flight{model=\"viduq1-text\"} 0"), "present from the start: {text}");
        m.set_model_load("viduq1-text", 2, 3);
        let text = m.render(&OpsSnapshot::default(), 1_000);
        assert!(text.contains("vidkeep_in_flight{model=\"viduq1-text\"} 2"), "{text}");
        assert!(text.contains("vidkeep_model_limit{model=\"viduq1-text\"} 3"), "{text}");
        m.set_account_paused(None);
        let text = m.render(&OpsSnapshot::default(), 1_000);
        assert!(
            text.contains("vidkeep_account_paused{reason=\"\"} 0") && !text.contains("platform-1113\"} 1"),
            "{text}"
        );
        let later = m.render(&OpsSnapshot::default(), 1_000);
        assert!(!later.contains("vidkeep_result_url_expiry_seconds "), "no expiry when nothing waits:\n{later}");
    }
}
