//! Wiring shared by the commands: the Governor from settings and config, state directories.

use crate::config::{catalog_cache_path, parse_budget, xdg_dir, FileConfig};
use crate::exit::Failure;
use anyhow::anyhow;
use governor::{Governor, GovernorConfig, GovernorSettings, PricingOverrides, ProvidersConfig};
use llm::Usd;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The flags `exec` and `run` share: the model door and the agent's confinement.
#[derive(Debug, clap::Args)]
pub struct AgentArgs {
    /// The model, as provider/model (e.g. anthropic/claude-sonnet-4-5,
    /// openrouter/mistralai/mistral-7b-instruct:free, ollama/qwen2.5-coder:7b, replay/CASSETTE).
    #[arg(long, short = 'm', value_name = "MODEL")]
    pub model: Option<String>,
    /// The most the run may spend, in US dollars (e.g. 0.50); a re-run counts what was spent.
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
    /// Where the ledger, state and transcripts go [default: $XDG_STATE_HOME/loopwright/<project id>].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// The model's context window in tokens [default: by model family].
    #[arg(long, value_name = "TOKENS", value_parser = clap::value_parser!(u64).range(1024..))]
    pub context_window: Option<u64>,
    /// How tools reach the model: native (the API's tool calling) or text (described in the
    /// prompt, calls read from the answer) [default: the provider's tool_protocol, else native].
    #[arg(long, value_name = "native|text", value_parser = ["native", "text"])]
    pub tool_protocol: Option<String>,
}

/// `--tool-protocol`, parsed (clap already limited it to the known names).
pub fn tool_protocol_flag(flag: Option<&str>) -> Result<Option<llm::ToolProtocol>, Failure> {
    flag.map(|f| f.parse().map_err(|e: String| Failure::usage(anyhow!(e))))
        .transpose()
}

/// What the Governor needs besides the config file.
pub struct GovernorRequest<'a> {
    pub model: &'a str,
    pub budget: Option<Usd>,
    pub free_only: bool,
    pub ledger_path: PathBuf,
    pub record_to: Option<PathBuf>,
    /// Whether earlier spend in the ledger counts against the budget (`run`: yes, so a resumed
    /// run continues its budget; `exec`, `doctor`: no, the budget is for this invocation).
    pub budget_includes_ledger: bool,
    /// `--tool-protocol`: overrides the provider's `tool_protocol` (a replay follows its
    /// recording).
    pub tool_protocol: Option<llm::ToolProtocol>,
}

/// Resolves the model, provider, key and price, and opens the ledger. Errors carry the exit
/// code of DESIGN.md (2 bad model/key/config, 3 free-only/budget).
pub fn build_governor(
    req: &GovernorRequest<'_>,
    file: &FileConfig,
    env: &BTreeMap<String, String>,
) -> Result<Governor, Failure> {
    let config = resolve_governor(req, file, env)?;
    Governor::new(config).map_err(|e| Failure::new(e.exit_code(), anyhow!(e)))
}

/// The Governor's configuration, resolved but not yet opened (nothing sent, no ledger).
pub fn resolve_governor(
    req: &GovernorRequest<'_>,
    file: &FileConfig,
    env: &BTreeMap<String, String>,
) -> Result<GovernorConfig, Failure> {
    let providers = ProvidersConfig::from_toml(&file.providers)
        .map_err(|e| Failure::new(e.exit_code(), anyhow!(e)))?;
    let pricing = PricingOverrides::from_toml(&file.pricing)
        .map_err(|e| Failure::new(e.exit_code(), anyhow!(e)))?;
    let cache = catalog_cache_path(env);
    let settings = GovernorSettings {
        model: req.model,
        providers: &providers,
        pricing: &pricing,
        openrouter_catalog: cache.as_deref(),
        budget: req.budget,
        free_only: req.free_only,
        ledger_path: req.ledger_path.clone(),
        record_to: req.record_to.clone(),
    };
    let lookup = |k: &str| env.get(k).cloned();
    let mut config = GovernorConfig::resolve(&settings, &lookup)
        .map_err(|e| Failure::new(e.exit_code(), anyhow!(e)))?;
    config.budget_includes_ledger = req.budget_includes_ledger;
    if let (Some(protocol), governor::Connection::Http { options, .. }) =
        (req.tool_protocol, &mut config.provider.connection)
    {
        options.tool_protocol = protocol;
    }
    Ok(config)
}

/// The tool protocol the Governor's client will use (`None` for a replay: its recording says).
pub fn tool_protocol_of(config: &GovernorConfig) -> Option<llm::ToolProtocol> {
    match &config.provider.connection {
        governor::Connection::Http { options, .. } => Some(options.tool_protocol),
        governor::Connection::Replay { .. } => None,
    }
}

/// `$XDG_STATE_HOME/loopwright/<name>`, else `~/.local/state/loopwright/<name>`.
pub fn state_home(env: &BTreeMap<String, String>, name: &str) -> Option<PathBuf> {
    let base = xdg_dir(env, "XDG_STATE_HOME", ".local/state")?;
    Some(base.join("loopwright").join(name))
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

/// The state dir of a project: the one given, else `$XDG_STATE_HOME/loopwright/<project id>`
/// (or `~/.local/state/...`).
pub fn state_dir_for(
    project: &Path,
    given: Option<PathBuf>,
    env: &BTreeMap<String, String>,
) -> Result<PathBuf, Failure> {
    match given {
        Some(dir) => Ok(dir),
        None => state_home(env, &project_id(project)).ok_or_else(|| {
            Failure::usage(anyhow!(
                "cannot choose a state directory: neither XDG_STATE_HOME nor HOME is set; pass --state-dir"
            ))
        }),
    }
}

/// Things the user should know before a run starts: the Governor's (an unknown price, a torn
/// ledger line) and the sandbox's (running as root, the sandbox switched off).
pub fn startup_warnings(governor: &Governor, sandbox_on: bool) -> Vec<String> {
    use std::os::unix::fs::MetadataExt;
    let mut out = governor.warnings().to_vec();
    if !sandbox_on {
        out.push("the sandbox is off (--sandbox off): the agent's commands run unconfined, with your permissions".into());
    } else if std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0) {
        out.push(
            "running as root: confined commands cannot write outside the project, but they can change the mode and owner of root's files anywhere; run loopwright as an ordinary user".into(),
        );
    }
    out
}

/// A session cut off by the harness dying (not by the agent: it cannot signal the harness) may
/// have left a changed `loopwright.toml` behind; it is put back before the configuration is
/// read. The state dir is looked for where the configuration with and without the project's
/// file points, so a changed `state_dir` key cannot hide it.
pub fn undo_cut_off_config_changes(
    project: &Path,
    flag: Option<&PathBuf>,
    env: &BTreeMap<String, String>,
    progress: &crate::progress::Progress,
) -> Result<(), Failure> {
    let with_project = crate::config::load_layers(Some(project), env)
        .ok()
        .and_then(|f| f.state_dir);
    let without_project = crate::config::load_layers(None, env)
        .ok()
        .and_then(|f| f.state_dir);
    let mut dirs = Vec::new();
    for given in [
        flag.cloned().or(with_project),
        flag.cloned().or(without_project),
    ] {
        let dir = state_dir_for(project, given, env)?;
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
    for dir in dirs {
        let undone = agent::run::undo_config_changes_of_cut_off_session(&dir, project)
            .map_err(|e| Failure::new(e.exit_code(), anyhow!(e)))?;
        if undone {
            agent::EventSink::emit(progress, &agent::Event::now(
                "run",
                agent::EventKind::Warning {
                    message: "loopwright.toml was changed during a session that was cut off; it was put back as it was before that session".into(),
                },
            ));
        }
    }
    Ok(())
}

/// [`state_dir_for`], created if missing.
pub fn create_state_dir(
    project: &Path,
    given: Option<PathBuf>,
    env: &BTreeMap<String, String>,
) -> Result<PathBuf, Failure> {
    let dir = state_dir_for(project, given, env)?;
    std::fs::create_dir_all(&dir).map_err(|e| {
        Failure::usage(anyhow!(
            "cannot create the state directory {}: {e}",
            dir.display()
        ))
    })?;
    Ok(dir)
}

/// `[paths]` in the config: more paths for the agent's commands, more variables passed through.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(default)]
struct PathsConfig {
    extra_read: Vec<PathBuf>,
    extra_write: Vec<PathBuf>,
    env_allow: Vec<String>,
}

/// How the agent's tools are confined.
pub struct ToolboxRequest<'a> {
    pub project: &'a Path,
    pub sandbox_on: bool,
    pub allow_network: bool,
    /// Paths the file tools may not write (relative to the project).
    pub protected: &'a [&'a str],
}

/// The toolbox from the `[policy]` and `[paths]` config tables. A kernel without Landlock is a
/// clear error (exit 2) unless the sandbox was switched off explicitly.
pub fn build_toolbox(
    req: &ToolboxRequest<'_>,
    file: &FileConfig,
) -> Result<tools::Toolbox, Failure> {
    let policy: sandbox::PolicyConfig = toml::Value::Table(file.policy.clone())
        .try_into()
        .map_err(|e| Failure::usage(anyhow!("[policy] in the config: {e}")))?;
    let paths: PathsConfig = toml::Value::Table(file.paths.clone())
        .try_into()
        .map_err(|e| Failure::usage(anyhow!("[paths] in the config: {e}")))?;
    let mut config = tools::ToolboxConfig::new(req.project.to_path_buf());
    config.policy = policy;
    config.sandbox_mode = if req.sandbox_on {
        sandbox::SandboxMode::On
    } else {
        sandbox::SandboxMode::Off
    };
    config.allow_network = req.allow_network;
    config.extra_read = paths.extra_read;
    config.extra_write = paths.extra_write;
    config.env_allow = paths.env_allow;
    config.protected = req.protected.iter().map(PathBuf::from).collect();
    tools::Toolbox::new(config).map_err(|e| {
        let hint = if req.sandbox_on {
            " (to run without Landlock and seccomp, pass --sandbox off)"
        } else {
            ""
        };
        Failure::usage(anyhow!("cannot set up the agent's tools: {e}{hint}"))
    })
}

/// `sandbox = "on" | "off"` from a flag or the config (default on).
pub fn sandbox_on(flag: Option<&str>, file: &FileConfig) -> Result<bool, Failure> {
    match flag.or(file.sandbox.as_deref()) {
        None | Some("on") => Ok(true),
        Some("off") => Ok(false),
        Some(other) => Err(Failure::usage(anyhow!(
            "sandbox = {other:?}; use \"on\" or \"off\""
        ))),
    }
}

/// First Ctrl-C: cancel (the step under way finishes, state is saved). Second: leave at once.
/// The handler is installed before this returns, so an interrupt right after start is not lost.
pub fn watch_interrupts(
    cancel: tokio_util::sync::CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, Failure> {
    let mut interrupts = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| Failure::from(anyhow!("cannot install the Ctrl-C handler: {e}")))?;
    Ok(tokio::spawn(async move {
        if interrupts.recv().await.is_none() {
            return;
        }
        eprintln!("\ninterrupted: finishing the current step (Ctrl-C again to quit now)");
        cancel.cancel();
        if interrupts.recv().await.is_some() {
            std::process::exit(crate::exit::code::INTERRUPTED);
        }
    }))
}

/// The model: the flag, else the config (`model = ...`, `LOOPWRIGHT_MODEL`).
pub fn model_setting(flag: Option<&str>, file: &FileConfig) -> Result<String, Failure> {
    flag.map(str::to_string).or_else(|| file.model.clone()).ok_or_else(|| {
        Failure::usage(anyhow!(
            "no model given; pass --model provider/model (e.g. anthropic/claude-sonnet-4-5), set LOOPWRIGHT_MODEL, or put model = \"...\" in loopwright.toml"
        ))
    })
}

/// The budget: the flag, else the config (`budget = ...`, `LOOPWRIGHT_BUDGET`).
pub fn budget_setting(flag: Option<&str>, file: &FileConfig) -> Result<Option<Usd>, Failure> {
    match flag {
        Some(text) => parse_budget(&toml::Value::String(text.to_string()))
            .map(Some)
            .map_err(|e| Failure::usage(e.context("--budget"))),
        None => file
            .budget
            .as_ref()
            .map(parse_budget)
            .transpose()
            .map_err(Failure::usage),
    }
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
