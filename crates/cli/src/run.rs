//! `loopwright run`: plan the app in the spec as features with checks, then build it across
//! fresh-context sessions until every check passes, the budget is spent or progress stalls.
//! Re-running the same command resumes.

use crate::config::{load_layers, WatchdogSettings};
use crate::exit::{code, CmdResult, Failure};
use crate::progress::{Display, Progress};
use crate::project::StateSource;
use crate::report::cents;
use crate::setup::{
    budget_setting, build_governor, build_toolbox, choose_state_dir, create_state_dir,
    model_setting, network_setting, sandbox_on, startup_warnings, tool_protocol_flag,
    undo_cut_off_config_changes, watch_signals, AgentArgs, GovernorRequest, ToolboxRequest,
};
use agent::run::prompts::Prompts;
use agent::run::state::RunState;
use agent::run::RunConfig;
use agent::StopReason;
use agent::{Event, EventKind, EventSink};
use anyhow::anyhow;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tools::GuardedKind;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The project directory the app is built in (created, and made a git repo, if needed).
    #[arg(long, short = 'C', value_name = "DIR")]
    pub project_dir: PathBuf,
    /// The application spec; copied into the project as app_spec.txt [default: the project's
    /// app_spec.txt].
    #[arg(long, value_name = "FILE")]
    pub spec: Option<PathBuf>,
    #[command(flatten)]
    pub agent: AgentArgs,
    /// Stop after this many sessions of this invocation (planning included) [default: no limit].
    #[arg(long, visible_alias = "max-iterations", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_sessions: Option<u32>,
    /// The most model calls one session may make [default: 80].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_turns: Option<u32>,
    /// Sessions in a row without progress (more features passing than ever before) before the run stops; a misbehaviour repeated counts double; kept across re-runs [default: 3].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub stall_sessions: Option<u32>,
    /// How many features planning should aim for [default: the model decides].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub features: Option<u32>,
    /// Record every model response into this cassette (replay it with --model replay/FILE).
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Prompt templates (planning.md, building.md, wrapup.md, or the Python harness's
    /// initializer_prompt.md, coding_prompt.md) overriding the built-in ones.
    #[arg(long, value_name = "DIR")]
    pub prompts: Option<PathBuf>,
    /// Archive the project's run (its state dir is renamed, nothing is deleted) and start over;
    /// asks first on a terminal.
    #[arg(long)]
    pub fresh: bool,
    /// Do not ask before archiving (--fresh).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// Start from this feature list instead of a planning session (the format of the project's
    /// feature_list.json: id, description, check, test_files...; `passes` is ignored). It is
    /// validated and frozen like a planned one; its test files must exist in the project.
    #[arg(long = "import", value_name = "FILE", conflicts_with = "extend_plan")]
    pub import: Option<PathBuf>,
    /// The spec changed after planning: run a planning session that adds features for what is
    /// new (the frozen features and their tests stay as they are), then build them.
    #[arg(long)]
    pub extend_plan: bool,
    /// Build sessions run at once, each in its own copy of the project with features of its
    /// own, merged into the project when it ends [default: 1].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=32))]
    pub workers: Option<u32>,
}

/// Reads a feature list for `--import`: a JSON array of features; `passes` is dropped (the
/// harness decides what passes), anything else unknown is refused by the feature's own type.
fn read_import(path: &Path) -> Result<Vec<agent::run::features::Feature>, Failure> {
    const MAX_BYTES: u64 = 16 * 1024 * 1024;
    let bad = |why: String| Failure::usage(anyhow!("--import {}: {why}", path.display()));
    let meta = std::fs::metadata(path).map_err(|e| bad(e.to_string()))?;
    if !meta.is_file() || meta.len() > MAX_BYTES {
        return Err(bad("not a file of at most 16 MiB".into()));
    }
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    let items: Vec<serde_json::Value> = serde_json::from_str(&text)
        .map_err(|e| bad(format!("not a JSON array of features: {e}")))?;
    if items.is_empty() {
        return Err(bad("the list is empty".into()));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(i, mut item)| {
            if let Some(obj) = item.as_object_mut() {
                obj.remove("passes");
            }
            serde_json::from_value(item).map_err(|e| {
                bad(format!(
                    "feature {} (counting from 1): {e}; each feature needs an id, a description and a check command",
                    i + 1
                ))
            })
        })
        .collect()
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

/// The spec to plan from: it must exist, be text, not be `init`'s template, and leave room in
/// the model's context window for the prompts and the work.
///
/// It is read as the run will read it ([`agent::run::project_files::read_spec_bytes`]): a spec
/// inside the project (the default) is the agent's to change, so a link there is refused, not
/// followed; nothing blocks on a FIFO; the size is capped.
fn check_spec(project: &Path, spec: &Path, context_window: u64) -> Result<(), Failure> {
    use agent::run::project_files::{read_spec_bytes, SpecError};
    let head = read_spec_bytes(project, spec).map_err(|e| match e {
        SpecError::NotFound => Failure::usage(anyhow!(
            "the spec {} does not exist; pass --spec FILE, or write the project's app_spec.txt (`loopwright init` makes a template)",
            spec.display()
        )),
        e => Failure::usage(anyhow!("the spec {} {e}", spec.display())),
    })?;
    // About four bytes a token; half the window is left for the prompts, files and answers.
    let tokens = head.len() as u64 / 4;
    if tokens > context_window / 2 {
        return Err(Failure::usage(anyhow!(
            "the spec {} is {} bytes (about {tokens} tokens), more than half of the model's context window ({context_window} tokens); every session's prompt carries it whole, so shorten it (or pass --context-window if the model's window is larger)",
            spec.display(),
            head.len()
        )));
    }
    if head.starts_with(crate::init::SPEC_TEMPLATE_MARKER.as_bytes()) {
        return Err(Failure::usage(anyhow!(
            "the spec {} is still the template from `loopwright init`; replace it with your application's description",
            spec.display()
        )));
    }
    Ok(())
}

/// Whether a directory is missing or empty (a project deleted to start over).
fn missing_or_empty(dir: &Path) -> bool {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => entries.next().is_none(),
        Err(_) => true,
    }
}

/// Picks the run's state dir and settles what the project's earlier run means for this one:
/// `--fresh` archives it; a project deleted since is archived with a message; a moved project
/// takes its run along; a copy is told to start its own. Returns the state dir to use.
fn settle_state_dir(
    args: &RunArgs,
    project: &Path,
    given: Option<PathBuf>,
    project_was_gone: bool,
    env: &BTreeMap<String, String>,
    progress: &Progress,
) -> Result<PathBuf, Failure> {
    let warn = |message: String| {
        progress.emit(&Event::now("run", EventKind::Warning { message }));
    };
    let (mut state_dir, source) = choose_state_dir(project, given, env)?;
    let load = |dir: &Path| RunState::load(dir).map_err(|e| Failure::usage(anyhow!(e)));
    if let Some(state) = load(&state_dir)? {
        if state.project_dir != project {
            let old = &state.project_dir;
            let moved = source == StateSource::Pointer
                && crate::project::read_pointer(old).as_deref() != Some(state_dir.as_path());
            let copy = source == StateSource::Pointer && !moved;
            if moved {
                let mut state = state.clone();
                warn(format!(
                    "the project moved from {} to {}; its run in {} follows it",
                    old.display(),
                    project.display(),
                    state_dir.display()
                ));
                state.project_dir = project.to_path_buf();
                state
                    .save(&state_dir)
                    .map_err(|e| Failure::usage(anyhow!(e)))?;
            } else if copy && args.fresh {
                // The run belongs to the original: this copy starts its own, where a new run
                // of this path would go.
                crate::project::remove_pointer(project);
                state_dir = choose_state_dir(project, None, env)?.0;
            } else if copy {
                return Err(Failure::usage(anyhow!(
                    "this project looks like a copy of {}, whose run is in {}; pass --fresh to start a run for the copy",
                    old.display(),
                    state_dir.display()
                )));
            } else {
                return Err(Failure::usage(anyhow!(
                    "the state dir {} holds the run of the project {}, not {}; give this project its own state dir (or leave --state-dir out)",
                    state_dir.display(),
                    old.display(),
                    project.display()
                )));
            }
        }
    }
    let state = load(&state_dir)?;
    // What is left of a run whose run.json was lost is archived on --fresh too.
    let leftovers = state.is_none() && agent::run::state::holds_a_run(&state_dir);
    if state.is_some() || leftovers {
        let archive_why = if args.fresh {
            let question = match &state {
                Some(state) => format!(
                    "Archive the run in {} ({}, passing {}/{}, {} sessions) and start over?",
                    state_dir.display(),
                    format!("{:?}", state.phase).to_lowercase(),
                    state.passing(),
                    state.features.len(),
                    state.sessions.len()
                ),
                None => format!(
                    "Archive what is left of the run in {} (it has no run.json) and start over?",
                    state_dir.display()
                ),
            };
            use std::io::IsTerminal;
            if !args.yes && std::io::stdin().is_terminal() && !crate::project::confirm(&question) {
                return Err(Failure::usage(anyhow!(
                    "not archived; the run in {} is kept",
                    state_dir.display()
                )));
            }
            Some("--fresh")
        } else if project_was_gone && state.is_some() {
            Some("its project was deleted (the directory was missing or empty)")
        } else {
            None
        };
        if let Some(why) = archive_why {
            let archived = crate::project::archive_state(&state_dir)?;
            warn(format!(
                "archived the earlier run ({why}) to {}; starting a new run",
                archived.display()
            ));
        }
    }
    Ok(state_dir)
}

async fn run_with(args: RunArgs, progress: Arc<Progress>) -> CmdResult {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let project_was_gone = missing_or_empty(&args.project_dir);
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
    // Held until the run ends: two runs never build one project.
    let _project_lock = crate::project::lock_project(&project)?;
    undo_cut_off_config_changes(&project, args.agent.state_dir.as_ref(), &env, &progress)?;
    let file = load_layers(Some(&project), &env).map_err(Failure::usage)?;
    let model = model_setting(args.agent.model.as_deref(), &file)?;
    let budget = budget_setting(args.agent.budget.as_deref(), &file)?;
    let spec = args
        .spec
        .clone()
        .unwrap_or_else(|| project.join("app_spec.txt"));
    let context_window = args
        .agent
        .context_window
        .unwrap_or_else(|| agent::default_context_window(&model));
    check_spec(&project, &spec, context_window)?;
    let prompts = match &args.prompts {
        Some(dir) => Prompts::open(dir).map_err(|e| Failure::usage(anyhow!(e)))?,
        None => Prompts::default(),
    };
    let state_dir = settle_state_dir(
        &args,
        &project,
        args.agent.state_dir.clone().or(file.state_dir.clone()),
        project_was_gone,
        &env,
        &progress,
    )?;
    let state_dir = create_state_dir(&project, Some(state_dir), &env)?;
    let import = args.import.as_deref().map(read_import).transpose()?;
    let sessions_before = RunState::load(&state_dir)
        .ok()
        .flatten()
        .map_or(0, |s| s.sessions.len());

    let governor = Arc::new(
        build_governor(
            &GovernorRequest {
                model: &model,
                budget,
                free_only: args.agent.free_only || file.free_only.unwrap_or(false),
                ledger_path: state_dir.join("ledger.jsonl"),
                record_to: args.record.clone(),
                budget_includes_ledger: true,
                tool_protocol: tool_protocol_flag(args.agent.tool_protocol.as_deref())?,
                budget_name: args.agent.budget_name.as_deref(),
                run_id: None,
            },
            &file,
            &env,
        )
        .await?,
    );
    let interrupt = Arc::new(agent::Interrupt::new());
    let signals = watch_signals(Arc::clone(&interrupt), Arc::clone(&governor))?;
    if let Err(e) = crate::project::write_pointer(&project, &state_dir) {
        progress.emit(&Event::now(
            "run",
            EventKind::Warning {
                message: format!("cannot write the project's pointer to its state dir: {e}"),
            },
        ));
    }
    let sandbox_on = sandbox_on(args.agent.sandbox.as_deref(), &file)?;
    let network = network_setting(&args.agent, &file)?;
    for message in startup_warnings(&governor, sandbox_on)
        .into_iter()
        .chain(network.warnings.iter().cloned())
    {
        progress.emit(&Event::now("run", EventKind::Warning { message }));
    }
    let read_only = prompts_in_project(args.prompts.as_deref(), &project);
    let toolbox_request = ToolboxRequest {
        project: &project,
        sandbox_on,
        network: &network,
        guarded: &[GuardedKind::HarnessOwned, GuardedKind::UserConfig],
        read_only: &read_only,
    };
    let toolbox = build_toolbox(&toolbox_request, &file)?;
    for message in crate::setup::start_confinement(&toolbox, &network, sandbox_on).await? {
        progress.emit(&Event::now("run", EventKind::Warning { message }));
    }

    let mut cfg = RunConfig::new(
        project.clone(),
        spec,
        state_dir.clone(),
        model,
        crate::exit::of_stop,
    );
    // --max-sessions counts the sessions of this invocation; the run state counts them all.
    cfg.max_sessions = args
        .max_sessions
        .or(file.max_sessions)
        .map(|n| n.saturating_add(u32::try_from(sessions_before).unwrap_or(u32::MAX)));
    if let Some(t) = args.max_turns.or(file.max_turns) {
        cfg.max_turns = t;
    }
    if let Some(k) = args.stall_sessions.or(file.stall_sessions) {
        cfg.stall_limit = k;
    }
    cfg.feature_count = args.features.or(file.features);
    cfg.import = import;
    cfg.extend_plan = args.extend_plan;
    cfg.workers = match args.workers.or(file.workers) {
        Some(0) => return Err(Failure::usage(anyhow!("workers = 0: give 1 or more"))),
        Some(n) => n,
        None => 1,
    };
    if cfg.workers > 1 {
        cfg.worker_toolbox = Some(crate::setup::toolbox_config(&toolbox_request, &file)?);
    }
    cfg.start_over = args.fresh;
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
    tracing::debug!(?cfg, "run configuration");

    let result = agent::run::run(&cfg, &governor, &toolbox, progress.as_ref(), &interrupt).await;
    signals.abort();
    progress.finish_line();
    if let Some(command) = &file.notify {
        let summary = stop_summary(&project, &state_dir, &governor);
        if let Err(message) = crate::notify::notify(command, &summary).await {
            progress.emit(&Event::now("run", EventKind::Warning { message }));
        }
    }
    match result {
        Ok(report) => {
            let passing = report.state.passing();
            let total = report.state.features.len();
            if !args.agent.json {
                let what = match report.end {
                    StopReason::Complete => "complete: every feature passes".to_string(),
                    StopReason::SessionLimit => "stopped: --max-sessions reached".to_string(),
                    StopReason::Stalled => format!(
                        "stopped: no progress (stalled: {})",
                        report.state.stall.describe()
                    ),
                    StopReason::Interrupted => {
                        "interrupted: state saved; re-run the same command to resume".to_string()
                    }
                    other => format!("stopped: {other}"),
                };
                eprintln!(
                    "loopwright: {what} — passing {passing}/{total}, spent {}{}",
                    cents(governor.spent()),
                    governor
                        .budget()
                        .map(|b| format!(" of {}", cents(b)))
                        .unwrap_or_default()
                );
            }
            Ok(crate::exit::of_stop(report.end))
        }
        Err(e) => {
            let code = crate::exit::of_stop(e.stop_reason());
            let overbilled = matches!(
                &e,
                agent::run::RunError::Session(agent::SessionError::Governor(g))
                    if g.kind() == governor::ErrorKind::Overbilled
            );
            let hint = match code {
                code::BUDGET => "; state saved — re-run with a larger --budget to continue",
                code::PIN if overbilled => {
                    "; the run stopped before another call — compare the ledger with the provider's bill"
                }
                code::PIN => "; the run stopped before spending more on the wrong model",
                _ => "",
            };
            Err(Failure::new(code, anyhow!("{e}{hint}")))
        }
    }
}

/// The notify hook's input: how the run stands now that it stopped (docs/events.md).
fn stop_summary(
    project: &Path,
    state_dir: &Path,
    governor: &governor::Governor,
) -> serde_json::Value {
    let state = RunState::load(state_dir).ok().flatten();
    let stop = state.as_ref().and_then(|s| s.last_stop.clone());
    serde_json::json!({
        "schema": agent::events::SCHEMA_VERSION,
        "type": "run.stopped",
        "project": project.display().to_string(),
        "state_dir": state_dir.display().to_string(),
        "model": state.as_ref().map(|s| s.model.clone()),
        "reason": stop.as_ref().map(|s| s.reason),
        "exit_code": stop.as_ref().map(|s| s.exit_code),
        "detail": stop.as_ref().map(|s| s.detail.clone()),
        "passing": state.as_ref().map_or(0, RunState::passing),
        "total": state.as_ref().map_or(0, |s| s.features.len()),
        "sessions": state.as_ref().map_or(0, |s| s.sessions.len()),
        "spent": governor.spent().nanos(),
        "budget": governor.budget().map(|b| b.nanos()),
    })
}

/// The `--prompts` directory when it lies inside the project (`init --prompts` puts it there):
/// the templates are read at every session, so the agent must not be able to rewrite them.
fn prompts_in_project(dir: Option<&Path>, project: &Path) -> Vec<PathBuf> {
    let (Some(dir), Ok(project)) = (dir, project.canonicalize()) else {
        return Vec::new();
    };
    match dir.canonicalize() {
        Ok(real) if real.starts_with(&project) && real != project => vec![real],
        _ => Vec::new(),
    }
}
