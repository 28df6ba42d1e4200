//! `jobs`, `export`, `show` and `resolve`: reading (and for `resolve`, deciding) from the catalogue.

use crate::telemetry::Escaped;
use std::process::ExitCode;

use super::columns::{clip, pad, width as text_width};

use serde_json::Value;

use crate::catalog::{
    Asset, AssetKind, COUNT_CAP, Catalog, Cursor, EXPORT_PAGE, ExportWriter, JobFilter, JobRecord, Listing, job_json,
    short_id,
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

impl From<ExportFormat> for crate::catalog::ExportFormat {
    fn from(format: ExportFormat) -> Self {
        match format {
            ExportFormat::Json => crate::catalog::ExportFormat::Json,
            ExportFormat::Csv => crate::catalog::ExportFormat::Csv,
        }
    }
}

fn open(config: &Config) -> anyhow::Result<Catalog> {
    Catalog::open_config_existing(&config.catalog).map_err(anyhow::Error::from)
}

fn load(catalog: &Catalog, filter: &JobFilter) -> anyhow::Result<Vec<(JobRecord, Vec<Asset>)>> {
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
    let catalog = open(config)?;
    let rows = load(&catalog, filter)?;
    if let Some(limit) = filter.limit.filter(|l| rows.len() >= *l) {
        // Counted up to a cap, as the UI counts: an exact count of a common word's 310,000
        // matches cost most of a 200 ms search at 1,000,000 jobs.
        let whole = JobFilter { cursor: None, ..filter.clone() };
        let total = catalog.count_listed(&whole, &Listing::of(&whole), COUNT_CAP)?;
        if total.capped() || total.shown() > limit as u64 {
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
        let reason = one_line(&r.error_message);
        println!("{}  {}  {}: {}", rfc3339(r.at), Escaped(&r.spec_name), r.error_code, Escaped(&reason));
    }
    println!("{} rejected spec(s); each has a report in failed/", rejections.len());
    Ok(ExitCode::SUCCESS)
}

fn terminal_width() -> usize {
    std::env::var("COLUMNS").ok().and_then(|c| c.trim().parse().ok()).unwrap_or(100).clamp(80, 200)
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
        if let Some(mut next) = next_attempt(job, now) {
            if !wide && job.next_attempt_at - now < 20 * 3_600_000 {
                // Within the day the time alone says it; the column is too narrow for the date too.
                next = next.get(11..).unwrap_or(&next).to_owned();
            }
            // The time first: when a narrow terminal cuts the note, the code goes, not the time.
            note = if note.is_empty() { format!("next attempt {next}") } else { format!("next {next}; {note}") };
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
            vec![id, job.state.to_string(), job.model.clone(), clip(&job.spec_name, 24), text, clip(&note, 30)]
        });
    }
    let columns = lines[0].len();
    let mut widths: Vec<usize> =
        (0..columns).map(|i| lines.iter().map(|l| text_width(&l[i])).max().unwrap_or(0)).collect();
    if !wide {
        // NAME/PROMPT takes what the other columns leave of the terminal.
        let others: usize = widths.iter().enumerate().filter(|(i, _)| *i != 4).map(|(_, w)| w + 2).sum();
        widths[4] = widths[4].min(width.saturating_sub(others).max(12));
        // Then NOTE, if the columns before it still leave it too little.
        let before_note: usize = widths[..5].iter().map(|w| w + 2).sum();
        widths[5] = widths[5].min(width.saturating_sub(before_note).max(12));
        for line in lines.iter_mut().skip(1) {
            line[4] = clip(&line[4], widths[4]);
            line[5] = clip(&line[5], widths[5]);
        }
    }
    let mut out = String::new();
    for line in &lines {
        let cells: Vec<String> = line.iter().zip(&widths).map(|(c, w)| pad(c, *w)).collect();
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

/// A message that may span lines on one line. A parser's error quotes the spec's line with a
/// caret under it between its first line (where) and its last (what): those two say it.
fn one_line(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    match lines.as_slice() {
        [] => String::new(),
        [only] => (*only).to_owned(),
        [first, .., last] => format!("{first}: {last}"),
    }
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
    // A page at a time (keyset), so memory stays flat however many jobs there are.
    let mut writer = ExportWriter::new(format.into());
    out.write_all(writer.start().as_bytes())?;
    let mut next = Some(filter.clone());
    while let Some(page) = next.take() {
        let (rows, after) = catalog.export_page(&page, &listing, EXPORT_PAGE)?;
        out.write_all(writer.page(&rows)?.as_bytes())?;
        next = after;
    }
    out.write_all(writer.end().as_bytes())?;
    if format == ExportFormat::Json {
        // As `println!` ended the array before.
        out.write_all(b"\n")?;
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
/// received, or as filed in `done/`/`failed/`), its task id or its request id; or any of these
/// as people paste them (see [`pasted_forms`]).
fn find(catalog: &Catalog, what: &str) -> anyhow::Result<Found> {
    let mut matches = Vec::new();
    for form in pasted_forms(what) {
        matches = catalog.find_by_reference(&form)?;
        if !matches.is_empty() {
            break;
        }
    }
    Ok(match matches.len() {
        0 => Found::None,
        1 => Found::One(Box::new(matches.remove(0))),
        _ => Found::Many(matches),
    })
}

/// What `what` may stand for, as given first: a job page's address copied from the browser
/// (`http://host/jobs/<id>?q=...`) or a spec's path as the shell completes it
/// (`inbox/done/fox.json`) stand for their last part, and an id in capitals for the lower-case
/// id the catalogue keeps.
fn pasted_forms(what: &str) -> Vec<String> {
    let what = what.trim();
    let mut forms = vec![what.to_owned()];
    // Only an address has a query or a fragment; a file name may hold `?` or `#`.
    let path = if what.contains("://") { what.split(['?', '#']).next().unwrap_or(what) } else { what };
    if let Some(last) = path.rsplit('/').find(|part| !part.is_empty()) {
        forms.push(last.to_owned());
    }
    let mut lower: Vec<String> = forms
        .iter()
        .filter(|f| f.chars().all(|c| c.is_ascii_hexdigit() || c == '-') && f.chars().any(|c| c.is_ascii_uppercase()))
        .map(|f| f.to_ascii_lowercase())
        .collect();
    forms.append(&mut lower);
    forms.dedup();
    forms
}

/// The one job `what` names; otherwise says why on stderr and gives exit code 1.
fn find_one(catalog: &Catalog, what: &str) -> anyhow::Result<Result<JobRecord, ExitCode>> {
    match find(catalog, what)? {
        Found::One(job) => Ok(Ok(*job)),
        Found::None => {
            // A spec refused at intake never became a job: say so rather than "no job".
            let mut refused = Vec::new();
            for form in pasted_forms(what) {
                refused = catalog.rejections_named(&form)?;
                if !refused.is_empty() {
                    break;
                }
            }
            if let Some(r) = refused.first() {
                eprintln!(
                    "`{}` never became a job: intake rejected it at {} ({}: {}); nothing was sent or charged. \
                     Its report is in the inbox's failed/ folder; fix the spec and drop it into the inbox again",
                    Escaped(&r.spec_name),
                    rfc3339(r.at),
                    r.error_code,
                    Escaped(&one_line(&r.error_message))
                );
                if refused.len() > 1 {
                    eprintln!("(rejected {} times; `vidkeep jobs --rejected` lists each)", refused.len());
                }
            } else {
                eprintln!(
                    "no job matches `{}` (give a job id or its start, a spec file name, a task id or a request id)",
                    Escaped(what)
                );
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Terminal columns the test's text takes: the CJK characters it uses are two wide.
    fn cols(s: &str) -> usize {
        s.chars()
            .map(
                |c| {
                    if ('\u{3000}'..='\u{9fff}').contains(&c) || ('\u{ff00}'..='\u{ff60}').contains(&c) { 2 } else { 1 }
                },
            )
            .sum()
    }

    #[test]
    fn the_table_counts_chinese_text_by_the_columns_it_takes() {
        let mut lantern = JobRecord::for_test("01a24db0-fc3c-71ea-8f35-6513bc374f95");
        lantern.spec_name = "灯笼.txt".to_owned();
        lantern.prompt = Some("河面上漂浮的灯笼在夜色中闪烁，".repeat(4));
        let mut harbour = JobRecord::for_test("01a24db0-fc3c-71ea-8f35-6513bc374f96");
        harbour.spec_name = "harbour-at-dawn.txt".to_owned();
        harbour.prompt = Some("A quiet fishing harbour at dawn".to_owned());
        for width in [80, 120] {
            let table = table_for(&[(lantern.clone(), Vec::new()), (harbour.clone(), Vec::new())], Layout::Fit, width);
            let lines: Vec<&str> = table.lines().collect();
            for line in &lines {
                assert!(cols(line) <= width, "wider than {width} columns: {line}\n{table}");
            }
            // Every row's NAME/PROMPT starts in the header's column.
            let at = |line: &str, text: &str| cols(&line[..line.find(text).expect("in the line")]);
            assert_eq!(at(lines[0], "NAME/PROMPT"), at(lines[1], "河面"), "{table}");
            assert_eq!(at(lines[0], "NAME/PROMPT"), at(lines[2], "A quiet"), "{table}");
            assert!(lines[1].contains('…'), "cut to fit: {table}");
        }
    }

    #[test]
    fn a_waiting_jobs_note_keeps_when_it_is_next_tried() {
        let now = crate::time::now_ms();
        let mut paused = JobRecord::for_test("01a24dbf-8895-711e-951a-a954233ae7b0");
        paused.error = Some(JobError::new("platform-1113", "the account balance is exhausted"));
        paused.next_attempt_at = now + 10 * 60_000;
        let at = rfc3339(paused.next_attempt_at);
        let (day, time) = (&at[..10], &at[11..16]);
        for width in [80, 100] {
            let table = table_for(&[(paused.clone(), Vec::new())], Layout::Fit, width);
            let row = table.lines().nth(1).expect("a row");
            assert!(row.contains(&format!("next {time} UTC")), "the time, not `next 202…`: {table}");
            assert!(width < 100 || row.contains("platform-1113"), "and the code when there is room: {table}");
            assert!(cols(row) <= width, "{table}");
            let wide = table_for(&[(paused.clone(), Vec::new())], Layout::Wide, width);
            assert!(wide.contains(&format!("{day} {time} UTC")), "--wide keeps the day: {wide}");
        }
    }
}
