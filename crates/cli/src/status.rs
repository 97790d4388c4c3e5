//! `loopwright status`: where a run stands — phase, sessions, the feature table, spend in total,
//! by session and by feature, durations, whether a process is running it now, and why it last
//! stopped; `--watch` keeps it up to date.

use crate::config::load_layers;
use crate::exit::{code, CmdResult, Failure};
use crate::stdout::outln;
use crate::terminal::{json_pretty, sanitize};
use agent::run::state::{Phase, RunState, SessionKind, SessionRecord};
use anyhow::anyhow;
use governor::LedgerContents;
use llm::Usd;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The project directory of the run [default: the current directory].
    #[arg(long, short = 'C', value_name = "DIR")]
    pub project_dir: Option<PathBuf>,
    /// The run's state directory [default: the project's, else $XDG_STATE_HOME/loopwright/<project id>].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Keep watching: redraw in place on a terminal, else print a line per change; ends when a
    /// run seen running stops, or on Ctrl-C.
    #[arg(long, short = 'w', conflicts_with = "json")]
    pub watch: bool,
    /// Seconds between two looks with --watch.
    #[arg(long, value_name = "SECS", default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
    pub interval: u64,
    /// Show the named budget of the database ledger instead (`ledger` in the user's config or
    /// LOOPWRIGHT_LEDGER): its cap, spent, reserved and spend by run; no project needed.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["project_dir", "state_dir", "watch"])]
    pub budget: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureRow {
    pub id: String,
    pub description: String,
    pub passes: bool,
    /// Its check passed but the work is not committed yet (the next run commits it first).
    pub uncommitted: bool,
    pub verified_in: Option<u32>,
    pub regressions: u32,
    /// Spend attributed to the feature (see [`attribute_spend`]), in nano-dollars.
    pub cost: Usd,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionRow {
    pub number: u32,
    pub id: String,
    pub kind: String,
    /// Why it ended; `running` while a run holds the state dir, `cut off` when the process
    /// died during it.
    pub end: String,
    /// The evidence for the ending (the watchdog's line).
    pub end_detail: String,
    pub turns: u32,
    pub newly_passing: Vec<String>,
    pub regressions: Vec<String>,
    /// Nano-dollars.
    pub cost: Usd,
    pub started: String,
    pub ended: Option<String>,
    /// From its start to its end (or to now while it runs).
    pub duration_secs: Option<u64>,
    /// Features passing when it ended (recorded, or reconstructed for older states).
    pub passing_at_end: Option<usize>,
    /// The features assigned to it as one of parallel workers (`run --workers N`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<String>,
}

/// One parallel build session (`run --workers N`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkerRow {
    pub session: String,
    pub features: Vec<String>,
    pub branch: String,
    /// `running`, `merged`, `conflict`, `taken_over`, `abandoned`; `cut_off` for one the run
    /// left running when it stopped (the next run merges its work).
    pub stage: String,
    /// Its features whose checks passed in its copy.
    pub verified: Vec<String>,
    pub merge_commit: Option<String>,
    /// Files its merge conflicted in.
    pub conflicts: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub project: String,
    pub state_dir: String,
    pub model: String,
    pub phase: String,
    /// Whether a loopwright process holds the run's lock now.
    pub running: bool,
    pub passing: usize,
    pub total: usize,
    pub sessions: Vec<SessionRow>,
    pub features: Vec<FeatureRow>,
    /// Money is in nano-dollars, as in the ledger and the events (docs/events.md).
    pub spent: Usd,
    pub planning_cost: Usd,
    pub unattributed_cost: Usd,
    /// From the first session's start to the last one's end (or now while running).
    pub duration_secs: Option<u64>,
    /// Attempts the provider billed above what they asked for (flagged in the ledger).
    pub overbilled_attempts: u64,
    /// Sessions in a row without progress, as the stall rule counts them.
    pub stall: StallRow,
    pub last_stop: Option<agent::run::state::StopRecord>,
    /// Parallel build sessions, oldest first (empty without `--workers`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub workers: Vec<WorkerRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StallRow {
    pub sessions: u32,
    /// What is compared with `--stall-sessions` (a misbehaviour repeated counts double).
    pub weight: u32,
    pub endings: Vec<String>,
    /// In words: "2 sessions in a row ended on repeated cut-off answers without progress".
    pub description: String,
}

/// Spend by feature: each build session's cost, plus that of earlier build sessions that made no
/// feature pass, is split evenly among the features it made pass for the first time. Planning
/// is reported on its own; what no feature has absorbed yet is "unattributed".
pub fn attribute_spend(
    state: &RunState,
    by_session: &BTreeMap<String, Usd>,
) -> (BTreeMap<String, Usd>, Usd, Usd) {
    let mut per_feature: BTreeMap<String, Usd> = BTreeMap::new();
    let mut planning = Usd::ZERO;
    let mut carry = Usd::ZERO;
    let mut sessions: Vec<_> = state.sessions.iter().collect();
    sessions.sort_by_key(|s| s.number);
    for s in sessions {
        let cost = by_session.get(&s.id).copied().unwrap_or(Usd::ZERO);
        if s.kind == SessionKind::Planning {
            planning = planning.saturating_add(cost);
            continue;
        }
        carry = carry.saturating_add(cost);
        let firsts: Vec<&String> = s
            .newly_passing
            .iter()
            .filter(|id| state.status.get(*id).and_then(|st| st.verified_in) == Some(s.number))
            .collect();
        if firsts.is_empty() {
            continue;
        }
        let n = firsts.len() as i64;
        let share = Usd::from_nanos(carry.nanos() / n);
        let mut remainder = carry.nanos() - share.nanos() * n;
        for id in firsts {
            let mut part = share;
            if remainder > 0 {
                part = part.saturating_add(Usd::from_nanos(1));
                remainder -= 1;
            }
            let e = per_feature.entry(id.clone()).or_insert(Usd::ZERO);
            *e = e.saturating_add(part);
        }
        carry = Usd::ZERO;
    }
    (per_feature, planning, carry)
}

/// Seconds between two RFC 3339 times.
pub fn seconds_between(from: &str, to: &str) -> Option<u64> {
    use time::format_description::well_known::Rfc3339;
    let a = time::OffsetDateTime::parse(from, &Rfc3339).ok()?;
    let b = time::OffsetDateTime::parse(to, &Rfc3339).ok()?;
    u64::try_from((b - a).whole_seconds()).ok()
}

/// `42s`, `3m 05s`, `2h 01m`.
pub fn human_duration(secs: u64) -> String {
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m {:02}s", secs / 60, secs % 60),
        _ => format!("{}h {:02}m", secs / 3600, (secs % 3600) / 60),
    }
}

/// Reads the run in `state_dir`: its state, the ledger, whether it is live.
pub fn gather(project: &Path, state_dir: &Path) -> Result<Report, Failure> {
    let state = RunState::load(state_dir)
        .map_err(|e| Failure::usage(anyhow!(e)))?
        .ok_or_else(|| {
            Failure::usage(anyhow!(
                "no run found for {} (no run.json in {}); start one with `loopwright run`",
                project.display(),
                state_dir.display()
            ))
        })?;
    let running = agent::run::run_is_live(state_dir);
    let ledger =
        LedgerContents::read(&state_dir.join("ledger.jsonl")).map_err(Failure::governor)?;
    let by_session: BTreeMap<String, Usd> = ledger
        .totals_by_session()
        .into_iter()
        .map(|(k, v)| (k, v.spent))
        .collect();
    let (per_feature, planning, unattributed) = attribute_spend(&state, &by_session);
    let now = agent::events::rfc3339_now();
    let mut sessions: Vec<&SessionRecord> = state.sessions.iter().collect();
    sessions.sort_by_key(|s| s.number);
    let mut passing_so_far = 0usize;
    let rows: Vec<SessionRow> = sessions
        .iter()
        .map(|s| {
            let passing_at_end = s.passing_at_end.or_else(|| {
                s.end.as_ref()?;
                let after = (passing_so_far + s.newly_passing.len())
                    .saturating_sub(s.regressions.len())
                    .min(state.features.len());
                Some(after)
            });
            if let Some(p) = passing_at_end {
                passing_so_far = p;
            }
            let end = match &s.end {
                Some(end) => end.to_string(),
                None if running => "running".into(),
                None => "cut off".into(),
            };
            let until = s
                .ended
                .clone()
                .or_else(|| (running && s.end.is_none()).then(|| now.clone()));
            SessionRow {
                number: s.number,
                id: s.id.clone(),
                kind: format!("{:?}", s.kind).to_lowercase(),
                end,
                end_detail: s.end_detail.clone(),
                turns: s.turns,
                newly_passing: s.newly_passing.clone(),
                regressions: s.regressions.clone(),
                cost: by_session.get(&s.id).copied().unwrap_or(Usd::ZERO),
                started: s.started.clone(),
                ended: s.ended.clone(),
                duration_secs: until.and_then(|u| seconds_between(&s.started, &u)),
                passing_at_end,
                features: s.features.clone(),
            }
        })
        .collect();
    let duration_secs = match (rows.first(), rows.last()) {
        (Some(first), Some(last)) => {
            let until = if running {
                Some(now.clone())
            } else {
                last.ended.clone()
            };
            until.and_then(|u| seconds_between(&first.started, &u))
        }
        _ => None,
    };
    Ok(Report {
        project: project.display().to_string(),
        state_dir: state_dir.display().to_string(),
        model: state.model.clone(),
        phase: match state.phase {
            Phase::Planning => "planning",
            Phase::Building => "building",
            Phase::Complete => "complete",
        }
        .into(),
        running,
        passing: state.passing(),
        total: state.features.len(),
        sessions: rows,
        features: state
            .features
            .iter()
            .map(|f| {
                let st = state.status.get(&f.id).cloned().unwrap_or_default();
                FeatureRow {
                    id: f.id.clone(),
                    description: f.description.clone(),
                    passes: st.recorded_passing(),
                    uncommitted: st.uncommitted,
                    verified_in: st.verified_in,
                    regressions: st.regressions,
                    cost: per_feature.get(&f.id).copied().unwrap_or(Usd::ZERO),
                }
            })
            .collect(),
        spent: ledger.total_spent(),
        planning_cost: planning,
        unattributed_cost: unattributed,
        duration_secs,
        overbilled_attempts: ledger
            .totals_by_session()
            .values()
            .map(|t| t.overbilled)
            .sum(),
        stall: StallRow {
            sessions: state.stall.sessions,
            weight: state.stall.weight,
            endings: state
                .stall
                .endings
                .iter()
                .map(ToString::to_string)
                .collect(),
            description: if state.stall.sessions == 0 {
                String::new()
            } else {
                state.stall.describe()
            },
        },
        last_stop: state.last_stop.clone(),
        workers: state
            .workers
            .iter()
            .map(|w| WorkerRow {
                session: agent::run::state::session_id(w.session),
                features: w.features.clone(),
                branch: w.branch.clone(),
                stage: match w.stage {
                    agent::run::state::WorkerStage::Running if !running => "cut_off".into(),
                    stage => serde_json::to_value(stage)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default(),
                },
                verified: w.verified.clone(),
                merge_commit: w.merge_commit.clone(),
                conflicts: w.conflicts.clone(),
            })
            .collect(),
    })
}

/// The project directory of `status`/`report`/`reset` (canonical) and its run's state dir.
pub fn locate(
    project_dir: Option<&Path>,
    state_dir: Option<PathBuf>,
) -> Result<(PathBuf, PathBuf), Failure> {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let project = match project_dir {
        Some(d) => d.to_path_buf(),
        None => std::env::current_dir()
            .map_err(|e| Failure::usage(anyhow!("cannot read the current directory: {e}")))?,
    };
    let project = project
        .canonicalize()
        .map_err(|e| Failure::usage(anyhow!("project directory {}: {e}", project.display())))?;
    let file = load_layers(Some(&project), &env).map_err(Failure::usage)?;
    let state_dir = crate::setup::existing_state_dir(&project, state_dir.or(file.state_dir), &env)?;
    tracing::info!(project = %project.display(), state_dir = %state_dir.display(), "using the run's state dir");
    Ok((project, state_dir))
}

pub async fn run(args: StatusArgs) -> CmdResult {
    if let Some(name) = &args.budget {
        return crate::budget_status::run(name, args.json).await;
    }
    let (project, state_dir) = locate(args.project_dir.as_deref(), args.state_dir.clone())?;
    if args.watch {
        return watch(&project, &state_dir, Duration::from_secs(args.interval)).await;
    }
    let report = gather(&project, &state_dir)?;
    if args.json {
        outln!(
            "{}",
            json_pretty(&report).map_err(|e| Failure::from(anyhow!(e)))?
        );
        return Ok(code::OK);
    }
    crate::stdout::write(&render(&report));
    Ok(code::OK)
}

/// `status --watch`: on a terminal the whole report is redrawn in place when it changes;
/// otherwise one line per change. Ends when a run that was seen running stops, or on Ctrl-C.
async fn watch(project: &Path, state_dir: &Path, every: Duration) -> CmdResult {
    use std::io::IsTerminal;
    let terminal = std::io::stdout().is_terminal();
    let mut last_shown: Option<String> = None;
    let mut seen_running = false;
    let interrupt = tokio::signal::ctrl_c();
    tokio::pin!(interrupt);
    loop {
        // A run that has not started yet (no run.json) is waited for.
        let report = match gather(project, state_dir) {
            Ok(r) => Some(r),
            Err(e) if !state_dir.join("run.json").exists() => {
                if last_shown.is_none() {
                    eprintln!("{}; waiting for it", sanitize(&format!("{:#}", e.error)));
                    last_shown = Some(String::new());
                }
                None
            }
            Err(e) => return Err(e),
        };
        if let Some(report) = report {
            seen_running |= report.running;
            let shown = if terminal {
                render(&report)
            } else {
                summary_line(&report)
            };
            if last_shown.as_deref() != Some(shown.as_str()) {
                if terminal {
                    // Home, clear the screen, then the report.
                    crate::stdout::write(&format!("\x1b[H\x1b[2J{shown}"));
                } else {
                    outln!("{} {shown}", agent::events::rfc3339_now());
                }
                last_shown = Some(shown);
            }
            if seen_running && !report.running {
                return Ok(code::OK);
            }
        }
        tokio::select! {
            _ = &mut interrupt => return Ok(code::OK),
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// One line for `--watch` when stdout is not a terminal.
fn summary_line(r: &Report) -> String {
    let state = if r.running {
        let current = r
            .sessions
            .last()
            .filter(|s| s.end == "running")
            .map(|s| format!(", session {} ({}) running", s.number, cell(&s.kind)))
            .unwrap_or_default();
        format!("running{current}")
    } else {
        match &r.last_stop {
            Some(stop) => format!("stopped: {}", cell(stop.reason.as_str())),
            None => "not running".to_string(),
        }
    };
    format!(
        "{state} · {} · passing {}/{} · {} sessions · spent {}",
        r.phase,
        r.passing,
        r.total,
        r.sessions.len(),
        r.spent
    )
}

/// One field or table cell of text of the model's or the agent's making (feature ids and
/// descriptions, session ends, stop details, paths): on one line, without control sequences.
fn cell(text: &str) -> String {
    sanitize(text).replace('\n', "⏎").replace('\t', " ")
}

/// The text report of `status`. Every field that can come from the model or the project goes
/// through [`cell`], so the report cannot carry a terminal control sequence or forge a row.
pub fn render(r: &Report) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(o, "project   {}", cell(&r.project));
    let _ = writeln!(o, "state     {}", cell(&r.state_dir));
    let _ = writeln!(o, "model     {}", cell(&r.model));
    let _ = writeln!(
        o,
        "phase     {}{}",
        r.phase,
        if r.running {
            " (running now)"
        } else {
            " (not running)"
        }
    );
    let _ = writeln!(
        o,
        "sessions  {}{}",
        r.sessions.len(),
        r.duration_secs
            .map(|d| format!(" in {}", human_duration(d)))
            .unwrap_or_default()
    );
    let _ = writeln!(
        o,
        "spent     {} (planning {}, not yet attributed {})",
        r.spent, r.planning_cost, r.unattributed_cost
    );
    if r.overbilled_attempts > 0 {
        let _ = writeln!(
            o,
            "billing   {} attempt(s) billed above what was asked (flagged \"overbilled\" in ledger.jsonl); check the provider's usage page",
            r.overbilled_attempts
        );
    }
    if let Some(stop) = &r.last_stop {
        let _ = writeln!(
            o,
            "stopped   {} (exit {}) at {}: {}",
            cell(stop.reason.as_str()),
            stop.exit_code,
            cell(&stop.time),
            cell(&stop.detail)
        );
    }
    if r.stall.sessions > 0 {
        let _ = writeln!(
            o,
            "stall     {} (counts {} toward --stall-sessions)",
            cell(&r.stall.description),
            r.stall.weight
        );
    }
    for w in &r.workers {
        let _ = writeln!(
            o,
            "worker    {} [{}] {} on {}{}",
            cell(&w.session),
            cell(&w.features.join(", ")),
            cell(&w.stage),
            cell(&w.branch),
            if w.conflicts.is_empty() {
                String::new()
            } else {
                format!(" (conflict in {})", cell(&w.conflicts.join(", ")))
            }
        );
    }
    let _ = writeln!(o);
    if !r.features.is_empty() {
        let ids: Vec<String> = r.features.iter().map(|f| cell(&f.id)).collect();
        let w = ids
            .iter()
            .map(|id| id.chars().count())
            .max()
            .unwrap_or(2)
            .max(2);
        let _ = writeln!(
            o,
            "{:<w$}  {:<7}  {:>8}  {:>12}  description",
            "id", "passing", "verified", "cost"
        );
        for (f, id) in r.features.iter().zip(&ids) {
            let _ = writeln!(
                o,
                "{:<w$}  {:<7}  {:>8}  {:>12}  {}",
                id,
                if f.passes {
                    "yes"
                } else if f.uncommitted {
                    "pending"
                } else {
                    "no"
                },
                f.verified_in
                    .map(|n| format!("s{n}"))
                    .unwrap_or_else(|| "-".into()),
                f.cost.to_string(),
                cell(&f.description)
            );
        }
        let _ = writeln!(o);
    }
    if !r.sessions.is_empty() {
        let _ = writeln!(
            o,
            "{:>3}  {:<8}  {:<19}  {:>8}  {:>5}  {:>12}  newly passing",
            "#", "kind", "end", "duration", "turns", "cost"
        );
        for s in &r.sessions {
            let mut newly = if s.newly_passing.is_empty() {
                "-".to_string()
            } else {
                s.newly_passing.join(", ")
            };
            if !s.regressions.is_empty() {
                newly.push_str(&format!(" (regressed: {})", s.regressions.join(", ")));
            }
            let _ = writeln!(
                o,
                "{:>3}  {:<8}  {:<19}  {:>8}  {:>5}  {:>12}  {}",
                s.number,
                cell(&s.kind),
                cell(&s.end),
                s.duration_secs
                    .map(human_duration)
                    .unwrap_or_else(|| "-".into()),
                s.turns,
                s.cost.to_string(),
                cell(&newly)
            );
            if !s.end_detail.is_empty() {
                let _ = writeln!(o, "{:>3}  {}", "", cell(&s.end_detail));
            }
        }
        let _ = writeln!(o);
    }
    let _ = writeln!(o, "passing {}/{}", r.passing, r.total);
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use agent::run::features::FeatureStatus;

    fn session(number: u32, kind: SessionKind, newly: &[&str]) -> SessionRecord {
        SessionRecord {
            end: Some(agent::EndReason::Completed.into()),
            turns: 1,
            newly_passing: newly.iter().map(|s| s.to_string()).collect(),
            ..SessionRecord::started(number, kind, "")
        }
    }

    #[test]
    fn the_text_report_carries_no_control_sequence_of_the_models_making() {
        let report = Report {
            project: "/p".into(),
            state_dir: "/s".into(),
            model: "m".into(),
            phase: "building".into(),
            running: false,
            passing: 0,
            total: 1,
            sessions: vec![SessionRow {
                number: 1,
                id: "s1".into(),
                kind: "planning".into(),
                end: "completed\x1b]8;;https://evil.example\x07".into(),
                end_detail: "no progress\x1b[1A".into(),
                turns: 1,
                newly_passing: vec!["F1\x1b[2J".into()],
                regressions: vec![],
                cost: Usd::ZERO,
                started: "t".into(),
                ended: None,
                duration_secs: None,
                passing_at_end: None,
                features: vec![],
            }],
            features: vec![FeatureRow {
                id: "F1\x1b]52;c;cHduZWQ=\x07".into(),
                description: "clears\x1b[2J\x1b[H the screen\n| F9 | yes | forged row".into(),
                passes: false,
                uncommitted: false,
                verified_in: None,
                regressions: 0,
                cost: Usd::ZERO,
            }],
            spent: Usd::ZERO,
            planning_cost: Usd::ZERO,
            unattributed_cost: Usd::ZERO,
            duration_secs: None,
            overbilled_attempts: 0,
            stall: StallRow {
                sessions: 1,
                weight: 1,
                endings: vec!["no_progress".into()],
                description: "1 session\x1b[2K ended".into(),
            },
            last_stop: Some(agent::run::state::StopRecord {
                time: "t".into(),
                reason: agent::StopReason::Error,
                exit_code: 1,
                detail: "boom\u{9b}31mred\rhidden".into(),
                cause: None,
                signal: None,
            }),
            workers: vec![],
        };
        let text = render(&report);
        assert!(
            text.chars().all(|c| c == '\n' || !c.is_control()),
            "{text:?}"
        );
        let row = text.lines().find(|l| l.starts_with("F1 ")).unwrap();
        assert!(
            row.ends_with("  clears the screen⏎| F9 | yes | forged row"),
            "{text}"
        );
        assert!(!text.lines().any(|l| l.starts_with("| F9")), "{text}");
        assert!(
            text.contains("stopped   error (exit 1) at t: boomredhidden"),
            "{text}"
        );
        assert!(summary_line(&report).contains("stopped: error"));
        // JSON keeps the raw text.
        let json = json_pretty(&report).unwrap();
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(
            back["features"][0]["description"],
            report.features[0].description
        );
    }

    #[test]
    fn spend_carries_forward_and_splits_without_losing_a_nanodollar() {
        let mut state = RunState::new(PathBuf::from("/p"), "m".into(), "h".into());
        state.sessions = vec![
            session(1, SessionKind::Planning, &[]),
            session(2, SessionKind::Building, &[]),
            session(3, SessionKind::Building, &["F1", "F2", "F3"]),
            session(4, SessionKind::Building, &[]),
        ];
        for id in ["F1", "F2", "F3"] {
            state.status.insert(
                id.into(),
                FeatureStatus {
                    passes: true,
                    verified_in: Some(3),
                    ..FeatureStatus::default()
                },
            );
        }
        let costs: BTreeMap<String, Usd> = [(1, 7), (2, 100), (3, 200), (4, 50)]
            .into_iter()
            .map(|(n, c)| (agent::run::state::session_id(n), Usd::from_nanos(c)))
            .collect();
        let (per, planning, rest) = attribute_spend(&state, &costs);
        assert_eq!(planning, Usd::from_nanos(7));
        assert_eq!(rest, Usd::from_nanos(50));
        let sum: i64 = per.values().map(|u| u.nanos()).sum();
        assert_eq!(sum, 300);
        assert_eq!(per["F1"], Usd::from_nanos(100));
    }
}
