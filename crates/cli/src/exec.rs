//! `loopwright exec`: one agent session in a project directory on a task.

use crate::config::{load_layers, FileConfig};
use crate::exit::{code, CmdResult, Failure};
use crate::progress::{Display, Progress};
use crate::setup::{self, AgentArgs, GovernorRequest, ToolboxRequest};
use agent::{EndReason, Event, EventKind, EventSink, Session, SessionConfig};
use anyhow::{anyhow, Context};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

/// The system prompt of an `exec` session.
pub const EXEC_SYSTEM_PROMPT: &str = include_str!("exec_prompt.md");

#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// The project directory the agent works in [default: the current directory].
    #[arg(long, short = 'C', value_name = "DIR")]
    pub project_dir: Option<PathBuf>,
    #[command(flatten)]
    pub agent: AgentArgs,
    /// The most model calls the session may make [default: 50].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_turns: Option<u32>,
    /// The task; read from standard input when omitted.
    pub task: Option<String>,
}

/// Settings after flags, environment and config files are laid over each other.
struct Settings {
    project: PathBuf,
    model: String,
    budget: Option<llm::Usd>,
    free_only: bool,
    sandbox_on: bool,
    network: setup::NetworkSettings,
    max_turns: u32,
    state_dir: PathBuf,
    file: FileConfig,
}

pub async fn run(args: ExecArgs) -> CmdResult {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let display = Display::choose(args.agent.json);
    let progress = Arc::new(Progress::new(display));
    let session_id = session_id();
    let result = run_with(args, &env, progress.clone(), &session_id).await;
    progress.finish_line();
    if let (Display::Json, Err(failure)) = (display, &result) {
        progress.emit(&Event::now(
            &session_id,
            EventKind::Error {
                message: format!("{:#}", failure.error),
                exit_code: failure.code,
            },
        ));
    }
    result
}

async fn run_with(
    args: ExecArgs,
    env: &BTreeMap<String, String>,
    progress: Arc<Progress>,
    session_id: &str,
) -> CmdResult {
    let settings = settings(&args, env, &progress)?;
    let task = read_task(args.task)?;
    let request = GovernorRequest {
        model: &settings.model,
        budget: settings.budget,
        free_only: settings.free_only,
        ledger_path: settings.state_dir.join("ledger.jsonl"),
        record_to: None,
        budget_includes_ledger: false,
        tool_protocol: setup::tool_protocol_flag(args.agent.tool_protocol.as_deref())?,
        budget_name: args.agent.budget_name.as_deref(),
        run_id: Some(session_id.to_string()),
    };
    let governor = Arc::new(setup::build_governor(&request, &settings.file, env).await?);
    let protocol = setup::resolve_governor(&request, &settings.file, env)
        .ok()
        .as_ref()
        .and_then(setup::tool_protocol_of);
    let toolbox = setup::build_toolbox(
        &ToolboxRequest {
            project: &settings.project,
            sandbox_on: settings.sandbox_on,
            network: &settings.network,
            guarded: &[tools::GuardedKind::UserConfig],
            read_only: &[],
        },
        &settings.file,
    )?;
    for message in setup::startup_warnings(&governor, settings.sandbox_on)
        .into_iter()
        .chain(settings.network.warnings.iter().cloned())
        .chain(setup::start_confinement(&toolbox, &settings.network, settings.sandbox_on).await?)
    {
        progress.emit(&Event::now(session_id, EventKind::Warning { message }));
    }

    let mut config = SessionConfig::new(session_id, EXEC_SYSTEM_PROMPT, task);
    config.max_turns = settings.max_turns;
    config.context_window = args.agent.context_window;
    config.watchdog = crate::config::WatchdogSettings::from_table(&settings.file.watchdog)
        .map_err(Failure::usage)?
        .apply(config.watchdog);
    if let Some(n) = settings.file.max_tool_result_chars {
        config.max_tool_result_chars = n as usize;
    }
    config.transcript = Some(
        settings
            .state_dir
            .join("transcripts")
            .join(format!("{session_id}.jsonl")),
    );

    let interrupt = Arc::new(agent::Interrupt::new());
    let signals = setup::watch_signals(Arc::clone(&interrupt), Arc::clone(&governor))?;
    // A program the agent runs could rewrite loopwright.toml; it is put back after the session.
    let guard = toolbox
        .guard_session(&settings.state_dir)
        .map_err(|e| Failure::run(e.into()))?;
    let outcome = Session::new(&governor, &toolbox, config)
        .events(progress.as_ref())
        .cancel_token(interrupt.token())
        .run()
        .await;
    signals.abort();
    let restored = guard.restore();
    if !restored.is_empty() {
        progress.emit(&Event::now(
            session_id,
            EventKind::FrozenRestored {
                paths: restored.iter().map(|p| p.display().to_string()).collect(),
            },
        ));
    }
    let outcome = outcome
        .map_err(|e| Failure::new(crate::exit::of_stop(e.stop_reason()), anyhow::Error::new(e)))?;
    if outcome.end == EndReason::NoAction && protocol == Some(llm::ToolProtocol::Native) {
        progress.emit(&Event::now(
            session_id,
            EventKind::Warning {
                message: "the model answered without using any tool; nothing was changed. If it wrote its tool calls as text, run with --tool-protocol text (or set tool_protocol = \"text\" under [providers.NAME])".into(),
            },
        ));
    }
    Ok(match outcome.end {
        // An empty last answer after work is a quiet end of the turn; `AllPassing` does not
        // happen outside `run`.
        EndReason::Completed | EndReason::EmptyAnswer | EndReason::AllPassing => code::OK,
        EndReason::Cancelled => code::INTERRUPTED,
        EndReason::NoAction
        | EndReason::TurnLimit
        | EndReason::ContextLimit
        | EndReason::ContextExhausted
        | EndReason::RepeatedAction
        | EndReason::Cycle
        | EndReason::NoProgress
        | EndReason::ToolErrors
        | EndReason::CutOffAnswers
        | EndReason::TooManyToolCalls
        | EndReason::WallClock => code::INCOMPLETE,
    })
}

fn settings(
    args: &ExecArgs,
    env: &BTreeMap<String, String>,
    progress: &Progress,
) -> Result<Settings, Failure> {
    let project = match &args.project_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_dir().context("cannot read the current directory")?,
    };
    let project = project.canonicalize().map_err(|e| {
        Failure::usage(anyhow!(
            "project directory {}: {e}; create it or pass another with --project-dir",
            project.display()
        ))
    })?;
    if !project.is_dir() {
        return Err(Failure::usage(anyhow!(
            "project directory {} is not a directory",
            project.display()
        )));
    }
    setup::undo_cut_off_config_changes(&project, args.agent.state_dir.as_ref(), env, progress)?;
    let file = load_layers(Some(&project), env).map_err(Failure::usage)?;
    let model = setup::model_setting(args.agent.model.as_deref(), &file)?;
    let budget = setup::budget_setting(args.agent.budget.as_deref(), &file)?;
    let sandbox_on = setup::sandbox_on(args.agent.sandbox.as_deref(), &file)?;
    let network = setup::network_setting(&args.agent, &file)?;
    let state_dir = setup::create_state_dir(
        &project,
        args.agent
            .state_dir
            .clone()
            .or_else(|| file.state_dir.clone()),
        env,
    )?;
    Ok(Settings {
        project,
        model,
        budget,
        free_only: args.agent.free_only || file.free_only.unwrap_or(false),
        sandbox_on,
        network,
        max_turns: args.max_turns.or(file.max_turns).unwrap_or(50),
        state_dir,
        file,
    })
}

/// The task from the argument, else standard input (unless it is a terminal); empty is refused.
fn read_task(task: Option<String>) -> Result<String, Failure> {
    use std::io::IsTerminal;
    let task = match task {
        Some(task) => task,
        None if std::io::stdin().is_terminal() => {
            return Err(Failure::usage(anyhow!(
                "no task given; pass it as an argument or on standard input"
            )))
        }
        None => {
            let mut text = String::new();
            std::io::stdin().read_to_string(&mut text).map_err(|e| {
                Failure::usage(anyhow!("cannot read the task from standard input: {e}"))
            })?;
            text
        }
    };
    if task.trim().is_empty() {
        return Err(Failure::usage(anyhow!(
            "the task is empty; say what the agent should do"
        )));
    }
    Ok(task.trim().to_string())
}

/// `exec-20260501T120000Z-<pid>`: sortable, unique per process.
fn session_id() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "exec-{:04}{:02}{:02}T{:02}{:02}{:02}Z-{}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        std::process::id()
    )
}
