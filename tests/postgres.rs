//! The PostgreSQL catalogue's connection against a real server (see `support::pg`): the password
//! found through `PGPASSFILE`, a wrong one refused with a message naming the target and not the
//! password, `pg_trgm` ready for search, and TLS verified against `sslrootcert`. Under `CI=true`
//! a missing server fails, never skips.

use std::os::unix::fs::PermissionsExt as _;

use vidkeep::catalog::{PasswordSource, PgTarget};

use crate::support::pg::{self, TestDb};

#[test]
fn a_test_database_is_reached_with_the_password_from_pgpass() {
    let Some(db) = TestDb::new() else { return };
    let target = PgTarget::parse(&db.url, None).expect("parse");
    assert_eq!(Some(target.display().as_str()), db.url.split('?').next());
    if std::env::var_os("PGPASSWORD").is_none() {
        let found = target.password(|name| std::env::var(name).ok()).expect("password lookup");
        assert!(
            matches!(found, Some((_, PasswordSource::Pgpass(_)))),
            "the test server's password comes from PGPASSFILE, as scripts/pg-test-cluster.sh sets it"
        );
    }
    let mut client = target.connect().unwrap_or_else(|e| panic!("{e}"));
    let one: i32 = client.query_one("SELECT 1", &[]).expect("SELECT 1").get(0);
    assert_eq!(one, 1);
    let name: String = client.query_one("SELECT current_database()", &[]).expect("db").get(0);
    assert_eq!(name, db.name);
    let app: String = client.query_one("SHOW application_name", &[]).expect("app").get(0);
    assert_eq!(app, "vidkeep");
    // pg_trgm is installed, and finds Chinese prompts (the cluster's ctype is C.UTF-8).
    let similar: f32 =
        client.query_one("SELECT similarity('一只猫在月光下跳舞', '月光下跳舞')", &[]).expect("trgm").get(0);
    assert!(similar > 0.3, "pg_trgm similarity of Chinese text: {similar}");
}

#[test]
fn a_wrong_password_fails_naming_the_target_and_not_the_password() {
    let Some(db) = TestDb::new() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let wrong = format!("wr0ng-{:08x}", rand::random::<u32>());
    let file = dir.path().join("pg-password");
    std::fs::write(&file, format!("{wrong}\n")).expect("write");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let target = PgTarget::parse(&db.url, Some(&file)).expect("parse");
    let Err(e) = target.connect() else {
        panic!("{} let a wrong password in: the test server must use scram-sha-256 for host logins", target.display())
    };
    let text = format!("{e} {e:?}");
    assert_eq!(e.code(), "catalog-auth", "{text}");
    assert!(text.contains(&target.display()), "{text}");
    assert!(!text.contains(&wrong), "{text}");
    // A database that does not exist is a connect error naming it.
    let missing = PgTarget::parse(&db.url.replace(&db.name, "vk_test_missing"), None).expect("parse");
    let Err(e) = missing.connect() else { panic!("vk_test_missing exists") };
    assert_eq!(e.code(), "catalog-connect", "{e}");
    assert!(e.to_string().contains("vk_test_missing"), "{e}");
}

#[test]
fn tls_is_verified_against_sslrootcert_or_the_system_roots() {
    let Some(db) = TestDb::new() else { return };
    if !db.url.contains("sslrootcert=") {
        assert!(
            !std::env::var("CI").is_ok_and(|v| v == "true"),
            "the CI cluster speaks TLS: scripts/pg-test-cluster.sh needs openssl"
        );
        eprintln!("!!! SKIPPED: the test server's URL has no sslrootcert; TLS test not run");
        return;
    }
    let ssl_in_use = |client: &mut postgres::Client| -> bool {
        client.query_one("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[]).expect("pg_stat_ssl").get(0)
    };
    // verify-full with the cluster's CA.
    assert!(ssl_in_use(&mut pg::connect(&db.url)));
    // The system's roots do not know the test CA: refused with require and with prefer (no
    // fallback to plain text after a failed handshake), naming the target.
    let base = db.url.split('?').next().expect("url");
    for mode in ["require", "prefer"] {
        let target = PgTarget::parse(&format!("{base}?sslmode={mode}"), None).expect("parse");
        let Err(e) = target.connect() else { panic!("{mode}: an unknown CA was trusted") };
        let text = e.to_string();
        assert_eq!(e.code(), "catalog-connect", "{text}");
        assert!(text.contains(&target.display()) && text.contains("certificate"), "{text}");
    }
    // sslmode=disable: plain TCP.
    assert!(!ssl_in_use(&mut pg::connect(&format!("{base}?sslmode=disable"))));
}

#[tokio::test]
async fn a_test_database_works_from_async_tests() {
    let Some(db) = TestDb::new() else { return };
    let url = db.url.clone();
    let two: i32 = tokio::task::spawn_blocking(move || pg::connect(&url).query_one("SELECT 2", &[]).expect("q").get(0))
        .await
        .expect("join");
    assert_eq!(two, 2);
    drop(db);
}

/// The daemon end to end on a PostgreSQL catalogue: specs in (one in Chinese, one a repeat of a
/// paid request), results archived as served, "already paid" remembered, and the CLI's
/// listing, search (a two-character Chinese word too), `show`, `spend` and `verify` reading it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_archives_into_a_postgres_catalogue_and_every_command_reads_it() {
    use crate::support::{Env, assert_archived_as_served, fast_sim};
    let defaults = "[defaults]\nmodel = \"viduq1-text\"\n";
    let Some(mut env) = Env::on_postgres(fast_sim(), defaults, "60s").await else { return };
    env.drop_spec("fox.json", r#"{"prompt":"a red fox in the snow","vidkeep":{"tags":["winter"]}}"#);
    env.drop_spec("hare.txt", "一只白色的野兔在雪地里奔跑");
    env.start();
    let jobs = env.wait_all_ended(2).await;
    assert_archived_as_served(&env, &jobs);
    // The same request again: already paid for, not submitted.
    env.drop_spec("fox-again.json", r#"{"prompt":"a red fox in the snow","vidkeep":{"tags":["winter"]}}"#);
    let report = loop {
        let path = env.inbox().join("done/fox-again.json.report.json");
        if path.exists() {
            break std::fs::read_to_string(path).expect("report");
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(report.contains("already"), "{report}");
    assert_eq!(env.sim.stats().accepted, 2, "two requests paid for, once each");
    env.stop().await;

    let text = |args: &[&str]| {
        let out = env.cli(args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let listed: serde_json::Value = serde_json::from_str(&text(&["jobs", "--json"])).expect("json");
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{listed}");
    let ids = |out: String| -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(&out).expect("json");
        v.as_array().expect("array").iter().map(|j| j["spec"].as_str().unwrap_or_default().to_owned()).collect()
    };
    assert_eq!(ids(text(&["search", "FOX", "--json"])), ["fox.json"], "any case");
    assert_eq!(ids(text(&["search", "野兔", "--json"])), ["hare.txt"], "a two-character Chinese word");
    assert_eq!(ids(text(&["search", "雪地里", "--json"])), ["hare.txt"], "a three-character one, through pg_trgm");
    assert_eq!(ids(text(&["jobs", "--tag", "winter", "--json"])), ["fox.json"]);
    assert!(text(&["show", "fox.json"]).contains("archived"));
    assert!(text(&["spend"]).contains("5.00"), "two charges of 2.50");
    // `text` asserts the exit status: verify re-hashed every asset against the PostgreSQL rows.
    text(&["verify"]);

    // The catalogue UI, as `vidkeep serve` runs it on any machine: read-only, on PostgreSQL.
    let place = env.config.catalog.clone();
    let catalog = tokio::task::spawn_blocking(move || vidkeep::catalog::Catalog::open_config_read_only(&place))
        .await
        .expect("open")
        .expect("a read-only connection");
    let store = vidkeep::store::Store::open(&env.config.storage).expect("store");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let ui = format!("http://{}", listener.local_addr().expect("addr"));
    let routes = vidkeep::web::ui::routes(vidkeep::web::ui::UiState::new(catalog, store));
    tokio::spawn(async move { axum::serve(listener, routes).await });
    let page = |path: &str| {
        let url = format!("{ui}{path}");
        async move {
            let r = reqwest::get(&url).await.expect("request");
            assert!(r.status().is_success(), "{url}: {}", r.status());
            r.text().await.expect("body")
        }
    };
    let cards = |html: &str| html.matches("class=\"card\"").count();
    assert_eq!(cards(&page("/").await), 2);
    assert_eq!(cards(&page("/?q=%E9%87%8E%E5%85%94").await), 1, "野兔 in the grid's search");
    assert_eq!(cards(&page("/?tag=winter").await), 1);
    let fox = jobs.iter().find(|j| j.spec_name == "fox.json").expect("fox");
    assert!(page(&format!("/jobs/{}", fox.id)).await.contains("a red fox in the snow"));
    let api: serde_json::Value = serde_json::from_str(&page("/api/jobs").await).expect("json");
    assert_eq!(api["total"], 2);
    assert_eq!(page("/export.csv").await.lines().count(), 3, "a header and two jobs");
}
