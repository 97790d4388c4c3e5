//! `loopwright exec`: one agent session in a project directory on a task.

use crate::config::{load_layers, parse_budget, FileConfig};
use crate::exit::{code, CmdResult, Failure};
use crate::progress::{Display, Progress};
use crate::setup::{self, GovernorRequest};
use agent::{EndReason, Event, EventKind, EventSink, Session, SessionConfig};
use anyhow::{anyhow, Context};
use governor::Governor;
use sandbox::{PolicyConfig, SandboxMode};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use tools::{Toolbox, ToolboxConfig};

/// The system prompt of an `exec` session.
pub const EXEC_SYSTEM_PROMPT: &str = include_str!("exec_prompt.md");

#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// The model, as provider/model (e.g. anthropic/claude-sonnet-4-5,
    /// openrouter/mistralai/mistral-7b-instruct:free, ollama/qwen2.5-coder:7b).
    #[arg(long, short = 'm', value_name = "MODEL")]
    pub model: Option<String>,
    /// The project directory the agent works in [default: the current directory].
    #[arg(long, short = 'C', value_name = "DIR")]
    pub project_dir: Option<PathBuf>,
    /// The most this run may spend, in US dollars (e.g. 0.50).
    #[arg(long, value_name = "USD")]
    pub budget: Option<String>,
    /// Refuse any priced model, and stop if a provider ever reports a cost.
    #[arg(long)]
    pub free_only: bool,
    /// Print JSONL events on stdout instead of the human display.
    #[arg(long)]
    pub json: bool,
    /// Let the agent's commands use the network.
    #[arg(long)]
    pub allow_network: bool,
    /// Confine the agent's commands with Landlock and seccomp (off: policy checks only).
    #[arg(long, value_name = "on|off", value_parser = ["on", "off"])]
    pub sandbox: Option<String>,
    /// The most model calls the session may make [default: 50].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_turns: Option<u32>,
    /// Where the ledger and transcripts go [default: $XDG_STATE_HOME/loopwright/<project id>].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// The model's context window in tokens [default: by model family].
    #[arg(long, value_name = "TOKENS", value_parser = clap::value_parser!(u64).range(1024..))]
    pub context_window: Option<u64>,
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
    allow_network: bool,
    max_turns: u32,
    state_dir: PathBuf,
    file: FileConfig,
}

pub async fn run(args: ExecArgs) -> CmdResult {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let display = Display::choose(args.json);
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
    let settings = settings(&args, env)?;
    let task = read_task(args.task)?;
    let governor = build_governor(&settings, env)?;
    let toolbox = build_toolbox(&settings)?;
    for warning in governor.warnings() {
        progress.emit(&Event::now(
            session_id,
            EventKind::Warning {
                message: warning.clone(),
            },
        ));
    }

    let mut config = SessionConfig::new(session_id, EXEC_SYSTEM_PROMPT, task);
    config.max_turns = settings.max_turns;
    config.context_window = args.context_window;
    config.transcript = Some(
        settings
            .state_dir
            .join("sessions")
            .join(format!("{session_id}.jsonl")),
    );

    let cancel = CancellationToken::new();
    let interrupts = watch_interrupts(cancel.clone())?;
    let outcome = Session::new(&governor, &toolbox, config)
        .events(progress.as_ref())
        .cancel_token(cancel)
        .run()
        .await;
    interrupts.abort();
    let outcome = outcome.map_err(|e| Failure::new(e.exit_code(), anyhow::Error::new(e)))?;
    Ok(match outcome.end {
        EndReason::Completed => code::OK,
        EndReason::Cancelled => code::INTERRUPTED,
        EndReason::TurnLimit | EndReason::ContextLimit | EndReason::RepeatedAction => {
            code::INCOMPLETE
        }
    })
}

/// First Ctrl-C: cancel (the step under way finishes). Second: leave at once. The handler is
/// installed before this returns, so an interrupt right after start is not lost.
fn watch_interrupts(cancel: CancellationToken) -> Result<tokio::task::JoinHandle<()>, Failure> {
    let mut interrupts = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .context("cannot install the Ctrl-C handler")?;
    Ok(tokio::spawn(async move {
        if interrupts.recv().await.is_none() {
            return;
        }
        eprintln!("\ninterrupted: finishing the current step (Ctrl-C again to quit now)");
        cancel.cancel();
        if interrupts.recv().await.is_some() {
            std::process::exit(code::INTERRUPTED);
        }
    }))
}

fn settings(args: &ExecArgs, env: &BTreeMap<String, String>) -> Result<Settings, Failure> {
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
    let file = load_layers(Some(&project), env).map_err(Failure::usage)?;
    let model = args.model.clone().or_else(|| file.model.clone()).ok_or_else(|| {
        Failure::usage(anyhow!(
            "no model given; pass --model provider/model (e.g. anthropic/claude-sonnet-4-5), set LOOPWRIGHT_MODEL, or put model = \"...\" in loopwright.toml"
        ))
    })?;
    let budget = match &args.budget {
        Some(text) => Some(
            parse_budget(&toml::Value::String(text.clone()))
                .map_err(|e| Failure::usage(e.context("--budget")))?,
        ),
        None => file
            .budget
            .as_ref()
            .map(parse_budget)
            .transpose()
            .map_err(Failure::usage)?,
    };
    let sandbox_on = match args.sandbox.as_deref().or(file.sandbox.as_deref()) {
        None | Some("on") => true,
        Some("off") => false,
        Some(other) => {
            return Err(Failure::usage(anyhow!(
                "sandbox = {other:?} in the config; use \"on\" or \"off\""
            )))
        }
    };
    let state_dir = match args.state_dir.clone().or_else(|| file.state_dir.clone()) {
        Some(dir) => dir,
        None => default_state_dir(&project, env).ok_or_else(|| {
            Failure::usage(anyhow!("cannot choose a state directory: neither XDG_STATE_HOME nor HOME is set; pass --state-dir"))
        })?,
    };
    std::fs::create_dir_all(&state_dir).map_err(|e| {
        Failure::usage(anyhow!(
            "cannot create the state directory {}: {e}",
            state_dir.display()
        ))
    })?;
    Ok(Settings {
        project,
        model,
        budget,
        free_only: args.free_only || file.free_only.unwrap_or(false),
        sandbox_on,
        allow_network: args.allow_network || file.allow_network.unwrap_or(false),
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

/// `$XDG_STATE_HOME/loopwright/<project id>`, else `~/.local/state/loopwright/<project id>`.
fn default_state_dir(project: &Path, env: &BTreeMap<String, String>) -> Option<PathBuf> {
    setup::state_home(env, &project_id(project))
}

/// The project's directory name made safe for a path (`[A-Za-z0-9._-]`, at most 40 chars), a
/// dash, and the first 12 hex digits of the SHA-256 of its canonical path: readable, and two
/// projects with the same name never share state.
pub fn project_id(canonical: &Path) -> String {
    use sha2::Digest;
    let name: String = canonical
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "root".to_string())
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    let digest = sha2::Sha256::digest(canonical.as_os_str().as_encoded_bytes());
    let hash: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("{}-{hash}", name.trim_start_matches('.'))
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

fn build_governor(
    settings: &Settings,
    env: &BTreeMap<String, String>,
) -> Result<Governor, Failure> {
    let request = GovernorRequest {
        model: &settings.model,
        budget: settings.budget,
        free_only: settings.free_only,
        ledger_path: settings.state_dir.join("ledger.jsonl"),
        record_to: None,
    };
    setup::build_governor(&request, &settings.file, env)
}

/// The `[paths]` table of the config.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct PathsConfig {
    extra_read: Vec<PathBuf>,
    extra_write: Vec<PathBuf>,
    env_allow: Vec<String>,
}

fn build_toolbox(settings: &Settings) -> Result<Toolbox, Failure> {
    let policy: PolicyConfig = toml::Value::Table(settings.file.policy.clone())
        .try_into()
        .map_err(|e| Failure::usage(anyhow!("the [policy] configuration is invalid: {e}")))?;
    let paths: PathsConfig = toml::Value::Table(settings.file.paths.clone())
        .try_into()
        .map_err(|e| Failure::usage(anyhow!("the [paths] configuration is invalid: {e}")))?;
    let mut config = ToolboxConfig::new(&settings.project);
    config.policy = policy;
    config.sandbox_mode = if settings.sandbox_on {
        SandboxMode::On
    } else {
        SandboxMode::Off
    };
    config.allow_network = settings.allow_network;
    config.extra_read = paths.extra_read;
    config.extra_write = paths.extra_write;
    config.env_allow = paths.env_allow;
    Toolbox::new(config).map_err(|e| {
        let hint = if settings.sandbox_on {
            " (to run without Landlock and seccomp, pass --sandbox off)"
        } else {
            ""
        };
        Failure::usage(anyhow!("cannot set up the agent's tools: {e}{hint}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_ids_are_readable_and_distinct() {
        let a = project_id(Path::new("/home/u/my app"));
        let b = project_id(Path::new("/tmp/my app"));
        assert!(a.starts_with("my_app-"), "{a}");
        assert_eq!(a.len(), "my_app-".len() + 12);
        assert_ne!(a, b);
        assert_eq!(a, project_id(Path::new("/home/u/my app")));
    }
}
