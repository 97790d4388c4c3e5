#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed step is a failed test
//! The guarded files' session hook: what a session's programs changed of the frozen checks and
//! the user's configuration is put back by one call, and a cut-off session's configuration
//! snapshot is undone later.
mod common;

use std::path::PathBuf;

use common::{project, read, write};
use tools::guarded::{undo_cut_off_session, CONFIG_RECORD_FILE};
use tools::{FrozenFiles, GuardedKind, ToolError};

#[test]
fn a_session_guard_puts_back_frozen_checks_and_the_config_in_one_list() {
    let (dir, tb) = project();
    let state = tempfile::tempdir().unwrap();
    write(dir.path(), "tests/check.sh", "exit 0\n");
    write(dir.path(), "loopwright.toml", "max_turns = 7\n");
    let frozen = FrozenFiles::snapshot(tb.project(), &[PathBuf::from("tests/check.sh")]).unwrap();
    tb.set_frozen(frozen).unwrap();

    let guard = tb.guard_session(state.path()).unwrap();
    assert!(state.path().join(CONFIG_RECORD_FILE).is_file());
    // What a program of the agent could do (the kernel lets it write the project).
    std::fs::write(dir.path().join("tests/check.sh"), "true\n").unwrap();
    std::fs::write(dir.path().join("loopwright.toml"), "sandbox = \"off\"\n").unwrap();

    assert_eq!(
        guard.restore(),
        vec![
            PathBuf::from("tests/check.sh"),
            PathBuf::from("loopwright.toml")
        ]
    );
    assert_eq!(read(dir.path(), "tests/check.sh"), "exit 0\n");
    assert_eq!(read(dir.path(), "loopwright.toml"), "max_turns = 7\n");
    assert!(!state.path().join(CONFIG_RECORD_FILE).exists());
    // Nothing changed: nothing to report.
    assert!(tb.guard_session(state.path()).unwrap().restore().is_empty());
}

#[test]
fn a_cut_off_session_leaves_a_snapshot_that_is_undone_once() {
    let (dir, tb) = project();
    let state = tempfile::tempdir().unwrap();
    let guard = tb.guard_session(state.path()).unwrap();
    write(dir.path(), "loopwright.toml", "sandbox = \"off\"\n");
    // The harness is killed: the guard never restores.
    std::mem::forget(guard);
    assert!(undo_cut_off_session(state.path(), dir.path()).unwrap());
    assert!(!dir.path().join("loopwright.toml").exists());
    assert!(!state.path().join(CONFIG_RECORD_FILE).exists());
    assert!(!undo_cut_off_session(state.path(), dir.path()).unwrap());

    std::fs::write(state.path().join(CONFIG_RECORD_FILE), "not json").unwrap();
    let err = undo_cut_off_session(state.path(), dir.path()).unwrap_err();
    assert!(matches!(err, ToolError::Guarded { .. }), "{err}");
}

#[test]
fn the_fixed_guarded_paths_are_the_harness_files_and_the_config() {
    assert_eq!(
        GuardedKind::protected(&[GuardedKind::HarnessOwned, GuardedKind::UserConfig]),
        ["feature_list.json", "app_spec.txt", "loopwright.toml"].map(PathBuf::from)
    );
    assert!(GuardedKind::FrozenCheck.paths().is_empty());
}
