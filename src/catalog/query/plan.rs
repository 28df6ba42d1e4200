//! How a listing's page is found at scale (issue 14). Without search words, one statement walks
//! the index of the listing's order from the cursor and stops at the page's end. With words, the
//! trigram index decides:
//!
//! - few matches (at most [`COUNT_CAP`]): they are read from the index, joined to their jobs and
//!   ordered (a few thousand rows at most);
//! - many: the listing is walked in its order a window at a time, and the index is read only for
//!   the window's range of rows (`rowid BETWEEN`), so a page of a word a third of all jobs
//!   contain costs a window, not a third of the catalogue. The window grows fourfold until the
//!   page is full or the listing ends. Rows are added in time order, so a window's rows are
//!   close together; were they not, each window still reads at most every match once.
//!
//! Counts are in [`super::count`].

use std::collections::{HashMap, HashSet};

use super::{COUNT_CAP, Cursor, JobFilter, Listing, Sort, TagTerm, Terms};
use crate::catalog::conn::{Arg, Dialect, Param, Sql as _, args};
use crate::catalog::{Catalog, CatalogError, JobRecord};

/// A listed row: its rowid and job id.
type Row = (i64, String);

/// A job of a filter menus' sample: the fields the four menus count.
#[derive(Debug)]
pub(super) struct MenuRow {
    rowid: i64,
    pub(super) state: String,
    pub(super) model: String,
    pub(super) project: Option<String>,
    /// Each tag once.
    pub(super) tags: Vec<String>,
}

impl MenuRow {
    /// Whether the job meets the menu choices of `filter` (state, model, project in any ASCII
    /// case as SQLite's NOCASE compares, tag), as the SQL of [`JobFilter::row_terms`] does.
    pub(super) fn meets(&self, filter: &JobFilter) -> bool {
        filter.state.is_none_or(|s| s.as_str() == self.state)
            && filter.model.as_ref().is_none_or(|m| *m == self.model)
            && filter.project.as_ref().is_none_or(|p| self.project.as_ref().is_some_and(|q| q.eq_ignore_ascii_case(p)))
            && filter.tag.as_ref().is_none_or(|t| self.tags.contains(t))
    }
}

/// An SQL `LIMIT` for at most `n` rows (none: `-1` on SQLite; more than can be on PostgreSQL,
/// which refuses a negative one).
pub(super) fn limit(n: Option<usize>, d: Dialect) -> Param {
    let none = if d == Dialect::Postgres { i64::MAX } else { -1 };
    Param::Int(n.and_then(|n| i64::try_from(n).ok()).unwrap_or(none))
}

/// How a listing is walked: its `ORDER BY`, and the index hint of [`listing_index`].
#[derive(Debug, Clone, Copy)]
struct Walk<'a> {
    order: &'a str,
    index: &'static str,
}

/// The index a listing in creation order reads, named when no filter term has an index of its
/// own (project, model, tag): once a catalogue has statistics and few projects, SQLite took a
/// skip-scan of the project index for a keyset page and sorted every job past the cursor (2.1 s
/// a page at 1,000,000 jobs). Dropped on PostgreSQL, whose planner has no such trap.
fn listing_index(filter: &JobFilter, listing: &Listing) -> &'static str {
    let by_time = matches!(listing.sort, Sort::Newest | Sort::Oldest);
    if by_time && filter.project.is_none() && filter.model.is_none() && filter.tag.is_none() {
        " INDEXED BY jobs_by_created"
    } else {
        ""
    }
}

/// The tag whose index (`job_tags_newest`: tag, then creation time, newest first) should drive a
/// read of `filter`'s newest jobs or its count: a tag more than [`COUNT_CAP`] jobs carry
/// ([`TagTerm::Check`]), with no project beside it (a project's own index is then the shorter
/// walk) and no words. Walking the creation order and checking each job's tags instead read
/// ~100,000 rows for the newest 10,000 jobs of a tag a tenth of them carry (150 ms at 1,000,000
/// jobs).
pub(super) fn tag_drives(filter: &JobFilter, tag_term: TagTerm) -> Option<&str> {
    let plain = filter.project.is_none() && filter.indexed_words().is_empty();
    filter.tag.as_deref().filter(|_| plain && tag_term == TagTerm::Check)
}

/// `FROM` the jobs of `tag`, read from its index in creation order (newest first when the query
/// asks for `tagged.created_at DESC, tagged.job_id DESC`), and the term naming the tag.
pub(super) fn tagged_jobs(tag: &str, d: Dialect) -> (String, Terms) {
    // SQLite's CROSS JOIN keeps the tag's index outermost; PostgreSQL has no CROSS JOIN ... ON.
    let join = if d == Dialect::Postgres { "JOIN" } else { "CROSS JOIN" };
    let mut terms = Terms::default();
    terms.push("tagged.tag = ?".to_owned(), [Param::Text(tag.to_owned())]);
    (format!("job_tags AS tagged {join} jobs ON jobs.id = tagged.job_id"), terms)
}

/// The columns of a [`MenuRow`].
const MENU_SELECT: &str = "SELECT jobs.rowid, jobs.state, jobs.model, jobs.project, jobs.tags";

/// References to each of `params`, to bind.
pub(super) fn bind(params: &[Param]) -> Vec<&dyn Arg> {
    params.iter().map(|p| p as &dyn Arg).collect()
}

impl Catalog {
    /// The rows of the listing's page: from the filter's cursor, past its offset, at most `take`.
    pub(super) fn listed_rows(
        &self,
        filter: &JobFilter,
        listing: &Listing,
        take: Option<usize>,
    ) -> Result<Vec<Row>, CatalogError> {
        let d = self.conn.dialect();
        let mut terms = listing.terms_as(filter, d, self.tag_term(filter)?);
        let backwards = matches!(filter.cursor, Some(Cursor::Before(_)));
        if let Some(cursor) = &filter.cursor {
            terms.extend(self.keyset(listing.sort, cursor)?);
        }
        let order = listing.sort.order_by(backwards);
        let want = take.map(|t| t.saturating_add(filter.offset));
        let mut rows = match filter.fts_query(d) {
            None => {
                let mut params = terms.params.clone();
                params.push(limit(want, d));
                self.rows(
                    &format!(
                        "SELECT jobs.rowid, jobs.id FROM jobs{}{} ORDER BY {order} LIMIT ?",
                        listing_index(filter, listing),
                        terms.clause()
                    ),
                    params,
                )?
            }
            Some(query) => {
                let walk = Walk { order, index: listing_index(filter, listing) };
                self.searched_rows(filter, &terms, walk, &query, want)?
            }
        };
        rows.drain(..filter.offset.min(rows.len()));
        if let Some(t) = take {
            rows.truncate(t);
        }
        if backwards {
            rows.reverse();
        }
        Ok(rows)
    }

    /// The rows of a search with indexed words (`query`, all of them), in `order`, at most `want`.
    fn searched_rows(
        &self,
        filter: &JobFilter,
        terms: &Terms,
        walk: Walk<'_>,
        query: &str,
        want: Option<usize>,
    ) -> Result<Vec<Row>, CatalogError> {
        let order = walk.order;
        // Rows named by a word (a job id, spec, task or request id) that meet the other words:
        // a handful, each found through its index.
        let mut named = filter.named_rows("jobs").unwrap_or_default();
        named.extend(filter.word_probes("jobs", Dialect::Sqlite));
        named.extend(terms.clone());
        let named: HashSet<i64> = self
            .rows(&format!("SELECT jobs.rowid, jobs.id FROM jobs{}", named.clause()), named.params)?
            .into_iter()
            .map(|(r, _)| r)
            .collect();
        let cap = i64::try_from(COUNT_CAP).unwrap_or(i64::MAX);
        let matches: i64 = self.conn.one(
            "search",
            "SELECT COUNT(*) FROM (SELECT 1 FROM jobs_fts WHERE jobs_fts MATCH ?1 LIMIT ?2)",
            args![query, cap + 1],
            |r| r.get(0),
        )?;
        if matches <= cap {
            let mut params =
                vec![Param::Text(query.to_owned()), Param::Text(serde_json::to_string(&named).unwrap_or_default())];
            params.extend(terms.params.iter().cloned());
            params.push(limit(want, Dialect::Sqlite));
            return self.rows(
                &format!(
                    "SELECT jobs.rowid, jobs.id FROM (SELECT rowid AS r FROM jobs_fts WHERE jobs_fts MATCH ? \
                     UNION SELECT value FROM json_each(?)) AS f CROSS JOIN jobs ON jobs.rowid = f.r{} \
                     ORDER BY {order} LIMIT ?",
                    terms.clause()
                ),
                params,
            );
        }
        let mut window = want.map_or(usize::MAX, |w| w.saturating_mul(8).max(256));
        loop {
            let mut params = terms.params.clone();
            params.push(limit(Some(window).filter(|w| *w != usize::MAX), Dialect::Sqlite));
            let candidates = self.rows(
                &format!(
                    "SELECT jobs.rowid, jobs.id FROM jobs{}{} ORDER BY {order} LIMIT ?",
                    walk.index,
                    terms.clause()
                ),
                params,
            )?;
            let ended = candidates.len() < window;
            let (Some(lo), Some(hi)) =
                (candidates.iter().map(|(r, _)| *r).min(), candidates.iter().map(|(r, _)| *r).max())
            else {
                return Ok(Vec::new());
            };
            let hits: HashSet<i64> = self
                .conn
                .rows(
                    "search",
                    "SELECT rowid FROM jobs_fts WHERE jobs_fts MATCH ?1 AND rowid BETWEEN ?2 AND ?3",
                    args![query, lo, hi],
                    |r| r.get(0),
                )?
                .into_iter()
                .collect();
            let mut found: Vec<Row> =
                candidates.into_iter().filter(|(r, _)| hits.contains(r) || named.contains(r)).collect();
            if ended || want.is_some_and(|w| found.len() >= w) {
                if let Some(w) = want {
                    found.truncate(w);
                }
                return Ok(found);
            }
            window = window.saturating_mul(4);
        }
    }

    /// The sample the filter menus count: the newest matches of `filter`, at most [`COUNT_CAP`],
    /// and whether there were more. Without words, read in the order of creation (newest first;
    /// a common tag's jobs from its own index in that order, see [`tag_drives`]);
    /// with words, the rows a word names, then the index's matches from the newest added, each
    /// joined to its job for the other terms (one read of the index, stopped at the cap; measured
    /// at 1,000,000 jobs, 25 ms for a word a third of the jobs contain).
    pub(super) fn menu_sample(&self, filter: &JobFilter) -> Result<(Vec<MenuRow>, bool), CatalogError> {
        let cap = usize::try_from(COUNT_CAP).unwrap_or(usize::MAX);
        let d = self.conn.dialect();
        let tag_term = self.tag_term(filter)?;
        let terms = filter.row_terms_as("jobs", d, tag_term);
        let mut rows = match filter.fts_query(d) {
            None => {
                let (q, params) = self.menu_query(filter, tag_term);
                self.menu_rows(&q, params)?
            }
            Some(query) => {
                let mut named = filter.named_rows("jobs").unwrap_or_default();
                named.extend(filter.word_probes("jobs", d));
                named.extend(terms.clone());
                let mut rows = self.menu_rows(&format!("{MENU_SELECT} FROM jobs{}", named.clause()), named.params)?;
                let mut matched = Terms::default();
                matched.push("jobs_fts MATCH ?".to_owned(), [Param::Text(query)]);
                matched.extend(terms);
                let mut params = matched.params.clone();
                params.push(limit(Some(cap.saturating_add(1)), d));
                let seen: HashSet<i64> = rows.iter().map(|r| r.rowid).collect();
                let found = self.menu_rows(
                    &format!(
                        "{MENU_SELECT} FROM jobs_fts CROSS JOIN jobs ON jobs.rowid = jobs_fts.rowid{} \
                         ORDER BY jobs_fts.rowid DESC LIMIT ?",
                        matched.clause()
                    ),
                    params,
                )?;
                rows.extend(found.into_iter().filter(|r| !seen.contains(&r.rowid)));
                rows
            }
        };
        let capped = rows.len() > cap;
        rows.truncate(cap);
        Ok((rows, capped))
    }

    /// The statement of [`Catalog::menu_sample`] for a filter without indexed words (and its
    /// parameters): the newest `COUNT_CAP` + 1 jobs of `filter`.
    fn menu_query(&self, filter: &JobFilter, tag_term: TagTerm) -> (String, Vec<Param>) {
        let d = self.conn.dialect();
        let cap = usize::try_from(COUNT_CAP).unwrap_or(usize::MAX);
        if let Some(tag) = tag_drives(filter, tag_term) {
            let (from, mut terms) = tagged_jobs(tag, d);
            terms.extend(JobFilter { tag: None, ..filter.clone() }.row_terms("jobs", d));
            let mut params = terms.params.clone();
            params.push(limit(Some(cap.saturating_add(1)), d));
            let q = format!(
                "{MENU_SELECT} FROM {from}{} ORDER BY tagged.created_at DESC, tagged.job_id DESC LIMIT ?",
                terms.clause()
            );
            return (q, params);
        }
        let terms = filter.row_terms_as("jobs", d, tag_term);
        let mut params = terms.params.clone();
        params.push(limit(Some(cap.saturating_add(1)), d));
        // With words (PostgreSQL, whose words are row terms), the newest matches as they
        // were added, as SQLite's index lists them: both backends count the same sample.
        let order =
            if filter.indexed_words().is_empty() { "jobs.created_at DESC, jobs.id DESC" } else { "jobs.rowid DESC" };
        (format!("{MENU_SELECT} FROM jobs{} ORDER BY {order} LIMIT ?", terms.clause()), params)
    }

    /// SQLite's plan for the read behind the menus' sample of `filter` (without words) and for
    /// its count, one line per step: for tests that pin an index choice.
    #[cfg(test)]
    pub(super) fn sample_and_count_plans(&self, filter: &JobFilter) -> Result<[Vec<String>; 2], CatalogError> {
        let (menu, menu_params) = self.menu_query(filter, self.tag_term(filter)?);
        let (count, count_params) = self.count_query(filter, &Listing::of(filter), COUNT_CAP)?;
        let explain = |q: &str, params: &[Param]| {
            self.conn.rows("plan", &format!("EXPLAIN QUERY PLAN {q}"), &bind(params), |r| r.get(3))
        };
        Ok([explain(&menu, &menu_params)?, explain(&count, &count_params)?])
    }

    fn menu_rows(&self, q: &str, params: Vec<Param>) -> Result<Vec<MenuRow>, CatalogError> {
        self.conn.rows("count facets", q, &bind(&params), |r| {
            let tags: String = r.get(4)?;
            let mut tags: Vec<String> = serde_json::from_str(&tags).unwrap_or_default();
            tags.sort();
            tags.dedup();
            Ok(MenuRow { rowid: r.get(0)?, state: r.get(1)?, model: r.get(2)?, project: r.get(3)?, tags })
        })
    }

    /// How the filter's tag is best written for a walk in a listing's order: as a check on each
    /// row when more than [`COUNT_CAP`] jobs carry it (a page is then found within a few thousand
    /// rows of the order), else as the driver (its few jobs read from the tag's index, then
    /// ordered). One read of at most `COUNT_CAP` + 1 index entries decides.
    pub(super) fn tag_term(&self, filter: &JobFilter) -> Result<TagTerm, CatalogError> {
        let Some(tag) = &filter.tag else { return Ok(TagTerm::Driver) };
        let cap = i64::try_from(COUNT_CAP).unwrap_or(i64::MAX);
        let carried: i64 = self.conn.one(
            "count a tag's jobs",
            "SELECT COUNT(*) FROM (SELECT 1 FROM job_tags WHERE tag = ?1 LIMIT ?2) AS carried",
            args![tag, cap + 1],
            |r| r.get(0),
        )?;
        Ok(if carried > cap { TagTerm::Check } else { TagTerm::Driver })
    }

    /// The jobs of `rows`, in that order.
    pub(super) fn jobs_of(&self, rows: &[Row]) -> Result<Vec<JobRecord>, CatalogError> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let at: HashMap<&str, usize> = rows.iter().enumerate().map(|(i, (_, id))| (id.as_str(), i)).collect();
        let rowids: Vec<i64> = rows.iter().map(|(r, _)| *r).collect();
        let list = serde_json::to_string(&rowids).unwrap_or_default();
        let tail = match self.conn.dialect() {
            Dialect::Sqlite => "WHERE rowid IN (SELECT value FROM json_each(?1))",
            Dialect::Postgres => {
                "WHERE rowid IN (SELECT CAST(jsonb_array_elements_text(CAST(?1 AS TEXT)::jsonb) AS BIGINT))"
            }
        };
        let mut jobs = self.select_jobs(tail, args![list])?;
        jobs.sort_by_key(|j| at.get(j.id.as_str()).copied().unwrap_or(usize::MAX));
        Ok(jobs)
    }

    /// SQLite's plan for the first read of [`Catalog::listed_rows`] (no search words), one
    /// line per step: for tests that pin an index choice.
    #[cfg(test)]
    pub(super) fn listing_plan(&self, filter: &JobFilter, listing: &Listing) -> Result<Vec<String>, CatalogError> {
        let mut terms = listing.terms_as(filter, Dialect::Sqlite, self.tag_term(filter)?);
        let backwards = matches!(filter.cursor, Some(Cursor::Before(_)));
        if let Some(cursor) = &filter.cursor {
            terms.extend(self.keyset(listing.sort, cursor)?);
        }
        let order = listing.sort.order_by(backwards);
        let mut params = terms.params.clone();
        params.push(limit(filter.limit, Dialect::Sqlite));
        let q = format!(
            "EXPLAIN QUERY PLAN SELECT jobs.rowid, jobs.id FROM jobs{}{} ORDER BY {order} LIMIT ?",
            listing_index(filter, listing),
            terms.clause()
        );
        self.conn.rows("plan", &q, &bind(&params), |r| r.get(3))
    }

    /// The terms that keep the entries after (or before) the cursor's job in `sort`'s order.
    fn keyset(&self, sort: Sort, cursor: &Cursor) -> Result<Terms, CatalogError> {
        let key: Option<(i64, String, String, Option<String>)> = self.conn.first(
            "read page cursor",
            "SELECT created_at, id, model, project FROM jobs WHERE id = ?1",
            args![cursor.id()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )?;
        let Some((at, id, model, project)) = key else { return Err(CatalogError::NoJob(cursor.id().to_owned())) };
        let after = matches!(cursor, Cursor::After(_));
        // Within one model or project the order is newest first: later means older.
        let tail = |later: bool| {
            if later { "(jobs.created_at, jobs.id) < (?, ?)" } else { "(jobs.created_at, jobs.id) > (?, ?)" }
        };
        let at_id = [Param::Int(at), Param::Text(id)];
        let mut terms = Terms::default();
        match sort {
            Sort::Newest => terms.push(tail(after).to_owned(), at_id),
            Sort::Oldest => terms.push(tail(!after).to_owned(), at_id),
            Sort::Model => {
                let op = if after { ">" } else { "<" };
                let both = [Param::Text(model.clone()), Param::Text(model)];
                terms.push(
                    format!("(jobs.model {op} ? OR (jobs.model = ? AND {}))", tail(after)),
                    both.into_iter().chain(at_id),
                );
            }
            Sort::Project => match (after, project) {
                (true, Some(p)) => terms.push(
                    format!("(jobs.project IS NULL OR jobs.project > ? OR (jobs.project = ? AND {}))", tail(true)),
                    [Param::Text(p.clone()), Param::Text(p)].into_iter().chain(at_id),
                ),
                (true, None) => terms.push(format!("(jobs.project IS NULL AND {})", tail(true)), at_id),
                (false, Some(p)) => terms.push(
                    format!("(jobs.project < ? OR (jobs.project = ? AND {}))", tail(false)),
                    [Param::Text(p.clone()), Param::Text(p)].into_iter().chain(at_id),
                ),
                (false, None) => terms.push(format!("(jobs.project IS NOT NULL OR {})", tail(false)), at_id),
            },
        }
        Ok(terms)
    }

    fn rows(&self, q: &str, params: Vec<Param>) -> Result<Vec<Row>, CatalogError> {
        self.conn.rows("list jobs", q, &bind(&params), |r| Ok((r.get(0)?, r.get(1)?)))
    }
}
