//! The spend page: a server-rendered SVG bar chart of the last 30 days' spend (stacked by model
//! or project, days in the budget's zone), this month's total, budget use and the amount
//! possibly charged. No script, no external resource.

use std::collections::BTreeMap;

use maud::{Markup, html};

use crate::catalog::LedgerRow;
use crate::money::{Budget, Fen, Spent};

/// Days the chart shows.
pub(super) const DAYS: usize = 30;

const COLOURS: [&str; 8] = ["#3b82f6", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6", "#06b6d4", "#84cc16", "#ec4899"];

/// What the page shows, read in one catalogue call.
pub(super) struct SpendView<'a> {
    /// Charged and possibly-charged rows from the first charted day on.
    pub(super) rows: &'a [LedgerRow],
    /// The charted days, oldest first, as `YYYY-MM-DD` in the budget's zone.
    pub(super) days: Vec<String>,
    /// Stack by project instead of model.
    pub(super) by_project: bool,
    /// This month's and today's spend.
    pub(super) spent: Spent,
    /// This month's rows (for the month total and the possibly-charged amount).
    pub(super) month_rows: &'a [LedgerRow],
    /// The limits.
    pub(super) budget: &'a Budget,
}

/// The chart alone: one bar per day, one coloured segment per model (or project).
pub(super) fn chart(v: &SpendView<'_>) -> Markup {
    let key = |r: &LedgerRow| {
        if v.by_project { r.project.clone().unwrap_or_else(|| "(none)".to_owned()) } else { r.model.clone() }
    };
    let mut per_day: BTreeMap<(String, String), i64> = BTreeMap::new();
    let mut keys: Vec<String> = Vec::new();
    for r in v.rows {
        let k = key(r);
        if !keys.contains(&k) {
            keys.push(k.clone());
        }
        *per_day.entry((v.budget.day_of(r.started_at), k)).or_default() += r.price_fen;
    }
    keys.sort();
    let day_total = |d: &str| keys.iter().map(|k| per_day.get(&(d.to_owned(), k.clone())).copied().unwrap_or(0)).sum();
    let max: i64 = v.days.iter().map(|d| day_total(d)).max().unwrap_or(0).max(1);
    let (width, height, bar, gap, top, bottom) = (DAYS as i64 * 22 + 60, 220_i64, 18_i64, 4_i64, 20_i64, 40_i64);
    let plot = height - top - bottom;
    // Each segment: x, y, height, colour, tooltip.
    let mut segments: Vec<(i64, i64, i64, &str, String)> = Vec::new();
    for (i, day) in v.days.iter().enumerate() {
        let x = 50 + i as i64 * (bar + gap);
        let mut y = top + plot;
        for (n, k) in keys.iter().enumerate() {
            let fen = per_day.get(&(day.clone(), k.clone())).copied().unwrap_or(0);
            if fen > 0 {
                let h = (fen * plot / max).max(1);
                y -= h;
                segments.push((x, y, h, COLOURS[n % COLOURS.len()], format!("{day} {k}: {} RMB", Fen(fen))));
            }
        }
    }
    html! {
        svg xmlns="http://www.w3.org/2000/svg" width=(width) height=(height) viewBox={ "0 0 " (width) " " (height) }
            role="img" aria-label="spend per day" {
            text x="0" y="14" font-size="11" { "max " (Fen(max)) " RMB/day" }
            @for (x, y, h, colour, tip) in &segments {
                rect x=(x) y=(y) width=(bar) height=(h) fill=(colour) { title { (tip) } }
            }
            @for (i, day) in v.days.iter().enumerate() {
                @if i % 5 == 0 || i + 1 == v.days.len() {
                    text x=(50 + i as i64 * (bar + gap)) y=(height - bottom + 14) font-size="9" { (day.get(5..).unwrap_or(day)) }
                }
            }
            @for (n, k) in keys.iter().enumerate() {
                rect x=(50 + n as i64 * 130) y=(height - 16) width="10" height="10" fill=(COLOURS[n % COLOURS.len()]) {}
                text x=(64 + n as i64 * 130) y=(height - 7) font-size="10" { (k) }
            }
        }
    }
}

/// The page body.
pub(super) fn body(v: &SpendView<'_>) -> Markup {
    let charged: i64 = v.month_rows.iter().filter(|r| r.outcome == "charged").map(|r| r.price_fen).sum();
    let possibly: i64 = v.month_rows.iter().filter(|r| r.outcome != "charged").map(|r| r.price_fen).sum();
    let lost: i64 = v.month_rows.iter().filter(|r| r.lost).map(|r| r.price_fen).sum();
    let b = v.budget;
    html! {
        h1 { "Spend" }
        p {
            "Last " (DAYS) " days, days in " (b.timezone_name) ", stacked by "
            @if v.by_project { a href="/spend?by=model" { "model" } " | project" } @else { "model | " a href="/spend?by=project" { "project" } }
        }
        (chart(v))
        table.kv {
            tr { td { "this month" } td { (Fen(charged + possibly)) " RMB (" (Fen(charged)) " charged, " (Fen(possibly)) " possibly charged)" } }
            @if lost > 0 {
                tr { td { "lost this month" } td { (Fen(lost)) " RMB paid for results that expired before they were kept" } }
            }
            tr { td { "today" } td { (Fen(v.spent.day)) " RMB" } }
            tr { td { "daily budget" } td { (use_of(b.daily, v.spent.day)) } }
            tr { td { "monthly budget" } td { (use_of(b.monthly, v.spent.month)) } }
            @for (project, limit) in &b.projects {
                @let used: i64 = v.month_rows.iter().filter(|r| r.project.as_deref() == Some(project)).map(|r| r.price_fen).sum();
                tr { td { "project " (project) } td { (use_of(Some(*limit), used)) } }
            }
        }
        p { a href="/?state=waiting_budget" { "jobs waiting for budget" } }
    }
}

fn use_of(limit: Option<i64>, spent: i64) -> String {
    match limit {
        None => "none set".to_owned(),
        Some(l) => format!("{} of {} RMB used, {} left", Fen(spent), Fen(l), Fen((l - spent).max(0))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(at: i64, model: &str, fen: i64, outcome: &str) -> LedgerRow {
        LedgerRow {
            started_at: at,
            job_id: "j".to_owned(),
            spec_name: "s".to_owned(),
            model: model.to_owned(),
            project: None,
            task_id: None,
            price_fen: fen,
            outcome: outcome.to_owned(),
            lost: false,
        }
    }

    #[test]
    fn the_chart_stacks_each_day_by_model() {
        let mut budget = Budget::unlimited("Asia/Shanghai").expect("zone");
        budget.daily = Some(500);
        let now = 1_796_137_200_000; // 2026-12-01 23:00 Shanghai
        let rows = [row(now, "viduq1-text", 250, "charged"), row(now, "cogvideox-3", 100, "possibly-charged")];
        let days = vec![budget.day_of(now - 86_400_000), budget.day_of(now)];
        let v = SpendView {
            rows: &rows,
            days,
            by_project: false,
            spent: Spent { day: 350, month: 350, project_month: 0 },
            month_rows: &rows,
            budget: &budget,
        };
        let html = body(&v).into_string();
        assert_eq!(html.matches("<rect").count(), 4, "two segments and two legend keys: {html}");
        assert!(html.contains("2026-12-01 viduq1-text: 2.50 RMB"), "{html}");
        assert!(html.contains("3.50 RMB (2.50 charged, 1.00 possibly charged)"), "{html}");
        assert!(html.contains("3.50 of 5.00 RMB used, 1.50 left"), "{html}");
        assert!(!html.contains("<script"), "no script on the spend page");
    }
}
