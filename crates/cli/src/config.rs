//! Configuration files and their precedence: flags > environment > project `loopwright.toml` >
//! user `~/.config/loopwright/config.toml`.

use agent::run::project_files::PROJECT_CONFIG_MAX_BYTES;
use anyhow::{Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The keys a config file may hold. Unknown keys are an error (a typo must not be ignored).
///
/// Each key's doc comment is its documentation in the `loopwright.toml` that `loopwright init`
/// writes (see `init.rs`): `[default: X]` gives its default as TOML, `[example: X]` a value to
/// show when there is none, and indented lines an example for a table.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The model, as provider/model; `loopwright models` lists known ones. [example: "anthropic/claude-sonnet-4-5"]
    pub model: Option<String>,
    /// The most a run may spend, in US dollars, as a decimal string or number; a resumed run counts what was spent. No budget: no limit. [example: "5.00"]
    pub budget: Option<toml::Value>,
    /// Where spend is recorded and the budget kept: unset for ledger.jsonl in the state dir, or a PostgreSQL URL for one budget shared by many processes and machines (docs/kubernetes.md); also LOOPWRIGHT_LEDGER. The password is never shown. [example: "postgres://loopwright:PASSWORD@db.internal:5432/loopwright"]
    pub ledger: Option<String>,
    /// The named budget of the database ledger to spend from; `budget` (or --budget) sets its cap for every process sharing it; also LOOPWRIGHT_BUDGET_NAME. [default: "default"]
    pub budget_name: Option<String>,
    /// Refuse any priced model, and stop if a provider ever reports a cost. [default: false]
    pub free_only: Option<bool>,
    /// "on" confines the agent's commands; "off" runs them unconfined, with your permissions. [default: "on"]
    pub sandbox: Option<String>,
    /// What the agent's commands may reach: "off", "registries" (the package registries) or "open". [default: "registries"]
    pub network: Option<sandbox::NetworkMode>,
    /// More hosts the agent's commands may reach: "example.com", ".example.com" (subdomains), "host:port", an IP. [example: ["example.com"]]
    pub allow_domains: Option<Vec<String>>,
    /// Deprecated: true is network = "open", false is network = "off". [example: false]
    pub allow_network: Option<bool>,
    /// `run` stops after this many sessions of one invocation; no limit by default. [example: 50]
    pub max_sessions: Option<u32>,
    /// `run`: build sessions at once, each in its own copy of the project with features of its own, merged into the project when it ends. [default: 1]
    pub workers: Option<u32>,
    /// The most model calls one session may make (`exec`: 50). [default: 80]
    pub max_turns: Option<u32>,
    /// Sessions in a row without progress (more features passing than ever before) before `run` stops as stalled; a misbehaviour that repeats the previous session's counts double; kept across re-runs. [default: 3]
    pub stall_sessions: Option<u32>,
    /// Planning sessions in a row without a plan that can be frozen before the run stops. [default: 3]
    pub planning_attempts: Option<u32>,
    /// The most features a plan may have. [default: 200]
    pub max_features: Option<u32>,
    /// Files bigger than this many MB are not committed by the harness. [default: 5]
    pub commit_max_file_mb: Option<u64>,
    /// Characters of one tool result the model gets (its head and tail, with a note). [default: 40000]
    pub max_tool_result_chars: Option<u32>,
    /// When a misbehaving session ends: no_progress_turns, tool_error_turns, repeat_limit, cut_off_streak, cut_off_cap, max_tool_calls, over_cap_answers, session_seconds (0: no limit).
    ///     [watchdog]
    ///     no_progress_turns = 5
    ///     session_seconds = 3600
    #[serde(default)]
    pub watchdog: toml::Table,
    /// Where the run's state goes; by default $XDG_STATE_HOME/loopwright/<project id>. [example: "/var/tmp/loopwright-state"]
    pub state_dir: Option<PathBuf>,
    /// How many features planning should aim for (the planning prompt says so); by default the model decides. [example: 20]
    pub features: Option<u32>,
    /// The most tokens one model answer may have (lowered when the budget cannot pay for it); by default 8192 for priced models, 4096 for free and local ones. [example: 8192]
    pub max_tokens: Option<u32>,
    /// A command run when a run stops for any cause, with a JSON summary on its standard input (docs/events.md); its failure is only a warning. [example: ["notify-send", "loopwright run stopped"]]
    pub notify: Option<Vec<String>>,
    /// Other OpenAI- or Anthropic-compatible servers, by provider name (use `NAME/model`), and settings of the built-in ones. Keys: base_url, api_key_env, wire, local, tool_protocol, max_tokens (over the top-level key), and how long a call may take: first_byte_timeout_secs (until the response headers), idle_timeout_secs (silence), call_timeout_secs (in all) — 600/300/1800 s for servers on this machine, 60/120/600 s for remote APIs.
    ///     [providers.llamacpp]
    ///     base_url = "http://127.0.0.1:8080/v1"
    ///     api_key_env = "LLAMACPP_KEY"
    ///     wire = "openai"
    ///     first_byte_timeout_secs = 900
    #[serde(default)]
    pub providers: toml::Table,
    /// Prices in USD per million tokens, overriding the built-in catalog.
    ///     [pricing."openai/gpt-4.1-mini"]
    ///     input = "0.40"
    ///     output = "1.60"
    ///     cache_read = "0.10"
    #[serde(default)]
    pub pricing: toml::Table,
    /// The agent's command allowlist: programs added to or removed from the default.
    ///     [policy]
    ///     allow = ["jq"]
    ///     deny = ["rm"]
    #[serde(default)]
    pub policy: toml::Table,
    /// More paths for the agent's commands to read or write, and variables passed through.
    ///     [paths]
    ///     extra_read = ["/opt/sdk"]
    ///     extra_write = []
    ///     env_allow = ["JAVA_HOME"]
    #[serde(default)]
    pub paths: toml::Table,
    /// Resource limits of the agent's commands: memory_per_command_mb, memory_per_run_mb, processes_per_command, processes_per_run, file_size_mb (0: no limit). By default a run's commands share half the machine's memory and 4096 processes, and no file may pass 32 GiB; a command that hits a limit is stopped and the model told why.
    ///     [limits]
    ///     memory_per_command_mb = 2048
    ///     processes_per_run = 512
    #[serde(default)]
    pub limits: toml::Table,
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<Option<FileConfig>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot read config file {}", path.display()))
            }
        };
        let cfg: FileConfig = toml::from_str(&text).with_context(|| {
            format!(
                "config file {} is not valid loopwright configuration",
                path.display()
            )
        })?;
        Ok(Some(cfg))
    }

    /// The project's `loopwright.toml`. The agent can change anything in the project, and the
    /// harness reads this file with its own rights before anything else, so it is read through
    /// [`sandbox::untrusted`]: a link (to `/proc/self/environ`, `~/.ssh/id_rsa`...), a FIFO
    /// (which would hang `run`, `exec` and `status`), a socket or a directory is refused with a
    /// clear error — the CLI stops with exit 2 — and the file is capped at
    /// [`PROJECT_CONFIG_MAX_BYTES`].
    pub fn load_project(dir: &Path) -> Result<Option<FileConfig>> {
        let name = Path::new("loopwright.toml");
        let path = dir.join(name);
        let contents = match sandbox::untrusted::read(dir, name, PROJECT_CONFIG_MAX_BYTES) {
            Ok(c) => c,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => anyhow::bail!(
                "cannot use the project's configuration: {e}. It must be a regular file: the \
                 agent can change anything in the project, so loopwright reads no link and no \
                 special file there; replace it with a regular file, or put the settings in \
                 ~/.config/loopwright/config.toml"
            ),
        };
        if contents.truncated {
            anyhow::bail!(
                "config file {} is {} bytes, more than the {PROJECT_CONFIG_MAX_BYTES} a \
                 configuration file may have",
                path.display(),
                contents.size
            );
        }
        let text = String::from_utf8(contents.bytes)
            .map_err(|_| anyhow::anyhow!("config file {} is not UTF-8 text", path.display()))?;
        let cfg: FileConfig = toml::from_str(&text).with_context(|| {
            format!(
                "config file {} is not valid loopwright configuration",
                path.display()
            )
        })?;
        Ok(Some(cfg))
    }

    /// Lays `over` on top of `self`: scalar keys in `over` win; tables are merged key by key.
    pub fn overlay(mut self, over: FileConfig) -> FileConfig {
        macro_rules! take {
            ($($f:ident),*) => { $( if over.$f.is_some() { self.$f = over.$f; } )* };
        }
        take!(
            model,
            budget,
            ledger,
            budget_name,
            free_only,
            sandbox,
            network,
            allow_domains,
            allow_network,
            max_sessions,
            workers,
            max_turns,
            stall_sessions,
            state_dir,
            features,
            max_tokens,
            notify,
            planning_attempts,
            max_features,
            commit_max_file_mb,
            max_tool_result_chars
        );
        merge_table(&mut self.watchdog, over.watchdog);
        merge_table(&mut self.providers, over.providers);
        merge_table(&mut self.pricing, over.pricing);
        merge_table(&mut self.policy, over.policy);
        merge_table(&mut self.paths, over.paths);
        merge_table(&mut self.limits, over.limits);
        self
    }
}

fn merge_table(base: &mut toml::Table, over: toml::Table) {
    for (k, v) in over {
        base.insert(k, v);
    }
}

/// An XDG base directory: `$VAR` when set and not empty, else `$HOME/<fallback>`.
pub fn xdg_dir(env: &BTreeMap<String, String>, var: &str, fallback: &str) -> Option<PathBuf> {
    env.get(var)
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            env.get("HOME")
                .filter(|s| !s.is_empty())
                .map(|h| Path::new(h).join(fallback))
        })
}

/// The user's config file: `$LOOPWRIGHT_CONFIG`, else `$XDG_CONFIG_HOME/loopwright/config.toml`,
/// else `~/.config/loopwright/config.toml`.
pub fn user_config_path(env: &BTreeMap<String, String>) -> Option<PathBuf> {
    if let Some(p) = env.get("LOOPWRIGHT_CONFIG").filter(|s| !s.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let base = xdg_dir(env, "XDG_CONFIG_HOME", ".config")?;
    Some(base.join("loopwright").join("config.toml"))
}

/// Loads user then project configuration, then applies `LOOPWRIGHT_*` environment variables.
pub fn load_layers(
    project_dir: Option<&Path>,
    env: &BTreeMap<String, String>,
) -> Result<FileConfig> {
    let mut cfg = FileConfig::default();
    if let Some(p) = user_config_path(env) {
        if let Some(user) = FileConfig::load(&p)? {
            cfg = cfg.overlay(user);
        }
    }
    if let Some(dir) = project_dir {
        if let Some(project) = FileConfig::load_project(dir)? {
            cfg = cfg.overlay(project);
        }
    }
    let from_env = FileConfig {
        model: env
            .get("LOOPWRIGHT_MODEL")
            .filter(|s| !s.is_empty())
            .cloned(),
        budget: env
            .get("LOOPWRIGHT_BUDGET")
            .filter(|s| !s.is_empty())
            .map(|s| toml::Value::String(s.clone())),
        free_only: match env.get("LOOPWRIGHT_FREE_ONLY").map(String::as_str) {
            Some("1") | Some("true") | Some("yes") => Some(true),
            Some("0") | Some("false") | Some("no") => Some(false),
            _ => None,
        },
        ledger: env
            .get("LOOPWRIGHT_LEDGER")
            .filter(|s| !s.is_empty())
            .cloned(),
        budget_name: env
            .get("LOOPWRIGHT_BUDGET_NAME")
            .filter(|s| !s.is_empty())
            .cloned(),
        state_dir: env
            .get("LOOPWRIGHT_STATE_DIR")
            .filter(|s| !s.is_empty())
            .map(PathBuf::from),
        ..FileConfig::default()
    };
    Ok(cfg.overlay(from_env))
}

/// `[watchdog]` in the config: the thresholds at which a misbehaving session ends. Counts of
/// turns; 0 turns a rule off.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WatchdogSettings {
    /// Turns in a row without progress (no new content in the project, no check newly passing).
    pub no_progress_turns: Option<u32>,
    /// Turns in a row in which every tool call failed.
    pub tool_error_turns: Option<u32>,
    /// The same call with the same result this many times earns a warning; once more ends.
    pub repeat_limit: Option<u32>,
    /// Answers in a row cut off at max_tokens.
    pub cut_off_streak: Option<u32>,
    /// Answers cut off at max_tokens in one session.
    pub cut_off_cap: Option<u32>,
    /// Tool calls of one answer that run; the rest are refused.
    pub max_tool_calls: Option<u32>,
    /// Answers over `max_tool_calls` in one session.
    pub over_cap_answers: Option<u32>,
    /// Seconds a session may run (0: no limit).
    pub session_seconds: Option<u64>,
}

impl WatchdogSettings {
    /// Reads the `[watchdog]` table.
    pub fn from_table(table: &toml::Table) -> Result<WatchdogSettings> {
        toml::Value::Table(table.clone())
            .try_into()
            .context("[watchdog] in the config")
    }

    /// The settings laid over the defaults.
    pub fn apply(&self, mut config: agent::WatchdogConfig) -> agent::WatchdogConfig {
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = self.$f { config.$f = v; } )* };
        }
        set!(
            no_progress_turns,
            tool_error_turns,
            repeat_limit,
            cut_off_streak,
            cut_off_cap,
            max_tool_calls,
            over_cap_answers
        );
        if let Some(secs) = self.session_seconds {
            config.max_duration = (secs > 0).then(|| std::time::Duration::from_secs(secs));
        }
        config
    }
}

/// Reads a budget given as `"5.00"`, `5`, or `5.0` in a config file or flag.
pub fn parse_budget(v: &toml::Value) -> Result<llm::Usd> {
    let text = match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        other => anyhow::bail!("budget must be a number of US dollars like \"5.00\", not {other}"),
    };
    let usd: llm::Usd = text.parse().with_context(|| format!("budget {text:?}"))?;
    if usd.nanos() < 0 {
        anyhow::bail!(
            "budget {text:?} is negative; give a positive amount of US dollars (e.g. 0.50)"
        );
    }
    Ok(usd)
}

/// Where `loopwright models --refresh` keeps OpenRouter's price list:
/// `$XDG_CACHE_HOME/loopwright/openrouter-models.json`, else `~/.cache/loopwright/...`.
pub fn catalog_cache_path(env: &BTreeMap<String, String>) -> Option<PathBuf> {
    let base = xdg_dir(env, "XDG_CACHE_HOME", ".cache")?;
    Some(base.join("loopwright").join("openrouter-models.json"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn project_overrides_user_and_env_overrides_project() {
        let dir = tempfile::tempdir().unwrap();
        let user = dir.path().join("user.toml");
        std::fs::write(
            &user,
            "model = \"openai/gpt-4.1-mini\"\nbudget = \"1.00\"\n[policy]\nallow = [\"jq\"]\n",
        )
        .unwrap();
        let project = dir.path().join("proj");
        std::fs::create_dir(&project).unwrap();
        std::fs::write(
            project.join("loopwright.toml"),
            "budget = 2\nfree_only = true\n",
        )
        .unwrap();
        let e = env(&[
            ("LOOPWRIGHT_CONFIG", user.to_str().unwrap()),
            ("LOOPWRIGHT_BUDGET", "3.5"),
        ]);
        let cfg = load_layers(Some(&project), &e).unwrap();
        assert_eq!(cfg.model.as_deref(), Some("openai/gpt-4.1-mini"));
        assert_eq!(
            parse_budget(cfg.budget.as_ref().unwrap()).unwrap().nanos(),
            3_500_000_000
        );
        assert_eq!(cfg.free_only, Some(true));
        assert!(cfg.policy.contains_key("allow"));
    }

    #[test]
    fn unknown_keys_are_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let user = dir.path().join("c.toml");
        std::fs::write(&user, "modle = \"x/y\"\n").unwrap();
        let err =
            load_layers(None, &env(&[("LOOPWRIGHT_CONFIG", user.to_str().unwrap())])).unwrap_err();
        let msg = format!("{err:#}");
        assert!(msg.contains("c.toml"), "{msg}");
        assert!(msg.contains("modle"), "{msg}");
    }

    #[test]
    fn network_keys_are_read_and_a_bad_mode_names_the_choices() {
        let dir = tempfile::tempdir().unwrap();
        let user = dir.path().join("c.toml");
        std::fs::write(&user, "network = \"open\"\nallow_domains = [\"a.test\"]\n").unwrap();
        let project = dir.path().join("proj");
        std::fs::create_dir(&project).unwrap();
        std::fs::write(
            project.join("loopwright.toml"),
            "allow_domains = [\"b.test\"]\n",
        )
        .unwrap();
        let e = env(&[("LOOPWRIGHT_CONFIG", user.to_str().unwrap())]);
        let cfg = load_layers(Some(&project), &e).unwrap();
        assert_eq!(cfg.network, Some(sandbox::NetworkMode::Open));
        // Like every key, the project's list replaces the user's.
        assert_eq!(cfg.allow_domains, Some(vec!["b.test".to_string()]));

        std::fs::write(&user, "network = \"on\"\n").unwrap();
        let msg = format!("{:#}", load_layers(None, &e).unwrap_err());
        assert!(msg.contains("registries"), "{msg}");
    }

    #[test]
    fn watchdog_settings_override_defaults_and_typos_are_errors() {
        let table: toml::Table =
            toml::from_str("no_progress_turns = 7\nsession_seconds = 0\n").unwrap();
        let w = WatchdogSettings::from_table(&table)
            .unwrap()
            .apply(agent::WatchdogConfig::default());
        assert_eq!(w.no_progress_turns, 7);
        assert_eq!(w.max_duration, None);
        assert_eq!(w.cut_off_streak, 2);
        let typo: toml::Table = toml::from_str("no_progres_turns = 7\n").unwrap();
        assert!(WatchdogSettings::from_table(&typo).is_err());
    }

    #[test]
    fn negative_or_garbage_budget_is_refused() {
        assert!(parse_budget(&toml::Value::String("-1".into())).is_err());
        assert!(parse_budget(&toml::Value::String("five".into())).is_err());
        assert!(parse_budget(&toml::Value::Boolean(true)).is_err());
    }
}
