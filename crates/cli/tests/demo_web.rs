//! The web demo end to end: `examples/todo-web`'s recorded session replayed offline, with the
//! harness running every check — each starts the app's server and drives headless Chromium
//! against it — until all five features pass. Skipped, with a message, when Chromium is not
//! installed (`.ci/run` installs Debian's `chromium`).
//!
//! Prints one `MEASURE` line per check run by `verify_feature` (run with `--nocapture`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::loopwright;
use serde_json::Value;
use std::path::{Path, PathBuf};

fn chromium_installed() -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| dir.join("chromium").is_file())
    })
}

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/todo-web")
        .join(name)
}

/// Seconds since midnight of an RFC 3339 timestamp (`...THH:MM:SS.fffZ`).
fn seconds(ts: &str) -> f64 {
    let time = ts.split('T').nth(1).unwrap().trim_end_matches('Z');
    time.split(':')
        .map(|part| part.parse::<f64>().unwrap())
        .fold(0.0, |acc, part| acc * 60.0 + part)
}

#[test]
fn the_todo_web_cassette_replays_to_all_passing_with_real_chromium() {
    if !chromium_installed() {
        eprintln!("SKIPPED: no chromium installed (apt-get install chromium); the web demo was not replayed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let project = dir.path().join("todo-web");
    let state = dir.path().join("state");
    let out = loopwright(&home)
        .arg("run")
        .arg("--project-dir")
        .arg(&project)
        .arg("--state-dir")
        .arg(&state)
        .arg("--spec")
        .arg(example("app_spec.txt"))
        .arg("--model")
        .arg(format!(
            "replay/{}",
            example("session.cassette.jsonl").display()
        ))
        // The default network: the app's server listens on the loopback of the run's own
        // network namespace.
        .arg("--json")
        .output()
        .unwrap();
    let events: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    assert!(
        out.status.success(),
        "exit {:?}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );

    let status = loopwright(&home)
        .args(["status", "--json", "--project-dir"])
        .arg(&project)
        .arg("--state-dir")
        .arg(&state)
        .output()
        .unwrap();
    let status: Value = serde_json::from_slice(&status.stdout).unwrap();
    let features = status["features"].as_array().unwrap();
    assert_eq!(features.len(), 5);
    for f in features {
        assert_eq!(f["passes"], true, "{f}");
    }
    let plan: Value =
        serde_json::from_str(&std::fs::read_to_string(project.join("feature_list.json")).unwrap())
            .unwrap();
    for f in plan.as_array().unwrap() {
        assert!(
            f["check"]
                .as_str()
                .unwrap()
                .starts_with("python3 tests/browser_check.py "),
            "every check drives the browser: {f}"
        );
    }
    // The app and its tests are in the project; the checks kept their data in temp dirs.
    for file in [
        "server.py",
        "static/index.html",
        "static/app.js",
        "tests/browser_check.py",
        "tests/web/todo_test.html",
    ] {
        assert!(project.join(file).is_file(), "{file}");
    }
    assert!(!project.join("todos.json").exists());

    // Every verify_feature passed; how long each check took.
    let mut started = None;
    let mut verified = 0;
    for e in &events {
        match e["type"].as_str() {
            Some("tool.started") if e["name"] == "verify_feature" => {
                started = e["ts"].as_str().map(seconds);
            }
            Some("feature.verified") => {
                assert_eq!(e["passed"], true, "{e}");
                verified += 1;
                let took = seconds(e["ts"].as_str().unwrap()) - started.take().unwrap();
                eprintln!(
                    "MEASURE|todo-web|{}|check={took:.1}s",
                    e["id"].as_str().unwrap()
                );
            }
            _ => {}
        }
    }
    assert_eq!(verified, 5);
}
