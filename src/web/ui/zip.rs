//! Several jobs as one zip, streamed from the store as it is sent: the selection of the grid
//! (`POST /download.zip`, or `GET` with the same fields) or every match of a search
//! (`GET /export.zip?<search>`).
//!
//! - Each archived file is one STORED entry (videos and covers are compressed already), read
//!   from the store (local or S3) chunk by chunk and written to the answer through a small
//!   pipe, so a zip of many large videos never sits in memory: the store is read as fast as the
//!   client takes the bytes.
//! - Names are [`download_name`]s (safe ASCII, never a path), made unique within the zip.
//! - `manifest.csv` comes last: one row per file (or per job with nothing archived) with the
//!   job id, spec, name, project, state, the file's name in the zip, its size and SHA-256 from
//!   the catalogue, and whether the bytes put in the zip had that SHA-256.
//! - At most [`MAX_ZIP_JOBS`] jobs per zip (past it: 413, as JSON when JSON is asked for).
//! - A zip under 4 GB is plain ZIP (data descriptors of 4-byte sizes); a larger one is ZIP64.
//! - A store error in the middle aborts the answer, so the client sees a failed download, never
//!   a zip that looks whole and is not.

use std::collections::HashSet;
use std::io;

use async_zip::base::write::ZipFileWriter;
use async_zip::{Compression, ZipDateTimeBuilder, ZipEntryBuilder};
use axum::body::{Body, Bytes};
use axum::extract::{Query, RawQuery, State};
use axum::http::header::{ACCEPT, CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use futures::{AsyncWriteExt as _, StreamExt as _};
use object_store::path::Path as Key;
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWrite;

use super::files::download_name;
use super::params::Params;
use super::{ApiError, UiError, UiState};
use crate::catalog::{Asset, AssetKind, JobRecord, csv_cell};
use crate::store::Store;

/// Most jobs in one zip.
pub(crate) const MAX_ZIP_JOBS: usize = 500;

/// The form field of a selected job, and of a card that stands for every take of its spec.
pub(super) const JOB_FIELD: &str = "job";
/// See [`JOB_FIELD`].
pub(super) const TAKES_FIELD: &str = "takes_of";

/// Bytes the pipe between the zip writer and the answer holds.
const PIPE: usize = 256 * 1024;
/// Below this total of file bytes the zip is plain ZIP (its offsets fit 32 bits with room for
/// the headers and the manifest).
const PLAIN_ZIP_LIMIT: u64 = u32::MAX as u64 - 64 * 1024 * 1024;

/// Why a zip could not be finished once it had started.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ZipStreamError {
    /// The store failed while a file was read.
    #[error("reading {key} from the store: {source}")]
    Store {
        /// The object.
        key: String,
        /// The store's error.
        source: object_store::Error,
    },
    /// The zip writer failed (the client went away, or a file outgrew plain ZIP).
    #[error("writing the zip: {0}")]
    Zip(#[from] async_zip::error::ZipError),
}

impl ZipStreamError {
    /// A stable code for logs.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            ZipStreamError::Store { .. } => "zip-store-read",
            ZipStreamError::Zip(_) => "zip-write",
        }
    }
}

/// One file of the zip (or a job with none), in order.
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    job: JobRecord,
    /// The archived file and its name in the zip; `None` for a job with nothing archived.
    file: Option<(Asset, String)>,
}

/// `POST /download.zip` with the fields `job=<id>` and `takes_of=<id>` (a form).
pub(super) async fn selection_post(State(state): State<UiState>, headers: HeaderMap, body: Bytes) -> Response {
    selection(state, &headers, &body).await
}

/// `GET /download.zip?job=<id>&takes_of=<id>...`
pub(super) async fn selection_get(
    State(state): State<UiState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    selection(state, &headers, query.unwrap_or_default().as_bytes()).await
}

/// `GET /export.zip?<search>`: every job of the search (each take its own), if there are at
/// most [`MAX_ZIP_JOBS`].
pub(super) async fn search(
    State(state): State<UiState>,
    headers: HeaderMap,
    params: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let json = wants_json(&headers);
    let run = async {
        let params = params.map_err(|e| UiError::BadRequest(e.body_text()))?.0.everything();
        let mut filter = params.filter(false)?;
        let listing = params.listing()?;
        filter.limit = Some(MAX_ZIP_JOBS + 1);
        let (jobs, total) = state
            .read(move |c| {
                let jobs = c.list(&filter, &listing)?;
                let total = if jobs.len() > MAX_ZIP_JOBS {
                    c.count_listed(&filter, &listing, crate::catalog::COUNT_CAP)?
                } else {
                    crate::catalog::Count::Exactly(0)
                };
                Ok((jobs, total))
            })
            .await?;
        if jobs.len() > MAX_ZIP_JOBS {
            return Err(too_many(total));
        }
        if jobs.is_empty() {
            return Err(UiError::NotFound("no job matches this search, so there is nothing to zip".to_owned()));
        }
        let ids: Vec<String> = jobs.into_iter().map(|j| j.id).collect();
        plan(&state, ids).await
    };
    match run.await {
        Ok(plan) => stream(state.store.clone(), plan),
        Err(e) => refuse(json, e),
    }
}

async fn selection(state: UiState, headers: &HeaderMap, form: &[u8]) -> Response {
    let json = wants_json(headers);
    let run = async {
        let picks = picks(form)?;
        let ids = state
            .read(move |c| {
                let mut ids = Vec::new();
                for (takes, id) in picks {
                    let job = c.job(&id)?;
                    let mut group = if takes { c.siblings(&job)? } else { Vec::new() };
                    group.push(job);
                    group.sort_by_key(|j| j.take_no);
                    ids.extend(group.into_iter().map(|j| j.id));
                }
                Ok(ids)
            })
            .await?;
        let mut seen = HashSet::new();
        let ids: Vec<String> = ids.into_iter().filter(|id| seen.insert(id.clone())).collect();
        if ids.len() > MAX_ZIP_JOBS {
            return Err(too_many(crate::catalog::Count::Exactly(ids.len() as u64)));
        }
        plan(&state, ids).await
    };
    match run.await {
        Ok(plan) => stream(state.store.clone(), plan),
        Err(e) => refuse(json, e),
    }
}

/// The selected cards of a form: `(every take of its spec, job id)`, in order, bounded.
fn picks(form: &[u8]) -> Result<Vec<(bool, String)>, UiError> {
    let mut out = Vec::new();
    for (k, v) in url::form_urlencoded::parse(form) {
        let takes = match k.as_ref() {
            JOB_FIELD => false,
            TAKES_FIELD => true,
            _ => continue,
        };
        let id = v.trim();
        if id.is_empty() {
            continue;
        }
        if out.len() == MAX_ZIP_JOBS {
            return Err(too_many(crate::catalog::Count::MoreThan(MAX_ZIP_JOBS as u64)));
        }
        out.push((takes, id.to_owned()));
    }
    if out.is_empty() {
        return Err(UiError::BadRequest(
            "no job is selected: tick the jobs to download on the grid, or send job=<id> fields".to_owned(),
        ));
    }
    Ok(out)
}

fn too_many(n: crate::catalog::Count) -> UiError {
    let asked = match n {
        crate::catalog::Count::Exactly(n) => n.to_string(),
        crate::catalog::Count::MoreThan(n) => format!("more than {n}"),
    };
    UiError::TooLarge(format!(
        "a zip holds at most {MAX_ZIP_JOBS} jobs and this asks for {asked}: select fewer, or narrow the search \
         (by project, tag or dates) and download it in parts"
    ))
}

/// The files of `ids`, in order, each with a name unique within the zip.
async fn plan(state: &UiState, ids: Vec<String>) -> Result<Vec<Planned>, UiError> {
    let rows = state
        .read(move |c| ids.iter().map(|id| Ok((c.job(id)?, c.assets(id)?))).collect::<Result<Vec<_>, _>>())
        .await?;
    let mut taken = HashSet::new();
    let mut plan = Vec::new();
    for (job, mut assets) in rows {
        if assets.is_empty() {
            plan.push(Planned { job, file: None });
            continue;
        }
        // The video before its cover.
        assets.sort_by_key(|a| a.kind != AssetKind::Video);
        for asset in assets {
            let name = unique(&mut taken, download_name(&job.spec_name, &job.id, asset.kind, &asset.key));
            plan.push(Planned { job: job.clone(), file: Some((asset, name)) });
        }
    }
    Ok(plan)
}

/// `name`, or `name` with `-2`, `-3`... before its extension if it is taken already.
fn unique(taken: &mut HashSet<String>, name: String) -> String {
    if taken.insert(name.clone()) && name != MANIFEST {
        return name;
    }
    let (stem, ext) = name.rsplit_once('.').unwrap_or((&name, ""));
    (2..)
        .map(|n| if ext.is_empty() { format!("{stem}-{n}") } else { format!("{stem}-{n}.{ext}") })
        .find(|candidate| candidate != MANIFEST && taken.insert(candidate.clone()))
        .unwrap_or(name)
}

const MANIFEST: &str = "manifest.csv";

fn wants_json(headers: &HeaderMap) -> bool {
    headers.get(ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|a| a.contains("application/json"))
}

fn refuse(json: bool, e: UiError) -> Response {
    if json { ApiError(e).into_response() } else { e.into_response() }
}

/// The zip of `plan` as a streamed answer.
fn stream(store: Store, plan: Vec<Planned>) -> Response {
    let jobs = plan.iter().map(|p| p.job.id.as_str()).collect::<HashSet<_>>().len();
    let (reader, writer) = tokio::io::duplex(PIPE);
    let (done, finished) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let result = write_zip(&store, &plan, writer).await;
        if let Err(e) = &result {
            tracing::warn!(code = e.code(), error = %e, "a zip download stopped before its end");
        }
        let _ = done.send(result.is_ok());
    });
    // After the last byte: an error if the writer stopped early, so the answer is cut off and
    // the client sees a failed download rather than a short zip.
    let end = futures::stream::once(async move {
        match finished.await {
            Ok(true) => None,
            _ => Some(Err(io::Error::other("the zip could not be finished"))),
        }
    })
    .filter_map(futures::future::ready);
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(reader).chain(end));
    let name = format!("attachment; filename=\"vidkeep-{jobs}-job{}.zip\"", if jobs == 1 { "" } else { "s" });
    let mut response = Response::new(body);
    let h = response.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/zip"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(v) = HeaderValue::from_str(&name) {
        h.insert(CONTENT_DISPOSITION, v);
    }
    response
}

/// Writes the zip of `plan` to `sink`: each file streamed from `store`, then the manifest.
pub(crate) async fn write_zip<W: AsyncWrite + Unpin>(
    store: &Store,
    plan: &[Planned],
    sink: W,
) -> Result<W, ZipStreamError> {
    let total: u64 = plan.iter().filter_map(|p| p.file.as_ref()).map(|(a, _)| a.bytes).sum();
    let mut zip = ZipFileWriter::with_tokio(sink);
    if total < PLAIN_ZIP_LIMIT {
        zip = zip.force_no_zip64();
    }
    let mut manifest = String::from("job_id,spec,name,project,state,kind,file,bytes,sha256,status\n");
    for planned in plan {
        let job = &planned.job;
        let Some((asset, name)) = &planned.file else {
            let status = format!("nothing archived ({})", job.state.as_str());
            manifest_row(&mut manifest, job, None, &status);
            continue;
        };
        let got =
            match store.backend().get_opts(&Key::from(asset.key.as_str()), object_store::GetOptions::default()).await {
                Ok(got) => got,
                Err(object_store::Error::NotFound { .. }) => {
                    manifest_row(&mut manifest, job, Some((asset, "")), "missing from the store: not in the zip");
                    continue;
                }
                Err(source) => return Err(ZipStreamError::Store { key: asset.key.clone(), source }),
            };
        let entry = ZipEntryBuilder::new(name.clone().into(), Compression::Stored)
            .last_modification_date(zip_date(job.archived_at.unwrap_or(job.created_at)))
            .unix_permissions(0o644);
        let mut writer = zip.write_entry_stream(entry).await?;
        let mut hasher = Sha256::new();
        let mut len = 0u64;
        let mut chunks = got.into_stream();
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(|source| ZipStreamError::Store { key: asset.key.clone(), source })?;
            hasher.update(&chunk);
            len += chunk.len() as u64;
            writer.write_all(&chunk).await.map_err(async_zip::error::ZipError::from)?;
        }
        writer.close().await?;
        let sha256 = crate::domain::hex(&hasher.finalize());
        let status = if sha256 == asset.sha256 && len == asset.bytes {
            "ok".to_owned()
        } else {
            format!("differs from the catalogue: the store gave {len} bytes with SHA-256 {sha256}")
        };
        manifest_row(&mut manifest, job, Some((asset, name)), &status);
    }
    let entry = ZipEntryBuilder::new(MANIFEST.to_owned().into(), Compression::Stored)
        .last_modification_date(zip_date(crate::time::now_ms()))
        .unix_permissions(0o644);
    zip.write_entry_whole(entry, manifest.as_bytes()).await?;
    Ok(zip.close().await?.into_inner())
}

fn manifest_row(out: &mut String, job: &JobRecord, file: Option<(&Asset, &str)>, status: &str) {
    let cells = [
        job.id.as_str(),
        job.spec_name.as_str(),
        job.name.as_deref().unwrap_or_default(),
        job.project.as_deref().unwrap_or_default(),
        job.state.as_str(),
        file.map_or("", |(a, _)| a.kind.as_str()),
        file.map_or("", |(_, name)| name),
        &file.map(|(a, _)| a.bytes.to_string()).unwrap_or_default(),
        file.map_or("", |(a, _)| a.sha256.as_str()),
        status,
    ];
    let escaped: Vec<String> = cells.iter().map(|c| csv_cell(c)).collect();
    out.push_str(&escaped.join(","));
    out.push('\n');
}

/// A time as a zip's date (UTC: zip dates carry no zone).
fn zip_date(ms: i64) -> async_zip::ZipDateTime {
    let t = jiff::Timestamp::from_millisecond(ms)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .to_zoned_datetime(jiff::tz::TimeZone::UTC);
    ZipDateTimeBuilder::new()
        .year(i32::from(t.year()).max(1980))
        .month(u32::try_from(t.month()).unwrap_or(1))
        .day(u32::try_from(t.day()).unwrap_or(1))
        .hour(u32::try_from(t.hour()).unwrap_or(0))
        .minute(u32::try_from(t.minute()).unwrap_or(0))
        .second(u32::try_from(t.second()).unwrap_or(0))
        .build()
}

/// The selection bar above the grid: a form that posts the ticked cards (their checkboxes name
/// it with `form="zip"`). It works without script; [`SELECT_SCRIPT`] adds the count, "select
/// this page" and "clear", and keeps the selection across pages and refreshes.
pub(super) fn bar() -> maud::Markup {
    maud::html! {
        form #zip .selection method="post" action="/download.zip" data-max=(MAX_ZIP_JOBS) {
            button type="submit" { "Download selected as zip" }
            output aria-live="polite" {}
            button type="button" hidden data-do="page" { "select this page" }
            button type="button" hidden data-do="clear" { "clear selection" }
            span.note hidden data-over { "a zip holds at most " (MAX_ZIP_JOBS) " jobs" }
        }
    }
}

/// The grid's selection script (allowed by its hash in the CSP, like the page script): the
/// ticked cards are kept in `sessionStorage`, so paging, searching and in-place refreshes keep
/// them; the form sends those not on this page as hidden fields.
pub(super) const SELECT_SCRIPT: &str = "(function(){var d=document,f=d.getElementById('zip');if(!f)return;\
var K='vidkeep-selection',max=+f.getAttribute('data-max'),out=f.querySelector('output'),sel;\
try{sel=JSON.parse(sessionStorage.getItem(K)||'[]')}catch(e){sel=[]}if(!Array.isArray(sel))sel=[];\
function save(){try{sessionStorage.setItem(K,JSON.stringify(sel))}catch(e){}}\
function key(b){return b.name+'='+b.value}\
function boxes(){return [].slice.call(d.querySelectorAll('input[type=checkbox][form=zip]'))}\
function paint(){boxes().forEach(function(b){b.checked=sel.indexOf(key(b))>=0});\
out.textContent=sel.length?sel.length+' selected':'nothing selected';f.querySelector('button[type=submit]').disabled=!sel.length;\
f.querySelector('[data-do=clear]').hidden=!sel.length;f.querySelector('[data-do=page]').hidden=!boxes().length;\
f.querySelector('[data-over]').hidden=sel.length<=max;}\
d.addEventListener('change',function(e){var b=e.target;if(!b.matches||!b.matches('input[type=checkbox][form=zip]'))return;\
var i=sel.indexOf(key(b));if(b.checked&&i<0)sel.push(key(b));if(!b.checked&&i>=0)sel.splice(i,1);save();paint();});\
f.addEventListener('click',function(e){var a=e.target.getAttribute&&e.target.getAttribute('data-do');if(!a)return;\
if(a==='clear')sel=[];else boxes().forEach(function(b){if(sel.indexOf(key(b))<0)sel.push(key(b))});save();paint();});\
f.addEventListener('submit',function(){[].slice.call(f.querySelectorAll('input[type=hidden]')).forEach(function(h){h.remove()});\
var here=boxes().map(key);sel.forEach(function(k){if(here.indexOf(k)>=0)return;var i=k.indexOf('='),h=d.createElement('input');\
h.type='hidden';h.name=k.slice(0,i);h.value=k.slice(i+1);f.appendChild(h);});});\
var g=d.querySelector('.grid');if(g)new MutationObserver(paint).observe(g,{childList:true});paint();})();";

#[cfg(test)]
#[path = "zip_tests.rs"]
mod tests;
