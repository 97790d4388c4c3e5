#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step is a failed test
mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::{assert_error, assert_ok, call, project, read, write};
use serde_json::json;
use tools::{FrozenFiles, FrozenManifest, ToolError};

const TEST: &str = "def test_todo():\n    assert add(1, 2) == 3\n";
const REFUSAL: &str = "tests/test_todo.py is frozen: the feature checks written during planning cannot be changed; change the code under test instead";

fn freeze(dir: &std::path::Path, tb: &tools::Toolbox) -> FrozenFiles {
    write(dir, "tests/test_todo.py", TEST);
    let frozen =
        FrozenFiles::snapshot(tb.project(), &[PathBuf::from("tests/test_todo.py")]).unwrap();
    tb.set_frozen(frozen.clone()).unwrap();
    frozen
}

#[tokio::test]
async fn write_and_edit_of_frozen_file_are_refused() {
    let (dir, tb) = project();
    freeze(dir.path(), &tb);
    let out = call(
        &tb,
        "write_file",
        json!({"path": "tests/test_todo.py", "content": "def test_todo(): pass\n"}),
    )
    .await;
    assert_error(&out, REFUSAL);
    let out = call(
        &tb,
        "edit_file",
        json!({"path": "tests/../tests/test_todo.py", "old_string": "== 3", "new_string": "== 4"}),
    )
    .await;
    assert_error(&out, REFUSAL);
    let abs = dir
        .path()
        .canonicalize()
        .unwrap()
        .join("tests/test_todo.py");
    let out = call(
        &tb,
        "write_file",
        json!({"path": abs.to_str().unwrap(), "content": ""}),
    )
    .await;
    assert_error(&out, REFUSAL);
    assert_eq!(read(dir.path(), "tests/test_todo.py"), TEST);

    // Other files in the same directory stay writable.
    let out = call(
        &tb,
        "write_file",
        json!({"path": "tests/conftest.py", "content": "\n"}),
    )
    .await;
    assert_ok(&out);
}

#[tokio::test]
async fn write_through_symlink_to_frozen_file_is_refused() {
    let (dir, tb) = project();
    freeze(dir.path(), &tb);
    std::os::unix::fs::symlink("tests/test_todo.py", dir.path().join("alias.py")).unwrap();
    let out = call(
        &tb,
        "write_file",
        json!({"path": "alias.py", "content": "x"}),
    )
    .await;
    assert_error(&out, "is frozen");
    assert_eq!(read(dir.path(), "tests/test_todo.py"), TEST);
}

#[test]
fn verify_and_restore_undoes_changes_deletions_and_replacements() {
    let (dir, tb) = project();
    let frozen = freeze(dir.path(), &tb);
    assert!(frozen.verify_and_restore().is_clean());

    write(dir.path(), "tests/test_todo.py", "def test_todo(): pass\n");
    let check = frozen.verify_and_restore();
    assert_eq!(check.restored, vec![PathBuf::from("tests/test_todo.py")]);
    assert_eq!(read(dir.path(), "tests/test_todo.py"), TEST);

    std::fs::remove_dir_all(dir.path().join("tests")).unwrap();
    let check = frozen.verify_and_restore();
    assert_eq!(check.restored.len(), 1);
    assert_eq!(read(dir.path(), "tests/test_todo.py"), TEST);

    std::fs::remove_file(dir.path().join("tests/test_todo.py")).unwrap();
    write(dir.path(), "other.py", "def test_todo(): pass\n");
    std::os::unix::fs::symlink("../other.py", dir.path().join("tests/test_todo.py")).unwrap();
    let check = frozen.verify_and_restore();
    assert_eq!(check.restored.len(), 1, "{check:?}");
    assert_eq!(read(dir.path(), "tests/test_todo.py"), TEST);
    assert!(
        !std::fs::symlink_metadata(dir.path().join("tests/test_todo.py"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(read(dir.path(), "other.py"), "def test_todo(): pass\n");

    std::fs::remove_file(dir.path().join("tests/test_todo.py")).unwrap();
    std::fs::create_dir(dir.path().join("tests/test_todo.py")).unwrap();
    let check = frozen.verify_and_restore();
    assert_eq!(check.restored.len(), 1, "{check:?}");
    assert_eq!(read(dir.path(), "tests/test_todo.py"), TEST);
}

#[test]
fn manifest_has_sha256_and_round_trips_through_serde() {
    let (dir, tb) = project();
    let frozen = freeze(dir.path(), &tb);
    let hashes = frozen.hashes();
    assert_eq!(
        hashes[&PathBuf::from("tests/test_todo.py")],
        // sha256 of TEST
        sha256(TEST.as_bytes())
    );
    let manifest = frozen.manifest();
    let json = serde_json::to_string(&manifest).unwrap();
    assert!(json.contains("tests/test_todo.py"));
    let back: FrozenManifest = serde_json::from_str(&json).unwrap();
    assert_eq!(back, manifest);
}

fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}

#[test]
fn copies_in_a_state_dir_recreate_the_snapshot() {
    let (dir, tb) = project();
    let frozen = freeze(dir.path(), &tb);
    let state = tempfile::tempdir().unwrap();
    let manifest = frozen.write_copies(&state.path().join("frozen")).unwrap();
    assert_eq!(manifest, frozen.manifest());

    // The agent rewrote the file while the harness was down; the reloaded snapshot restores it.
    write(dir.path(), "tests/test_todo.py", "cheated\n");
    let reloaded = FrozenFiles::restore_from(tb.project(), &state.path().join("frozen")).unwrap();
    assert_eq!(reloaded.hashes(), frozen.hashes());
    assert_eq!(reloaded.verify_and_restore().restored.len(), 1);
    assert_eq!(read(dir.path(), "tests/test_todo.py"), TEST);
}

#[test]
fn tampered_copy_is_rejected_on_reload() {
    let (dir, tb) = project();
    let frozen = freeze(dir.path(), &tb);
    let state = tempfile::tempdir().unwrap();
    frozen.write_copies(state.path()).unwrap();
    std::fs::write(state.path().join("tests/test_todo.py"), "changed").unwrap();
    let err = FrozenFiles::restore_from(tb.project(), state.path()).unwrap_err();
    assert!(matches!(err, ToolError::Frozen { .. }), "{err}");
    assert!(err.to_string().contains("hashes to"), "{err}");
}

#[test]
fn manifest_with_escaping_path_is_rejected() {
    let (_dir, tb) = project();
    let mut manifest = FrozenManifest::default();
    manifest
        .files
        .insert(PathBuf::from("../evil.py"), sha256(b"x"));
    let bytes = BTreeMap::from([(PathBuf::from("../evil.py"), b"x".to_vec())]);
    let err = FrozenFiles::from_manifest_and_bytes(tb.project(), &manifest, bytes).unwrap_err();
    assert!(err.to_string().contains("relative"), "{err}");
}

#[test]
fn snapshot_refuses_missing_and_outside_files() {
    let (_dir, tb) = project();
    assert!(FrozenFiles::snapshot(tb.project(), &[PathBuf::from("nope.py")]).is_err());
    assert!(FrozenFiles::snapshot(tb.project(), &[PathBuf::from("/etc/hostname")]).is_err());
}

#[test]
fn snapshot_of_another_project_is_refused() {
    let (dir, tb) = project();
    let frozen = freeze(dir.path(), &tb);
    let (_other_dir, other) = project();
    assert!(other.set_frozen(frozen).is_err());
}
