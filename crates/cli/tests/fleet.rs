//! One budget across processes: real `loopwright exec` and `run` processes against testkit's
//! fake model server, sharing a named budget in a real PostgreSQL server (testkit's throwaway
//! server on a Unix socket; each test prints a message and skips when PostgreSQL is not
//! installed, unless LOOPWRIGHT_REQUIRE_POSTGRES=1).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::three_scripts::{call, planning_turns, run_cmd, world, NAMES};
use common::{loopwright, loopwright_std};
use rand::Rng;
use serde_json::{json, Value};
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use testkit::{FakeServer, LoggedRequest, Reply, Script, TempPostgres, Turn, Usage};

const MODEL: &str = "anthropic/claude-sonnet-4-5";

/// `status --budget NAME --json` with the ledger in `url`.
fn budget_status(home: &Path, url: &str, name: &str) -> Value {
    let out = loopwright(home)
        .args(["status", "--budget", name, "--json"])
        .env("LOOPWRIGHT_LEDGER", url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn nanos(v: &Value) -> i64 {
    v.as_i64()
        .unwrap_or_else(|| panic!("not nano-dollars: {v}"))
}

/// A model that writes a new file every turn (progress, never a repeat) and reports honest
/// usage: a token per four bytes of the request (so a longer conversation counts more, as a
/// tokenizer would) and a random number of output tokens up to the request's `max_tokens`. The
/// cost of each answer at Sonnet's price ($3 and $15 per million tokens) is added to `billed`.
fn busy_honest_model(billed: Arc<Mutex<i64>>) -> Script {
    let files = Arc::new(AtomicUsize::new(0));
    Script::handler(move |r: &LoggedRequest| {
        let max_tokens = r.body["max_tokens"].as_u64().unwrap_or(1);
        let mut rng = rand::thread_rng();
        let input = (r.body_len as u64 / 4).max(1);
        let output = rng.gen_range(1..=max_tokens);
        *billed.lock().unwrap() += i64::try_from(input * 3_000 + output * 15_000).unwrap();
        let n = files.fetch_add(1, Ordering::SeqCst);
        Turn::Reply(
            Reply::default()
                .with_tool_call(
                    "write_file",
                    json!({"path": format!("notes/{n}.txt"), "content": format!("note {n}: {}\n", rng.gen::<u64>())}),
                )
                .with_usage(Usage::new(input, output)),
        )
    })
}

#[test]
fn four_exec_processes_never_cross_one_named_budget_and_status_shows_each() {
    let Some(pg) = TempPostgres::start_or_skip(
        "four_exec_processes_never_cross_one_named_budget_and_status_shows_each",
    ) else {
        return;
    };
    pg.create_database("fleet").unwrap();
    let url = pg.url("fleet");
    let cap = "0.60";
    let cap_nanos = 600_000_000;
    // The budget exists before the processes start (as an operator would set it up), so the
    // test can add the invariant as a constraint the database checks at every moment:
    // settled plus reserved never above the cap.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use governor::ledger::postgres::{BudgetName, LedgerUrl, PgLedger, PgLedgerOptions};
        let mut options = PgLedgerOptions::new(
            LedgerUrl::parse(&url).unwrap(),
            BudgetName::parse("team").unwrap(),
            "setup",
        );
        options.cap = Some(llm::Usd::from_nanos(cap_nanos));
        PgLedger::open(options).await.unwrap();
    });
    pg.psql(
        "fleet",
        "ALTER TABLE loopwright.budgets ADD CONSTRAINT test_never_over
         CHECK (cap_nanos IS NULL OR spent_nanos + reserved_nanos <= cap_nanos)",
    )
    .unwrap();

    let billed = Arc::new(Mutex::new(0i64));
    let server = FakeServer::start_blocking(busy_honest_model(billed.clone()));
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir_all(home.join(".config/loopwright")).unwrap();
    std::fs::write(
        home.join(".config/loopwright/config.toml"),
        "max_tokens = 1024\n[watchdog]\nno_progress_turns = 0\n",
    )
    .unwrap();
    let children: Vec<_> = (0..4)
        .map(|p| {
            let project = dir.path().join(format!("project-{p}"));
            std::fs::create_dir_all(&project).unwrap();
            loopwright_std(&home)
                .arg("exec")
                .arg("--project-dir")
                .arg(&project)
                .arg("--state-dir")
                .arg(dir.path().join(format!("state-{p}")))
                .args(["--model", MODEL, "--budget", cap, "--budget-name", "team"])
                .arg("take notes until the budget runs out")
                .env("LOOPWRIGHT_LEDGER", &url)
                .env("ANTHROPIC_BASE_URL", server.anthropic_base_url())
                .env("ANTHROPIC_API_KEY", "sk-test")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(3),
            "each stops on the budget: {stderr}"
        );
        assert!(stderr.contains("budget exhausted"), "{stderr}");
        assert!(!stderr.contains(pg.password()), "{stderr}");
    }

    let s = budget_status(&home, &url, "team");
    assert_eq!(nanos(&s["cap"]), cap_nanos);
    assert_eq!(
        (nanos(&s["reserved"]), s["open"].as_u64()),
        (0, Some(0)),
        "{s}"
    );
    let spent = nanos(&s["spent"]);
    assert!(spent <= cap_nanos, "spent {spent} of {cap_nanos}");
    assert_eq!(
        spent,
        *billed.lock().unwrap(),
        "every answer is counted, at its price"
    );
    let runs = s["runs"].as_array().unwrap();
    // The totals, for the record (`--nocapture`).
    eprintln!(
        "four processes on a ${cap} budget: spent {spent} of {cap_nanos} nano-dollars in {} attempts; per run: {}",
        s["attempts"],
        runs.iter()
            .map(|r| format!("{} attempts {} nano-dollars", r["attempts"], r["spent"]))
            .collect::<Vec<_>>()
            .join(", ")
    );
    // A process that started after the others had spent the budget stops before any call and
    // has no entry; every other one shows up once.
    assert!((1..=4).contains(&runs.len()), "{s}");
    assert!(runs
        .iter()
        .all(|r| r["run_id"].as_str().unwrap().starts_with("exec-")));
    assert!(
        runs.iter().all(|r| r["attempts"].as_u64().unwrap() >= 1),
        "{s}"
    );
    assert_eq!(runs.iter().map(|r| nanos(&r["spent"])).sum::<i64>(), spent);
    assert_eq!(
        s["attempts"].as_u64().unwrap() as usize,
        server.request_count(),
        "one attempt per request the provider saw"
    );
    // The text form names the budget and every run, and never the password.
    let out = loopwright(&home)
        .args(["status", "--budget", "team"])
        .env("LOOPWRIGHT_LEDGER", &url)
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("budget    team\n"), "{text}");
    assert!(text.contains("cap       $0.60"), "{text}");
    for r in runs {
        assert!(text.contains(r["run_id"].as_str().unwrap()), "{text}");
    }
    assert!(!text.contains(pg.password()), "{text}");
}

/// A complete run of the three-script app from its start: planning, then one build session.
fn complete_run() -> Script {
    let mut turns = planning_turns();
    turns.push(Turn::Reply(NAMES.iter().enumerate().fold(
        Reply::default(),
        |r, (i, name)| {
            r.with_tool_call(
                "write_file",
                json!({"path": format!("{name}.py"), "content": format!("print({})\n", i + 1)}),
            )
        },
    )));
    for id in ["F1", "F2", "F3"] {
        turns.push(call("verify_feature", json!({ "id": id })));
    }
    turns.push(Turn::text("All three work."));
    Script::turns(turns)
}

#[test]
fn a_run_killed_mid_call_leaves_its_reservation_counted_and_resuming_settles_it() {
    let Some(pg) = TempPostgres::start_or_skip(
        "a_run_killed_mid_call_leaves_its_reservation_counted_and_resuming_settles_it",
    ) else {
        return;
    };
    pg.create_database("fleet").unwrap();
    let url = pg.url("fleet");
    let w = world();
    let flags = ["--budget", "5", "--budget-name", "team"];
    // The first call (planning) never answers.
    let stalled = FakeServer::start_blocking(Script::turns(vec![Turn::stall(0, 3_600_000)]));
    let mut child = run_cmd(&w, &stalled, &flags)
        .env("LOOPWRIGHT_LEDGER", &url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while stalled.request_count() < 1 {
        assert!(Instant::now() < deadline, "the run never called the model");
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap(); // SIGKILL, mid-call
    child.wait().unwrap();

    let run_id = std::fs::read_to_string(w.state.join("run-id")).unwrap();
    let run_id = run_id.trim();
    let s = budget_status(&w.home, &url, "team");
    let reserved = nanos(&s["reserved"]);
    assert!(
        reserved > 0,
        "the killed call's reservation is visible: {s}"
    );
    assert_eq!(
        (s["open"].as_u64(), nanos(&s["spent"])),
        (Some(1), 0),
        "{s}"
    );
    assert_eq!(
        nanos(&s["total"]),
        reserved,
        "and counts against the budget"
    );
    assert_eq!(s["runs"][0]["run_id"], run_id);

    // The same command resumes: the dangling reservation is settled first (at the torn-attempt
    // charge: nothing was reported, so all of it), then the run completes.
    let server = FakeServer::start_blocking(complete_run());
    let out = run_cmd(&w, &server, &flags)
        .env("LOOPWRIGHT_LEDGER", &url)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("left 1 attempt(s) unsettled"), "{stderr}");
    let s = budget_status(&w.home, &url, "team");
    assert_eq!(
        (s["open"].as_u64(), nanos(&s["reserved"])),
        (Some(0), 0),
        "{s}"
    );
    assert!(nanos(&s["spent"]) > reserved, "{s}");
    assert_eq!(
        s["runs"].as_array().unwrap().len(),
        1,
        "one run, resumed: {s}"
    );
    assert_eq!(s["runs"][0]["run_id"], run_id);
    assert_eq!(
        pg.psql(
            "fleet",
            "SELECT outcome, settled_by, cost_nanos FROM loopwright.ledger WHERE settled_by <> 'self'"
        )
        .unwrap(),
        format!("torn|resume|{reserved}")
    );
}

#[test]
fn unusable_ledgers_are_refused_with_exit_2_before_anything_is_sent() {
    let pg = TempPostgres::start_or_skip(
        "unusable_ledgers_are_refused_with_exit_2_before_anything_is_sent",
    );
    let server = FakeServer::start_blocking(Script::turns(vec![Turn::text("never asked")]));
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let project = dir.path().join("project");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&project).unwrap();
    let exec = |ledger: Option<&str>, extra: &[&str]| {
        let mut cmd = loopwright(&home);
        cmd.arg("exec")
            .arg("--project-dir")
            .arg(&project)
            .args(["--model", MODEL, "--budget", "1"])
            .args(extra)
            .arg("say hi")
            .env("ANTHROPIC_BASE_URL", server.anthropic_base_url())
            .env("ANTHROPIC_API_KEY", "sk-test");
        if let Some(url) = ledger {
            cmd.env("LOOPWRIGHT_LEDGER", url);
        }
        cmd.output().unwrap()
    };
    let mut cases = vec![
        (
            "mysql://lw:hunter2@db/ledger".to_string(),
            "not a PostgreSQL URL",
        ),
        (
            "postgres://lw:hunter2@db:port/ledger".to_string(),
            "cannot be read",
        ),
        (
            "postgres://lw:hunter2@127.0.0.1:1/ledger?connect_timeout=5".to_string(),
            "is PostgreSQL running and reachable at 127.0.0.1 (port 1)",
        ),
    ];
    if let Some(pg) = &pg {
        pg.create_database("fleet").unwrap();
        cases.push((
            pg.url_with_password("fleet", "hunter2"),
            "check the user and password",
        ));
    }
    for (url, says) in &cases {
        let out = exec(Some(url), &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{url}: {stderr}");
        assert!(stderr.contains(says), "{url}: {stderr}");
        assert!(!stderr.contains("hunter2"), "{url}: {stderr}");
        assert!(
            stderr.contains("***"),
            "the URL is shown redacted: {stderr}"
        );
    }
    // A budget name needs a database ledger; so does status --budget.
    let out = exec(None, &["--budget-name", "team"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs a database ledger"));
    let out = loopwright(&home)
        .args(["status", "--budget", "team"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("none is configured"));
    assert_eq!(server.request_count(), 0, "nothing was sent");
    if let Some(pg) = &pg {
        assert_eq!(
            pg.psql("fleet", "SELECT to_regclass('loopwright.ledger') IS NULL")
                .unwrap(),
            "t",
            "nothing was written"
        );
    }
}
