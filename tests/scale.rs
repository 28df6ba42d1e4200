//! Past one daemon (issue 12): what several daemons may and may not share.

use std::time::{Duration, Instant};

use vidkeep::sim::SimConfig;

use crate::support::Env;

/// Two `vidkeep run` on one SQLite catalogue used to fight over its jobs ("database is locked",
/// then "job … is archived, not downloading") and the second one's start deleted the first
/// one's uploads in flight. Now the second is refused before it touches anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_daemon_on_one_sqlite_catalogue_is_refused_before_it_touches_anything() {
    let mut env = Env::default().await;
    env.start();
    env.drop_spec("first.txt", "a harbour at dawn");
    env.wait_all_ended(1).await;
    // An upload of the running daemon, in flight: the second start must leave it alone.
    let staging = env.archive_dir().join(".staging");
    std::fs::create_dir_all(&staging).expect("staging");
    let in_flight = staging.join("an-upload-in-flight");
    std::fs::write(&in_flight, b"half a video").expect("upload in flight");

    let mut second = std::process::Command::new(env!("CARGO_BIN_EXE_vidkeep"))
        .args(["run", "--config"])
        .arg(&env.config_path)
        .env("VIDKEEP_TEST_KEY_UNUSED", SimConfig::default().api_key)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start a second daemon");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = second.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = second.kill();
            let out = second.wait_with_output().expect("output");
            panic!(
                "the second daemon ran beside the first: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let out = second.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(status.code(), Some(2), "could not run: {stderr}");
    assert!(stderr.contains("another vidkeep daemon"), "{stderr}");
    assert!(stderr.contains(&format!("(pid {})", std::process::id())), "names the holder: {stderr}");
    assert!(stderr.contains("catalog.sqlite"), "names the catalogue: {stderr}");
    assert!(in_flight.exists(), "the running daemon's upload is untouched");
    env.assert_daemon_alive().await;

    // Once the first stops, the catalogue is free again.
    env.stop().await;
    env.start();
    env.drop_spec("second.txt", "a lighthouse at dusk");
    env.wait_all_ended(2).await;
    env.stop().await;
}

/// Daemons of several inboxes may share one storage root: each start cleans only its own
/// staging area (and loose leftovers of older versions), and stages its uploads there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_cleans_only_its_own_staging_area() {
    let mut env = Env::default().await;
    let staging = env.archive_dir().join(".staging");
    let own = vidkeep::domain::DaemonId::for_inbox(env.inbox());
    for (folder, file) in [(own.as_str(), "left-by-my-last-stop"), ("another-daemon-0a1b2c3d", "in-flight")] {
        std::fs::create_dir_all(staging.join(folder)).expect("mkdir");
        std::fs::write(staging.join(folder).join(file), b"part of a video").expect("write");
    }
    std::fs::write(staging.join("left-by-an-older-vidkeep"), b"x").expect("write");
    env.start();
    env.drop_spec("a.txt", "a harbour at dawn");
    env.wait_all_ended(1).await;
    assert!(!staging.join(own.as_str()).join("left-by-my-last-stop").exists(), "its own leftovers go");
    assert!(!staging.join("left-by-an-older-vidkeep").exists(), "loose leftovers go");
    assert!(staging.join("another-daemon-0a1b2c3d/in-flight").exists(), "another daemon's upload stays");
    env.stop().await;
}
