//! Showing what a run does: a live progress line on a terminal, plain log lines otherwise,
//! JSONL events on stdout with `--json`. All three are [`agent::EventSink`]s.
//!
//! Everything shown to a person goes through [`crate::terminal`]: streamed model text through a
//! [`StreamSanitizer`] (a control sequence split across two deltas is still removed), every
//! other line through [`sanitize`]. JSON keeps the raw text ([`crate::terminal::json_line`]).

use crate::terminal::{json_line, sanitize, StreamSanitizer};
use agent::{Event, EventKind, EventSink};
use llm::Usd;
use std::io::Write;
use std::sync::Mutex;

/// How events are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    /// One JSON object per line on stdout; nothing else on stdout, nothing on stderr but errors.
    Json,
    /// A status line on stderr redrawn in place, with model text and tool lines above it.
    Live,
    /// Plain lines on stderr (not a terminal: CI, pipes, files).
    Log,
}

impl Display {
    /// `--json` wins; otherwise live when stderr is a terminal.
    pub fn choose(json: bool) -> Display {
        use std::io::IsTerminal;
        if json {
            Display::Json
        } else if std::io::stderr().is_terminal() {
            Display::Live
        } else {
            Display::Log
        }
    }
}

/// The CLI's event sink.
pub struct Progress {
    display: Display,
    state: Mutex<Screen>,
}

/// The status and where human output goes (stderr; a buffer in tests).
struct Screen {
    status: Status,
    out: Box<dyn Write + Send>,
}

/// What the live line shows.
#[derive(Debug, Default)]
struct Status {
    turn: u32,
    tool: Option<String>,
    input_tokens: u64,
    output_tokens: u64,
    spent: Usd,
    budget: Option<Usd>,
    /// Whether a model call is under way.
    calling: bool,
    /// Whether a status line is on screen (to be cleared before printing above it).
    line_shown: bool,
    /// Whether streamed model text left the cursor mid-line.
    mid_text: bool,
    /// Streamed model text, stripped of control sequences across deltas.
    stream: StreamSanitizer,
}

impl Progress {
    pub fn new(display: Display) -> Progress {
        Progress::with_output(display, Box::new(std::io::stderr()))
    }

    /// A sink whose human output (live line, log lines) goes to `out` instead of stderr.
    pub fn with_output(display: Display, out: Box<dyn Write + Send>) -> Progress {
        Progress {
            display,
            state: Mutex::new(Screen {
                status: Status::default(),
                out,
            }),
        }
    }

    /// Takes the live status line off the screen (before the process prints its last words).
    pub fn finish_line(&self) {
        if self.display == Display::Live {
            let mut screen = self.lock();
            let Screen { status, out } = &mut *screen;
            clear(out, status);
            let _ = out.flush();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Screen> {
        match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn emit_json(&self, event: &Event) {
        if let Ok(line) = json_line(event) {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }

    fn emit_human(&self, event: &Event) {
        let mut screen = self.lock();
        let Screen { status, out: err } = &mut *screen;
        update(status, &event.kind);
        if matches!(
            event.kind,
            EventKind::AssistantText { .. } | EventKind::SessionCompleted { .. }
        ) {
            // The turn's text is complete: a sequence it left open ends with it.
            status.stream.finish();
        }
        if self.display == Display::Live {
            clear(err, status);
        }
        // Text streamed live is already on screen; elsewhere it is printed whole.
        let skip_text =
            self.display == Display::Live && matches!(event.kind, EventKind::AssistantText { .. });
        if status.mid_text && !skip_text {
            let _ = writeln!(err);
            status.mid_text = false;
        }
        if !skip_text {
            if let Some(line) = describe(&event.kind) {
                let _ = writeln!(err, "{}", sanitize(&line));
            }
        } else if status.mid_text {
            let _ = writeln!(err);
            status.mid_text = false;
        }
        if self.display == Display::Live
            && !matches!(event.kind, EventKind::SessionCompleted { .. })
        {
            let _ = write!(err, "{}", status_line(status));
            status.line_shown = true;
        }
        let _ = err.flush();
    }
}

impl EventSink for Progress {
    fn emit(&self, event: &Event) {
        match self.display {
            Display::Json => self.emit_json(event),
            Display::Live | Display::Log => self.emit_human(event),
        }
    }

    fn text_delta(&self, _session: &str, text: &str) {
        if self.display != Display::Live {
            return;
        }
        let mut screen = self.lock();
        let Screen { status, out: err } = &mut *screen;
        let text = status.stream.push(text);
        if text.is_empty() {
            return;
        }
        clear(err, status);
        let _ = write!(err, "{text}");
        status.mid_text = !text.ends_with('\n');
        let _ = err.flush();
    }
}

fn clear(err: &mut impl Write, status: &mut Status) {
    if status.line_shown {
        // Carriage return, then erase the line.
        let _ = write!(err, "\r\x1b[2K");
        status.line_shown = false;
    }
}

fn update(status: &mut Status, kind: &EventKind) {
    match kind {
        EventKind::SessionStarted { budget, .. } => {
            status.budget = *budget;
            status.calling = true;
        }
        EventKind::TurnCompleted {
            turn,
            usage,
            spent,
            budget,
            ..
        } => {
            status.turn = *turn;
            status.input_tokens += usage.total_input();
            status.output_tokens += usage.output_tokens;
            status.spent = *spent;
            status.budget = *budget;
            status.calling = false;
        }
        EventKind::ToolStarted { name, summary, .. } => {
            status.tool = Some(format!("{name} {summary}"))
        }
        EventKind::ToolCompleted { .. } => {
            status.tool = None;
            status.calling = true;
        }
        _ => {}
    }
}

/// The live line: `turn 3 · bash pytest -q · 12.3k in / 1.2k out · $0.012300 of $5.000000`
/// (or `turn 4 · asking the model · ...` while a model call is under way).
fn status_line(status: &Status) -> String {
    let mut parts = Vec::new();
    if let Some(tool) = &status.tool {
        parts.push(format!("turn {}", status.turn));
        parts.push(agent::events::one_line(tool, 60));
    } else if status.calling {
        parts.push(format!("turn {}", status.turn + 1));
        parts.push("asking the model".to_string());
    } else {
        parts.push(format!("turn {}", status.turn));
    }
    parts.push(format!(
        "{} in / {} out",
        tokens(status.input_tokens),
        tokens(status.output_tokens)
    ));
    parts.push(money(status.spent, status.budget));
    sanitize(&agent::events::one_line(&parts.join(" · "), 140))
}

fn tokens(n: u64) -> String {
    if n >= 1_000 {
        format!("{}.{}k", n / 1_000, (n % 1_000) / 100)
    } else {
        n.to_string()
    }
}

fn money(spent: Usd, budget: Option<Usd>) -> String {
    match budget {
        Some(b) => format!("{spent} of {b}"),
        None => format!("{spent} spent"),
    }
}

/// A log line for an event, or `None` for events shown only on the live line.
fn describe(kind: &EventKind) -> Option<String> {
    Some(match kind {
        EventKind::SessionStarted {
            model,
            project,
            budget,
            ..
        } => match budget {
            Some(b) => format!("loopwright: {model} in {project}, budget {b}"),
            None => format!("loopwright: {model} in {project}"),
        },
        EventKind::AssistantText { text, .. } => text.trim_end().to_string(),
        EventKind::TurnCompleted {
            turn,
            usage,
            cost,
            spent,
            budget,
            ..
        } => format!(
            "· turn {turn}: {} in / {} out, {cost} ({})",
            tokens(usage.total_input()),
            tokens(usage.output_tokens),
            money(*spent, *budget)
        ),
        EventKind::ToolStarted { name, summary, .. } => format!("→ {name} {summary}"),
        EventKind::ToolCompleted {
            summary, is_error, ..
        } => {
            format!("  {} {summary}", if *is_error { "✗" } else { "✓" })
        }
        EventKind::Retry {
            attempt,
            wait_ms,
            reason,
        } => {
            format!("! retrying the model call (attempt {attempt}) in {wait_ms} ms: {reason}")
        }
        EventKind::Notice { notice, .. } => format!("! {}", agent::events::one_line(notice, 120)),
        EventKind::SessionCompleted {
            end,
            detail,
            turns,
            cost,
            ..
        } => {
            if detail.is_empty() {
                format!("loopwright: session {end} after {turns} turns, {cost}")
            } else {
                format!(
                    "loopwright: session {end} after {turns} turns, {cost}: {}",
                    agent::events::one_line(detail, 160)
                )
            }
        }
        EventKind::Error { message, .. } => format!("error: {message}"),
        EventKind::Warning { message } => format!("warning: {message}"),
        EventKind::FrozenRestored { paths } => {
            format!("! restored frozen files: {}", paths.join(", "))
        }
        EventKind::GitRestored { restored, history } => match history {
            Some(history) => format!("! {history}; the git history was restored"),
            None => format!(
                "! put back git files the agent changed: {}",
                restored.join(", ")
            ),
        },
        EventKind::CommitSkipped { paths, max_bytes } => format!(
            "! not committed (bigger than {max_bytes} bytes): {}",
            paths.join(", ")
        ),
        EventKind::FeatureVerified { id, passed, .. } => {
            format!("{} feature {id}", if *passed { "✓" } else { "✗" })
        }
        EventKind::FeatureRegressed { id, .. } => {
            format!("✗ feature {id} regressed: it passed before and fails now")
        }
        EventKind::RunStarted {
            model,
            project,
            phase,
            passing,
            total,
        } => format!("loopwright run: {model} in {project}, {phase}, passing {passing}/{total}"),
        EventKind::PlanFrozen {
            features,
            frozen_files,
        } => format!("plan frozen: {features} features, {frozen_files} files"),
        EventKind::RunCompleted {
            reason,
            passing,
            total,
            spent,
            ..
        } => format!("run {reason}: passing {passing}/{total}, spent {spent}"),
        // Allowed connections are only in the JSON events; refusals are worth a line.
        EventKind::ProxyConnection {
            host,
            port,
            allowed,
            reason,
            ..
        } => {
            if *allowed || host.is_empty() {
                return None;
            }
            format!("✗ network: refused {host}:{port}: {reason}")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A writer the test keeps a handle on.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    #[test]
    fn streamed_text_loses_sequences_split_across_deltas() {
        let out = Captured::default();
        let progress = Progress::with_output(Display::Live, Box::new(out.clone()));
        for delta in [
            "hello \x1b]5",
            "2;c;cHduZWQ=",
            "\x07world \x1b",
            "[2J\x1b[",
            "Hagain\r\n",
            "bell\x07\u{9b}",
            "31m!",
        ] {
            progress.text_delta("s1", delta);
        }
        assert_eq!(out.text(), "hello world again\nbell!");
    }

    #[test]
    fn log_lines_of_model_text_and_tool_summaries_are_sanitised() {
        let out = Captured::default();
        let progress = Progress::with_output(Display::Log, Box::new(out.clone()));
        progress.emit(&Event::now(
            "s1",
            EventKind::AssistantText {
                turn: 1,
                text: "done\x1b]52;c;cHduZWQ=\x07 \x1b[2Jreally".into(),
            },
        ));
        progress.emit(&Event::now(
            "s1",
            EventKind::ToolCompleted {
                turn: 1,
                id: "t".into(),
                name: "bash".into(),
                exit_code: Some(0),
                is_error: false,
                summary: "bash: ls\x1b]8;;https://evil.example\x07 → exit 0".into(),
            },
        ));
        let text = out.text();
        assert_eq!(text, "done really\n  ✓ bash: ls → exit 0\n");
    }

    #[test]
    fn a_sequence_left_open_by_one_turn_does_not_swallow_the_next() {
        let out = Captured::default();
        let progress = Progress::with_output(Display::Live, Box::new(out.clone()));
        progress.text_delta("s1", "first\x1b]52;c;");
        progress.emit(&Event::now(
            "s1",
            EventKind::AssistantText {
                turn: 1,
                text: "first\x1b]52;c;".into(),
            },
        ));
        progress.text_delta("s1", "second");
        assert!(out.text().contains("second"), "{:?}", out.text());
        assert!(!out.text().contains("52;c"), "{:?}", out.text());
    }

    #[test]
    fn refused_connections_get_a_line_and_allowed_ones_do_not() {
        let event = |host: &str, allowed: bool| EventKind::ProxyConnection {
            host: host.into(),
            port: 443,
            allowed,
            reason: format!("{host} is not on the allowlist"),
            bytes_up: 0,
            bytes_down: 0,
            duration_ms: 1,
        };
        assert_eq!(
            describe(&event("evil.invalid", false)).as_deref(),
            Some("✗ network: refused evil.invalid:443: evil.invalid is not on the allowlist")
        );
        assert_eq!(describe(&event("pypi.org", true)), None);
        assert_eq!(describe(&event("", false)), None);
    }

    #[test]
    fn status_line_shows_turn_tool_tokens_and_money() {
        let status = Status {
            turn: 3,
            tool: Some("bash pytest -q".into()),
            input_tokens: 12_345,
            output_tokens: 999,
            spent: Usd::from_nanos(12_300_000),
            budget: Some(Usd::from_nanos(5_000_000_000)),
            ..Status::default()
        };
        assert_eq!(
            status_line(&status),
            "turn 3 · bash pytest -q · 12.3k in / 999 out · $0.012300 of $5.000000"
        );
        let waiting = Status {
            tool: None,
            calling: true,
            ..status
        };
        assert_eq!(
            status_line(&waiting),
            "turn 4 · asking the model · 12.3k in / 999 out · $0.012300 of $5.000000"
        );
    }
}
