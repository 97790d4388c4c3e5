#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step is a failed test
mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{assert_error, assert_ok, call, project, read, toolbox_for, write};
use serde_json::json;
use tools::FrozenFiles;

#[tokio::test]
async fn runs_command_and_reports_exit_code_and_streams() {
    let (dir, tb) = project();
    write(dir.path(), "hello.txt", "hi there\n");
    let out = call(
        &tb,
        "bash",
        json!({"command": "cat hello.txt && echo oops >&2 && exit 3"}),
    )
    .await;
    assert!(!out.is_error, "{out:#?}");
    assert_eq!(out.exit_code, Some(3));
    assert!(out.content.starts_with("exit code: 3\n"), "{}", out.content);
    assert!(
        out.content.contains("stdout:\nhi there\n"),
        "{}",
        out.content
    );
    assert!(out.content.contains("stderr:\noops\n"), "{}", out.content);
    assert!(
        out.summary.starts_with("bash: cat hello.txt"),
        "{}",
        out.summary
    );
    assert!(out.summary.ends_with("→ exit 3"), "{}", out.summary);
}

#[tokio::test]
async fn command_writes_inside_project() {
    let (dir, tb) = project();
    let out = call(
        &tb,
        "bash",
        json!({"command": "mkdir -p out && echo made > out/f.txt"}),
    )
    .await;
    assert_ok(&out);
    assert_eq!(out.exit_code, Some(0));
    assert_eq!(read(dir.path(), "out/f.txt"), "made\n");
}

#[tokio::test]
async fn policy_denial_is_a_tool_error_with_the_reason() {
    let (_dir, tb) = project();
    let out = call(&tb, "bash", json!({"command": "sudo ls"})).await;
    assert_error(&out, "refused by policy");
    assert!(out.content.contains("sudo"), "{}", out.content);
    assert_eq!(out.exit_code, None);
}

#[tokio::test]
async fn policy_deny_list_from_config_applies() {
    let dir = tempfile::tempdir().unwrap();
    let tb = toolbox_for(dir.path(), |c| c.policy.deny.push("ls".into()));
    let out = call(&tb, "bash", json!({"command": "ls"})).await;
    assert_error(&out, "refused by policy");
}

#[tokio::test]
async fn timeout_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let tb = toolbox_for(dir.path(), |c| c.max_timeout = Duration::from_secs(1));
    let out = call(
        &tb,
        "bash",
        json!({"command": "sleep 30", "timeout_secs": 5}),
    )
    .await;
    assert!(out.is_error, "{out:#?}");
    assert!(
        out.content.contains("timed out after 1 s"),
        "{}",
        out.content
    );
    assert!(
        out.content.contains("above the 1 s maximum"),
        "{}",
        out.content
    );
    assert_eq!(out.exit_code, None);
    assert!(out.summary.contains("timed out"), "{}", out.summary);
}

#[tokio::test]
async fn frozen_file_changed_by_command_is_restored_and_reported() {
    let (dir, tb) = project();
    let test = "def test_x():\n    assert f() == 1\n";
    write(dir.path(), "tests/test_x.py", test);
    let frozen = FrozenFiles::snapshot(tb.project(), &[PathBuf::from("tests/test_x.py")]).unwrap();
    tb.set_frozen(frozen).unwrap();

    let out = call(
        &tb,
        "bash",
        json!({"command": "echo 'def test_x(): pass' > tests/test_x.py"}),
    )
    .await;
    assert_eq!(out.frozen_restored, vec![PathBuf::from("tests/test_x.py")]);
    assert!(
        out.content
            .contains("the command modified frozen file tests/test_x.py; it has been restored"),
        "{}",
        out.content
    );
    assert!(
        out.summary.contains("restored 1 frozen file"),
        "{}",
        out.summary
    );
    assert_eq!(read(dir.path(), "tests/test_x.py"), test);

    let out = call(&tb, "bash", json!({"command": "rm tests/test_x.py"})).await;
    assert_eq!(out.frozen_restored.len(), 1);
    assert_eq!(read(dir.path(), "tests/test_x.py"), test);

    let out = call(&tb, "bash", json!({"command": "cat tests/test_x.py"})).await;
    assert!(out.frozen_restored.is_empty());
    assert!(!out.content.contains("frozen"), "{}", out.content);
}

#[tokio::test]
async fn empty_command_is_an_error() {
    let (_dir, tb) = project();
    let out = call(&tb, "bash", json!({"command": "   "})).await;
    assert_error(&out, "empty");
}

#[tokio::test]
async fn command_cannot_write_outside_the_project() {
    let (_dir, tb) = project();
    // Not under /tmp: in the run's world /tmp is the commands' own temp dir, where writing is
    // allowed (and the checkout itself may live under /tmp).
    let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let base = if base.starts_with("/tmp") {
        Path::new("/var/tmp")
    } else {
        base
    };
    let outside = tempfile::tempdir_in(base).unwrap();
    let target = outside.path().join("escaped.txt");

    // Caught by the policy: a redirection outside the project.
    let out = call(
        &tb,
        "bash",
        json!({"command": format!("echo x > {}", target.display())}),
    )
    .await;
    assert_error(&out, "refused by policy");

    // Not visible to the policy (the path is inside a program's own code): caught by the
    // kernel — the directory is not in the world's view (or, in fallback mode, Landlock
    // refuses the write).
    let script = format!("open(\"{}\", \"w\").write(\"x\")", target.display());
    let out = call(
        &tb,
        "bash",
        json!({"command": format!("python3 -c '{script}'")}),
    )
    .await;
    assert!(!out.is_error, "{out:#?}");
    assert_ne!(out.exit_code, Some(0), "{}", out.content);
    assert!(
        out.content.contains("FileNotFoundError") || out.content.contains("PermissionError"),
        "{}",
        out.content
    );
    assert!(!target.exists());
}
