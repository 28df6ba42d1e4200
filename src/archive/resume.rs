//! A result download's body that picks up where it broke off.
//!
//! Result links are paid for and die after a day, so a reset connection or a body cut short
//! should not throw away what already arrived (and went into the upload). When the server
//! announced its length and `Accept-Ranges: bytes`, a break is answered by a new request for
//! `Range: bytes=<received>-`; the answer is used only if it is a `206` whose `Content-Range`
//! starts exactly there and names the same total, so the bytes hashed are the bytes of one file.
//! Otherwise the error goes back to the caller, which aborts the upload and retries from the start.

use crate::telemetry::Escaped;
use std::pin::Pin;

use bytes::Bytes;
use futures::{Stream, StreamExt as _};
use reqwest::header::{ACCEPT_RANGES, CONTENT_RANGE, RANGE};

use super::ArchiveError;

/// Most resumptions of one download before it is given up (and retried from the start later).
const MAX_RESUMES: u32 = 8;

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// A download body that resumes with Range requests.
pub(super) struct ResumingBody {
    http: reqwest::Client,
    url: String,
    stream: ByteStream,
    /// The announced length of the whole file, if any.
    expected: Option<u64>,
    /// The server said it serves byte ranges.
    ranges: bool,
    /// Bytes handed out so far.
    received: u64,
    /// Resumptions so far.
    resumes: u32,
}

impl ResumingBody {
    /// The body of `response`, a `200` answer to a GET of `url`.
    pub(super) fn new(http: reqwest::Client, url: &str, response: reqwest::Response) -> ResumingBody {
        let ranges = response
            .headers()
            .get(ACCEPT_RANGES)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|unit| unit.trim().eq_ignore_ascii_case("bytes")));
        ResumingBody {
            http,
            url: url.to_owned(),
            expected: response.content_length(),
            ranges,
            stream: Box::pin(response.bytes_stream()),
            received: 0,
            resumes: 0,
        }
    }

    /// The announced length of the whole file.
    pub(super) fn expected(&self) -> Option<u64> {
        self.expected
    }

    /// How many times this download resumed.
    pub(super) fn resumes(&self) -> u32 {
        self.resumes
    }

    /// The next chunk, resuming after a break; `None` at the clean end of the whole file.
    pub(super) async fn next(&mut self) -> Result<Option<Bytes>, ArchiveError> {
        loop {
            let cause = match self.stream.next().await {
                Some(Ok(chunk)) => {
                    self.received += chunk.len() as u64;
                    return Ok(Some(chunk));
                }
                Some(Err(e)) => ArchiveError::Network(e.without_url().to_string()),
                None => match self.expected {
                    Some(expected) if self.received < expected => {
                        ArchiveError::Truncated { expected, got: self.received }
                    }
                    _ => return Ok(None),
                },
            };
            self.resume(cause).await?;
        }
    }

    /// Replaces the broken stream by the rest of the file, or returns `cause`.
    async fn resume(&mut self, cause: ArchiveError) -> Result<(), ArchiveError> {
        let Some(total) = self.expected.filter(|_| self.ranges && self.resumes < MAX_RESUMES) else {
            return Err(cause);
        };
        self.resumes += 1;
        tracing::info!(received = self.received, total, error = %Escaped(&cause), "download broke off; resuming with a Range request");
        let response = self
            .http
            .get(&self.url)
            .header(RANGE, format!("bytes={}-", self.received))
            .send()
            .await
            .map_err(ArchiveError::from_reqwest)?;
        let range = response.headers().get(CONTENT_RANGE).and_then(|v| v.to_str().ok()).and_then(parse_content_range);
        if response.status() != reqwest::StatusCode::PARTIAL_CONTENT || range != Some((self.received, total)) {
            tracing::warn!(status = %response.status(), ?range, "the server did not resume where asked; starting over later");
            return Err(cause);
        }
        self.stream = Box::pin(response.bytes_stream());
        Ok(())
    }
}

/// `bytes START-END/TOTAL` → `(START, TOTAL)`.
fn parse_content_range(value: &str) -> Option<(u64, u64)> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (span, total) = rest.split_once('/')?;
    let (start, _end) = span.split_once('-')?;
    Some((start.trim().parse().ok()?, total.trim().parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_values() {
        assert_eq!(parse_content_range("bytes 100-199/1000"), Some((100, 1000)));
        assert_eq!(parse_content_range("bytes */1000"), None);
        assert_eq!(parse_content_range("bytes 5-9/*"), None);
        assert_eq!(parse_content_range("items 1-2/3"), None);
    }
}
