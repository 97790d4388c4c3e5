//! Showing what a run does: a live progress line on a terminal, plain log lines otherwise,
//! JSONL events on stdout with `--json`. All three are [`agent::EventSink`]s.

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
    state: Mutex<Status>,
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
}

impl Progress {
    pub fn new(display: Display) -> Progress {
        Progress {
            display,
            state: Mutex::new(Status::default()),
        }
    }

    /// Takes the live status line off the screen (before the process prints its last words).
    pub fn finish_line(&self) {
        if self.display == Display::Live {
            let mut status = self.lock();
            let mut err = std::io::stderr().lock();
            clear(&mut err, &mut status);
            let _ = err.flush();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Status> {
        match self.state.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn emit_json(&self, event: &Event) {
        if let Ok(line) = serde_json::to_string(event) {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }

    fn emit_human(&self, event: &Event) {
        let mut status = self.lock();
        update(&mut status, &event.kind);
        let mut err = std::io::stderr().lock();
        if self.display == Display::Live {
            clear(&mut err, &mut status);
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
                let _ = writeln!(err, "{line}");
            }
        } else if status.mid_text {
            let _ = writeln!(err);
            status.mid_text = false;
        }
        if self.display == Display::Live
            && !matches!(event.kind, EventKind::SessionCompleted { .. })
        {
            let _ = write!(err, "{}", status_line(&status));
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
        let mut status = self.lock();
        let mut err = std::io::stderr().lock();
        clear(&mut err, &mut status);
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
    agent::events::one_line(&parts.join(" · "), 140)
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
            end, turns, cost, ..
        } => match end.explanation() {
            Some(why) => format!("loopwright: session {end} after {turns} turns, {cost}: {why}"),
            None => format!("loopwright: session {end} after {turns} turns, {cost}"),
        },
        EventKind::Error { message, .. } => format!("error: {message}"),
        EventKind::Warning { message } => format!("warning: {message}"),
        EventKind::FrozenRestored { paths } => {
            format!("! restored frozen files: {}", paths.join(", "))
        }
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
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
