//! The harness's own cost per turn: one session of N turns against the fake model server
//! answering instantly on 127.0.0.1, each turn a `read_file` or `list_files` call on a small
//! project. Prints the time per turn (mean, p50, p95, max) and the peak RSS; asserts nothing.
//!
//! A turn here is: build the request, the Governor's reservation + ledger fsyncs, the HTTP call
//! (streamed SSE from the in-process fake server), parsing, the tool call, transcript lines and
//! events. It is an upper bound on the harness's overhead: the fake server's work is included.
//!
//! Run: `cargo bench -p loopwright --bench turn_overhead` (`TURNS=500` to change N).

use agent::{Event, EventKind, EventSink, Session, SessionConfig};
use serde_json::json;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use testkit::{FakeServer, LoggedRequest, Script, Turn};

/// Records when each turn completed, and how long the tool calls took.
struct TurnClock {
    marks: Mutex<Vec<Instant>>,
    tool_started: Mutex<Option<Instant>>,
    in_tools: Mutex<Duration>,
}

impl EventSink for TurnClock {
    fn emit(&self, event: &Event) {
        let now = Instant::now();
        match event.kind {
            EventKind::TurnCompleted { .. } => {
                if let Ok(mut marks) = self.marks.lock() {
                    marks.push(now);
                }
            }
            EventKind::ToolStarted { .. } => {
                if let Ok(mut started) = self.tool_started.lock() {
                    *started = Some(now);
                }
            }
            EventKind::ToolCompleted { .. } => {
                let started = self.tool_started.lock().ok().and_then(|mut s| s.take());
                if let (Some(started), Ok(mut total)) = (started, self.in_tools.lock()) {
                    *total += now - started;
                }
            }
            _ => {}
        }
    }
}

fn main() {
    let turns: u32 = std::env::var("TURNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start a runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(bench(turns)) {
        eprintln!("turn_overhead: {e}");
        std::process::exit(1);
    }
}

async fn bench(turns: u32) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let project = dir.path().join("project");
    let state = dir.path().join("state");
    std::fs::create_dir_all(project.join("src"))?;
    std::fs::create_dir_all(&state)?;
    for i in 0..20 {
        let body: String = (0..40).map(|l| format!("line {l} of file {i}\n")).collect();
        std::fs::write(project.join("src").join(format!("m{i}.py")), body)?;
    }
    std::fs::write(project.join("README.md"), "# bench\n")?;

    let server = FakeServer::start(Script::handler(|req: &LoggedRequest| {
        let n = req.seq;
        if n % 4 != 3 {
            Turn::tool_call(
                "read_file",
                json!({"path": format!("src/m{}.py", n % 20), "offset": 1 + n % 7}),
            )
        } else {
            Turn::tool_call(
                "list_files",
                json!({"path": "src", "pattern": format!("m{}*", n % 10)}),
            )
        }
    }))
    .await;
    let governor = governor_for(&server, &state)?;
    let mut config = tools::ToolboxConfig::new(&project);
    config.sandbox_mode = sandbox::SandboxMode::Off;
    let toolbox = tools::Toolbox::new(config)?;

    let mut session = SessionConfig::new("bench", "You are a benchmark.", "read everything");
    session.max_turns = turns;
    // The scripted calls come round again and change nothing by design; the bench measures
    // turns, not the watchdog's verdict.
    session.watchdog = agent::WatchdogConfig {
        no_progress_turns: 0,
        tool_error_turns: 0,
        repeat_limit: 0,
        ..agent::WatchdogConfig::default()
    };
    session.transcript = Some(state.join("sessions").join("bench.jsonl"));
    let clock = TurnClock {
        marks: Mutex::new(Vec::new()),
        tool_started: Mutex::new(None),
        in_tools: Mutex::new(Duration::ZERO),
    };
    let start = Instant::now();
    let outcome = Session::new(&governor, &toolbox, session)
        .events(&clock)
        .run()
        .await?;
    let total = start.elapsed();

    let marks = clock.marks.lock().map(|m| m.clone()).unwrap_or_default();
    let mut per_turn: Vec<Duration> = std::iter::once(start)
        .chain(marks.iter().copied())
        .collect::<Vec<_>>()
        .windows(2)
        .map(|w| w[1] - w[0])
        .collect();
    per_turn.sort();
    let n = per_turn.len().max(1);
    let mean = per_turn.iter().sum::<Duration>() / n as u32;
    let pct = |p: usize| {
        per_turn
            .get((per_turn.len() * p / 100).min(per_turn.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "turn_overhead: {} turns ({:?}) in {:.3} s",
        outcome.turns,
        outcome.end,
        total.as_secs_f64()
    );
    println!(
        "per turn: mean {:.3} ms · p50 {:.3} ms · p95 {:.3} ms · max {:.3} ms",
        ms(mean),
        ms(pct(50)),
        ms(pct(95)),
        ms(per_turn.last().copied().unwrap_or_default())
    );
    let in_tools = clock.in_tools.lock().map(|d| *d).unwrap_or_default();
    println!(
        "of which tool calls: mean {:.3} ms per turn; the rest is the model call (Governor reserve + \
         settle with two ledger fsyncs, request building, HTTP + SSE parsing, fake server), \
         transcript and events",
        ms(in_tools / n as u32)
    );
    println!(
        "peak RSS (VmHWM, harness + in-process fake server): {}",
        peak_rss()
    );
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .map(|l| l["VmHWM:".len()..].trim().to_string())
        })
        .unwrap_or_else(|| "unknown (no /proc/self/status)".to_string())
}

/// A Governor on the fake server's Anthropic wire (no budget: the bench measures, it does not
/// spend).
fn governor_for(
    server: &FakeServer,
    state: &std::path::Path,
) -> Result<governor::Governor, governor::GovernorError> {
    let providers = governor::ProvidersConfig::default();
    let pricing = governor::PricingOverrides::default();
    let settings = governor::GovernorSettings {
        model: "anthropic/claude-sonnet-4-5",
        providers: &providers,
        pricing: &pricing,
        openrouter_catalog: None,
        budget: None,
        free_only: false,
        ledger_path: state.join("ledger.jsonl"),
        record_to: None,
    };
    let base = server.anthropic_base_url();
    let env = move |k: &str| match k {
        "ANTHROPIC_API_KEY" => Some("bench-key".to_string()),
        "ANTHROPIC_BASE_URL" => Some(base.clone()),
        _ => None,
    };
    governor::Governor::new(governor::GovernorConfig::resolve(&settings, &env)?)
}
