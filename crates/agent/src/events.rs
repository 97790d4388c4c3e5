//! What a session (and later a run) reports as it goes: [`Event`]s handed to an [`EventSink`].
//!
//! Serialized as one JSON object per event, `{"type": "...", "ts": RFC3339, "session": id, ...}`;
//! this is the `--json` output of the CLI, so field names are a public contract. Money is a
//! decimal string of US dollars (`"0.012345"`), never a float.

use llm::{Usage, Usd};
use serde::{Deserialize, Serialize};

/// One thing that happened, with when and in which session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// `type` and the kind's fields, flattened into the same object.
    #[serde(flatten)]
    pub kind: EventKind,
    /// RFC 3339 UTC timestamp.
    pub ts: String,
    pub session: String,
}

impl Event {
    /// An event stamped with the current time.
    pub fn now(session: &str, kind: EventKind) -> Event {
        Event {
            kind,
            ts: rfc3339_now(),
            session: session.to_string(),
        }
    }
}

/// The kinds of event. New kinds may be added; consumers should ignore types they do not know.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum EventKind {
    #[serde(rename = "session.started")]
    SessionStarted {
        /// The pinned model string.
        model: String,
        project: String,
        max_turns: u32,
        #[serde(with = "usd_opt")]
        budget: Option<Usd>,
    },
    /// One model call answered (a turn is one model call and the tool calls it asked for).
    #[serde(rename = "turn.completed")]
    TurnCompleted {
        turn: u32,
        stop_reason: String,
        usage: Usage,
        /// What this call cost.
        #[serde(with = "usd_str")]
        cost: Usd,
        /// Spent so far by the whole Governor (all sessions of the run).
        #[serde(with = "usd_str")]
        spent: Usd,
        #[serde(with = "usd_opt")]
        budget: Option<Usd>,
        /// How many tool calls the model asked for.
        tool_calls: usize,
    },
    /// Text the model wrote in a turn (whole, once the turn is complete).
    #[serde(rename = "assistant.text")]
    AssistantText { turn: u32, text: String },
    #[serde(rename = "tool.started")]
    ToolStarted {
        turn: u32,
        id: String,
        name: String,
        /// A short, single-line summary of the input (the command, the path...).
        summary: String,
    },
    #[serde(rename = "tool.completed")]
    ToolCompleted {
        turn: u32,
        id: String,
        name: String,
        exit_code: Option<i32>,
        is_error: bool,
        /// A short, single-line summary of the result.
        summary: String,
    },
    /// A model call attempt failed and will be retried.
    #[serde(rename = "retry")]
    Retry {
        attempt: u32,
        wait_ms: u64,
        reason: String,
    },
    /// The harness told the model something on its own (context wrap-up, a watchdog warning,
    /// cut-off answer).
    #[serde(rename = "session.notice")]
    Notice { turn: u32, notice: String },
    /// A session ended: `end` is why (`completed`, `turn_limit`, `no_progress`,
    /// `cut_off_answers`... see [`crate::EndReason`]) and `detail` the evidence.
    #[serde(rename = "session.completed")]
    SessionCompleted {
        end: crate::EndReason,
        #[serde(default)]
        detail: String,
        turns: u32,
        usage: Usage,
        /// What this session's calls cost.
        #[serde(with = "usd_str")]
        cost: Usd,
    },
    #[serde(rename = "error")]
    Error { message: String, exit_code: i32 },
    /// Something the user should know that does not stop the run (an unknown price...).
    #[serde(rename = "warning")]
    Warning { message: String },
    /// The harness put back frozen files the agent had changed.
    #[serde(rename = "frozen.restored")]
    FrozenRestored { paths: Vec<String> },
    /// The harness put `.git` back as it accepts it (`restored`: config, hooks, attributes...)
    /// or rebuilt a missing or rewritten history from its mirror (`history` says what was
    /// wrong).
    #[serde(rename = "git.restored")]
    GitRestored {
        restored: Vec<String>,
        history: Option<String>,
    },
    /// The harness's commit left out files bigger than `max_bytes`.
    #[serde(rename = "commit.skipped")]
    CommitSkipped { paths: Vec<String>, max_bytes: u64 },
    /// The harness ran a feature's check (run-level; emitted by the orchestrator).
    #[serde(rename = "feature.verified")]
    FeatureVerified {
        id: String,
        passed: bool,
        exit_code: Option<i32>,
    },
    /// A feature that passed failed its check when re-run at a session's end.
    #[serde(rename = "feature.regressed")]
    FeatureRegressed {
        id: String,
        exit_code: Option<i32>,
        /// The end of the check's output.
        output: String,
    },
    /// A run started or resumed (`loopwright run`).
    #[serde(rename = "run.started")]
    RunStarted {
        model: String,
        project: String,
        /// `planning`, `building` or `complete`.
        phase: String,
        passing: usize,
        total: usize,
    },
    /// Planning ended: the feature list and its test files are frozen.
    #[serde(rename = "plan.frozen")]
    PlanFrozen {
        features: usize,
        frozen_files: usize,
    },
    /// A run stopped: `complete`, `budget`, `pin_violation`, `session_limit`, `stalled`,
    /// `interrupted`, `bad_input` or `error`.
    #[serde(rename = "run.completed")]
    RunCompleted {
        reason: String,
        exit_code: i32,
        passing: usize,
        total: usize,
        /// Spent so far by the whole run.
        #[serde(with = "usd_str")]
        spent: Usd,
        detail: String,
    },
}

/// Where events go. Implemented by the CLI (progress line, log lines, JSONL).
pub trait EventSink: Send + Sync {
    fn emit(&self, event: &Event);

    /// Model text as it streams in (before the turn's [`EventKind::AssistantText`]). Default:
    /// ignored.
    fn text_delta(&self, _session: &str, _text: &str) {}
}

/// A sink that drops everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoEvents;

impl EventSink for NoEvents {
    fn emit(&self, _event: &Event) {}
}

/// A sink that keeps every event, for tests and for callers that inspect a session afterwards.
#[derive(Debug, Default)]
pub struct CollectEvents {
    events: std::sync::Mutex<Vec<Event>>,
}

impl CollectEvents {
    pub fn new() -> CollectEvents {
        CollectEvents::default()
    }

    /// A copy of the events so far.
    pub fn events(&self) -> Vec<Event> {
        match self.events.lock() {
            Ok(events) => events.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }
}

impl EventSink for CollectEvents {
    fn emit(&self, event: &Event) {
        match self.events.lock() {
            Ok(mut events) => events.push(event.clone()),
            Err(poisoned) => poisoned.into_inner().push(event.clone()),
        }
    }
}

/// The current time as RFC 3339 UTC (`2026-05-01T12:00:00.123Z`).
pub fn rfc3339_now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// A single-line summary of a tool call's input, for progress displays: the command for `bash`,
/// the path for file tools, the pattern for `grep`, else the compact JSON.
pub fn summarize_input(name: &str, input: &serde_json::Value) -> String {
    let field = |key: &str| input.get(key).and_then(|v| v.as_str());
    let text = match name {
        "bash" => field("command").map(str::to_string),
        "read_file" | "write_file" | "edit_file" => field("path").map(str::to_string),
        "list_files" => Some(
            [field("path"), field("pattern")]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" "),
        ),
        "grep" => field("pattern").map(|p| match field("path") {
            Some(path) => format!("{p} in {path}"),
            None => p.to_string(),
        }),
        "verify_feature" => field("id").map(str::to_string),
        _ => None,
    };
    one_line(&text.unwrap_or_else(|| input.to_string()), 100)
}

/// `text` on one line (newlines shown as `⏎`), at most `max` chars with `…` when cut.
pub fn one_line(text: &str, max: usize) -> String {
    let flat: String = text
        .trim()
        .chars()
        .map(|c| {
            if c == '\n' {
                '⏎'
            } else if c.is_control() {
                ' '
            } else {
                c
            }
        })
        .collect();
    match flat.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &flat[..i]),
        None => flat,
    }
}

/// A decimal string of dollars without the `$` (`"0.012345"`), read back exactly.
pub(crate) fn usd_decimal(usd: Usd) -> String {
    usd.to_string().replacen('$', "", 1)
}

pub(crate) mod usd_str {
    use llm::Usd;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(usd: &Usd, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::usd_decimal(*usd))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Usd, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

mod usd_opt {
    use llm::Usd;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(usd: &Option<Usd>, s: S) -> Result<S::Ok, S::Error> {
        match usd {
            Some(usd) => s.serialize_str(&super::usd_decimal(*usd)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Usd>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(text) => text.parse().map(Some).map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_with_dotted_type_and_decimal_money() {
        let event = Event {
            kind: EventKind::TurnCompleted {
                turn: 2,
                stop_reason: "tool_use".into(),
                usage: Usage {
                    input_tokens: 10,
                    output_tokens: 5,
                    ..Usage::default()
                },
                cost: Usd::from_nanos(12_345_000),
                spent: Usd::from_nanos(1_500_000_000),
                budget: None,
                tool_calls: 1,
            },
            ts: "2026-01-01T00:00:00Z".into(),
            session: "s1".into(),
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["type"], "turn.completed");
        assert_eq!(json["cost"], "0.012345");
        assert_eq!(json["spent"], "1.500000");
        assert_eq!(json["budget"], serde_json::Value::Null);
        assert_eq!(json["session"], "s1");
        let back: Event = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn summaries_are_short_single_lines() {
        let s = summarize_input("bash", &serde_json::json!({"command": "echo a\necho b"}));
        assert_eq!(s, "echo a⏎echo b");
        let s = summarize_input(
            "write_file",
            &serde_json::json!({"path": "x.py", "content": "..."}),
        );
        assert_eq!(s, "x.py");
        let long = "y".repeat(500);
        assert_eq!(one_line(&long, 10).chars().count(), 11);
        let s = summarize_input("mystery", &serde_json::json!({"a": 1}));
        assert_eq!(s, "{\"a\":1}");
    }

    #[test]
    fn timestamps_are_rfc3339() {
        let ts = rfc3339_now();
        assert!(
            time::OffsetDateTime::parse(&ts, &time::format_description::well_known::Rfc3339)
                .is_ok()
        );
    }
}
