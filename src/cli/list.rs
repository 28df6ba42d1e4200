//! `jobs`, `export`, `show` and `resolve`: reading (and for `resolve`, deciding) from the catalogue.

use crate::telemetry::Escaped;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use serde_json::Value;

use crate::catalog::{Asset, AssetKind, Catalog, JobFilter, JobRecord, csv, job_json};
use crate::config::Config;
use crate::jobs::{Change, JobError, JobState};
use crate::money::Fen;
use crate::time::rfc3339;

/// `export` formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// A JSON array of jobs.
    Json,
    /// CSV, one row per job.
    Csv,
}

fn open(config: &Config) -> anyhow::Result<Catalog> {
    Catalog::open_existing(&config.catalog.path).map_err(anyhow::Error::from)
}

fn load(config: &Config, filter: &JobFilter) -> anyhow::Result<Vec<(JobRecord, Vec<Asset>)>> {
    let catalog = open(config)?;
    let jobs = catalog.jobs(filter)?;
    jobs.into_iter()
        .map(|j| {
            let assets = catalog.assets(&j.id)?;
            Ok((j, assets))
        })
        .collect()
}

/// The filters `jobs`, `search` and `export` share; the web UI takes the same ones.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct FilterArgs {
    /// Only jobs in this state.
    #[arg(long)]
    pub state: Option<JobState>,
    /// Only jobs of this model.
    #[arg(long)]
    pub model: Option<String>,
    /// Only jobs of this project.
    #[arg(long)]
    pub project: Option<String>,
    /// Only jobs with this tag.
    #[arg(long)]
    pub tag: Option<String>,
    /// Only jobs created on or after this date (YYYY-MM-DD or RFC 3339).
    #[arg(long, value_name = "DATE", value_parser = super::parse_since)]
    pub since: Option<i64>,
    /// Only jobs created before this date (YYYY-MM-DD or RFC 3339).
    #[arg(long, value_name = "DATE", value_parser = super::parse_since)]
    pub until: Option<i64>,
    /// At most this many jobs.
    #[arg(long)]
    pub limit: Option<usize>,
}

impl FilterArgs {
    /// The catalogue filter, with `text` to search for.
    pub fn filter(&self, text: Option<String>, newest_first: bool) -> JobFilter {
        JobFilter {
            state: self.state,
            model: self.model.clone(),
            project: self.project.clone(),
            tag: self.tag.clone(),
            text,
            created_from: self.since,
            created_before: self.until,
            newest_first,
            limit: self.limit,
            offset: 0,
        }
    }
}

/// `vidkeep jobs` and `vidkeep search`: a table for people, JSON for scripts. `search` exits 1
/// when nothing matched, so scripts can test for a hit.
pub(super) fn jobs(config: &Config, filter: &JobFilter, json: bool, fail_if_empty: bool) -> anyhow::Result<ExitCode> {
    let rows = load(config, filter)?;
    if fail_if_empty && rows.is_empty() {
        if json {
            println!("[]");
        } else {
            eprintln!("no job matches");
        }
        return Ok(ExitCode::from(1));
    }
    if json {
        let list: Vec<Value> = rows.iter().map(|(j, a)| job_json(j, a)).collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
    } else {
        print!("{}", table(&rows));
    }
    Ok(ExitCode::SUCCESS)
}

/// An aligned table of jobs for people.
pub fn table(rows: &[(JobRecord, Vec<Asset>)]) -> String {
    let mut lines =
        vec![["JOB".to_owned(), "STATE".into(), "MODEL".into(), "SPEC".into(), "VIDEO".into(), "NOTE".into()]];
    for (job, assets) in rows {
        let video = assets.iter().find(|a| a.kind == AssetKind::Video).map_or(String::new(), |a| a.key.clone());
        let note = match &job.error {
            Some(e) if job.state == JobState::WaitingBudget => e.message.clone(),
            Some(e) => e.code.clone(),
            None => String::new(),
        };
        lines.push([job.id.clone(), job.state.to_string(), job.model.clone(), job.spec_name.clone(), video, note]);
    }
    let widths: Vec<usize> = (0..6).map(|i| lines.iter().map(|l| l[i].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for line in &lines {
        let cells: Vec<String> = line.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out.push_str(&format!("{} job(s)\n", rows.len()));
    out
}

/// `vidkeep export`
pub(super) fn export(config: &Config, format: ExportFormat, filter: &JobFilter) -> anyhow::Result<ExitCode> {
    let rows = load(config, filter)?;
    match format {
        ExportFormat::Json => {
            let list: Vec<Value> = rows.iter().map(|(j, a)| job_json(j, a)).collect();
            println!("{}", serde_json::to_string_pretty(&list)?);
        }
        ExportFormat::Csv => print!("{}", csv(&rows)),
    }
    Ok(ExitCode::SUCCESS)
}

fn find(catalog: &Catalog, prefix: &str) -> anyhow::Result<JobRecord> {
    let matches: Vec<JobRecord> =
        catalog.jobs(&JobFilter::default())?.into_iter().filter(|j| j.id.starts_with(prefix)).collect();
    match matches.len() {
        0 => bail!("no job matches `{prefix}`"),
        1 => Ok(matches.into_iter().next().context("one match")?),
        n => bail!("`{prefix}` matches {n} jobs; give more of the id"),
    }
}

/// `vidkeep show`
pub(super) fn show(config: &Config, prefix: &str, json: bool) -> anyhow::Result<ExitCode> {
    let catalog = open(config)?;
    let job = find(&catalog, prefix)?;
    let assets = catalog.assets(&job.id)?;
    let events = catalog.events(&job.id)?;
    let siblings = catalog.siblings(&job)?;
    let spec_sha256 = catalog.spec_sha256(&job.id)?;
    let inputs = catalog.inputs(&job.id)?;
    if json {
        let mut v = job_json(&job, &assets);
        v["request"] = serde_json::from_str(&job.request_display).unwrap_or(Value::Null);
        v["events"] = serde_json::to_value(&events)?;
        v["take"] = serde_json::json!(job.take_no);
        v["takes"] = siblings
            .iter()
            .map(|s| serde_json::json!({"take": s.take_no, "job_id": s.id, "state": s.state.as_str()}))
            .collect();
        v["spec_sha256"] = Value::from(spec_sha256);
        v["inputs"] = serde_json::to_value(&inputs)?;
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("job       {}\nspec      {}\nstate     {}\nmodel     {}", job.id, job.spec_name, job.state, job.model);
    println!(
        "task      {}\nprompt    {}",
        Escaped(job.task_id.as_deref().unwrap_or("-")),
        Escaped(job.prompt.as_deref().unwrap_or("-"))
    );
    for (label, value) in [("name", job.name.clone()), ("project", job.project.clone())] {
        if let Some(value) = value {
            println!("{label:<9} {value}");
        }
    }
    if !job.tags.is_empty() {
        println!("tags      {}", job.tags.join(", "));
    }
    if job.take_group.is_some() {
        println!("take      {} of {}", job.take_no, siblings.len() + 1);
        for s in &siblings {
            println!("  take {:<3} {}  {}", s.take_no, s.id, s.state);
        }
    }
    println!("request   {}", job.request_display);
    println!(
        "cost      {} RMB charged, {} RMB possibly charged; {} attempt(s) at {} RMB each",
        Fen(job.charged_fen),
        Fen(job.possibly_charged_fen),
        job.attempts,
        Fen(job.price_fen)
    );
    match &job.error {
        Some(e) if job.state == JobState::WaitingBudget => println!("waiting   {}", e.message),
        Some(e) => println!("error     {}: {}", Escaped(&e.code), Escaped(&e.message)),
        None => {}
    }
    for a in &assets {
        println!("{:<9} {} ({} bytes, sha256 {})", a.kind.as_str(), a.key, a.bytes, a.sha256);
        if let Some(p) = &a.probe {
            if let Some(f) = &p.figures {
                println!("  probe   {:.3} s, {:.3} fps, {}x{}, {}", f.duration_s, f.fps, f.width, f.height, f.codec);
            }
            for finding in &p.findings {
                println!("  WARNING {finding}");
            }
        }
    }
    let video = assets.iter().find(|a| a.kind == crate::catalog::AssetKind::Video).map_or("-", |a| a.sha256.as_str());
    println!("chain     spec sha256 {spec_sha256}");
    println!("          -> fingerprint {}", job.fingerprint);
    println!("          -> request_id {}", job.request_id.as_deref().unwrap_or("-"));
    println!("          -> task {}", job.task_id.as_deref().unwrap_or("-"));
    println!("          -> video sha256 {video}");
    for i in &inputs {
        match (&i.key, &i.url) {
            (Some(key), _) => println!("input {:<3} {key} ({} bytes, {})", i.index, i.bytes, i.content_type),
            (None, Some(url)) => println!("input {:<3} {url} (remote, not kept)", i.index),
            (None, None) => println!("input {:<3} (not readable)", i.index),
        }
    }
    println!("history");
    for e in &events {
        println!(
            "  {}  {} -> {}  {}",
            rfc3339(e.at),
            e.from.as_deref().unwrap_or("-"),
            e.to,
            e.note.as_deref().unwrap_or("")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `vidkeep resolve`
pub(super) fn resolve(config: &Config, prefix: &str, resubmit: bool) -> anyhow::Result<ExitCode> {
    let mut catalog = open(config)?;
    let job = find(&catalog, prefix)?;
    if job.state != JobState::Uncertain {
        eprintln!("job {} is {}, not uncertain: nothing to resolve", job.id, job.state);
        return Ok(ExitCode::from(1));
    }
    let change = if resubmit {
        Change::Resubmit
    } else {
        Change::Failed(JobError::new("abandoned", "a person abandoned this job after an uncertain submission"))
    };
    catalog.transition(&job.id, JobState::Uncertain, &change)?;
    println!("job {} is now {}", job.id, change.target());
    Ok(ExitCode::SUCCESS)
}
