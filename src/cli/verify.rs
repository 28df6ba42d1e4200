//! `vidkeep verify`: re-read stored assets, re-hash them, record each check, list what is
//! missing or changed.

use std::process::ExitCode;

use crate::archive::scrub::scrub;
use crate::catalog::{Catalog, CheckResult, CheckSelection, Db};
use crate::config::Config;
use crate::store::Store;

/// Verifies the selected assets; exit 1 listing each problem, 0 when all match.
pub(super) async fn run(config: &Config, selection: CheckSelection) -> anyhow::Result<ExitCode> {
    let place = config.catalog.clone();
    let catalog = tokio::task::spawn_blocking(move || Catalog::open_config_existing(&place)).await??;
    let store = Store::open(&config.storage)?;
    let report = scrub(&Db::new(catalog), &store, selection).await?;
    for finding in &report.problems {
        let label = match finding.result {
            CheckResult::Missing => "MISSING",
            CheckResult::Mismatch => "MISMATCH",
            CheckResult::Unreadable | CheckResult::Ok => "UNREADABLE",
        };
        println!(
            "{label:<10} {}  (job {}, {}): {}",
            finding.asset.key,
            finding.asset.job_id,
            finding.asset.kind.as_str(),
            finding.detail
        );
    }
    let problems = report.problems.len();
    println!("verified {} object(s): {} ok, {problems} problem(s)", report.checked, report.checked - problems);
    Ok(if problems == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
