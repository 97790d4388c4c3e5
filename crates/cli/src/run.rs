//! `loopwright run`: plan the app in the spec as features with checks, then build it across
//! fresh-context sessions until every check passes, the budget is spent or progress stalls.
//! Re-running the same command resumes.

use crate::config::{load_layers, WatchdogSettings};
use crate::exit::{code, CmdResult, Failure};
use crate::progress::{Display, Progress};
use crate::setup::{
    budget_setting, build_governor, build_toolbox, create_state_dir, model_setting, sandbox_on,
    startup_warnings, undo_cut_off_config_changes, watch_interrupts, AgentArgs, GovernorRequest,
    ToolboxRequest,
};
use agent::run::prompts::Prompts;
use agent::run::{RunConfig, RunEnd, PROTECTED_FILES};
use agent::{Event, EventKind, EventSink};
use anyhow::anyhow;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The project directory the app is built in (created, and made a git repo, if needed).
    #[arg(long, short = 'C', value_name = "DIR")]
    pub project_dir: PathBuf,
    /// The application spec; copied into the project as app_spec.txt.
    #[arg(long, value_name = "FILE")]
    pub spec: PathBuf,
    #[command(flatten)]
    pub agent: AgentArgs,
    /// Stop after this many sessions in all (planning included) [default: no limit].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_sessions: Option<u32>,
    /// The most model calls one session may make [default: 80].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_turns: Option<u32>,
    /// Sessions in a row without progress (more features passing than ever before) before the run stops; a misbehaviour repeated counts double; kept across re-runs [default: 3].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub stall_sessions: Option<u32>,
    /// Record every model response into this cassette (replay it with --model replay/FILE).
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Prompt templates (planning.md, building.md, wrapup.md) overriding the built-in ones.
    #[arg(long, value_name = "DIR")]
    pub prompts: Option<PathBuf>,
}

pub async fn run(args: RunArgs) -> CmdResult {
    let display = Display::choose(args.agent.json);
    let progress = Arc::new(Progress::new(display));
    let result = run_with(args, progress.clone()).await;
    progress.finish_line();
    if let (Display::Json, Err(failure)) = (display, &result) {
        progress.emit(&Event::now(
            "run",
            EventKind::Error {
                message: format!("{:#}", failure.error),
                exit_code: failure.code,
            },
        ));
    }
    result
}

async fn run_with(args: RunArgs, progress: Arc<Progress>) -> CmdResult {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    if !args.spec.is_file() {
        return Err(Failure::usage(anyhow!(
            "the spec {} does not exist or is not a file",
            args.spec.display()
        )));
    }
    std::fs::create_dir_all(&args.project_dir).map_err(|e| {
        Failure::usage(anyhow!(
            "cannot create the project directory {}: {e}",
            args.project_dir.display()
        ))
    })?;
    let project = args.project_dir.canonicalize().map_err(|e| {
        Failure::usage(anyhow!(
            "project directory {}: {e}",
            args.project_dir.display()
        ))
    })?;
    undo_cut_off_config_changes(&project, args.agent.state_dir.as_ref(), &env, &progress)?;
    let file = load_layers(Some(&project), &env).map_err(Failure::usage)?;
    let model = model_setting(args.agent.model.as_deref(), &file)?;
    let budget = budget_setting(args.agent.budget.as_deref(), &file)?;
    let state_dir = create_state_dir(
        &project,
        args.agent.state_dir.clone().or(file.state_dir.clone()),
        &env,
    )?;
    let prompts = Prompts::new(args.prompts.as_deref());
    prompts.validate().map_err(|e| Failure::usage(anyhow!(e)))?;

    let governor = build_governor(
        &GovernorRequest {
            model: &model,
            budget,
            free_only: args.agent.free_only || file.free_only.unwrap_or(false),
            ledger_path: state_dir.join("ledger.jsonl"),
            record_to: args.record.clone(),
            budget_includes_ledger: true,
        },
        &file,
        &env,
    )?;
    let sandbox_on = sandbox_on(args.agent.sandbox.as_deref(), &file)?;
    for message in startup_warnings(&governor, sandbox_on) {
        progress.emit(&Event::now("run", EventKind::Warning { message }));
    }
    let toolbox = build_toolbox(
        &ToolboxRequest {
            project: &project,
            sandbox_on,
            allow_network: args.agent.allow_network || file.allow_network.unwrap_or(false),
            protected: &PROTECTED_FILES,
        },
        &file,
    )?;

    let mut cfg = RunConfig::new(project.clone(), args.spec.clone(), state_dir.clone(), model);
    cfg.max_sessions = args.max_sessions.or(file.max_sessions);
    if let Some(t) = args.max_turns.or(file.max_turns) {
        cfg.max_turns = t;
    }
    if let Some(k) = args.stall_sessions.or(file.stall_sessions) {
        cfg.stall_limit = k;
    }
    if let Some(n) = file.planning_attempts {
        cfg.planning_attempts = n;
    }
    if let Some(n) = file.max_features {
        cfg.max_features = n as usize;
    }
    if let Some(mb) = file.commit_max_file_mb {
        cfg.commit_max_file_bytes = mb.saturating_mul(1024 * 1024);
    }
    if let Some(n) = file.max_tool_result_chars {
        cfg.max_tool_result_chars = n as usize;
    }
    cfg.watchdog = WatchdogSettings::from_table(&file.watchdog)
        .map_err(Failure::usage)?
        .apply(cfg.watchdog);
    cfg.prompts = prompts;
    cfg.context_window = args.agent.context_window;

    let cancel = CancellationToken::new();
    let interrupts = watch_interrupts(cancel.clone())?;
    let result = agent::run::run(&cfg, &governor, &toolbox, progress.as_ref(), cancel).await;
    interrupts.abort();
    progress.finish_line();
    match result {
        Ok(report) => {
            let passing = report.state.passing();
            let total = report.state.features.len();
            if !args.agent.json {
                let what = match report.end {
                    RunEnd::Complete => "complete: every feature passes".to_string(),
                    RunEnd::SessionLimit => "stopped: --max-sessions reached".to_string(),
                    RunEnd::Stalled => format!(
                        "stopped: no progress (stalled: {})",
                        report.state.stall.describe()
                    ),
                    RunEnd::Interrupted => {
                        "interrupted: state saved; re-run the same command to resume".to_string()
                    }
                };
                eprintln!(
                    "loopwright: {what} — passing {passing}/{total}, spent {}{}",
                    governor.spent(),
                    governor
                        .budget()
                        .map(|b| format!(" of {b}"))
                        .unwrap_or_default()
                );
            }
            Ok(match report.end {
                RunEnd::Complete => code::OK,
                other => other.exit_code(),
            })
        }
        Err(e) => {
            let code = e.exit_code();
            let hint = match code {
                code::BUDGET => "; state saved — re-run with a larger --budget to continue",
                code::PIN => "; the run stopped before spending more on the wrong model",
                _ => "",
            };
            Err(Failure::new(code, anyhow!("{e}{hint}")))
        }
    }
}
