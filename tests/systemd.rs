//! The systemd unit is hardened and valid: `systemd-analyze security --offline=yes` rates it at
//! most 2.0 and `systemd-analyze verify` has nothing to say. Skipped loudly where
//! `systemd-analyze` is missing, except in CI (`CI=true`), which installs it.

use std::path::Path;
use std::process::{Command, Output};

/// The highest exposure level accepted (systemd's scale: 0.0 best, 10.0 worst).
const MAX_EXPOSURE: f64 = 2.0;

fn analyze(args: &[&str]) -> Option<Output> {
    match Command::new("systemd-analyze").args(args).output() {
        Ok(output) => Some(output),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("systemd-analyze is required in CI (apt-get install systemd): {e}")
        }
        Err(e) => {
            eprintln!("\n!!! SKIPPED: systemd-analyze not found ({e}); the unit was NOT checked !!!\n");
            None
        }
    }
}

/// The unit with ExecStart pointing at the built binary (`verify` needs it to exist).
fn unit_copy(dir: &Path) -> std::path::PathBuf {
    let unit = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/vidkeep.service");
    let text = std::fs::read_to_string(unit).expect("read unit");
    assert!(text.contains("ExecStart=/usr/bin/vidkeep run"), "the unit runs the packaged binary");
    let path = dir.join("vidkeep.service");
    std::fs::write(&path, text.replace("/usr/bin/vidkeep", env!("CARGO_BIN_EXE_vidkeep"))).expect("write unit");
    path
}

#[test]
fn the_unit_is_hardened_to_an_exposure_of_two_or_less() {
    let dir = tempfile::tempdir().expect("tempdir");
    let unit = unit_copy(dir.path());
    let unit = unit.to_str().expect("utf-8 path");
    let Some(out) = analyze(&["security", "--offline=yes", "--no-pager", unit]) else { return };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.trim().is_empty(), "systemd-analyze security complained:\n{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no exposure level in:\n{stdout}"));
    let level: f64 = line
        .rsplit_once(": ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the level from {line:?}"));
    eprintln!("{line}");
    assert!(level <= MAX_EXPOSURE, "exposure {level} > {MAX_EXPOSURE}:\n{stdout}");
}

#[test]
fn the_unit_verifies_without_a_word() {
    let dir = tempfile::tempdir().expect("tempdir");
    let unit = unit_copy(dir.path());
    let Some(out) = analyze(&["verify", "--man=no", unit.to_str().expect("utf-8 path")]) else { return };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "systemd-analyze verify: {:?}\n{stderr}", out.status);
}

#[test]
fn the_stop_timeout_outlasts_the_drain_grace() {
    let unit = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/vidkeep.service"))
        .expect("read unit");
    let value = |key: &str| {
        unit.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .map(|v| humantime::parse_duration(v.trim()).unwrap_or_else(|e| panic!("{key}={v}: {e}")))
            .unwrap_or_else(|| panic!("{key} missing"))
    };
    let grace = vidkeep::config::Config::default().jobs.shutdown_grace;
    assert!(value("TimeoutStopSec") > grace, "TimeoutStopSec must outlast [jobs] shutdown_grace");
    assert!(value("WatchdogSec") >= std::time::Duration::from_secs(10));
    for key in ["Type=notify", "NotifyAccess=main", "ExecReload=/bin/kill -HUP $MAINPID", "Restart=on-failure"] {
        assert!(unit.lines().any(|l| l == key), "{key} missing");
    }
}

/// Runs a systemd tool, or returns `None` (loudly) where it is missing and this is not CI.
fn tool(name: &str, args: &[&str]) -> Option<Output> {
    match Command::new(name).args(args).output() {
        Ok(output) => Some(output),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => panic!("{name} is required in CI: {e}"),
        Err(e) => {
            eprintln!("\n!!! SKIPPED: {name} not found ({e}); sysusers/tmpfiles were NOT checked !!!\n");
            None
        }
    }
}

/// The id of `name` in a passwd or group file, and the member list (groups only).
fn entry(file: &Path, name: &str) -> (u32, String) {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let line = text
        .lines()
        .find(|l| l.split(':').next() == Some(name))
        .unwrap_or_else(|| panic!("{name} not in {}:\n{text}", file.display()));
    let fields: Vec<&str> = line.split(':').collect();
    (fields[2].parse().expect("numeric id"), fields.get(3).copied().unwrap_or("").to_owned())
}

#[test]
fn sysusers_and_tmpfiles_make_a_setgid_inbox_for_the_drop_group() {
    use std::os::unix::fs::MetadataExt as _;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("\n!!! SKIPPED: not root, so systemd-tmpfiles cannot chown; tmpfiles NOT checked !!!\n");
        return;
    }
    let root = tempfile::tempdir().expect("tempdir");
    let r = root.path();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    for (src, dest) in [
        ("systemd/vidkeep.sysusers", "usr/lib/sysusers.d/vidkeep.conf"),
        ("systemd/vidkeep.tmpfiles", "usr/lib/tmpfiles.d/vidkeep.conf"),
    ] {
        std::fs::create_dir_all(r.join(dest).parent().expect("parent")).expect("mkdir");
        std::fs::copy(repo.join(src), r.join(dest)).expect("copy");
    }
    std::fs::create_dir_all(r.join("etc")).expect("etc");
    let root_arg = format!("--root={}", r.display());
    let Some(out) = tool("systemd-sysusers", &[&root_arg, "vidkeep.conf"]) else { return };
    assert!(out.status.success(), "sysusers: {}", String::from_utf8_lossy(&out.stderr));
    let Some(out) = tool("systemd-tmpfiles", &["--create", &root_arg, "vidkeep.conf"]) else { return };
    assert!(out.status.success(), "tmpfiles: {}", String::from_utf8_lossy(&out.stderr));
    let (uid, _) = entry(&r.join("etc/passwd"), "vidkeep");
    let (gid, _) = entry(&r.join("etc/group"), "vidkeep");
    let (drop_gid, members) = entry(&r.join("etc/group"), "vidkeep-drop");
    assert!(members.split(',').any(|m| m == "vidkeep"), "vidkeep reads the drop group's files");
    let state = std::fs::metadata(r.join("var/lib/vidkeep")).expect("state dir");
    assert_eq!((state.mode() & 0o7777, state.uid(), state.gid()), (0o751, uid, gid), "state folder");
    let inbox = std::fs::metadata(r.join("var/lib/vidkeep/inbox")).expect("inbox");
    assert_eq!((inbox.mode() & 0o7777, inbox.uid(), inbox.gid()), (0o3770, uid, drop_gid), "inbox: setgid, sticky");
    for dir in ["inbox/processing", "inbox/done", "inbox/failed"] {
        let m = std::fs::metadata(r.join("var/lib/vidkeep").join(dir)).expect("inbox dir");
        assert_eq!((m.mode() & 0o7777, m.uid(), m.gid()), (0o2750, uid, drop_gid), "{dir}: vidkeep's, group reads");
    }
}
