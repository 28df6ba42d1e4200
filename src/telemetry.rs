//! Logging through `tracing`: readable lines by default, JSON for collectors; no colours when
//! stderr is not a terminal; no timestamps under journald, which adds its own.
//!
//! The filter sits behind a reload handle, so `[log] level` can change on SIGHUP
//! ([`set_filter`]) without restarting the daemon.

use std::io::IsTerminal as _;
use std::sync::OnceLock;

use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _, Registry, reload};

/// The log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// The reload handle of the installed filter, when [`init`] installed the global subscriber.
static FILTER: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// The filter set in the environment (`VIDKEEP_LOG`, then `RUST_LOG`), which wins over the config.
fn env_filter() -> Option<String> {
    ["VIDKEEP_LOG", "RUST_LOG"].into_iter().find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
}

/// Installs the global subscriber with the `info` filter, or the environment's when set.
pub fn init(format: LogFormat) {
    let filter = env_filter().and_then(|v| EnvFilter::try_new(v).ok()).unwrap_or_else(|| EnvFilter::new("info"));
    let (filter, handle) = reload::Layer::new(filter);
    let under_journald = std::env::var_os("JOURNAL_STREAM").is_some();
    let ansi = std::io::stderr().is_terminal();
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr).with_ansi(ansi);
    let output = match (format, under_journald) {
        (LogFormat::Json, _) => fmt.json().with_current_span(true).with_span_list(false).boxed(),
        (LogFormat::Human, true) => fmt.without_time().boxed(),
        (LogFormat::Human, false) => fmt.boxed(),
    };
    if tracing_subscriber::registry().with(filter).with(output).try_init().is_ok() {
        let _ = FILTER.set(handle);
    }
}

/// What [`set_filter`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterChange {
    /// The new filter is in effect.
    Applied,
    /// `VIDKEEP_LOG` or `RUST_LOG` is set and wins over the config.
    EnvironmentWins,
    /// Another subscriber was installed (tests, embedding): nothing to change.
    NotInstalled,
}

/// Replaces the log filter with `directives` (a validated `[log] level`).
pub fn set_filter(directives: &str) -> Result<FilterChange, String> {
    let filter = EnvFilter::builder().parse(directives).map_err(|e| e.to_string())?;
    if env_filter().is_some() {
        return Ok(FilterChange::EnvironmentWins);
    }
    let Some(handle) = FILTER.get() else { return Ok(FilterChange::NotInstalled) };
    handle.reload(filter).map_err(|e| e.to_string())?;
    Ok(FilterChange::Applied)
}
