//! How fast the catalogue UI answers with 100,000 jobs: the grid's first page, a deep page, a
//! full-text search, a filtered search and the JSON API, each timed over loopback HTTP
//! (median and p95 of 30 requests), on a real SQLite file made by the real schema.
//!
//! `cargo bench --bench catalog` (release build). Results go in BENCHMARKS.md.

use std::time::{Duration, Instant};

use rusqlite::params;
use vidkeep::catalog::Catalog;
use vidkeep::store::Store;
use vidkeep::web::ui::{UiState, routes};

const JOBS: usize = 100_000;
const RUNS: usize = 30;

const WORDS: &[&str] = &[
    "fox", "lantern", "harbour", "city", "snow", "river", "dawn", "neon", "forest", "robot", "dragon", "ocean",
    "mountain", "festival", "rain", "train", "灯笼", "河面", "城市", "夜晚", "雪山", "森林",
];
const MODELS: &[&str] = &["viduq1-text", "viduq1-image", "viduq1-start-end", "vidu2-image", "cogvideox-3"];

fn main() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("catalog.sqlite");
    drop(Catalog::open(&path).expect("create the schema"));
    let started = Instant::now();
    fill(&path);
    println!("filled {JOBS} jobs in {:.1} s", started.elapsed().as_secs_f64());

    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let storage = vidkeep::config::StorageConfig {
            url: format!("file://{}", dir.path().join("archive").display()),
            ..vidkeep::config::StorageConfig::default()
        };
        let store = Store::open(&storage).expect("store");
        let ui = UiState::new(Catalog::open_read_only(&path).expect("reader"), store);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let origin = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, routes(ui)).await });
        let http = reqwest::Client::new();
        println!("{:<44} {:>10} {:>10} {:>8}", "request", "median ms", "p95 ms", "jobs");
        for (name, query) in [
            ("grid, first page", "/"),
            ("grid, page 2000", "/?page=2000"),
            ("search one word (fox)", "/?q=fox"),
            ("search two words (snow river)", "/?q=snow+river"),
            ("search Chinese, 2 characters (灯笼)", "/?q=%E7%81%AF%E7%AC%BC"),
            ("search + model + state filters", "/?q=lantern&model=viduq1-text&state=archived"),
            ("project + tag filters", "/?project=p7&tag=t3"),
            ("JSON API, search", "/api/jobs?q=dragon"),
        ] {
            let url = format!("{origin}{query}");
            let mut times = Vec::with_capacity(RUNS);
            let mut found = String::new();
            for _ in 0..RUNS {
                let t = Instant::now();
                let body = http.get(&url).send().await.expect("get").text().await.expect("body");
                times.push(t.elapsed());
                found = count(&body);
            }
            times.sort();
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            println!("{name:<44} {:>10.1} {:>10.1} {found:>8}", ms(times[RUNS / 2]), ms(times[RUNS * 95 / 100]));
        }
    });
}

/// The total a page or the API reports.
fn count(body: &str) -> String {
    if let Some(i) = body.find(" job(s)") {
        let start = body[..i].rfind('>').map_or(0, |p| p + 1);
        return body[start..i].trim().to_owned();
    }
    serde_json::from_str::<serde_json::Value>(body).map(|v| v["total"].to_string()).unwrap_or_default()
}

/// Synthetic jobs, archived with a video and a cover each, in one transaction.
fn fill(path: &std::path::Path) {
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
        for i in 0..JOBS {
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
