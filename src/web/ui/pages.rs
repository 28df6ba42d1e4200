//! The HTML pages, server-rendered with maud (which escapes every value it interpolates). No
//! external resource: the style and the one small script are inline, so the UI works offline.

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::params::{PAGE_SIZE, Params};
use crate::catalog::{Asset, AssetKind, Count, Cursor, Event, FacetCounts, JobRecord, Sort};
use crate::domain::JobState;
use crate::money::{Fen, retry_advice};
use crate::time::rfc3339;

const STYLE: &str = "
:root{color-scheme:light dark}
body{font:15px/1.4 system-ui,sans-serif;margin:0;background:#f4f4f6;color:#222;overflow-wrap:anywhere}
header{background:#1d2330;color:#fff;padding:.6em 1.2em;display:flex;flex-wrap:wrap;gap:1.5em;align-items:center}
header a{color:#fff;text-decoration:none;font-weight:600}
main{padding:1em 1.2em;max-width:1400px;margin:auto}
a{color:#1f5fbf}
:focus-visible{outline:3px solid #f59e0b;outline-offset:2px}
form.filters{display:flex;flex-wrap:wrap;gap:.5em;margin-bottom:1em}
form.filters input,form.filters select{padding:.35em;border:1px solid #bbb;border-radius:4px;background:inherit;color:inherit}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(230px,1fr));gap:1em}
.cell{position:relative;display:flex}
.card{background:#fff;border-radius:6px;overflow:hidden;box-shadow:0 1px 3px #0002;color:inherit;text-decoration:none;position:relative;flex:1}
.cell .pick{position:absolute;top:.3em;left:.3em;background:#fffd;border-radius:4px;padding:.15em .3em;line-height:1}
.cell .pick input{width:1.2em;height:1.2em;margin:0;cursor:pointer}
.cell:has(input:checked) .card{outline:3px solid #3b82f6;outline-offset:-3px}
form.selection{display:flex;flex-wrap:wrap;gap:.6em;align-items:center;margin:0 0 .8em}
form.selection .note{color:#b45309}
table.rejections th{text-align:left;padding:.2em .8em .2em 0}
table.rejections td:nth-child(2){min-width:10em}
.card img,.card .blank{width:100%;aspect-ratio:16/9;object-fit:cover;background:#ccd;display:block}
.card div.meta{padding:.5em .7em;font-size:13px}
.card .takes{position:absolute;top:.4em;right:.4em;background:#1d2330;color:#fff;border-radius:3px;padding:0 .45em;font-size:12px}
.state{display:inline-block;padding:0 .45em;border-radius:3px;font-size:12px;background:#ddd;color:#222}
.state.archived{background:#cdebd3}.state.failed{background:#f6cccc}.state.uncertain,.state.waiting_budget,.state.archived_with_warnings{background:#f8e3a8}
.prompt{color:#444;margin-top:.3em}
table.kv{border-collapse:collapse;max-width:100%}
table.kv td{padding:.2em .8em .2em 0;vertical-align:top}
table.kv td:first-child{color:#666;white-space:nowrap;overflow-wrap:normal}
code,pre{font-size:12.5px;word-break:break-all;white-space:pre-wrap}
.error{background:#fdecec;border-left:4px solid #d33;padding:.6em .9em;color:#222}
.hint{background:#eef4ff;border-left:4px solid #3b82f6;padding:.6em .9em;color:#222}
.pages,.nav{margin:1em 0;display:flex;flex-wrap:wrap;gap:1em}
video{max-width:100%;max-height:65vh;background:#000;display:block}
.player video{width:960px}
.downloads{display:flex;flex-wrap:wrap;gap:1em;margin:.4em 0 1em}
.taken{display:flex;flex-wrap:wrap;gap:1em}
.taken figure{margin:0;flex:1 1 280px;max-width:480px}
.taken figure.this{outline:2px solid #3b82f6;outline-offset:4px}
.nowrap{white-space:nowrap}
.inputs img{max-height:120px;max-width:100%;margin-right:.5em;border:1px solid #ccc}
@media (max-width:600px){table.kv td:first-child{white-space:normal}main{padding:.6em}
table.rejections,table.rejections tbody,table.rejections tr,table.rejections td{display:block;min-width:0}
table.rejections tr:has(th){display:none}
table.rejections tr{padding:.5em 0;border-top:1px solid #8884}
table.rejections td{padding:0}
table.rejections td:nth-child(2){font-weight:600}}
@media (prefers-color-scheme:dark){
body{background:#15171c;color:#ddd}
a{color:#8ab4f8}
.card{background:#222631;box-shadow:0 1px 3px #0008}
.prompt{color:#bbb}
table.kv td:first-child{color:#999}
}
";

/// The Content-Security-Policy of every answer: nothing from elsewhere, and only the inline style
/// and script above, by their hashes.
pub(crate) fn content_security_policy() -> &'static str {
    static CSP: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        use base64::Engine as _;
        use sha2::Digest as _;
        let hash = |s: &str| base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(s.as_bytes()));
        format!(
            "default-src 'none'; script-src 'sha256-{}' 'sha256-{}'; style-src 'sha256-{}'; img-src 'self' data:; \
             media-src 'self'; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
            hash(LIVE),
            hash(super::zip::SELECT_SCRIPT),
            hash(STYLE)
        )
    });
    &CSP
}

/// The one script of every page:
/// - times in `<time datetime>` are shown in the reader's zone;
/// - `/` focuses the search, arrow keys move through the grid's cards (Enter opens one);
/// - when the catalogue changes (`/api/stamp`), the page is fetched again and each changed
///   `[data-live]` part is replaced in place: never a reload, never while a form field is being
///   used in it, and never a part holding a video someone started. The grid's cards are matched
///   by job, so unchanged cards (and the focused one) stay as they are.
const LIVE: &str = "(function(){var d=document,s=d.body.getAttribute('data-stamp');\
function times(r){r.querySelectorAll('time[datetime]').forEach(function(t){var v=new Date(t.getAttribute('datetime'));\
if(!isNaN(v)){t.title=t.getAttribute('datetime');t.textContent=v.toLocaleString();}});}\
times(d);\
function field(a){return a&&/^(INPUT|SELECT|TEXTAREA)$/.test(a.tagName)&&a.type!=='checkbox'}\
d.addEventListener('keydown',function(e){var a=d.activeElement,typing=field(a);\
if(e.key==='/'&&!typing){var q=d.querySelector('input[name=q]');if(q){e.preventDefault();q.focus();q.select();}return;}\
var step={ArrowRight:1,ArrowLeft:-1,ArrowDown:0,ArrowUp:0}[e.key];if(typing||step===undefined||e.altKey||e.ctrlKey||e.metaKey)return;\
var c=[].slice.call(d.querySelectorAll('.grid .card'));if(!c.length)return;var w=a&&a.closest&&a.closest('.cell'),\
i=c.indexOf(w?w.querySelector('.card'):a);e.preventDefault();\
if(i<0){c[0].focus();return;}var cols=c.filter(function(x){return x.offsetTop===c[0].offsetTop}).length||1;\
if(!step)step=e.key==='ArrowDown'?cols:-cols;c[Math.min(c.length-1,Math.max(0,i+step))].focus();});\
function busy(o){return [].some.call(o.querySelectorAll('video'),function(v){return !v.paused||v.currentTime>0})\
||o.contains(d.activeElement)&&field(d.activeElement);}\
function merge(o,x){var f=d.activeElement&&d.activeElement.id,old={};\
[].forEach.call(o.children,function(k){old[k.getAttribute('data-job')]=k});\
var kids=[].map.call(x.children,function(k){var m=old[k.getAttribute('data-job')];return m&&m.outerHTML===k.outerHTML?m:d.importNode(k,true)});\
o.replaceChildren.apply(o,kids);times(o);if(f){var n=d.getElementById(f);if(n&&n!==d.activeElement)n.focus();}}\
function refresh(){fetch(location.href,{credentials:'same-origin'}).then(function(r){return r.ok?r.text():null}).then(function(t){\
if(!t)return;var n=new DOMParser().parseFromString(t,'text/html');s=n.body.getAttribute('data-stamp');\
d.querySelectorAll('[data-live]').forEach(function(o){var x=n.querySelector('[data-live=\"'+o.getAttribute('data-live')+'\"]');\
if(!x||x.innerHTML===o.innerHTML||busy(o))return;if(o.hasAttribute('data-keyed'))merge(o,x);else{o.innerHTML=x.innerHTML;times(o);}});\
d.body.setAttribute('data-refreshed',String(Date.now()));}).catch(function(){});}\
if(s)setInterval(function(){fetch('/api/stamp',{credentials:'same-origin'}).then(function(r){return r.json()})\
.then(function(j){if(j.stamp!==s)refresh()}).catch(function(){})},3000);})();";

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
                meta name="color-scheme" content="light dark";
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

/// A time as the reader's local time (by the page's script), UTC until then.
pub(super) fn when(ms: i64) -> Markup {
    let t = rfc3339(ms);
    html! { time datetime=(t) { (t.replace('T', " ").get(..19).unwrap_or(&t)) " UTC" } }
}

/// `bytes` for a person: `1.2 MB`, `340 KB`, `12 bytes` (decimal units, as file managers show).
pub(super) fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} bytes");
    }
    let mut v = bytes as f64 / 1000.0;
    let mut unit = 0;
    while v >= 999.95 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    if v < 10.0 { format!("{v:.1} {}", UNITS[unit]) } else { format!("{v:.0} {}", UNITS[unit]) }
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

fn select(name: &str, label: &str, current: &str, options: &[(String, u64)]) -> Markup {
    html! {
        select name=(name) aria-label=(label) {
            option value="" { "any " (label) }
            @if !current.is_empty() && !options.iter().any(|(o, _)| o == current) {
                option value=(current) selected { (current) " (0)" }
            }
            @for (o, n) in options {
                option value=(o) selected[o == current] { (o) " (" (n) ")" }
            }
        }
    }
}

/// What the grid shows.
pub(super) struct GridView<'a> {
    pub(super) params: &'a Params,
    pub(super) rows: &'a [(JobRecord, Vec<Asset>)],
    /// Takes per row (1 for a job without takes, or when every take is listed).
    pub(super) takes: &'a [u64],
    /// Entries in all (take groups count once unless `takes=all`), up to a cap.
    pub(super) total: Count,
    pub(super) facets: &'a FacetCounts,
    pub(super) stamp: &'a str,
    /// The page before this one, if any.
    pub(super) previous: Option<&'a Cursor>,
    /// The page after this one, if any.
    pub(super) next: Option<&'a Cursor>,
    /// Specs refused at intake (the state filter's `rejected` value).
    pub(super) rejected: u64,
}

/// `n` with thousands separated: `10,000`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A total as the grid says it: `1,234`, or `more than 10,000` when counting stopped.
fn total_text(total: Count) -> String {
    match total {
        Count::Exactly(n) => grouped(n),
        Count::MoreThan(n) => format!("more than {}", grouped(n)),
    }
}

/// The grid of jobs with the search form, sort control, counts per filter value and paging.
pub(super) fn grid(v: &GridView<'_>) -> Markup {
    let params = v.params;
    let page = params.page();
    let numbered = params.after.trim().is_empty() && params.before.trim().is_empty();
    let pages = usize::try_from(v.total.shown()).unwrap_or(usize::MAX).div_ceil(PAGE_SIZE).max(1);
    let all_takes = params.takes.trim() == "all";
    let searched = !params.q.trim().is_empty();
    let here = params.here();
    let sorts: Vec<(String, &str)> = Sort::ALL.iter().map(|s| (s.as_str().to_owned(), s.as_str())).collect();
    let toggle =
        Params { takes: if all_takes { String::new() } else { "all".to_owned() }, page: None, ..params.clone() };
    let mut states = v.facets.states.clone();
    if v.rejected > 0 {
        states.push((super::rejected::STATE.to_owned(), v.rejected));
    }
    let body = html! {
        form.filters method="get" action="/" role="search" {
            input type="search" name="q" value=(params.q) placeholder="search prompts, names, tags (press /)" aria-label="search";
            (select("state", "state", &params.state, &states))
            (select("model", "model", &params.model, &v.facets.models))
            (select("project", "project", &params.project, &v.facets.projects))
            (select("tag", "tag", &params.tag, &v.facets.tags))
            @if let Some(n) = v.facets.sampled {
                @if searched {
                    span.hint { "menu counts are of the newest " (grouped(n)) " matches of the words" }
                } @else {
                    span.hint { "menu counts are of the newest " (grouped(n)) " matches" }
                }
            }
            input type="date" name="from" value=(params.from) aria-label="from";
            input type="date" name="to" value=(params.to) aria-label="to";
            select name="sort" aria-label="sort" {
                @for (value, label) in &sorts {
                    option value=(value) selected[params.sort.trim() == value.as_str() || (params.sort.trim().is_empty() && value == "newest")] { (label) }
                }
            }
            @if all_takes { input type="hidden" name="takes" value="all"; }
            button type="submit" { "Search" }
            a href={ "/export.csv?" (params.query_string(None)) } { "CSV" }
            a href={ "/export.json?" (params.query_string(None)) } { "JSON" }
            a href={ "/export.zip?" (params.query_string(None)) } title="the files of every job of this search, with a manifest (at most 500 jobs)" { "ZIP" }
        }
        p data-live="count" {
            (total_text(v.total)) @if all_takes { " job(s)" } @else { " job(s) or take group(s)" }
            " · " a href={ "/?" (toggle.query_string(None)) } { @if all_takes { "group the takes of a spec" } @else { "show every take" } }
        }
        @if v.rows.is_empty() {
            @if !numbered || page > 1 {
                p.hint {
                    @if numbered { "Page " (page) } @else { "This page" } " is past the end"
                    @if numbered && !v.total.capped() { ": this search has " (pages) " page(s)" }
                    ". " a href={ "/?" (params.query_string(None)) } { "back to the first page" } }
            } @else if searched {
                p.hint { "Nothing matches “" (params.q.trim()) "”. Every word must appear in a prompt, name, project or tag \
                    (any case); try fewer words, or clear the filters. "
                    a href="/" { "clear the search" } }
            } @else {
                p.hint { "No job matches these filters. " a href="/" { "show all jobs" } }
            }
        }
        @if !v.rows.is_empty() { (super::zip::bar()) }
        div.grid data-live="grid" data-keyed {
            @for (i, (job, assets)) in v.rows.iter().enumerate() {
                @let prompt = job.prompt.as_deref().unwrap_or("(no prompt)");
                @let takes = v.takes.get(i).copied().unwrap_or(1);
                @let title = job.name.as_deref().unwrap_or(&job.spec_name);
                div.cell data-job=(job.id) {
                a.card id={ "card-" (job.id) } href={ "/jobs/" (job.id) "?" (here) } {
                    @if let Some(cover) = assets.iter().find(|a| a.kind == AssetKind::Cover) {
                        img src={ "/assets/" (cover.sha256) } alt=(prompt) loading="lazy";
                    } @else {
                        div.blank role="img" aria-label=(prompt) {}
                    }
                    @if takes > 1 { span.takes { (takes) " takes" } }
                    div.meta {
                        (state_badge(job.state)) " " (job.model) " · "
                        span.nowrap { (when(job.created_at)) }
                        div.prompt { (excerpt(job.name.as_deref().or(job.prompt.as_deref()), 110)) }
                    }
                }
                label.pick {
                    @if takes > 1 {
                        input type="checkbox" form="zip" id={ "pick-" (job.id) } name=(super::zip::TAKES_FIELD) value=(job.id)
                            aria-label={ "select " (title) " (all " (takes) " takes) for the zip" };
                    } @else {
                        input type="checkbox" form="zip" id={ "pick-" (job.id) } name=(super::zip::JOB_FIELD) value=(job.id)
                            aria-label={ "select " (title) " for the zip" };
                    }
                }
                }
            }
        }
        div.pages data-live="pages" {
            @if let Some(c) = v.previous { a href={ "/?" (params.at(c)) } rel="prev" { "← previous page" } }
            @if numbered {
                span { "page " (page) @if !v.total.capped() { " of " (pages) } }
            }
            @if let Some(c) = v.next { a href={ "/?" (params.at(c)) } rel="next" { "next page →" } }
        }
        script { (PreEscaped(super::zip::SELECT_SCRIPT)) }
    };
    layout("jobs", v.stamp, body)
}

/// What the job page shows.
pub(super) struct JobView<'a> {
    pub(super) job: &'a JobRecord,
    pub(super) assets: &'a [Asset],
    pub(super) events: &'a [Event],
    /// `(source as the spec gave it, inline number if it was sent as data)`.
    pub(super) inputs: Vec<(String, Option<usize>)>,
    pub(super) stamp: &'a str,
    /// Every take of the job's spec (this one included) with its assets, by take number; empty
    /// for a job without takes.
    pub(super) takes: &'a [(JobRecord, Vec<Asset>)],
    /// The search the page was opened from.
    pub(super) params: &'a Params,
    /// The previous and next job in that search.
    pub(super) around: (Option<String>, Option<String>),
}

fn downloads(job: &JobRecord, assets: &[Asset]) -> Markup {
    html! {
        div.downloads {
            @for a in assets {
                a href={ "/assets/" (a.sha256) "?download=1" } download { "download " (a.kind.as_str()) " (" (human_size(a.bytes)) ")" }
            }
            @if assets.is_empty() { span { "nothing archived yet (" (job.state.as_str()) ")" } }
        }
    }
}

/// One job: everything about it, the player and the downloads, its takes side by side.
pub(super) fn job_page(v: &JobView<'_>) -> Markup {
    let job = v.job;
    let request: serde_json::Value = serde_json::from_str(&job.request_display).unwrap_or_default();
    let (charged, possibly, price) = (Fen(job.charged_fen), Fen(job.possibly_charged_fen), Fen(job.price_fen));
    let retry = job.error.as_ref().filter(|_| job.state == JobState::Failed).map(|e| retry_advice(&e.code));
    let video = v.assets.iter().find(|a| a.kind == AssetKind::Video);
    let search = v.params.here();
    let prompt = job.prompt.as_deref().unwrap_or("(no prompt)");
    let next_step = crate::report::next_step(job);
    let body = html! {
        nav.nav aria-label="results" {
            a href={ "/?" (search) } rel="up" { "← back to results" }
            @if let Some(prev) = &v.around.0 { a href={ "/jobs/" (prev) "?" (search) } rel="prev" { "previous" } }
            @if let Some(next) = &v.around.1 { a href={ "/jobs/" (next) "?" (search) } rel="next" { "next" } }
        }
        div data-live="head" {
            h1 { (job.name.as_deref().unwrap_or(&job.spec_name)) " " (state_badge(job.state)) }
            @if let Some(e) = &job.error {
                @if matches!(job.state, JobState::Failed | JobState::Uncertain | JobState::ArchivedWithWarnings) {
                    div.error { strong { (e.code) } ": " (e.message) }
                }
                @if job.state == JobState::WaitingBudget {
                    div.error { strong { "waiting for budget" } ": " (e.message) }
                }
                @if job.state == JobState::Queued {
                    div.error { strong { "not sent yet, " (e.code) } ": " (e.message) }
                }
            }
            @if !matches!(job.state, JobState::Archived | JobState::Queued | JobState::Submitting | JobState::Submitted | JobState::Downloading)
                || (job.state == JobState::Queued && job.error.is_some()) {
                p.hint { strong { "What to do next: " } (next_step) }
            }
        }
        div.player data-live="media" {
            @if let Some(video) = video {
                video id="player" controls preload="metadata" src={ "/assets/" (video.sha256) } aria-label=(prompt) {}
            }
            (downloads(job, v.assets))
        }
        @if v.takes.len() > 1 {
            h2 { "Takes of " (job.spec_name) }
            div.taken data-live="takes" {
                @for (take, assets) in v.takes {
                    figure.this[take.id == job.id] {
                        @if let Some(tv) = assets.iter().find(|a| a.kind == AssetKind::Video) {
                            video controls preload="metadata" src={ "/assets/" (tv.sha256) } aria-label=(take.prompt.as_deref().unwrap_or("")) {}
                        }
                        figcaption {
                            @if take.id == job.id { "take " (take.take_no) " (this one) " } @else {
                                a href={ "/jobs/" (take.id) "?" (search) } { "take " (take.take_no) } " "
                            }
                            (state_badge(take.state))
                        }
                    }
                }
            }
        }
        div data-live="details" {
            h2 { "Prompt" }
            p.prompt-full { (prompt) }
            table.kv {
                tr { td { "job" } td { code { (job.id) } } }
                tr { td { "spec" } td { (job.spec_name) } }
                @if job.take_group.is_some() { tr { td { "take" } td { (job.take_no) " of " (v.takes.len().max(1)) } } }
                tr { td { "model" } td { (job.model) } }
                tr { td { "task id" } td { code { (job.task_id.as_deref().unwrap_or("-")) } } }
                @if let Some(p) = &job.project { tr { td { "project" } td { a href={ "/?project=" (url_encode(p)) } { (p) } } } }
                @if !job.tags.is_empty() {
                    tr { td { "tags" } td { @for t in &job.tags { a href={ "/?tag=" (url_encode(t)) } { (t) } " " } } }
                }
                tr { td { "cost" } td { (charged) " RMB charged, " (possibly) " RMB possibly charged (" (job.attempts) " attempt(s) at " (price) " RMB)" } }
                @if let Some(retry) = retry { tr { td { "retry" } td { (retry) } } }
                tr { td { "created" } td { (when(job.created_at)) } }
                @if matches!(job.state, JobState::Queued | JobState::WaitingBudget) && job.next_attempt_at > crate::time::now_ms() {
                    tr { td { "next attempt" } td { (when(job.next_attempt_at)) } }
                }
                @if let Some(at) = job.archived_at { tr { td { "archived" } td { (when(at)) } } }
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
                    tr { td { "size" } td { (human_size(a.bytes)) " (" (a.bytes) " bytes)" } }
                    tr { td { "sha256" } td { code { (a.sha256) } } }
                    tr { td { "key" } td { code { (a.key) } } }
                    @if let Some(p) = &a.probe {
                        @if let Some(f) = &p.figures {
                            tr { td { "probe" } td { (format!("{:.3} s, {:.3} fps, {}x{}, {}", f.duration_s, f.fps, f.width, f.height, f.codec)) } }
                        }
                        @for finding in &p.findings { tr { td { "warning" } td { (finding) } } }
                    }
                }
            }
            h2 { "History" }
            table.kv {
                @for e in v.events {
                    tr {
                        td { (when(e.at)) }
                        td { (e.from.as_deref().unwrap_or("-")) " → " (e.to) @if let Some(n) = &e.note { " · " (n) } }
                    }
                }
            }
            p { a href={ "/api/jobs/" (job.id) } { "as JSON" } }
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_for_people() {
        assert_eq!(human_size(12), "12 bytes");
        assert_eq!(human_size(1_234), "1.2 KB");
        assert_eq!(human_size(110_000), "110 KB");
        assert_eq!(human_size(2_500_000), "2.5 MB");
        assert_eq!(human_size(999_999), "1.0 MB");
        assert_eq!(human_size(3_000_000_000), "3.0 GB");
    }
}
