#![allow(dead_code)]

use std::path::Path;

use serde_json::Value;
use tempfile::TempDir;
use tools::{SandboxMode, ToolOutcome, Toolbox, ToolboxConfig};

/// A fresh project directory and a toolbox on it (sandbox on).
pub fn project() -> (TempDir, Toolbox) {
    let dir = tempfile::tempdir().unwrap();
    let toolbox = toolbox_for(dir.path(), |_| {});
    (dir, toolbox)
}

pub fn toolbox_for(dir: &Path, adjust: impl FnOnce(&mut ToolboxConfig)) -> Toolbox {
    let mut config = ToolboxConfig::new(dir);
    config.sandbox_mode = SandboxMode::On;
    adjust(&mut config);
    Toolbox::new(config).unwrap()
}

pub async fn call(toolbox: &Toolbox, name: &str, input: Value) -> ToolOutcome {
    toolbox.call(name, &input).await
}

pub fn write(dir: &Path, rel: &str, content: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

pub fn read(dir: &Path, rel: &str) -> String {
    std::fs::read_to_string(dir.join(rel)).unwrap()
}

#[track_caller]
pub fn assert_error(outcome: &ToolOutcome, needle: &str) {
    assert!(outcome.is_error, "expected an error, got: {outcome:#?}");
    assert!(
        outcome.content.contains(needle),
        "expected {needle:?} in error: {}",
        outcome.content
    );
}

#[track_caller]
pub fn assert_ok(outcome: &ToolOutcome) {
    assert!(!outcome.is_error, "expected success, got: {outcome:#?}");
}
