//! The read-only catalogue UI for asset managers: a grid of jobs with search and filters in the
//! URL, a page per job with its player and downloads, a JSON API that mirrors the pages, and CSV
//! and JSON exports of any search.
//!
//! | route | what |
//! |---|---|
//! | `GET /` | grid: `?q=&model=&state=&project=&tag=&from=&to=&sort=&takes=` and `after=`/`before=` (a job id) or `page=` |
//! | `GET /jobs/{id}` | one job |
//! | `GET /jobs/{id}/inputs/{n}` | an input image that was sent inline |
//! | `GET /assets/{sha256}` | an archived file, with Range; `?download=1` for an attachment |
//! | `GET /api/jobs`, `GET /api/jobs/{id}` | the same as JSON |
//! | `GET /api/stamp` | changes whenever the catalogue does (pages poll it to refresh) |
//! | `GET /export.csv`, `GET /export.json` | the current search, every match |
//! | `GET /export.zip` | the current search's files and a manifest, streamed (at most 500 jobs) |
//! | `POST /download.zip` | the jobs ticked on the grid (`job=`, `takes_of=` fields), as one zip |
//! | `GET /?state=rejected`, `GET /api/rejections` | specs refused at intake, with the reason |
//! | `GET /spend?by=model\|project` | spend per day for 30 days (SVG), month total, budget use |
//!
//! Nothing here writes: the catalogue is read through read-only connections (two, so a page's
//! listing and its menus are read at once; see `readers`), and the store only with `get`. The token check, when configured, wraps these routes in the server.

mod export;
mod files;
mod pages;
mod params;
mod readers;
mod rejected;
mod spend;
mod zip;

pub(crate) use pages::content_security_policy;
pub use readers::UI_READERS;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::catalog::{Asset, COUNT_CAP, Catalog, CatalogError, Count, Cursor, JobRecord, job_json};
use crate::jobs::LiveSettings;
use crate::money::Budget;
use crate::store::Store;
use params::{PAGE_SIZE, Params};
use readers::{ReadFailure, Readers};

/// What the UI reads from.
#[derive(Clone)]
pub struct UiState {
    readers: Arc<Readers>,
    store: Store,
    budget: BudgetSource,
    /// The expiry warning window and the clock it is read by: pages show a banner while a paid
    /// result is about to expire unarchived.
    alerts: Option<(std::time::Duration, crate::time::Clock)>,
}

/// Where the spend page reads the budget: fixed (`serve`), or the daemon's live settings, which a
/// SIGHUP reload replaces.
#[derive(Clone)]
enum BudgetSource {
    Fixed(Arc<Budget>),
    Live(tokio::sync::watch::Receiver<LiveSettings>),
}

impl std::fmt::Debug for UiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UiState").field("store", &self.store.url()).finish_non_exhaustive()
    }
}

impl UiState {
    /// Reads `catalog` (opened read-only) and `store`.
    pub fn new(catalog: Catalog, store: Store) -> UiState {
        UiState {
            readers: Arc::new(Readers::new(catalog)),
            store,
            budget: BudgetSource::Fixed(Arc::new(Budget::default())),
            alerts: None,
        }
    }

    /// Reads through up to `max` read-only connections at once, those past the first opened by
    /// `open` when a read finds none free ([`UI_READERS`]: a page's listing and its menus at once).
    pub fn with_readers(
        self,
        max: usize,
        open: impl Fn() -> Result<Catalog, CatalogError> + Send + Sync + 'static,
    ) -> UiState {
        self.readers.grow(max, Box::new(open));
        self
    }

    /// Shows use of `budget` on the spend page (and counts its days in its zone).
    pub fn with_budget(mut self, budget: Budget) -> UiState {
        self.budget = BudgetSource::Fixed(Arc::new(budget));
        self
    }

    /// Shows a banner on every page while a paid result expires within `window` unarchived.
    pub fn with_alerts(mut self, window: std::time::Duration, clock: crate::time::Clock) -> UiState {
        self.alerts = Some((window, clock));
        self
    }

    /// Shows the budget of the daemon's live settings, so a reload that changes `[budget]` shows
    /// on the spend page at once.
    pub fn with_live_budget(mut self, live: tokio::sync::watch::Receiver<LiveSettings>) -> UiState {
        self.budget = BudgetSource::Live(live);
        self
    }

    /// The budget in effect now.
    fn budget(&self) -> Arc<Budget> {
        match &self.budget {
            BudgetSource::Fixed(b) => Arc::clone(b),
            BudgetSource::Live(rx) => Arc::new(rx.borrow().settings.budget.clone()),
        }
    }

    /// Runs a catalogue read on the blocking pool.
    async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Catalog) -> Result<R, CatalogError> + Send + 'static,
    ) -> Result<R, UiError> {
        self.readers.read(f).await.map_err(|e| match e {
            ReadFailure::Catalog(CatalogError::NoJob(id)) => UiError::NotFound(format!("no job {id}")),
            ReadFailure::Catalog(other) => UiError::Internal(other.to_string()),
            ReadFailure::Internal(e) => UiError::Internal(e),
        })
    }
}

/// The UI's routes over `state`.
pub fn routes(state: UiState) -> Router {
    Router::new()
        .route("/", get(grid))
        .route("/jobs/{id}", get(job_page))
        .route("/jobs/{id}/inputs/{n}", get(files::input_image))
        .route("/assets/{sha256}", get(files::asset))
        .route("/api/jobs", get(api_jobs))
        .route("/api/jobs/{id}", get(api_job))
        .route("/api/stamp", get(api_stamp))
        .route("/api/{*rest}", get(api_not_found))
        .route("/spend", get(spend_page))
        .route("/export.csv", get(export::csv))
        .route("/export.json", get(export::json))
        .route("/export.zip", get(zip::search))
        .route("/download.zip", get(zip::selection_get).post(zip::selection_post))
        .route("/api/rejections", get(rejected::api))
        .layer(axum::middleware::from_fn_with_state(state.clone(), expiry_banner))
        .with_state(state)
}

/// Reads the results about to expire for the page layout's banner ([`pages::BANNER`]).
async fn expiry_banner(
    State(state): State<UiState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Some((window, clock)) = state.alerts.clone() else { return next.run(request).await };
    let now = clock.now_ms();
    let until = crate::time::after(now, window);
    let expiring = state.read(move |c| c.expiring_results(until)).await.unwrap_or_default();
    let banner = (!expiring.is_empty()).then_some(pages::Banner { expiring, now });
    pages::BANNER.scope(banner, next.run(request)).await
}

/// What went wrong with a request, as the page or API says it.
#[derive(Debug, thiserror::Error)]
pub(super) enum UiError {
    /// A parameter a person can fix.
    #[error("{0}")]
    BadRequest(String),
    /// No such job or asset.
    #[error("{0}")]
    NotFound(String),
    /// More than one answer may hold (a zip of too many jobs).
    #[error("{0}")]
    TooLarge(String),
    /// The store could not be read.
    #[error("the store could not be read: {0}")]
    Store(String),
    /// The catalogue failed.
    #[error("internal error: {0}")]
    Internal(String),
}

impl UiError {
    fn status(&self) -> StatusCode {
        match self {
            UiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            UiError::NotFound(_) => StatusCode::NOT_FOUND,
            UiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            UiError::Store(_) => StatusCode::BAD_GATEWAY,
            UiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "web UI request failed");
        }
        let title = status.canonical_reason().unwrap_or("error");
        (status, Html(pages::message(title, &self.to_string()).into_string())).into_response()
    }
}

impl From<params::BadParam> for UiError {
    fn from(e: params::BadParam) -> UiError {
        UiError::BadRequest(e.0)
    }
}

type Rows = Vec<(JobRecord, Vec<Asset>)>;

/// What a search found: its page of entries (one per take group unless `takes=all`) with their
/// assets, how many entries there are in all (up to [`COUNT_CAP`]), how many takes each group
/// has, and the cursors of the pages before and after this one, if there are such pages.
struct Found {
    rows: Rows,
    total: Count,
    takes: Vec<u64>,
    previous: Option<Cursor>,
    next: Option<Cursor>,
}

/// The page `params` asks for, with its capped count and its neighbours' cursors. (Exports read
/// every match a page at a time instead: [`export`].)
async fn search(state: &UiState, params: &Params) -> Result<Found, UiError> {
    let mut filter = params.filter(true)?;
    let listing = params.listing()?;
    let first_page = params.cursor()?.is_none() && params.page() == 1;
    state
        .read(move |c| {
            // One more than a page says whether there is a page beyond it.
            filter.limit = filter.limit.map(|l| l + 1);
            let mut jobs = c.list(&filter, &listing)?;
            let backwards = matches!(filter.cursor, Some(Cursor::Before(_)));
            let mut more = false;
            if jobs.len() > PAGE_SIZE {
                more = true;
                if backwards {
                    jobs.remove(0);
                } else {
                    jobs.truncate(PAGE_SIZE);
                }
            }
            let (before_more, after_more) = if backwards { (more, true) } else { (!first_page, more) };
            let previous = jobs.first().filter(|_| before_more).map(|j| Cursor::Before(j.id.clone()));
            let next = jobs.last().filter(|_| after_more).map(|j| Cursor::After(j.id.clone()));
            let total = c.count_listed(&filter, &listing, COUNT_CAP)?;
            let rows = jobs.into_iter().map(|j| c.assets(&j.id).map(|a| (j, a))).collect::<Result<Rows, _>>()?;
            let takes = rows
                .iter()
                .map(|(j, _)| if listing.collapse_takes { c.siblings(j).map(|s| s.len() as u64 + 1) } else { Ok(1) })
                .collect::<Result<Vec<u64>, _>>()?;
            Ok(Found { rows, total, takes, previous, next })
        })
        .await
}

async fn stamp(state: &UiState) -> Result<String, UiError> {
    state.read(Catalog::change_stamp).await
}

async fn grid(State(state): State<UiState>, Query(params): Query<Params>) -> Result<Html<String>, UiError> {
    if params.state.trim() == rejected::STATE {
        return rejected::page(&state, &params).await;
    }
    let filter = params.filter(false)?;
    // The listing and the menus on two connections at once (see `readers`).
    let menus = state.read(move |c| Ok((c.facet_counts(&filter)?, c.rejections_page(None, 0, 0)?)));
    let (found, (facets, (_, rejected))) = tokio::try_join!(search(&state, &params), menus)?;
    let stamp = stamp(&state).await?;
    let view = pages::GridView {
        params: &params,
        rows: &found.rows,
        takes: &found.takes,
        total: found.total,
        facets: &facets,
        stamp: &stamp,
        previous: found.previous.as_ref(),
        next: found.next.as_ref(),
        rejected,
    };
    Ok(Html(pages::grid(&view).into_string()))
}

async fn job_page(
    State(state): State<UiState>,
    Path(id): Path<String>,
    Query(params): Query<Params>,
) -> Result<Html<String>, UiError> {
    let filter = params.filter(false)?;
    let listing = params.listing()?;
    let (job, assets, events, sent, takes, around) = state
        .read(move |c| {
            let job = c.job(&id)?;
            let mut takes = Vec::new();
            if job.take_group.is_some() {
                let mut all = c.siblings(&job)?;
                all.push(job.clone());
                all.sort_by_key(|j| j.take_no);
                for take in all {
                    let a = c.assets(&take.id)?;
                    takes.push((take, a));
                }
            }
            let around = c.neighbours(&filter, &listing, &id)?;
            Ok((job.clone(), c.assets(&id)?, c.events(&id)?, c.request_body(&id)?, takes, around))
        })
        .await?;
    let stamp = stamp(&state).await?;
    let inputs = inputs(&job, &sent);
    let view = pages::JobView {
        job: &job,
        assets: &assets,
        events: &events,
        inputs,
        stamp: &stamp,
        takes: &takes,
        params: &params,
        around,
    };
    Ok(Html(pages::job_page(&view).into_string()))
}

#[derive(Debug, serde::Deserialize)]
struct SpendParams {
    by: Option<String>,
}

async fn spend_page(State(state): State<UiState>, Query(p): Query<SpendParams>) -> Result<Html<String>, UiError> {
    let budget = state.budget();
    let now = crate::time::now_ms();
    let periods = budget.periods(now);
    let mut starts = vec![periods.day_start];
    while starts.len() < spend::DAYS {
        let earlier = budget.periods(starts[starts.len() - 1] - 1).day_start;
        starts.push(earlier);
    }
    starts.reverse();
    let days: Vec<String> = starts.iter().map(|&d| budget.day_of(d)).collect();
    let first = starts[0].min(periods.month_start);
    let b = Arc::clone(&budget);
    let (rows, spent) = state.read(move |c| Ok((c.ledger(first, periods.next_day)?, c.spent(&b, None, now)?))).await?;
    let month_rows: Vec<_> = rows.iter().filter(|r| r.started_at >= periods.month_start).cloned().collect();
    let charted: Vec<_> = rows.iter().filter(|r| r.started_at >= starts[0]).cloned().collect();
    let view = spend::SpendView {
        rows: &charted,
        days,
        by_project: p.by.as_deref() == Some("project"),
        spent,
        month_rows: &month_rows,
        budget: &budget,
    };
    Ok(Html(pages::layout("Spend", "", spend::body(&view)).into_string()))
}

/// Each input image as the spec named it, with its number when it was sent inline.
fn inputs(job: &JobRecord, sent: &serde_json::Map<String, Value>) -> Vec<(String, Option<usize>)> {
    let shown: Value = serde_json::from_str(&job.request_display).unwrap_or_default();
    let list = |v: Option<&Value>| -> Vec<String> {
        match v {
            Some(Value::String(s)) => vec![s.clone()],
            Some(Value::Array(a)) => a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect(),
            _ => Vec::new(),
        }
    };
    let (shown, sent) = (list(shown.get("image_url")), list(sent.get("image_url")));
    shown.into_iter().enumerate().map(|(i, s)| (s, sent.get(i).filter(|u| u.starts_with("data:")).map(|_| i))).collect()
}

/// A UI error answered as JSON, for `/api/*`.
#[derive(Debug)]
pub(super) struct ApiError(UiError);

impl From<UiError> for ApiError {
    fn from(e: UiError) -> ApiError {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        if status.is_server_error() {
            tracing::error!(error = %self.0, "web API request failed");
        }
        (status, Json(json!({ "error": self.0.to_string(), "status": status.as_u16() }))).into_response()
    }
}

/// The query of an API request, or a JSON 400 naming what is wrong with it.
fn api_query(q: Result<Query<Params>, QueryRejection>) -> Result<Params, ApiError> {
    q.map(|Query(p)| p).map_err(|e| ApiError(UiError::BadRequest(e.body_text())))
}

async fn api_jobs(
    State(state): State<UiState>,
    params: Result<Query<Params>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let params = api_query(params)?;
    let found = search(&state, &params).await?;
    let jobs: Vec<Value> = found.rows.iter().map(|(j, a)| job_json(j, a)).collect();
    let link = |c: &Option<Cursor>| c.as_ref().map(|c| format!("/api/jobs?{}", params.at(c)));
    Ok(Json(json!({
        "total": found.total.shown(),
        "total_is_capped": found.total.capped(),
        "page": params.cursor().ok().flatten().map_or(Some(params.page()), |_| None),
        "page_size": PAGE_SIZE,
        "previous": link(&found.previous),
        "next": link(&found.next),
        "jobs": jobs,
    })))
}

async fn api_job(State(state): State<UiState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    let (job, assets, events) = state.read(move |c| Ok((c.job(&id)?, c.assets(&id)?, c.events(&id)?))).await?;
    let mut value = job_json(&job, &assets);
    value["request"] = serde_json::from_str(&job.request_display).unwrap_or(Value::Null);
    value["price_fen"] = json!(job.price_fen);
    value["history"] = json!(
        events
            .iter()
            .map(|e| json!({"at": crate::time::rfc3339(e.at), "from": e.from, "to": e.to, "note": e.note}))
            .collect::<Vec<_>>()
    );
    Ok(Json(value))
}

async fn api_stamp(State(state): State<UiState>) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({ "stamp": stamp(&state).await? })))
}

async fn api_not_found(uri: axum::http::Uri) -> ApiError {
    ApiError(UiError::NotFound(format!("no API route {}", uri.path())))
}
