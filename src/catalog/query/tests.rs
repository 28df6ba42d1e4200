use super::*;
use crate::catalog::conn::{Begin, args};
use crate::catalog::{AssetKind, NewJob};
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
        .execute("test", "UPDATE jobs SET created_at = ?2 WHERE id = ?1", args![job.id, i64::from(n) * 1000])
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
    crate::catalog::testing::each_backend(|c, _| {
        let fox = add(c, 1, serde_json::json!({"model":"viduq1-text","prompt":"a fox"}));
        let owl = add(c, 2, serde_json::json!({"model":"viduq1-text","prompt":"an owl"}));
        c.conn
            .execute(
                "test",
                "UPDATE jobs SET task_id = '8742519305361283072', request_id = 'vk-owl-1', spec_file = 's2.1a2b.json' \
                 WHERE id = ?1",
                args![owl],
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
        assert_eq!(ids(c, &text("8742519305361283072")), [owl.as_str()]);
        assert_eq!(ids(c, &text("s1.json")), [fox.as_str()]);
        assert_eq!(ids(c, &text("fox")), [fox.as_str()]);
    });
}

#[test]
fn filters_search_and_pages_agree() {
    crate::catalog::testing::each_backend(|c, _| {
        let fox = add(
            c,
            1,
            serde_json::json!({"model":"viduq1-text","prompt":"A red Fox runs through snow",
            "vidkeep":{"name":"Winter fox","project":"wild","tags":["snow","animal"]}}),
        );
        let lantern = add(
            c,
            2,
            serde_json::json!({"model":"viduq1-text","prompt":"元宵节的灯笼在河面上漂浮",
            "vidkeep":{"project":"festival","tags":["lantern"]}}),
        );
        let city = add(
            c,
            3,
            serde_json::json!({"model":"cogvideox-3","prompt":"city 100% at night_time",
            "vidkeep":{"project":"wild"}}),
        );

        assert_eq!(ids(c, &text("fox")), vec![fox.clone()], "any case");
        assert_eq!(ids(c, &text("RUNS snow")), vec![fox.clone()], "every word must appear");
        assert!(ids(c, &text("fox lantern")).is_empty());
        assert_eq!(ids(c, &text("灯笼在")), vec![lantern.clone()], "a substring of a Chinese sentence");
        assert_eq!(ids(c, &text("灯笼")), vec![lantern.clone()], "two characters: below trigram length");
        assert_eq!(ids(c, &text("Winter")), vec![fox.clone()], "the name is searched");
        assert_eq!(ids(c, &text("animal")), vec![fox.clone()], "tags are searched");
        assert_eq!(ids(c, &text("100%")), vec![city.clone()]);
        assert_eq!(ids(c, &text("0%")), vec![city.clone()], "a literal percent sign");
        assert_eq!(ids(c, &text("_t")), vec![city.clone()], "a literal underscore, not LIKE's any-character");
        for hostile in ["\"", "fox\" OR \"city", "NEAR(", "*", "a:b", "-x"] {
            c.jobs(&text(hostile)).unwrap_or_else(|e| panic!("{hostile}: {e}"));
        }

        let wild = JobFilter { project: Some("wild".into()), ..JobFilter::default() };
        assert_eq!(ids(c, &wild), vec![fox.clone(), city.clone()]);
        let tagged = JobFilter { tag: Some("lantern".into()), ..JobFilter::default() };
        assert_eq!(ids(c, &tagged), vec![lantern.clone()]);
        let cog = JobFilter { model: Some("cogvideox-3".into()), ..JobFilter::default() };
        assert_eq!(ids(c, &cog), vec![city.clone()]);
        let queued = JobFilter { state: Some(JobState::Queued), ..JobFilter::default() };
        assert_eq!(c.count_jobs(&queued).expect("count"), 3);
        let dated = JobFilter { created_from: Some(2000), created_before: Some(3000), ..JobFilter::default() };
        assert_eq!(ids(c, &dated), vec![lantern.clone()]);

        let page = |offset| JobFilter { newest_first: true, limit: Some(2), offset, ..JobFilter::default() };
        assert_eq!(ids(c, &page(0)), vec![city.clone(), lantern.clone()]);
        assert_eq!(ids(c, &page(2)), vec![fox.clone()]);
        assert_eq!(c.count_jobs(&page(2)).expect("count"), 3, "the count ignores the page");

        let facets = c.facets().expect("facets");
        assert_eq!(facets.models, ["cogvideox-3", "viduq1-text"]);
        assert_eq!(facets.projects, ["festival", "wild"]);
        assert_eq!(facets.tags, ["animal", "lantern", "snow"]);
    });
}

#[test]
fn listings_sort_collapse_takes_find_neighbours_and_count_facets() {
    crate::catalog::testing::each_backend(|c, _| {
        let a = add(
            c,
            1,
            serde_json::json!({"model":"viduq1-text","prompt":"a fox","vidkeep":{"project":"zoo","tags":["red"]}}),
        );
        let b =
            add(c, 2, serde_json::json!({"model":"cogvideox-3","prompt":"a city","vidkeep":{"tags":["red","night"]}}));
        let takes: Vec<String> = (3..6)
            .map(|n| {
                add(c, n, serde_json::json!({"model":"viduq1-text","prompt":"a harbour","vidkeep":{"project":"sea"}}))
            })
            .collect();
        for (i, id) in takes.iter().enumerate() {
            c.conn
                .execute(
                    "test",
                    "UPDATE jobs SET take_group = 'g1', take_no = ?2 WHERE id = ?1",
                    args![id, i as i64 + 1],
                )
                .expect("take");
        }
        let all = JobFilter::default();
        let list = |l: &Listing| -> Vec<String> { c.list(&all, l).expect("list").into_iter().map(|j| j.id).collect() };
        let grouped = Listing { sort: Sort::Newest, collapse_takes: true };
        assert_eq!(list(&grouped), vec![takes[0].clone(), b.clone(), a.clone()], "one entry for the takes: the first");
        assert_eq!(c.count_listed(&all, &grouped, COUNT_CAP).expect("count"), Count::Exactly(3));
        let every = Listing { sort: Sort::Oldest, collapse_takes: false };
        assert_eq!(list(&every), [vec![a.clone(), b.clone()], takes.clone()].concat());
        assert_eq!(c.count_listed(&all, &every, COUNT_CAP).expect("count"), Count::Exactly(5));
        let by_model = Listing { sort: Sort::Model, collapse_takes: true };
        assert_eq!(list(&by_model), vec![b.clone(), takes[0].clone(), a.clone()], "model, then newest");
        let by_project = Listing { sort: Sort::Project, collapse_takes: true };
        assert_eq!(list(&by_project), vec![takes[0].clone(), a.clone(), b.clone()], "sea, zoo, then none");
        // A filter that only a later take matches shows that take for the group.
        c.conn
            .execute(
                "test",
                "UPDATE jobs SET state = 'failed', error_code = 'x', error_message = 'x' WHERE id = ?1",
                args![takes[1]],
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
    });
}

/// A library for paging: jobs in three models and three projects (one in none), some created at
/// the same instant, two take groups; each prompt has `fox` or `owl`.
fn library(c: &mut Catalog, n: u32) -> Vec<String> {
    let models = ["viduq1-text", "cogvideox-3", "viduq1-image"];
    let ids: Vec<String> = (1..=n)
        .map(|i| {
            let animal = if i % 3 == 0 { "owl" } else { "fox" };
            let mut meta = serde_json::json!({});
            if i % 4 != 0 {
                meta["project"] = serde_json::json!(format!("p{}", i % 3));
            }
            add(
                c,
                i,
                serde_json::json!({"model": "viduq1-text", "prompt": format!("a {animal} number {i}"), "vidkeep": meta}),
            )
        })
        .collect();
    for (i, id) in ids.iter().enumerate() {
        c.conn.execute("test", "UPDATE jobs SET model = ?2 WHERE id = ?1", args![id, models[i % 3]]).expect("model");
        // Ties on the creation time: the id decides.
        if i % 5 == 1 {
            c.conn
                .execute("test", "UPDATE jobs SET created_at = created_at - 1000 WHERE id = ?1", args![id])
                .expect("tie");
        }
        if i % 7 < 3 && i > 6 {
            let group = format!("g{}", i / 7);
            c.conn
                .execute(
                    "test",
                    "UPDATE jobs SET take_group = ?2, take_no = ?3 WHERE id = ?1",
                    args![id, group, (i % 7) as i64 + 1],
                )
                .expect("take");
        }
    }
    ids
}

/// Walks `listing` page by page (`size` a page) with `after` cursors, calling `between` after
/// each full page; then back from the last page with `before` cursors. The ids seen each way.
fn walk(
    c: &mut Catalog,
    filter: &JobFilter,
    listing: &Listing,
    size: usize,
    mut between: impl FnMut(&mut Catalog),
) -> (Vec<String>, Vec<String>) {
    let mut forward = Vec::new();
    let mut cursor = None;
    loop {
        let page = JobFilter { limit: Some(size), cursor: cursor.clone(), ..filter.clone() };
        let ids: Vec<String> = c.list(&page, listing).expect("page").into_iter().map(|j| j.id).collect();
        let Some(last) = ids.last().cloned() else { break };
        let full = ids.len() == size;
        forward.extend(ids);
        cursor = Some(Cursor::After(last));
        if full {
            between(c);
        }
    }
    let mut backward = Vec::new();
    let mut cursor = forward.last().cloned().map(Cursor::Before);
    if let Some(last) = forward.last() {
        backward.push(last.clone());
    }
    loop {
        let page = JobFilter { limit: Some(size), cursor: cursor.clone(), ..filter.clone() };
        let ids: Vec<String> = c.list(&page, listing).expect("page").into_iter().map(|j| j.id).collect();
        let Some(first) = ids.first().cloned() else { break };
        backward.splice(0..0, ids);
        cursor = Some(Cursor::Before(first));
    }
    (forward, backward)
}

#[test]
fn keyset_pages_list_every_entry_once_in_every_order_while_jobs_arrive() {
    crate::catalog::testing::each_backend(|c, _| {
        library(c, 60);
        let mut next = 1000;
        for text in [None, Some("fox"), Some("fox number")] {
            for sort in Sort::ALL {
                for collapse_takes in [true, false] {
                    let listing = Listing { sort, collapse_takes };
                    let filter = JobFilter { text: text.map(str::to_owned), ..JobFilter::default() };
                    let before: Vec<String> =
                        c.list(&filter, &listing).expect("all").into_iter().map(|j| j.id).collect();
                    assert!(before.len() > 20, "{text:?}");
                    let (forward, _) = walk(c, &filter, &listing, 7, |c| {
                        next += 1;
                        add(c, next, serde_json::json!({"model":"cogvideox-3","prompt":"a late fox"}));
                    });
                    let case = format!("{text:?} {sort:?} collapse={collapse_takes}");
                    let mut seen = std::collections::HashSet::new();
                    assert!(
                        forward.iter().all(|id| seen.insert(id.clone())),
                        "{case}: an entry listed twice: {forward:?}"
                    );
                    for id in &before {
                        assert!(seen.contains(id), "{case}: {id} was never listed");
                    }
                    // What arrived during the walk goes where its order puts it; the rest keeps its order.
                    let kept: Vec<&String> = forward.iter().filter(|id| before.contains(id)).collect();
                    assert_eq!(kept, before.iter().collect::<Vec<_>>(), "{case}: pages keep the listing's order");
                    let now: Vec<String> = c.list(&filter, &listing).expect("all").into_iter().map(|j| j.id).collect();
                    let (_, back) = walk(c, &filter, &listing, 7, |_| {});
                    assert_eq!(back, now, "{case}: previous pages lead back to the start");
                }
            }
        }
    });
}

#[test]
fn neighbours_follow_the_listing_without_reading_all_of_it() {
    crate::catalog::testing::each_backend(|c, _| {
        library(c, 30);
        for sort in Sort::ALL {
            let listing = Listing { sort, collapse_takes: true };
            let filter = text("fox");
            let all: Vec<String> = c.list(&filter, &listing).expect("all").into_iter().map(|j| j.id).collect();
            for (i, id) in all.iter().enumerate() {
                let around = c.neighbours(&filter, &listing, id).expect("around");
                assert_eq!(around, (i.checked_sub(1).map(|p| all[p].clone()), all.get(i + 1).cloned()), "{sort:?} {i}");
            }
        }
    });
}

#[test]
fn counts_stop_at_the_cap_and_say_so() {
    crate::catalog::testing::each_backend(|c, _| {
        library(c, 12);
        let every = Listing { sort: Sort::Newest, collapse_takes: false };
        let fox = text("fox");
        assert_eq!(c.count_listed(&fox, &every, 5).expect("count"), Count::MoreThan(5));
        assert_eq!(c.count_listed(&fox, &every, 8).expect("count"), Count::Exactly(8));
        assert_eq!(c.count_listed(&JobFilter::default(), &every, 11).expect("count"), Count::MoreThan(11));
        assert_eq!(c.count_listed(&JobFilter::default(), &every, 12).expect("count"), Count::Exactly(12));
        assert_eq!(Count::MoreThan(10_000).to_string(), "more than 10000");
        // A word that names a job by id counts it once, whether or not the index matches it too.
        let id = c.list(&fox, &every).expect("list")[0].id.clone();
        let named = text(&id);
        assert_eq!(c.count_listed(&named, &every, 5).expect("count"), Count::Exactly(1));
    });
}

/// A search by words alone is counted from the full-text index, reading the jobs of the matches
/// only for jobs in take groups (is an earlier take listed instead?); the count is what the
/// listing lists, with takes collapsed or not, for words, phrases and words that name a job.
#[test]
fn a_search_by_words_alone_is_counted_from_the_index() {
    crate::catalog::testing::each_backend(|c, backend| {
        let ids = library(c, 60);
        let take = c.jobs(&JobFilter::default()).expect("jobs").into_iter().find(|j| j.take_no == 2).expect("a take");
        for words in ["fox", "owl", "fox number", "number", ids[3].as_str(), &format!("{} fox", ids[5]), &take.id] {
            for collapse_takes in [true, false] {
                let listing = Listing { sort: Sort::Newest, collapse_takes };
                let filter = text(words);
                let listed = c.list(&filter, &listing).expect("list").len() as u64;
                let counted = c.count_listed(&filter, &listing, COUNT_CAP).expect("count");
                assert_eq!(counted, Count::Exactly(listed), "{backend}: {words:?} collapse={collapse_takes}");
            }
        }
        if c.conn.dialect() != Dialect::Sqlite {
            return;
        }
        let plan =
            c.count_plan(&text("fox number"), &Listing { sort: Sort::Newest, collapse_takes: true }).expect("plan");
        let scan = plan.iter().find(|(_, _, s)| s.starts_with("SCAN jobs_fts")).expect("the index is read");
        let beside: Vec<&String> = plan.iter().filter(|(_, parent, _)| *parent == scan.1).map(|(_, _, s)| s).collect();
        assert!(!beside.iter().any(|s| s.contains("SEARCH jobs")), "no job read per match: {plan:#?}");
    });
}

/// More than [`COUNT_CAP`] matches: the total says "more than", the menus count the newest
/// `COUNT_CAP`, and a search is paged through the index a window at a time, every match once.
#[test]
fn a_catalogue_past_the_cap_pages_a_common_word_through_windows() {
    crate::catalog::testing::each_backend(|c, _| {
        let n = COUNT_CAP as i64 + 2_000;
        {
            let tx = c.conn.begin("test", Begin::Deferred).expect("begin");
            let insert_sql = "INSERT INTO jobs (id, spec_name, spec_file, spec_place, spec_sha256, spec_format, fingerprint, model, \
                     prompt, tags, request_display, price_fen, state, created_at, updated_at) \
                     VALUES (?1, ?1, ?1, 'done', '', 'json', '', 'viduq1-text', ?2, '[]', '{}', 0, 'queued', ?3, ?3)";
            for i in 0..n {
                // Every tenth job is an owl; the creation time runs against the row order for a
                // stretch, so windows are not always neat ranges of rows.
                let animal = if i % 10 == 0 { "owl" } else { "fox" };
                let at = if (2_000..3_000).contains(&i) { 10_000_000 - i } else { i * 10 };
                tx.execute("insert", insert_sql, args![format!("j{i:06}"), format!("a {animal} {i}"), at])
                    .expect("insert");
            }
            tx.commit("commit").expect("commit");
        }
        let every = Listing { sort: Sort::Newest, collapse_takes: true };
        let fox = text("fox");
        assert_eq!(c.count_listed(&fox, &every, COUNT_CAP).expect("count"), Count::MoreThan(COUNT_CAP));
        let owls = c.count_listed(&text("owl"), &every, COUNT_CAP).expect("count");
        assert_eq!(owls, Count::Exactly((0..n).filter(|i| i % 10 == 0).count() as u64));
        let expected: Vec<String> = {
            let mut all: Vec<(i64, String)> = (0..n)
                .filter(|i| i % 10 != 0)
                .map(|i| (if (2_000..3_000).contains(&i) { 10_000_000 - i } else { i * 10 }, format!("j{i:06}")))
                .collect();
            all.sort_by(|a, b| b.cmp(a));
            all.into_iter().map(|(_, id)| id).collect()
        };
        let (forward, _) = walk(c, &fox, &every, 1_000, |_| {});
        assert_eq!(forward, expected, "every fox once, newest first");
        let facets = c.facet_counts(&JobFilter::default()).expect("facets");
        assert_eq!(facets.sampled, Some(COUNT_CAP));
        assert_eq!(facets.states, vec![("queued".to_owned(), COUNT_CAP)]);
    });
}

/// The menus' counts, found the slow way: each menu's filter listed in full, its values counted.
fn counted_one_by_one(c: &Catalog, filter: &JobFilter) -> FacetCounts {
    let count = |f: JobFilter, values: &dyn Fn(&JobRecord) -> Vec<String>| -> Vec<(String, u64)> {
        let mut counts = std::collections::BTreeMap::<String, u64>::new();
        for job in c.jobs(&f).expect("jobs") {
            let mut vs = values(&job);
            vs.sort();
            vs.dedup();
            for v in vs {
                *counts.entry(v).or_default() += 1;
            }
        }
        counts.into_iter().collect()
    };
    FacetCounts {
        states: count(JobFilter { state: None, ..filter.clone() }, &|j| vec![j.state.as_str().to_owned()]),
        models: count(JobFilter { model: None, ..filter.clone() }, &|j| vec![j.model.clone()]),
        projects: count(JobFilter { project: None, ..filter.clone() }, &|j| j.project.iter().cloned().collect()),
        tags: count(JobFilter { tag: None, ..filter.clone() }, &|j| j.tags.clone()),
        sampled: None,
    }
}

/// Under the cap, the menus' counts read in one pass (one sample for a search with words) are
/// exactly what each menu's own filter lists, for words, short words, named jobs and every mix
/// of choices.
#[test]
fn menu_counts_under_the_cap_are_exact_for_words_and_choices_combined() {
    crate::catalog::testing::each_backend(|c, _| {
        let ids = library(c, 60);
        for (i, id) in ids.iter().enumerate() {
            let tags = match i % 4 {
                0 => serde_json::json!(["red"]),
                1 => serde_json::json!(["red", "blue"]),
                2 => serde_json::json!(["blue", "blue"]),
                _ => serde_json::json!([]),
            };
            c.conn
                .execute("test", "UPDATE jobs SET tags = ?2 WHERE id = ?1", args![id, tags.to_string()])
                .expect("tags");
            if i % 6 == 5 {
                c.conn
                    .execute(
                        "test",
                        "UPDATE jobs SET state = 'failed', error_code = 'x', error_message = 'x' WHERE id = ?1",
                        args![id],
                    )
                    .expect("fail");
            }
        }
        let with = |text: Option<&str>,
                    state: Option<JobState>,
                    model: Option<&str>,
                    project: Option<&str>,
                    tag: Option<&str>| {
            JobFilter {
                text: text.map(str::to_owned),
                state,
                model: model.map(str::to_owned),
                project: project.map(str::to_owned),
                tag: tag.map(str::to_owned),
                ..JobFilter::default()
            }
        };
        let cases = [
            with(None, None, None, None, None),
            with(Some("fox"), None, None, None, None),
            with(Some("fox number"), None, None, None, None),
            with(Some("fox"), None, Some("cogvideox-3"), None, None),
            with(Some("fox"), None, None, Some("P1"), None),
            with(Some("owl"), None, None, None, Some("blue")),
            with(Some("fox"), Some(JobState::Failed), Some("viduq1-text"), Some("p2"), Some("red")),
            with(None, None, None, Some("p1"), Some("red")),
            with(Some("nu"), None, Some("viduq1-image"), None, None),
            with(Some(ids[4].as_str()), None, None, None, None),
            with(Some(&format!("{} fox", ids[4])), None, None, None, None),
        ];
        for filter in cases {
            let counts = c.facet_counts(&filter).expect("facets");
            assert_eq!(counts, counted_one_by_one(c, &filter), "{filter:?}");
            assert_eq!(counts.sampled, None);
        }
        let named = c.facet_counts(&text(&ids[4])).expect("facets");
        assert_eq!(named.states.iter().map(|(_, n)| n).sum::<u64>(), 1, "a job named by its id counts once");
    });
}

/// Past the cap: a search's menus count one sample, the newest `COUNT_CAP` matches of its words
/// as they were added, each menu those meeting the other menus' choices; a tag more than
/// `COUNT_CAP` jobs carry is checked row by row along the listing, a rarer one drives the query,
/// and both list every match once, in order, forwards and backwards.
#[test]
fn past_the_cap_menus_share_one_sample_and_tags_list_in_order_either_way() {
    crate::catalog::testing::each_backend(|c, _| {
        let n = COUNT_CAP as i64 + 2_000;
        // Job i: an owl every tenth, else a fox; tag `even` on even i, `rare` on every 1000th + 7;
        // model `cogvideox-3` on every third. Created at i * 10 but for a stretch running backwards.
        let at = |i: i64| if (2_000..3_000).contains(&i) { 10_000_000 - i } else { i * 10 };
        let is_fox = |i: i64| i % 10 != 0;
        let tags_of = |i: i64| {
            let mut tags = Vec::new();
            if i % 2 == 0 {
                tags.push("even");
            }
            if i % 1000 == 7 {
                tags.push("rare");
            }
            tags
        };
        let model_of = |i: i64| if i % 3 == 0 { "cogvideox-3" } else { "viduq1-text" };
        {
            let tx = c.conn.begin("test", Begin::Deferred).expect("begin");
            let insert_sql = "INSERT INTO jobs (id, spec_name, spec_file, spec_place, spec_sha256, spec_format, fingerprint, model, \
                     prompt, tags, request_display, price_fen, state, created_at, updated_at) \
                     VALUES (?1, ?1, ?1, 'done', '', 'json', '', ?4, ?2, ?5, '{}', 0, 'queued', ?3, ?3)";
            for i in 0..n {
                let animal = if is_fox(i) { "fox" } else { "owl" };
                let tags = serde_json::to_string(&tags_of(i)).expect("json");
                tx.execute(
                    "insert",
                    insert_sql,
                    args![format!("j{i:06}"), format!("a {animal} {i}"), at(i), model_of(i), tags],
                )
                .expect("insert");
            }
            tx.commit("commit").expect("commit");
        }
        let cap = COUNT_CAP as usize;
        // The newest fox matches as added: the last rows.
        let sample: Vec<i64> = (0..n).rev().filter(|i| is_fox(*i)).take(cap).collect();
        let fox = c.facet_counts(&text("fox")).expect("facets");
        assert_eq!(fox.sampled, Some(COUNT_CAP));
        assert_eq!(fox.states, vec![("queued".to_owned(), COUNT_CAP)]);
        let evens = sample.iter().filter(|i| *i % 2 == 0).count() as u64;
        let rares = sample.iter().filter(|i| *i % 1000 == 7).count() as u64;
        assert_eq!(fox.tags, vec![("even".to_owned(), evens), ("rare".to_owned(), rares)]);
        // A choice narrows the other menus within the same sample.
        let chosen = JobFilter { text: Some("fox".into()), model: Some("cogvideox-3".into()), ..JobFilter::default() };
        let counts = c.facet_counts(&chosen).expect("facets");
        assert_eq!(counts.sampled, Some(COUNT_CAP));
        let cog = sample.iter().filter(|i| *i % 3 == 0);
        assert_eq!(counts.states, vec![("queued".to_owned(), cog.clone().count() as u64)]);
        assert_eq!(counts.tags[0], ("even".to_owned(), cog.filter(|i| *i % 2 == 0).count() as u64));
        let models = sample.iter().filter(|i| *i % 3 == 0).count() as u64;
        assert_eq!(
            counts.models,
            vec![("cogvideox-3".to_owned(), models), ("viduq1-text".to_owned(), cap as u64 - models)],
            "the model menu ignores its own choice"
        );

        let every = Listing { sort: Sort::Newest, collapse_takes: true };
        let newest_first = |keep: &dyn Fn(i64) -> bool| -> Vec<String> {
            let mut all: Vec<(i64, String)> =
                (0..n).filter(|i| keep(*i)).map(|i| (at(i), format!("j{i:06}"))).collect();
            all.sort_by(|a, b| b.cmp(a));
            all.into_iter().map(|(_, id)| id).collect()
        };
        let tagged = |tag: &str, words: Option<&str>| JobFilter {
            tag: Some(tag.to_owned()),
            text: words.map(str::to_owned),
            ..JobFilter::default()
        };
        type Keep<'a> = &'a dyn Fn(i64) -> bool;
        let cases: [(JobFilter, Keep<'_>); 4] = [
            (tagged("even", None), &|i| i % 2 == 0),
            (tagged("rare", None), &|i| i % 1000 == 7),
            (tagged("even", Some("fox")), &|i| i % 2 == 0 && is_fox(i)),
            (JobFilter { model: Some("cogvideox-3".into()), ..tagged("even", None) }, &|i| i % 6 == 0),
        ];
        for (filter, keep) in cases {
            let expected = newest_first(keep);
            let (forward, backward) = walk(c, &filter, &every, 700, |_| {});
            assert_eq!(forward, expected, "{filter:?}: every match once, newest first");
            assert_eq!(backward, expected, "{filter:?}: the same, page by page backwards");
            let total = c.count_listed(&filter, &every, COUNT_CAP).expect("count");
            let want = expected.len() as u64;
            assert_eq!(total, if want > COUNT_CAP { Count::MoreThan(COUNT_CAP) } else { Count::Exactly(want) });
        }
        let (forward, _) =
            walk(c, &tagged("even", None), &Listing { sort: Sort::Model, collapse_takes: true }, 900, |_| {});
        let mut by_model: Vec<(&str, std::cmp::Reverse<(i64, String)>)> = (0..n)
            .filter(|i| i % 2 == 0)
            .map(|i| (model_of(i), std::cmp::Reverse((at(i), format!("j{i:06}")))))
            .collect();
        by_model.sort();
        assert_eq!(forward, by_model.into_iter().map(|(_, std::cmp::Reverse((_, id)))| id).collect::<Vec<_>>());
    });
}

/// An export read a page at a time by keyset lists what one read lists, in every order, with the
/// filter's offset and limit counted over the whole export, each job with its own assets.
#[test]
fn an_export_read_page_by_page_lists_what_one_read_lists() {
    crate::catalog::testing::each_backend(|c, _| {
        let ids = library(c, 40);
        for (n, id) in ids.iter().enumerate().filter(|(n, _)| n % 3 == 0) {
            for kind in [AssetKind::Video, AssetKind::Cover] {
                c.record_asset(&Asset {
                    job_id: id.clone(),
                    kind,
                    sha256: format!("{n:064x}"),
                    bytes: n as u64,
                    key: format!("{id}/{kind:?}"),
                    content_type: "video/mp4".into(),
                    source_url: "http://x".into(),
                    probe: None,
                })
                .expect("asset");
            }
        }
        let filters = [
            JobFilter::default(),
            JobFilter { newest_first: true, ..JobFilter::default() },
            text("fox"),
            JobFilter { limit: Some(13), offset: 5, ..JobFilter::default() },
            JobFilter { limit: Some(14), ..JobFilter::default() },
            JobFilter { limit: Some(0), ..JobFilter::default() },
            JobFilter { project: Some("p1".into()), newest_first: true, ..JobFilter::default() },
        ];
        for filter in filters {
            for listing in [Listing::of(&filter), Listing { sort: Sort::Model, collapse_takes: false }] {
                let whole: Vec<String> = c.list(&filter, &listing).expect("list").into_iter().map(|j| j.id).collect();
                let mut paged = Vec::new();
                let mut next = Some(filter.clone());
                while let Some(page) = next.take() {
                    let (rows, after) = c.export_page(&page, &listing, 7).expect("page");
                    assert!(rows.len() <= 7);
                    for (job, assets) in rows {
                        assert_eq!(assets, c.assets(&job.id).expect("assets"), "{}", job.id);
                        paged.push(job.id);
                    }
                    next = after;
                }
                assert_eq!(paged, whole, "{filter:?} {listing:?}");
            }
        }
    });
}

/// A deep page by keyset reads the creation-time index from the cursor on. Once a catalogue has
/// statistics (ANALYZE) and few projects, SQLite preferred a skip-scan of the project index
/// and sorted every job older than the cursor instead: 2.1 s for a page at 1,000,000 jobs, where
/// the creation-time index answers in milliseconds.
#[test]
fn a_keyset_page_reads_the_creation_index_from_its_cursor() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut c = Catalog::open(&dir.path().join("c.sqlite")).expect("open");
    {
        let tx = c.conn.begin("test", Begin::Deferred).expect("begin");
        for i in 0..3_000_i64 {
            tx.execute(
                "insert",
                "INSERT INTO jobs (id, spec_name, spec_file, spec_place, spec_sha256, spec_format, fingerprint, model, \
                 prompt, project, tags, request_display, price_fen, state, created_at, updated_at) \
                 VALUES (?1, ?1, ?1, 'done', '', 'json', '', 'viduq1-text', 'a fox', ?2, '[]', '{}', 0, 'queued', ?3, ?3)",
                args![format!("j{i:06}"), format!("p{}", i % 3), i * 10],
            )
            .expect("insert");
        }
        tx.commit("commit").expect("commit");
    }
    c.lite().execute_batch("ANALYZE").expect("statistics");
    let listing = Listing { sort: Sort::Newest, collapse_takes: true };
    let cursor = Cursor::After("j001500".to_owned());
    let page = JobFilter { newest_first: true, limit: Some(3), cursor: Some(cursor.clone()), ..JobFilter::default() };
    let ids_listed: Vec<String> = c.list(&page, &listing).expect("list").into_iter().map(|j| j.id).collect();
    assert_eq!(ids_listed, ["j001499", "j001498", "j001497"]);
    let plan = c.listing_plan(&page, &listing).expect("plan");
    assert!(plan.iter().any(|step| step.contains("jobs_by_created")), "{plan:#?}");
    assert!(!plan.iter().any(|step| step.contains("jobs_by_project")), "{plan:#?}");
}

/// A tag more than `COUNT_CAP` jobs carry: the menus' sample (its newest jobs) is the start of the
/// tag's own index in creation order, and its count reads that index until the cap. Walking the
/// creation order and checking each job's tags instead read ~100,000 rows for a tag a tenth of
/// 1,000,000 jobs carry (150 ms of the page). The sample is still the tag's newest jobs by
/// creation time (not as added), and follows a job whose creation time is rewritten.
#[test]
fn a_common_tags_menus_and_count_read_the_tags_own_index() {
    crate::catalog::testing::each_backend(|c, backend| {
        let n = 3 * COUNT_CAP as i64 + 2_000;
        // Job i carries `common` on every third i, `odd` on odd i; created at i * 10 but for a
        // stretch running backwards; model `cogvideox-3` on every fifth.
        let created = |i: i64| if (20_000..25_000).contains(&i) { 10_000_000 - i } else { i * 10 };
        let model_of = |i: i64| if i % 5 == 0 { "cogvideox-3" } else { "viduq1-text" };
        {
            let tx = c.conn.begin("test", Begin::Deferred).expect("begin");
            for i in 0..n {
                let mut tags = Vec::new();
                if i % 3 == 0 {
                    tags.push("common");
                }
                if i % 2 == 1 {
                    tags.push("odd");
                }
                tx.execute(
                    "insert",
                    "INSERT INTO jobs (id, spec_name, spec_file, spec_place, spec_sha256, spec_format, fingerprint, \
                     model, prompt, tags, request_display, price_fen, state, created_at, updated_at) \
                     VALUES (?1, ?1, ?1, 'done', '', 'json', '', ?2, 'a fox', ?3, '{}', 0, 'queued', ?4, ?4)",
                    args![format!("j{i:06}"), model_of(i), serde_json::to_string(&tags).expect("json"), created(i)],
                )
                .expect("insert");
            }
            tx.commit("commit").expect("commit");
        }
        // One old job made the newest: its tag rows follow.
        c.conn
            .execute("test", "UPDATE jobs SET created_at = ?2 WHERE id = ?1", args!["j000003", 20_000_000])
            .expect("date");
        let at = |i: i64| if i == 3 { 20_000_000 } else { created(i) };

        let common = JobFilter { tag: Some("common".into()), ..JobFilter::default() };
        let mut newest: Vec<(i64, i64)> = (0..n).filter(|i| i % 3 == 0).map(|i| (at(i), i)).collect();
        newest.sort_by(|a, b| b.cmp(a));
        let sample: Vec<i64> = newest.iter().take(COUNT_CAP as usize).map(|(_, i)| *i).collect();
        assert_eq!(sample[0], 3, "{backend}");
        let counts = c.facet_counts(&common).expect("facets");
        assert_eq!(counts.sampled, Some(COUNT_CAP), "{backend}");
        let cog = sample.iter().filter(|i| *i % 5 == 0).count() as u64;
        assert_eq!(
            counts.models,
            vec![("cogvideox-3".to_owned(), cog), ("viduq1-text".to_owned(), COUNT_CAP - cog)],
            "{backend}: the model menu counts the tag's newest {COUNT_CAP} jobs"
        );
        assert_eq!(counts.states, vec![("queued".to_owned(), COUNT_CAP)], "{backend}");
        let listing = Listing::of(&common);
        assert_eq!(c.count_listed(&common, &listing, COUNT_CAP).expect("count"), Count::MoreThan(COUNT_CAP));
        let with_model = JobFilter { model: Some("cogvideox-3".into()), ..common.clone() };
        let want = (0..n).filter(|i| i % 15 == 0).count() as u64;
        assert_eq!(c.count_listed(&with_model, &listing, COUNT_CAP).expect("count"), Count::Exactly(want), "{backend}");
        let narrowed = c.facet_counts(&with_model).expect("facets");
        // The tag menu counts the model's jobs whatever their tags.
        let odd = (0..n).filter(|i| i % 5 == 0 && i % 2 == 1).count() as u64;
        assert_eq!(narrowed.tags, vec![("common".to_owned(), want), ("odd".to_owned(), odd)], "{backend}");
        assert_eq!(narrowed.states, vec![("queued".to_owned(), want)], "{backend}");
        let odd_common = JobFilter { tag: Some("odd".into()), ..with_model.clone() };
        assert_eq!(c.count_listed(&odd_common, &listing, COUNT_CAP).expect("count"), Count::Exactly(odd), "{backend}");

        if c.conn.dialect() != Dialect::Sqlite {
            return;
        }
        for statistics in [false, true] {
            if statistics {
                c.lite().execute_batch("ANALYZE").expect("statistics");
            }
            let [menu, count] = c.sample_and_count_plans(&common).expect("plans");
            assert!(menu.iter().any(|s| s.contains("job_tags_newest")), "statistics {statistics}: {menu:#?}");
            for plan in [&menu, &count] {
                assert!(!plan.iter().any(|s| s.contains("SCAN jobs")), "statistics {statistics}: {plan:#?}");
                assert!(!plan.iter().any(|s| s.contains("jobs_by_created")), "statistics {statistics}: {plan:#?}");
                assert!(!plan.iter().any(|s| s.contains("TEMP B-TREE")), "statistics {statistics}: {plan:#?}");
            }
        }
    });
}
