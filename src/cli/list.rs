//! `jobs`, `export`, `show` and `resolve`: reading (and for `resolve`, deciding) from the catalogue.

use crate::telemetry::Escaped;
use std::process::ExitCode;

use serde_json::Value;

use crate::catalog::{
    Asset, AssetKind, CSV_HEADER, Catalog, Cursor, EXPORT_PAGE, JobFilter, JobRecord, Listing, PrettyArray, csv_rows,
    job_json, short_id,
};
use crate::config::Config;
use crate::domain::{Change, JobError, JobState};
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
    /// Only jobs of this model (one of the models vidkeep knows).
    #[arg(long, value_parser = parse_model)]
    pub model: Option<String>,
    /// Only jobs of this project (any case, as search).
    #[arg(long)]
    pub project: Option<String>,
    /// Only jobs with this tag.
    #[arg(long)]
    pub tag: Option<String>,
    /// Only jobs created on or after this date (YYYY-MM-DD or RFC 3339).
    #[arg(long, value_name = "DATE", value_parser = super::parse_since)]
    pub since: Option<i64>,
    /// Only jobs created up to this date: YYYY-MM-DD includes that whole day (UTC), as the UI's
    /// "to" does; an RFC 3339 time is exclusive.
    #[arg(long, value_name = "DATE", value_parser = parse_until)]
    pub until: Option<i64>,
    /// At most this many jobs (a note on stderr says when the list was cut).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Only the jobs listed after this one (a job id: the last of a `--limit` list, for the next).
    #[arg(long, value_name = "JOB_ID")]
    pub after: Option<String>,
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
            cursor: self.after.clone().map(Cursor::After),
        }
    }
}

fn parse_model(s: &str) -> Result<String, String> {
    match crate::spec::models::rules(s) {
        Some(rules) => Ok(rules.name.to_owned()),
        None => Err(format!(
            "`{s}` is not a model vidkeep knows: one of {}",
            crate::spec::models::MODELS.iter().map(|m| m.name).collect::<Vec<_>>().join(", ")
        )),
    }
}

fn parse_until(s: &str) -> Result<i64, String> {
    let at = super::parse_since(s)?;
    // A bare date means the whole day, as in the UI.
    Ok(if s.trim().len() == 10 { at + 86_400_000 } else { at })
}

/// How `jobs` and `search` print a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Layout {
    /// Fits the terminal (`$COLUMNS`, 80 to 200; 100 when unknown): short id, truncated text.
    Fit,
    /// Everything, however wide.
    Wide,
}

/// `vidkeep jobs` and `vidkeep search`: a table for people, JSON for scripts. `search` exits 1
/// when nothing matched, so scripts can test for a hit.
pub(super) fn jobs(
    config: &Config,
    filter: &JobFilter,
    json: bool,
    fail_if_empty: bool,
    layout: Layout,
) -> anyhow::Result<ExitCode> {
    let rows = load(config, filter)?;
    if let Some(limit) = filter.limit.filter(|l| rows.len() >= *l) {
        let total = open(config)?.count_jobs(&JobFilter { cursor: None, ..filter.clone() })?;
        if total > limit as u64 {
            let last = rows.last().map_or("", |(j, _)| j.id.as_str());
            eprintln!(
                "showing {limit} of {total} jobs (--limit {limit}); raise --limit, or --after {last} for the next"
            );
        }
    }
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
        print!("{}", table_for(&rows, layout, terminal_width()));
    }
    Ok(ExitCode::SUCCESS)
}

/// `vidkeep jobs --rejected`: specs refused at intake, with the reason, newest last.
pub(super) fn rejected(config: &Config, json: bool) -> anyhow::Result<ExitCode> {
    let rejections = open(config)?.rejections()?;
    if json {
        let list: Vec<Value> = rejections
            .iter()
            .map(|r| {
                serde_json::json!({"spec": r.spec_name, "spec_sha256": r.spec_sha256, "error_code": r.error_code,
                    "error": r.error_message, "at": rfc3339(r.at)})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&list)?);
        return Ok(ExitCode::SUCCESS);
    }
    for r in &rejections {
        println!("{}  {}  {}: {}", rfc3339(r.at), Escaped(&r.spec_name), r.error_code, Escaped(&r.error_message));
    }
    println!("{} rejected spec(s); each has a report in failed/", rejections.len());
    Ok(ExitCode::SUCCESS)
}

fn terminal_width() -> usize {
    std::env::var("COLUMNS").ok().and_then(|c| c.trim().parse().ok()).unwrap_or(100).clamp(80, 200)
}

/// `text` cut to `max` characters, with `…` when cut, on one line.
fn clip(text: &str, max: usize) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= max {
        return one_line;
    }
    let mut out: String = one_line.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// An aligned table of jobs for people.
pub fn table(rows: &[(JobRecord, Vec<Asset>)]) -> String {
    table_for(rows, Layout::Fit, 100)
}

/// The job table in `layout`, for a terminal `width` columns wide.
pub(super) fn table_for(rows: &[(JobRecord, Vec<Asset>)], layout: Layout, width: usize) -> String {
    let now = crate::time::now_ms();
    let wide = layout == Layout::Wide;
    let mut lines: Vec<Vec<String>> = vec![if wide {
        ["JOB", "STATE", "MODEL", "CREATED", "SPEC", "NAME/PROMPT", "VIDEO", "NOTE"].map(String::from).to_vec()
    } else {
        ["JOB", "STATE", "MODEL", "SPEC", "NAME/PROMPT", "NOTE"].map(String::from).to_vec()
    }];
    for (job, assets) in rows {
        let video = assets.iter().find(|a| a.kind == AssetKind::Video).map_or(String::new(), |a| a.key.clone());
        let mut note = match &job.error {
            Some(e) if job.state == JobState::WaitingBudget => e.message.clone(),
            Some(e) => e.code.clone(),
            None => String::new(),
        };
        if let Some(next) = next_attempt(job, now) {
            note = if note.is_empty() { format!("next attempt {next}") } else { format!("{note}; next {next}") };
        }
        let text = job.name.clone().or_else(|| job.prompt.clone()).unwrap_or_default();
        let text = Escaped(&text).to_string();
        let id = if wide { job.id.clone() } else { short_id(&job.id).to_owned() };
        lines.push(if wide {
            vec![
                id,
                job.state.to_string(),
                job.model.clone(),
                rfc3339(job.created_at),
                job.spec_name.clone(),
                clip(&text, usize::MAX),
                video,
                note,
            ]
        } else {
            vec![id, job.state.to_string(), job.model.clone(), clip(&job.spec_name, 24), text, clip(&note, 24)]
        });
    }
    let columns = lines[0].len();
    let mut widths: Vec<usize> =
        (0..columns).map(|i| lines.iter().map(|l| l[i].chars().count()).max().unwrap_or(0)).collect();
    if !wide {
        // NAME/PROMPT takes what the other columns leave of the terminal.
        let others: usize = widths.iter().enumerate().filter(|(i, _)| *i != 4).map(|(_, w)| w + 2).sum();
        widths[4] = widths[4].min(width.saturating_sub(others).max(12));
        for line in lines.iter_mut().skip(1) {
            line[4] = clip(&line[4], widths[4]);
        }
    }
    let mut out = String::new();
    for line in &lines {
        let cells: Vec<String> = line.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out.push_str(&format!("{} job(s)\n", rows.len()));
    out
}

/// When a waiting job is next tried (a retry, an account pause, a budget wait), if later than now.
fn next_attempt(job: &JobRecord, now: i64) -> Option<String> {
    let waiting = matches!(job.state, JobState::Queued | JobState::WaitingBudget);
    (waiting && job.next_attempt_at > now).then(|| local_time(job.next_attempt_at))
}

/// `ms` as a short UTC time for tables and `show`.
fn local_time(ms: i64) -> String {
    let t = rfc3339(ms);
    format!("{} {} UTC", &t[..10], &t[11..16])
}

/// `vidkeep export`
pub(super) fn export(config: &Config, format: ExportFormat, filter: &JobFilter) -> anyhow::Result<ExitCode> {
    use std::io::Write as _;
    let catalog = open(config)?;
    let listing = Listing::of(filter);
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    // A page at a time (keyset), so memory stays flat however many jobs there are; the bytes are
    // those of the whole list printed at once.
    let mut array = PrettyArray::default();
    if matches!(format, ExportFormat::Csv) {
        out.write_all(CSV_HEADER.as_bytes())?;
    }
    let mut next = Some(filter.clone());
    while let Some(page) = next.take() {
        let (rows, after) = catalog.export_page(&page, &listing, EXPORT_PAGE)?;
        match format {
            ExportFormat::Json => {
                for (job, assets) in &rows {
                    out.write_all(array.element(&job_json(job, assets))?.as_bytes())?;
                }
            }
            ExportFormat::Csv => out.write_all(csv_rows(&rows).as_bytes())?,
        }
        next = after;
    }
    if matches!(format, ExportFormat::Json) {
        writeln!(out, "{}", array.end())?;
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// What `show` and `resolve` were asked for.
enum Found {
    One(Box<JobRecord>),
    None,
    Many(Vec<JobRecord>),
}

/// The job that `what` names: its id, a unique start or end of it (`jobs` shows the last 8
/// characters), its spec file's name (as
/// received, or as filed in `done/`/`failed/`), its task id or its request id.
fn find(catalog: &Catalog, what: &str) -> anyhow::Result<Found> {
    let mut matches = catalog.find_by_reference(what)?;
    Ok(match matches.len() {
        0 => Found::None,
        1 => Found::One(Box::new(matches.remove(0))),
        _ => Found::Many(matches),
    })
}

/// The one job `what` names; otherwise says why on stderr and gives exit code 1.
fn find_one(catalog: &Catalog, what: &str) -> anyhow::Result<Result<JobRecord, ExitCode>> {
    match find(catalog, what)? {
        Found::One(job) => Ok(Ok(*job)),
        Found::None => {
            eprintln!(
                "no job matches `{}` (give a job id or its start, a spec file name, a task id or a request id)",
                Escaped(what)
            );
            Ok(Err(ExitCode::from(1)))
        }
        Found::Many(jobs) => {
            eprintln!("`{}` matches {} jobs; give one of their ids:", Escaped(what), jobs.len());
            for j in &jobs {
                eprintln!("  {}  {}  {}", j.id, j.state, Escaped(&j.spec_name));
            }
            Ok(Err(ExitCode::from(1)))
        }
    }
}

/// `vidkeep show`
pub(super) fn show(config: &Config, prefix: &str, json: bool) -> anyhow::Result<ExitCode> {
    let catalog = open(config)?;
    let job = match find_one(&catalog, prefix)? {
        Ok(job) => job,
        Err(code) => return Ok(code),
    };
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
        v["next_attempt_at"] = match next_attempt(&job, crate::time::now_ms()) {
            Some(_) => Value::from(rfc3339(job.next_attempt_at)),
            None => Value::Null,
        };
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
    if let Some(next) = next_attempt(&job, crate::time::now_ms()) {
        println!("next      attempt at {next}");
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
    // The person's decision is an event like the daemon's: the daemon's notifier delivers it.
    catalog.set_notify(crate::catalog::NotifySetup {
        sinks: config.notify.sinks(),
        ui_base: config.http.public_url.clone(),
    });
    let job = match find_one(&catalog, prefix)? {
        Ok(job) => job,
        Err(code) => return Ok(code),
    };
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
