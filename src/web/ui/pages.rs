//! The HTML pages, server-rendered with maud (which escapes every value it interpolates). No
//! external resource: the style and the one small script are inline, so the UI works offline.

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::params::{PAGE_SIZE, Params};
use crate::catalog::{Asset, AssetKind, Event, Facets, JobRecord};
use crate::jobs::JobState;
use crate::money::{Fen, retry_advice};
use crate::time::rfc3339;

const STYLE: &str = "
body{font:15px/1.4 system-ui,sans-serif;margin:0;background:#f4f4f6;color:#222}
header{background:#1d2330;color:#fff;padding:.6em 1.2em;display:flex;gap:1.5em;align-items:center}
header a{color:#fff;text-decoration:none;font-weight:600}
main{padding:1em 1.2em;max-width:1400px;margin:auto}
form.filters{display:flex;flex-wrap:wrap;gap:.5em;margin-bottom:1em}
form.filters input,form.filters select{padding:.35em;border:1px solid #bbb;border-radius:4px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(230px,1fr));gap:1em}
.card{background:#fff;border-radius:6px;overflow:hidden;box-shadow:0 1px 3px #0002;color:inherit;text-decoration:none}
.card img,.card .blank{width:100%;aspect-ratio:16/9;object-fit:cover;background:#ccd;display:block}
.card div.meta{padding:.5em .7em;font-size:13px}
.state{display:inline-block;padding:0 .45em;border-radius:3px;font-size:12px;background:#ddd}
.state.archived{background:#cdebd3}.state.failed{background:#f6cccc}.state.uncertain{background:#f8e3a8}
.prompt{color:#444;margin-top:.3em}
table.kv td{padding:.2em .8em .2em 0;vertical-align:top}
table.kv td:first-child{color:#666;white-space:nowrap}
code,pre{font-size:12.5px;word-break:break-all;white-space:pre-wrap}
.error{background:#fdecec;border-left:4px solid #d33;padding:.6em .9em}
.pages{margin:1em 0;display:flex;gap:1em}
video{max-width:min(100%,960px);max-height:65vh;background:#000;display:block}
.nowrap{white-space:nowrap}
.inputs img{max-height:120px;margin-right:.5em;border:1px solid #ccc}
";

/// Reloads the page when the catalogue changes (a new job, a state change), unless the person is
/// typing in a form field.
/// The Content-Security-Policy of every answer: nothing from elsewhere, and only the inline style
/// and script above, by their hashes.
pub(crate) fn content_security_policy() -> &'static str {
    static CSP: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        use base64::Engine as _;
        use sha2::Digest as _;
        let hash = |s: &str| base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(s.as_bytes()));
        format!(
            "default-src 'none'; script-src 'sha256-{}'; style-src 'sha256-{}'; img-src 'self' data:; \
             media-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
            hash(LIVE),
            hash(STYLE)
        )
    });
    &CSP
}

const LIVE: &str = "(function(){var s=document.body.getAttribute('data-stamp');\
setInterval(function(){fetch('/api/stamp',{credentials:'same-origin'}).then(function(r){return r.json()})\
.then(function(j){if(j.stamp!==s&&!document.querySelector('input:focus,select:focus'))location.reload()})\
.catch(function(){})},5000)})();";

/// Paid results about to expire unarchived, shown at the top of every page.
#[derive(Debug, Clone)]
pub(super) struct Banner {
    /// The results, soonest first.
    pub expiring: Vec<crate::catalog::Expiring>,
    /// The time the page is made at.
    pub now: i64,
}

tokio::task_local! {
    /// The banner of the request being answered (set by the UI's middleware).
    pub(super) static BANNER: Option<Banner>;
}

/// The expiry banner, if one is due: text only, escaped by maud, styled by the existing
/// `.error` rule (no new inline style or script, so the CSP stays as it is).
fn banner() -> Markup {
    let Some(Some(b)) = BANNER.try_with(Clone::clone).ok() else { return html! {} };
    html! {
        div.error role="alert" {
            strong { (b.expiring.len()) " paid result(s) not archived and about to expire: " }
            @for (n, e) in b.expiring.iter().enumerate() {
                @if n > 0 { "; " }
                a href={ "/jobs/" (e.job_id) } { (e.spec_name) } " " (crate::ops::human_span(e.expires_at - b.now))
            }
        }
    }
}

pub(super) fn layout(title: &str, stamp: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · vidkeep" }
                style { (PreEscaped(STYLE)) }
            }
            body data-stamp=(stamp) {
                header { a href="/" { "vidkeep" } span { "archived AI video" } " " a href="/spend" { "spend" } }
                main { (banner()) (body) }
                script { (PreEscaped(LIVE)) }
            }
        }
    }
}

fn state_badge(state: JobState) -> Markup {
    html! { span class={ "state " (state.as_str()) } { (state.as_str()) } }
}

fn excerpt(text: Option<&str>, max: usize) -> String {
    let text = text.unwrap_or("(no prompt)");
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let cut: String = text.chars().take(max).collect();
    format!("{}…", cut.trim_end())
}

fn select(name: &str, current: &str, options: &[String]) -> Markup {
    html! {
        select name=(name) aria-label=(name) {
            option value="" { "any " (name) }
            @for o in options {
                option value=(o) selected[o == current] { (o) }
            }
        }
    }
}

/// The grid of jobs, newest first, with the search form and paging.
pub(super) fn grid(
    params: &Params,
    rows: &[(JobRecord, Vec<Asset>)],
    total: u64,
    facets: &Facets,
    stamp: &str,
) -> Markup {
    let page = params.page();
    let pages = usize::try_from(total).unwrap_or(usize::MAX).div_ceil(PAGE_SIZE).max(1);
    let states: Vec<String> = JobState::ALL.iter().map(|s| s.as_str().to_owned()).collect();
    let body = html! {
        form.filters method="get" action="/" {
            input type="search" name="q" value=(params.q) placeholder="search prompts, names, tags" autofocus;
            (select("model", &params.model, &facets.models))
            (select("state", &params.state, &states))
            (select("project", &params.project, &facets.projects))
            (select("tag", &params.tag, &facets.tags))
            input type="date" name="from" value=(params.from) aria-label="from";
            input type="date" name="to" value=(params.to) aria-label="to";
            button type="submit" { "Search" }
            a href={ "/export.csv?" (params.query_string(None)) } { "CSV" }
            a href={ "/export.json?" (params.query_string(None)) } { "JSON" }
        }
        p { (total) " job(s)" }
        div.grid {
            @for (job, assets) in rows {
                a.card href={ "/jobs/" (job.id) } data-job=(job.id) {
                    @if let Some(cover) = assets.iter().find(|a| a.kind == AssetKind::Cover) {
                        img src={ "/assets/" (cover.sha256) } alt="cover" loading="lazy";
                    } @else {
                        div.blank {}
                    }
                    div.meta {
                        (state_badge(job.state)) " " (job.model) " · "
                        span.nowrap { (rfc3339(job.created_at).get(..10).unwrap_or("")) }
                        div.prompt { (excerpt(job.name.as_deref().or(job.prompt.as_deref()), 110)) }
                    }
                }
            }
        }
        div.pages {
            @if page > 1 { a href={ "/?" (params.query_string(Some(page - 1))) } rel="prev" { "← newer" } }
            span { "page " (page) " of " (pages) }
            @if page < pages { a href={ "/?" (params.query_string(Some(page + 1))) } rel="next" { "older →" } }
        }
    };
    layout("jobs", stamp, body)
}

/// What the job page shows.
pub(super) struct JobView<'a> {
    pub(super) job: &'a JobRecord,
    pub(super) assets: &'a [Asset],
    pub(super) events: &'a [Event],
    /// `(source as the spec gave it, inline number if it was sent as data)`.
    pub(super) inputs: Vec<(String, Option<usize>)>,
    pub(super) stamp: &'a str,
}

/// One job: everything about it, the player and the downloads.
pub(super) fn job_page(v: &JobView<'_>) -> Markup {
    let job = v.job;
    let request: serde_json::Value = serde_json::from_str(&job.request_display).unwrap_or_default();
    let (charged, possibly, price) = (Fen(job.charged_fen), Fen(job.possibly_charged_fen), Fen(job.price_fen));
    let retry = job.error.as_ref().filter(|_| job.state == JobState::Failed).map(|e| retry_advice(&e.code));
    let video = v.assets.iter().find(|a| a.kind == AssetKind::Video);
    let body = html! {
        h1 { (job.name.as_deref().unwrap_or(&job.spec_name)) " " (state_badge(job.state)) }
        @if let Some(e) = &job.error {
            @if matches!(job.state, JobState::Failed | JobState::Uncertain) {
                div.error { strong { (e.code) } ": " (e.message) }
            }
            @if job.state == JobState::WaitingBudget {
                div.error { strong { "waiting for budget" } ": " (e.message) }
            }
        }
        @if let Some(video) = video {
            video id="player" controls preload="metadata" src={ "/assets/" (video.sha256) } {}
        }
        h2 { "Prompt" }
        p.prompt-full { (job.prompt.as_deref().unwrap_or("(no prompt)")) }
        table.kv {
            tr { td { "job" } td { code { (job.id) } } }
            tr { td { "spec" } td { (job.spec_name) } }
            tr { td { "model" } td { (job.model) } }
            tr { td { "task id" } td { code { (job.task_id.as_deref().unwrap_or("-")) } } }
            @if let Some(p) = &job.project { tr { td { "project" } td { a href={ "/?project=" (url_encode(p)) } { (p) } } } }
            @if !job.tags.is_empty() {
                tr { td { "tags" } td { @for t in &job.tags { a href={ "/?tag=" (url_encode(t)) } { (t) } " " } } }
            }
            tr { td { "cost" } td { (charged) " RMB charged, " (possibly) " RMB possibly charged (" (job.attempts) " attempt(s) at " (price) " RMB)" } }
            @if let Some(retry) = retry { tr { td { "retry" } td { (retry) } } }
            tr { td { "created" } td { (rfc3339(job.created_at)) } }
        }
        @if !v.inputs.is_empty() {
            h2 { "Input images" }
            div.inputs {
                @for (source, inline) in &v.inputs {
                    @if let Some(n) = inline {
                        figure { img src={ "/jobs/" (job.id) "/inputs/" (n) } alt=(source); figcaption { (source) } }
                    } @else {
                        p { a href=(source) rel="noreferrer" { (source) } }
                    }
                }
            }
        }
        h2 { "Request parameters" }
        pre { (serde_json::to_string_pretty(&request).unwrap_or_default()) }
        h2 { "Files" }
        @if v.assets.is_empty() { p { "nothing archived yet" } }
        @for a in v.assets {
            table.kv {
                tr { td { (a.kind.as_str()) } td { a href={ "/assets/" (a.sha256) "?download=1" } { "download" } } }
                tr { td { "size" } td { (a.bytes) " bytes" } }
                tr { td { "sha256" } td { code { (a.sha256) } } }
                tr { td { "key" } td { code { (a.key) } } }
            }
        }
        h2 { "History" }
        table.kv {
            @for e in v.events {
                tr {
                    td { (rfc3339(e.at)) }
                    td { (e.from.as_deref().unwrap_or("-")) " → " (e.to) @if let Some(n) = &e.note { " · " (n) } }
                }
            }
        }
        p { a href={ "/api/jobs/" (job.id) } { "as JSON" } }
    };
    layout(&job.spec_name, v.stamp, body)
}

/// A page for an error a person can act on.
pub(super) fn message(title: &str, text: &str) -> Markup {
    layout(title, "", html! { h1 { (title) } p { (text) } p { a href="/" { "all jobs" } } })
}

fn url_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
