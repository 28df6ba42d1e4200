use super::*;
use crate::catalog::testing::{PgScratch, pg_server};
use crate::catalog::{Asset, AssetKind, CheckResult, Input, JobFilter, NewJob, NotifySetup, Rejection, SpecJobs};
use crate::domain::{Change, JobError, JobState, SpecPlace};
use crate::probe::{Figures, Probe};

fn asset(job_id: &str, kind: AssetKind, probe: Option<Probe>) -> Asset {
    Asset {
        job_id: job_id.to_owned(),
        kind,
        sha256: crate::domain::sha256_hex(format!("{job_id}/{}", kind.as_str()).as_bytes()),
        bytes: 1_234_567,
        key: format!("{job_id}/{}", kind.as_str()),
        content_type: if kind == AssetKind::Video { "video/mp4" } else { "image/jpeg" }.to_owned(),
        source_url: format!("https://cdn.example/{job_id}/{}", kind.as_str()),
        probe,
    }
}

/// A catalogue as a few days of use leave it: archived jobs with assets, probes and checks,
/// takes, failed and uncertain jobs, refused submissions, a rejected spec, input images,
/// Chinese prompts, tags and the outbox. Returns the job ids.
fn fill(c: &mut Catalog) -> Vec<String> {
    c.set_notify(NotifySetup { sinks: vec!["webhook", "command"], ui_base: Some("https://vk.example".into()) });
    let bodies = [
        r#"{"model":"viduq1-text","prompt":"a lighthouse at dusk","vidkeep":{"project":"coast","tags":["sea","night"]}}"#,
        r#"{"model":"viduq1-text","prompt":"海边的灯塔，黄昏","vidkeep":{"name":"灯塔","tags":["海"]}}"#,
        r#"{"model":"cogvideox-3","prompt":"a fox in the snow","vidkeep":{"project":"Forest","tags":["sea"]}}"#,
        r#"{"model":"viduq1-text","prompt":"an owl, 'quoted' and \"double\""}"#,
        r#"{"model":"viduq1-text","prompt":"a hare"}"#,
    ];
    let mut specs: Vec<SpecJobs> = bodies
        .iter()
        .enumerate()
        .map(|(n, body)| SpecJobs::for_test(&uuid::Uuid::now_v7().to_string(), &format!("spec-{n}.json"), body))
        .collect();
    // One spec with two takes.
    let group = uuid::Uuid::now_v7().to_string();
    let takes = [1, 2]
        .iter()
        .map(|&n| {
            let id = if n == 1 { group.clone() } else { uuid::Uuid::now_v7().to_string() };
            let mut job = NewJob::for_test(&id, "takes.json", r#"{"model":"viduq1-text","prompt":"a kite, twice"}"#);
            job.take = Some((group.clone(), n));
            job
        })
        .collect();
    specs.push(SpecJobs::new(takes, SpecPlace::Processing, "takes.json".into(), false));
    c.record_specs(&specs).expect("record");
    let ids: Vec<String> = c.jobs(&JobFilter::default()).expect("jobs").into_iter().map(|j| j.id).collect();
    assert_eq!(ids.len(), 7);

    // Archived, with a probed video, a cover, checks and input images.
    let archive = |c: &mut Catalog, id: &str, n: usize| {
        c.transition(id, JobState::Queued, &Change::Submitting { request_id: format!("vk-{id}-1") })
            .expect("submitting");
        c.transition(id, JobState::Submitting, &Change::Submitted { task_id: format!("task-{n}") }).expect("submitted");
        let ready = Change::ResultReady {
            video_url: format!("https://cdn.example/{id}.mp4"),
            cover_url: Some(format!("https://cdn.example/{id}.jpg")),
            result_json: r#"{"task_status":"SUCCESS"}"#.into(),
            expires_at: None,
        };
        c.transition(id, JobState::Submitted, &ready).expect("ready");
        let figures = Figures { duration_s: 5.041_666, fps: 23.976, width: 1920, height: 1080, codec: "avc1".into() };
        let probe = Probe { figures: Some(figures), findings: Vec::new() };
        c.record_asset(&asset(id, AssetKind::Video, Some(probe))).expect("video");
        c.record_asset(&asset(id, AssetKind::Cover, None)).expect("cover");
        c.transition(id, JobState::Downloading, &Change::Archived).expect("archived");
    };
    archive(c, &ids[0], 0);
    archive(c, &ids[1], 1);
    archive(c, &ids[5], 5);
    let video = c.assets(&ids[0]).expect("assets").remove(0);
    c.record_check(&video, CheckResult::Ok, None).expect("check");
    c.record_check(&video, CheckResult::Mismatch, Some("sha256 0000 instead")).expect("check");
    let inputs = [
        Input {
            index: 0,
            sha256: Some("ab".repeat(32)),
            key: Some(format!("inputs/{}.png", "ab".repeat(32))),
            bytes: 2048,
            content_type: "image/png".into(),
            url: None,
        },
        Input {
            index: 1,
            sha256: None,
            key: None,
            bytes: 0,
            content_type: String::new(),
            url: Some("https://img.example/a.png".into()),
        },
    ];
    c.record_inputs(&ids[1], &inputs).expect("inputs");

    // Refused once, then accepted and failed; answer lost then abandoned; one still queued.
    let id = &ids[2];
    c.transition(id, JobState::Queued, &Change::Submitting { request_id: format!("vk-{id}-1") }).expect("s");
    let busy = JobError::new("platform-1302", "too many tasks");
    c.transition(id, JobState::Submitting, &Change::Requeue { next_attempt_at: 5, error: busy }).expect("requeue");
    c.transition(id, JobState::Queued, &Change::Submitting { request_id: format!("vk-{id}-2") }).expect("s");
    c.transition(id, JobState::Submitting, &Change::Submitted { task_id: "task-2".into() }).expect("submitted");
    let failed = Change::Failed(JobError::new("task-failed", "the platform said FAIL"));
    c.transition(id, JobState::Submitted, &failed).expect("failed");
    let id = &ids[3];
    c.transition(id, JobState::Queued, &Change::Submitting { request_id: format!("vk-{id}-1") }).expect("s");
    c.transition(id, JobState::Submitting, &Change::Uncertain(JobError::new("submit-answer-lost", "lost")))
        .expect("uncertain");
    c.transition(id, JobState::Uncertain, &Change::Failed(JobError::new("abandoned", "given up"))).expect("fail");
    c.record_rejection(&Rejection {
        spec_name: "bad.json".into(),
        spec_sha256: "cd".repeat(32),
        error_code: "invalid-spec".into(),
        error_message: "duration: 8 is not one of 4, 5".into(),
        at: 1_700_000_000_000,
    })
    .expect("rejection");
    let outbox = c.outbox_of(&ids[0]).expect("outbox");
    c.outbox_delivered(outbox[0].0.id, 7).expect("delivered");
    c.outbox_failed(outbox[1].0.id, "HTTP 500", Some(99)).expect("failed");
    ids
}

/// Everything the catalogue's own queries answer about `c`, as text to compare.
fn view(c: &Catalog) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let all = c.jobs(&JobFilter::default()).expect("jobs");
    let newest = c.jobs(&JobFilter { newest_first: true, ..JobFilter::default() }).expect("jobs");
    writeln!(out, "{all:?}\n{:?}", newest.iter().map(|j| &j.id).collect::<Vec<_>>()).ok();
    for job in &all {
        let assets = c.assets(&job.id).expect("assets");
        for a in &assets {
            writeln!(out, "{:?}", c.checks(&a.key).expect("checks")).ok();
        }
        writeln!(
            out,
            "{assets:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}",
            c.events(&job.id).expect("events"),
            c.job_money(&job.id).expect("money"),
            c.outbox_of(&job.id).expect("outbox"),
            c.inputs(&job.id).expect("inputs"),
            c.request_body(&job.id).expect("request"),
        )
        .ok();
    }
    let ids =
        |filter: JobFilter| -> Vec<String> { c.jobs(&filter).expect("filtered").into_iter().map(|j| j.id).collect() };
    for word in ["lighthouse", "灯塔", "fox", "FOX", "kite twice"] {
        writeln!(out, "{word}: {:?}", ids(JobFilter { text: Some(word.into()), ..JobFilter::default() })).ok();
    }
    for tag in ["sea", "海", "none"] {
        writeln!(out, "#{tag}: {:?}", ids(JobFilter { tag: Some(tag.into()), ..JobFilter::default() })).ok();
    }
    writeln!(out, "{:?}", ids(JobFilter { project: Some("forest".into()), ..JobFilter::default() })).ok();
    writeln!(
        out,
        "{:?}\n{:?}\n{:?}\n{:?}",
        c.ledger(0, i64::MAX).expect("ledger"),
        c.rejections().expect("rejections"),
        c.facets().expect("facets"),
        c.outbox_counts().expect("outbox counts"),
    )
    .ok();
    out
}

/// The copied catalogue answers like the source, refuses a second copy, and gives new rows
/// fresh ids.
fn copies_checked(dest: &mut Catalog) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut source = Catalog::open(&dir.path().join("source.sqlite")).expect("open");
    let ids = fill(&mut source);
    let report = source.copy_into(dest).expect("copy");
    assert_eq!(report.rows("jobs"), Some(7));
    assert_eq!(report.rows("job_tags"), Some(4), "sea twice, night and 海");
    assert_eq!(report.rows("assets"), Some(6));
    assert_eq!(report.rows("job_inputs"), Some(2));
    assert_eq!(report.rows("asset_checks"), Some(2));
    assert_eq!(report.rows("rejections"), Some(1));
    assert_eq!(report.rows("submissions"), Some(6));
    assert!(report.rows("outbox").is_some_and(|n| n >= 10), "{report:?}");
    assert_eq!(report.tables.len(), TABLES.len());
    assert_eq!(view(&source), view(dest));
    let count = |filter: JobFilter| dest.jobs(&filter).expect("jobs").len();
    assert_eq!(count(JobFilter { text: Some("灯塔".into()), ..JobFilter::default() }), 1, "search works on the copy");
    assert_eq!(count(JobFilter { tag: Some("sea".into()), ..JobFilter::default() }), 2, "tags work on the copy");

    let again = source.copy_into(dest);
    assert!(matches!(again, Err(CatalogError::Copy(CopyError::NotEmpty { table: "jobs", rows: 7 }))), "{again:?}");
    assert_eq!(view(&source), view(dest), "a refused copy writes nothing");

    // New rows in the destination get ids past the copied ones.
    let new = uuid::Uuid::now_v7().to_string();
    let body = r#"{"model":"viduq1-text","prompt":"a new job after the move"}"#;
    dest.record_specs(&[SpecJobs::for_test(&new, "new.json", body)]).expect("a new job");
    dest.set_notify(NotifySetup { sinks: vec!["webhook"], ui_base: None });
    dest.transition(&new, JobState::Queued, &Change::Submitting { request_id: "vk-new-1".into() })
        .expect("a new submission");
    dest.transition(&new, JobState::Submitting, &Change::Failed(JobError::new("x", "y"))).expect("a new event");
    dest.record_rejection(&Rejection {
        spec_name: "worse.json".into(),
        spec_sha256: String::new(),
        error_code: "invalid-spec".into(),
        error_message: "no".into(),
        at: 1,
    })
    .expect("a new rejection");
    let video = dest.assets(&ids[1]).expect("assets").remove(0);
    dest.record_check(&video, CheckResult::Ok, None).expect("a new check");
    let listed: Vec<String> = dest.jobs(&JobFilter::default()).expect("jobs").into_iter().map(|j| j.id).collect();
    assert_eq!(listed.last(), Some(&new), "the new job comes after the copied ones");
    let max = |c: &Catalog, q: &str| -> i64 { c.conn.one("test", q, args![], |r| r.get(0)).expect("max") };
    for (table, key) in [
        ("jobs", "rowid"),
        ("submissions", "id"),
        ("job_events", "id"),
        ("rejections", "id"),
        ("asset_checks", "id"),
        ("outbox", "id"),
    ] {
        let q = format!("SELECT MAX({key}) FROM {table}");
        assert!(max(dest, &q) > max(&source, &q), "{table}: a new row gets a fresh id");
    }
    assert_eq!(dest.outbox_of(&new).expect("outbox").len(), 1);
}

#[test]
fn sqlite_copies_into_sqlite_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut dest = Catalog::open(&dir.path().join("dest.sqlite")).expect("open");
    copies_checked(&mut dest);
}

#[test]
fn sqlite_copies_into_postgres_checked() {
    let Some(server) = pg_server() else {
        eprintln!("VIDKEEP_TEST_PG is not set: the copy into PostgreSQL was not tested");
        return;
    };
    let scratch = PgScratch::new(&server);
    let mut dest = scratch.catalog();
    copies_checked(&mut dest);
}

#[test]
fn an_old_source_schema_is_refused_and_nothing_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut source = Catalog::open(&dir.path().join("source.sqlite")).expect("open");
    fill(&mut source);
    source.lite().pragma_update(None, "user_version", SCHEMA_VERSION - 1).expect("pretend an old schema");
    let mut dest = Catalog::open(&dir.path().join("dest.sqlite")).expect("open");
    let refused = source.copy_into(&mut dest);
    assert!(matches!(refused, Err(CatalogError::Copy(CopyError::Schema { side: "source", .. }))), "{refused:?}");
    assert!(dest.jobs(&JobFilter::default()).expect("jobs").is_empty());
}

#[test]
fn a_destination_that_reads_back_differently_rolls_back_and_names_the_table() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut source = Catalog::open(&dir.path().join("source.sqlite")).expect("open");
    fill(&mut source);
    let mut dest = Catalog::open(&dir.path().join("dest.sqlite")).expect("open");
    // A destination that changes what it is given: one value, then one row too few.
    dest.lite()
        .execute_batch(
            "CREATE TEMP TRIGGER bend AFTER INSERT ON main.assets BEGIN \
             UPDATE assets SET probe_fps = 25.0 WHERE job_id = new.job_id AND kind = 'video'; END;",
        )
        .expect("trigger");
    let differs = source.copy_into(&mut dest);
    assert!(
        matches!(&differs, Err(CatalogError::Copy(CopyError::ContentDiffers { table: "assets", rows: 6, .. }))),
        "{differs:?}"
    );
    assert!(dest.jobs(&JobFilter::default()).expect("jobs").is_empty(), "rolled back");
    dest.lite()
        .execute_batch(
            "DROP TRIGGER temp.bend; CREATE TEMP TRIGGER lose AFTER INSERT ON main.job_inputs BEGIN \
             DELETE FROM job_inputs WHERE job_id = new.job_id AND idx = 1; END;",
        )
        .expect("trigger");
    let differs = source.copy_into(&mut dest);
    assert!(
        matches!(
            &differs,
            Err(CatalogError::Copy(CopyError::CountDiffers { table: "job_inputs", source_rows: 2, dest_rows: 1 }))
        ),
        "{differs:?}"
    );
    let said = differs.map(|_| ()).expect_err("refused").to_string();
    assert!(said.contains("job_inputs") && said.contains("nothing was written"), "{said}");
    assert!(dest.jobs(&JobFilter::default()).expect("jobs").is_empty(), "rolled back");
}

#[test]
fn the_checksum_sees_a_changed_value() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut source = Catalog::open(&dir.path().join("source.sqlite")).expect("open");
    let ids = fill(&mut source);
    let mut dest = Catalog::open(&dir.path().join("dest.sqlite")).expect("open");
    source.copy_into(&mut dest).expect("copy");
    let [jobs, assets] = ["jobs", "assets"].map(|name| TABLES.iter().find(|t| t.name == name).expect("table"));
    assert_eq!(jobs.sum(&source.conn, "source").expect("sum"), jobs.sum(&dest.conn, "destination").expect("sum"));
    dest.lite().execute("UPDATE jobs SET prompt = prompt || ' ' WHERE id = ?1", [&ids[3]]).expect("change");
    dest.lite().execute("UPDATE assets SET probe_fps = 23.976000001 WHERE job_id = ?1", [&ids[0]]).expect("change");
    for table in [jobs, assets] {
        let (source_rows, source_sum) = table.sum(&source.conn, "source").expect("sum");
        let (dest_rows, dest_sum) = table.sum(&dest.conn, "destination").expect("sum");
        assert_eq!(source_rows, dest_rows);
        assert_ne!(source_sum, dest_sum, "{}: one changed value changes the checksum", table.name);
    }
}

#[test]
fn the_copied_columns_are_every_column_of_both_schemas() {
    crate::catalog::testing::each_backend(|c, backend| {
        for table in TABLES {
            let q = match c.conn.dialect() {
                Dialect::Sqlite => "SELECT name FROM pragma_table_info(?1) ORDER BY name",
                Dialect::Postgres => {
                    "SELECT CAST(column_name AS TEXT) FROM information_schema.columns \
                     WHERE table_schema = current_schema() AND table_name = ?1 ORDER BY 1"
                }
            };
            let mut found: Vec<String> = c.conn.rows("columns", q, args![table.name], |r| r.get(0)).expect("columns");
            let mut listed: Vec<String> = table.columns.iter().map(|c| (*c).to_owned()).collect();
            if c.conn.dialect() == Dialect::Sqlite && table.name == "jobs" {
                found.push("rowid".into());
            }
            found.sort();
            listed.sort();
            assert_eq!(found, listed, "{backend}: the columns of {}", table.name);
        }
    });
}
