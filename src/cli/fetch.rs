//! `vidkeep archive-url` (hidden): one download through the daemon's own [`Archiver`] into the
//! configured storage, timed. It exists for `bench/s3.sh`, which compares this exact code path
//! with `rclone copyurl` without the simulator's task latency in the measurement.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use object_store::path::Path as Key;

use crate::archive::Archiver;
use crate::config::Config;
use crate::store::Store;

/// Archives `url` under `key` and prints one JSON line: key, sha256, bytes, seconds, MiB/s.
pub(super) async fn run(config: &Config, url: &str, key: &str) -> anyhow::Result<ExitCode> {
    let store = Store::open(&config.storage)?;
    let archiver =
        Archiver::with_config(store, config.api.request_timeout.max(Duration::from_secs(30)), &config.archive)?;
    let started = Instant::now();
    let stored = archiver.fetch(url, &Key::from(key), "video/mp4").await?;
    let seconds = started.elapsed().as_secs_f64();
    let line = serde_json::json!({
        "key": key,
        "sha256": stored.sha256,
        "bytes": stored.bytes,
        "seconds": seconds,
        "mib_per_s": stored.bytes as f64 / 1_048_576.0 / seconds.max(1e-9),
    });
    println!("{line}");
    Ok(ExitCode::SUCCESS)
}
