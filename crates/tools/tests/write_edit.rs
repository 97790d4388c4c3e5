#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step is a failed test
mod common;

use common::{assert_error, assert_ok, call, project, read, toolbox_for, write};
use serde_json::json;

#[tokio::test]
async fn write_creates_parent_dirs_and_reports() {
    let (dir, tb) = project();
    let out = call(
        &tb,
        "write_file",
        json!({"path": "src/pkg/mod.py", "content": "x = 1\ny = 2\n"}),
    )
    .await;
    assert_ok(&out);
    assert_eq!(read(dir.path(), "src/pkg/mod.py"), "x = 1\ny = 2\n");
    assert!(
        out.content.starts_with("created src/pkg/mod.py"),
        "{}",
        out.content
    );
    assert!(out.content.contains("2 lines"));

    let out = call(
        &tb,
        "write_file",
        json!({"path": "src/pkg/mod.py", "content": "z = 3\n"}),
    )
    .await;
    assert_ok(&out);
    assert!(out.content.starts_with("overwrote"), "{}", out.content);
    assert_eq!(read(dir.path(), "src/pkg/mod.py"), "z = 3\n");
    // No temp files left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path().join("src/pkg"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1, "{names:?}");
}

#[cfg(unix)]
#[tokio::test]
async fn write_keeps_permissions_of_existing_file() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, tb) = project();
    write(dir.path(), "run.sh", "echo hi\n");
    let path = dir.path().join("run.sh");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = call(
        &tb,
        "write_file",
        json!({"path": "run.sh", "content": "echo bye\n"}),
    )
    .await;
    assert_ok(&out);
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o755);
    let out = call(
        &tb,
        "write_file",
        json!({"path": "new.txt", "content": "n"}),
    )
    .await;
    assert_ok(&out);
    let mode = std::fs::metadata(dir.path().join("new.txt"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o644);
}

#[tokio::test]
async fn write_refuses_escapes() {
    let (dir, tb) = project();
    let outside = tempfile::tempdir().unwrap();
    let name = outside.path().file_name().unwrap().to_str().unwrap();

    let out = call(
        &tb,
        "write_file",
        json!({"path": format!("../{name}/evil.txt"), "content": "x"}),
    )
    .await;
    assert!(out.is_error, "{out:?}");
    let abs = outside.path().join("evil2.txt");
    let out = call(
        &tb,
        "write_file",
        json!({"path": abs.to_str().unwrap(), "content": "x"}),
    )
    .await;
    assert_error(&out, "outside the project");

    std::os::unix::fs::symlink(outside.path(), dir.path().join("out")).unwrap();
    let out = call(
        &tb,
        "write_file",
        json!({"path": "out/evil3.txt", "content": "x"}),
    )
    .await;
    assert_error(&out, "outside the project");

    assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn write_refuses_protected_paths() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "feature_list.json", "[]");
    let tb = toolbox_for(dir.path(), |c| c.protected.push("feature_list.json".into()));
    let out = call(
        &tb,
        "write_file",
        json!({"path": "feature_list.json", "content": "[{}]"}),
    )
    .await;
    assert_error(&out, "protected");
    assert_eq!(read(dir.path(), "feature_list.json"), "[]");
    let out = call(
        &tb,
        "edit_file",
        json!({"path": "feature_list.json", "old_string": "[]", "new_string": "[1]"}),
    )
    .await;
    assert_error(&out, "protected");

    std::fs::create_dir(dir.path().join(".git")).unwrap();
    let out = call(
        &tb,
        "write_file",
        json!({"path": ".git/hooks/pre-commit", "content": "x"}),
    )
    .await;
    assert_error(&out, "protected");
}

#[tokio::test]
async fn write_to_directory_is_an_error() {
    let (dir, tb) = project();
    std::fs::create_dir(dir.path().join("d")).unwrap();
    let out = call(&tb, "write_file", json!({"path": "d", "content": "x"})).await;
    assert_error(&out, "directory");
}

#[tokio::test]
async fn edit_replaces_unique_match() {
    let (dir, tb) = project();
    write(
        dir.path(),
        "a.py",
        "def f():\n    return 1\n\ndef g():\n    return 2\n",
    );
    let out = call(
        &tb,
        "edit_file",
        json!({"path": "a.py", "old_string": "    return 2", "new_string": "    return 20"}),
    )
    .await;
    assert_ok(&out);
    assert_eq!(
        read(dir.path(), "a.py"),
        "def f():\n    return 1\n\ndef g():\n    return 20\n"
    );
    assert!(out.content.contains("line 5"), "{}", out.content);
}

#[tokio::test]
async fn edit_refuses_non_unique_match_and_says_how_many() {
    let (dir, tb) = project();
    write(dir.path(), "a.txt", "x = 1\ny = 1\nz = 1\n");
    let out = call(
        &tb,
        "edit_file",
        json!({"path": "a.txt", "old_string": "= 1", "new_string": "= 2"}),
    )
    .await;
    assert_error(&out, "occurs 3 times");
    assert!(out.content.contains("lines 1, 2, 3"), "{}", out.content);
    assert!(out.content.contains("replace_all"));
    assert_eq!(read(dir.path(), "a.txt"), "x = 1\ny = 1\nz = 1\n");

    let out = call(
        &tb,
        "edit_file",
        json!({"path": "a.txt", "old_string": "= 1", "new_string": "= 2", "replace_all": true}),
    )
    .await;
    assert_ok(&out);
    assert!(out.content.contains("3 occurrences"), "{}", out.content);
    assert_eq!(read(dir.path(), "a.txt"), "x = 2\ny = 2\nz = 2\n");
}

#[tokio::test]
async fn edit_not_found_hints() {
    let (dir, tb) = project();
    write(dir.path(), "a.py", "def f():\n    return 1\n");
    let out = call(
        &tb,
        "edit_file",
        json!({"path": "a.py", "old_string": "return 2", "new_string": "return 3"}),
    )
    .await;
    assert_error(&out, "not found");
    assert!(out.content.contains("read_file"), "{}", out.content);

    let out = call(
        &tb,
        "edit_file",
        json!({"path": "a.py", "old_string": "     2\t    return 1", "new_string": "    return 3"}),
    )
    .await;
    assert_error(&out, "line-number prefixes");

    let out = call(
        &tb,
        "edit_file",
        json!({"path": "a.py", "old_string": "return 1   \n\n", "new_string": "return 3"}),
    )
    .await;
    assert_error(&out, "whitespace");
    assert_eq!(read(dir.path(), "a.py"), "def f():\n    return 1\n");
}

#[tokio::test]
async fn edit_refuses_identical_and_empty_strings_and_missing_file() {
    let (dir, tb) = project();
    write(dir.path(), "a.txt", "abc\n");
    let out = call(
        &tb,
        "edit_file",
        json!({"path": "a.txt", "old_string": "abc", "new_string": "abc"}),
    )
    .await;
    assert_error(&out, "the same");
    let out = call(
        &tb,
        "edit_file",
        json!({"path": "a.txt", "old_string": "", "new_string": "x"}),
    )
    .await;
    assert_error(&out, "empty");
    let out = call(
        &tb,
        "edit_file",
        json!({"path": "missing.txt", "old_string": "a", "new_string": "b"}),
    )
    .await;
    assert_error(&out, "write_file");
}

#[tokio::test]
async fn edit_through_symlink_inside_project_changes_target() {
    let (dir, tb) = project();
    write(dir.path(), "real.txt", "one\n");
    std::os::unix::fs::symlink("real.txt", dir.path().join("alias.txt")).unwrap();
    let out = call(
        &tb,
        "edit_file",
        json!({"path": "alias.txt", "old_string": "one", "new_string": "two"}),
    )
    .await;
    assert_ok(&out);
    assert_eq!(read(dir.path(), "real.txt"), "two\n");
    assert!(std::fs::symlink_metadata(dir.path().join("alias.txt"))
        .unwrap()
        .file_type()
        .is_symlink());
}

#[tokio::test]
async fn edit_not_found_in_crlf_file_says_so() {
    let (dir, tb) = project();
    write(dir.path(), "win.txt", "one\r\ntwo\r\n");
    let out = call(
        &tb,
        "edit_file",
        json!({"path": "win.txt", "old_string": "one\ntwo", "new_string": "1\n2"}),
    )
    .await;
    assert_error(&out, "CRLF");
    assert_eq!(read(dir.path(), "win.txt"), "one\r\ntwo\r\n");
}
