//! Confined execution: timeouts kill the group, output stays capped, confinement holds — in a
//! world (the default) and in fallback mode (`NamespaceMode::Off`).
//!
//! Run as root, every test here runs again as uid 65534 (`as_an_ordinary_user`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use sandbox::{NamespaceMode, Sandbox, SandboxConfig, SandboxMode};

fn sandbox(mode: SandboxMode, cap: usize) -> (tempfile::TempDir, Sandbox) {
    sandbox_in(mode, NamespaceMode::Auto, cap)
}

fn fallback(cap: usize) -> (tempfile::TempDir, Sandbox) {
    sandbox_in(SandboxMode::On, NamespaceMode::Off, cap)
}

fn sandbox_in(
    mode: SandboxMode,
    namespaces: NamespaceMode,
    cap: usize,
) -> (tempfile::TempDir, Sandbox) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = SandboxConfig::new(dir.path());
    config.mode = mode;
    config.namespaces = namespaces;
    config.output_cap_bytes = cap;
    let sb = Sandbox::new(config).unwrap();
    (dir, sb)
}

#[test]
fn as_an_ordinary_user() {
    support::rerun_as_nobody("as_an_ordinary_user");
}

#[tokio::test]
async fn runs_in_the_project_with_exit_code_and_output() {
    let (dir, sb) = sandbox(SandboxMode::On, 64 * 1024);
    let out = sb
        .run(
            "pwd; echo err >&2; touch made.txt; exit 3",
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    assert_eq!(out.exit_code, Some(3));
    assert_eq!(
        out.stdout.trim(),
        dir.path().canonicalize().unwrap().to_str().unwrap()
    );
    assert_eq!(out.stderr, "err\n");
    assert!(!out.timed_out && !out.truncated);
    assert!(dir.path().join("made.txt").exists());
}

#[tokio::test]
async fn tmpdir_is_private_and_writable_in_fallback_mode() {
    let (_dir, sb) = fallback(64 * 1024);
    let out = sb
        .run(
            "echo hi > \"$TMPDIR/x\" && cat \"$TMPDIR/x\" && echo \"$TMPDIR\"",
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    assert_eq!(out.exit_code, Some(0), "{out:?}");
    assert!(out.stdout.starts_with("hi\n"));
    assert!(out.stdout.contains(sb.temp_dir().to_str().unwrap()));
    // /tmp itself is not writable.
    let out = sb
        .run(
            "echo x > /tmp/loopwright-escape-test",
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    assert_ne!(out.exit_code, Some(0));
    assert!(!std::path::Path::new("/tmp/loopwright-escape-test").exists());
}

/// In a world `/tmp` is the private temp dir (see also `tests/world.rs`).
#[tokio::test]
async fn tmpdir_is_private_and_writable_in_a_world() {
    let (_dir, sb) = sandbox(SandboxMode::On, 64 * 1024);
    let out = sb
        .run(
            "echo hi > \"$TMPDIR/x\" && cat \"$TMPDIR/x\" && echo \"$TMPDIR\" && echo x > /tmp/loopwright-escape-test",
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    assert_eq!(out.stdout, "hi\n/tmp\n", "{out:?}");
    assert!(sb.temp_dir().join("x").exists());
    assert!(sb.temp_dir().join("loopwright-escape-test").exists());
    assert!(!std::path::Path::new("/tmp/loopwright-escape-test").exists());
}

fn pid_alive(pid: i32) -> bool {
    // A zombie is dead for our purposes; it is reaped by init.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

async fn timeout_kills_grandchildren(mode: SandboxMode, namespaces: NamespaceMode, tag: u32) {
    let (_dir, sb) = sandbox_in(mode, namespaces, 64 * 1024);
    // Found on the host by a marker in their command line: in a world, `$!` is a pid of the
    // world's pid namespace.
    let m = support::marker(tag);
    let out = sb
        .run(
            &format!("sleep {m} & echo started; bash -c 'sleep {m}' & wait"),
            Duration::from_secs(3),
        )
        .await
        .unwrap();
    assert!(out.timed_out);
    assert_eq!(out.exit_code, None);
    assert_eq!(out.signal, Some(9));
    assert!(out.stdout.contains("started"), "{out:?}");
    assert!(support::all_gone(&m), "a grandchild survived the timeout");
}

#[tokio::test]
async fn timeout_kills_the_process_group_in_a_world() {
    timeout_kills_grandchildren(SandboxMode::On, NamespaceMode::Auto, 11).await;
}

#[tokio::test]
async fn timeout_kills_the_process_group_in_fallback_mode() {
    timeout_kills_grandchildren(SandboxMode::On, NamespaceMode::Off, 12).await;
}

#[tokio::test]
async fn timeout_kills_the_process_group_unsandboxed() {
    timeout_kills_grandchildren(SandboxMode::Off, NamespaceMode::Auto, 13).await;
}

/// In fallback mode nothing bounds a background process but its command's process group; in a
/// world it lives until the session ends (`tests/world.rs`).
#[tokio::test]
async fn background_processes_die_when_the_command_ends_in_fallback_mode() {
    let (dir, sb) = fallback(64 * 1024);
    let out = sb
        .run(
            "sleep 1000 > /dev/null 2>&1 & echo $! > bg.pid",
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    assert_eq!(out.exit_code, Some(0));
    let pid: i32 = std::fs::read_to_string(dir.path().join("bg.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    for _ in 0..100 {
        if !pid_alive(pid) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!pid_alive(pid));
}

fn vm_hwm_kb() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test]
async fn fifty_megabytes_of_output_stay_capped() {
    let cap = 64 * 1024;
    let (_dir, sb) = sandbox(SandboxMode::On, cap);
    let before = vm_hwm_kb();
    let out = sb
        .run(
            "head -c 52428800 /dev/zero | tr '\\0' a; echo; echo THE-END",
            Duration::from_secs(120),
        )
        .await
        .unwrap();
    let after = vm_hwm_kb();
    assert_eq!(out.exit_code, Some(0));
    assert!(out.truncated);
    let total = 52_428_800 + 1 + 8;
    let elided = total - cap;
    let marker = format!("\n[... {elided} bytes elided ...]\n");
    assert!(out.stdout.contains(&marker), "marker missing");
    assert!(out.stdout.len() <= cap + marker.len());
    assert!(out.stdout.starts_with("aaaa"));
    assert!(out.stdout.ends_with("\nTHE-END\n"));
    assert!(
        after.saturating_sub(before) < 40 * 1024,
        "peak RSS grew by {} KiB",
        after - before
    );
}

#[tokio::test]
async fn stderr_is_capped_separately() {
    let (_dir, sb) = sandbox(SandboxMode::Off, 1000);
    let out = sb
        .run("seq 1 10000 >&2; echo small", Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(out.stdout, "small\n");
    assert!(out.truncated);
    assert!(out.stderr.starts_with("1\n2\n3\n"));
    assert!(out.stderr.ends_with("9999\n10000\n"));
    assert!(out.stderr.contains("bytes elided"));
}

#[tokio::test]
async fn off_mode_scrubs_env_but_does_not_confine() {
    std::env::set_var("OFFMODE_TEST_API_KEY", "sk-offmode");
    let (dir, sb) = sandbox(SandboxMode::Off, 64 * 1024);
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("written");
    let out = sb
        .run(
            &format!("env; echo x > {}", target.display()),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    assert!(!out.stdout.contains("sk-offmode"));
    assert!(target.exists(), "Off mode should not confine writes");
    drop(dir);
}
