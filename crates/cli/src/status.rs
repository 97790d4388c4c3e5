//! `loopwright status`: where a run stands — phase, sessions, the feature table, spend in total,
//! by session and by feature, and why it last stopped.

use crate::config::load_layers;
use crate::exit::{code, CmdResult, Failure};
use crate::setup::state_dir_for;
use agent::run::state::{Phase, RunState, SessionKind};
use anyhow::anyhow;
use governor::LedgerContents;
use llm::Usd;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The project directory of the run [default: the current directory].
    #[arg(long, short = 'C', value_name = "DIR")]
    pub project_dir: Option<PathBuf>,
    /// The run's state directory [default: $XDG_STATE_HOME/loopwright/<project id>].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct FeatureRow {
    id: String,
    description: String,
    passes: bool,
    verified_in: Option<u32>,
    regressions: u32,
    /// Spend attributed to the feature (see [`attribute_spend`]).
    cost: String,
}

#[derive(Debug, Serialize)]
struct SessionRow {
    number: u32,
    id: String,
    kind: String,
    end: String,
    turns: u32,
    newly_passing: Vec<String>,
    regressions: Vec<String>,
    cost: String,
}

#[derive(Debug, Serialize)]
struct Report {
    project: String,
    state_dir: String,
    model: String,
    phase: String,
    passing: usize,
    total: usize,
    sessions: Vec<SessionRow>,
    features: Vec<FeatureRow>,
    spent: String,
    planning_cost: String,
    unattributed_cost: String,
    /// Attempts the provider billed above what they asked for (flagged in the ledger).
    overbilled_attempts: u64,
    last_stop: Option<agent::run::state::StopRecord>,
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

pub async fn run(args: StatusArgs) -> CmdResult {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let project = match &args.project_dir {
        Some(d) => d.clone(),
        None => std::env::current_dir()
            .map_err(|e| Failure::usage(anyhow!("cannot read the current directory: {e}")))?,
    };
    let project = project
        .canonicalize()
        .map_err(|e| Failure::usage(anyhow!("project directory {}: {e}", project.display())))?;
    let file = load_layers(Some(&project), &env).map_err(Failure::usage)?;
    let state_dir = state_dir_for(
        &project,
        args.state_dir.clone().or(file.state_dir.clone()),
        &env,
    )?;
    let state = RunState::load(&state_dir)
        .map_err(|e| Failure::usage(anyhow!(e)))?
        .ok_or_else(|| {
            Failure::usage(anyhow!(
                "no run found for {} (no run.json in {}); start one with `loopwright run`",
                project.display(),
                state_dir.display()
            ))
        })?;
    let ledger =
        LedgerContents::read(&state_dir.join("ledger.jsonl")).map_err(Failure::governor)?;
    let by_session: BTreeMap<String, Usd> = ledger
        .totals_by_session()
        .into_iter()
        .map(|(k, v)| (k, v.spent))
        .collect();
    let (per_feature, planning, unattributed) = attribute_spend(&state, &by_session);
    let report = Report {
        project: project.display().to_string(),
        state_dir: state_dir.display().to_string(),
        model: state.model.clone(),
        phase: match state.phase {
            Phase::Planning => "planning",
            Phase::Building => "building",
            Phase::Complete => "complete",
        }
        .into(),
        passing: state.passing(),
        total: state.features.len(),
        sessions: state
            .sessions
            .iter()
            .map(|s| SessionRow {
                number: s.number,
                id: s.id.clone(),
                kind: format!("{:?}", s.kind).to_lowercase(),
                end: s.end.clone().unwrap_or_else(|| "running or cut off".into()),
                turns: s.turns,
                newly_passing: s.newly_passing.clone(),
                regressions: s.regressions.clone(),
                cost: by_session
                    .get(&s.id)
                    .copied()
                    .unwrap_or(Usd::ZERO)
                    .to_string(),
            })
            .collect(),
        features: state
            .features
            .iter()
            .map(|f| {
                let st = state.status.get(&f.id).cloned().unwrap_or_default();
                FeatureRow {
                    id: f.id.clone(),
                    description: f.description.clone(),
                    passes: st.passes,
                    verified_in: st.verified_in,
                    regressions: st.regressions,
                    cost: per_feature
                        .get(&f.id)
                        .copied()
                        .unwrap_or(Usd::ZERO)
                        .to_string(),
                }
            })
            .collect(),
        spent: ledger.total_spent().to_string(),
        overbilled_attempts: ledger
            .totals_by_session()
            .values()
            .map(|t| t.overbilled)
            .sum(),
        planning_cost: planning.to_string(),
        unattributed_cost: unattributed.to_string(),
        last_stop: state.last_stop.clone(),
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).map_err(|e| Failure::from(anyhow!(e)))?
        );
        return Ok(code::OK);
    }
    print_report(&report);
    Ok(code::OK)
}

fn print_report(r: &Report) {
    println!("project   {}", r.project);
    println!("state     {}", r.state_dir);
    println!("model     {}", r.model);
    println!("phase     {}", r.phase);
    println!("sessions  {}", r.sessions.len());
    println!(
        "spent     {} (planning {}, not yet attributed {})",
        r.spent, r.planning_cost, r.unattributed_cost
    );
    if r.overbilled_attempts > 0 {
        println!(
            "billing   {} attempt(s) billed above what was asked (flagged \"overbilled\" in ledger.jsonl); check the provider's usage page",
            r.overbilled_attempts
        );
    }
    if let Some(stop) = &r.last_stop {
        println!(
            "stopped   {} (exit {}) at {}: {}",
            stop.reason, stop.exit_code, stop.time, stop.detail
        );
    }
    println!();
    if !r.features.is_empty() {
        let w = r
            .features
            .iter()
            .map(|f| f.id.len())
            .max()
            .unwrap_or(2)
            .max(2);
        println!(
            "{:<w$}  {:<7}  {:>8}  {:>12}  description",
            "id", "passing", "verified", "cost"
        );
        for f in &r.features {
            println!(
                "{:<w$}  {:<7}  {:>8}  {:>12}  {}",
                f.id,
                if f.passes { "yes" } else { "no" },
                f.verified_in
                    .map(|n| format!("s{n}"))
                    .unwrap_or_else(|| "-".into()),
                f.cost,
                f.description
            );
        }
        println!();
    }
    if !r.sessions.is_empty() {
        println!(
            "{:>3}  {:<8}  {:<16}  {:>5}  {:>12}  newly passing",
            "#", "kind", "end", "turns", "cost"
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
            println!(
                "{:>3}  {:<8}  {:<16}  {:>5}  {:>12}  {}",
                s.number, s.kind, s.end, s.turns, s.cost, newly
            );
        }
        println!();
    }
    println!("passing {}/{}", r.passing, r.total);
}

#[cfg(test)]
mod tests {
    use super::*;
    use agent::run::features::FeatureStatus;
    use agent::run::state::SessionRecord;

    fn session(number: u32, kind: SessionKind, newly: &[&str]) -> SessionRecord {
        SessionRecord {
            end: Some("completed".into()),
            turns: 1,
            newly_passing: newly.iter().map(|s| s.to_string()).collect(),
            ..SessionRecord::started(number, kind, "")
        }
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
