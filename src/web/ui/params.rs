//! The search and filter state of a page, as URL query parameters, so a search can be shared
//! as a link: `/?q=lantern&model=viduq1-text&state=archived&after=<job id>`. Pages after the first
//! are named by the job they follow (`after=`) or precede (`before=`), so a deep page costs what
//! the first does and stays put while jobs arrive; `page=N` still works for a link with a number.

use serde::Deserialize;

use crate::catalog::{Cursor, JobFilter, Listing, Sort};
use crate::domain::JobState;

/// Longest search, in words and in characters: a prompt is at most 512 characters, and each word
/// is one more index lookup.
pub(super) const MAX_QUERY_WORDS: usize = 32;
/// See [`MAX_QUERY_WORDS`].
pub(super) const MAX_QUERY_CHARS: usize = 512;

/// Jobs per grid page.
pub(super) const PAGE_SIZE: usize = 24;

/// The query parameters every listing takes. Empty values count as absent, since an HTML form
/// sends every field.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub(super) struct Params {
    /// Words to search for.
    pub(super) q: String,
    pub(super) model: String,
    pub(super) state: String,
    pub(super) project: String,
    pub(super) tag: String,
    /// First day, `YYYY-MM-DD`, inclusive.
    pub(super) from: String,
    /// Last day, `YYYY-MM-DD`, inclusive.
    pub(super) to: String,
    /// 1-based page (counted from the first; `after`/`before` take precedence).
    pub(super) page: Option<usize>,
    /// The page of the entries after this job id.
    pub(super) after: String,
    /// The page of the entries before this job id.
    pub(super) before: String,
    /// `newest` (the default), `oldest`, `model` or `project`.
    pub(super) sort: String,
    /// `all` shows every take of a spec; by default one card stands for its takes.
    pub(super) takes: String,
}

/// A parameter a person can fix, named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct BadParam(pub(super) String);

fn given(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

impl Params {
    /// The page number, at least 1.
    pub(super) fn page(&self) -> usize {
        self.page.unwrap_or(1).max(1)
    }

    /// Where the page starts, if not at the first entry.
    pub(super) fn cursor(&self) -> Result<Option<Cursor>, BadParam> {
        match (given(&self.after), given(&self.before)) {
            (Some(_), Some(_)) => Err(BadParam("a page is `after` a job or `before` one, not both".to_owned())),
            (Some(id), None) => Ok(Some(Cursor::After(id))),
            (None, Some(id)) => Ok(Some(Cursor::Before(id))),
            (None, None) => Ok(None),
        }
    }

    /// The order and grouping of the listing.
    pub(super) fn listing(&self) -> Result<Listing, BadParam> {
        let sort = match given(&self.sort) {
            None => Sort::Newest,
            Some(s) => Sort::parse(&s)
                .ok_or_else(|| BadParam(format!("sort `{s}` is not an order (newest, oldest, model, project)")))?,
        };
        let collapse_takes = match given(&self.takes).as_deref() {
            None | Some("collapse") => true,
            Some("all") => false,
            Some(other) => return Err(BadParam(format!("takes `{other}` is not `all` or `collapse`"))),
        };
        Ok(Listing { sort, collapse_takes })
    }

    /// This search with every take listed (exports have one row per job).
    pub(super) fn everything(&self) -> Params {
        Params { takes: "all".to_owned(), page: None, after: String::new(), before: String::new(), ..self.clone() }
    }

    /// The catalogue filter, newest first; paged when `paged`.
    pub(super) fn filter(&self, paged: bool) -> Result<JobFilter, BadParam> {
        let words = self.q.split_whitespace().count();
        if self.q.chars().count() > MAX_QUERY_CHARS || words > MAX_QUERY_WORDS {
            return Err(BadParam(format!(
                "a search may have at most {MAX_QUERY_WORDS} words and {MAX_QUERY_CHARS} characters"
            )));
        }
        let state = match given(&self.state) {
            Some(s) if s == "rejected" => {
                return Err(BadParam(
                    "rejected specs are not jobs: see /?state=rejected, or /api/rejections for JSON".to_owned(),
                ));
            }
            Some(s) => Some(s.parse::<JobState>().map_err(|_| BadParam(format!("state `{s}` is not a job state")))?),
            None => None,
        };
        let cursor = self.cursor()?;
        let day = |name: &str, value: &str| -> Result<Option<i64>, BadParam> {
            given(value)
                .map(|v| {
                    crate::time::parse_date(&v)
                        .ok_or_else(|| BadParam(format!("{name} `{v}` is not a date (YYYY-MM-DD)")))
                })
                .transpose()
        };
        Ok(JobFilter {
            state,
            model: given(&self.model),
            project: given(&self.project),
            tag: given(&self.tag),
            text: given(&self.q),
            created_from: day("from", &self.from)?,
            created_before: day("to", &self.to)?.map(|t| t + 86_400_000),
            newest_first: true,
            limit: paged.then_some(PAGE_SIZE),
            offset: if paged && cursor.is_none() { (self.page() - 1).saturating_mul(PAGE_SIZE) } else { 0 },
            cursor: if paged { cursor } else { None },
        })
    }

    /// This page as a query string: the search, and the page's number or cursor.
    pub(super) fn here(&self) -> String {
        match self.cursor() {
            Ok(Some(cursor)) => self.at(&cursor),
            _ => self.query_string(self.page),
        }
    }

    /// This search as a query string, at the page `cursor` names.
    pub(super) fn at(&self, cursor: &Cursor) -> String {
        let mut out = url::form_urlencoded::Serializer::new(self.query_string(None));
        match cursor {
            Cursor::After(id) => out.append_pair("after", id),
            Cursor::Before(id) => out.append_pair("before", id),
        };
        out.finish()
    }

    /// This search as a query string, with `page` replaced (none for page 1).
    pub(super) fn query_string(&self, page: Option<usize>) -> String {
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("q", &self.q),
            ("model", &self.model),
            ("state", &self.state),
            ("project", &self.project),
            ("tag", &self.tag),
            ("from", &self.from),
            ("to", &self.to),
            ("sort", &self.sort),
            ("takes", &self.takes),
        ] {
            if !v.trim().is_empty() {
                out.append_pair(k, v.trim());
            }
        }
        if let Some(p) = page.filter(|p| *p > 1) {
            out.append_pair("page", &p.to_string());
        }
        out.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_parameters_become_a_filter_and_back() {
        let p = Params {
            q: " lantern ".into(),
            state: "archived".into(),
            to: "2026-11-24".into(),
            page: Some(3),
            ..Params::default()
        };
        let f = p.filter(true).expect("valid");
        assert_eq!(f.text.as_deref(), Some("lantern"));
        assert_eq!(f.state, Some(JobState::Archived));
        assert_eq!(f.created_before, crate::time::parse_date("2026-11-25"), "the last day is included");
        assert_eq!((f.limit, f.offset), (Some(PAGE_SIZE), 2 * PAGE_SIZE));
        assert_eq!(p.query_string(Some(4)), "q=lantern&state=archived&to=2026-11-24&page=4");
        assert_eq!(p.query_string(Some(1)), "q=lantern&state=archived&to=2026-11-24");
        assert!(Params { state: "done".into(), ..Params::default() }.filter(false).is_err());
        let long = vec!["word"; 1000].join(" ");
        assert!(Params { q: long, ..Params::default() }.filter(false).is_err(), "bounded, answered 400");
        assert!(Params { from: "yesterday".into(), ..Params::default() }.filter(false).is_err());
        let sorted = Params { sort: "model".into(), takes: "all".into(), ..Params::default() };
        assert_eq!(sorted.listing(), Ok(Listing { sort: Sort::Model, collapse_takes: false }));
        assert_eq!(sorted.query_string(None), "sort=model&takes=all");
        assert_eq!(Params::default().listing(), Ok(Listing { sort: Sort::Newest, collapse_takes: true }));
        assert!(Params { sort: "size".into(), ..Params::default() }.listing().is_err());
        let later = Params { q: "fox".into(), after: "j1".into(), page: Some(3), ..Params::default() };
        let f = later.filter(true).expect("valid");
        assert_eq!((f.cursor, f.offset), (Some(Cursor::After("j1".into())), 0), "a cursor, not an offset");
        assert_eq!(later.here(), "q=fox&after=j1");
        assert_eq!(later.at(&Cursor::Before("j0".into())), "q=fox&before=j0");
        assert_eq!(later.filter(false).expect("valid").cursor, None, "exports list everything");
        assert!(Params { after: "a".into(), before: "b".into(), ..Params::default() }.filter(true).is_err());
    }
}
