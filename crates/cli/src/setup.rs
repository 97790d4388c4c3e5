//! Wiring shared by the commands: the Governor from settings and config, state directories.

use crate::config::{catalog_cache_path, parse_budget, xdg_dir, FileConfig};
use crate::exit::Failure;
use anyhow::anyhow;
use governor::ledger::postgres::{BudgetName, LedgerUrl, PgLedger, PgLedgerOptions};
use governor::{
    Connection, Governor, GovernorConfig, GovernorSettings, PricingOverrides, ProvidersConfig,
};
use llm::Usd;
use sandbox::NetworkMode;
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The flags `exec` and `run` share: the model door and the agent's confinement.
#[derive(Debug, clap::Args)]
pub struct AgentArgs {
    /// The model, as provider/model (e.g. anthropic/claude-sonnet-4-5,
    /// openrouter/mistralai/mistral-7b-instruct:free, ollama/qwen2.5-coder:7b, replay/CASSETTE).
    #[arg(long, short = 'm', value_name = "MODEL")]
    pub model: Option<String>,
    /// The most the run may spend, in US dollars (e.g. 0.50); a re-run counts what was spent.
    /// With a database ledger: the cap of the named budget, for every process sharing it.
    #[arg(long, value_name = "USD", allow_hyphen_values = true)]
    pub budget: Option<String>,
    /// The named budget to spend from, in the database ledger (`ledger = "postgres://…"` or
    /// LOOPWRIGHT_LEDGER) [default: default].
    #[arg(long, value_name = "NAME")]
    pub budget_name: Option<String>,
    /// Refuse any priced model, and stop if a provider ever reports a cost.
    #[arg(long)]
    pub free_only: bool,
    /// Print JSONL events on stdout instead of the human display.
    #[arg(long)]
    pub json: bool,
    /// What the agent's commands may reach through the egress proxy: off, registries (the
    /// package registries of pip, npm, cargo and go) or open [default: registries].
    #[arg(long, value_name = "MODE", value_parser = ["off", "registries", "open"])]
    pub network: Option<String>,
    /// Also let the agent's commands reach HOST (repeatable): a host, .example.com for its
    /// subdomains, host:port for another port than 80/443, or an IP.
    #[arg(long = "allow-domain", value_name = "HOST")]
    pub allow_domains: Vec<String>,
    /// Deprecated: the same as --network open.
    #[arg(long, hide = true, conflicts_with = "network")]
    pub allow_network: bool,
    /// Confine the agent's commands with Landlock and seccomp (off: policy checks only).
    #[arg(long, value_name = "on|off", value_parser = ["on", "off"])]
    pub sandbox: Option<String>,
    /// Where the ledger, state and transcripts go [default: the one the project points at
    /// (.loopwright/state), else $XDG_STATE_HOME/loopwright/<project id>].
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
    /// `--budget-name` (else the config's `budget_name`): the budget in a database ledger.
    pub budget_name: Option<&'a str>,
    /// The run id written with every attempt in a database ledger (`None`: the run id kept in
    /// the ledger path's directory, created on first use, so a resumed run keeps it).
    pub run_id: Option<String>,
}

/// Resolves the model, provider, key and price, and opens the ledger. Errors carry the exit
/// code of DESIGN.md (2 bad model/key/config, 3 free-only/budget). A paid OpenRouter model with
/// no known price gets OpenRouter's price list fetched once (a catalog request, not a model
/// call: it costs nothing) before the budget is refused; a local server that refuses
/// connections is reported before anything else happens.
pub async fn build_governor(
    req: &GovernorRequest<'_>,
    file: &FileConfig,
    env: &BTreeMap<String, String>,
) -> Result<Governor, Failure> {
    let mut config = resolve_governor(req, file, env)?;
    if config.budget.is_some()
        && config.price.is_none()
        && *config.model.provider() == governor::Provider::Openrouter
    {
        fetch_openrouter_prices(file, env).await?;
        config = resolve_governor(req, file, env)?;
    }
    check_local_server(&config).await?;
    let governor = match database_ledger(req, file)? {
        Some(url) => {
            let backend = open_database_ledger(req, file, url).await?;
            Governor::with_backend(config, Arc::new(backend))
        }
        None => Governor::new(config),
    };
    governor.map_err(|e| {
        let hint = model_hint(&e, req.model, file, env);
        Failure::new(crate::exit::of_governor(e.kind()), anyhow!("{e}{hint}"))
    })
}

/// The database ledger's URL (`ledger` in the config, `LOOPWRIGHT_LEDGER`), parsed; `None`:
/// the file ledger. A budget name without a database ledger is refused.
fn database_ledger(
    req: &GovernorRequest<'_>,
    file: &FileConfig,
) -> Result<Option<LedgerUrl>, Failure> {
    let Some(raw) = file.ledger.as_deref().filter(|s| !s.trim().is_empty()) else {
        if let Some(name) = req.budget_name.or(file.budget_name.as_deref()) {
            return Err(Failure::usage(anyhow!(
                "the budget name {name:?} needs a database ledger: set ledger = \"postgres://…\" in the config or LOOPWRIGHT_LEDGER (the file ledger's budget is the run's own)"
            )));
        }
        return Ok(None);
    };
    LedgerUrl::parse(raw)
        .map(Some)
        .map_err(|e| Failure::usage(anyhow!(e)))
}

/// Opens the named budget in the database (exit 2 when it cannot be used; nothing is sent).
async fn open_database_ledger(
    req: &GovernorRequest<'_>,
    file: &FileConfig,
    url: LedgerUrl,
) -> Result<PgLedger, Failure> {
    let name = req
        .budget_name
        .or(file.budget_name.as_deref())
        .unwrap_or(BudgetName::DEFAULT);
    let budget =
        BudgetName::parse(name).map_err(|e| Failure::usage(anyhow!("--budget-name: {e}")))?;
    let run_id = match &req.run_id {
        Some(id) => id.clone(),
        None => kept_run_id(req.ledger_path.parent().unwrap_or(Path::new(".")))?,
    };
    let mut options = PgLedgerOptions::new(url, budget, run_id);
    options.cap = req.budget;
    PgLedger::open(options).await.map_err(Failure::governor)
}

/// The run id kept in `dir` (`run-id`), created on first use: `run-<UTC time>-<6 hex>`.
pub fn kept_run_id(dir: &Path) -> Result<String, Failure> {
    use sha2::Digest;
    let path = dir.join("run-id");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let id = text.trim();
        let ok = !id.is_empty()
            && id.len() <= 100
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if ok {
            return Ok(id.to_string());
        }
        return Err(Failure::usage(anyhow!(
            "{} does not hold a run id (letters, digits, '-', '_', '.'); remove it to start a new one",
            path.display()
        )));
    }
    let now = time::OffsetDateTime::now_utc();
    let seed = format!(
        "{}-{}-{}",
        std::process::id(),
        now.unix_timestamp_nanos(),
        dir.display()
    );
    let tag: String = sha2::Sha256::digest(seed.as_bytes())[..3]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let id = format!("run-{}-{tag}", crate::project::utc_stamp(now));
    std::fs::create_dir_all(dir)
        .and_then(|()| llm::atomic_write(&path, format!("{id}\n").as_bytes()))
        .map_err(|e| Failure::usage(anyhow!("cannot write {}: {e}", path.display())))?;
    Ok(id)
}

/// "; did you mean ...?" for an error about the model string or its price.
fn model_hint(
    e: &governor::GovernorError,
    model: &str,
    file: &FileConfig,
    env: &BTreeMap<String, String>,
) -> String {
    let pricing = PricingOverrides::from_toml(&file.pricing).unwrap_or_default();
    crate::suggest::for_model_error(e, model, &pricing, catalog_cache_path(env).as_deref())
}

/// Fetches OpenRouter's price list into the cache, as `loopwright models --refresh` does.
async fn fetch_openrouter_prices(
    file: &FileConfig,
    env: &BTreeMap<String, String>,
) -> Result<(), Failure> {
    let providers = ProvidersConfig::from_toml(&file.providers).map_err(Failure::governor)?;
    let Some(path) = catalog_cache_path(env) else {
        return Ok(());
    };
    let lookup = |k: &str| env.get(k).cloned();
    let client =
        governor::openrouter_catalog_client(&providers, &lookup).map_err(Failure::governor)?;
    tracing::info!(cache = %path.display(), "no price known: fetching OpenRouter's price list once");
    let catalog = governor::refresh_openrouter_catalog(&client, &path)
        .await
        .map_err(|e| {
            Failure::usage(anyhow!(e).context(
                "no price is known for the model and OpenRouter's price list could not be fetched",
            ))
        })?;
    eprintln!(
        "loopwright: fetched OpenRouter's prices ({} models) into {}",
        catalog.models.len(),
        path.display()
    );
    Ok(())
}

/// A local server (a base URL on this machine) that refuses connections is not running: say
/// how to start it, before anything is planned or recorded.
async fn check_local_server(config: &GovernorConfig) -> Result<(), Failure> {
    let Connection::Http { endpoint, .. } = &config.provider.connection else {
        return Ok(());
    };
    let Some((host, port)) = local_host_port(&endpoint.base_url) else {
        return Ok(());
    };
    let connect = tokio::net::TcpStream::connect((host.as_str(), port));
    match tokio::time::timeout(std::time::Duration::from_secs(5), connect).await {
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            let start = match config.provider.provider {
                governor::Provider::Ollama => format!(
                    "start Ollama with `ollama serve` (and fetch the model with `ollama pull {}`)",
                    config.model.model_id()
                ),
                _ => format!(
                    "start the server first (for llama.cpp: `llama-server -m MODEL.gguf --port {port}`), or fix base_url"
                ),
            };
            Err(Failure::usage(anyhow!(
                "nothing is listening at {} (connection refused) for {}; {start}",
                endpoint.base_url,
                config.model
            )))
        }
        _ => Ok(()),
    }
}

/// `(host, port)` of a base URL on this machine (`localhost`, `127.x`, `[::1]`), else `None`.
fn local_host_port(base_url: &str) -> Option<(String, u16)> {
    let (scheme, rest) = base_url.split_once("://")?;
    let authority = rest.split('/').next()?;
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !p.contains(']') => (h, p.parse().ok()?),
        _ => (authority, if scheme == "https" { 443 } else { 80 }),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let local = host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    local.then(|| (host.to_string(), port))
}

/// The Governor's configuration, resolved but not yet opened (nothing sent, no ledger). A
/// mistyped provider gets a "did you mean".
pub fn resolve_governor(
    req: &GovernorRequest<'_>,
    file: &FileConfig,
    env: &BTreeMap<String, String>,
) -> Result<GovernorConfig, Failure> {
    let providers = ProvidersConfig::from_toml(&file.providers).map_err(Failure::governor)?;
    let pricing = PricingOverrides::from_toml(&file.pricing).map_err(Failure::governor)?;
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
    let mut config = GovernorConfig::resolve(&settings, &lookup).map_err(|e| {
        let hint = model_hint(&e, req.model, file, env);
        Failure::new(crate::exit::of_governor(e.kind()), anyhow!("{e}{hint}"))
    })?;
    config.budget_includes_ledger = req.budget_includes_ledger;
    if let Some(max_tokens) = file.max_tokens {
        config.max_tokens = max_tokens;
    }
    // `[providers.NAME] max_tokens` is more specific than the top-level key.
    let provider_name = req.model.split('/').next().unwrap_or_default();
    if let Some(max_tokens) = providers.0.get(provider_name).and_then(|p| p.max_tokens) {
        if max_tokens == 0 {
            return Err(Failure::usage(anyhow!(
                "[providers.{provider_name}] max_tokens = 0 would allow no answer at all; give a number of tokens, or remove it"
            )));
        }
        config.max_tokens = max_tokens;
    }
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
    let mut out = governor.warnings().to_vec();
    if !sandbox_on {
        out.push("the sandbox is off (--sandbox off): the agent's commands run unconfined, with your permissions".into());
    }
    out
}

/// Starts the egress proxy when the agent's commands run in a network namespace of their own,
/// and returns what the user should know about the confinement this machine allows (the
/// fallback and its reason, running as root without namespaces, `registries` without a proxy).
pub async fn start_confinement(
    toolbox: &tools::Toolbox,
    network: &NetworkSettings,
    sandbox_on: bool,
) -> Result<Vec<String>, Failure> {
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    if !sandbox_on {
        return Ok(out);
    }
    let sandbox = toolbox.sandbox();
    let proxied = sandbox
        .start_egress_proxy()
        .await
        .map_err(|e| Failure::usage(anyhow!("cannot start the egress proxy: {e}")))?;
    let confinement = sandbox.confinement();
    if let Some(reason) = sandbox.fallback_reason() {
        out.push(format!(
            "this machine does not allow the sandbox's namespaces ({reason}); the agent's commands run under Landlock and seccomp only: they share the host's processes and network stack, and background processes end with their command"
        ));
    }
    if !confinement.namespaces && std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0) {
        out.push(
            "running as root without the sandbox's namespaces: confined commands cannot write outside the project, but they can change the mode and owner of root's files anywhere; run loopwright as an ordinary user".into(),
        );
    }
    if !proxied && network.mode == NetworkMode::Registries {
        out.push(
            "network = \"registries\" needs the sandbox's network namespace, which is not available here: the agent's commands get no network (use network = \"open\" for the whole network, unlogged)".into(),
        );
    }
    Ok(out)
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
            .map_err(Failure::run)?;
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

/// The state dir of a project's run and where that choice came from: the one given, else the
/// project's pointer (`.loopwright/state`) when it names an existing directory, else the
/// default by project path (see `project.rs`).
pub fn choose_state_dir(
    project: &Path,
    given: Option<PathBuf>,
    env: &BTreeMap<String, String>,
) -> Result<(PathBuf, crate::project::StateSource), Failure> {
    use crate::project::{read_pointer, StateSource};
    if let Some(dir) = given {
        let dir = std::path::absolute(&dir).unwrap_or(dir);
        return Ok((dir, StateSource::Given));
    }
    if let Some(dir) = read_pointer(project) {
        return Ok((dir, StateSource::Pointer));
    }
    Ok((state_dir_for(project, None, env)?, StateSource::Default))
}

/// [`choose_state_dir`] for commands that read a run (`status`, `report`, `reset`).
pub fn existing_state_dir(
    project: &Path,
    given: Option<PathBuf>,
    env: &BTreeMap<String, String>,
) -> Result<PathBuf, Failure> {
    choose_state_dir(project, given, env).map(|(dir, _)| dir)
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

/// `[limits]` in the config: resource limits of the agent's commands (0: no limit; unset: the
/// sandbox's default).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[serde(default)]
struct LimitsConfig {
    memory_per_command_mb: Option<u64>,
    memory_per_run_mb: Option<u64>,
    processes_per_command: Option<u64>,
    processes_per_run: Option<u64>,
    file_size_mb: Option<u64>,
}

impl LimitsConfig {
    /// The sandbox's defaults with the settings given here applied.
    fn resolve(&self) -> sandbox::ResourceLimits {
        fn set(slot: &mut Option<u64>, value: Option<u64>, unit: u64) {
            if let Some(v) = value {
                *slot = (v != 0).then(|| v.saturating_mul(unit));
            }
        }
        const MB: u64 = 1 << 20;
        let mut limits = sandbox::ResourceLimits::default();
        set(
            &mut limits.memory_per_command,
            self.memory_per_command_mb,
            MB,
        );
        set(&mut limits.memory_per_run, self.memory_per_run_mb, MB);
        set(
            &mut limits.processes_per_command,
            self.processes_per_command,
            1,
        );
        set(&mut limits.processes_per_run, self.processes_per_run, 1);
        set(&mut limits.file_size, self.file_size_mb, MB);
        limits
    }
}

/// The agent's network, resolved from flags and config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkSettings {
    pub mode: NetworkMode,
    /// The config's `allow_domains` followed by every `--allow-domain`.
    pub allow_domains: Vec<String>,
    /// Deprecated settings used, settings without effect.
    pub warnings: Vec<String>,
}

/// `--network`, else the deprecated `--allow-network` (open), else `network` in the config,
/// else the deprecated `allow_network` key (true: open, false: off), else `registries` (for
/// `run` and `exec` alike: installing packages is part of building, and the registries are
/// all that is reachable). The entries are checked here, so a typo is a usage error.
pub fn network_setting(args: &AgentArgs, file: &FileConfig) -> Result<NetworkSettings, Failure> {
    let mut warnings = Vec::new();
    let mode = if let Some(flag) = &args.network {
        flag.parse::<NetworkMode>()
            .map_err(|e| Failure::usage(anyhow!("--network: {e}")))?
    } else if args.allow_network {
        warnings.push("--allow-network is deprecated; use --network open".to_string());
        NetworkMode::Open
    } else if let Some(mode) = file.network {
        mode
    } else if let Some(allow) = file.allow_network {
        let mode = if allow {
            NetworkMode::Open
        } else {
            NetworkMode::Off
        };
        warnings.push(format!(
            "allow_network = {allow} in the config is deprecated; write network = \"{mode}\""
        ));
        mode
    } else {
        NetworkMode::Registries
    };
    let mut allow_domains = file.allow_domains.clone().unwrap_or_default();
    allow_domains.extend(args.allow_domains.iter().cloned());
    sandbox::EgressPolicy::new(mode, &allow_domains).map_err(|e| Failure::usage(anyhow!(e)))?;
    if mode == NetworkMode::Off && !allow_domains.is_empty() {
        warnings.push(format!(
            "network is \"off\", so allow_domains ({}) has no effect",
            allow_domains.join(", ")
        ));
    }
    Ok(NetworkSettings {
        mode,
        allow_domains,
        warnings,
    })
}

/// How the agent's tools are confined.
pub struct ToolboxRequest<'a> {
    pub project: &'a Path,
    pub sandbox_on: bool,
    pub network: &'a NetworkSettings,
    /// The kinds of guarded files with fixed paths the file tools may not write.
    pub guarded: &'a [tools::GuardedKind],
    /// Paths inside the project neither the file tools nor commands may write (the user's
    /// prompt templates when they live there).
    pub read_only: &'a [PathBuf],
}

/// The toolbox from the `[policy]` and `[paths]` config tables. A kernel without Landlock is a
/// clear error (exit 2) unless the sandbox was switched off explicitly.
pub fn build_toolbox(
    req: &ToolboxRequest<'_>,
    file: &FileConfig,
) -> Result<tools::Toolbox, Failure> {
    let config = toolbox_config(req, file)?;
    tools::Toolbox::new(config).map_err(|e| {
        let hint = if req.sandbox_on {
            " (to run without Landlock and seccomp, pass --sandbox off)"
        } else {
            ""
        };
        Failure::usage(anyhow!("cannot set up the agent's tools: {e}{hint}"))
    })
}

/// The `[name]` table of the config as `T`; a bad key or value is a usage error naming it.
fn config_table<T: serde::de::DeserializeOwned>(
    name: &str,
    table: &toml::Table,
) -> Result<T, Failure> {
    toml::Value::Table(table.clone())
        .try_into()
        .map_err(|e| Failure::usage(anyhow!("[{name}] in the config: {e}")))
}

/// The configuration [`build_toolbox`] builds the tools from (`run --workers` builds one
/// toolbox per worker from it, each with its copy of the project as the project).
pub fn toolbox_config(
    req: &ToolboxRequest<'_>,
    file: &FileConfig,
) -> Result<tools::ToolboxConfig, Failure> {
    let policy: sandbox::PolicyConfig = config_table("policy", &file.policy)?;
    let paths: PathsConfig = config_table("paths", &file.paths)?;
    let limits: LimitsConfig = config_table("limits", &file.limits)?;
    let mut config = tools::ToolboxConfig::new(req.project.to_path_buf());
    config.policy = policy;
    config.sandbox_mode = if req.sandbox_on {
        sandbox::SandboxMode::On
    } else {
        sandbox::SandboxMode::Off
    };
    // In a world the commands' network is their own loopback plus the egress proxy (started by
    // `start_confinement`). Without one (fallback mode) the proxy cannot be the only way out:
    // the socket filter then opens only for `open`, and `registries` means no sockets.
    config.allow_network = req.network.mode == NetworkMode::Open;
    config.network = req.network.mode;
    config.allow_domains = req.network.allow_domains.clone();
    config.extra_read = paths.extra_read;
    config.extra_write = paths.extra_write;
    config.env_allow = paths.env_allow;
    config.limits = limits.resolve();
    config.protected = tools::GuardedKind::protected(req.guarded);
    config.read_only = req.read_only.to_vec();
    Ok(config)
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

/// The first Ctrl-C, SIGTERM or SIGHUP asks to stop ([`agent::Interrupt::request`]: a model
/// call in flight is abandoned and settled in the ledger, a tool call under way finishes, state
/// is saved, exit 130). A second one (any of the three) stops at once: once the Governor has
/// settled the call in flight (waited for at most [`SETTLE_WAIT`]), the run's hard-stop hook
/// saves a stop record and the process exits 130. The same signal again within
/// [`SAME_INTERRUPT`] of the first is the first delivered twice (`timeout -s INT` and other
/// supervisors signal the process and then its group; taken as a second, the run quit at once).
/// The handlers are installed before this returns, so a signal right after start is not lost.
pub fn watch_signals(
    interrupt: Arc<agent::Interrupt>,
    governor: Arc<Governor>,
) -> Result<tokio::task::JoinHandle<()>, Failure> {
    use agent::Signal;
    use tokio::signal::unix::{signal, SignalKind};
    let install = |kind: SignalKind, name: &str| {
        signal(kind).map_err(|e| Failure::from(anyhow!("cannot install the {name} handler: {e}")))
    };
    let mut int = install(SignalKind::interrupt(), "Ctrl-C")?;
    let mut term = install(SignalKind::terminate(), "SIGTERM")?;
    let mut hup = install(SignalKind::hangup(), "SIGHUP")?;
    Ok(tokio::spawn(async move {
        let mut next = async || -> Option<Signal> {
            tokio::select! {
                got = int.recv() => got.map(|()| Signal::Interrupt),
                got = term.recv() => got.map(|()| Signal::Terminate),
                got = hup.recv() => got.map(|()| Signal::Hangup),
            }
        };
        let Some(first) = next().await else {
            return;
        };
        interrupt.request(first);
        // Written, not printed: after SIGHUP the terminal may be gone (a failed write must not
        // end this task).
        let _ = writeln!(
            std::io::stderr(),
            "\ninterrupted ({first}): cancelling the model call in flight (settled in the ledger) or finishing the tool call under way, then saving (a second Ctrl-C, SIGTERM or SIGHUP quits at once)"
        );
        let first_at = std::time::Instant::now();
        let second = loop {
            let Some(next) = next().await else {
                return;
            };
            if next != first || first_at.elapsed() >= SAME_INTERRUPT {
                break next;
            }
        };
        let settled = governor.settled(SETTLE_WAIT).await;
        interrupt.hard_stop(second);
        let _ = writeln!(
            std::io::stderr(),
            "stopped at once ({second}){}; state saved — re-run the same command to resume",
            if settled {
                ""
            } else {
                "; a model call was still in flight and counts at its reservation"
            }
        );
        std::process::exit(crate::exit::code::INTERRUPTED);
    }))
}

/// The longest a second signal waits for the Governor to settle the call in flight.
pub const SETTLE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// The same signal this close to the first is taken as the same one (see [`watch_signals`]).
pub const SAME_INTERRUPT: std::time::Duration = std::time::Duration::from_secs(1);

/// The model: the flag, else the config (`model = ...`, `LOOPWRIGHT_MODEL`).
pub fn model_setting(flag: Option<&str>, file: &FileConfig) -> Result<String, Failure> {
    flag.map(str::to_string).or_else(|| file.model.clone()).ok_or_else(|| {
        Failure::usage(anyhow!(
            "no model given; pass --model provider/model (e.g. anthropic/claude-sonnet-4-5), set LOOPWRIGHT_MODEL, or put model = \"...\" in loopwright.toml"
        ))
    })
}

/// The budget: the flag, else the config (`budget = ...`, `LOOPWRIGHT_BUDGET`). Zero or less
/// is refused: it could pay for nothing.
pub fn budget_setting(flag: Option<&str>, file: &FileConfig) -> Result<Option<Usd>, Failure> {
    let (budget, source) = match flag {
        Some(text) => (
            parse_budget(&toml::Value::String(text.to_string()))
                .map_err(|e| Failure::usage(e.context("--budget")))?,
            "--budget",
        ),
        None => match file.budget.as_ref() {
            Some(value) => (
                parse_budget(value).map_err(|e| Failure::usage(e.context("budget")))?,
                "budget",
            ),
            None => return Ok(None),
        },
    };
    if budget.nanos() <= 0 {
        return Err(Failure::usage(anyhow!(
            "{source} {budget} can pay for nothing; give a positive amount of US dollars (e.g. --budget 0.50), or leave it out and use --free-only for free models"
        )));
    }
    Ok(Some(budget))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, clap::Parser)]
    struct Args {
        #[command(flatten)]
        agent: AgentArgs,
    }

    fn network(flags: &[&str], config: &str) -> Result<NetworkSettings, Failure> {
        let args = Args::try_parse_from(std::iter::once("x").chain(flags.iter().copied()))
            .unwrap()
            .agent;
        let file: FileConfig = toml::from_str(config).unwrap();
        network_setting(&args, &file)
    }

    #[test]
    fn network_defaults_to_registries_and_flags_beat_the_config() {
        let n = network(&[], "").unwrap();
        assert_eq!(
            (n.mode, n.allow_domains.len(), n.warnings.len()),
            (NetworkMode::Registries, 0, 0)
        );
        let n = network(&["--network", "off"], "network = \"open\"").unwrap();
        assert_eq!(n.mode, NetworkMode::Off);
        let n = network(&[], "network = \"open\"").unwrap();
        assert_eq!(n.mode, NetworkMode::Open);
        let n = network(
            &["--allow-domain", "b.test", "--allow-domain", ".c.test:8443"],
            "allow_domains = [\"a.test\"]",
        )
        .unwrap();
        assert_eq!(n.allow_domains, ["a.test", "b.test", ".c.test:8443"]);
    }

    #[test]
    fn allow_network_still_works_with_a_deprecation_warning() {
        let n = network(&["--allow-network"], "network = \"off\"").unwrap();
        assert_eq!(n.mode, NetworkMode::Open);
        assert!(n.warnings[0].contains("--network open"), "{:?}", n.warnings);
        let n = network(&[], "allow_network = true").unwrap();
        assert_eq!(n.mode, NetworkMode::Open);
        let n = network(&[], "allow_network = false").unwrap();
        assert_eq!(n.mode, NetworkMode::Off);
        assert!(
            n.warnings[0].contains("network = \"off\""),
            "{:?}",
            n.warnings
        );
        // The new key wins over the old one.
        let n = network(&[], "allow_network = true\nnetwork = \"registries\"").unwrap();
        assert_eq!(n.mode, NetworkMode::Registries);
        assert!(Args::try_parse_from(["x", "--allow-network", "--network", "off"]).is_err());
    }

    #[test]
    fn bad_allow_entries_are_usage_errors_naming_the_entry() {
        let err = network(&["--allow-domain", "https://example.com"], "").unwrap_err();
        assert_eq!(err.code, crate::exit::code::USAGE);
        assert!(
            format!("{:#}", err.error).contains("https://example.com"),
            "{:#}",
            err.error
        );
        let n = network(&["--network", "off", "--allow-domain", "a.test"], "").unwrap();
        assert!(n.warnings[0].contains("no effect"), "{:?}", n.warnings);
    }

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
