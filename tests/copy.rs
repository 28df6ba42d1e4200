//! `vidkeep catalog copy` as an admin runs it: a catalogue the real daemon wrote, copied by the
//! built binary into a new SQLite file and (when `VIDKEEP_TEST_PG` names a server) into a new
//! PostgreSQL database; the copy answers like the source, and the source is not changed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use vidkeep::catalog::{Catalog, DaemonLock, JobFilter};

use crate::support::Env;

fn vidkeep(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vidkeep")).args(args).output().expect("run vidkeep")
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// What the catalogue's queries answer, as text to compare.
fn view(c: &Catalog) -> String {
    let jobs = c.jobs(&JobFilter::default()).expect("jobs");
    let mut out = format!("{jobs:?}\n");
    for job in &jobs {
        let events = c.events(&job.id).expect("events");
        let assets = c.assets(&job.id).expect("assets");
        out.push_str(&format!("{events:?}\n{assets:?}\n{:?}\n", c.job_money(&job.id).expect("money")));
    }
    let found = c.jobs(&JobFilter { text: Some("lighthouse".into()), ..JobFilter::default() }).expect("search");
    let tagged = c.jobs(&JobFilter { tag: Some("sea".into()), ..JobFilter::default() }).expect("tag");
    out.push_str(&format!(
        "{:?}\n{:?}\n{:?}\n{:?}\n",
        found.iter().map(|j| &j.id).collect::<Vec<_>>(),
        tagged.iter().map(|j| &j.id).collect::<Vec<_>>(),
        c.ledger(0, i64::MAX).expect("ledger"),
        c.rejections().expect("rejections"),
    ));
    out
}

fn file_hashes(catalog: &Path) -> Vec<(String, String)> {
    ["", "-wal"]
        .iter()
        .filter_map(|suffix| {
            let mut name = catalog.as_os_str().to_owned();
            name.push(suffix);
            let bytes = std::fs::read(PathBuf::from(&name)).ok()?;
            Some((name.to_string_lossy().into_owned(), vidkeep::archive::sha256_hex(&bytes)))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_copy_moves_a_daemons_catalogue_checked_and_leaves_the_source_alone() {
    let mut env = Env::default().await;
    env.start();
    env.drop_spec(
        "lighthouse.json",
        r#"{"model":"viduq1-text","prompt":"a lighthouse at dusk","vidkeep":{"project":"coast","tags":["sea","night"]}}"#,
    );
    env.drop_spec("harbour.txt", "a harbour at dawn");
    env.drop_spec("hare.json", r#"{"model":"viduq1-text","prompt":"a hare","vidkeep":{"takes":2,"tags":["sea"]}}"#);
    env.drop_spec("bad.json", r#"{"model":"viduq1-text","prompt":"x","duration":8}"#);
    env.wait_all_ended(4).await;
    env.wait_rejections(1).await;
    env.stop().await;

    let source = env.config.catalog.path.clone();
    let dir = env.dir.path().to_owned();
    tokio::task::spawn_blocking(move || check_copies(&source, &dir)).await.expect("the checks ran");
}

fn check_copies(source: &Path, dir: &Path) {
    let before = view(&Catalog::open_read_only(source).expect("source"));
    let bytes_before = file_hashes(source);
    let from = format!("sqlite:{}", source.display());

    // Into SQLite.
    let dest = dir.join("copy.sqlite");
    let to = format!("sqlite:{}", dest.display());
    let out = vidkeep(&["catalog", "copy", "--from", &from, "--to", &to]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("checked: counts and checksums match"), "{stdout}");
    assert!(stdout.lines().any(|l| l.split_whitespace().eq(["jobs", "4"])), "rows per table: {stdout}");
    assert!(stdout.lines().any(|l| l.split_whitespace().take(2).eq(["job_tags", "4"])), "{stdout}");
    assert_eq!(view(&Catalog::open_read_only(&dest).expect("copy")), before, "the copy answers like the source");

    // Refusals exit 2 with the reason and write nothing.
    let out = vidkeep(&["catalog", "copy", "--from", &from, "--to", &to]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("is not empty"), "{}", text(&out));
    assert_eq!(view(&Catalog::open_read_only(&dest).expect("copy")), before, "a refused copy writes nothing");
    let elsewhere = dir.join("never.sqlite");
    {
        let _daemon = DaemonLock::acquire(source).expect("play a running daemon");
        let out = vidkeep(&["catalog", "copy", "--from", &from, "--to", &format!("sqlite:{}", elsewhere.display())]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
        assert!(text(&out).contains("daemon") && text(&out).contains("stop it"), "{}", text(&out));
    }
    assert!(!elsewhere.exists(), "a refused copy leaves no new catalogue behind");

    // Into PostgreSQL.
    if let Some(scratch) = crate::support::pg::TestDb::new() {
        let out = vidkeep(&["catalog", "copy", "--from", &from, "--to", &scratch.url]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        assert!(String::from_utf8_lossy(&out.stdout).contains("checked: counts and checksums match"));
        let client = crate::support::pg::connect(&scratch.url);
        let copy = Catalog::from_postgres_read_only(client, scratch.name.clone()).expect("the PostgreSQL copy");
        assert_eq!(view(&copy), before, "the PostgreSQL copy answers like the source");
        drop(copy);
        let out = vidkeep(&["catalog", "copy", "--from", &from, "--to", &scratch.url]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    }
    assert_eq!(file_hashes(source), bytes_before, "the source catalogue was only read");
}
