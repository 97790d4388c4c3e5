//! Deciding when a session must end because the model misbehaves: the one place that watches
//! every turn (its answer, the tool calls it asked for and their results, whether the project
//! reached new content, whether a check newly passed) and says when to warn the model and when
//! to stop paying for it.
//!
//! Each ending has its [`EndReason`] and a line of evidence, so the run can tell the next
//! session why the last one ended and count the same ending twice in a row toward a stall.
//!
//! The rules, with their defaults (every misbehaviour is contained within five wasted turns):
//! - **no progress**: [`WatchdogConfig::no_progress_turns`] (5) turns in a row in which the
//!   project reached no content it had not had before in this session and no check newly
//!   passed (a warning at two turns before the end);
//! - **tool errors**: [`WatchdogConfig::tool_error_turns`] (5) turns in a row in which every tool
//!   call failed (unknown tools, malformed arguments, refused commands, unknown feature ids);
//! - **repetition**: the same call with the same result [`WatchdogConfig::repeat_limit`] (3)
//!   times in a session earns a warning, once more ends it;
//! - **cycles**: the same turn (its calls, whatever their results) four times in a row, or a
//!   block of two or three turns twice in a row, without progress;
//! - **cut-off answers**: [`WatchdogConfig::cut_off_streak`] (2) answers in a row cut at
//!   `max_tokens`, or [`WatchdogConfig::cut_off_cap`] (4) in a session;
//! - **empty answers**: an answer with no text and no tool call ends the session at once;
//! - **too many tool calls**: only [`WatchdogConfig::max_tool_calls`] (12) calls of an answer
//!   run, the rest are refused with the reason; the [`WatchdogConfig::over_cap_answers`]-th (2nd)
//!   such answer ends the session;
//! - **wall clock**: [`WatchdogConfig::max_duration`] (60 min) per session;
//! - **all passing**: the session ends right after the turn in which every feature passes.
//!
//! Decisions:
//! - Progress is measured on content, not on activity: the project's files are hashed after
//!   every turn ([`crate::fingerprint`]) with digit runs collapsed, so rewriting a file with a
//!   counter, a timestamp or a random number in it, or switching it between variants already
//!   seen, is not progress. `progress.md` (notes), `feature_list.json` (the harness's) and
//!   caches (`__pycache__`, `node_modules`...) do not count either.
//! - Known residual: a model that keeps writing genuinely new text that no check needs (a file
//!   that grows by a new sentence every turn) counts as making progress; the turn limit and the
//!   run's stall rule (sessions that make no feature newly pass) bound it.

use crate::outcome::EndReason;
use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::time::{Duration, Instant};

/// The thresholds. `0` turns a count-based rule off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchdogConfig {
    /// Turns in a row without progress before the session ends.
    pub no_progress_turns: u32,
    /// Turns in a row in which every tool call failed before the session ends.
    pub tool_error_turns: u32,
    /// Identical call + result this many times earns a warning; once more ends the session.
    pub repeat_limit: u32,
    /// Answers in a row cut at `max_tokens` before the session ends.
    pub cut_off_streak: u32,
    /// Answers cut at `max_tokens` in one session before it ends.
    pub cut_off_cap: u32,
    /// Tool calls of one answer that are run; the rest are refused.
    pub max_tool_calls: u32,
    /// Answers with more than `max_tool_calls` calls before the session ends.
    pub over_cap_answers: u32,
    /// How long a session may run (`None`: no limit).
    pub max_duration: Option<Duration>,
}

impl Default for WatchdogConfig {
    fn default() -> WatchdogConfig {
        WatchdogConfig {
            no_progress_turns: 5,
            tool_error_turns: 5,
            repeat_limit: 3,
            cut_off_streak: 2,
            cut_off_cap: 4,
            max_tool_calls: 12,
            over_cap_answers: 2,
            max_duration: Some(Duration::from_secs(60 * 60)),
        }
    }
}

/// One tool call that ran (or was answered without running), as the watchdog sees it.
#[derive(Debug, Clone)]
pub struct CallSeen {
    pub name: String,
    pub input: serde_json::Value,
    /// What went back to the model.
    pub result: String,
    pub is_error: bool,
}

/// What happened in one turn.
#[derive(Debug, Clone, Default)]
pub struct TurnSeen {
    /// The answer was cut at `max_tokens`.
    pub cut_off: bool,
    /// The answer had no text and no tool call.
    pub empty: bool,
    /// The calls that were run, in order (refused over-cap calls are not in it).
    pub calls: Vec<CallSeen>,
    /// How many calls of the answer were refused for going over the cap.
    pub refused_over_cap: usize,
    /// The project reached content not seen before in this session.
    pub new_content: bool,
    /// Checks newly passing, features newly recorded: what the orchestrator counts as progress.
    pub marks: u64,
    /// Every feature passes.
    pub work_done: bool,
}

/// What the session should do after a turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Go on; tell the model `warning` first if there is one.
    Continue { warning: Option<String> },
    /// End the session.
    End { reason: EndReason, detail: String },
}

/// Watches one session.
#[derive(Debug)]
pub struct Watchdog {
    config: WatchdogConfig,
    started: Instant,
    no_progress: u32,
    error_turns: u32,
    cut_off_streak: u32,
    cut_offs: u32,
    over_cap: u32,
    /// (call, result) → times seen.
    repeats: HashMap<u64, u32>,
    /// Per turn: the hash of its calls (inputs, not results) and whether it made progress.
    history: Vec<(u64, bool)>,
    last_action: String,
}

const NO_PROGRESS_WARNING_AHEAD: u32 = 2;

impl Watchdog {
    pub fn new(config: WatchdogConfig) -> Watchdog {
        Watchdog {
            config,
            started: Instant::now(),
            no_progress: 0,
            error_turns: 0,
            cut_off_streak: 0,
            cut_offs: 0,
            over_cap: 0,
            repeats: HashMap::new(),
            history: Vec::new(),
            last_action: String::new(),
        }
    }

    /// How many of an answer's `n` tool calls may run.
    pub fn allowed_calls(&self, n: usize) -> usize {
        match self.config.max_tool_calls {
            0 => n,
            cap => n.min(cap as usize),
        }
    }

    /// The tool result for a call refused for going over the cap.
    pub fn over_cap_refusal(&self, asked: usize) -> String {
        format!(
            "This tool call was not run: at most {} tool calls of one answer are run and this \
             answer asked for {asked}. Ask for fewer at a time, the most useful first.",
            self.config.max_tool_calls
        )
    }

    /// The session's time is up.
    pub fn out_of_time(&self) -> Option<(EndReason, String)> {
        let limit = self.config.max_duration?;
        (self.started.elapsed() >= limit).then(|| {
            (
                EndReason::WallClock,
                format!(
                    "the session ran for its limit of {}",
                    describe_duration(limit)
                ),
            )
        })
    }

    /// Looks at a finished turn and decides.
    pub fn observe(&mut self, turn: &TurnSeen) -> Verdict {
        if let Some(action) = turn.calls.last() {
            self.last_action = describe_call(&action.name, &action.input);
        }
        if turn.work_done {
            return end(EndReason::AllPassing, "every feature passes".into());
        }
        if turn.empty {
            return end(
                EndReason::EmptyAnswer,
                "the model answered with neither text nor a tool call".into(),
            );
        }
        let progress = turn.new_content || turn.marks > 0;

        // Cut-off answers.
        if turn.cut_off {
            self.cut_offs += 1;
            self.cut_off_streak += 1;
        } else {
            self.cut_off_streak = 0;
        }
        if over(self.cut_off_streak, self.config.cut_off_streak) {
            return end(
                EndReason::CutOffAnswers,
                format!(
                    "{} answers in a row were cut off at the max_tokens limit",
                    self.cut_off_streak
                ),
            );
        }
        if over(self.cut_offs, self.config.cut_off_cap) {
            return end(
                EndReason::CutOffAnswers,
                format!(
                    "{} answers of this session were cut off at the max_tokens limit",
                    self.cut_offs
                ),
            );
        }

        // Too many calls in one answer.
        if turn.refused_over_cap > 0 {
            self.over_cap += 1;
            if over(self.over_cap, self.config.over_cap_answers) {
                return end(
                    EndReason::TooManyToolCalls,
                    format!(
                        "{} answers asked for more than {} tool calls at once",
                        self.over_cap, self.config.max_tool_calls
                    ),
                );
            }
        }

        // Identical calls with identical results.
        let mut repeat_warning = false;
        if self.config.repeat_limit > 0 {
            for call in &turn.calls {
                let mut h = DefaultHasher::new();
                call.name.hash(&mut h);
                canonical(&call.input).hash(&mut h);
                call.result.hash(&mut h);
                call.is_error.hash(&mut h);
                let count = self.repeats.entry(h.finish()).or_insert(0);
                *count += 1;
                if *count > self.config.repeat_limit {
                    return end(
                        EndReason::RepeatedAction,
                        format!(
                            "the same call with the same result {} times: {}",
                            count,
                            describe_call(&call.name, &call.input)
                        ),
                    );
                }
                repeat_warning |= *count == self.config.repeat_limit;
            }
        }

        // Tool errors.
        if !turn.calls.is_empty() && turn.calls.iter().all(|c| c.is_error) {
            self.error_turns += 1;
        } else {
            self.error_turns = 0;
        }
        if over(self.error_turns, self.config.tool_error_turns) {
            let last = turn
                .calls
                .last()
                .map(|c| first_line(&c.result, 120))
                .unwrap_or_default();
            return end(
                EndReason::ToolErrors,
                format!(
                    "{} turns in a row in which every tool call failed (last: {last})",
                    self.error_turns
                ),
            );
        }

        // Cycles of the same turns (whatever their results) that change nothing.
        self.history.push((action_hash(&turn.calls), progress));
        if let Some(detail) = self.cycle() {
            return end(EndReason::Cycle, detail);
        }

        // No progress.
        if progress {
            self.no_progress = 0;
        } else {
            self.no_progress += 1;
        }
        if over(self.no_progress, self.config.no_progress_turns) {
            return end(
                EndReason::NoProgress,
                format!(
                    "{} turns in a row changed no file to new content and made no check newly \
                     pass (last: {})",
                    self.no_progress, self.last_action
                ),
            );
        }

        let warning = if repeat_warning {
            Some(REPEAT_WARNING.to_string())
        } else if self.config.no_progress_turns > NO_PROGRESS_WARNING_AHEAD
            && self.no_progress == self.config.no_progress_turns - NO_PROGRESS_WARNING_AHEAD
        {
            Some(format!(
                "No progress for {} turns: no file in the project changed to anything new and no \
                 check newly passed. The session ends after {} more turns like that. Make the \
                 change you are working towards, verify a feature, or write progress.md and end \
                 your turn.",
                self.no_progress, NO_PROGRESS_WARNING_AHEAD
            ))
        } else {
            None
        };
        Verdict::Continue { warning }
    }

    /// A turn repeated four times in a row, or a block of two or three turns repeated twice in a
    /// row, none of them making progress.
    fn cycle(&self) -> Option<String> {
        let h = &self.history;
        for (period, times) in [(1usize, 4usize), (2, 2), (3, 2)] {
            let len = period * times;
            if h.len() < len {
                continue;
            }
            let tail = &h[h.len() - len..];
            if tail
                .iter()
                .any(|(action, progress)| *progress || *action == EMPTY_ACTION)
            {
                continue;
            }
            let block = &tail[..period];
            // A period-2 or -3 block made of one repeated turn is the period-1 case.
            if period > 1 && block.iter().all(|(a, _)| *a == block[0].0) {
                continue;
            }
            if tail.chunks(period).all(|chunk| chunk == block) {
                return Some(if period == 1 {
                    format!(
                        "the same turn {times} times in a row without progress (last: {})",
                        self.last_action
                    )
                } else {
                    format!(
                        "a cycle of {period} turns repeated {times} times without progress (last: \
                         {})",
                        self.last_action
                    )
                });
            }
        }
        None
    }
}

const REPEAT_WARNING: &str = "You are repeating yourself: you made the same tool call with the \
same result several times. Doing it again will not change the result. Try a different \
approach, or end your turn if the task is done. If you repeat it once more, the session ends.";

const EMPTY_ACTION: u64 = 0;

fn end(reason: EndReason, detail: String) -> Verdict {
    Verdict::End { reason, detail }
}

/// `count` reached a limit that is on.
fn over(count: u32, limit: u32) -> bool {
    limit > 0 && count >= limit
}

fn action_hash(calls: &[CallSeen]) -> u64 {
    if calls.is_empty() {
        return EMPTY_ACTION;
    }
    let mut h = DefaultHasher::new();
    for c in calls {
        c.name.hash(&mut h);
        normalized_input(&c.name, &c.input).hash(&mut h);
    }
    h.finish().max(1)
}

/// The input as compared for cycles: canonical JSON, with a `bash` command's whitespace
/// collapsed.
fn normalized_input(name: &str, input: &serde_json::Value) -> String {
    match (name, input.get("command").and_then(|c| c.as_str())) {
        ("bash", Some(command)) => command.split_whitespace().collect::<Vec<_>>().join(" "),
        _ => canonical(input),
    }
}

fn describe_call(name: &str, input: &serde_json::Value) -> String {
    format!(
        "{name} {}",
        crate::events::summarize_input(name, input)
            .chars()
            .take(80)
            .collect::<String>()
    )
}

fn first_line(text: &str, max: usize) -> String {
    crate::events::one_line(text.lines().next().unwrap_or_default(), max)
}

fn describe_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 60 && secs.is_multiple_of(60) {
        format!("{} min", secs / 60)
    } else {
        format!("{secs} s")
    }
}

/// JSON text with object keys sorted at every level, so `{"a":1,"b":2}` and `{"b":2,"a":1}`
/// count as the same input.
pub(crate) fn canonical(value: &serde_json::Value) -> String {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let fields: Vec<String> = keys
                .into_iter()
                .map(|k| format!("{}:{}", Value::String(k.clone()), canonical(&map[k])))
                .collect();
            format!("{{{}}}", fields.join(","))
        }
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(name: &str, input: serde_json::Value, result: &str, is_error: bool) -> CallSeen {
        CallSeen {
            name: name.into(),
            input,
            result: result.into(),
            is_error,
        }
    }

    fn turn(calls: Vec<CallSeen>) -> TurnSeen {
        TurnSeen {
            calls,
            ..TurnSeen::default()
        }
    }

    fn bash(command: &str, result: &str) -> TurnSeen {
        turn(vec![call(
            "bash",
            json!({"command": command}),
            result,
            false,
        )])
    }

    /// Feeds turns until one ends the session; returns the turn number and the reason.
    fn run(dog: &mut Watchdog, turns: impl IntoIterator<Item = TurnSeen>) -> (usize, EndReason) {
        for (i, t) in turns.into_iter().enumerate() {
            if let Verdict::End { reason, .. } = dog.observe(&t) {
                return (i + 1, reason);
            }
        }
        panic!("never ended");
    }

    #[test]
    fn key_order_does_not_matter() {
        assert_eq!(
            canonical(&json!({"b": [1, {"y": 2, "x": 1}], "a": "s"})),
            canonical(&json!({"a": "s", "b": [1, {"x": 1, "y": 2}]}))
        );
    }

    #[test]
    fn the_same_command_with_changing_output_ends_as_a_cycle_at_four() {
        let mut dog = Watchdog::new(WatchdogConfig::default());
        let turns = (0..10).map(|i| bash("date", &format!("12:00:0{i}")));
        assert_eq!(run(&mut dog, turns), (4, EndReason::Cycle));
    }

    #[test]
    fn identical_call_and_result_warns_then_ends() {
        let mut dog = Watchdog::new(WatchdogConfig::default());
        for _ in 0..2 {
            assert_eq!(
                dog.observe(&bash("ls", "a")),
                Verdict::Continue { warning: None }
            );
        }
        match dog.observe(&bash("ls", "a")) {
            Verdict::Continue { warning: Some(w) } => assert!(w.contains("repeating")),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            dog.observe(&bash("ls", "a")),
            Verdict::End {
                reason: EndReason::RepeatedAction,
                ..
            }
        ));
    }

    #[test]
    fn different_commands_without_progress_end_at_the_no_progress_limit_with_a_warning() {
        let mut dog = Watchdog::new(WatchdogConfig::default());
        let mut warned = false;
        for i in 1..=5 {
            match dog.observe(&bash(&format!("echo {i}"), &i.to_string())) {
                Verdict::Continue { warning } => warned |= warning.is_some(),
                Verdict::End { reason, detail } => {
                    assert_eq!(i, 5);
                    assert_eq!(reason, EndReason::NoProgress);
                    assert!(detail.contains("echo 5"), "{detail}");
                    assert!(warned);
                    return;
                }
            }
        }
        panic!("never ended");
    }

    #[test]
    fn progress_resets_the_count() {
        let mut dog = Watchdog::new(WatchdogConfig::default());
        for i in 0..20 {
            let mut t = bash(&format!("echo {i}"), "x");
            t.new_content = i % 4 == 0;
            assert!(matches!(dog.observe(&t), Verdict::Continue { .. }), "{i}");
        }
    }

    #[test]
    fn failing_calls_end_at_the_error_limit() {
        let mut dog = Watchdog::new(WatchdogConfig::default());
        let turns =
            (0..10).map(|i| turn(vec![call(&format!("tool{i}"), json!({}), "no such", true)]));
        assert_eq!(run(&mut dog, turns), (5, EndReason::ToolErrors));
    }

    #[test]
    fn an_alternating_pair_without_progress_is_a_cycle() {
        let mut dog = Watchdog::new(WatchdogConfig::default());
        let turns = (0..10).map(|i| {
            if i % 2 == 0 {
                bash("make", &i.to_string())
            } else {
                bash("cat log", &i.to_string())
            }
        });
        assert_eq!(run(&mut dog, turns), (4, EndReason::Cycle));
    }

    #[test]
    fn cut_offs_end_at_two_in_a_row_or_four_in_all() {
        let cut = || TurnSeen {
            cut_off: true,
            new_content: true,
            ..TurnSeen::default()
        };
        let fine = || TurnSeen {
            new_content: true,
            ..TurnSeen::default()
        };
        let mut dog = Watchdog::new(WatchdogConfig::default());
        assert_eq!(run(&mut dog, [cut(), cut()]), (2, EndReason::CutOffAnswers));
        let mut dog = Watchdog::new(WatchdogConfig::default());
        let turns = [cut(), fine(), cut(), fine(), cut(), fine(), cut()];
        assert_eq!(run(&mut dog, turns), (7, EndReason::CutOffAnswers));
    }

    #[test]
    fn over_cap_answers_end_at_the_second() {
        let mut dog = Watchdog::new(WatchdogConfig::default());
        assert_eq!(dog.allowed_calls(25), 12);
        let t = TurnSeen {
            refused_over_cap: 13,
            new_content: true,
            ..TurnSeen::default()
        };
        assert_eq!(
            run(&mut dog, [t.clone(), t]),
            (2, EndReason::TooManyToolCalls)
        );
    }

    #[test]
    fn empty_answers_and_work_done_end_at_once() {
        let mut dog = Watchdog::new(WatchdogConfig::default());
        let empty = TurnSeen {
            empty: true,
            ..TurnSeen::default()
        };
        assert_eq!(run(&mut dog, [empty]), (1, EndReason::EmptyAnswer));
        let done = TurnSeen {
            work_done: true,
            ..TurnSeen::default()
        };
        assert_eq!(run(&mut dog, [done]), (1, EndReason::AllPassing));
    }

    #[test]
    fn zero_turns_rules_off() {
        let mut dog = Watchdog::new(WatchdogConfig {
            no_progress_turns: 0,
            tool_error_turns: 0,
            repeat_limit: 0,
            ..WatchdogConfig::default()
        });
        for i in 0..30 {
            let t = turn(vec![call("x", json!({"i": i}), "err", true)]);
            assert!(matches!(dog.observe(&t), Verdict::Continue { .. }));
        }
    }
}
