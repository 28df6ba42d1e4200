//! `vidkeep spend`: what was charged and possibly charged, grouped by day, month, model or
//! project (days in `[budget] timezone`), or the ledger rows a studio holds against the bill.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use serde_json::json;

use crate::catalog::{Catalog, LedgerRow, csv_cell};
use crate::config::Config;
use crate::money::{Budget, Fen};
use crate::time::rfc3339;

/// How `spend` groups its totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SpendBy {
    /// Calendar day in the budget's time zone.
    Day,
    /// Calendar month in the budget's time zone.
    Month,
    /// Model code.
    Model,
    /// Project (`-` for none).
    Project,
}

/// `spend` output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SpendFormat {
    /// An aligned table for people.
    Table,
    /// JSON totals for scripts.
    Json,
    /// One row per charged or possibly-charged submission.
    Csv,
}

/// Totals of one group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Totals {
    /// Fen charged.
    pub charged: i64,
    /// Fen possibly charged.
    pub possibly: i64,
    /// Fen charged for results that expired before they were archived (part of `charged`).
    pub lost: i64,
    /// Submissions counted.
    pub submissions: i64,
}

impl Totals {
    fn add(&mut self, row: &LedgerRow) {
        if row.outcome == "charged" {
            self.charged += row.price_fen;
            if row.lost {
                self.lost += row.price_fen;
            }
        } else {
            self.possibly += row.price_fen;
        }
        self.submissions += 1;
    }
}

/// Groups ledger rows by `by`, keys in order.
pub(crate) fn group(rows: &[LedgerRow], by: SpendBy, budget: &Budget) -> BTreeMap<String, Totals> {
    let mut out: BTreeMap<String, Totals> = BTreeMap::new();
    for row in rows {
        let key = match by {
            SpendBy::Day => budget.day_of(row.started_at),
            SpendBy::Month => budget.month_of(row.started_at),
            SpendBy::Model => row.model.clone(),
            SpendBy::Project => row.project.clone().unwrap_or_else(|| "-".to_owned()),
        };
        out.entry(key).or_default().add(row);
    }
    out
}

/// A date bound: `YYYY-MM-DD` is midnight in the budget's zone, anything else RFC 3339.
fn bound(budget: &Budget, text: &str) -> anyhow::Result<i64> {
    budget
        .parse_day(text)
        .or_else(|| crate::time::parse_date(text))
        .with_context(|| format!("`{text}` is not a date: use YYYY-MM-DD (in the budget's time zone) or RFC 3339"))
}

/// `vidkeep spend`
pub(super) fn run(
    config: &Config,
    since: Option<&str>,
    until: Option<&str>,
    by: SpendBy,
    format: SpendFormat,
) -> anyhow::Result<ExitCode> {
    let budget = config.budget_limits();
    let from = since.map(|s| bound(&budget, s)).transpose()?.unwrap_or(0);
    let to = until.map(|s| bound(&budget, s)).transpose()?.unwrap_or(i64::MAX);
    if from >= to {
        bail!("--since must be before --until");
    }
    let catalog = Catalog::open_config_read_only(&config.catalog)
        .with_context(|| format!("cannot open the catalogue {}", Catalog::config_place(&config.catalog)))?;
    let rows = catalog.ledger(from, to)?;
    let groups = group(&rows, by, &budget);
    let mut total = Totals::default();
    rows.iter().for_each(|r| total.add(r));
    let mut out = String::new();
    match format {
        SpendFormat::Csv => {
            let _ = writeln!(out, "time,job,spec,model,project,task_id,price_rmb,outcome");
            for r in &rows {
                let cells = [
                    rfc3339(r.started_at),
                    r.job_id.clone(),
                    r.spec_name.clone(),
                    r.model.clone(),
                    r.project.clone().unwrap_or_default(),
                    String::new(),
                    Fen(r.price_fen).to_string(),
                    r.outcome.clone(),
                ];
                let mut escaped: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
                escaped[5] = crate::catalog::id_cell(r.task_id.as_deref().unwrap_or_default());
                let _ = writeln!(out, "{}", escaped.join(","));
            }
        }
        SpendFormat::Json => {
            let totals = |t: &Totals| {
                json!({
                    "charged": Fen(t.charged).to_string(),
                    "possibly_charged": Fen(t.possibly).to_string(),
                    "total": Fen(t.charged + t.possibly).to_string(),
                    "lost": Fen(t.lost).to_string(),
                    "submissions": t.submissions,
                })
            };
            let list: Vec<serde_json::Value> = groups
                .iter()
                .map(|(k, t)| {
                    let mut v = totals(t);
                    v["key"] = json!(k);
                    v
                })
                .collect();
            let doc = json!({
                "timezone": budget.timezone_name,
                "currency": "RMB",
                "groups": list,
                "total": totals(&total),
            });
            let _ = writeln!(out, "{}", serde_json::to_string_pretty(&doc)?);
        }
        SpendFormat::Table => {
            let head = match by {
                SpendBy::Day => "DAY",
                SpendBy::Month => "MONTH",
                SpendBy::Model => "MODEL",
                SpendBy::Project => "PROJECT",
            };
            // Terminal columns, not bytes: a project may be named in Chinese.
            let width = groups.keys().map(|k| super::columns::width(k)).max().unwrap_or(0).max(head.len()).max(5);
            let _ = writeln!(
                out,
                "{}  {:>10}  {:>16}  {:>10}  {:>8}  SUBMISSIONS",
                super::columns::pad(head, width),
                "CHARGED",
                "POSSIBLY_CHARGED",
                "TOTAL",
                "LOST"
            );
            let mut line = |k: &str, t: &Totals| {
                let _ = writeln!(
                    out,
                    "{}  {:>10}  {:>16}  {:>10}  {:>8}  {}",
                    super::columns::pad(k, width),
                    Fen(t.charged).to_string(),
                    Fen(t.possibly).to_string(),
                    Fen(t.charged + t.possibly).to_string(),
                    Fen(t.lost).to_string(),
                    t.submissions
                );
            };
            groups.iter().for_each(|(k, t)| line(k, t));
            line("total", &total);
            let _ = writeln!(
                out,
                "amounts in RMB; days in {}; LOST: charged for results that expired before they were kept",
                budget.timezone_name
            );
        }
    }
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = std::io::stdout().write_all(out.as_bytes());
    Ok(ExitCode::SUCCESS)
}
