//! [`Toolbox`]: the six tools, each a [`Tool`], with what they share (the project, the
//! sandbox, the command policy, the frozen files), and their configuration.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use sandbox::untrusted::UntrustedDir;
use sandbox::{
    CommandPolicy, NetworkMode, PolicyConfig, PolicyContext, ProjectRoot, ResourceLimits, Sandbox,
    SandboxConfig, SandboxMode,
};
use serde_json::Value;

use crate::bash::Bash;
use crate::error::ToolError;
use crate::guarded::{FrozenFiles, FrozenSlot, SessionGuard};
use crate::list::ListFiles;
use crate::outcome::ToolOutcome;
use crate::project_files::ProjectFiles;
use crate::read::ReadFile;
use crate::registry::{Tool, ToolRegistry};
use crate::search::Grep;
use crate::write::{EditFile, WriteFile};

/// Default for [`ToolboxConfig::default_timeout`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
/// Default for [`ToolboxConfig::max_timeout`].
pub const MAX_TIMEOUT: Duration = Duration::from_secs(600);

/// How to build a [`Toolbox`].
#[derive(Debug, Clone)]
pub struct ToolboxConfig {
    /// The project directory (must exist).
    pub project: PathBuf,
    /// The `[policy]` allow/deny lists for `bash` commands.
    pub policy: PolicyConfig,
    pub sandbox_mode: SandboxMode,
    /// Sockets other than Unix ones (the socket filter when commands have no network
    /// namespace of their own).
    pub allow_network: bool,
    /// What the egress proxy lets commands reach.
    pub network: NetworkMode,
    /// The user's `allow_domains` entries for the egress proxy.
    pub allow_domains: Vec<String>,
    /// Extra paths `bash` commands may read / write besides the project.
    pub extra_read: Vec<PathBuf>,
    pub extra_write: Vec<PathBuf>,
    /// Environment variables passed through to commands (the rest is scrubbed).
    pub env_allow: Vec<String>,
    /// Memory, process and file-size limits of commands.
    pub limits: ResourceLimits,
    /// Timeout of a `bash` command that gives no `timeout_secs`.
    pub default_timeout: Duration,
    /// Upper bound on `timeout_secs`.
    pub max_timeout: Duration,
    /// Bytes kept of each of a command's stdout and stderr.
    pub output_cap_bytes: usize,
    /// Paths (relative to the project, or absolute inside it) the file tools may not write,
    /// such as the harness's `feature_list.json` ([`crate::GuardedKind::protected`]). `.git` is
    /// always protected.
    pub protected: Vec<PathBuf>,
    /// Paths inside the project (relative, or absolute inside it) that neither the file tools
    /// nor commands may write, such as the user's prompt templates; `.git` and `.loopwright`
    /// always are.
    pub read_only: Vec<PathBuf>,
}

impl ToolboxConfig {
    /// The defaults: sandbox on, no network, no extra paths, the default policy, 120 s
    /// default and 600 s maximum timeout, the sandbox's default output cap.
    pub fn new(project: impl Into<PathBuf>) -> ToolboxConfig {
        let project = project.into();
        let sandbox_defaults = SandboxConfig::new(project.clone());
        ToolboxConfig {
            project,
            policy: PolicyConfig::default(),
            sandbox_mode: SandboxMode::On,
            allow_network: false,
            network: sandbox_defaults.network,
            allow_domains: Vec::new(),
            extra_read: Vec::new(),
            extra_write: Vec::new(),
            env_allow: Vec::new(),
            limits: sandbox_defaults.limits,
            default_timeout: DEFAULT_TIMEOUT,
            max_timeout: MAX_TIMEOUT,
            output_cap_bytes: sandbox_defaults.output_cap_bytes,
            protected: Vec::new(),
            read_only: Vec::new(),
        }
    }
}

/// The agent's tools for one project. `Send + Sync`; calls may run concurrently.
pub struct Toolbox {
    root: Arc<ProjectRoot>,
    policy: Arc<CommandPolicy>,
    /// The confinement as the policy sees it (network, process scoping, temp dir).
    policy_context: PolicyContext,
    sandbox: Arc<Sandbox>,
    allow_network: bool,
    /// What commands see read-only besides the frozen files (`.git`, `.loopwright`, the
    /// configured paths), absolute.
    read_only: Vec<PathBuf>,
    frozen: FrozenSlot,
    /// `bash`, `read_file`, `write_file`, `edit_file`, `list_files`, `grep`: the order the
    /// model sees them in.
    tools: Vec<Box<dyn Tool>>,
}

impl std::fmt::Debug for Toolbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Toolbox")
            .field("project", &self.root.path())
            .field("frozen", &self.frozen.get().len())
            .finish_non_exhaustive()
    }
}

impl Toolbox {
    pub fn new(config: ToolboxConfig) -> Result<Toolbox, ToolError> {
        let mut root = ProjectRoot::new(&config.project).map_err(|e| ToolError::Project {
            path: config.project.clone(),
            message: e.to_string(),
        })?;
        for path in config.protected.iter().chain(&config.read_only) {
            root.protect(path);
        }
        let files = UntrustedDir::open(root.path()).map_err(|e| ToolError::Project {
            path: config.project.clone(),
            message: e.to_string(),
        })?;
        let policy = CommandPolicy::new(&config.policy);
        let read_only: Vec<PathBuf> = [Path::new(".git"), Path::new(".loopwright")]
            .into_iter()
            .chain(config.read_only.iter().map(PathBuf::as_path))
            .map(|p| root.path().join(p))
            .collect();
        let sandbox = Sandbox::new(SandboxConfig {
            project: root.path().to_path_buf(),
            mode: config.sandbox_mode,
            allow_network: config.allow_network,
            network: config.network,
            allow_domains: config.allow_domains.clone(),
            extra_read: config.extra_read.clone(),
            extra_write: config.extra_write.clone(),
            env_allow: config.env_allow.clone(),
            limits: config.limits,
            output_cap_bytes: config.output_cap_bytes,
            // The harness's history, its state pointer and the configured paths; the frozen
            // files join them from the next session on ([`Toolbox::set_frozen`]), and are
            // restored after every command meanwhile.
            read_only: read_only.clone(),
            // In a world, the egress proxy listens there (started by the caller with
            // `Sandbox::start_egress_proxy`); without one the port is unused.
            proxy_port: (config.network != NetworkMode::Off).then_some(sandbox::PROXY_PORT),
            ..SandboxConfig::new(root.path())
        })
        .map_err(|e| ToolError::Sandbox(e.to_string()))?;
        let max_timeout = config.max_timeout.max(Duration::from_secs(1));
        // Process tools are scoped to the run when commands run in its pid namespace; the temp
        // dir is named as commands see it (`/tmp` in the run's world).
        let policy_context = sandbox.policy_context();
        let root = Arc::new(root);
        let policy = Arc::new(policy);
        let sandbox = Arc::new(sandbox);
        let frozen = FrozenSlot::default();
        let project = ProjectFiles::new(Arc::clone(&root), files);
        let tools: Vec<Box<dyn Tool>> = vec![
            Box::new(Bash {
                root: Arc::clone(&root),
                policy: Arc::clone(&policy),
                policy_context: policy_context.clone(),
                sandbox: Arc::clone(&sandbox),
                default_timeout: config
                    .default_timeout
                    .clamp(Duration::from_secs(1), max_timeout),
                max_timeout,
                frozen: frozen.clone(),
            }),
            Box::new(ReadFile(project.clone())),
            Box::new(WriteFile {
                project: project.clone(),
                frozen: frozen.clone(),
            }),
            Box::new(EditFile {
                project: project.clone(),
                frozen: frozen.clone(),
            }),
            Box::new(ListFiles(project.clone())),
            Box::new(Grep(project)),
        ];
        Ok(Toolbox {
            root,
            policy,
            policy_context,
            sandbox,
            allow_network: config.allow_network,
            read_only,
            frozen,
            tools,
        })
    }

    /// The project the tools work in.
    pub fn project(&self) -> &ProjectRoot {
        &self.root
    }

    /// The confined runner `bash` uses; the harness runs the feature checks through it too, so
    /// they are confined like the agent's commands.
    pub fn sandbox(&self) -> &Sandbox {
        &self.sandbox
    }

    /// The command policy `bash` applies (the harness also checks planned feature checks
    /// against it).
    pub fn policy(&self) -> &CommandPolicy {
        &self.policy
    }

    /// The confinement as the policy sees it; planned feature checks are checked against the
    /// policy with it, as `bash` commands are.
    pub fn policy_context(&self) -> &PolicyContext {
        &self.policy_context
    }

    /// Whether commands may use the network.
    pub fn allow_network(&self) -> bool {
        self.allow_network
    }

    /// The six tools, in the order the model sees them.
    pub fn tools(&self) -> impl Iterator<Item = &dyn Tool> {
        self.tools.iter().map(|t| &**t)
    }

    /// A registry of the six tools, for a session to add its own to.
    pub fn registry(&self) -> ToolRegistry<'_> {
        let mut registry = ToolRegistry::new();
        for tool in self.tools() {
            registry.register(tool);
        }
        registry
    }

    /// The six tools with descriptions and JSON schemas, for the model request.
    pub fn specs(&self) -> Vec<llm::ToolSpec> {
        self.tools().map(Tool::spec).collect()
    }

    /// Freezes files from now on (replacing any earlier set): `write_file`/`edit_file` refuse
    /// them and every `bash` call ends by restoring them if it changed them. The snapshot must
    /// be of this toolbox's project.
    pub fn set_frozen(&self, frozen: FrozenFiles) -> Result<(), ToolError> {
        if !frozen.is_empty() && frozen.root() != self.root.path() {
            return Err(ToolError::Frozen {
                path: frozen.root().to_path_buf(),
                message: format!(
                    "the snapshot is of another project than {}",
                    self.root.path().display()
                ),
            });
        }
        // Read-only in the commands' view from the next session (world) on.
        let mut read_only = self.read_only.clone();
        read_only.extend(frozen.paths().map(|p| self.root.path().join(p)));
        self.sandbox
            .set_read_only(read_only)
            .map_err(|e| ToolError::Sandbox(e.to_string()))?;
        self.frozen.set(frozen);
        Ok(())
    }

    /// Starts guarding a session: snapshots the project's `loopwright.toml` (recorded in
    /// `state_dir` until the session ends); [`SessionGuard::restore`] puts back whatever guarded
    /// file the session changed.
    pub fn guard_session(&self, state_dir: &Path) -> Result<SessionGuard, ToolError> {
        SessionGuard::start(self.frozen.clone(), self.root.path(), state_dir)
    }

    /// The current frozen-file snapshot (empty until [`Toolbox::set_frozen`]).
    pub fn frozen(&self) -> Arc<FrozenFiles> {
        self.frozen.get()
    }

    /// Runs one tool call. Never panics and never fails: unknown tools, bad arguments,
    /// refusals and I/O errors come back as `is_error: true` with an actionable message.
    pub async fn call(&self, name: &str, input: &Value) -> ToolOutcome {
        self.registry().call(name, input).await
    }
}
