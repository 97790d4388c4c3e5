//! Running a command: `bash -c COMMAND` in the project directory, in its own process group,
//! inside the session's world (or, in fallback mode, on the host), with no new privileges, no
//! capabilities, Landlock and seccomp, a scrubbed environment, resource limits, a timeout that
//! kills the whole group, and capped output with notes for the model appended.
//!
//! Everything the child applies is prepared in the parent (C strings, the BPF programs, the
//! Landlock rules, the namespace descriptors); between fork and exec the child only makes raw
//! system calls, which keeps the `pre_exec` hook async-signal-safe.

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use seccompiler::BpfProgram;
use tokio::io::AsyncReadExt;

use crate::egress::{EgressPolicy, NetworkMode};
use crate::landlock::LandlockRules;
use crate::limits::{ChildLimits, ResourceLimits};
use crate::namespaces::{Confinement, NamespaceMode, World, WorldEnded, WorldSpec};
use crate::output::{CappedBuffer, ExecOutput};
use crate::policy::{PolicyContext, PolicyDenial};
use crate::proxy::{EgressProxy, ProxyEvent, ProxyLimits};
use crate::seccomp::FilterKind;
use crate::view::{ViewPlan, ViewSpec};

/// Whether the kernel confinement is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SandboxMode {
    /// Namespaces (when available) + Landlock + seccomp (the default).
    #[default]
    On,
    /// The explicit opt-out (`--sandbox off`): same environment scrub, timeout and output caps,
    /// no namespaces, Landlock or seccomp.
    Off,
}

/// How a [`Sandbox`] confines the commands it runs.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// The project directory: the working directory, and writable.
    pub project: PathBuf,
    pub mode: SandboxMode,
    /// Whether commands run in namespaces of their session (see [`NamespaceMode`]).
    pub namespaces: NamespaceMode,
    /// Allow sockets other than AF_UNIX (the socket filter used when commands do not run in a
    /// network namespace of their own). In a world without a proxy this keeps the host's
    /// network (no network namespace), as before worlds existed; with `proxy_port` set, egress
    /// goes through the proxy and the world keeps its loopback-only network.
    pub allow_network: bool,
    /// What the egress proxy lets commands reach ([`crate::egress`]).
    pub network: NetworkMode,
    /// The user's `allow_domains` entries for the egress proxy.
    pub allow_domains: Vec<String>,
    /// More paths readable (and executable) by commands.
    pub extra_read: Vec<PathBuf>,
    /// More paths writable by commands.
    pub extra_write: Vec<PathBuf>,
    /// Paths inside the project that commands may read but not write (the harness passes
    /// `.git` and the frozen files; relative to the project or absolute inside it): mounted
    /// read-only in the world's view; missing ones are skipped. Not enforced in fallback mode
    /// (the harness restores the frozen files after every command).
    pub read_only: Vec<PathBuf>,
    /// Memory, process and file-size limits.
    pub limits: ResourceLimits,
    /// The port of the egress proxy inside the world (see [`Sandbox::serve_in_world`]); when
    /// set, commands get `HTTP_PROXY`, `HTTPS_PROXY` and friends pointing at it.
    pub proxy_port: Option<u16>,
    /// The home directory whose toolchains commands see; `None`: `$HOME`.
    pub home: Option<PathBuf>,
    /// More environment variables passed through (secrets are still removed).
    pub env_allow: Vec<String>,
    /// Bytes of each stream kept (head and tail halves).
    pub output_cap_bytes: usize,
}

/// The default output cap per stream.
pub const DEFAULT_OUTPUT_CAP: usize = 64 * 1024;

/// How long output is still read after the command exits while a background process holds
/// the pipes open.
const BACKGROUND_GRACE: Duration = Duration::from_millis(300);

impl SandboxConfig {
    /// Sandbox on, namespaces when available, network off (no sockets, and `network = off`),
    /// default limits and cap, no extras.
    pub fn new(project: impl Into<PathBuf>) -> SandboxConfig {
        SandboxConfig {
            project: project.into(),
            mode: SandboxMode::On,
            namespaces: NamespaceMode::Auto,
            allow_network: false,
            network: NetworkMode::Off,
            allow_domains: Vec::new(),
            extra_read: Vec::new(),
            extra_write: Vec::new(),
            read_only: Vec::new(),
            limits: ResourceLimits::default(),
            proxy_port: None,
            home: None,
            env_allow: Vec::new(),
            output_cap_bytes: DEFAULT_OUTPUT_CAP,
        }
    }
}

/// Why a command could not be run (a command that runs and fails is an `ExecOutput`).
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("this kernel does not support Landlock, so commands cannot be confined; use a Linux 5.13+ kernel with Landlock enabled (lsm=landlock), or pass `--sandbox off` to run without confinement explicitly")]
    LandlockUnavailable,
    #[error("could not set up Landlock: {0}; pass `--sandbox off` to run without confinement explicitly")]
    Landlock(String),
    #[error("could not build the seccomp filter: {0}")]
    Seccomp(String),
    #[error("could not start the sandbox's namespaces: {0}")]
    World(String),
    #[error("could not set up the command's resource limits: {0}")]
    Limits(std::io::Error),
    #[error("the project directory {path} is not usable: {source}")]
    Project {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("could not create the sandbox's private temp directory: {0}; check that $TMPDIR is writable")]
    TempDir(std::io::Error),
    #[error(
        "could not start bash: {0}; check that bash is installed and the confinement is supported"
    )]
    Spawn(std::io::Error),
    #[error("waiting for the command failed: {0}")]
    Wait(std::io::Error),
    #[error(transparent)]
    Denied(#[from] PolicyDenial),
}

/// Called with a listener bound on 127.0.0.1:port inside each new world's network namespace
/// (see [`Sandbox::serve_in_world`]).
pub type ListenerHandler = Arc<dyn Fn(std::net::TcpListener, WorldEnded) + Send + Sync>;

/// What the child applies to itself after entering its world (or on the host).
#[derive(Debug)]
struct Kernel {
    landlock: LandlockRules,
    seccomp: [BpfProgram; 2],
    kept_caps: u64,
}

/// Runs commands confined to one project. Create once per run; it owns a private temp dir
/// (the commands' `/tmp`, or `$TMPDIR` in fallback mode) that is removed when the sandbox is
/// dropped, and per session a world (its own namespaces, see [`Confinement`]) that
/// [`Sandbox::end_session`] or dropping the sandbox ends.
pub struct Sandbox {
    config: SandboxConfig,
    project: PathBuf,
    project_c: CString,
    base: tempfile::TempDir,
    tmp: PathBuf,
    home: Option<PathBuf>,
    confinement: Confinement,
    fallback_reason: Option<String>,
    fallback_noted: AtomicBool,
    kernel: Option<Arc<Kernel>>,
    spec: Mutex<Option<Arc<WorldSpec>>>,
    world: tokio::sync::Mutex<Option<Arc<World>>>,
    listeners: Mutex<Vec<(u16, ListenerHandler)>>,
    /// Connections through the egress proxy, until the harness takes them.
    egress_log: Arc<EgressLog>,
    env: Vec<(OsString, OsString)>,
}

/// The egress proxy's connections, numbered, kept until [`Sandbox::take_proxy_events`] (at
/// most [`EgressLog::KEPT`]; older ones are dropped first).
#[derive(Debug, Default)]
struct EgressLog {
    inner: Mutex<(u64, std::collections::VecDeque<(u64, ProxyEvent)>)>,
}

impl EgressLog {
    const KEPT: usize = 1000;

    fn push(&self, event: ProxyEvent) {
        let mut g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        g.0 += 1;
        let n = g.0;
        if g.1.len() >= Self::KEPT {
            g.1.pop_front();
        }
        g.1.push_back((n, event));
    }

    /// The number of the last connection recorded.
    fn mark(&self) -> u64 {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).0
    }

    /// Refused connections recorded after `mark`, as one line each.
    fn refused_since(&self, mark: u64) -> Vec<String> {
        let g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        g.1.iter()
            .filter(|(n, e)| *n > mark && !e.allowed)
            .map(|(_, e)| format!("{}:{}: {}", e.host, e.port, e.reason))
            .collect()
    }

    fn take(&self) -> Vec<ProxyEvent> {
        let mut g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        g.1.drain(..).map(|(_, e)| e).collect()
    }
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("project", &self.project)
            .field("tmp", &self.tmp)
            .field("confinement", &self.confinement)
            .field("fallback_reason", &self.fallback_reason)
            .finish_non_exhaustive()
    }
}

/// The prefix of a sandbox's temp dir, followed by the pid of the harness that made it.
const TEMP_PREFIX: &str = "loopwright-sandbox-";

/// Removes, in the background, the temp dirs of sandboxes whose harness is gone (killed with
/// SIGKILL, say, so the dir was never dropped): named `loopwright-sandbox-<pid>-*`, owned by
/// this user, `<pid>` not alive, untouched for a minute. Best effort; failures are ignored.
fn sweep_stale_temp_dirs(dir: &Path) -> Option<std::thread::JoinHandle<()>> {
    use std::os::unix::fs::MetadataExt;
    let entries = std::fs::read_dir(dir).ok()?;
    // SAFETY: geteuid has no preconditions.
    let uid = unsafe { libc::geteuid() };
    let stale: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|n| n.strip_prefix(TEMP_PREFIX))
                .and_then(|rest| rest.split_once('-'))
                .and_then(|(pid, _)| pid.parse::<libc::pid_t>().ok())
                .filter(|pid| *pid > 0)
            else {
                return false;
            };
            // symlink_metadata: never follow a link someone planted in the temp dir.
            let Ok(meta) = e.path().symlink_metadata() else {
                return false;
            };
            let idle = meta
                .modified()
                .ok()
                .and_then(|m| m.elapsed().ok())
                .is_some_and(|age| age > Duration::from_secs(60));
            meta.is_dir() && meta.uid() == uid && idle && !process_alive(pid)
        })
        .map(|e| e.path())
        .collect();
    (!stale.is_empty()).then(|| {
        std::thread::spawn(move || {
            for path in stale {
                let _ = std::fs::remove_dir_all(path);
            }
        })
    })
}

fn process_alive(pid: libc::pid_t) -> bool {
    // SAFETY: signal 0 only checks that the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

fn c_path(path: &Path) -> Result<CString, SandboxError> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| SandboxError::Project {
        path: path.to_path_buf(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL byte in path"),
    })
}

impl Sandbox {
    /// Sets up the sandbox. With [`NamespaceMode::Auto`] the first world is created here, so
    /// [`Sandbox::confinement`] knows whether the kernel allowed it.
    pub fn new(config: SandboxConfig) -> Result<Sandbox, SandboxError> {
        let project = config
            .project
            .canonicalize()
            .map_err(|source| SandboxError::Project {
                path: config.project.clone(),
                source,
            })?;
        let project_c = c_path(&project)?;
        let _sweep = sweep_stale_temp_dirs(&std::env::temp_dir());
        let base = tempfile::Builder::new()
            .prefix(&format!("{TEMP_PREFIX}{}-", std::process::id()))
            .tempdir()
            .map_err(SandboxError::TempDir)?;
        let tmp = base.path().join("tmp");
        let staging = base.path().join("root");
        for dir in [&tmp, &staging] {
            std::fs::create_dir(dir).map_err(SandboxError::TempDir)?;
        }
        let parent_env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
        let home = config
            .home
            .clone()
            .or_else(|| {
                parent_env
                    .iter()
                    .find(|(k, _)| k == "HOME")
                    .map(|(_, v)| PathBuf::from(v))
            })
            .and_then(|h| h.canonicalize().ok());
        let mut allowed = crate::env::allowed(parent_env.iter().cloned(), &config.env_allow);
        if let Some(h) = &home {
            allowed.retain(|(k, _)| k != "HOME");
            allowed.push((OsString::from("HOME"), h.clone().into_os_string()));
        }

        let mut sandbox = Sandbox {
            project: project.clone(),
            project_c,
            tmp: tmp.clone(),
            home: home.clone(),
            confinement: Confinement::default(),
            fallback_reason: None,
            fallback_noted: AtomicBool::new(false),
            kernel: None,
            spec: Mutex::new(None),
            world: tokio::sync::Mutex::new(None),
            listeners: Mutex::new(Vec::new()),
            egress_log: Arc::new(EgressLog::default()),
            env: Vec::new(),
            base,
            config,
        };
        if sandbox.config.mode == SandboxMode::Off {
            sandbox.env = crate::env::for_fallback(allowed, &tmp);
            return Ok(sandbox);
        }
        if crate::landlock::abi_version() < 1 {
            return Err(SandboxError::LandlockUnavailable);
        }
        if sandbox.config.namespaces == NamespaceMode::Auto {
            let env =
                crate::env::for_world(allowed.clone(), home.as_deref(), sandbox.config.proxy_port);
            match sandbox.start_first_world(&env, &staging) {
                Ok(network) => {
                    sandbox.confinement = Confinement {
                        namespaces: true,
                        pid_namespace: true,
                        network_namespace: network,
                    };
                    sandbox.env = env;
                    return Ok(sandbox);
                }
                Err(reason) => sandbox.fallback_reason = Some(reason),
            }
        }
        // Fallback: Landlock and seccomp on the host.
        let env = crate::env::for_fallback(allowed, &tmp);
        let mut write = vec![project.clone(), tmp.clone(), PathBuf::from("/dev/null")];
        write.extend(
            sandbox
                .config
                .extra_write
                .iter()
                .filter(|p| p.exists())
                .cloned(),
        );
        let read = fallback_read_paths(&sandbox.config, &parent_env);
        sandbox.kernel = Some(Arc::new(Kernel {
            landlock: LandlockRules::new(&read, &write, true)?,
            seccomp: crate::seccomp::build(FilterKind::Fallback {
                allow_network: sandbox.config.allow_network,
            })?,
            kept_caps: crate::child::FALLBACK_KEPT_CAPS,
        }));
        sandbox.env = env;
        Ok(sandbox)
    }

    /// Builds the world spec and the first world; the reason in words when the kernel refuses.
    fn start_first_world(
        &mut self,
        env: &[(OsString, OsString)],
        staging: &Path,
    ) -> Result<bool, String> {
        let spec = self.world_spec(env, staging, &self.config.read_only.clone())?;
        let world = World::create(spec.clone()).map_err(|e| e.to_string())?;
        let network = world.network();
        let mut write = spec.view.writable().to_vec();
        write.sort();
        let kernel = Kernel {
            landlock: LandlockRules::new(&[PathBuf::from("/")], &write, false)
                .map_err(|e| e.to_string())?,
            seccomp: crate::seccomp::build(FilterKind::World).map_err(|e| e.to_string())?,
            kept_caps: 0,
        };
        self.kernel = Some(Arc::new(kernel));
        *self.spec.lock().unwrap_or_else(PoisonError::into_inner) = Some(spec);
        *self.world.get_mut() = Some(Arc::new(world));
        Ok(network)
    }

    fn world_spec(
        &self,
        env: &[(OsString, OsString)],
        staging: &Path,
        read_only: &[PathBuf],
    ) -> Result<Arc<WorldSpec>, String> {
        let view = ViewPlan::new(&ViewSpec {
            project: &self.project,
            private_tmp: &self.tmp,
            staging,
            home: self.home.as_deref(),
            read_only,
            extra_read: &self.config.extra_read,
            extra_write: &self.config.extra_write,
            env,
        })
        .map_err(|e| e.to_string())?;
        Ok(Arc::new(WorldSpec {
            view,
            network: !(self.config.allow_network && self.config.proxy_port.is_none()),
            limits: self.config.limits,
        }))
    }

    /// The private temp directory (host path; the commands' `/tmp` in a world, their
    /// `$TMPDIR` in fallback mode).
    pub fn temp_dir(&self) -> &Path {
        &self.tmp
    }

    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    /// How commands are confined: whether they run in a world (namespaces) or in fallback mode.
    pub fn confinement(&self) -> Confinement {
        self.confinement
    }

    /// Why namespaces are not used although [`NamespaceMode::Auto`] asked for them (the
    /// kernel refused); `None` when they are used or were not asked for.
    pub fn fallback_reason(&self) -> Option<&str> {
        self.fallback_reason.as_deref()
    }

    /// Paths inside the project mounted read-only from the next world on (the current one, if
    /// any, keeps its view until [`Sandbox::end_session`]).
    pub fn set_read_only(&self, paths: Vec<PathBuf>) -> Result<(), SandboxError> {
        let mut slot = self.spec.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            return Ok(());
        }
        let staging = self.base.path().join("root");
        let spec = self
            .world_spec(&self.env, &staging, &paths)
            .map_err(SandboxError::World)?;
        *slot = Some(spec);
        Ok(())
    }

    /// Registers `handler` to be called with a listener bound on 127.0.0.1:`port` inside every
    /// world's network namespace: now for the current world, and for each new one. The egress
    /// proxy serves on it from the harness; it should stop when the [`WorldEnded`] it gets
    /// resolves. Without a world (fallback mode) the handler is never called.
    pub async fn serve_in_world(&self, port: u16, handler: ListenerHandler) {
        let current = self.world.lock().await.clone();
        if let Some(world) = current.filter(|w| w.alive()) {
            if let Ok(listener) = world.listener(port) {
                handler(listener, world.ended());
            }
        }
        self.listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((port, handler));
    }

    /// Starts the egress proxy in every world (now and for each new one) when commands run in a
    /// network namespace of their own, `network` is not `off` and `proxy_port` is set; the
    /// commands' proxy variables point at it. Its connections are kept for
    /// [`Sandbox::take_proxy_events`], and a command's output ends with a note naming the
    /// connections refused while it ran. Returns whether a proxy serves the commands.
    pub async fn start_egress_proxy(&self) -> Result<bool, SandboxError> {
        let Some(port) = self.config.proxy_port else {
            return Ok(false);
        };
        if !self.confinement.network_namespace || self.config.network == NetworkMode::Off {
            return Ok(false);
        }
        let policy = EgressPolicy::new(self.config.network, &self.config.allow_domains)
            .map_err(|e| SandboxError::World(format!("allow_domains: {e}")))?;
        let log = self.egress_log.clone();
        self.serve_in_world(
            port,
            Arc::new(move |listener, ended| {
                let log = log.clone();
                let started = EgressProxy::start(
                    listener,
                    policy.clone(),
                    ProxyLimits::default(),
                    move |event| log.push(event),
                );
                if let Ok(proxy) = started {
                    tokio::spawn(async move {
                        ended.wait().await;
                        drop(proxy);
                    });
                }
            }),
        )
        .await;
        Ok(true)
    }

    /// The egress proxy's connections since the last call (oldest first).
    pub fn take_proxy_events(&self) -> Vec<ProxyEvent> {
        self.egress_log.take()
    }

    /// A listener on 127.0.0.1:`port` (0: any free port) inside the current world's network
    /// namespace, starting a world if none is running.
    pub async fn world_listener(
        &self,
        port: u16,
    ) -> Result<(std::net::TcpListener, WorldEnded), SandboxError> {
        let world = self.ensure_world().await?.ok_or_else(|| {
            SandboxError::World("commands do not run in namespaces (fallback mode)".into())
        })?;
        let listener = world
            .listener(port)
            .map_err(|e| SandboxError::World(format!("could not listen on port {port}: {e}")))?;
        Ok((listener, world.ended()))
    }

    /// Ends the session's world: every process the agent started (background servers
    /// included) is killed. The next command starts a fresh world.
    pub async fn end_session(&self) {
        let world = self.world.lock().await.take();
        if let Some(world) = world {
            world.kill();
            let _ = tokio::task::spawn_blocking(move || world.wait_gone()).await;
        }
    }

    /// The current world, started if there is none (or it died); `None` in fallback mode.
    async fn ensure_world(&self) -> Result<Option<Arc<World>>, SandboxError> {
        let spec = self
            .spec
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let Some(spec) = spec else {
            return Ok(None);
        };
        let mut slot = self.world.lock().await;
        if let Some(world) = slot.as_ref().filter(|w| w.alive()) {
            return Ok(Some(world.clone()));
        }
        let world = tokio::task::spawn_blocking(move || World::create(spec))
            .await
            .map_err(|e| SandboxError::World(e.to_string()))?
            .map_err(|e| SandboxError::World(e.to_string()))?;
        let world = Arc::new(world);
        let handlers = self
            .listeners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for (port, handler) in handlers {
            if let Ok(listener) = world.listener(port) {
                handler(listener, world.ended());
            }
        }
        *slot = Some(world.clone());
        Ok(Some(world))
    }

    /// The confinement as the command policy sees it: network access, whether process tools
    /// only reach the run's own processes (a pid namespace), and the temp dir as commands name
    /// it (`/tmp` in a world).
    pub fn policy_context(&self) -> PolicyContext {
        PolicyContext {
            allow_network: self.config.allow_network
                || (self.config.network != NetworkMode::Off && self.config.proxy_port.is_some()),
            processes_scoped: self.confinement.pid_namespace,
            temp_dir: Some(self.commands_temp_dir()),
        }
    }

    /// The private temp dir as commands name it: `/tmp` in a world, the host path otherwise.
    pub fn commands_temp_dir(&self) -> PathBuf {
        if self.confinement.namespaces {
            PathBuf::from("/tmp")
        } else {
            self.tmp.clone()
        }
    }

    /// Runs `bash -c command` confined. Does not check the policy (the caller does, with
    /// [`crate::CommandPolicy::check`] and [`Sandbox::policy_context`]). When the timeout passes,
    /// the command's process group is killed. In a world, background processes the command
    /// started keep running until the session ends; in fallback mode they die with the command.
    pub async fn run(&self, command: &str, timeout: Duration) -> Result<ExecOutput, SandboxError> {
        let started = Instant::now();
        let egress_mark = self.egress_log.mark();
        let world = self.ensure_world().await?;
        let limits = &self.config.limits;
        let run_cgroup = world.as_ref().and_then(|w| w.cgroup());
        let cmd_cgroup = run_cgroup
            .map(|c| c.command())
            .transpose()
            .map_err(SandboxError::Limits)?;
        let run_before = run_cgroup.map(|c| c.events());
        let child_limits = ChildLimits::new(limits, cmd_cgroup.as_ref(), world.is_some());
        let entry = world.as_ref().map(|w| w.entry(self.project_c.clone()));

        let mut cmd = tokio::process::Command::new("bash");
        cmd.arg("-c")
            .arg(command)
            .current_dir(&self.project)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let kernel = self.kernel.clone();
        let keep_world = world.clone();
        // SAFETY: the hook only makes raw system calls (and one fork) on data prepared in the
        // parent; it does not allocate or take locks.
        unsafe {
            cmd.pre_exec(move || {
                let _alive = &keep_world;
                confine_child(entry.as_ref(), &child_limits, kernel.as_deref())
            });
        }
        let mut child = cmd.spawn().map_err(SandboxError::Spawn)?;
        let pgid = child.id().map(|p| p as libc::pid_t);
        let cap = self.config.output_cap_bytes;
        let out_buf = Arc::new(Mutex::new(CappedBuffer::new(cap)));
        let err_buf = Arc::new(Mutex::new(CappedBuffer::new(cap)));
        let discard = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        if let Some(s) = child.stdout.take() {
            tasks.push(tokio::spawn(drain(s, out_buf.clone(), discard.clone())));
        }
        if let Some(s) = child.stderr.take() {
            tasks.push(tokio::spawn(drain(s, err_buf.clone(), discard.clone())));
        }

        // If this future is dropped mid-command (the harness was interrupted), the command's
        // whole group goes, not only the process `kill_on_drop` knows.
        let mut guard = GroupGuard(pgid);
        let (status, timed_out) = match tokio::time::timeout(timeout, child.wait()).await {
            Ok(status) => (status.map_err(SandboxError::Wait)?, false),
            Err(_) => {
                kill_group(pgid);
                (child.wait().await.map_err(SandboxError::Wait)?, true)
            }
        };
        guard.0 = None;
        if world.is_none() {
            // No pid namespace to bound them: background processes die with the group.
            kill_group(pgid);
        }
        // The output is complete at EOF. A background job of the command (still in its process
        // group) may hold the pipes open for as long as it runs: then read on while output keeps
        // coming, and stop after a short quiet spell. Without such a job, EOF is only waited for
        // (a loaded machine may take a moment to deliver the last bytes).
        let background = world.is_some() && group_alive(pgid);
        let hard = tokio::time::Instant::now()
            + if background {
                BACKGROUND_GRACE * 10
            } else {
                Duration::from_secs(5)
            };
        let mut held = false;
        let mut seen = output_bytes(&out_buf, &err_buf);
        let mut quiet_until = tokio::time::Instant::now() + BACKGROUND_GRACE;
        for mut task in tasks {
            loop {
                let step = if background {
                    quiet_until.min(hard)
                } else {
                    hard
                };
                if tokio::time::timeout_at(step, &mut task).await.is_ok() {
                    break;
                }
                let now_seen = output_bytes(&out_buf, &err_buf);
                if background && now_seen != seen && tokio::time::Instant::now() < hard {
                    seen = now_seen;
                    quiet_until = tokio::time::Instant::now() + BACKGROUND_GRACE;
                    continue;
                }
                held = true;
                if world.is_none() {
                    // A process that escaped the group could hold the pipe open.
                    task.abort();
                }
                // In a world the task keeps draining (and discarding) until the background
                // process exits or the session ends, so the process never dies of SIGPIPE.
                break;
            }
        }
        discard.store(true, Ordering::Relaxed);
        let (stdout, cut_out) = take_buffer(&out_buf, cap);
        let (mut stderr, cut_err) = take_buffer(&err_buf, cap);

        let mut notes = Vec::new();
        if self.fallback_reason.is_some() && !self.fallback_noted.swap(true, Ordering::Relaxed) {
            notes.push(format!(
                "[sandbox] this machine does not allow the sandbox's namespaces ({}); commands run with Landlock and a socket filter only: {}background processes end with their command",
                self.fallback_reason.as_deref().unwrap_or_default(),
                if self.config.allow_network {
                    ""
                } else {
                    "no network sockets (not even 127.0.0.1), and "
                }
            ));
        }
        let refused = self.egress_log.refused_since(egress_mark);
        if !refused.is_empty() {
            let more = refused.len().saturating_sub(5);
            let mut list = refused.into_iter().take(5).collect::<Vec<_>>().join("; ");
            if more > 0 {
                list.push_str(&format!("; and {more} more"));
            }
            notes.push(format!(
                "[sandbox] network: loopwright's egress proxy refused {list}. Commands reach only the hosts `network` and `allow_domains` in loopwright.toml allow (network = {}); work offline or ask the user to allow the host",
                self.config.network
            ));
        }
        if held && world.is_some() {
            notes.push("[sandbox] a background process started by this command still holds its output open; it keeps running until the session ends, and what it prints from now on is discarded. Start background processes with their output redirected (`server > server.log 2>&1 &`)".to_string());
        }
        let all_output = format!("{stdout}\n{stderr}");
        if self.kernel.is_some() {
            if let Some(note) = self.denial_note(&all_output) {
                notes.push(note);
            }
        }
        let cmd_events = cmd_cgroup.as_ref().and_then(|c| c.events());
        let run_delta = match (run_cgroup, run_before) {
            (Some(c), Some(before)) => {
                let after = c.events();
                Some(crate::limits::Events {
                    oom_kills: after.oom_kills.saturating_sub(before.oom_kills),
                    pids_max: after.pids_max.saturating_sub(before.pids_max),
                })
            }
            _ => None,
        };
        notes.extend(crate::limits::hit_notes(
            limits,
            run_cgroup.is_some(),
            cmd_events,
            run_delta,
            status.signal(),
            &all_output,
        ));
        if let (Some(run), Some(cmd)) = (run_cgroup, cmd_cgroup) {
            run.release(cmd);
        }
        if !notes.is_empty() {
            if !stderr.is_empty() && !stderr.ends_with('\n') {
                stderr.push('\n');
            }
            for note in notes {
                stderr.push_str(&note);
                stderr.push('\n');
            }
        }
        Ok(ExecOutput {
            exit_code: status.code(),
            signal: status.signal(),
            timed_out,
            stdout,
            stderr,
            truncated: cut_out || cut_err,
            duration: started.elapsed(),
        })
    }

    /// A one-line note when the output shows a kernel denial (EPERM, EACCES, EROFS), saying
    /// that the sandbox may have caused it and what it allows.
    fn denial_note(&self, output: &str) -> Option<String> {
        let lower = output.to_ascii_lowercase();
        let read_only = lower.contains("read-only file system") || lower.contains("erofs");
        let denied = lower.contains("operation not permitted")
            || lower.contains("permission denied")
            || lower.contains("eperm")
            || lower.contains("eacces");
        let world = self.confinement.namespaces;
        let read_only = world && read_only;
        if !read_only && !denied {
            return None;
        }
        let mut note = String::from("[sandbox] ");
        if read_only {
            let frozen = if self.config.read_only.is_empty() {
                ""
            } else {
                " (so are .git and the files the harness froze)"
            };
            note.push_str(&format!(
                "\"read-only file system\": in loopwright's sandbox everything outside the project, /tmp and $HOME is read-only{frozen}; write inside the project or /tmp instead"
            ));
            if !denied {
                return Some(note);
            }
            note.push_str(". ");
        }
        let network = if !self.confinement.network_namespace {
            String::new()
        } else if let Some(port) = self.config.proxy_port {
            format!(
                " and the network beyond 127.0.0.1 (except through the proxy at 127.0.0.1:{port})"
            )
        } else {
            " and the network beyond 127.0.0.1".to_string()
        };
        note.push_str(&if world {
            format!("\"permission denied\" / \"operation not permitted\" may come from loopwright's sandbox: it refuses writes outside the project, /tmp and $HOME, changes to files the command does not own, privilege and namespace changes, mounts, ptrace{network}; work within those bounds rather than retrying")
        } else {
            format!("\"permission denied\" / \"operation not permitted\" may come from loopwright's sandbox: it refuses writes outside the project and $TMPDIR, {}new sessions and process groups, privilege and namespace changes, mounts and ptrace; work within those bounds rather than retrying", if self.config.allow_network { "" } else { "network sockets (even to 127.0.0.1), " })
        });
        Some(note)
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(world) = self.world.get_mut().take() {
            world.kill();
        }
    }
}

/// Runs in the child between fork and exec: only raw system calls (and, in a world, the fork
/// that puts the command inside the pid namespace).
fn confine_child(
    entry: Option<&crate::namespaces::Entry>,
    limits: &ChildLimits,
    kernel: Option<&Kernel>,
) -> std::io::Result<()> {
    // SAFETY: system calls on data prepared in the parent.
    unsafe {
        crate::child::cloexec_inherited_fds();
        limits.join()?;
        if let Some(entry) = entry {
            entry.enter()?;
        }
        limits.apply_rlimits()?;
        crate::child::no_new_privs()?;
        if let Some(kernel) = kernel {
            crate::child::drop_capabilities(kernel.kept_caps)?;
            kernel.landlock.restrict_self()?;
            crate::seccomp::install(&kernel.seccomp)?;
        }
    }
    Ok(())
}

fn take_buffer(buf: &Mutex<CappedBuffer>, cap: usize) -> (String, bool) {
    let taken = match buf.lock() {
        Ok(mut g) => std::mem::replace(&mut *g, CappedBuffer::new(cap)),
        Err(poisoned) => std::mem::replace(&mut *poisoned.into_inner(), CappedBuffer::new(cap)),
    };
    taken.finish()
}

async fn drain<R: tokio::io::AsyncRead + Unpin>(
    mut reader: R,
    buf: Arc<Mutex<CappedBuffer>>,
    discard: Arc<AtomicBool>,
) {
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if discard.load(Ordering::Relaxed) {
                    continue;
                }
                if let Ok(mut b) = buf.lock() {
                    b.push(&chunk[..n]);
                }
            }
        }
    }
}

/// Whether any process is left in the group.
fn group_alive(pgid: Option<libc::pid_t>) -> bool {
    // SAFETY: kill(2) with signal 0 only checks.
    pgid.filter(|p| *p > 1)
        .is_some_and(|p| unsafe { libc::kill(-p, 0) } == 0)
}

fn output_bytes(out: &Mutex<CappedBuffer>, err: &Mutex<CappedBuffer>) -> u64 {
    let total = |b: &Mutex<CappedBuffer>| b.lock().map_or(0, |g| g.total());
    total(out) + total(err)
}

/// Kills a command's process group when dropped (before the command finished).
struct GroupGuard(Option<libc::pid_t>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        kill_group(self.0);
    }
}

fn kill_group(pgid: Option<libc::pid_t>) {
    if let Some(pgid) = pgid.filter(|p| *p > 1) {
        // SAFETY: plain kill(2) on the child's process group.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}

/// Directories fallback-mode commands may read and execute from, when they exist.
fn fallback_read_paths(config: &SandboxConfig, env: &[(OsString, OsString)]) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = [
        "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt", "/proc",
        "/sys", "/dev",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    if config.allow_network {
        paths.push(PathBuf::from("/run")); // resolv.conf often points here
    }
    let get = |name: &str| {
        env.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| PathBuf::from(v))
    };
    if let Some(home) = config.home.clone().or_else(|| get("HOME")) {
        // Toolchains, and git's user config (git refuses to run when it exists but is unreadable).
        // Not ~/.npmrc, ~/.git-credentials, ~/.ssh and the like: they hold credentials.
        for dir in [
            ".cargo",
            ".rustup",
            ".pyenv",
            ".npm",
            ".cache",
            ".local",
            "go",
            ".nvm",
            ".bun",
            ".deno",
            ".gitconfig",
            ".config/git",
        ] {
            paths.push(home.join(dir));
        }
    }
    for var in [
        "CARGO_HOME",
        "RUSTUP_HOME",
        "GOPATH",
        "GOROOT",
        "VIRTUAL_ENV",
        "PYENV_ROOT",
        "NVM_DIR",
        "CONDA_PREFIX",
    ] {
        if let Some(p) = get(var) {
            if p.is_absolute() {
                paths.push(p);
            }
        }
    }
    paths.extend(config.extra_read.iter().cloned());
    paths.retain(|p| p.exists());
    paths
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "tests")]
mod sweep_tests {
    use super::*;

    fn aged(path: &Path) {
        let c = CString::new(path.as_os_str().as_bytes()).unwrap();
        let old = libc::timespec {
            tv_sec: 1_000_000_000,
            tv_nsec: 0,
        };
        // SAFETY: a valid path and two valid timespecs.
        assert_eq!(
            unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), [old, old].as_ptr(), 0) },
            0
        );
    }

    #[test]
    fn only_idle_dirs_of_dead_harnesses_are_swept() {
        let tmp = tempfile::tempdir().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let mk = |name: &str, old: bool| {
            let p = tmp.path().join(name);
            std::fs::create_dir_all(p.join("tmp/deep")).unwrap();
            std::fs::write(p.join("tmp/deep/file"), "x").unwrap();
            if old {
                aged(&p);
            }
            p
        };
        let gone = mk(&format!("{TEMP_PREFIX}{dead}-abc"), true);
        let ours = mk(&format!("{TEMP_PREFIX}{}-abc", std::process::id()), true);
        let young = mk(&format!("{TEMP_PREFIX}{dead}-new"), false);
        let legacy = mk(&format!("{TEMP_PREFIX}Xy12ab"), true);
        let other = mk("something-else-1-2", true);
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("keep"), "x").unwrap();
        let link = tmp.path().join(format!("{TEMP_PREFIX}{dead}-link"));
        std::os::unix::fs::symlink(outside.path(), &link).unwrap();
        if let Some(h) = sweep_stale_temp_dirs(tmp.path()) {
            h.join().unwrap();
        }
        assert!(!gone.exists());
        for kept in [&ours, &young, &legacy, &other] {
            assert!(kept.join("tmp/deep/file").exists(), "{}", kept.display());
        }
        assert!(outside.path().join("keep").exists());
    }
}
