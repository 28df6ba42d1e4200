//! The platform's official Python SDK (`zai-sdk` 0.2.3) as a client: `tests/sdk/test_sdk.py`
//! drives `vidkeep simulate` with it, and vidkeep's own client is held to the requests it
//! recorded (`tests/sdk/fixtures/`): the same fields for the same spec, ordering and nulls aside.
//!
//! The script needs a Python with the SDK: `$VIDKEEP_SDK_PYTHON` (`.ci/run` installs `zai-sdk`
//! into its venv and sets it), else `python3`. Without it the test fails under `CI=true` and
//! otherwise prints a loud skip line.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::{Map, Value};
use vidkeep::api::ApiClient;
use vidkeep::secret::Secret;
use vidkeep::sim::{self, SimConfig};
use vidkeep::spec::{self, SpecContext};

use crate::support::fast_sim;

const KEY: &str = "sim-key.sim-secret";

fn sdk_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sdk")
}

fn fixture(kind: &str) -> Value {
    let path = sdk_dir().join("fixtures").join(format!("{kind}.json"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("fixture is JSON")
}

fn object(text: &str) -> Map<String, Value> {
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => map,
        other => panic!("not a JSON object: {other:?}"),
    }
}

#[test]
fn the_official_sdk_drives_the_simulator() {
    let python = std::env::var("VIDKEEP_SDK_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let has_sdk = Command::new(&python).args(["-c", "import zai"]).output().is_ok_and(|o| o.status.success());
    if !has_sdk {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("CI=true but `{python}` has no zai-sdk: set VIDKEEP_SDK_PYTHON (see .ci/run)");
        }
        eprintln!("!!! SKIPPED: `{python}` cannot import zai (pip install zai-sdk==0.2.3); SDK suite not run");
        return;
    }
    let out = Command::new(&python)
        .arg(sdk_dir().join("test_sdk.py"))
        .args(["--vidkeep", env!("CARGO_BIN_EXE_vidkeep")])
        .output()
        .expect("run the SDK suite");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(out.status.success(), "the SDK suite failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.lines().any(|l| l.ends_with(" passed, 0 failed")), "{stdout}");
}

/// For each request the SDK made, the same body as a spec (nulls and all, as a studio would paste
/// it from an SDK log), sent by vidkeep's client: the simulator receives the SDK's fields with
/// the nulls dropped and vidkeep's `request_id` added, and the key in the SDK's default form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vidkeep_sends_the_fields_the_sdk_sends_for_the_same_spec() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("requests.jsonl");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let sim = sim::start(SimConfig { request_log: Some(log.clone()), ..fast_sim() }, listener).await.expect("sim");
    let client = ApiClient::new(&sim.base_url(), Secret::new(KEY.to_owned()), Duration::from_secs(10)).expect("client");
    std::fs::copy(sdk_dir().join("fixtures/frame.png"), dir.path().join("frame.png")).expect("copy frame");
    let defaults = Map::new();
    let ctx = SpecContext { defaults: &defaults, spec_dir: dir.path(), inbox: dir.path() };
    let logged = || -> Vec<Value> {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        text.lines().map(|l| serde_json::from_str(l).expect("log line")).collect()
    };

    let mut task_id = None;
    for kind in ["text", "image-url", "image-data-uri", "start-end", "cogvideox-3", "jwt"] {
        let sdk = fixture(kind);
        let sdk_body = object(sdk["body"].as_str().expect("body text"));
        let mut spec_body = sdk_body.clone();
        if kind == "image-data-uri" {
            // The spec names the file; vidkeep must inline it into the SDK's exact data URI.
            spec_body.insert("image_url".to_owned(), Value::String("frame.png".to_owned()));
        }
        let text = Value::Object(spec_body).to_string();
        let spec =
            spec::parse(&format!("{kind}.json"), text.as_bytes(), &ctx).unwrap_or_else(|e| panic!("{kind}: {e}"));
        let request_id = format!("vk-{kind}-1");
        let accepted = client.submit(&spec.request, &request_id).await.unwrap_or_else(|e| panic!("{kind}: {e}"));
        task_id.get_or_insert(accepted.task_id);

        let sent = logged().pop().expect("a logged request");
        let mut expected: Map<String, Value> = sdk_body.into_iter().filter(|(_, v)| !v.is_null()).collect();
        expected.insert("request_id".to_owned(), Value::String(request_id));
        assert_eq!(Value::Object(object(sent["body"].as_str().expect("body"))), Value::Object(expected), "{kind}");
        assert_eq!((&sent["method"], &sent["path"]), (&sdk["method"], &sdk["path"]), "{kind}");
        let auth = &sent["headers"]["authorization"];
        assert_eq!(
            auth,
            &serde_json::json!({"scheme": "Bearer", "form": "api-key"}),
            "{kind}: the raw key, as the SDK's default"
        );
    }

    let retrieve = fixture("retrieve");
    let id = task_id.expect("a task");
    client.poll(&id).await.expect("poll");
    let sent = logged().pop().expect("the poll");
    let want = retrieve["path"].as_str().expect("path").replace("{id}", &id);
    assert_eq!((sent["method"].as_str(), sent["path"].as_str()), (Some("GET"), Some(want.as_str())));
    assert_eq!(sent["headers"]["authorization"], retrieve["headers"]["authorization"]);
    sim.shutdown().await;
}
