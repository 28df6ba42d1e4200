//! `GET /export.csv` and `GET /export.json`: every match of the current search, streamed.

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};

use super::params::Params;
use super::{UiError, UiState};
use crate::catalog::{EXPORT_PAGE, ExportFormat, ExportWriter};

pub(super) async fn csv(State(state): State<UiState>, Query(params): Query<Params>) -> Result<Response, UiError> {
    export(&state, &params, ExportFormat::Csv).await
}

pub(super) async fn json(State(state): State<UiState>, Query(params): Query<Params>) -> Result<Response, UiError> {
    export(&state, &params, ExportFormat::Json).await
}

/// Every match of the search (every take), sent a page at a time as it is read: each page is read
/// after the previous one by keyset, on a connection lent for that page only, and at most
/// two pages wait to be sent, so memory stays flat however many jobs match and other pages are
/// served in between. The bytes are those of the whole list written at once.
async fn export(state: &UiState, params: &Params, format: ExportFormat) -> Result<Response, UiError> {
    let params = params.everything();
    let filter = params.filter(false)?;
    let listing = params.listing()?;
    // The first page before the answer starts, so that a failure still gets its status.
    let first = state.read(move |c| c.export_page(&filter, &listing, EXPORT_PAGE)).await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(2);
    let state = state.clone();
    tokio::spawn(async move {
        let mut writer = ExportWriter::new(format);
        let mut chunk = writer.start().to_owned();
        let mut page = Some(first);
        while let Some((rows, next)) = page.take() {
            match writer.page(&rows) {
                Ok(text) => chunk.push_str(&text),
                Err(e) => {
                    let _ = tx.send(Err(std::io::Error::other(e))).await;
                    return;
                }
            }
            if tx.send(Ok(Bytes::from(std::mem::take(&mut chunk)))).await.is_err() {
                return; // the client went away
            }
            let Some(filter) = next else { break };
            match state.read(move |c| c.export_page(&filter, &listing, EXPORT_PAGE)).await {
                Ok(p) => page = Some(p),
                Err(e) => {
                    tracing::warn!(error = %e, "an export stopped before its end");
                    // The answer is cut off: the client sees a failed download, not a short file.
                    let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
                    return;
                }
            }
        }
        let _ = tx.send(Ok(Bytes::from_static(writer.end().as_bytes()))).await;
    });
    let body =
        Body::from_stream(futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|item| (item, rx)) }));
    let (content_type, name) = match format {
        ExportFormat::Csv => ("text/csv; charset=utf-8", "vidkeep-jobs.csv"),
        ExportFormat::Json => ("application/json", "vidkeep-jobs.json"),
    };
    let disposition = format!("attachment; filename=\"{name}\"");
    Ok(([(CONTENT_TYPE, content_type.to_owned()), (CONTENT_DISPOSITION, disposition)], body).into_response())
}
