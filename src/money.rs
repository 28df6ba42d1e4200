//! Money: the per-model price table, amounts in fen (0.01 RMB, integers only), and budgets with
//! their periods in the billing time zone.
//!
//! Pure: the catalogue sums the ledger and asks [`Budget::check`] whether one more submission
//! fits, inside the same transaction that records it.

use std::collections::BTreeMap;
use std::fmt;

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ZonedDateTime};

use crate::spec::models;

/// The platform's billing zone, the default for `[budget] timezone`.
pub const DEFAULT_TIMEZONE: &str = "Asia/Shanghai";

/// Errors reading money settings.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Not a decimal RMB amount with at most two places.
    #[error(
        "`{0}` is not an amount in RMB (a decimal such as 2.5 or \"1.25\", at most two decimal places, not negative)"
    )]
    BadAmount(String),
    /// Not an IANA time zone name.
    #[error("`{0}` is not a time zone name (e.g. Asia/Shanghai, UTC)")]
    BadTimeZone(String),
}

/// An amount in fen, shown as RMB with two decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Fen(pub i64);

impl fmt::Display for Fen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

/// Parses a decimal RMB amount ("2.5", "1.25", "3") into fen, without floating point.
pub fn parse_rmb(text: &str) -> Result<i64, MoneyError> {
    let bad = || MoneyError::BadAmount(text.to_owned());
    let t = text.trim();
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    if whole.is_empty() && frac.is_empty() || frac.len() > 2 {
        return Err(bad());
    }
    if !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let whole: i64 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| bad())? };
    let frac: i64 = format!("{frac:0<2}").parse().map_err(|_| bad())?;
    whole.checked_mul(100).and_then(|w| w.checked_add(frac)).ok_or_else(bad)
}

/// An RMB amount as a config file writes it: a TOML number (`2.5`) or a string (`"2.50"`).
/// A number is read through its shortest decimal form, so `2.5` is exactly 250 fen.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum Rmb {
    /// A TOML integer.
    Int(i64),
    /// A TOML float.
    Float(f64),
    /// A string.
    Text(String),
}

impl Rmb {
    /// The amount in fen.
    pub fn fen(&self) -> Result<i64, MoneyError> {
        match self {
            Rmb::Int(i) if *i >= 0 => i.checked_mul(100).ok_or_else(|| MoneyError::BadAmount(i.to_string())),
            Rmb::Int(i) => Err(MoneyError::BadAmount(i.to_string())),
            Rmb::Float(f) => parse_rmb(&f.to_string()),
            Rmb::Text(s) => parse_rmb(s),
        }
    }
}

/// Price of one submission per model: the reference list prices, with `[prices]` overrides.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prices {
    overrides: BTreeMap<String, i64>,
}

impl Prices {
    /// The list prices with `overrides` (model → fen) on top.
    pub fn new(overrides: BTreeMap<String, i64>) -> Prices {
        Prices { overrides }
    }

    /// Fen charged for one submission to `model`; an unknown model costs nothing known (0).
    pub fn fen(&self, model: &str) -> i64 {
        self.overrides.get(model).copied().unwrap_or_else(|| models::rules(model).map_or(0, |r| i64::from(r.price_fen)))
    }
}

/// Which limit a submission would break, with the words shown to people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocked {
    /// `daily`, `monthly` or `project`.
    pub limit: &'static str,
    /// E.g. "daily budget 5.00 RMB: 5.00 spent, next day starts 00:00 Asia/Shanghai".
    pub reason: String,
}

/// What has been spent (charged + possibly charged) in the periods a budget looks at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spent {
    /// Since the start of today in the budget's zone.
    pub day: i64,
    /// Since the start of this month.
    pub month: i64,
    /// This month, by the job's project (0 without a project).
    pub project_month: i64,
}

/// The start of the day and month containing a moment, and the next ones, as unix ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Periods {
    /// Today 00:00.
    pub day_start: i64,
    /// Tomorrow 00:00.
    pub next_day: i64,
    /// The 1st of this month 00:00.
    pub month_start: i64,
    /// The 1st of next month 00:00.
    pub next_month: i64,
}

/// `[budget]` as the engine uses it: limits in fen and the zone their days are counted in.
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    /// Per day, if limited.
    pub daily: Option<i64>,
    /// Per month, if limited.
    pub monthly: Option<i64>,
    /// Per project per month.
    pub projects: BTreeMap<String, i64>,
    /// The zone's name, for messages.
    pub timezone_name: String,
    timezone: TimeZone,
}

impl Default for Budget {
    fn default() -> Budget {
        Budget::unlimited(DEFAULT_TIMEZONE).unwrap_or_else(|_| Budget {
            daily: None,
            monthly: None,
            projects: BTreeMap::new(),
            timezone_name: "UTC".to_owned(),
            timezone: TimeZone::UTC,
        })
    }
}

impl Budget {
    /// No limits, days counted in `timezone`.
    pub fn unlimited(timezone: &str) -> Result<Budget, MoneyError> {
        let tz = TimeZone::get(timezone).map_err(|_| MoneyError::BadTimeZone(timezone.to_owned()))?;
        Ok(Budget {
            daily: None,
            monthly: None,
            projects: BTreeMap::new(),
            timezone_name: timezone.to_owned(),
            timezone: tz,
        })
    }

    /// Whether any limit is set.
    pub fn is_limited(&self) -> bool {
        self.daily.is_some() || self.monthly.is_some() || !self.projects.is_empty()
    }

    fn zoned(&self, ms: i64) -> ZonedDateTime {
        Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH).to_zoned_datetime(self.timezone.clone())
    }

    /// The first instant of `date` in the budget's zone (unix ms).
    fn midnight(&self, date: Date) -> Option<i64> {
        date.to_zoned_datetime(self.timezone.clone()).ok().map(|z| z.timestamp().as_millisecond())
    }

    /// The periods containing `now_ms`.
    pub fn periods(&self, now_ms: i64) -> Periods {
        let today = self.zoned(now_ms).date();
        let at = |d: Option<Date>| d.and_then(|d| self.midnight(d)).unwrap_or(now_ms);
        let next_month = today.last_of_month().tomorrow().ok();
        Periods {
            day_start: at(Some(today)),
            next_day: at(today.tomorrow().ok()),
            month_start: at(Some(today.first_of_month())),
            next_month: at(next_month),
        }
    }

    /// The calendar day (`YYYY-MM-DD`) of `ms` in the budget's zone.
    pub fn day_of(&self, ms: i64) -> String {
        self.zoned(ms).strftime("%Y-%m-%d").to_string()
    }

    /// The calendar month (`YYYY-MM`) of `ms` in the budget's zone.
    pub fn month_of(&self, ms: i64) -> String {
        self.zoned(ms).strftime("%Y-%m").to_string()
    }

    /// Midnight starting `date` (`YYYY-MM-DD`) in the budget's zone, as unix ms.
    pub fn parse_day(&self, date: &str) -> Option<i64> {
        self.midnight(date.parse().ok()?)
    }

    /// Whether one more submission of `price` for `project` fits; `Err` names the first limit it breaks.
    pub fn check(&self, spent: Spent, price: i64, project: Option<&str>) -> Result<(), Blocked> {
        let tz = &self.timezone_name;
        if let Some(limit) = self.daily {
            if spent.day.saturating_add(price) > limit {
                return Err(Blocked {
                    limit: "daily",
                    reason: format!(
                        "daily budget {} RMB: {} spent, next day starts 00:00 {tz}",
                        Fen(limit),
                        Fen(spent.day)
                    ),
                });
            }
        }
        if let Some(limit) = self.monthly {
            if spent.month.saturating_add(price) > limit {
                return Err(Blocked {
                    limit: "monthly",
                    reason: format!(
                        "monthly budget {} RMB: {} spent, next month starts on the 1st 00:00 {tz}",
                        Fen(limit),
                        Fen(spent.month)
                    ),
                });
            }
        }
        if let Some((name, limit)) = project.and_then(|p| self.projects.get_key_value(p)) {
            if spent.project_month.saturating_add(price) > *limit {
                return Err(Blocked {
                    limit: "project",
                    reason: format!(
                        "project {name} monthly budget {} RMB: {} spent, next month starts on the 1st 00:00 {tz}",
                        Fen(*limit),
                        Fen(spent.project_month)
                    ),
                });
            }
        }
        Ok(())
    }

    /// What is left of the tightest account-wide limit (daily, monthly), if any is set.
    pub fn remaining(&self, spent: Spent) -> Option<i64> {
        let day = self.daily.map(|l| l - spent.day);
        let month = self.monthly.map(|l| l - spent.month);
        match (day, month) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Whether retrying a failure would be charged again and whether it is likely to help, in words.
pub fn retry_advice(error_code: &str) -> &'static str {
    match error_code {
        "platform-1301" => {
            "a retry would be charged again if accepted and is not likely to help: the content filter refused this prompt or image; change it first"
        }
        "platform-1305" | "platform-1302" | "platform-1303" => {
            "a retry is likely to help (the platform was overloaded or rate-limited; refused submissions are not charged)"
        }
        "task-failed" => {
            "a retry would be charged again and may help: the platform accepted and charged this task, then reported FAIL"
        }
        c if c.starts_with("platform-") => {
            "a refused submission is not charged; a retry is charged only if accepted, and helps only if the cause is fixed"
        }
        _ => "a retry is charged only if the platform accepts it",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_exact_fen() {
        assert_eq!(parse_rmb("2.5"), Ok(250));
        assert_eq!(parse_rmb("1.25"), Ok(125));
        assert_eq!(parse_rmb("3"), Ok(300));
        assert_eq!(parse_rmb(".5"), Ok(50));
        assert!(parse_rmb("1.255").is_err());
        assert!(parse_rmb("-1").is_err());
        assert!(parse_rmb("").is_err());
        assert_eq!(Rmb::Float(0.1).fen(), Ok(10));
        assert_eq!(Rmb::Float(2.5).fen(), Ok(250));
        assert_eq!(Rmb::Int(5).fen(), Ok(500));
        assert_eq!(Fen(250).to_string(), "2.50");
        assert_eq!(Fen(5).to_string(), "0.05");
    }

    #[test]
    fn reference_prices_and_overrides() {
        let p = Prices::default();
        for (model, fen) in [
            ("viduq1-text", 250),
            ("viduq1-image", 250),
            ("viduq1-start-end", 250),
            ("vidu2-image", 125),
            ("vidu2-start-end", 125),
            ("vidu2-reference", 250),
            ("cogvideox-3", 100),
            ("cogvideox-2", 50),
            ("cogvideox-flash", 0),
        ] {
            assert_eq!(p.fen(model), fen, "{model}");
        }
        let p = Prices::new(BTreeMap::from([("viduq1-text".to_owned(), 199)]));
        assert_eq!(p.fen("viduq1-text"), 199);
        assert_eq!(p.fen("viduq1-image"), 250);
    }

    #[test]
    fn days_are_counted_in_the_billing_zone() {
        let b = Budget::unlimited("Asia/Shanghai").expect("zone");
        // 2026-12-01T15:59:59Z is 23:59:59 in Shanghai; a second later is the next day there.
        let before = 1_796_140_799_000;
        let p = b.periods(before);
        assert_eq!(p.next_day, before + 1000);
        assert_eq!(p.day_start, before + 1000 - 86_400_000);
        assert_eq!(b.day_of(before), "2026-12-01");
        assert_eq!(b.day_of(before + 1000), "2026-12-02");
        assert_eq!(p.month_start, b.parse_day("2026-12-01").expect("day"));
        assert_eq!(p.next_month, b.parse_day("2027-01-01").expect("day"));
        assert!(Budget::unlimited("Mars/Olympus").is_err());
    }

    #[test]
    fn the_first_broken_limit_is_named() {
        let mut b = Budget::unlimited("Asia/Shanghai").expect("zone");
        b.daily = Some(500);
        b.projects.insert("ads".to_owned(), 250);
        let spent = Spent { day: 500, month: 500, project_month: 0 };
        let e = b.check(spent, 250, None).expect_err("over");
        assert_eq!(e.reason, "daily budget 5.00 RMB: 5.00 spent, next day starts 00:00 Asia/Shanghai");
        assert!(b.check(Spent { day: 250, ..spent }, 250, None).is_ok(), "exactly the last yuan fits");
        let e = b.check(Spent { day: 0, month: 0, project_month: 250 }, 250, Some("ads")).expect_err("project");
        assert_eq!(e.limit, "project");
        assert!(b.check(Spent::default(), 0, None).is_ok());
    }
}
