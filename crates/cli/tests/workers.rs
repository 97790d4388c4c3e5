//! `loopwright run --workers N` end to end: parallel build sessions, each in its own copy of
//! the project with features of its own, merged back by the harness. The fake model answers
//! each conversation by what it was given (the worker's `Your features:` line, or the feature
//! table of the prompt), never by a global turn order, so sessions can run in any interleaving.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::loopwright_std;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use testkit::{FakeServer, LoggedRequest, Reply, Script, Turn};

const MODEL: &str = "anthropic/claude-sonnet-4-5";

/// The test file of an app of `n` scripts: `fK.py` prints K.
fn test_file(n: usize) -> String {
    let mut t = String::from(
        "import subprocess, sys, unittest\n\ndef run(script):\n    return subprocess.run([sys.executable, script], capture_output=True, text=True).stdout.strip()\n",
    );
    for k in 1..=n {
        t.push_str(&format!(
            "\nclass TestF{k}(unittest.TestCase):\n    def test_f{k}(self):\n        self.assertEqual(run(\"f{k}.py\"), \"{k}\")\n"
        ));
    }
    t
}

fn feature(k: usize) -> Value {
    json!({
        "id": format!("F{k}"),
        "category": "functional",
        "description": format!("f{k}.py prints {k}"),
        "steps": [format!("python3 f{k}.py")],
        "check": format!("python3 -m unittest tests.test_app.TestF{k}"),
        "test_files": ["tests/test_app.py"]
    })
}

/// How many answers of the model the conversation already holds.
fn answered(req: &LoggedRequest) -> usize {
    req.messages()
        .iter()
        .filter(|m| m["role"] == "assistant")
        .count()
}

/// Feature numbers named in `F1, F2.`.
fn numbers(list: &str) -> Vec<usize> {
    list.split(|c: char| c == ',' || c == '.' || c.is_whitespace())
        .filter_map(|w| w.strip_prefix('F')?.parse().ok())
        .collect()
}

/// A model for an app of `n` features that builds `per_session` features a session: a worker
/// builds the features its task names; a lone session the first failing ones of its prompt's
/// feature table. With `shared`, every session also writes its own `shared.py` (so two
/// workers' branches conflict). `delay_ms` delays every answer (a model's latency).
fn model(n: usize, per_session: usize, shared: bool, delay_ms: u64) -> Script {
    Script::handler(answers(n, per_session, shared, delay_ms))
}

/// The features a build conversation is about: a worker's (its task names them), or the
/// first `per_session` failing ones of the prompt's feature table.
fn mine(req: &LoggedRequest, per_session: usize) -> Vec<usize> {
    match req.marked_line("Your features: ") {
        Some(line) => numbers(&line),
        None => req
            .system_text()
            .lines()
            .filter(|l| l.starts_with("| F") && l.contains("| no |"))
            .filter_map(|l| l.trim_start_matches("| ").split(' ').next())
            .flat_map(numbers)
            .take(per_session)
            .collect(),
    }
}

/// [`model`]'s answers.
fn answers(
    n: usize,
    per_session: usize,
    shared: bool,
    delay_ms: u64,
) -> impl Fn(&LoggedRequest) -> Turn + Send + Sync + 'static {
    move |req: &LoggedRequest| {
        let planning = req.tool_names().iter().any(|t| t == "add_features");
        let reply = if planning {
            match answered(req) {
                0 => Reply::default()
                    .with_tool_call(
                        "write_file",
                        json!({"path": "tests/test_app.py", "content": test_file(n)}),
                    )
                    .with_tool_call(
                        "write_file",
                        json!({"path": ".gitignore", "content": "__pycache__/\n"}),
                    ),
                1 => Reply::default().with_tool_call(
                    "add_features",
                    json!({"features": (1..=n).map(feature).collect::<Vec<_>>()}),
                ),
                _ => Reply::text("Planned."),
            }
        } else {
            let mine = mine(req, per_session);
            match answered(req) {
                0 => {
                    let mut r = Reply::default();
                    for k in &mine {
                        r = r.with_tool_call(
                            "write_file",
                            json!({"path": format!("f{k}.py"), "content": format!("print({k})\n")}),
                        );
                    }
                    let names: Vec<String> = mine.iter().map(|k| format!("F{k}")).collect();
                    if shared {
                        r = r.with_tool_call(
                            "write_file",
                            json!({"path": "shared.py", "content": format!("BUILT_BY = {:?}\n", names.join(" "))}),
                        );
                    }
                    r.with_tool_call(
                        "write_file",
                        json!({"path": "progress.md", "content": format!("{} built.\n", names.join(", "))}),
                    )
                }
                1 => mine.iter().fold(Reply::default(), |r, k| {
                    r.with_tool_call("verify_feature", json!({"id": format!("F{k}")}))
                }),
                _ => Reply::text("Done."),
            }
        };
        if delay_ms > 0 {
            Turn::delay(delay_ms, reply)
        } else {
            Turn::Reply(reply)
        }
    }
}

struct World {
    _dir: tempfile::TempDir,
    home: PathBuf,
    project: PathBuf,
    state: PathBuf,
    spec: PathBuf,
}

fn world(n: usize) -> World {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let spec = dir.path().join("app_spec.txt");
    std::fs::write(
        &spec,
        format!("{n} scripts: f1.py prints 1, f2.py prints 2, and so on up to f{n}.py.\n"),
    )
    .unwrap();
    World {
        project: dir.path().join("project"),
        state: dir.path().join("state"),
        spec,
        home,
        _dir: dir,
    }
}

fn run_cmd(w: &World, server: &FakeServer, extra: &[&str]) -> std::process::Command {
    let mut cmd = loopwright_std(&w.home);
    cmd.arg("run")
        .arg("--project-dir")
        .arg(&w.project)
        .arg("--state-dir")
        .arg(&w.state)
        .arg("--spec")
        .arg(&w.spec)
        .args(["--model", MODEL, "--json"])
        .args(extra)
        .env("ANTHROPIC_BASE_URL", server.anthropic_base_url())
        .env("ANTHROPIC_API_KEY", "sk-test");
    cmd
}

fn run(w: &World, server: &FakeServer, extra: &[&str]) -> std::process::Output {
    let out = run_cmd(w, server, extra).output().unwrap();
    assert!(
        out.status.success(),
        "exit {:?}\n{}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn status_json(w: &World) -> Value {
    let out = common::loopwright(&w.home)
        .args(["status", "--json", "--project-dir"])
        .arg(&w.project)
        .arg("--state-dir")
        .arg(&w.state)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn events(state: &Path) -> Vec<Value> {
    std::fs::read_to_string(state.join("events.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn git(project: &Path, args: &[&str]) -> Vec<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(project)
        .args(args)
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// Sequential rounds of build sessions: the longest chain of build sessions each of which
/// started after the one before it ended (from the order of the run's events).
fn build_rounds(events: &[Value]) -> usize {
    let mut depth: BTreeMap<String, usize> = BTreeMap::new();
    let mut ended: Vec<String> = Vec::new();
    let mut building = BTreeSet::new();
    for e in events {
        let session = e["session"].as_str().unwrap_or_default().to_string();
        match e["type"].as_str().unwrap_or_default() {
            "session.started" => {
                let before = ended
                    .iter()
                    .filter(|s| building.contains(*s))
                    .map(|s| depth[s])
                    .max()
                    .unwrap_or(0);
                depth.insert(session, before + 1);
            }
            "session.completed" => ended.push(session),
            "feature.verified" => {
                building.insert(session);
            }
            _ => {}
        }
    }
    depth
        .iter()
        .filter(|(s, _)| building.contains(*s))
        .map(|(_, d)| *d)
        .max()
        .unwrap_or(0)
}

fn ledger_entries(state: &Path) -> Vec<Value> {
    std::fs::read_to_string(state.join("ledger.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn passing(status: &Value) -> Vec<String> {
    status["features"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["passes"] == json!(true))
        .map(|f| f["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn three_workers_build_six_features_in_fewer_rounds_than_one() {
    // One worker, two features a session: three rounds of build sessions.
    let alone = world(6);
    let server = FakeServer::start_blocking(model(6, 2, false, 0));
    run(&alone, &server, &[]);
    let status = status_json(&alone);
    assert_eq!(passing(&status).len(), 6, "{status:#}");
    let rounds_alone = build_rounds(&events(&alone.state));
    assert_eq!(rounds_alone, 3);

    // Three workers, the same model.
    let w = world(6);
    let server = FakeServer::start_blocking(model(6, 2, false, 0));
    run(&w, &server, &["--workers", "3"]);
    let status = status_json(&w);
    assert_eq!(status["phase"], "complete", "{status:#}");
    assert_eq!(passing(&status).len(), 6, "{status:#}");
    let all_events = events(&w.state);
    let rounds = build_rounds(&all_events);
    assert!(
        rounds < rounds_alone,
        "{rounds} rounds with 3 workers, {rounds_alone} with one"
    );

    // Each feature was held by exactly one worker, and the workers' sets are disjoint.
    let workers = status["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 3, "{status:#}");
    let mut held = BTreeSet::new();
    for worker in workers {
        assert_eq!(worker["stage"], "merged", "{worker}");
        for f in worker["features"].as_array().unwrap() {
            assert!(
                held.insert(f.as_str().unwrap().to_string()),
                "{f} held twice"
            );
        }
    }
    assert_eq!(held.len(), 6);
    let started: Vec<&Value> = all_events
        .iter()
        .filter(|e| e["type"] == "worker.started")
        .collect();
    assert_eq!(started.len(), 3);
    assert!(started.iter().any(|e| e["running"] == json!(3)));
    // A worker could verify only its own features.
    for e in all_events
        .iter()
        .filter(|e| e["type"] == "feature.verified")
    {
        let session = e["session"].as_str().unwrap();
        let owner = workers
            .iter()
            .find(|w| w["session"] == session)
            .unwrap_or_else(|| panic!("{e}"));
        assert!(owner["features"].as_array().unwrap().contains(&e["id"]));
    }

    // The merges are in the history, and every worker's notes are in progress.md.
    let merges = git(&w.project, &["log", "--merges", "--format=%s"]);
    assert_eq!(merges.len(), 3, "{merges:?}");
    assert!(merges
        .iter()
        .all(|m| m.starts_with("loopwright: merge session")));
    assert!(git(&w.project, &["status", "--porcelain"]).is_empty());
    let notes = std::fs::read_to_string(w.project.join("progress.md")).unwrap();
    for worker in workers {
        let features: Vec<&str> = worker["features"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        assert!(
            notes.contains(&format!("{} built.", features.join(", "))),
            "{notes}"
        );
    }
    for k in 1..=6 {
        assert_eq!(
            std::fs::read_to_string(w.project.join(format!("f{k}.py"))).unwrap(),
            format!("print({k})\n")
        );
    }

    // The ledger is one file whose entries name their sessions, and its total is the sum of
    // the sessions' costs.
    let entries = ledger_entries(&w.state);
    let session_ids: BTreeSet<&str> = status["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert!(entries
        .iter()
        .all(|e| session_ids.contains(e["session"].as_str().unwrap())));
    let by_sessions: i64 = status["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["cost"].as_i64().unwrap())
        .sum();
    let settled: i64 = entries
        .iter()
        .filter(|e| e["kind"] == "settle")
        .map(|e| e["cost"].as_i64().unwrap())
        .sum();
    assert!(settled > 0);
    assert_eq!(by_sessions, status["spent"].as_i64().unwrap());
    assert_eq!(settled, status["spent"].as_i64().unwrap());
    // No copy of the project is left behind.
    let left: Vec<_> = std::fs::read_dir(w.state.join("workers"))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_conflicting_merge_is_handed_to_the_next_session_and_nothing_is_lost() {
    let w = world(2);
    let server = FakeServer::start_blocking(model(2, 1, true, 0));
    run(&w, &server, &["--workers", "2"]);
    let status = status_json(&w);
    assert_eq!(passing(&status), vec!["F1", "F2"], "{status:#}");
    let all_events = events(&w.state);
    let conflicts: Vec<&Value> = all_events
        .iter()
        .filter(|e| e["type"] == "worker.conflict")
        .collect();
    assert_eq!(conflicts.len(), 1, "{all_events:#?}");
    assert_eq!(conflicts[0]["files"], json!(["shared.py"]));
    let lost = conflicts[0]["features"][0].as_str().unwrap().to_string();
    let branch = conflicts[0]["branch"].as_str().unwrap().to_string();

    // The conflicting branch is kept in the project, and a third session took its feature
    // over, starting from the conflict.
    assert_eq!(
        git(
            &w.project,
            &["branch", "--list", "worker/*", "--format=%(refname:short)"]
        ),
        vec![branch.clone()]
    );
    let workers = status["workers"].as_array().unwrap();
    assert_eq!(workers.len(), 3, "{status:#}");
    let stages: Vec<&str> = workers
        .iter()
        .map(|w| w["stage"].as_str().unwrap())
        .collect();
    assert_eq!(
        stages.iter().filter(|s| **s == "taken_over").count(),
        1,
        "{stages:?}"
    );
    let third = &workers[2];
    assert_eq!(third["features"], json!([lost]));
    assert_eq!(third["stage"], "merged");
    let task = server
        .requests()
        .iter()
        .filter_map(LoggedRequest::first_user_text)
        .find(|t| t.contains("resolve the conflict markers"))
        .expect("the third session's task names the conflict");
    assert!(
        task.contains("shared.py") && task.contains(&branch),
        "{task}"
    );
    // The feature of the conflicting session was not passing until the third merged it.
    let conflicting_session = conflicts[0]["session"].as_str().unwrap();
    let record = status["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == conflicting_session)
        .unwrap();
    assert_eq!(record["newly_passing"], json!([]));
    // Both sides' work is in the history: the conflicting commit is an ancestor of HEAD.
    let ancestor = std::process::Command::new("git")
        .arg("-C")
        .arg(&w.project)
        .args(["merge-base", "--is-ancestor", &branch, "HEAD"])
        .status()
        .unwrap();
    assert!(ancestor.success());
    assert!(!std::fs::read_to_string(w.project.join("shared.py"))
        .unwrap()
        .contains("<<<<<<<"));
}

#[test]
fn a_run_killed_with_workers_running_resumes_and_merges_their_work() {
    // The first process: each worker writes its two features and verifies the first, then
    // its next answer never comes.
    let w = world(4);
    let inner = answers(4, 2, false, 0);
    let server = FakeServer::start_blocking(Script::handler(move |req: &LoggedRequest| {
        let building = !req.tool_names().iter().any(|t| t == "add_features");
        match answered(req) {
            1 if building => {
                let first = mine(req, 2)[0];
                Turn::tool_call("verify_feature", json!({"id": format!("F{first}")}))
            }
            2.. if building => Turn::drip(0, 200),
            _ => inner(req),
        }
    }));
    let mut child = run_cmd(&w, &server, &["--workers", "2"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let verified = std::fs::read_to_string(w.state.join("events.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter(|l| {
                l.contains(r#""type":"feature.verified""#) && l.contains(r#""passed":true"#)
            })
            .count();
        if verified >= 2 {
            break;
        }
        assert!(Instant::now() < deadline, "the workers never verified");
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before = status_json(&w);
    assert!(passing(&before).is_empty(), "{before:#}");
    assert!(before["workers"]
        .as_array()
        .unwrap()
        .iter()
        .all(|w| w["stage"] == "cut_off"));

    // The second: the cut-off workers' copies are committed and merged, their verdicts
    // re-checked on the run's branch (they count for the cut-off sessions); new workers
    // build the rest.
    let server = FakeServer::start_blocking(model(4, 2, false, 0));
    run(&w, &server, &["--workers", "2"]);
    let status = status_json(&w);
    assert_eq!(passing(&status).len(), 4, "{status:#}");
    let cut_off: Vec<&Value> = status["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["end"] == "interrupted")
        .collect();
    assert_eq!(cut_off.len(), 2, "{status:#}");
    for s in &cut_off {
        assert_eq!(s["newly_passing"].as_array().unwrap().len(), 1, "{s}");
    }
    let merges = git(&w.project, &["log", "--merges", "--format=%s"]);
    // The later workers only verified what the cut-off ones wrote: nothing new to merge.
    assert_eq!(merges.len(), 2, "{merges:?}\n{status:#}");
    assert!(status["workers"]
        .as_array()
        .unwrap()
        .iter()
        .all(|w| w["stage"] == "merged"));
    let log = git(&w.project, &["log", "--format=%s"]);
    assert_eq!(
        log.iter()
            .filter(|m| m.contains("(cut off) (worker)"))
            .count(),
        2,
        "{log:?}"
    );
    assert!(git(&w.project, &["status", "--porcelain"]).is_empty());
}

/// Wall time of the six-feature run with one worker and with three, each answer of the model
/// taking 1.5 s (`LOOPWRIGHT_BENCH_DELAY_MS` to change it; `LOOPWRIGHT_TIMELINE=1` prints the
/// events). Not a test of speed (nothing is asserted about it): run it with
/// `cargo test -p loopwright --test workers -- --ignored --nocapture` to measure.
#[test]
#[ignore = "a measurement, run by hand"]
fn wall_time_of_six_features_with_one_and_three_workers() {
    for workers in ["1", "3"] {
        let w = world(6);
        let delay = std::env::var("LOOPWRIGHT_BENCH_DELAY_MS")
            .ok()
            .and_then(|d| d.parse().ok())
            .unwrap_or(1500);
        let server = FakeServer::start_blocking(model(6, 2, false, delay));
        let start = Instant::now();
        run(&w, &server, &["--workers", workers]);
        let took = start.elapsed();
        let status = status_json(&w);
        assert_eq!(passing(&status).len(), 6);
        println!(
            "workers {workers}: {:.1} s wall, {} build rounds, {} sessions",
            took.as_secs_f64(),
            build_rounds(&events(&w.state)),
            status["sessions"].as_array().unwrap().len()
        );
        if std::env::var_os("LOOPWRIGHT_TIMELINE").is_some() {
            for e in events(&w.state) {
                println!(
                    "  {} {} {} {}",
                    e["ts"].as_str().unwrap_or_default(),
                    e["session"].as_str().unwrap_or_default(),
                    e["type"].as_str().unwrap_or_default(),
                    e["id"].as_str().or(e["name"].as_str()).unwrap_or_default()
                );
            }
        }
    }
}
