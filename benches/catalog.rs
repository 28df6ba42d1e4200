//! How fast the catalogue UI answers at scale: the grid's first page, a deep page, full-text
//! searches, filtered searches, the JSON API and the change stamp, each timed over loopback HTTP
//! (min / median / max of `RUNS` requests), plus the catalogue calls behind them (the change
//! stamp, the facet counts), on a real SQLite file made by the real schema.
//!
//! `cargo bench --bench catalog` (release build), 100,000 jobs; `VIDKEEP_BENCH_JOBS=1000000` for
//! a million. The filled catalogue is kept in `target/bench-catalog/` and reused by later runs
//! (and by `bench/catalog_scale.sh`, which times `export` and daemon start-up on it).
//! `VIDKEEP_BENCH_RUNS` sets the requests per kind (default 30). Results go in BENCHMARKS.md.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::params;
use vidkeep::catalog::{Catalog, JobFilter};
use vidkeep::store::Store;
use vidkeep::web::ui::{UiState, routes};

/// Changes whenever `fill` makes different data, so an older cached file is not reused.
const FILL_VERSION: u32 = 1;

const WORDS: &[&str] = &[
    "fox", "lantern", "harbour", "city", "snow", "river", "dawn", "neon", "forest", "robot", "dragon", "ocean",
    "mountain", "festival", "rain", "train", "灯笼", "河面", "城市", "夜晚", "雪山", "森林",
];
const MODELS: &[&str] = &["viduq1-text", "viduq1-image", "viduq1-start-end", "vidu2-image", "cogvideox-3"];
const PAGE: usize = 24;

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.replace('_', "").parse().ok()).unwrap_or(default)
}

/// The cached catalogue of `jobs` jobs, filled now if it is not there yet.
fn catalogue(jobs: usize) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"), PathBuf::from);
    let dir = target.join("bench-catalog");
    std::fs::create_dir_all(&dir).expect("bench dir");
    let path = dir.join(format!("jobs-{jobs}-v{FILL_VERSION}.sqlite"));
    if path.exists() {
        println!("reusing {}", path.display());
    } else {
        let partial = dir.join(format!("jobs-{jobs}-v{FILL_VERSION}.partial.sqlite"));
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", partial.display()));
        }
        drop(Catalog::open(&partial).expect("create the schema"));
        let started = Instant::now();
        fill(&partial, jobs);
        std::fs::rename(&partial, &path).expect("keep the filled catalogue");
        println!("filled {jobs} jobs in {:.1} s into {}", started.elapsed().as_secs_f64(), path.display());
    }
    // A reader opens the schema as it is now (the file may predate a migration).
    drop(Catalog::open(&path).expect("migrate"));
    path
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// min / median / max of `times`, in ms.
fn spread(mut times: Vec<Duration>) -> (f64, f64, f64) {
    times.sort();
    (ms(times[0]), ms(times[times.len() / 2]), ms(times[times.len() - 1]))
}

fn main() {
    let jobs = env_number("VIDKEEP_BENCH_JOBS", 100_000);
    let runs = env_number("VIDKEEP_BENCH_RUNS", 30).max(1);
    let path = catalogue(jobs);
    let dir = tempfile::tempdir().expect("tempdir");
    // The id of the entry just before a page deep in the grid, for a keyset link to it.
    let deep = {
        let c = Catalog::open_read_only(&path).expect("reader");
        let offset = (jobs / 2).min(48_000);
        let all = c
            .jobs(&JobFilter { newest_first: true, limit: Some(1), offset: offset - 1, ..JobFilter::default() })
            .expect("deep job");
        all[0].id.clone()
    };
    println!("{jobs} jobs, {runs} runs per kind; min / median / max ms");

    direct(&path, runs);

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let storage = vidkeep::config::StorageConfig {
            url: format!("file://{}", dir.path().join("archive").display()),
            ..vidkeep::config::StorageConfig::default()
        };
        let store = Store::open(&storage).expect("store");
        // As `serve` and the daemon read: up to `UI_READERS` connections.
        let more = path.clone();
        let ui = UiState::new(Catalog::open_read_only(&path).expect("reader"), store)
            .with_readers(vidkeep::web::ui::UI_READERS, move || Catalog::open_read_only(&more));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let origin = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, routes(ui)).await });
        let http = reqwest::Client::new();
        let deep_page = 48_000.min(jobs / 2) / PAGE + 1;
        println!("{:<46} {:>8} {:>8} {:>8}  jobs", "request", "min", "median", "max");
        for (name, query) in [
            ("grid, first page".to_owned(), "/".to_owned()),
            (format!("grid, ?page={deep_page}"), format!("/?page={deep_page}")),
            ("grid, deep page by keyset (?after=)".to_owned(), format!("/?after={deep}")),
            ("search one word (fox)".to_owned(), "/?q=fox".to_owned()),
            ("search two words (snow river)".to_owned(), "/?q=snow+river".to_owned()),
            ("search Chinese, 2 characters (灯笼)".to_owned(), "/?q=%E7%81%AF%E7%AC%BC".to_owned()),
            ("search + model + state filters".to_owned(), "/?q=lantern&model=viduq1-text&state=archived".to_owned()),
            ("project + tag filters".to_owned(), "/?project=p7&tag=t3".to_owned()),
            ("grid sorted by model".to_owned(), "/?sort=model".to_owned()),
            ("grid sorted by project".to_owned(), "/?sort=project".to_owned()),
            ("tag filter, a tenth of all jobs (t3)".to_owned(), "/?tag=t3".to_owned()),
            ("project filter (p7)".to_owned(), "/?project=p7".to_owned()),
            ("JSON API, search (dragon)".to_owned(), "/api/jobs?q=dragon".to_owned()),
            ("JSON API, two words (snow river)".to_owned(), "/api/jobs?q=snow+river".to_owned()),
            ("change stamp (/api/stamp)".to_owned(), "/api/stamp".to_owned()),
        ] {
            let url = format!("{origin}{query}");
            let mut times = Vec::with_capacity(runs);
            let mut found = String::new();
            for _ in 0..runs {
                let t = Instant::now();
                let response = http.get(&url).send().await.expect("get");
                assert!(response.status().is_success(), "{url}: {}", response.status());
                let body = response.text().await.expect("body");
                times.push(t.elapsed());
                found = count(&body);
            }
            let (min, median, max) = spread(times);
            println!("{name:<46} {min:>8.1} {median:>8.1} {max:>8.1}  {found}");
        }
    });
}

/// The catalogue calls behind the pages, timed without HTTP.
fn direct(path: &Path, runs: usize) {
    let c = Catalog::open_read_only(path).expect("reader");
    let fox = JobFilter { text: Some("fox".into()), ..JobFilter::default() };
    let p7_t3 = JobFilter { project: Some("p7".into()), tag: Some("t3".into()), ..JobFilter::default() };
    type Call<'a> = Box<dyn Fn() -> String + 'a>;
    let calls: Vec<(&str, Call<'_>)> = vec![
        ("catalogue: change stamp", Box::new(|| format!("{:?}", c.change_stamp().expect("stamp")))),
        ("catalogue: facet counts, no filter", Box::new(|| facets(&c, &JobFilter::default()))),
        ("catalogue: facet counts, search fox", Box::new(|| facets(&c, &fox))),
        ("catalogue: facet counts, project + tag", Box::new(|| facets(&c, &p7_t3))),
    ];
    println!("{:<46} {:>8} {:>8} {:>8}", "call", "min", "median", "max");
    for (name, call) in calls {
        let mut times = Vec::with_capacity(runs);
        let mut shown = String::new();
        for _ in 0..runs {
            let t = Instant::now();
            shown = call();
            times.push(t.elapsed());
        }
        let (min, median, max) = spread(times);
        println!("{name:<46} {min:>8.1} {median:>8.1} {max:>8.1}  {shown}");
    }
}

fn facets(c: &Catalog, filter: &JobFilter) -> String {
    let f = c.facet_counts(filter).expect("facets");
    format!("{} models, {} projects, {} tags", f.models.len(), f.projects.len(), f.tags.len())
}

/// The total a page or the API reports.
fn count(body: &str) -> String {
    if let Some(i) = body.find(" job(s)") {
        let start = body[..i].rfind('>').map_or(0, |p| p + 1);
        return body[start..i].trim().to_owned();
    }
    serde_json::from_str::<serde_json::Value>(body)
        .map(|v| if v["stamp"].is_null() { v["total"].to_string() } else { v["stamp"].to_string() })
        .unwrap_or_default()
}

/// Synthetic jobs, archived with a video and a cover each, in one transaction.
fn fill(path: &Path, jobs: usize) {
    let mut conn = rusqlite::Connection::open(path).expect("open");
    let tx = conn.transaction().expect("begin");
    {
        let mut job = tx
            .prepare(
                "INSERT INTO jobs (id, spec_name, spec_file, spec_place, spec_sha256, spec_format, fingerprint, model, \
                 prompt, name, project, tags, request_display, price_fen, state, attempts, task_id, video_url, \
                 created_at, submitted_at, archived_at, finished_at, updated_at) \
                 VALUES (?1, ?2, ?2, 'done', '', 'json', '', ?3, ?4, NULL, ?5, ?6, '{}', 250, 'archived', 1, ?7, \
                 'http://x/v.mp4', ?8, ?8, ?8, ?8, ?8)",
            )
            .expect("prepare");
        let mut asset = tx
            .prepare(
                "INSERT INTO assets (job_id, kind, key, sha256, bytes, content_type, source_url, stored_at) \
                 VALUES (?1, ?2, ?3, ?4, 5000000, ?5, 'http://x', ?6)",
            )
            .expect("prepare");
        let mut seed: u64 = 42;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for i in 0..jobs {
            let words: Vec<&str> = (0..8).map(|_| WORDS[(next() as usize) % WORDS.len()]).collect();
            let prompt = format!(
                "A {} scene with {} at {}, {}",
                words[0],
                words[1..4].join(" and "),
                words[4],
                words[5..].join(" ")
            );
            let id = format!("{i:08x}-0000-7000-8000-000000000000");
            let created = 1_700_000_000_000_i64 + i as i64 * 60_000;
            let tags = format!("[\"t{}\",\"t{}\"]", next() % 20, next() % 20);
            let model = MODELS[(next() as usize) % MODELS.len()];
            job.execute(params![
                id,
                format!("spec-{i}.json"),
                model,
                prompt,
                format!("p{}", next() % 50),
                tags,
                format!("task-{i}"),
                created
            ])
            .expect("job");
            for (kind, file, mime) in [("video", "video.mp4", "video/mp4"), ("cover", "cover.jpg", "image/jpeg")] {
                let key = format!("2023/11/14/{id}/{file}");
                let sha = format!("{:016x}{:016x}{:016x}{:016x}", next(), next(), next(), i);
                asset.execute(params![id, kind, key, sha, mime, created]).expect("asset");
            }
        }
    }
    tx.commit().expect("commit");
    conn.execute_batch("ANALYZE; PRAGMA wal_checkpoint(TRUNCATE);").expect("analyze");
}
