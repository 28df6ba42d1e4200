//! Specs refused at intake (`/?state=rejected`, `/api/rejections`): they never became jobs, so
//! the grid cannot show them, but a studio waiting for a clip needs to see why it never came.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Html;
use maud::html;
use serde_json::{Value, json};

use super::params::Params;
use super::{ApiError, UiError, UiState, pages};
use crate::time::rfc3339;

/// The `state` filter value that shows the rejected specs.
pub(super) const STATE: &str = "rejected";

/// Rejected specs per page.
pub(super) const PAGE_SIZE: usize = 50;

fn text(params: &Params) -> Option<String> {
    let q = params.q.trim();
    (!q.is_empty()).then(|| q.to_owned())
}

/// The page of rejected specs a search asks for, and how many match.
async fn read(state: &UiState, params: &Params) -> Result<(Vec<crate::catalog::Rejection>, u64), UiError> {
    let text = text(params);
    let offset = (params.page() - 1).saturating_mul(PAGE_SIZE);
    state.read(move |c| c.rejections_page(text.as_deref(), PAGE_SIZE, offset)).await
}

/// `GET /?state=rejected&q=&page=`
pub(super) async fn page(state: &UiState, params: &Params) -> Result<Html<String>, UiError> {
    let (list, total) = read(state, params).await?;
    let page = params.page();
    let pages = usize::try_from(total).unwrap_or(usize::MAX).div_ceil(PAGE_SIZE).max(1);
    let at = |p: usize| {
        let p = Params { page: Some(p), ..params.clone() };
        format!("/?{}", p.query_string(Some(p.page())))
    };
    let body = html! {
        form.filters method="get" action="/" role="search" {
            input type="search" name="q" value=(params.q) placeholder="search names, codes, reasons (press /)" aria-label="search";
            input type="hidden" name="state" value=(STATE);
            button type="submit" { "Search" }
            a href="/" { "← all jobs" }
        }
        h1 { "Rejected specs" }
        p data-live="count" {
            (total) " spec(s) refused at intake"
            @if text(params).is_some() { " matching “" (params.q.trim()) "”" }
            ". They never became jobs and cost nothing; each has a report in the inbox's "
            code { "failed/" } " folder. Fix the spec and drop it into the inbox again."
        }
        @if list.is_empty() {
            p.hint { @if page > pages { "Page " (page) " is past the end. " } "No rejected spec here. " a href="/" { "show all jobs" } }
        } @else {
            table.kv.rejections data-live="rejections" {
                tr { th { "when" } th { "spec" } th { "reason" } }
                @for r in &list {
                    tr {
                        td { (pages::when(r.at)) }
                        td { (r.spec_name) }
                        td { strong { (r.error_code) } ": " (r.error_message) }
                    }
                }
            }
        }
        div.pages {
            @if page > 1 { a href=(at(page - 1)) rel="prev" { "← previous page" } }
            span { "page " (page) " of " (pages) }
            @if page < pages { a href=(at(page + 1)) rel="next" { "next page →" } }
        }
    };
    let stamp = super::stamp(state).await?;
    Ok(Html(pages::layout("rejected specs", &stamp, body).into_string()))
}

/// `GET /api/rejections?q=&page=`: `{total, page, page_size, rejections: [...]}`, newest first.
pub(super) async fn api(
    State(state): State<UiState>,
    params: Result<Query<Params>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let params = super::api_query(params)?;
    let (list, total) = read(&state, &params).await?;
    let rejections: Vec<Value> = list
        .iter()
        .map(|r| {
            json!({"spec": r.spec_name, "spec_sha256": r.spec_sha256, "error_code": r.error_code,
                "error": r.error_message, "at": rfc3339(r.at)})
        })
        .collect();
    Ok(Json(json!({"total": total, "page": params.page(), "page_size": PAGE_SIZE, "rejections": rejections})))
}
