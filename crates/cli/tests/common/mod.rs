//! Shared by the CLI's end-to-end tests: the binary with a temporary home and nothing of the
//! developer's configuration, keys or endpoints in reach.

#![allow(dead_code)]

use std::path::Path;

pub mod three_scripts;

/// Variables that must never leak from the developer's shell into a test run.
pub const SCRUBBED: [&str; 14] = [
    "LOOPWRIGHT_CONFIG",
    "LOOPWRIGHT_LEDGER",
    "LOOPWRIGHT_BUDGET_NAME",
    "LOOPWRIGHT_MODEL",
    "LOOPWRIGHT_BUDGET",
    "LOOPWRIGHT_FREE_ONLY",
    "LOOPWRIGHT_STATE_DIR",
    "ANTHROPIC_API_KEY",
    "OPENAI_API_KEY",
    "OPENROUTER_API_KEY",
    "ANTHROPIC_BASE_URL",
    "OPENAI_BASE_URL",
    "OPENROUTER_BASE_URL",
    "OLLAMA_HOST",
];

/// `loopwright` run from `home` with `HOME`/`XDG_*` pointing into it.
pub fn loopwright_std(home: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("loopwright"));
    cmd.current_dir(home)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_STATE_HOME", home.join(".local/state"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env("XDG_DATA_HOME", home.join(".local/share"));
    for var in SCRUBBED {
        cmd.env_remove(var);
    }
    cmd
}

pub fn loopwright(home: &Path) -> assert_cmd::Command {
    assert_cmd::Command::from_std(loopwright_std(home))
}
