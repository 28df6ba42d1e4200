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
//! Counts stop at a cap, reading the index's matches in its own order.

use std::collections::{HashMap, HashSet};

use rusqlite::OptionalExtension as _;
use rusqlite::types::Value as Sql;

use super::{COUNT_CAP, Cursor, JobFilter, Listing, Sort, Terms};
use crate::catalog::{Catalog, CatalogError, JobRecord, sql};

/// A listed row: its rowid and job id.
type Row = (i64, String);

/// An SQL `LIMIT` for at most `n` rows (none: `-1`).
fn limit(n: Option<usize>) -> Sql {
    Sql::Integer(n.and_then(|n| i64::try_from(n).ok()).unwrap_or(-1))
}

impl Catalog {
    /// The rows of the listing's page: from the filter's cursor, past its offset, at most `take`.
    pub(super) fn listed_rows(
        &self,
        filter: &JobFilter,
        listing: &Listing,
        take: Option<usize>,
    ) -> Result<Vec<Row>, CatalogError> {
        let mut terms = listing.terms(filter);
        let backwards = matches!(filter.cursor, Some(Cursor::Before(_)));
        if let Some(cursor) = &filter.cursor {
            terms.extend(self.keyset(listing.sort, cursor)?);
        }
        let order = listing.sort.order_by(backwards);
        let want = take.map(|t| t.saturating_add(filter.offset));
        let mut rows = match filter.fts_query() {
            None => {
                let mut params = terms.params.clone();
                params.push(limit(want));
                self.rows(
                    &format!("SELECT jobs.rowid, jobs.id FROM jobs{} ORDER BY {order} LIMIT ?", terms.clause()),
                    params,
                )?
            }
            Some(query) => self.searched_rows(filter, &terms, order, &query, want)?,
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
        order: &str,
        query: &str,
        want: Option<usize>,
    ) -> Result<Vec<Row>, CatalogError> {
        // Rows named by a word (a job id, spec, task or request id) that meet the other words:
        // a handful, each found through its index.
        let mut named = filter.any_reference("jobs").unwrap_or_default();
        named.extend(filter.word_probes("jobs"));
        named.extend(terms.clone());
        let named: HashSet<i64> = self
            .rows(&format!("SELECT jobs.rowid, jobs.id FROM jobs{}", named.clause()), named.params)?
            .into_iter()
            .map(|(r, _)| r)
            .collect();
        let cap = i64::try_from(COUNT_CAP).unwrap_or(i64::MAX);
        let matches: i64 = self
            .conn
            .query_row(
                "SELECT COUNT(*) FROM (SELECT 1 FROM jobs_fts WHERE jobs_fts MATCH ?1 LIMIT ?2)",
                rusqlite::params![query, cap + 1],
                |r| r.get(0),
            )
            .map_err(sql("search"))?;
        if matches <= cap {
            let mut params =
                vec![Sql::Text(query.to_owned()), Sql::Text(serde_json::to_string(&named).unwrap_or_default())];
            params.extend(terms.params.iter().cloned());
            params.push(limit(want));
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
            params.push(limit(Some(window).filter(|w| *w != usize::MAX)));
            let candidates = self.rows(
                &format!("SELECT jobs.rowid, jobs.id FROM jobs{} ORDER BY {order} LIMIT ?", terms.clause()),
                params,
            )?;
            let ended = candidates.len() < window;
            let (Some(lo), Some(hi)) =
                (candidates.iter().map(|(r, _)| *r).min(), candidates.iter().map(|(r, _)| *r).max())
            else {
                return Ok(Vec::new());
            };
            let mut stmt = self
                .conn
                .prepare_cached("SELECT rowid FROM jobs_fts WHERE jobs_fts MATCH ?1 AND rowid BETWEEN ?2 AND ?3")
                .map_err(sql("search"))?;
            let hits: HashSet<i64> = stmt
                .query_map(rusqlite::params![query, lo, hi], |r| r.get(0))
                .map_err(sql("search"))?
                .collect::<Result<_, _>>()
                .map_err(sql("search"))?;
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

    /// How many entries the listing of `filter` has, counting no further than `upto`.
    pub(super) fn count_upto(&self, filter: &JobFilter, listing: &Listing, upto: u64) -> Result<u64, CatalogError> {
        let whole = JobFilter { cursor: None, ..filter.clone() };
        let terms = listing.terms(&whole);
        let upto = Sql::Integer(i64::try_from(upto).unwrap_or(i64::MAX));
        let (q, params) = match (whole.fts_query(), whole.any_reference("jobs")) {
            (Some(query), Some(named)) => {
                // The index's matches as it reads them, and the rows a word names otherwise.
                let mut params = vec![Sql::Text(query)];
                params.extend(named.params.iter().cloned());
                params.extend(terms.params.iter().cloned());
                params.extend(named.params.iter().cloned());
                let probes = whole.word_probes("jobs");
                params.extend(probes.params.iter().cloned());
                params.extend(terms.params.iter().cloned());
                params.push(upto);
                let q = format!(
                    "SELECT COUNT(*) FROM (SELECT 1 FROM jobs_fts CROSS JOIN jobs ON jobs.rowid = jobs_fts.rowid \
                     WHERE jobs_fts MATCH ? AND NOT {} AND {} \
                     UNION ALL SELECT 1 FROM jobs WHERE {} AND {} AND {} LIMIT ?)",
                    named.conjunction(),
                    terms.conjunction(),
                    named.conjunction(),
                    probes.conjunction(),
                    terms.conjunction()
                );
                (q, params)
            }
            _ => {
                let mut params = terms.params.clone();
                params.push(upto);
                (format!("SELECT COUNT(*) FROM (SELECT 1 FROM jobs{} LIMIT ?)", terms.clause()), params)
            }
        };
        let n: i64 =
            self.conn.query_row(&q, rusqlite::params_from_iter(params), |r| r.get(0)).map_err(sql("count jobs"))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The jobs of `rows`, in that order.
    pub(super) fn jobs_of(&self, rows: &[Row]) -> Result<Vec<JobRecord>, CatalogError> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let at: HashMap<&str, usize> = rows.iter().enumerate().map(|(i, (_, id))| (id.as_str(), i)).collect();
        let rowids: Vec<i64> = rows.iter().map(|(r, _)| *r).collect();
        let list = serde_json::to_string(&rowids).unwrap_or_default();
        let mut jobs = self.select_jobs("WHERE rowid IN (SELECT value FROM json_each(?1))", [list])?;
        jobs.sort_by_key(|j| at.get(j.id.as_str()).copied().unwrap_or(usize::MAX));
        Ok(jobs)
    }

    /// The terms that keep the entries after (or before) the cursor's job in `sort`'s order.
    fn keyset(&self, sort: Sort, cursor: &Cursor) -> Result<Terms, CatalogError> {
        let key: Option<(i64, String, String, Option<String>)> = self
            .conn
            .query_row("SELECT created_at, id, model, project FROM jobs WHERE id = ?1", [cursor.id()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()
            .map_err(sql("read page cursor"))?;
        let Some((at, id, model, project)) = key else { return Err(CatalogError::NoJob(cursor.id().to_owned())) };
        let after = matches!(cursor, Cursor::After(_));
        // Within one model or project the order is newest first: later means older.
        let tail = |later: bool| {
            if later { "(jobs.created_at, jobs.id) < (?, ?)" } else { "(jobs.created_at, jobs.id) > (?, ?)" }
        };
        let at_id = [Sql::Integer(at), Sql::Text(id)];
        let mut terms = Terms::default();
        match sort {
            Sort::Newest => terms.push(tail(after).to_owned(), at_id),
            Sort::Oldest => terms.push(tail(!after).to_owned(), at_id),
            Sort::Model => {
                let op = if after { ">" } else { "<" };
                let both = [Sql::Text(model.clone()), Sql::Text(model)];
                terms.push(
                    format!("(jobs.model {op} ? OR (jobs.model = ? AND {}))", tail(after)),
                    both.into_iter().chain(at_id),
                );
            }
            Sort::Project => match (after, project) {
                (true, Some(p)) => terms.push(
                    format!("(jobs.project IS NULL OR jobs.project > ? OR (jobs.project = ? AND {}))", tail(true)),
                    [Sql::Text(p.clone()), Sql::Text(p)].into_iter().chain(at_id),
                ),
                (true, None) => terms.push(format!("(jobs.project IS NULL AND {})", tail(true)), at_id),
                (false, Some(p)) => terms.push(
                    format!("(jobs.project < ? OR (jobs.project = ? AND {}))", tail(false)),
                    [Sql::Text(p.clone()), Sql::Text(p)].into_iter().chain(at_id),
                ),
                (false, None) => terms.push(format!("(jobs.project IS NOT NULL OR {})", tail(false)), at_id),
            },
        }
        Ok(terms)
    }

    fn rows(&self, q: &str, params: Vec<Sql>) -> Result<Vec<Row>, CatalogError> {
        let mut stmt = self.conn.prepare_cached(q).map_err(sql("list jobs"))?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(params), |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(sql("list jobs"))?;
        rows.collect::<Result<_, _>>().map_err(sql("list jobs"))
    }
}
