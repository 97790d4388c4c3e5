//! Resource limits: memory and process count per command and per run, file size per file.
//!
//! Where a cgroup hierarchy is writable the limits are cgroup limits: a cgroup per world (the
//! run's limits) holding a child cgroup per command (the command's limits), so a command's
//! background processes stay counted against it after it returns. cgroup v2 is used when the
//! harness's own cgroup can delegate `memory` and `pids` to children; otherwise cgroup v1
//! `memory` and `pids` where their directories are writable (as root).
//! Where neither is, rlimits stand in: `RLIMIT_DATA` bounds each process's memory, and
//! `RLIMIT_NPROC` — counted per user *namespace* since Linux 5.14, so inside a world it is the
//! number of the run's own processes — bounds the process count (it does not bind uid 0, but a
//! root harness has cgroups). `RLIMIT_FSIZE` bounds every file a command writes, in every mode.
//!
//! Joining a cgroup is a migration (the command's first process writes `cgroup.procs`), which
//! takes the kernel's global cgroup lock: about 0.4 ms per hierarchy, 10–20 ms when an RCU
//! grace period must pass — the largest part of a command's overhead as root (see the notes in
//! the sandbox crate's report). A command gets a cgroup of its own only when per-command
//! limits are set; otherwise it joins the run's.
//!
//! Every command's processes also get `oom_score_adj` 1000, so if the machine itself runs out
//! of memory the kernel kills the agent's processes before the harness.
//!
//! A limit that was hit is reported to the model: the cgroup's event counters (`oom_kill`,
//! `pids.events max`) after the command, or, with rlimits, the signal (`SIGXFSZ`) or the
//! error the program printed.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// Limits on what the agent's commands may use. `None` is no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ResourceLimits {
    /// Bytes of memory one command (with its children and background processes) may use.
    pub memory_per_command: Option<u64>,
    /// Bytes of memory all of a session's commands together may use.
    pub memory_per_run: Option<u64>,
    /// Processes and threads one command may have at once.
    pub processes_per_command: Option<u64>,
    /// Processes and threads all of a session's commands together may have at once.
    pub processes_per_run: Option<u64>,
    /// Largest file (bytes) a command may write.
    pub file_size: Option<u64>,
}

impl Default for ResourceLimits {
    /// Half the machine's memory (at least 1 GiB) per run, 4096 processes per run, 32 GiB per
    /// file (a runaway `yes > out.txt` stops there; sparse files up to that size still work);
    /// commands are bounded by the run's limits.
    fn default() -> ResourceLimits {
        let half_ram = physical_memory().map_or(4 << 30, |m| (m / 2).max(1 << 30));
        ResourceLimits {
            memory_per_command: None,
            memory_per_run: Some(half_ram),
            processes_per_command: None,
            processes_per_run: Some(4096),
            file_size: Some(32 << 30),
        }
    }
}

impl ResourceLimits {
    /// No limits at all.
    pub fn unlimited() -> ResourceLimits {
        ResourceLimits {
            memory_per_command: None,
            memory_per_run: None,
            processes_per_command: None,
            processes_per_run: None,
            file_size: None,
        }
    }

    fn command_memory(&self) -> Option<u64> {
        min_some(self.memory_per_command, self.memory_per_run)
    }

    fn command_processes(&self) -> Option<u64> {
        min_some(self.processes_per_command, self.processes_per_run)
    }
}

fn min_some(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn physical_memory() -> Option<u64> {
    // SAFETY: sysinfo fills the struct it is given.
    unsafe {
        let mut info: libc::sysinfo = std::mem::zeroed();
        if libc::sysinfo(&mut info) != 0 {
            return None;
        }
        Some(info.totalram as u64 * info.mem_unit as u64)
    }
}

/// "1.5 GiB", "512 MiB".
pub(crate) fn human_bytes(bytes: u64) -> String {
    const GIB: u64 = 1 << 30;
    const MIB: u64 = 1 << 20;
    if bytes >= GIB {
        if bytes.is_multiple_of(GIB) {
            format!("{} GiB", bytes / GIB)
        } else {
            format!("{:.1} GiB", bytes as f64 / GIB as f64)
        }
    } else if bytes >= MIB {
        format!("{} MiB", bytes / MIB)
    } else {
        format!("{bytes} bytes")
    }
}

/// How limits are enforced on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Backend {
    /// cgroup v2: the harness's own cgroup directory, which delegates memory and pids.
    V2 { base: PathBuf },
    /// cgroup v1: the harness's cgroup directory in each writable hierarchy.
    V1 {
        memory: Option<PathBuf>,
        pids: Option<PathBuf>,
    },
    /// No writable cgroup: rlimits.
    Rlimits,
}

impl Backend {
    fn has_memory(&self) -> bool {
        match self {
            Backend::V2 { .. } => true,
            Backend::V1 { memory, .. } => memory.is_some(),
            Backend::Rlimits => false,
        }
    }

    fn has_pids(&self) -> bool {
        match self {
            Backend::V2 { .. } => true,
            Backend::V1 { pids, .. } => pids.is_some(),
            Backend::Rlimits => false,
        }
    }
}

/// The backend, probed once per process.
pub(crate) fn backend() -> &'static Backend {
    static BACKEND: OnceLock<Backend> = OnceLock::new();
    BACKEND.get_or_init(probe_backend)
}

fn probe_backend() -> Backend {
    let cgroups = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mounts = cgroup_mounts(&mountinfo);
    // cgroup v2 first.
    if let Some(path) = cgroups
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(str::to_owned)
    {
        if let Some(base) = mounts
            .iter()
            .find(|m| m.version == 2)
            .and_then(|m| m.dir_for(&path))
        {
            if v2_delegates(&base) {
                return Backend::V2 { base };
            }
        }
    }
    let v1 = |controller: &str| -> Option<PathBuf> {
        let path = cgroups.lines().find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let _id = parts.next()?;
            let controllers = parts.next()?;
            let path = parts.next()?;
            controllers
                .split(',')
                .any(|c| c == controller)
                .then(|| path.to_owned())
        })?;
        let dir = mounts
            .iter()
            .find(|m| m.version == 1 && m.controllers.iter().any(|c| c == controller))?
            .dir_for(&path)?;
        writable_dir(&dir).then_some(dir)
    };
    let (memory, pids) = (v1("memory"), v1("pids"));
    if memory.is_some() || pids.is_some() {
        return Backend::V1 { memory, pids };
    }
    Backend::Rlimits
}

struct CgroupMount {
    version: u8,
    root: String,
    point: PathBuf,
    controllers: Vec<String>,
}

impl CgroupMount {
    /// The directory of cgroup `path` (as in /proc/self/cgroup) under this mount.
    fn dir_for(&self, path: &str) -> Option<PathBuf> {
        let rel = if self.root == "/" {
            path
        } else {
            path.strip_prefix(self.root.as_str())?
        };
        let dir = self.point.join(rel.trim_start_matches('/'));
        dir.is_dir().then_some(dir)
    }
}

fn cgroup_mounts(mountinfo: &str) -> Vec<CgroupMount> {
    let mut out = Vec::new();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let fields: Vec<&str> = left.split(' ').collect();
        let rfields: Vec<&str> = right.split(' ').collect();
        let (Some(root), Some(point), Some(fstype), Some(superopts)) = (
            fields.get(3),
            fields.get(4),
            rfields.first(),
            rfields.get(2),
        ) else {
            continue;
        };
        let version = match *fstype {
            "cgroup2" => 2,
            "cgroup" => 1,
            _ => continue,
        };
        out.push(CgroupMount {
            version,
            root: unescape_mountinfo(root),
            point: PathBuf::from(unescape_mountinfo(point)),
            controllers: superopts.split(',').map(str::to_owned).collect(),
        });
    }
    out
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
pub(crate) fn unescape_mountinfo(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            let value = bytes
                .get(i + 1..i + 4)
                .and_then(|oct| std::str::from_utf8(oct).ok())
                .and_then(|oct| u8::from_str_radix(oct, 8).ok());
            if let Some(v) = value {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether a child directory can be made here (then removed again).
fn writable_dir(dir: &Path) -> bool {
    let probe = dir.join(format!("loopwright-probe-{}", std::process::id()));
    match std::fs::create_dir(&probe) {
        Ok(()) => {
            let _ = std::fs::remove_dir(&probe);
            true
        }
        Err(e) => e.kind() == std::io::ErrorKind::AlreadyExists,
    }
}

/// cgroup v2: memory and pids can be handed to children of `base`.
fn v2_delegates(base: &Path) -> bool {
    let controllers = std::fs::read_to_string(base.join("cgroup.controllers")).unwrap_or_default();
    let has = |c: &str| controllers.split_whitespace().any(|x| x == c);
    if !(has("memory") && has("pids")) {
        return false;
    }
    let enabled = std::fs::read_to_string(base.join("cgroup.subtree_control")).unwrap_or_default();
    let on = |c: &str| enabled.split_whitespace().any(|x| x == c);
    if on("memory") && on("pids") {
        return writable_dir(base);
    }
    // Fails (EBUSY) when `base` holds processes itself and is not the root.
    std::fs::write(base.join("cgroup.subtree_control"), "+memory +pids").is_ok()
        && writable_dir(base)
}

/// Removes cgroup directories left by harnesses that were killed (their pid is gone).
fn remove_stale(parent: &Path) {
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix("loopwright-")) else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<i32>().ok()) else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        remove_tree(&entry.path());
    }
}

/// Removes a cgroup directory and its child cgroups, deepest first (cgroup directories are
/// removed with rmdir even though they list files).
fn remove_tree(dir: &Path) -> bool {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&entry.path());
            }
        }
    }
    std::fs::remove_dir(dir).is_ok() || !dir.exists()
}

/// The cgroups of one world: one directory per controller, a child per command.
#[derive(Debug)]
pub(crate) struct RunCgroup {
    /// (controller, run directory).
    dirs: Vec<(Controller, PathBuf)>,
    limits: ResourceLimits,
    next_command: AtomicU64,
    /// Command cgroups not removed yet (they held background processes when their command
    /// returned).
    leftover: Mutex<Vec<PathBuf>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Controller {
    /// cgroup v2: one directory for all controllers.
    Unified,
    Memory,
    Pids,
}

static RUN_SEQ: AtomicU64 = AtomicU64::new(0);
static STALE_REMOVED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

impl RunCgroup {
    /// Creates the run's cgroups, or `None` when limits are rlimits on this machine.
    pub(crate) fn create(limits: &ResourceLimits) -> Result<Option<RunCgroup>, std::io::Error> {
        let name = format!(
            "loopwright-{}-{}",
            std::process::id(),
            RUN_SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let parents: Vec<(Controller, &PathBuf)> = match backend() {
            Backend::Rlimits => return Ok(None),
            Backend::V2 { base } => vec![(Controller::Unified, base)],
            Backend::V1 { memory, pids } => [
                (Controller::Memory, memory.as_ref()),
                (Controller::Pids, pids.as_ref()),
            ]
            .into_iter()
            .filter_map(|(c, p)| p.map(|p| (c, p)))
            .collect(),
        };
        let mut run = RunCgroup {
            dirs: Vec::new(),
            limits: *limits,
            next_command: AtomicU64::new(0),
            leftover: Mutex::new(Vec::new()),
        };
        let clean_stale = !STALE_REMOVED.swap(true, Ordering::Relaxed);
        for (controller, parent) in parents {
            if clean_stale {
                remove_stale(parent);
            }
            let dir = parent.join(&name);
            std::fs::create_dir(&dir)?;
            run.dirs.push((controller, dir.clone()));
            write_limits(
                controller,
                &dir,
                limits.memory_per_run,
                limits.processes_per_run,
            )?;
            if controller == Controller::Unified {
                std::fs::write(dir.join("cgroup.subtree_control"), "+memory +pids")?;
            }
        }
        Ok(Some(run))
    }

    /// Where one command runs: a fresh cgroup with the command's limits when per-command
    /// limits are set, else the run's cgroup itself (creating and removing a cgroup v1 memory
    /// cgroup costs milliseconds per command, for nothing when only the run is limited).
    pub(crate) fn command(&self) -> Result<CommandCgroup, std::io::Error> {
        let own =
            self.limits.memory_per_command.is_some() || self.limits.processes_per_command.is_some();
        if !own {
            return Ok(CommandCgroup {
                dirs: Vec::new(),
                procs: procs_files(&self.dirs)?,
            });
        }
        self.sweep();
        let n = self.next_command.fetch_add(1, Ordering::Relaxed);
        let mut cmd = CommandCgroup {
            dirs: Vec::new(),
            procs: Vec::new(),
        };
        for (controller, run_dir) in &self.dirs {
            let dir = run_dir.join(format!("cmd-{n}"));
            std::fs::create_dir(&dir)?;
            cmd.dirs.push((*controller, dir.clone()));
            write_limits(
                *controller,
                &dir,
                self.limits.memory_per_command,
                self.limits.processes_per_command,
            )?;
        }
        cmd.procs = procs_files(&cmd.dirs)?;
        Ok(cmd)
    }

    /// Counter values of the run's cgroups, to compare before and after a command.
    pub(crate) fn events(&self) -> Events {
        events_of(&self.dirs)
    }

    /// Keeps a command's cgroup for removal once its processes are gone.
    pub(crate) fn release(&self, cmd: CommandCgroup) {
        let mut left = self
            .leftover
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (_, dir) in cmd.dirs {
            if std::fs::remove_dir(&dir).is_err() {
                left.push(dir);
            }
        }
    }

    /// Removes command cgroups whose processes have all exited.
    fn sweep(&self) {
        let mut left = self
            .leftover
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        left.retain(|dir| std::fs::remove_dir(dir).is_err() && dir.exists());
    }

    /// Removes everything; called once the world's processes are dead. Retries briefly, since
    /// the last processes may still be leaving.
    pub(crate) fn remove(&self) {
        for attempt in 0..50 {
            let all_gone = self.dirs.iter().all(|(_, dir)| remove_tree(dir));
            if all_gone {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10 * attempt.min(10) + 5));
        }
    }
}

fn write_limits(
    controller: Controller,
    dir: &Path,
    memory: Option<u64>,
    processes: Option<u64>,
) -> Result<(), std::io::Error> {
    match controller {
        Controller::Unified => {
            if let Some(m) = memory {
                std::fs::write(dir.join("memory.max"), m.to_string())?;
                // No swap to hide in, where swap exists.
                let _ = std::fs::write(dir.join("memory.swap.max"), "0");
            }
            if let Some(p) = processes {
                std::fs::write(dir.join("pids.max"), p.to_string())?;
            }
        }
        Controller::Memory => {
            if let Some(m) = memory {
                std::fs::write(dir.join("memory.limit_in_bytes"), m.to_string())?;
                let _ = std::fs::write(dir.join("memory.memsw.limit_in_bytes"), m.to_string());
            }
        }
        Controller::Pids => {
            if let Some(p) = processes {
                std::fs::write(dir.join("pids.max"), p.to_string())?;
            }
        }
    }
    Ok(())
}

/// Limit-hit counters of a cgroup set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Events {
    pub(crate) oom_kills: u64,
    pub(crate) pids_max: u64,
}

fn counter(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == key).then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0)
}

fn events_of(dirs: &[(Controller, PathBuf)]) -> Events {
    let read = |dir: &Path, file: &str| std::fs::read_to_string(dir.join(file)).unwrap_or_default();
    let mut ev = Events::default();
    for (controller, dir) in dirs {
        match controller {
            Controller::Unified => {
                ev.oom_kills += counter(&read(dir, "memory.events"), "oom_kill");
                ev.pids_max += counter(&read(dir, "pids.events"), "max");
            }
            Controller::Memory => {
                ev.oom_kills += counter(&read(dir, "memory.oom_control"), "oom_kill");
            }
            Controller::Pids => ev.pids_max += counter(&read(dir, "pids.events"), "max"),
        }
    }
    ev
}

fn procs_files(dirs: &[(Controller, PathBuf)]) -> Result<Vec<CString>, std::io::Error> {
    dirs.iter()
        .map(|(_, dir)| {
            CString::new(dir.join("cgroup.procs").as_os_str().as_bytes())
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
        })
        .collect()
}

/// One command's cgroups (its own, or the run's when it has none).
#[derive(Debug)]
pub(crate) struct CommandCgroup {
    /// Empty when the command runs in the run's cgroups.
    dirs: Vec<(Controller, PathBuf)>,
    procs: Vec<CString>,
}

impl CommandCgroup {
    /// The command's own counters; `None` when it has no cgroup of its own.
    pub(crate) fn events(&self) -> Option<Events> {
        (!self.dirs.is_empty()).then(|| events_of(&self.dirs))
    }
}

/// What the command's child applies to itself, prepared in the parent.
#[derive(Debug, Default)]
pub(crate) struct ChildLimits {
    /// `cgroup.procs` files to write "0" into (joins the command's cgroups).
    procs: Vec<CString>,
    rlimits: Vec<(libc::__rlimit_resource_t, u64)>,
    oom_score_adj: Option<CString>,
}

impl ChildLimits {
    /// `cgroup`: the command's cgroups when there are any. `world`: whether the command runs
    /// in a world (where `RLIMIT_NPROC` counts only the run's processes).
    pub(crate) fn new(
        limits: &ResourceLimits,
        cgroup: Option<&CommandCgroup>,
        world: bool,
    ) -> ChildLimits {
        let backend = if cgroup.is_some() {
            backend()
        } else {
            &Backend::Rlimits
        };
        let mut rlimits = Vec::new();
        if let Some(f) = limits.file_size {
            rlimits.push((libc::RLIMIT_FSIZE, f));
        }
        if !backend.has_memory() {
            if let Some(m) = limits.command_memory() {
                rlimits.push((libc::RLIMIT_DATA, m));
            }
        }
        if !backend.has_pids() && world {
            if let Some(p) = limits.processes_per_run.or(limits.command_processes()) {
                rlimits.push((libc::RLIMIT_NPROC, p));
            }
        }
        ChildLimits {
            procs: cgroup.map(|c| c.procs.clone()).unwrap_or_default(),
            rlimits,
            oom_score_adj: CString::new("/proc/self/oom_score_adj").ok(),
        }
    }

    /// Joins the command's cgroups and marks the process as the first the kernel's OOM killer
    /// takes. Runs in the child before it enters the world (host paths).
    ///
    /// # Safety
    /// Only system calls on prepared data.
    pub(crate) unsafe fn join(&self) -> std::io::Result<()> {
        for procs in &self.procs {
            crate::child::write_file(procs, b"0")?;
        }
        if let Some(path) = &self.oom_score_adj {
            // Raising the score needs no privilege; ignore kernels without the file.
            let _ = crate::child::write_file(path, b"1000");
        }
        Ok(())
    }

    /// Sets the rlimits (lowering both the soft and the hard limit).
    ///
    /// # Safety
    /// Only system calls on prepared data.
    pub(crate) unsafe fn apply_rlimits(&self) -> std::io::Result<()> {
        for &(resource, value) in &self.rlimits {
            let lim = libc::rlimit {
                rlim_cur: value,
                rlim_max: value,
            };
            let mut old = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            if libc::getrlimit(resource, &mut old) == 0 && old.rlim_max < value {
                continue;
            }
            if libc::setrlimit(resource, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        Ok(())
    }
}

/// Notes for the model about limits the command ran into.
pub(crate) fn hit_notes(
    limits: &ResourceLimits,
    cgroups: bool,
    command: Option<Events>,
    run_delta: Option<Events>,
    signal: Option<i32>,
    output: &str,
) -> Vec<String> {
    let mut notes = Vec::new();
    let lower = output.to_ascii_lowercase();
    let mem = |l: Option<u64>| l.map_or_else(|| "its".to_string(), human_bytes);
    let cmd = command.unwrap_or_default();
    let run = run_delta.unwrap_or_default();
    if cmd.oom_kills > 0 || run.oom_kills > 0 {
        let (which, limit) = if cmd.oom_kills > 0 && limits.memory_per_command.is_some() {
            ("per-command", limits.command_memory())
        } else {
            ("per-run", limits.memory_per_run)
        };
        notes.push(format!(
            "[sandbox] a process was killed for going over the {which} memory limit ({}); use less memory (smaller inputs, fewer parallel jobs), or ask the user to raise the limit",
            mem(limit)
        ));
    } else if !cgroups
        && limits.command_memory().is_some()
        && (lower.contains("cannot allocate memory")
            || lower.contains("memoryerror")
            || lower.contains("out of memory"))
    {
        notes.push(format!(
            "[sandbox] an allocation failed: each process may use at most {} of memory here; use less memory, or ask the user to raise the limit",
            mem(limits.command_memory())
        ));
    }
    if cmd.pids_max > 0 || run.pids_max > 0 {
        let (which, limit) = if cmd.pids_max > 0 && limits.processes_per_command.is_some() {
            ("per-command", limits.command_processes())
        } else {
            ("per-run", limits.processes_per_run)
        };
        notes.push(format!(
            "[sandbox] starting a process or thread failed: the {which} limit of {} processes and threads was reached; run fewer at once (and stop background processes you no longer need)",
            limit.map_or_else(|| "?".to_string(), |l| l.to_string())
        ));
    } else if !cgroups
        && limits.processes_per_run.is_some()
        && (lower.contains("resource temporarily unavailable") || lower.contains("fork: retry"))
    {
        notes.push(format!(
            "[sandbox] starting a process may have failed at the limit of {} processes and threads per run; run fewer at once",
            limits.processes_per_run.unwrap_or(0)
        ));
    }
    if let Some(f) = limits.file_size {
        if signal == Some(libc::SIGXFSZ)
            || lower.contains("file too large")
            || lower.contains("file size limit exceeded")
        {
            notes.push(format!(
                "[sandbox] a write went over the file-size limit ({}) and was refused; write smaller files",
                human_bytes(f)
            ));
        }
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(unescape_mountinfo(r"/a\040b"), "/a b");
        assert_eq!(unescape_mountinfo(r"/plain"), "/plain");
        assert_eq!(unescape_mountinfo(r"/end\"), r"/end\");
    }

    #[test]
    fn counters_are_read_by_key() {
        let text = "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n";
        assert_eq!(counter(text, "oom_kill"), 3);
        assert_eq!(counter("max 7\n", "max"), 7);
        assert_eq!(counter("", "max"), 0);
    }

    #[test]
    fn a_hit_memory_limit_is_reported_with_the_limit() {
        let limits = ResourceLimits {
            memory_per_command: Some(256 << 20),
            ..ResourceLimits::unlimited()
        };
        let notes = hit_notes(
            &limits,
            true,
            Some(Events {
                oom_kills: 1,
                pids_max: 0,
            }),
            None,
            Some(9),
            "",
        );
        assert_eq!(notes.len(), 1);
        assert!(notes[0].contains("256 MiB"), "{notes:?}");
    }
}
