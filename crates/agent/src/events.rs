//! What a session (and later a run) reports as it goes: [`Event`]s handed to an [`EventSink`].
//!
//! Serialized as one JSON object per event, `{"schema": 1, "type": "...", "ts": RFC3339,
//! "session": id, ...}`; this is the `--json` output of the CLI and `events.jsonl` in the state
//! dir, so field names are a public contract, documented in `docs/events.md`. [`SCHEMA_VERSION`]
//! changes when a field changes meaning or goes away (adding a type or a field does not). Money
//! is an integer of nano-dollars (1e-9 USD), as in the ledger: exact, never a float.

use llm::{Usage, Usd};
use serde::{Deserialize, Serialize};

/// The version of the event format every event carries as `"schema"`.
pub const SCHEMA_VERSION: u32 = 1;

/// One thing that happened, with when and in which session.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Event {
    /// `type` and the kind's fields, flattened into the same object.
    #[serde(flatten)]
    pub kind: EventKind,
    /// RFC 3339 UTC timestamp.
    pub ts: String,
    pub session: String,
}

impl Serialize for Event {
    /// The fields plus `"schema": SCHEMA_VERSION`, first.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Wire<'a> {
            schema: u32,
            #[serde(flatten)]
            kind: &'a EventKind,
            ts: &'a str,
            session: &'a str,
        }
        Wire {
            schema: SCHEMA_VERSION,
            kind: &self.kind,
            ts: &self.ts,
            session: &self.session,
        }
        .serialize(s)
    }
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
        #[serde(with = "usd_nanos_opt")]
        budget: Option<Usd>,
    },
    /// One model call answered (a turn is one model call and the tool calls it asked for).
    #[serde(rename = "turn.completed")]
    TurnCompleted {
        turn: u32,
        stop_reason: String,
        usage: Usage,
        /// What this call cost.
        #[serde(with = "usd_nanos")]
        cost: Usd,
        /// Spent so far by the whole Governor (all sessions of the run).
        #[serde(with = "usd_nanos")]
        spent: Usd,
        #[serde(with = "usd_nanos_opt")]
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
        #[serde(with = "usd_nanos")]
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
        /// Features passing after this verdict, and in all.
        #[serde(default)]
        passing: usize,
        #[serde(default)]
        total: usize,
    },
    /// A feature that passed failed its check when re-run at a session's end.
    #[serde(rename = "feature.regressed")]
    FeatureRegressed {
        id: String,
        exit_code: Option<i32>,
        /// The end of the check's output.
        output: String,
        /// Features passing after it flipped back, and in all.
        #[serde(default)]
        passing: usize,
        #[serde(default)]
        total: usize,
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
    /// A run stopped: `complete`, `budget`, `pin_violation`, `overbilled`, `session_limit`,
    /// `stalled`, `interrupted`, `bad_input` or `error` (see [`crate::StopReason`]).
    #[serde(rename = "run.completed")]
    RunCompleted {
        reason: crate::StopReason,
        exit_code: i32,
        passing: usize,
        total: usize,
        /// Spent so far by the whole run.
        #[serde(with = "usd_nanos")]
        spent: Usd,
        detail: String,
    },
    /// A connection through the egress proxy ended, or was refused (refusals are reported at
    /// once). Run-level: the proxy serves every command of the run.
    #[serde(rename = "proxy.connection")]
    ProxyConnection {
        /// The destination as the command named it (empty if no request could be read).
        host: String,
        port: u16,
        /// Whether the egress policy allowed it (a connection that then failed is allowed).
        allowed: bool,
        /// Which rule allowed it, or why it was refused or failed.
        reason: String,
        /// Bytes sent to the destination.
        bytes_up: u64,
        /// Bytes received from it.
        bytes_down: u64,
        duration_ms: u64,
    },
    /// A parallel build session started in its own copy of the project (`run --workers N`).
    #[serde(rename = "worker.started")]
    WorkerStarted {
        /// The features assigned to it (no other worker holds them).
        features: Vec<String>,
        /// Its branch.
        branch: String,
        /// Its copy of the project.
        dir: String,
        /// Workers running now, this one included.
        running: usize,
    },
    /// A worker's branch was merged into the run's branch (its verdicts are then checked
    /// again there).
    #[serde(rename = "worker.merged")]
    WorkerMerged {
        features: Vec<String>,
        branch: String,
        /// The merge commit.
        commit: String,
        /// Its features that pass on the run's branch after the merge.
        passed: Vec<String>,
    },
    /// A worker's branch conflicted with the run's branch: the merge was aborted and its
    /// features go to a later session, which starts from the conflict to resolve it.
    #[serde(rename = "worker.conflict")]
    WorkerConflict {
        features: Vec<String>,
        branch: String,
        /// The files in conflict.
        files: Vec<String>,
    },
}

impl EventKind {
    /// The event of one egress proxy connection.
    pub fn proxy_connection(event: &sandbox::ProxyEvent) -> EventKind {
        EventKind::ProxyConnection {
            host: event.host.clone(),
            port: event.port,
            allowed: event.allowed,
            reason: event.reason.clone(),
            bytes_up: event.bytes_up,
            bytes_down: event.bytes_down,
            duration_ms: u64::try_from(event.duration.as_millis()).unwrap_or(u64::MAX),
        }
    }
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

/// Money in JSON: an integer of nano-dollars, as the ledger writes it. Reading also accepts a
/// decimal string of dollars (`"0.012345"`), the format of files written before schema 1.
pub(crate) mod usd_nanos {
    use llm::Usd;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    pub(crate) enum Lenient {
        Nanos(i64),
        Decimal(String),
    }

    impl Lenient {
        pub(crate) fn usd<E: serde::de::Error>(self) -> Result<Usd, E> {
            match self {
                Lenient::Nanos(n) => Ok(Usd::from_nanos(n)),
                Lenient::Decimal(text) => text.parse().map_err(E::custom),
            }
        }
    }

    pub fn serialize<S: Serializer>(usd: &Usd, s: S) -> Result<S::Ok, S::Error> {
        usd.nanos().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Usd, D::Error> {
        Lenient::deserialize(d)?.usd()
    }
}

mod usd_nanos_opt {
    use llm::Usd;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(usd: &Option<Usd>, s: S) -> Result<S::Ok, S::Error> {
        usd.map(Usd::nanos).serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Usd>, D::Error> {
        Option::<super::usd_nanos::Lenient>::deserialize(d)?
            .map(super::usd_nanos::Lenient::usd)
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_with_schema_dotted_type_and_nano_dollars() {
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
        assert_eq!(json["schema"], SCHEMA_VERSION);
        assert_eq!(json["type"], "turn.completed");
        assert_eq!(json["cost"], 12_345_000);
        assert_eq!(json["spent"], 1_500_000_000);
        assert_eq!(json["budget"], serde_json::Value::Null);
        assert_eq!(json["session"], "s1");
        let back: Event = serde_json::from_value(json).unwrap();
        assert_eq!(back, event);
        let text = serde_json::to_string(&event).unwrap();
        assert!(
            text.starts_with(r#"{"schema":1,"type":"turn.completed""#),
            "{text}"
        );
    }

    #[test]
    fn events_written_before_schema_1_still_read() {
        let old = r#"{"type":"session.completed","end":"completed","turns":2,"usage":{"input_tokens":1,"output_tokens":2,"cache_read_tokens":0,"cache_write_tokens":0},"cost":"0.012345","ts":"t","session":"s"}"#;
        let e: Event = serde_json::from_str(old).unwrap();
        match e.kind {
            EventKind::SessionCompleted { cost, .. } => assert_eq!(cost.nanos(), 12_345_000),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn proxy_connections_serialize_with_their_fields() {
        let kind = EventKind::proxy_connection(&sandbox::ProxyEvent {
            host: "evil.invalid".into(),
            port: 443,
            allowed: false,
            reason: "evil.invalid is not on the allowlist".into(),
            bytes_up: 0,
            bytes_down: 0,
            duration: std::time::Duration::from_millis(3),
        });
        let json = serde_json::to_value(Event {
            kind,
            ts: "2026-01-01T00:00:00Z".into(),
            session: "run".into(),
        })
        .unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "schema": 1, "type": "proxy.connection", "ts": "2026-01-01T00:00:00Z", "session": "run",
                "host": "evil.invalid", "port": 443, "allowed": false,
                "reason": "evil.invalid is not on the allowlist",
                "bytes_up": 0, "bytes_down": 0, "duration_ms": 3
            })
        );
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

    /// One event of every kind. The match has no wildcard: a new kind does not compile here
    /// until it is added, and then the test below wants it documented.
    fn one_of_each() -> Vec<EventKind> {
        let usd = Usd::from_nanos(1);
        let kinds = vec![
            EventKind::SessionStarted {
                model: "m".into(),
                project: "p".into(),
                max_turns: 1,
                budget: None,
            },
            EventKind::TurnCompleted {
                turn: 1,
                stop_reason: "end_turn".into(),
                usage: Usage::default(),
                cost: usd,
                spent: usd,
                budget: Some(usd),
                tool_calls: 0,
            },
            EventKind::AssistantText {
                turn: 1,
                text: "t".into(),
            },
            EventKind::ToolStarted {
                turn: 1,
                id: "i".into(),
                name: "bash".into(),
                summary: "ls".into(),
            },
            EventKind::ToolCompleted {
                turn: 1,
                id: "i".into(),
                name: "bash".into(),
                exit_code: Some(0),
                is_error: false,
                summary: "ok".into(),
            },
            EventKind::Retry {
                attempt: 1,
                wait_ms: 1,
                reason: "r".into(),
            },
            EventKind::Notice {
                turn: 1,
                notice: "n".into(),
            },
            EventKind::SessionCompleted {
                end: crate::EndReason::Completed,
                detail: "d".into(),
                turns: 1,
                usage: Usage::default(),
                cost: usd,
            },
            EventKind::Error {
                message: "e".into(),
                exit_code: 1,
            },
            EventKind::Warning {
                message: "w".into(),
            },
            EventKind::FrozenRestored { paths: vec![] },
            EventKind::FeatureVerified {
                id: "F1".into(),
                passed: true,
                exit_code: Some(0),
                passing: 1,
                total: 2,
            },
            EventKind::FeatureRegressed {
                id: "F1".into(),
                exit_code: Some(1),
                output: String::new(),
                passing: 0,
                total: 2,
            },
            EventKind::RunStarted {
                model: "m".into(),
                project: "p".into(),
                phase: "planning".into(),
                passing: 0,
                total: 0,
            },
            EventKind::PlanFrozen {
                features: 1,
                frozen_files: 1,
            },
            EventKind::RunCompleted {
                reason: crate::StopReason::Complete,
                exit_code: 0,
                passing: 1,
                total: 1,
                spent: usd,
                detail: String::new(),
            },
            EventKind::GitRestored {
                restored: vec!["config".into()],
                history: Some("h".into()),
            },
            EventKind::CommitSkipped {
                paths: vec!["big.log".into()],
                max_bytes: 1,
            },
            EventKind::ProxyConnection {
                host: "pypi.org".into(),
                port: 443,
                allowed: true,
                reason: "registry".into(),
                bytes_up: 1,
                bytes_down: 2,
                duration_ms: 3,
            },
            EventKind::WorkerStarted {
                features: vec!["F1".into()],
                branch: "b".into(),
                dir: "d".into(),
                running: 1,
            },
            EventKind::WorkerMerged {
                features: vec!["F1".into()],
                branch: "b".into(),
                commit: "c".into(),
                passed: vec!["F1".into()],
            },
            EventKind::WorkerConflict {
                features: vec!["F1".into()],
                branch: "b".into(),
                files: vec!["a.py".into()],
            },
        ];
        for k in &kinds {
            match k {
                EventKind::SessionStarted { .. }
                | EventKind::TurnCompleted { .. }
                | EventKind::AssistantText { .. }
                | EventKind::ToolStarted { .. }
                | EventKind::ToolCompleted { .. }
                | EventKind::Retry { .. }
                | EventKind::Notice { .. }
                | EventKind::SessionCompleted { .. }
                | EventKind::Error { .. }
                | EventKind::Warning { .. }
                | EventKind::FrozenRestored { .. }
                | EventKind::FeatureVerified { .. }
                | EventKind::FeatureRegressed { .. }
                | EventKind::RunStarted { .. }
                | EventKind::PlanFrozen { .. }
                | EventKind::RunCompleted { .. }
                | EventKind::GitRestored { .. }
                | EventKind::CommitSkipped { .. }
                | EventKind::ProxyConnection { .. }
                | EventKind::WorkerStarted { .. }
                | EventKind::WorkerMerged { .. }
                | EventKind::WorkerConflict { .. } => {}
            }
        }
        kinds
    }

    #[test]
    fn every_event_type_and_field_is_documented() {
        let doc = include_str!("../../../docs/events.md");
        for kind in one_of_each() {
            let json = serde_json::to_value(Event::now("s", kind)).unwrap();
            let ty = json["type"].as_str().unwrap();
            let row = doc
                .lines()
                .find(|l| l.starts_with(&format!("| `{ty}` |")))
                .unwrap_or_else(|| panic!("docs/events.md has no row for `{ty}`"));
            for field in json.as_object().unwrap().keys() {
                if ["schema", "type", "ts", "session"].contains(&field.as_str()) {
                    continue;
                }
                assert!(
                    row.contains(&format!("`{field}`")),
                    "docs/events.md does not describe `{field}` of `{ty}`"
                );
            }
        }
    }
}
