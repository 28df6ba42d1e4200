//! Finding jobs: the filters asset managers use (state, model, project, tag, dates) and
//! full-text search over prompt, name, project and tags, with paging. One query builder serves
//! the CLI (`jobs`, `search`, `export`) and the web UI alike, so they always agree.
//!
//! Built to stay fast with a million jobs (issue 14): pages are found by keyset (after or before
//! a listed job, never by skipping rows), totals are counted up to [`COUNT_CAP`], the menus'
//! counts come from at most that many matches, and a search reads the full-text index for the
//! stretch of the listing a page needs ([`plan`]) instead of collecting every match first.

mod count;
mod plan;

use super::conn::{Arg, Dialect, Param, Sql as _, args};
use super::{Asset, Catalog, CatalogError, JobRecord};
use crate::domain::JobState;

/// Totals and the filter menus' counts stop at this many matches; pages say "more than".
pub const COUNT_CAP: u64 = 10_000;

/// A job of an export, with its assets.
pub type ExportRow = (JobRecord, Vec<Asset>);

/// Jobs an export reads at a time ([`Catalog::export_page`]): a few MB of memory.
pub const EXPORT_PAGE: usize = 1_000;

/// Which jobs to list, in which order, which page.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JobFilter {
    /// Only jobs in this state.
    pub state: Option<JobState>,
    /// Only jobs of this model.
    pub model: Option<String>,
    /// Only jobs of this project.
    pub project: Option<String>,
    /// Only jobs carrying this tag.
    pub tag: Option<String>,
    /// Words that must all appear in the prompt, name, project or tags (any case, any script).
    pub text: Option<String>,
    /// Only jobs created at or after this time (unix ms).
    pub created_from: Option<i64>,
    /// Only jobs created before this time (unix ms).
    pub created_before: Option<i64>,
    /// Newest first (the default order is oldest first).
    pub newest_first: bool,
    /// At most this many jobs.
    pub limit: Option<usize>,
    /// Skip this many jobs first (after the cursor, if any).
    pub offset: usize,
    /// Start the page next to this job (keyset paging).
    pub cursor: Option<Cursor>,
}

/// Where a page starts: just after or just before a job of the listing (named by its id), so a
/// deep page costs what the first does and a page does not shift when jobs are added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    /// The entries after this job, in the listing's order.
    After(String),
    /// The entries before this job (the page that ends just before it).
    Before(String),
}

impl Cursor {
    /// The job id the cursor is at.
    pub fn id(&self) -> &str {
        match self {
            Cursor::After(id) | Cursor::Before(id) => id,
        }
    }
}

/// How many entries a listing has, counted up to a cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// Exactly this many.
    Exactly(u64),
    /// More than this many (the cap).
    MoreThan(u64),
}

impl Count {
    /// The number counted: exact, or the cap.
    pub fn shown(self) -> u64 {
        match self {
            Count::Exactly(n) | Count::MoreThan(n) => n,
        }
    }

    /// Whether counting stopped at the cap.
    pub fn capped(self) -> bool {
        matches!(self, Count::MoreThan(_))
    }
}

impl std::fmt::Display for Count {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Count::Exactly(n) => write!(f, "{n}"),
            Count::MoreThan(n) => write!(f, "more than {n}"),
        }
    }
}

/// The order of a listing (the UI's sort control).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Sort {
    /// Newest first.
    #[default]
    Newest,
    /// Oldest first.
    Oldest,
    /// By model, newest first within one.
    Model,
    /// By project (jobs without one last), newest first within one.
    Project,
}

impl Sort {
    /// Every order, as the sort control offers them.
    pub const ALL: [Sort; 4] = [Sort::Newest, Sort::Oldest, Sort::Model, Sort::Project];

    /// The name in URLs (`?sort=model`).
    pub fn as_str(self) -> &'static str {
        match self {
            Sort::Newest => "newest",
            Sort::Oldest => "oldest",
            Sort::Model => "model",
            Sort::Project => "project",
        }
    }

    /// The order named `s`, if any.
    pub fn parse(s: &str) -> Option<Sort> {
        Sort::ALL.into_iter().find(|o| o.as_str() == s)
    }

    /// The `ORDER BY` of the listing, or of the listing read backwards.
    fn order_by(self, backwards: bool) -> &'static str {
        match (self, backwards) {
            (Sort::Newest, false) | (Sort::Oldest, true) => "jobs.created_at DESC, jobs.id DESC",
            (Sort::Oldest, false) | (Sort::Newest, true) => "jobs.created_at, jobs.id",
            (Sort::Model, false) => "jobs.model, jobs.created_at DESC, jobs.id DESC",
            (Sort::Model, true) => "jobs.model DESC, jobs.created_at, jobs.id",
            (Sort::Project, false) => "jobs.project IS NULL, jobs.project, jobs.created_at DESC, jobs.id DESC",
            (Sort::Project, true) => "jobs.project IS NULL DESC, jobs.project DESC, jobs.created_at, jobs.id",
        }
    }
}

/// How a listing is shown: its order, and whether the takes of one spec share one entry (the
/// first matching take stands for its group).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Listing {
    /// The order.
    pub sort: Sort,
    /// One entry per take group.
    pub collapse_takes: bool,
}

/// How many jobs carry each value, for filter menus with counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FacetCounts {
    /// Per state.
    pub states: Vec<(String, u64)>,
    /// Per model.
    pub models: Vec<(String, u64)>,
    /// Per project.
    pub projects: Vec<(String, u64)>,
    /// Per tag.
    pub tags: Vec<(String, u64)>,
    /// Set when a menu's matches were more than [`COUNT_CAP`]: its counts are of the newest
    /// `COUNT_CAP` of them, not of all (during a search with words, of the newest `COUNT_CAP`
    /// matches of the words, each menu counting those that meet the other menus' choices).
    pub sampled: Option<u64>,
}

/// The values in use, for filter menus.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facets {
    /// Models, sorted.
    pub models: Vec<String>,
    /// Projects, sorted.
    pub projects: Vec<String>,
    /// Tags, sorted.
    pub tags: Vec<String>,
}

/// SQL terms joined by `AND`, with their parameters in order.
#[derive(Debug, Clone, Default)]
struct Terms {
    sql: Vec<String>,
    params: Vec<Param>,
}

impl Terms {
    fn push(&mut self, term: String, params: impl IntoIterator<Item = Param>) {
        self.sql.push(term);
        self.params.extend(params);
    }

    fn extend(&mut self, other: Terms) {
        self.sql.extend(other.sql);
        self.params.extend(other.params);
    }

    /// ` WHERE a AND b`, or nothing.
    fn clause(&self) -> String {
        if self.sql.is_empty() { String::new() } else { format!(" WHERE {}", self.sql.join(" AND ")) }
    }

    /// `a AND b`, or `1 = 1`.
    fn conjunction(&self) -> String {
        if self.sql.is_empty() { "1 = 1".to_owned() } else { self.sql.join(" AND ") }
    }

    /// The parameters, to bind.
    fn args(&self) -> Vec<&dyn Arg> {
        self.params.iter().map(|p| p as &dyn Arg).collect()
    }
}

/// A word as one quoted FTS5 string: the trigram index finds it anywhere, in any case.
fn fts_string(word: &str) -> String {
    format!("\"{}\"", word.replace('"', "\"\""))
}

impl JobFilter {
    /// The search words long enough for the trigram index (shorter ones are scanned for).
    fn indexed_words(&self) -> Vec<&str> {
        self.text.as_deref().unwrap_or_default().split_whitespace().filter(|w| w.chars().count() >= 3).collect()
    }

    /// Every indexed word at once, as one FTS5 query (the row must have them all); on
    /// PostgreSQL none, as its words are terms of the row ([`JobFilter::row_terms`]).
    fn fts_query(&self, d: Dialect) -> Option<String> {
        if d == Dialect::Postgres {
            return None;
        }
        let words = self.indexed_words();
        (!words.is_empty()).then(|| words.iter().map(|w| fts_string(w)).collect::<Vec<_>>().join(" "))
    }

    /// The terms on row `t` other than the indexed words: state, model, project, tag, dates and
    /// the words too short for the index.
    fn row_terms(&self, t: &str, d: Dialect) -> Terms {
        self.row_terms_as(t, d, TagTerm::Driver)
    }

    /// [`JobFilter::row_terms`], the tag written as `tag` says.
    fn row_terms_as(&self, t: &str, d: Dialect, tag_term: TagTerm) -> Terms {
        let mut terms = Terms::default();
        if let Some(state) = self.state {
            terms.push(format!("{t}.state = ?"), [Param::Text(state.as_str().to_owned())]);
        }
        if let Some(model) = &self.model {
            terms.push(format!("{t}.model = ?"), [Param::Text(model.clone())]);
        }
        if let Some(project) = &self.project {
            // Any case, as search is (SQLite folds ASCII letters).
            let term = match d {
                Dialect::Sqlite => format!("{t}.project = ? COLLATE NOCASE"),
                Dialect::Postgres => format!("lower({t}.project) = lower(?)"),
            };
            terms.push(term, [Param::Text(project.clone())]);
        }
        if let Some(tag) = &self.tag {
            let term = match tag_term {
                TagTerm::Driver => format!("{t}.id IN (SELECT job_id FROM job_tags WHERE tag = ?)"),
                TagTerm::Check => format!("EXISTS (SELECT 1 FROM job_tags WHERE tag = ? AND job_id = {t}.id)"),
            };
            terms.push(term, [Param::Text(tag.clone())]);
        }
        if let Some(from) = self.created_from {
            terms.push(format!("{t}.created_at >= ?"), [Param::Int(from)]);
        }
        if let Some(before) = self.created_before {
            terms.push(format!("{t}.created_at < ?"), [Param::Int(before)]);
        }
        for word in self.text.as_deref().unwrap_or_default().split_whitespace() {
            if d == Dialect::Postgres {
                // One pg_trgm index serves `ILIKE` in any case and script; words of one or two
                // characters are found too (by a scan, as on SQLite).
                let escaped = word.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
                let (reference, params) = JobFilter::reference(t, word);
                terms.push(
                    format!(
                        "(vidkeep_search_text({t}.prompt, {t}.name, {t}.project, {t}.tags) ILIKE ? ESCAPE '\\' \
                         OR {reference})"
                    ),
                    std::iter::once(Param::Text(format!("%{escaped}%"))).chain(params),
                );
            } else if word.chars().count() < 3 {
                // Too short for trigrams (a two-character Chinese word, say): scan instead.
                let escaped = word.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
                terms.push(
                    format!(
                        "(COALESCE({t}.prompt, '') || ' ' || COALESCE({t}.name, '') || ' ' || COALESCE({t}.project, '') \
                         || ' ' || {t}.tags) LIKE ? ESCAPE '\\'"
                    ),
                    [Param::Text(format!("%{escaped}%"))],
                );
            }
        }
        terms
    }

    /// Whether row `t` is what a person has in hand for `word`: a job id, spec file name, task or
    /// request id (each indexed).
    fn reference(t: &str, word: &str) -> (String, Vec<Param>) {
        (
            format!("({t}.id = ? OR {t}.spec_name = ? OR {t}.task_id = ? OR {t}.request_id = ?)"),
            std::iter::repeat_n(Param::Text(word.to_owned()), 4).collect(),
        )
    }

    /// Row `t` is named by one of the indexed words: `null_safe`, never NULL (for `NOT`), else
    /// a plain `OR` of indexed columns, which SQLite reads through their indexes (the NULL-safe
    /// form makes it scan every job: 0.37 s at 1,000,000 jobs).
    fn any_reference(&self, t: &str, null_safe: bool) -> Option<Terms> {
        let words = self.indexed_words();
        if words.is_empty() {
            return None;
        }
        let mut any = Terms::default();
        let mut parts = Vec::new();
        for word in words {
            let (sql, params) = JobFilter::reference(t, word);
            parts.push(sql);
            any.params.extend(params);
        }
        let any_of = parts.join(" OR ");
        any.sql.push(if null_safe { format!("IFNULL({any_of}, 0)") } else { format!("({any_of})") });
        Some(any)
    }

    /// Row `t` is one a word names, written as a subquery that reads the naming columns' indexes
    /// (`rowid IN (...)`), so SQLite cannot prefer another index for the other terms: with a
    /// model filter it read the model's 200,000 jobs instead (0.52 s at 1,000,000 jobs).
    fn named_rows(&self, t: &str) -> Option<Terms> {
        let named = self.any_reference("n", false)?;
        let mut terms = Terms::default();
        terms.push(format!("{t}.rowid IN (SELECT n.rowid FROM jobs AS n WHERE {})", named.conjunction()), named.params);
        Some(terms)
    }

    /// Each indexed word on row `t`, looked up in the index for that one row: for the few rows
    /// a reference or a take group brings (a lookup per row costs ~0.3 ms; never a scan).
    fn word_probes(&self, t: &str, d: Dialect) -> Terms {
        let mut terms = Terms::default();
        if d == Dialect::Postgres {
            return terms;
        }
        for word in self.indexed_words() {
            let (reference, params) = JobFilter::reference(t, word);
            terms.push(
                format!(
                    "(EXISTS (SELECT 1 FROM jobs_fts WHERE jobs_fts MATCH ? AND jobs_fts.rowid = {t}.rowid) OR {reference})"
                ),
                std::iter::once(Param::Text(fts_string(word))).chain(params),
            );
        }
        terms
    }

    /// The whole filter on row `t` for a row already chosen (by id or within a take group).
    fn row_probe(&self, t: &str, d: Dialect) -> Terms {
        let mut terms = self.row_terms(t, d);
        terms.extend(self.word_probes(t, d));
        terms
    }
}

/// How a tag filter is written: as the driver of the query (the tag's jobs read from its index,
/// then ordered: for a tag few jobs carry), or as a check on each row of the listing's order (for
/// a tag so common that a page is found sooner by walking the order: measured at 1,000,000 jobs, a
/// tag on a tenth of them took 0.19 s a page as the driver, under 1 ms as a check).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TagTerm {
    Driver,
    Check,
}

impl Listing {
    /// The terms of `filter` under this listing, but for the indexed words: with takes
    /// collapsed, a job is listed unless an earlier take of its group matches too.
    fn terms(&self, filter: &JobFilter, d: Dialect) -> Terms {
        self.terms_as(filter, d, TagTerm::Driver)
    }

    /// [`Listing::terms`], the tag written as `tag_term` says.
    fn terms_as(&self, filter: &JobFilter, d: Dialect, tag_term: TagTerm) -> Terms {
        let mut terms = filter.row_terms_as("jobs", d, tag_term);
        if self.collapse_takes {
            let earlier = filter.row_probe("o", d);
            terms.push(
                format!(
                    "(jobs.take_group IS NULL OR NOT EXISTS (SELECT 1 FROM jobs AS o WHERE o.take_group = jobs.take_group \
                     AND (o.take_no, o.id) < (jobs.take_no, jobs.id) AND {}))",
                    earlier.conjunction()
                ),
                earlier.params,
            );
        }
        terms
    }
}

impl Catalog {
    /// The jobs `what` names: exactly by job id, spec file name (as dropped or as now named),
    /// task id or request id; failing those, by the start or the end of a job id (as tables
    /// show it). At most 50, oldest first. Reads through indexes, except the last fallbacks.
    pub fn find_by_reference(&self, what: &str) -> Result<Vec<JobRecord>, CatalogError> {
        let what = what.trim();
        if what.is_empty() {
            return Ok(Vec::new());
        }
        let run =
            |clause: &str| self.select_jobs(&format!("WHERE {clause} ORDER BY created_at, id LIMIT 50"), args![what]);
        let exact = run("id = ?1 OR spec_name = ?1 OR task_id = ?1 OR request_id = ?1")?;
        if !exact.is_empty() {
            return Ok(exact);
        }
        let renamed = run("spec_file = ?1")?;
        if !renamed.is_empty() {
            return Ok(renamed);
        }
        // Ids are lower-case ASCII: a range on the primary key finds a prefix.
        let prefix = run("id >= ?1 AND id < ?1 || '~'")?;
        if !prefix.is_empty() {
            return Ok(prefix);
        }
        match self.conn.dialect() {
            Dialect::Sqlite => run("substr(id, -length(?1)) = ?1"),
            Dialect::Postgres => run("right(id, length(?1)) = ?1"),
        }
    }

    /// Jobs matching `filter` in the order and grouping of `listing`, in the filter's page
    /// (from its cursor, then its offset and limit).
    pub fn list(&self, filter: &JobFilter, listing: &Listing) -> Result<Vec<JobRecord>, CatalogError> {
        let rowids = self.listed_rows(filter, listing, filter.limit)?;
        self.jobs_of(&rowids)
    }

    /// How many entries [`Catalog::list`] has for `filter` and `listing` (ignoring the page),
    /// counted up to `cap`.
    pub fn count_listed(&self, filter: &JobFilter, listing: &Listing, cap: u64) -> Result<Count, CatalogError> {
        let n = self.count_upto(filter, listing, cap.saturating_add(1))?;
        Ok(if n > cap { Count::MoreThan(cap) } else { Count::Exactly(n) })
    }

    /// The entries before and after job `id` in the listing (ignoring the page): `(previous,
    /// next)`, each `None` at an end or when `id` is not listed.
    pub fn neighbours(
        &self,
        filter: &JobFilter,
        listing: &Listing,
        id: &str,
    ) -> Result<(Option<String>, Option<String>), CatalogError> {
        let whole = JobFilter { limit: None, offset: 0, cursor: None, ..filter.clone() };
        let d = self.conn.dialect();
        let mut here = listing.terms(&whole, d);
        here.extend(whole.word_probes("jobs", d));
        here.push("jobs.id = ?".to_owned(), [Param::Text(id.to_owned())]);
        let listed = self
            .conn
            .first("find neighbours", &format!("SELECT 1 FROM jobs{}", here.clause()), &here.args(), |_| Ok(()))?
            .is_some();
        if !listed {
            return Ok((None, None));
        }
        let one = |cursor: Cursor| -> Result<Option<String>, CatalogError> {
            let page = JobFilter { cursor: Some(cursor), limit: Some(1), ..whole.clone() };
            Ok(self.list(&page, listing)?.into_iter().next().map(|j| j.id))
        };
        Ok((one(Cursor::Before(id.to_owned()))?, one(Cursor::After(id.to_owned()))?))
    }

    /// For each filter menu, how many jobs match `filter` with each value (the menu's own field
    /// left out of the filter, so the counts say what choosing another value would give).
    ///
    /// Read in one pass where it can be (issue 14): without search words, each distinct menu
    /// filter is read once, newest first, up to [`COUNT_CAP`] jobs (with no choice made, one read
    /// serves all four menus). With search words, one sample serves all four: the newest
    /// `COUNT_CAP` matches of the words (and dates) as the full-text index lists them, each menu
    /// counting those that meet the other menus' choices. Either way, when a sample stopped at the
    /// cap, [`FacetCounts::sampled`] says so.
    pub fn facet_counts(&self, filter: &JobFilter) -> Result<FacetCounts, CatalogError> {
        let base = JobFilter { limit: None, offset: 0, cursor: None, newest_first: true, ..filter.clone() };
        let menus = [
            JobFilter { state: None, ..base.clone() },
            JobFilter { model: None, ..base.clone() },
            JobFilter { project: None, ..base.clone() },
            JobFilter { tag: None, ..base.clone() },
        ];
        let shared = !base.indexed_words().is_empty();
        let mut samples: Vec<(JobFilter, Vec<plan::MenuRow>)> = Vec::new();
        let mut sampled = None;
        let mut of_menu = Vec::with_capacity(menus.len());
        for menu in &menus {
            let key = if shared {
                JobFilter { state: None, model: None, project: None, tag: None, ..menu.clone() }
            } else {
                menu.clone()
            };
            let at = match samples.iter().position(|(k, _)| *k == key) {
                Some(at) => at,
                None => {
                    let (rows, capped) = self.menu_sample(&key)?;
                    if capped {
                        sampled = Some(COUNT_CAP);
                    }
                    samples.push((key, rows));
                    samples.len() - 1
                }
            };
            of_menu.push(at);
        }
        let count = |menu: usize, values: &dyn Fn(&plan::MenuRow) -> Vec<String>| -> Vec<(String, u64)> {
            let mut counts = std::collections::BTreeMap::<String, u64>::new();
            for row in samples[of_menu[menu]].1.iter().filter(|r| r.meets(&menus[menu])) {
                for value in values(row) {
                    *counts.entry(value).or_default() += 1;
                }
            }
            counts.into_iter().collect()
        };
        Ok(FacetCounts {
            states: count(0, &|r| vec![r.state.clone()]),
            models: count(1, &|r| vec![r.model.clone()]),
            projects: count(2, &|r| r.project.iter().cloned().collect()),
            tags: count(3, &|r| r.tags.clone()),
            sampled,
        })
    }

    /// One page of an export of `filter` in `listing`'s order: at most `page` jobs with their
    /// assets, and the filter of the page after it (`None` after the last). The first call takes
    /// the filter as given (its offset and limit count over the whole export); each next page
    /// starts after the last job of this one (keyset), so an export of any size holds one page in
    /// memory, and its pages cost what the first does. A filter with a `before` cursor is read in
    /// one page.
    pub fn export_page(
        &self,
        filter: &JobFilter,
        listing: &Listing,
        page: usize,
    ) -> Result<(Vec<ExportRow>, Option<JobFilter>), CatalogError> {
        let (jobs, next) = if matches!(filter.cursor, Some(Cursor::Before(_))) {
            (self.list(filter, listing)?, None)
        } else {
            let page = page.max(1);
            let size = filter.limit.map_or(page, |l| l.min(page));
            let jobs = self.list(&JobFilter { limit: Some(size), ..filter.clone() }, listing)?;
            let left = filter.limit.map(|l| l.saturating_sub(size));
            let next = jobs.last().filter(|_| jobs.len() == size && left != Some(0)).map(|last| JobFilter {
                cursor: Some(Cursor::After(last.id.clone())),
                offset: 0,
                limit: left,
                ..filter.clone()
            });
            (jobs, next)
        };
        let ids: Vec<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
        let mut assets = self.assets_of(&ids)?;
        let rows = jobs
            .into_iter()
            .map(|j| {
                let a = assets.remove(&j.id).unwrap_or_default();
                (j, a)
            })
            .collect();
        Ok((rows, next))
    }

    /// Jobs matching `filter`, in its order and page.
    pub fn jobs(&self, filter: &JobFilter) -> Result<Vec<JobRecord>, CatalogError> {
        self.list(filter, &Listing::of(filter))
    }

    /// How many jobs match `filter`, ignoring its page.
    pub fn count_jobs(&self, filter: &JobFilter) -> Result<u64, CatalogError> {
        Ok(self.count_listed(filter, &Listing::of(filter), u64::MAX - 1)?.shown())
    }

    /// A value that changes whenever a job is added or changed, for pages that poll to refresh:
    /// the newest row and the latest change, each read from the end of an index (jobs are
    /// never deleted, so counting them adds nothing).
    pub fn change_stamp(&self) -> Result<String, CatalogError> {
        self.conn.one(
            "read change stamp",
            "SELECT (SELECT COALESCE(MAX(rowid), 0) FROM jobs), (SELECT COALESCE(MAX(updated_at), 0) FROM jobs)",
            args![],
            |r| Ok(format!("{}-{}", r.get::<i64>(0)?, r.get::<i64>(1)?)),
        )
    }

    /// The models, projects and tags in use, for filter menus.
    pub fn facets(&self) -> Result<Facets, CatalogError> {
        let list = |q: &str| self.conn.rows("list facets", q, args![], |r| r.get(0));
        Ok(Facets {
            models: list("SELECT DISTINCT model FROM jobs ORDER BY model")?,
            projects: list("SELECT DISTINCT project FROM jobs WHERE project IS NOT NULL ORDER BY project")?,
            tags: list("SELECT DISTINCT tag FROM job_tags ORDER BY tag")?,
        })
    }
}

impl Listing {
    /// Every job of `filter`, in its order (what `jobs` and `export` list).
    pub fn of(filter: &JobFilter) -> Listing {
        Listing { sort: if filter.newest_first { Sort::Newest } else { Sort::Oldest }, collapse_takes: false }
    }
}

#[cfg(test)]
mod tests;
