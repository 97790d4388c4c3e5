//! Helpers shared by the sandbox's integration tests: running a test binary again as an
//! ordinary user, and finding processes on the host.

#![allow(dead_code)]

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// The uid/gid the root-run tests are repeated as.
pub const NOBODY: u32 = 65534;

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// When the tests run as root, runs this test binary again as uid/gid 65534 (every test but
/// `skip`), with `TMPDIR` and `HOME` in a directory that user owns, and asserts it passes.
/// Skipped (with a message) when not root or when `setpriv` is missing.
pub fn rerun_as_nobody(skip: &str) {
    if !is_root() {
        eprintln!("not root: these tests already ran as an ordinary user");
        return;
    }
    if Command::new("setpriv").arg("--version").output().is_err() {
        eprintln!("SKIPPED: setpriv is not installed; cannot repeat the tests as uid {NOBODY}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let tmp = dir.path().join("tmp");
    for d in [&home, &tmp] {
        std::fs::create_dir(d).unwrap();
    }
    for d in [dir.path(), &home, &tmp] {
        std::os::unix::fs::chown(d, Some(NOBODY), Some(NOBODY)).unwrap();
    }
    let exe = std::env::current_exe().unwrap();
    let out = Command::new("setpriv")
        .args([
            &format!("--reuid={NOBODY}"),
            &format!("--regid={NOBODY}"),
            "--clear-groups",
        ])
        .arg(&exe)
        .args(["--skip", skip, "--test-threads=2"])
        .env("TMPDIR", &tmp)
        .env("HOME", &home)
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the tests failed as uid {NOBODY}:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("test result: ok"),
        "no test ran as uid {NOBODY}:\n{stdout}\n{stderr}"
    );
    eprintln!(
        "as uid {NOBODY}: {}",
        stdout
            .lines()
            .filter(|l| l.starts_with("test result"))
            .collect::<Vec<_>>()
            .join(" ")
    );
}

/// Host pids of processes whose command line contains `marker`.
pub fn host_pids_with(marker: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(marker) && alive(pid) {
            out.push(pid);
        }
    }
    out
}

/// Whether `pid` is running (a zombie counts as dead).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !matches!(
            stat.rsplit(')')
                .next()
                .unwrap_or("")
                .split_whitespace()
                .next(),
            Some("Z") | Some("X")
        ),
        Err(_) => false,
    }
}

/// Polls `done` until it holds (true) or 20 s have passed (false): long enough for SIGKILL
/// delivery, reaping and exec on a loaded machine.
fn eventually(done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if done() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until no process with `marker` in its command line is left; false if some survived.
pub fn all_gone(marker: &str) -> bool {
    eventually(|| host_pids_with(marker).is_empty())
}

/// Waits until exactly one process carries `marker` (a background process may not have
/// exec'd its program yet when the command that started it returns).
pub fn one_running(marker: &str) -> bool {
    eventually(|| host_pids_with(marker).len() == 1)
}

/// Waits until `path` exists.
pub fn wait_for_file(path: &Path) -> bool {
    eventually(|| path.exists())
}

/// A marker unique to this test process and call site, for `sleep` arguments.
pub fn marker(tag: u32) -> String {
    format!(
        "{}.{:06}{:03}",
        1000 + tag,
        std::process::id() % 1_000_000,
        tag
    )
}

pub fn owner(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().uid()
}
