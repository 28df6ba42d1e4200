//! The export formats of the catalogue: one job as JSON (`export`, `jobs --json`, the web API)
//! and the CSV export, shared by the CLI and the web UI so they cannot drift apart.

use serde_json::{Value, json};

use super::{Asset, AssetKind, JobRecord};
use crate::domain::JobState;
use crate::time::rfc3339;

/// One job as `export` and `jobs --json` print it.
pub fn job_json(job: &JobRecord, assets: &[Asset]) -> Value {
    json!({
        "job_id": job.id,
        "spec": job.spec_name,
        "state": job.state,
        "model": job.model,
        "prompt": job.prompt,
        "name": job.name,
        "project": job.project,
        "tags": job.tags,
        "task_id": job.task_id,
        "request_id": job.request_id,
        "submissions": job.attempts,
        "price": crate::money::Fen(job.price_fen).to_string(),
        "charged": crate::money::Fen(job.charged_fen).to_string(),
        "possibly_charged": crate::money::Fen(job.possibly_charged_fen).to_string(),
        "waiting_budget": job.error.as_ref().filter(|_| job.state == JobState::WaitingBudget).map(|e| e.message.clone()),
        "created_at": rfc3339(job.created_at),
        "submitted_at": job.submitted_at.map(rfc3339),
        "archived_at": job.archived_at.map(rfc3339),
        "error": job.error.as_ref().filter(|_| job.state == JobState::Failed).map(|e| e.message.clone()),
        "error_code": job.error.as_ref().filter(|_| job.state == JobState::Failed).map(|e| e.code.clone()),
        "attention": job.error.as_ref().filter(|_| job.state == JobState::Uncertain).map(|e| e.message.clone()),
        "assets": assets,
    })
}

/// The CSV export's first line: the column names.
const CSV_HEADER: &str = "job_id,spec,state,model,prompt,name,project,tags,task_id,created_at,submitted_at,archived_at,error,error_code,attempts,charged_rmb,possibly_charged_rmb,video_key,video_sha256,video_bytes,cover_key,cover_sha256,cover_bytes,video_duration_s,video_fps,video_width,video_height,video_codec,probe_findings\n";

/// The CSV export: one row per job, assets in their own columns, the media probe's figures and
/// findings for the video, formula-like cells defused.
pub fn csv(rows: &[(JobRecord, Vec<Asset>)]) -> String {
    let mut out = String::from(CSV_HEADER);
    out.push_str(&csv_rows(rows));
    out
}

/// The rows of the CSV export for `rows`, without the header: an export streamed a page at a
/// time writes [`CSV_HEADER`], then this for each page.
fn csv_rows(rows: &[(JobRecord, Vec<Asset>)]) -> String {
    let mut out = String::new();
    for (job, assets) in rows {
        let asset = |kind| assets.iter().find(|a: &&Asset| a.kind == kind);
        let (v, c) = (asset(AssetKind::Video), asset(AssetKind::Cover));
        let failed = job.error.as_ref().filter(|_| job.state == JobState::Failed);
        let probe = v.and_then(|a| a.probe.as_ref());
        let figure =
            |f: fn(&crate::probe::Figures) -> String| probe.and_then(|p| p.figures.as_ref()).map(f).unwrap_or_default();
        // Why a job failed, waits for a person or the budget, or was archived with warnings.
        let error_code = job
            .error
            .as_ref()
            .filter(|_| {
                matches!(
                    job.state,
                    JobState::Failed | JobState::Uncertain | JobState::WaitingBudget | JobState::ArchivedWithWarnings
                )
            })
            .map(|e| e.code.clone())
            .unwrap_or_default();
        let cells = [
            job.id.clone(),
            job.spec_name.clone(),
            job.state.to_string(),
            job.model.clone(),
            job.prompt.clone().unwrap_or_default(),
            job.name.clone().unwrap_or_default(),
            job.project.clone().unwrap_or_default(),
            job.tags.join(";"),
            String::new(), // the task id: written by `id_cell` below
            rfc3339(job.created_at),
            job.submitted_at.map(rfc3339).unwrap_or_default(),
            job.archived_at.map(rfc3339).unwrap_or_default(),
            failed.map(|e| e.message.clone()).unwrap_or_default(),
            error_code,
            job.attempts.to_string(),
            crate::money::Fen(job.charged_fen).to_string(),
            crate::money::Fen(job.possibly_charged_fen).to_string(),
            v.map(|a| a.key.clone()).unwrap_or_default(),
            v.map(|a| a.sha256.clone()).unwrap_or_default(),
            v.map(|a| a.bytes.to_string()).unwrap_or_default(),
            c.map(|a| a.key.clone()).unwrap_or_default(),
            c.map(|a| a.sha256.clone()).unwrap_or_default(),
            c.map(|a| a.bytes.to_string()).unwrap_or_default(),
            figure(|f| format!("{:.3}", f.duration_s)),
            figure(|f| format!("{:.3}", f.fps)),
            figure(|f| f.width.to_string()),
            figure(|f| f.height.to_string()),
            figure(|f| f.codec.clone()),
            // Findings joined by "; " ("" when the video is as promised or was never probed).
            probe.map(|p| p.findings.join("; ")).unwrap_or_default(),
        ];
        let mut escaped: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
        escaped[8] = id_cell(job.task_id.as_deref().unwrap_or_default());
        out.push_str(&escaped.join(","));
        out.push('\n');
    }
    out
}

/// A JSON array written an element at a time, byte for byte as `serde_json::to_string_pretty`
/// writes the whole array: so an export streamed a page at a time prints what the export of a
/// list in memory printed.
#[derive(Debug, Default)]
struct PrettyArray {
    started: bool,
}

impl PrettyArray {
    /// The text of the next element (with the array's opening or the comma before it).
    fn element(&mut self, value: &Value) -> Result<String, serde_json::Error> {
        let pretty = serde_json::to_string_pretty(value)?;
        let mut out = String::with_capacity(pretty.len() + pretty.len() / 8 + 4);
        out.push_str(if self.started { ",\n" } else { "[\n" });
        self.started = true;
        // Strings in JSON hold no raw line breaks: every line starts a value, a key or a bracket.
        for (i, line) in pretty.split('\n').enumerate() {
            if i > 0 {
                out.push('\n');
            }
            out.push_str("  ");
            out.push_str(line);
        }
        Ok(out)
    }

    /// The text that closes the array.
    fn end(self) -> &'static str {
        if self.started { "\n]" } else { "[]" }
    }
}

/// The formats of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// A JSON array of [`job_json`] objects, pretty-printed.
    Json,
    /// [`CSV_HEADER`], then one row per job.
    Csv,
}

/// An export written a page at a time (the CLI's `export`, the UI's `/export.*`): [`start`], then
/// [`page`] for each page of jobs, then [`end`]. The bytes are those of the whole list written at
/// once, so memory stays flat however many jobs are exported.
///
/// [`start`]: ExportWriter::start
/// [`page`]: ExportWriter::page
/// [`end`]: ExportWriter::end
#[derive(Debug)]
pub struct ExportWriter {
    format: ExportFormat,
    array: PrettyArray,
}

impl ExportWriter {
    /// A writer of `format`.
    pub fn new(format: ExportFormat) -> ExportWriter {
        ExportWriter { format, array: PrettyArray::default() }
    }

    /// What comes before the first page.
    pub fn start(&self) -> &'static str {
        match self.format {
            ExportFormat::Csv => CSV_HEADER,
            ExportFormat::Json => "",
        }
    }

    /// The text of one page of jobs.
    pub fn page(&mut self, rows: &[(JobRecord, Vec<Asset>)]) -> Result<String, serde_json::Error> {
        match self.format {
            ExportFormat::Csv => Ok(csv_rows(rows)),
            ExportFormat::Json => {
                let mut out = String::new();
                for (job, assets) in rows {
                    out.push_str(&self.array.element(&job_json(job, assets))?);
                }
                Ok(out)
            }
        }
    }

    /// What comes after the last page.
    pub fn end(self) -> &'static str {
        match self.format {
            ExportFormat::Csv => "",
            ExportFormat::Json => self.array.end(),
        }
    }
}

/// A platform id as a CSV cell that survives a spreadsheet: an id of more than 15 digits (the
/// platform's task ids have 19) would be read as a number and lose its last digits, so it is
/// written as the text formula `="…"`. Only all-digit ids get this; anything else is a plain
/// cell, defused as [`csv_cell`] does.
pub fn id_cell(id: &str) -> String {
    if id.len() > 15 && id.bytes().all(|b| b.is_ascii_digit()) { format!("\"=\"\"{id}\"\"\"") } else { csv_cell(id) }
}

/// RFC 4180 quoting; cells starting with a formula character (`=`, `+`, `-`, `@`, and TAB or CR,
/// which spreadsheets skip before looking for one) are prefixed with `'` so a spreadsheet does
/// not run a prompt as a formula.
pub fn csv_cell(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{s}") } else { s.to_owned() };
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_defused() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a, \"b\""), "\"a, \"\"b\"\"\"");
        assert_eq!(csv_cell("=HYPERLINK(1)"), "'=HYPERLINK(1)");
        assert_eq!(csv_cell("\t=1+1"), "'\t=1+1");
        assert_eq!(csv_cell("\r=1+1"), "\"'\r=1+1\"");
    }

    #[test]
    fn an_array_written_an_element_at_a_time_is_the_pretty_array() {
        let values = [
            json!({"a": 1, "b": [], "c": {}, "d": ["x", {"e": null}], "f": "two\nlines \"quoted\""}),
            json!({"g": [1, 2], "h": {"i": {"j": "k"}}}),
            json!([]),
        ];
        for n in 0..=values.len() {
            let mut array = PrettyArray::default();
            let mut streamed = String::new();
            for v in &values[..n] {
                streamed.push_str(&array.element(v).expect("element"));
            }
            streamed.push_str(array.end());
            assert_eq!(streamed, serde_json::to_string_pretty(&values[..n]).expect("pretty"), "{n} elements");
        }
    }

    #[test]
    fn long_numeric_ids_stay_text_in_a_spreadsheet() {
        assert_eq!(id_cell("8742519305361283072"), "\"=\"\"8742519305361283072\"\"\"");
        assert_eq!(id_cell("12345"), "12345");
        assert_eq!(id_cell("task-abc"), "task-abc");
        assert_eq!(id_cell("=1+1234567890123456"), "'=1+1234567890123456", "not digits: defused as usual");
    }
}
