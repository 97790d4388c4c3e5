//! SIGTERM and SIGHUP (what systemd, docker, Kubernetes and a closed terminal send) stop a run
//! the way Ctrl-C does: the step under way ends, the in-flight model call is settled in the
//! ledger, the state is saved with a stop record naming the signal, exit 130. A second signal
//! stops at once, still with a stop record and no reservation left open; the next run goes on.
//! No timing is asserted: the tests wait for what the run did (a request, a file, a line).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::three_scripts::*;
use serde_json::{json, Value};
use std::io::BufRead;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};
use testkit::{FakeServer, Reply, Script, StallFault, Turn};

/// Build sessions that implement and verify the three features, one per session.
fn build_all() -> Vec<Turn> {
    (0..3)
        .flat_map(|n| {
            vec![
                call(
                    "write_file",
                    json!({"path": format!("{}.py", NAMES[n]), "content": format!("print({})\n", n + 1)}),
                ),
                call("verify_feature", json!({"id": format!("F{}", n + 1)})),
                Turn::text("Done."),
            ]
        })
        .collect()
}

fn send(child: &Child, signal: &str) {
    let ok = std::process::Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{signal}");
}

/// Waits (polling, bounded) until `ready` holds while the run is still going.
fn wait_until(child: &mut Child, what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !ready() {
        assert!(Instant::now() < deadline, "the run never got to {what}");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run_json(w: &World) -> Value {
    serde_json::from_str(&std::fs::read_to_string(w.state.join("run.json")).unwrap()).unwrap()
}

/// The calls the ledger reserved and never settled.
fn open_reservations(w: &World) -> Vec<String> {
    let text = std::fs::read_to_string(w.state.join("ledger.jsonl")).unwrap();
    let entries: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let key = |e: &Value| format!("{}#{}", e["call"], e["attempt"]);
    let settled: Vec<String> = entries
        .iter()
        .filter(|e| e["kind"] == "settle")
        .map(key)
        .collect();
    entries
        .iter()
        .filter(|e| e["kind"] == "reserve")
        .map(key)
        .filter(|k| !settled.contains(k))
        .collect()
}

/// A run that planned, then whose first build call stalls (for a minute, then answers).
fn stalled_build() -> Vec<Turn> {
    let mut turns = planning_turns();
    turns.push(Turn::Fault(testkit::Fault::Stall(StallFault {
        after_events: 1,
        ms: 60_000,
        reply: Some(Reply::text("never seen")),
    })));
    turns
}

#[test]
fn sigterm_and_sighup_stop_like_ctrl_c_with_a_stop_record() {
    for (signal, name) in [("TERM", "SIGTERM"), ("HUP", "SIGHUP")] {
        let w = world();
        let turns = stalled_build();
        let stalled_at = turns.len();
        let server = FakeServer::start_blocking(Script::turns(turns));
        let mut child = run_cmd(&w, &server, &[])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_until(&mut child, "the stalled call", || {
            server.request_count() >= stalled_at
        });
        send(&child, signal);
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(130), "{name}: {stderr}");
        assert!(
            stderr.contains(&format!("interrupted ({name})")),
            "{name}: {stderr}"
        );
        assert_eq!(server.request_count(), stalled_at, "{name}: nothing after");
        let status = status_json(&w);
        let stop = &status["last_stop"];
        assert_eq!(stop["reason"], "interrupted", "{name}: {stop}");
        assert_eq!(stop["exit_code"], 130, "{name}: {stop}");
        assert_eq!(stop["signal"], name, "{name}: {stop}");
        assert!(
            stop["detail"]
                .as_str()
                .unwrap()
                .contains(&format!("interrupted by {name}")),
            "{name}: {stop}"
        );
        assert_eq!(
            open_reservations(&w),
            Vec::<String>::new(),
            "{name}: the abandoned call was settled"
        );
        assert_eq!(status["sessions"][1]["end"], "cancelled", "{name}");
    }
}

#[test]
fn a_second_signal_stops_at_once_with_a_stop_record_and_the_rerun_goes_on() {
    let w = world();
    let mut turns = planning_turns();
    // The build session's first step: a command that outlasts the first signal (a tool call
    // under way is finished, not killed, on the first signal).
    turns.push(call(
        "bash",
        json!({"command": "touch started && sleep 20", "timeout_secs": 60}),
    ));
    let sent = turns.len();
    let server = FakeServer::start_blocking(Script::turns(turns));
    let mut child = run_cmd(&w, &server, &[])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = w.project.join("started");
    wait_until(&mut child, "the long command", || started.exists());
    send(&child, "TERM");
    // The first signal was taken (its notice printed) before the second is sent.
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    loop {
        let mut line = String::new();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "stderr ended before the first signal's notice: {seen}"
        );
        seen.push_str(&line);
        if line.contains("interrupted (SIGTERM)") {
            break;
        }
    }
    send(&child, "HUP");
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{seen}{rest}");
    assert!(rest.contains("stopped at once (SIGHUP)"), "{rest}");
    assert_eq!(server.request_count(), sent, "nothing sent after");

    let stop = &run_json(&w)["last_stop"];
    assert_eq!(stop["reason"], "interrupted", "{stop}");
    assert_eq!(stop["exit_code"], 130, "{stop}");
    assert_eq!(stop["signal"], "SIGHUP", "{stop}");
    let detail = stop["detail"].as_str().unwrap();
    assert!(
        detail.contains("second signal (SIGHUP) during session 2"),
        "{detail}"
    );
    assert_eq!(open_reservations(&w), Vec::<String>::new());

    // The next run closes the cut-off session and builds the app.
    let server = FakeServer::start_blocking(Script::turns(build_all()));
    run(&w, &server, &[]).success();
    let status = status_json(&w);
    assert_eq!(passing(&status), vec!["F1", "F2", "F3"]);
    assert_eq!(status["sessions"][1]["end"], "interrupted", "{status}");
}
