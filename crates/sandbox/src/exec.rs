//! Confined execution: `bash -c COMMAND` in the project directory, in its own process group,
//! with no new privileges, Landlock (writes only to the project and a private temp dir), seccomp
//! (no network sockets unless allowed, no ptrace/mount/namespaces/module loading/bpf), a scrubbed
//! environment, a timeout that kills the whole group, and capped output.
//!
//! Everything the child applies is built in the parent (the Landlock ruleset fd, the BPF
//! programs); between fork and exec the child only makes raw system calls, which keeps the
//! `pre_exec` hook async-signal-safe.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use landlock::{
    path_beneath_rules, Access as _, AccessFs, CompatLevel, Compatible, Ruleset, RulesetAttr,
    RulesetCreatedAttr, Scope, ABI,
};
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};
use tokio::io::AsyncReadExt;

use crate::egress::NetworkMode;
use crate::output::{CappedBuffer, ExecOutput};
use crate::path::ProjectRoot;
use crate::policy::{CommandPolicy, PolicyContext, PolicyDenial};

/// Whether the kernel confinement is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SandboxMode {
    /// Landlock + seccomp (the default).
    #[default]
    On,
    /// The explicit opt-out (`--sandbox off`): same environment scrub, timeout and output caps,
    /// no Landlock or seccomp.
    Off,
}

/// How a [`Sandbox`] confines the commands it runs.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// The project directory: the working directory, and writable.
    pub project: PathBuf,
    pub mode: SandboxMode,
    /// Allow sockets other than AF_UNIX (the socket filter used when commands do not run in a
    /// network namespace of their own).
    pub allow_network: bool,
    /// What the egress proxy lets commands reach ([`crate::egress`]).
    pub network: NetworkMode,
    /// The user's `allow_domains` entries for the egress proxy.
    pub allow_domains: Vec<String>,
    /// More paths readable (and executable) by commands.
    pub extra_read: Vec<PathBuf>,
    /// More paths writable by commands.
    pub extra_write: Vec<PathBuf>,
    /// More environment variables passed through (secrets are still removed).
    pub env_allow: Vec<String>,
    /// Bytes of each stream kept (head and tail halves).
    pub output_cap_bytes: usize,
    /// Paths inside the project that commands may read but not write (the harness passes
    /// `.git` and the frozen files): mounted read-only in the commands' view. Not enforced yet
    /// by this runner (the harness restores them after every command meanwhile).
    pub read_only: Vec<PathBuf>,
}

/// The default output cap per stream.
pub const DEFAULT_OUTPUT_CAP: usize = 64 * 1024;

impl SandboxConfig {
    /// Sandbox on, network off (no sockets, and `network = off`), default cap, no extras.
    pub fn new(project: impl Into<PathBuf>) -> SandboxConfig {
        SandboxConfig {
            project: project.into(),
            mode: SandboxMode::On,
            allow_network: false,
            network: NetworkMode::Off,
            allow_domains: Vec::new(),
            extra_read: Vec::new(),
            extra_write: Vec::new(),
            env_allow: Vec::new(),
            output_cap_bytes: DEFAULT_OUTPUT_CAP,
            read_only: Vec::new(),
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

/// Runs commands confined to one project. Create once per run; it owns a private temp dir
/// (exported as `TMPDIR`) that is removed when the sandbox is dropped.
#[derive(Debug)]
pub struct Sandbox {
    config: SandboxConfig,
    project: PathBuf,
    tmp: tempfile::TempDir,
    landlock: Option<Arc<OwnedFd>>,
    seccomp: Option<Arc<[BpfProgram; 2]>>,
    env: Vec<(OsString, OsString)>,
}

/// `landlock_create_ruleset` with `LANDLOCK_CREATE_RULESET_VERSION`: the ABI version, or < 1.
fn landlock_abi_version() -> i64 {
    // SAFETY: a null attribute pointer with size 0 and the VERSION flag only queries.
    unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32, /* LANDLOCK_CREATE_RULESET_VERSION */
        )
    }
}

impl Sandbox {
    pub fn new(config: SandboxConfig) -> Result<Sandbox, SandboxError> {
        let project = config
            .project
            .canonicalize()
            .map_err(|source| SandboxError::Project {
                path: config.project.clone(),
                source,
            })?;
        let tmp = tempfile::Builder::new()
            .prefix("loopwright-sandbox-")
            .tempdir()
            .map_err(SandboxError::TempDir)?;
        let env = scrubbed_env(std::env::vars_os(), &config.env_allow, tmp.path());
        let (landlock, seccomp) = match config.mode {
            SandboxMode::Off => (None, None),
            SandboxMode::On => {
                if landlock_abi_version() < 1 {
                    return Err(SandboxError::LandlockUnavailable);
                }
                let fd = build_landlock(&config, &project, tmp.path())?;
                let programs = build_seccomp(config.allow_network)?;
                (Some(Arc::new(fd)), Some(Arc::new(programs)))
            }
        };
        Ok(Sandbox {
            config,
            project,
            tmp,
            landlock,
            seccomp,
            env,
        })
    }

    /// The private temp directory (the commands' `TMPDIR`).
    pub fn temp_dir(&self) -> &Path {
        self.tmp.path()
    }

    pub fn config(&self) -> &SandboxConfig {
        &self.config
    }

    /// Checks `command` against `policy`, then runs it.
    pub async fn check_and_run(
        &self,
        policy: &CommandPolicy,
        project: &ProjectRoot,
        command: &str,
        timeout: Duration,
    ) -> Result<ExecOutput, SandboxError> {
        policy.check(
            command,
            project,
            &PolicyContext::new(self.config.allow_network),
        )?;
        self.run(command, timeout).await
    }

    /// Runs `bash -c command` confined. Does not check the policy (see
    /// [`Sandbox::check_and_run`]). When the timeout passes, the whole process group is killed.
    pub async fn run(&self, command: &str, timeout: Duration) -> Result<ExecOutput, SandboxError> {
        let started = Instant::now();
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
        let landlock_fd = self.landlock.clone();
        let seccomp = self.seccomp.clone();
        // SAFETY: the hook only makes raw system calls on data prepared in the parent; it does
        // not allocate or take locks.
        unsafe {
            cmd.pre_exec(move || confine_child(landlock_fd.as_deref(), seccomp.as_deref()));
        }
        let mut child = cmd.spawn().map_err(SandboxError::Spawn)?;
        let pgid = child.id().map(|p| p as libc::pid_t);
        let cap = self.config.output_cap_bytes;
        let out_buf = Arc::new(Mutex::new(CappedBuffer::new(cap)));
        let err_buf = Arc::new(Mutex::new(CappedBuffer::new(cap)));
        let out_task = child
            .stdout
            .take()
            .map(|s| tokio::spawn(drain(s, out_buf.clone())));
        let err_task = child
            .stderr
            .take()
            .map(|s| tokio::spawn(drain(s, err_buf.clone())));

        let (status, timed_out) = match tokio::time::timeout(timeout, child.wait()).await {
            Ok(status) => (status.map_err(SandboxError::Wait)?, false),
            Err(_) => {
                kill_group(pgid);
                (child.wait().await.map_err(SandboxError::Wait)?, true)
            }
        };
        // Background processes left behind (`sleep 1000 &`) die with the group.
        kill_group(pgid);
        for task in [out_task, err_task].into_iter().flatten() {
            // A process that escaped the group could hold the pipe open; don't wait forever.
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
        let (stdout, cut_out) = take_buffer(&out_buf, cap);
        let (stderr, cut_err) = take_buffer(&err_buf, cap);
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
}

fn take_buffer(buf: &Mutex<CappedBuffer>, cap: usize) -> (String, bool) {
    let taken = match buf.lock() {
        Ok(mut g) => std::mem::replace(&mut *g, CappedBuffer::new(cap)),
        Err(poisoned) => std::mem::replace(&mut *poisoned.into_inner(), CappedBuffer::new(cap)),
    };
    taken.finish()
}

async fn drain<R: tokio::io::AsyncRead + Unpin>(mut reader: R, buf: Arc<Mutex<CappedBuffer>>) {
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if let Ok(mut b) = buf.lock() {
                    b.push(&chunk[..n]);
                }
            }
        }
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

/// Capabilities a command keeps when the harness has them (running as root): the ones that
/// decide file access (`CAP_CHOWN`, `CAP_DAC_OVERRIDE`, `CAP_DAC_READ_SEARCH`, `CAP_FOWNER`,
/// `CAP_FSETID`), so a root harness still works in a project owned by another user; Landlock
/// governs where they apply. Everything else (`CAP_SYS_ADMIN`, `CAP_SYS_PTRACE`,
/// `CAP_SYS_RESOURCE`, `CAP_SYS_NICE`, `CAP_SYS_TIME`, `CAP_KILL`, `CAP_NET_*`, `CAP_SETUID`, ...)
/// is dropped from every set, the bounding set included, so no program the command runs gets
/// it back. Without them the kernel's own capability check keeps a command from reading the
/// memory or environment of, or changing the limits and scheduling of, any process holding
/// more capabilities than it does, such as a root harness.
const KEPT_CAPS: u64 = (1 << 0) | (1 << 1) | (1 << 2) | (1 << 3) | (1 << 4);

/// `_LINUX_CAPABILITY_VERSION_3`: two 32-bit words per set.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Drops every capability but [`KEPT_CAPS`] (raw system calls only; runs after fork).
///
/// # Safety
/// Only makes system calls on stack data.
unsafe fn drop_capabilities() -> std::io::Result<()> {
    // The bounding set: needs CAP_SETPCAP, which only a privileged harness has; without it
    // there is nothing to drop.
    for cap in 0..64u64 {
        if KEPT_CAPS & (1 << cap) == 0 {
            libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0);
        }
    }
    libc::prctl(
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_CLEAR_ALL,
        0,
        0,
        0,
    );
    let mut header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    if libc::syscall(
        libc::SYS_capget,
        &mut header as *mut CapHeader,
        data.as_mut_ptr(),
    ) != 0
    {
        return Err(std::io::Error::last_os_error());
    }
    for (word, set) in data.iter_mut().enumerate() {
        let keep = (KEPT_CAPS >> (32 * word)) as u32;
        set.effective &= keep;
        set.permitted &= keep;
        set.inheritable &= keep;
    }
    if libc::syscall(
        libc::SYS_capset,
        &mut header as *mut CapHeader,
        data.as_ptr(),
    ) != 0
    {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Marks every descriptor above stderr close-on-exec, so nothing the harness holds or inherited
/// without `O_CLOEXEC` (a file opened outside the project, a socket) reaches the command; Landlock
/// only checks at open time, so such a descriptor would be a way around it.
///
/// # Safety
/// Only makes system calls.
unsafe fn cloexec_inherited_fds() {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    if libc::syscall(
        libc::SYS_close_range,
        3 as libc::c_uint,
        libc::c_uint::MAX,
        CLOSE_RANGE_CLOEXEC,
    ) == 0
    {
        return;
    }
    // Kernels before 5.11: one fcntl per possible descriptor.
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    let max = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
        limit.rlim_cur.min(1 << 20) as libc::c_int
    } else {
        1024
    };
    for fd in 3..max {
        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
    }
}

/// Runs in the child between fork and exec: only raw system calls.
fn confine_child(
    landlock: Option<&OwnedFd>,
    seccomp: Option<&[BpfProgram; 2]>,
) -> std::io::Result<()> {
    // SAFETY: prctl/syscall with plain integer arguments and pointers to live data.
    unsafe {
        cloexec_inherited_fds();
        if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if landlock.is_some() {
            drop_capabilities()?;
        }
        if let Some(fd) = landlock {
            if libc::syscall(libc::SYS_landlock_restrict_self, fd.as_raw_fd(), 0u32) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        if let Some(programs) = seccomp {
            for program in programs.iter() {
                let fprog = libc::sock_fprog {
                    len: program.len() as libc::c_ushort,
                    filter: program.as_ptr() as *mut libc::sock_filter,
                };
                if libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER,
                    &fprog as *const libc::sock_fprog,
                ) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
            }
        }
    }
    Ok(())
}

/// Directories commands may read and execute from, when they exist.
fn read_paths(config: &SandboxConfig, env: &[(OsString, OsString)]) -> Vec<PathBuf> {
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
    if let Some(home) = get("HOME") {
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

fn build_landlock(
    config: &SandboxConfig,
    project: &Path,
    tmp: &Path,
) -> Result<OwnedFd, SandboxError> {
    let err = |e: &dyn std::fmt::Display| SandboxError::Landlock(e.to_string());
    // The newest ABI this crate knows; older kernels get the subset they support.
    let abi = ABI::V6;
    let env: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    let read = read_paths(config, &env);
    let mut write: Vec<PathBuf> = vec![
        project.to_path_buf(),
        tmp.to_path_buf(),
        PathBuf::from("/dev/null"),
    ];
    write.extend(config.extra_write.iter().filter(|p| p.exists()).cloned());
    let created = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(abi))
        .map_err(|e| err(&e))?
        .scope(Scope::from_all(abi))
        .map_err(|e| err(&e))?
        .create()
        .map_err(|e| err(&e))?
        .add_rules(path_beneath_rules(&read, AccessFs::from_read(abi)))
        .map_err(|e| err(&e))?
        .add_rules(path_beneath_rules(&write, AccessFs::from_all(abi)))
        .map_err(|e| err(&e))?;
    let fd: Option<OwnedFd> = created.into();
    fd.ok_or(SandboxError::LandlockUnavailable)
}

/// Two filters: one answering EPERM (network sockets, ptrace, mounts, namespaces, module and
/// kexec loading, bpf, process-group escapes), one answering ENOSYS for `clone3` (whose flags
/// seccomp cannot inspect; libc then falls back to `clone`, whose flags are checked).
fn build_seccomp(allow_network: bool) -> Result<[BpfProgram; 2], SandboxError> {
    let err = |e: &dyn std::fmt::Display| SandboxError::Seccomp(e.to_string());
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|e| err(&e))?;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    let always: &[libc::c_long] = &[
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_chroot,
        libc::SYS_unshare,
        libc::SYS_setns,
        libc::SYS_kexec_load,
        libc::SYS_kexec_file_load,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        libc::SYS_userfaultfd,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_open_by_handle_at,
        libc::SYS_name_to_handle_at,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_reboot,
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
        libc::SYS_fsopen,
        libc::SYS_fsmount,
        libc::SYS_move_mount,
        libc::SYS_open_tree,
        libc::SYS_setsid,
        libc::SYS_setpgid,
    ];
    for sys in always {
        rules.insert(*sys, Vec::new());
    }
    let namespace_flags = [
        libc::CLONE_NEWUSER,
        libc::CLONE_NEWNS,
        libc::CLONE_NEWNET,
        libc::CLONE_NEWPID,
        libc::CLONE_NEWIPC,
        libc::CLONE_NEWUTS,
        libc::CLONE_NEWCGROUP,
    ];
    let mut clone_rules = Vec::new();
    for flag in namespace_flags {
        let flag = flag as u64;
        let cond = SeccompCondition::new(
            0,
            SeccompCmpArgLen::Qword,
            SeccompCmpOp::MaskedEq(flag),
            flag,
        )
        .map_err(|e| err(&e))?;
        clone_rules.push(SeccompRule::new(vec![cond]).map_err(|e| err(&e))?);
    }
    rules.insert(libc::SYS_clone, clone_rules);
    // Other processes' limits and scheduling: a command may change its own (pid/who 0), never
    // another process's, since processes of the same user (the harness, the shell that
    // started it) would otherwise be open to `prlimit --pid`, `renice`, `taskset -p`,
    // `ionice -p`, `chrt -p`.
    for (sys, arg) in [
        (libc::SYS_prlimit64, 0u8),
        (libc::SYS_setpriority, 1),
        (libc::SYS_sched_setaffinity, 0),
        (libc::SYS_sched_setscheduler, 0),
        (libc::SYS_sched_setparam, 0),
        (libc::SYS_sched_setattr, 0),
        (libc::SYS_ioprio_set, 1),
    ] {
        let other = SeccompCondition::new(arg, SeccompCmpArgLen::Dword, SeccompCmpOp::Ne, 0)
            .map_err(|e| err(&e))?;
        rules.insert(
            sys,
            vec![SeccompRule::new(vec![other]).map_err(|e| err(&e))?],
        );
    }
    if !allow_network {
        let not_unix = SeccompCondition::new(
            0,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::Ne,
            libc::AF_UNIX as u64,
        )
        .map_err(|e| err(&e))?;
        rules.insert(
            libc::SYS_socket,
            vec![SeccompRule::new(vec![not_unix]).map_err(|e| err(&e))?],
        );
    }
    let main = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(|e| err(&e))?;
    let mut clone3 = BTreeMap::new();
    clone3.insert(libc::SYS_clone3, Vec::new());
    let clone3 = SeccompFilter::new(
        clone3,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )
    .map_err(|e| err(&e))?;
    let main: BpfProgram = main
        .try_into()
        .map_err(|e: seccompiler::BackendError| err(&e))?;
    let clone3: BpfProgram = clone3
        .try_into()
        .map_err(|e: seccompiler::BackendError| err(&e))?;
    Ok([main, clone3])
}

/// Variables passed to commands when the parent has them.
const ENV_ALLOW: &[&str] = &[
    "PATH",
    "HOME",
    "LANG",
    "LANGUAGE",
    "TERM",
    "USER",
    "LOGNAME",
    "SHELL",
    "TZ",
    "RUSTUP_HOME",
    "CARGO_HOME",
    "RUSTUP_TOOLCHAIN",
    "GOPATH",
    "GOROOT",
    "GOFLAGS",
    "GOTOOLCHAIN",
    "VIRTUAL_ENV",
    "CONDA_PREFIX",
    "PYENV_ROOT",
    "PYENV_VERSION",
    "NODE_PATH",
    "NVM_DIR",
    "NODE_ENV",
    "CI",
    "NO_COLOR",
    "FORCE_COLOR",
    "CC",
    "CXX",
    "JAVA_HOME",
    "COLUMNS",
    "LINES",
];

/// Whether a variable name looks like it holds a secret; such variables never reach commands.
pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    ["_KEY", "_TOKEN", "_SECRET", "_PASSWORD"]
        .iter()
        .any(|s| upper.ends_with(s))
        || upper.contains("API_KEY")
        || upper.contains("SECRET")
        || upper.contains("PASSWORD")
        || upper.contains("CREDENTIAL")
}

fn scrubbed_env(
    parent: impl Iterator<Item = (OsString, OsString)>,
    extra: &[String],
    tmp: &Path,
) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = parent
        .filter(|(k, _)| {
            let Some(name) = k.to_str() else { return false };
            let listed = ENV_ALLOW.contains(&name)
                || name.starts_with("LC_")
                || name.starts_with("PYTHON")
                || extra.iter().any(|e| e == name);
            listed && !is_secret_name(name)
        })
        .collect();
    let tmp = tmp.as_os_str().to_os_string();
    let mut set = |k: &str, v: OsString| {
        env.retain(|(name, _)| name != k);
        env.push((OsString::from(k), v));
    };
    for k in ["TMPDIR", "TMP", "TEMP"] {
        set(k, tmp.clone());
    }
    // setsid is refused (it would let a process leave the group the timeout kills), so git
    // must not daemonize its automatic gc/maintenance.
    for (k, v) in [
        ("GIT_CONFIG_COUNT", "2"),
        ("GIT_CONFIG_KEY_0", "gc.autoDetach"),
        ("GIT_CONFIG_VALUE_0", "false"),
        ("GIT_CONFIG_KEY_1", "maintenance.autoDetach"),
        ("GIT_CONFIG_VALUE_1", "false"),
    ] {
        set(k, OsString::from(v));
    }
    // Tool caches that must be writable go to the private temp dir.
    let mut sub = |k: &str, dir: &str| {
        let mut p = PathBuf::from(&tmp);
        p.push(dir);
        set(k, p.into_os_string());
    };
    sub("GOCACHE", "go-build");
    sub("npm_config_cache", "npm-cache");
    sub("XDG_CACHE_HOME", "cache");
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_scrubbed_even_when_allowed() {
        let parent = vec![
            (OsString::from("PATH"), OsString::from("/usr/bin")),
            (OsString::from("ANTHROPIC_API_KEY"), OsString::from("sk")),
            (OsString::from("GITHUB_TOKEN"), OsString::from("t")),
            (OsString::from("MY_SECRET"), OsString::from("s")),
            (OsString::from("RANDOM_VAR"), OsString::from("r")),
            (OsString::from("DB_PASSWORD"), OsString::from("p")),
        ];
        let extra = vec![
            "GITHUB_TOKEN".to_string(),
            "MY_SECRET".to_string(),
            "DB_PASSWORD".to_string(),
        ];
        let env = scrubbed_env(parent.into_iter(), &extra, Path::new("/tmp/x"));
        let names: Vec<String> = env
            .iter()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        assert!(names.contains(&"PATH".to_string()));
        for bad in [
            "ANTHROPIC_API_KEY",
            "GITHUB_TOKEN",
            "MY_SECRET",
            "RANDOM_VAR",
            "DB_PASSWORD",
        ] {
            assert!(!names.contains(&bad.to_string()), "{bad} leaked");
        }
        assert!(env.iter().any(|(k, v)| k == "TMPDIR" && v == "/tmp/x"));
    }
}
