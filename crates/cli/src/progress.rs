//! Showing what a run does. All displays are [`agent::EventSink`]s:
//! - **live** (stdout and stderr are terminals): a one-line live area at the bottom of stderr
//!   (indicatif, cut to the terminal's width, redrawn in place) showing the run's phase, the
//!   session, passing X/Y, the turn, the current tool, the elapsed time and the spend of the
//!   budget to the cent; the model's text streams above it line by line, with tool calls and
//!   verdicts (a failed command is marked ✗);
//! - **log** (not a terminal): plain lines on stderr, each stamped with its UTC time;
//! - **quiet** (`-q`): warnings, errors and how the run ended;
//! - **json** (`--json`): one event per line on stdout (docs/events.md), full precision.
//!
//! Everything shown to a person goes through [`crate::terminal`]: streamed model text through a
//! [`StreamSanitizer`] (a control sequence split across two deltas is still removed), every
//! other line through [`sanitize`]. JSON keeps the raw text ([`crate::terminal::json_line`]).

use crate::report::cents;
use crate::status::human_duration;
use crate::terminal::{json_line, sanitize, StreamSanitizer};
use agent::{Event, EventKind, EventSink};
use llm::Usd;
use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How events are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Display {
    /// One JSON object per line on stdout; nothing else on stdout, nothing on stderr but errors.
    Json,
    /// The live area on stderr, with the model's text and tool lines above it.
    Live,
    /// Plain timestamped lines on stderr (not a terminal: CI, pipes, files).
    Log,
    /// Only warnings, errors and the outcome (`-q`).
    Quiet,
}

impl Display {
    /// `--json` wins, then `-q`; otherwise live when stdout and stderr are both terminals.
    pub fn choose(json: bool) -> Display {
        use std::io::IsTerminal;
        if json {
            Display::Json
        } else if crate::verbosity::quiet() {
            Display::Quiet
        } else if std::io::stdout().is_terminal() && std::io::stderr().is_terminal() {
            Display::Live
        } else {
            Display::Log
        }
    }
}

/// The CLI's event sink.
pub struct Progress {
    display: Display,
    view: Mutex<View>,
    bar: Option<indicatif::ProgressBar>,
    /// Where lines go when there is no live area: stderr, or a buffer in tests.
    out: Mutex<Box<dyn Write + Send>>,
    started: Instant,
    color: bool,
}

/// What the live area knows.
#[derive(Debug, Default)]
struct View {
    phase: Option<String>,
    session: Option<u32>,
    passing: Option<(usize, usize)>,
    turn: u32,
    tool: Option<String>,
    /// A model call is under way.
    calling: bool,
    spent: Usd,
    budget: Option<Usd>,
    /// Streamed model text not yet ended by a newline (already sanitised).
    partial: String,
    /// Streamed model text, stripped of control sequences across deltas.
    stream: StreamSanitizer,
    /// Parallel build sessions running (`run --workers N`): session number → its features.
    workers: std::collections::BTreeMap<u32, Vec<String>>,
}

impl Progress {
    pub fn new(display: Display) -> Progress {
        let bar = (display == Display::Live).then(|| {
            let bar = indicatif::ProgressBar::with_draw_target(
                None,
                indicatif::ProgressDrawTarget::stderr(),
            );
            let style = indicatif::ProgressStyle::with_template("{spinner} {wide_msg}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner());
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress {
            display,
            view: Mutex::new(View::default()),
            bar,
            out: Mutex::new(Box::new(std::io::stderr())),
            started: Instant::now(),
            color: crate::verbosity::color_on_stderr(),
        }
    }

    /// A sink whose human output goes to `out` instead of stderr, without a live area.
    #[cfg(test)]
    pub fn with_output(display: Display, out: Box<dyn Write + Send>) -> Progress {
        Progress {
            display,
            view: Mutex::new(View::default()),
            bar: None,
            out: Mutex::new(out),
            started: Instant::now(),
            color: false,
        }
    }

    /// Takes the live area off the screen (before the process prints its last words).
    pub fn finish_line(&self) {
        let mut view = self.lock();
        self.flush_partial(&mut view);
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, View> {
        match self.view.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// A line above the live area, or on stderr; sanitised, then its ✓/✗ mark coloured when
    /// colour is allowed (after sanitising, which would remove the colour codes).
    fn line(&self, text: &str) {
        let clean = sanitize(text);
        if !self.color {
            return self.line_sanitised(&clean);
        }
        let body = clean.trim_start();
        let indent = &clean[..clean.len() - body.len()];
        let painted = match body.chars().next() {
            Some(c @ ('✓' | '✗')) => {
                format!("{indent}{}{}", mark(c == '✓', true), &body[c.len_utf8()..])
            }
            _ => clean.clone(),
        };
        self.line_sanitised(&painted);
    }

    fn line_sanitised(&self, text: &str) {
        match &self.bar {
            Some(bar) if !bar.is_finished() => bar.println(text),
            _ => {
                let mut out = match self.out.lock() {
                    Ok(guard) => guard,
                    Err(poisoned) => poisoned.into_inner(),
                };
                let _ = writeln!(out, "{text}");
                let _ = out.flush();
            }
        }
    }

    /// Streamed text that did not end with a newline is shown before anything else.
    fn flush_partial(&self, view: &mut View) {
        if !view.partial.is_empty() {
            let rest = std::mem::take(&mut view.partial);
            self.line_sanitised(&rest);
        }
    }

    fn emit_json(&self, event: &Event) {
        if let Ok(line) = json_line(event) {
            let mut out = std::io::stdout().lock();
            if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
                // A run goes on when the reader of its events went away (`| head`).
                if e.kind() != std::io::ErrorKind::BrokenPipe {
                    tracing::warn!("cannot write an event to stdout: {e}");
                }
            }
        }
    }

    fn emit_human(&self, event: &Event) {
        let mut view = self.lock();
        update(&mut view, event);
        if matches!(
            event.kind,
            EventKind::AssistantText { .. } | EventKind::SessionCompleted { .. }
        ) {
            // The turn's text is complete: a sequence it left open ends with it.
            view.stream.finish();
        }
        if self.display == Display::Quiet
            && !matches!(
                event.kind,
                EventKind::Warning { .. }
                    | EventKind::Error { .. }
                    | EventKind::RunCompleted { .. }
            )
        {
            return;
        }
        // Text streamed live is already on screen.
        let streamed_text =
            self.display == Display::Live && matches!(event.kind, EventKind::AssistantText { .. });
        self.flush_partial(&mut view);
        if !streamed_text {
            if let Some(text) = describe(&event.kind, false) {
                match self.display {
                    Display::Log => {
                        let time = event.ts.get(11..19).unwrap_or("");
                        for (i, l) in text.lines().enumerate() {
                            if i == 0 {
                                self.line(&format!("{time} {l}"));
                            } else {
                                self.line(&format!("{:9}{l}", ""));
                            }
                        }
                    }
                    _ => self.line(&text),
                }
            }
        }
        if let Some(bar) = &self.bar {
            bar.set_message(status_line(&view, self.started.elapsed()));
        }
    }
}

impl EventSink for Progress {
    fn emit(&self, event: &Event) {
        match self.display {
            Display::Json => self.emit_json(event),
            Display::Live | Display::Log | Display::Quiet => self.emit_human(event),
        }
    }

    fn text_delta(&self, _session: &str, text: &str) {
        if self.display != Display::Live {
            return;
        }
        let mut view = self.lock();
        let clean = view.stream.push(text);
        view.partial.push_str(&clean);
        while let Some(i) = view.partial.find('\n') {
            let line: String = view.partial.drain(..=i).collect();
            self.line_sanitised(line.trim_end_matches('\n'));
        }
    }
}

fn session_number(session: &str) -> Option<u32> {
    session.strip_prefix("session-")?.parse().ok()
}

fn update(view: &mut View, event: &Event) {
    match &event.kind {
        EventKind::RunStarted {
            phase,
            passing,
            total,
            ..
        } => {
            view.phase = Some(phase.clone());
            view.passing = Some((*passing, *total));
        }
        EventKind::SessionStarted { budget, .. } => {
            view.budget = *budget;
            view.session = session_number(&event.session);
            view.turn = 0;
            view.tool = None;
            view.calling = true;
        }
        EventKind::TurnCompleted {
            turn,
            spent,
            budget,
            ..
        } => {
            view.turn = *turn;
            view.spent = *spent;
            view.budget = *budget;
            view.calling = false;
        }
        EventKind::ToolStarted { name, summary, .. } => {
            view.tool = Some(format!("{name} {summary}"));
        }
        EventKind::ToolCompleted { .. } => {
            view.tool = None;
            view.calling = true;
        }
        EventKind::PlanFrozen { features, .. } => {
            view.phase = Some("building".into());
            view.passing = Some((0, *features));
        }
        EventKind::FeatureVerified { passing, total, .. }
        | EventKind::FeatureRegressed { passing, total, .. }
            if *total > 0 =>
        {
            view.passing = Some((*passing, *total));
        }
        EventKind::SessionCompleted { .. } => {
            view.tool = None;
            view.calling = false;
        }
        EventKind::RunCompleted {
            passing,
            total,
            spent,
            ..
        } => {
            view.passing = Some((*passing, *total));
            view.spent = *spent;
            view.workers.clear();
        }
        EventKind::WorkerStarted { features, .. } => {
            if let Some(n) = session_number(&event.session) {
                view.workers.insert(n, features.clone());
            }
        }
        EventKind::WorkerMerged { .. } | EventKind::WorkerConflict { .. } => {
            if let Some(n) = session_number(&event.session) {
                view.workers.remove(&n);
            }
        }
        _ => {}
    }
}

/// The live area: `building · session 3 · passing 2/5 · turn 4 · bash pytest -q · 3m 05s ·
/// $0.12 of $5.00` (indicatif cuts it to the terminal's width).
fn status_line(view: &View, elapsed: Duration) -> String {
    let mut parts = Vec::new();
    if let Some(phase) = &view.phase {
        parts.push(phase.clone());
    }
    if !view.workers.is_empty() {
        // Each worker: its session and its features (`workers 2:F1,F2 3:F3,F4`).
        let shown: Vec<String> = view
            .workers
            .iter()
            .map(|(n, features)| format!("{n}:{}", features.join(",")))
            .collect();
        parts.push(format!("workers {}", shown.join(" ")));
    } else if let Some(n) = view.session {
        parts.push(format!("session {n}"));
    }
    if let Some((passing, total)) = view.passing {
        parts.push(format!("passing {passing}/{total}"));
    }
    match (&view.tool, view.calling) {
        (Some(tool), _) => {
            parts.push(format!("turn {}", view.turn));
            parts.push(agent::events::one_line(tool, 60));
        }
        (None, true) => {
            parts.push(format!("turn {}", view.turn + 1));
            parts.push("asking the model".into());
        }
        (None, false) => parts.push(format!("turn {}", view.turn)),
    }
    parts.push(human_duration(elapsed.as_secs()));
    parts.push(money(view.spent, view.budget));
    sanitize(&parts.join(" · "))
}

fn tokens(n: u64) -> String {
    if n >= 1_000 {
        format!("{}.{}k", n / 1_000, (n % 1_000) / 100)
    } else {
        n.to_string()
    }
}

/// `$0.12 of $5.00` (to the cent; the ledger and `--json` keep every nano-dollar).
fn money(spent: Usd, budget: Option<Usd>) -> String {
    match budget {
        Some(b) => format!("{} of {}", cents(spent), cents(b)),
        None => format!("{} spent", cents(spent)),
    }
}

fn mark(ok: bool, color: bool) -> &'static str {
    match (ok, color) {
        (true, true) => "\x1b[32m✓\x1b[0m",
        (true, false) => "✓",
        (false, true) => "\x1b[31m✗\x1b[0m",
        (false, false) => "✗",
    }
}

/// A line for an event, or `None` for events shown only in the live area.
fn describe(kind: &EventKind, color: bool) -> Option<String> {
    Some(match kind {
        EventKind::SessionStarted {
            model,
            project,
            budget,
            ..
        } => match budget {
            Some(b) => format!("loopwright: {model} in {project}, budget {}", cents(*b)),
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
            "· turn {turn}: {} in / {} out, {} ({})",
            tokens(usage.total_input()),
            tokens(usage.output_tokens),
            cents(*cost),
            money(*spent, *budget)
        ),
        EventKind::ToolStarted { name, summary, .. } => format!("→ {name} {summary}"),
        EventKind::ToolCompleted {
            summary,
            is_error,
            exit_code,
            ..
        } => {
            // The summary says how a command exited; a non-zero exit is a failure to show.
            let failed = *is_error || exit_code.is_some_and(|c| c != 0);
            format!("  {} {summary}", mark(!failed, color))
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
                format!(
                    "loopwright: session {end} after {turns} turns, {}",
                    cents(*cost)
                )
            } else {
                format!(
                    "loopwright: session {end} after {turns} turns, {}: {}",
                    cents(*cost),
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
        EventKind::FeatureVerified {
            id,
            passed,
            passing,
            total,
            ..
        } => format!(
            "{} feature {id} {} (passing {passing}/{total})",
            mark(*passed, color),
            if *passed { "passes" } else { "fails" }
        ),
        EventKind::FeatureRegressed { id, .. } => {
            format!(
                "{} feature {id} regressed: it passed before and fails now",
                mark(false, color)
            )
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
        } => format!(
            "run {reason}: passing {passing}/{total}, spent {}",
            cents(*spent)
        ),
        EventKind::WorkerStarted {
            features, branch, ..
        } => format!("worker started on {branch}: {}", features.join(", ")),
        EventKind::WorkerMerged {
            branch, passed, ..
        } => format!(
            "merged {branch}: {}",
            if passed.is_empty() {
                "no feature newly passing".to_string()
            } else {
                format!("{} pass", passed.join(", "))
            }
        ),
        EventKind::WorkerConflict {
            branch,
            features,
            files,
        } => format!(
            "{} {branch} conflicts with the run's branch ({}); merge aborted, {} handed to the next session",
            mark(false, color),
            files.join(", "),
            features.join(", ")
        ),
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
            format!(
                "{} network: refused {host}:{port}: {reason}",
                mark(false, color)
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
            describe(&event("evil.invalid", false), false).as_deref(),
            Some("✗ network: refused evil.invalid:443: evil.invalid is not on the allowlist")
        );
        assert_eq!(describe(&event("pypi.org", true), false), None);
        assert_eq!(describe(&event("", false), false), None);
    }

    #[test]
    fn the_live_area_shows_phase_session_passing_turn_tool_time_and_cents() {
        let view = View {
            phase: Some("building".into()),
            session: Some(3),
            passing: Some((2, 5)),
            turn: 3,
            tool: Some("bash pytest -q".into()),
            spent: Usd::from_nanos(12_300_000),
            budget: Some(Usd::from_nanos(5_000_000_000)),
            ..View::default()
        };
        assert_eq!(
            status_line(&view, Duration::from_secs(185)),
            "building · session 3 · passing 2/5 · turn 3 · bash pytest -q · 3m 05s · $0.01 of $5.00"
        );
        let waiting = View {
            tool: None,
            calling: true,
            ..view
        };
        assert_eq!(
            status_line(&waiting, Duration::from_secs(5)),
            "building · session 3 · passing 2/5 · turn 4 · asking the model · 5s · $0.01 of $5.00"
        );
    }

    #[test]
    fn a_command_that_exited_non_zero_is_marked_failed() {
        let done = |exit_code, is_error| EventKind::ToolCompleted {
            turn: 1,
            id: "t".into(),
            name: "bash".into(),
            exit_code,
            is_error,
            summary: "pytest".into(),
        };
        assert_eq!(
            describe(&done(Some(0), false), false).unwrap(),
            "  ✓ pytest"
        );
        assert_eq!(
            describe(&done(Some(1), false), false).unwrap(),
            "  ✗ pytest"
        );
        assert_eq!(describe(&done(None, true), false).unwrap(), "  ✗ pytest");
        assert!(describe(&done(Some(2), false), true)
            .unwrap()
            .contains("\x1b[31m✗"));
    }

    /// A writer the test keeps a handle on.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<Mutex<Vec<u8>>>);

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
        // Whole lines go out as they complete; the rest when the display ends.
        assert_eq!(out.text(), "hello world again\n");
        progress.finish_line();
        assert_eq!(out.text(), "hello world again\nbell!\n");
    }

    #[test]
    fn log_lines_of_model_text_and_tool_summaries_are_sanitised_and_timestamped() {
        let out = Captured::default();
        let progress = Progress::with_output(Display::Log, Box::new(out.clone()));
        let at = |kind| Event {
            kind,
            ts: "2026-05-01T12:34:56.789Z".into(),
            session: "s1".into(),
        };
        progress.emit(&at(EventKind::AssistantText {
            turn: 1,
            text: "done\x1b]52;c;cHduZWQ=\x07 \x1b[2Jreally".into(),
        }));
        progress.emit(&at(EventKind::ToolCompleted {
            turn: 1,
            id: "t".into(),
            name: "bash".into(),
            exit_code: Some(0),
            is_error: false,
            summary: "bash: ls\x1b]8;;https://evil.example\x07 → exit 0".into(),
        }));
        assert_eq!(
            out.text(),
            "12:34:56 done really\n12:34:56   ✓ bash: ls → exit 0\n"
        );
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
        progress.finish_line();
        assert!(out.text().contains("second"), "{:?}", out.text());
        assert!(!out.text().contains("52;c"), "{:?}", out.text());
    }
}
