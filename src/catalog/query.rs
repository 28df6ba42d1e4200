//! Finding jobs: the filters asset managers use (state, model, project, tag, dates) and
//! full-text search over prompt, name, project and tags, with paging. One query builder serves
//! the CLI (`jobs`, `search`, `export`) and the web UI alike, so they always agree.

use rusqlite::types::Value as Sql;

use rusqlite::OptionalExtension as _;

use super::{Catalog, CatalogError, JobRecord, sql};
use crate::jobs::JobState;

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
    /// Skip this many jobs first.
    pub offset: usize,
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

    fn order_by(self) -> &'static str {
        match self {
            Sort::Newest => "created_at DESC, id DESC",
            Sort::Oldest => "created_at, id",
            Sort::Model => "model, created_at DESC, id DESC",
            Sort::Project => "project IS NULL, project, created_at DESC, id DESC",
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

impl JobFilter {
    /// The `WHERE` clause and its parameters.
    fn clause(&self) -> (String, Vec<Sql>) {
        let mut terms: Vec<String> = Vec::new();
        let mut params: Vec<Sql> = Vec::new();
        let mut eq = |column: &str, value: Option<&str>| {
            if let Some(v) = value {
                terms.push(format!("{column} = ?"));
                params.push(Sql::Text(v.to_owned()));
            }
        };
        eq("state", self.state.map(JobState::as_str));
        eq("model", self.model.as_deref());
        if let Some(project) = &self.project {
            // Any case, as search is (SQLite folds ASCII letters).
            terms.push("project = ? COLLATE NOCASE".to_owned());
            params.push(Sql::Text(project.clone()));
        }
        if let Some(tag) = &self.tag {
            terms.push("jobs.id IN (SELECT job_id FROM job_tags WHERE tag = ?)".to_owned());
            params.push(Sql::Text(tag.clone()));
        }
        if let Some(from) = self.created_from {
            terms.push("created_at >= ?".to_owned());
            params.push(Sql::Integer(from));
        }
        if let Some(before) = self.created_before {
            terms.push("created_at < ?".to_owned());
            params.push(Sql::Integer(before));
        }
        for word in self.text.as_deref().unwrap_or_default().split_whitespace() {
            if word.chars().count() >= 3 {
                // A quoted FTS5 string: the trigram index finds it anywhere, in any case; or the
                // word is what a person has in hand: a job id, spec file name, task or request id
                // (each indexed, so the OR still reads through indexes).
                terms.push(
                    "(jobs.rowid IN (SELECT rowid FROM jobs_fts WHERE jobs_fts MATCH ?) \
                     OR jobs.id = ? OR jobs.spec_name = ? OR jobs.task_id = ? OR jobs.request_id = ?)"
                        .to_owned(),
                );
                params.push(Sql::Text(format!("\"{}\"", word.replace('"', "\"\""))));
                params.extend(std::iter::repeat_n(Sql::Text(word.to_owned()), 4));
            } else {
                // Too short for trigrams (a two-character Chinese word, say): scan instead.
                terms.push(
                    "(COALESCE(prompt, '') || ' ' || COALESCE(name, '') || ' ' || COALESCE(project, '') || ' ' || tags) \
                     LIKE ? ESCAPE '\\'"
                        .to_owned(),
                );
                let escaped = word.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
                params.push(Sql::Text(format!("%{escaped}%")));
            }
        }
        let clause = if terms.is_empty() { String::new() } else { format!("WHERE {}", terms.join(" AND ")) };
        (clause, params)
    }
}

impl Listing {
    /// The `WHERE` clause of `filter` under this listing, and its parameters.
    fn clause(&self, filter: &JobFilter) -> (String, Vec<Sql>) {
        let (clause, params) = filter.clause();
        if !self.collapse_takes {
            return (clause, params);
        }
        let wrapped = format!(
            "WHERE jobs.rowid IN (SELECT r FROM (SELECT jobs.rowid AS r, ROW_NUMBER() OVER \
             (PARTITION BY COALESCE(jobs.take_group, jobs.id) ORDER BY jobs.take_no, jobs.id) AS n \
             FROM jobs {clause}) WHERE n = 1)"
        );
        (wrapped, params)
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
        let run = |clause: &str| self.select_jobs(&format!("WHERE {clause} ORDER BY created_at, id LIMIT 50"), [what]);
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
        run("substr(id, -length(?1)) = ?1")
    }

    /// Jobs matching `filter` in the order and grouping of `listing`, in the filter's page.
    pub fn list(&self, filter: &JobFilter, listing: &Listing) -> Result<Vec<JobRecord>, CatalogError> {
        let (clause, mut params) = listing.clause(filter);
        let limit = filter.limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
        params.push(Sql::Integer(limit));
        params.push(Sql::Integer(i64::try_from(filter.offset).unwrap_or(i64::MAX)));
        let order = listing.sort.order_by();
        self.select_jobs(&format!("{clause} ORDER BY {order} LIMIT ? OFFSET ?"), rusqlite::params_from_iter(params))
    }

    /// How many entries [`Catalog::list`] has for `filter` and `listing`, ignoring the page.
    pub fn count_listed(&self, filter: &JobFilter, listing: &Listing) -> Result<u64, CatalogError> {
        let (clause, params) = listing.clause(filter);
        let n: i64 = self
            .conn
            .query_row(&format!("SELECT COUNT(*) FROM jobs {clause}"), rusqlite::params_from_iter(params), |r| r.get(0))
            .map_err(sql("count jobs"))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The entries before and after job `id` in the listing (ignoring the page): `(previous,
    /// next)`, each `None` at an end or when `id` is not listed.
    pub fn neighbours(
        &self,
        filter: &JobFilter,
        listing: &Listing,
        id: &str,
    ) -> Result<(Option<String>, Option<String>), CatalogError> {
        let (clause, mut params) = listing.clause(&JobFilter { limit: None, offset: 0, ..filter.clone() });
        params.push(Sql::Text(id.to_owned()));
        let order = listing.sort.order_by();
        let found = self
            .conn
            .query_row(
                &format!(
                    "SELECT p, n FROM (SELECT id, LAG(id) OVER (ORDER BY {order}) AS p, \
                     LEAD(id) OVER (ORDER BY {order}) AS n FROM jobs {clause}) WHERE id = ?"
                ),
                rusqlite::params_from_iter(params),
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(sql("find neighbours"))?;
        Ok(found.unwrap_or((None, None)))
    }

    /// For each filter menu, how many jobs match `filter` with each value (the menu's own field
    /// left out of the filter, so the counts say what choosing another value would give).
    pub fn facet_counts(&self, filter: &JobFilter) -> Result<FacetCounts, CatalogError> {
        let base = JobFilter { limit: None, offset: 0, ..filter.clone() };
        let count = |f: JobFilter, select: &str, from: &str, extra: &str| -> Result<Vec<(String, u64)>, CatalogError> {
            let (clause, params) = f.clause();
            let clause = match (clause.is_empty(), extra.is_empty()) {
                (_, true) => clause,
                (true, false) => format!("WHERE {extra}"),
                (false, false) => format!("{clause} AND {extra}"),
            };
            let q = format!("SELECT {select}, COUNT(*) FROM {from} {clause} GROUP BY 1 ORDER BY 1");
            let mut stmt = self.conn.prepare(&q).map_err(sql("count facets"))?;
            let rows = stmt
                .query_map(rusqlite::params_from_iter(params), |r| {
                    Ok((r.get::<_, String>(0)?, u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0)))
                })
                .map_err(sql("count facets"))?;
            rows.collect::<Result<_, _>>().map_err(sql("count facets"))
        };
        Ok(FacetCounts {
            states: count(JobFilter { state: None, ..base.clone() }, "state", "jobs", "")?,
            models: count(JobFilter { model: None, ..base.clone() }, "model", "jobs", "")?,
            projects: count(JobFilter { project: None, ..base.clone() }, "project", "jobs", "project IS NOT NULL")?,
            tags: count(
                JobFilter { tag: None, ..base },
                "job_tags.tag",
                "jobs JOIN job_tags ON job_tags.job_id = jobs.id",
                "",
            )?,
        })
    }

    /// Jobs matching `filter`, in its order and page.
    pub fn jobs(&self, filter: &JobFilter) -> Result<Vec<JobRecord>, CatalogError> {
        let (clause, mut params) = filter.clause();
        let order = if filter.newest_first { "created_at DESC, id DESC" } else { "created_at, id" };
        let limit = filter.limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
        params.push(Sql::Integer(limit));
        params.push(Sql::Integer(i64::try_from(filter.offset).unwrap_or(i64::MAX)));
        self.select_jobs(&format!("{clause} ORDER BY {order} LIMIT ? OFFSET ?"), rusqlite::params_from_iter(params))
    }

    /// How many jobs match `filter`, ignoring its page.
    pub fn count_jobs(&self, filter: &JobFilter) -> Result<u64, CatalogError> {
        let (clause, params) = filter.clause();
        let n: i64 = self
            .conn
            .query_row(&format!("SELECT COUNT(*) FROM jobs {clause}"), rusqlite::params_from_iter(params), |r| r.get(0))
            .map_err(sql("count jobs"))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// The models, projects and tags in use, for filter menus.
    pub fn facets(&self) -> Result<Facets, CatalogError> {
        let list = |q: &str| -> Result<Vec<String>, CatalogError> {
            let mut stmt = self.conn.prepare(q).map_err(sql("list facets"))?;
            let rows = stmt.query_map([], |r| r.get(0)).map_err(sql("list facets"))?;
            rows.collect::<Result<_, _>>().map_err(sql("list facets"))
        };
        Ok(Facets {
            models: list("SELECT DISTINCT model FROM jobs ORDER BY model")?,
            projects: list("SELECT DISTINCT project FROM jobs WHERE project IS NOT NULL ORDER BY project")?,
            tags: list("SELECT DISTINCT tag FROM job_tags ORDER BY tag")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::NewJob;
    use crate::spec::{SpecContext, SpecFormat};

    fn add(c: &mut Catalog, n: u32, body: serde_json::Value) -> String {
        let defaults = serde_json::Map::new();
        let dir = std::env::temp_dir();
        let ctx = SpecContext { defaults: &defaults, spec_dir: &dir, inbox: &dir };
        let bytes = body.to_string();
        let job = NewJob {
            id: format!("job-{n:03}"),
            spec_name: format!("s{n}.json"),
            spec_sha256: String::new(),
            spec_format: SpecFormat::Json,
            spec: crate::spec::parse("s.json", bytes.as_bytes(), &ctx).expect("valid spec"),
            take: None,
        };
        c.insert_job(&job).expect("insert");
        c.conn
            .execute("UPDATE jobs SET created_at = ?2 WHERE id = ?1", rusqlite::params![job.id, i64::from(n) * 1000])
            .expect("date");
        job.id
    }

    fn ids(c: &Catalog, f: &JobFilter) -> Vec<String> {
        c.jobs(f).expect("jobs").into_iter().map(|j| j.id).collect()
    }

    fn text(t: &str) -> JobFilter {
        JobFilter { text: Some(t.to_owned()), ..JobFilter::default() }
    }

    #[test]
    fn a_job_is_found_by_what_a_person_has_in_hand() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = Catalog::open(&dir.path().join("c.sqlite")).expect("open");
        let fox = add(&mut c, 1, serde_json::json!({"model":"viduq1-text","prompt":"a fox"}));
        let owl = add(&mut c, 2, serde_json::json!({"model":"viduq1-text","prompt":"an owl"}));
        c.conn
            .execute(
                "UPDATE jobs SET task_id = '8742519305361283072', request_id = 'vk-owl-1', spec_file = 's2.1a2b.json' \
                 WHERE id = ?1",
                [&owl],
            )
            .expect("ids");
        let found = |what: &str| -> Vec<String> {
            c.find_by_reference(what).expect("find").into_iter().map(|j| j.id).collect()
        };
        assert_eq!(found("8742519305361283072"), [owl.as_str()]);
        assert_eq!(found("vk-owl-1"), [owl.as_str()]);
        assert_eq!(found("s1.json"), [fox.as_str()]);
        assert_eq!(found("s2.1a2b.json"), [owl.as_str()], "the name it has in done/");
        assert_eq!(found("job-00"), [fox.as_str(), owl.as_str()], "a prefix of both ids");
        assert_eq!(found("b-002"), [owl.as_str()], "the end of an id");
        assert!(found("nothing").is_empty());
        // The UI's search box finds the same, beside the prompt's words.
        assert_eq!(ids(&c, &text("8742519305361283072")), [owl.as_str()]);
        assert_eq!(ids(&c, &text("s1.json")), [fox.as_str()]);
        assert_eq!(ids(&c, &text("fox")), [fox.as_str()]);
    }

    #[test]
    fn filters_search_and_pages_agree() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = Catalog::open(&dir.path().join("c.sqlite")).expect("open");
        let fox = add(
            &mut c,
            1,
            serde_json::json!({"model":"viduq1-text","prompt":"A red Fox runs through snow",
            "vidkeep":{"name":"Winter fox","project":"wild","tags":["snow","animal"]}}),
        );
        let lantern = add(
            &mut c,
            2,
            serde_json::json!({"model":"viduq1-text","prompt":"元宵节的灯笼在河面上漂浮",
            "vidkeep":{"project":"festival","tags":["lantern"]}}),
        );
        let city = add(
            &mut c,
            3,
            serde_json::json!({"model":"cogvideox-3","prompt":"city 100% at night_time",
            "vidkeep":{"project":"wild"}}),
        );

        assert_eq!(ids(&c, &text("fox")), vec![fox.clone()], "any case");
        assert_eq!(ids(&c, &text("RUNS snow")), vec![fox.clone()], "every word must appear");
        assert!(ids(&c, &text("fox lantern")).is_empty());
        assert_eq!(ids(&c, &text("灯笼在")), vec![lantern.clone()], "a substring of a Chinese sentence");
        assert_eq!(ids(&c, &text("灯笼")), vec![lantern.clone()], "two characters: below trigram length");
        assert_eq!(ids(&c, &text("Winter")), vec![fox.clone()], "the name is searched");
        assert_eq!(ids(&c, &text("animal")), vec![fox.clone()], "tags are searched");
        assert_eq!(ids(&c, &text("100%")), vec![city.clone()]);
        assert_eq!(ids(&c, &text("0%")), vec![city.clone()], "a literal percent sign");
        assert_eq!(ids(&c, &text("_t")), vec![city.clone()], "a literal underscore, not LIKE's any-character");
        for hostile in ["\"", "fox\" OR \"city", "NEAR(", "*", "a:b", "-x"] {
            c.jobs(&text(hostile)).unwrap_or_else(|e| panic!("{hostile}: {e}"));
        }

        let wild = JobFilter { project: Some("wild".into()), ..JobFilter::default() };
        assert_eq!(ids(&c, &wild), vec![fox.clone(), city.clone()]);
        let tagged = JobFilter { tag: Some("lantern".into()), ..JobFilter::default() };
        assert_eq!(ids(&c, &tagged), vec![lantern.clone()]);
        let cog = JobFilter { model: Some("cogvideox-3".into()), ..JobFilter::default() };
        assert_eq!(ids(&c, &cog), vec![city.clone()]);
        let queued = JobFilter { state: Some(JobState::Queued), ..JobFilter::default() };
        assert_eq!(c.count_jobs(&queued).expect("count"), 3);
        let dated = JobFilter { created_from: Some(2000), created_before: Some(3000), ..JobFilter::default() };
        assert_eq!(ids(&c, &dated), vec![lantern.clone()]);

        let page = |offset| JobFilter { newest_first: true, limit: Some(2), offset, ..JobFilter::default() };
        assert_eq!(ids(&c, &page(0)), vec![city.clone(), lantern.clone()]);
        assert_eq!(ids(&c, &page(2)), vec![fox.clone()]);
        assert_eq!(c.count_jobs(&page(2)).expect("count"), 3, "the count ignores the page");

        let facets = c.facets().expect("facets");
        assert_eq!(facets.models, ["cogvideox-3", "viduq1-text"]);
        assert_eq!(facets.projects, ["festival", "wild"]);
        assert_eq!(facets.tags, ["animal", "lantern", "snow"]);
    }

    #[test]
    fn listings_sort_collapse_takes_find_neighbours_and_count_facets() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut c = Catalog::open(&dir.path().join("c.sqlite")).expect("open");
        let a = add(
            &mut c,
            1,
            serde_json::json!({"model":"viduq1-text","prompt":"a fox","vidkeep":{"project":"zoo","tags":["red"]}}),
        );
        let b = add(
            &mut c,
            2,
            serde_json::json!({"model":"cogvideox-3","prompt":"a city","vidkeep":{"tags":["red","night"]}}),
        );
        let takes: Vec<String> = (3..6)
            .map(|n| {
                add(
                    &mut c,
                    n,
                    serde_json::json!({"model":"viduq1-text","prompt":"a harbour","vidkeep":{"project":"sea"}}),
                )
            })
            .collect();
        for (i, id) in takes.iter().enumerate() {
            c.conn
                .execute(
                    "UPDATE jobs SET take_group = 'g1', take_no = ?2 WHERE id = ?1",
                    rusqlite::params![id, i as i64 + 1],
                )
                .expect("take");
        }
        let all = JobFilter::default();
        let list = |l: &Listing| -> Vec<String> { c.list(&all, l).expect("list").into_iter().map(|j| j.id).collect() };
        let grouped = Listing { sort: Sort::Newest, collapse_takes: true };
        assert_eq!(list(&grouped), vec![takes[0].clone(), b.clone(), a.clone()], "one entry for the takes: the first");
        assert_eq!(c.count_listed(&all, &grouped).expect("count"), 3);
        let every = Listing { sort: Sort::Oldest, collapse_takes: false };
        assert_eq!(list(&every), [vec![a.clone(), b.clone()], takes.clone()].concat());
        assert_eq!(c.count_listed(&all, &every).expect("count"), 5);
        let by_model = Listing { sort: Sort::Model, collapse_takes: true };
        assert_eq!(list(&by_model), vec![b.clone(), takes[0].clone(), a.clone()], "model, then newest");
        let by_project = Listing { sort: Sort::Project, collapse_takes: true };
        assert_eq!(list(&by_project), vec![takes[0].clone(), a.clone(), b.clone()], "sea, zoo, then none");
        // A filter that only a later take matches shows that take for the group.
        c.conn
            .execute(
                "UPDATE jobs SET state = 'failed', error_code = 'x', error_message = 'x' WHERE id = ?1",
                [&takes[1]],
            )
            .expect("fail");
        let failed = JobFilter { state: Some(JobState::Failed), ..JobFilter::default() };
        assert_eq!(
            c.list(&failed, &grouped).expect("list").into_iter().map(|j| j.id).collect::<Vec<_>>(),
            vec![takes[1].clone()]
        );

        assert_eq!(c.neighbours(&all, &grouped, &b).expect("around"), (Some(takes[0].clone()), Some(a.clone())));
        assert_eq!(c.neighbours(&all, &grouped, &a).expect("around"), (Some(b.clone()), None));
        assert_eq!(c.neighbours(&all, &grouped, &takes[2]).expect("around"), (None, None), "not listed");
        let paged = JobFilter { limit: Some(1), offset: 2, ..JobFilter::default() };
        assert_eq!(c.neighbours(&paged, &grouped, &b).expect("around").1, Some(a.clone()), "ignores the page");

        let counts = c.facet_counts(&JobFilter { tag: Some("red".into()), ..JobFilter::default() }).expect("facets");
        assert_eq!(counts.models, vec![("cogvideox-3".to_owned(), 1), ("viduq1-text".to_owned(), 1)]);
        assert_eq!(counts.projects, vec![("zoo".to_owned(), 1)]);
        assert_eq!(counts.tags, vec![("night".to_owned(), 1), ("red".to_owned(), 2)], "a menu ignores its own choice");
        assert_eq!(counts.states, vec![("queued".to_owned(), 2)]);
        let none = c.facet_counts(&JobFilter::default()).expect("facets");
        assert_eq!(none.states, vec![("failed".to_owned(), 1), ("queued".to_owned(), 4)]);
        assert_eq!(none.projects, vec![("sea".to_owned(), 3), ("zoo".to_owned(), 1)]);
    }
}
