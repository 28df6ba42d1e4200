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

/// Writes `c` as text that cannot start a log line or drive a terminal: each control character
/// (newline, carriage return, ESC of an ANSI sequence, DEL, C1 controls) becomes `%XX` per UTF-8
/// byte, as in spec names (`SpecName::text` in the watcher); everything else is itself.
pub fn escape_char(c: char, out: &mut impl std::fmt::Write) -> std::fmt::Result {
    if c.is_control() {
        let mut buf = [0u8; 4];
        for b in c.encode_utf8(&mut buf).bytes() {
            write!(out, "%{b:02X}")?;
        }
        Ok(())
    } else {
        out.write_char(c)
    }
}

/// A value logged or printed safely: its `Display` text with every control character escaped
/// by [`escape_char`]. Every log field that carries a file name, a path or a message that may
/// quote one (a spec's image path, an unknown field's name) goes through it, so a name with a
/// newline cannot forge a log line and an ANSI escape never reaches a terminal.
pub struct Escaped<T>(pub T);

impl<T: std::fmt::Display> std::fmt::Display for Escaped<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        struct Out<'a, 'b>(&'a mut std::fmt::Formatter<'b>);
        impl std::fmt::Write for Out<'_, '_> {
            fn write_str(&mut self, s: &str) -> std::fmt::Result {
                for c in s.chars() {
                    escape_char(c, &mut *self.0)?;
                }
                Ok(())
            }
        }
        use std::fmt::Write as _;
        write!(Out(f), "{}", self.0)
    }
}

impl<T: std::fmt::Display> std::fmt::Debug for Escaped<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "\"{self}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::Escaped;

    #[test]
    fn control_characters_are_escaped_and_text_is_kept() {
        let name = "evil\n2026-12-01T00:00:00Z  INFO forged\x1b[31m.json";
        let shown = Escaped(name).to_string();
        assert_eq!(shown, "evil%0A2026-12-01T00:00:00Z  INFO forged%1B[31m.json");
        assert_eq!(Escaped("café 日本\t\r\u{7f}\u{85}").to_string(), "café 日本%09%0D%7F%C2%85");
        assert_eq!(Escaped(std::path::Path::new("/a\nb").display()).to_string(), "/a%0Ab");
        assert_eq!(format!("{:?}", Escaped("x\ny")), "\"x%0Ay\"");
    }
}
