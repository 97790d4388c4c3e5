//! Worlds: one set of namespaces (user, mount, pid, network, ipc, uts) per session, held by a
//! small init process, which every confined command joins.
//!
//! ## Life of a world
//! - **Creation.** A dedicated harness thread (the *keeper*, alive exactly as long as the
//!   world) calls `clone(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET |
//!   CLONE_NEWIPC | CLONE_NEWUTS)` with fork semantics. `clone` (unlike `unshare`) may create
//!   a user namespace from a multi-threaded process, and the child is pid 1 of the new pid
//!   namespace and a direct child of the keeper thread. The keeper writes the child's uid/gid
//!   maps (the harness's own ids mapped to themselves — uid 0 to 0 for a root harness, never a
//!   range), then lets it go on. The child — the world's *init*, a fork that never execs —
//!   closes every descriptor it does not need, builds the mount view ([`crate::view`]), brings
//!   `lo` up (`SIOCSIFFLAGS`), reports success over a pipe, and then only reaps orphans and
//!   answers listener requests. All of it is raw system calls on data prepared before the
//!   clone: the harness is multi-threaded, so the child may not allocate.
//! - **Joining.** A command's child (forked by `std::process::Command`) calls `setns` on the
//!   six namespace descriptors the harness opened from `/proc/<init>/ns/*` (user first, which
//!   gives it the capabilities to join the others), then forks once more so that the command
//!   itself is inside the pid namespace. The intermediate process closes every descriptor (so
//!   `spawn` does not wait on it), waits for the command and exits with its status (re-raising
//!   the signal that killed it). The process group set by `process_group(0)` is the
//!   intermediate's and the command inherits it, so `kill(-pgid)` from the harness reaches the
//!   command and its children although they are in another pid namespace. The command then
//!   drops every capability (bounding set included) and applies Landlock and seccomp.
//! - **Lifetime.** Background processes outlive their command and end with the world: when the
//!   init exits the kernel kills everything in its pid namespace. It exits when the harness
//!   calls [`crate::Sandbox::end_session`] or drops the sandbox (SIGKILL through a pidfd), when
//!   the keeper thread exits (`PR_SET_PDEATHSIG`, which fires on the parent *thread*), and when
//!   the harness dies in any way, SIGKILL included: it polls a liveness pipe whose write end
//!   only the harness holds (close-on-exec), and gets EOF.
//! - **Listeners.** A harness thread cannot `setns` into the network namespace (that needs
//!   `CAP_SYS_ADMIN` in the harness's own user namespace), so the init creates a listening
//!   socket on 127.0.0.1 inside it on request and passes it back over a socketpair
//!   (`SCM_RIGHTS`); the proxy serves on it from the harness.
//!
//! ## Why written here, on `libc`
//! - **bubblewrap** (what Flatpak and other agents' sandboxes use) builds a fresh set of
//!   namespaces per invocation and cannot join an existing mount and network namespace, so a
//!   server started by one command could not be reached by the next, and nothing would bound
//!   the lifetime of background processes to a session. It would also be a runtime dependency
//!   (a setuid binary on some distributions) and one more process per command.
//! - **hakoniwa** (a maintained Rust crate, close in spirit: pivot_root onto a tmpfs, rlimits,
//!   Landlock, seccomp through libseccomp) and **birdcage** (Phylum's: `unshare` in-process,
//!   which needs a single-threaded caller) are likewise one-container-per-command; neither
//!   joins a persistent world, hands out a listener inside it, or bounds background processes
//!   to a session, and hakoniwa's seccomp needs the C libseccomp.
//! - What remains is small (a few hundred lines: one clone, a list of mounts, six `setns`),
//!   every step is a documented system call, and it composes with the Landlock and seccomp
//!   layers the sandbox already had.

use std::ffi::CString;
use std::io::Read as _;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use crate::child;
use crate::limits::{ResourceLimits, RunCgroup};
use crate::view::ViewPlan;

/// Whether commands run in namespaces of their session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NamespaceMode {
    /// Use them when the kernel allows; otherwise say so once and fall back to Landlock and
    /// the seccomp socket filter alone.
    #[default]
    Auto,
    /// The fallback, forced (tests, or kernels where namespaces misbehave).
    Off,
}

/// How a sandbox actually confines its commands (after probing the kernel).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Confinement {
    /// Commands run in a world: their own mount view, user, ipc and uts namespaces.
    pub namespaces: bool,
    /// Commands see only their run's processes; background processes live until the session
    /// ends.
    pub pid_namespace: bool,
    /// Commands have their own network with loopback only.
    pub network_namespace: bool,
}

/// Resolves when the world a listener belongs to has ended (the session ended, the sandbox was
/// dropped, or the world died); whoever serves on the listener should then drop it, since an
/// open socket keeps its network namespace alive.
#[derive(Debug, Clone)]
pub struct WorldEnded(tokio::sync::watch::Receiver<bool>);

impl WorldEnded {
    pub async fn wait(mut self) {
        while !*self.0.borrow_and_update() {
            if self.0.changed().await.is_err() {
                return;
            }
        }
    }

    pub fn is_ended(&self) -> bool {
        *self.0.borrow() || self.0.has_changed().is_err()
    }
}

/// What every world of a sandbox is made of.
#[derive(Debug)]
pub(crate) struct WorldSpec {
    pub(crate) view: ViewPlan,
    /// A network namespace of its own (loopback only).
    pub(crate) network: bool,
    pub(crate) limits: ResourceLimits,
}

/// A world that failed to come up, in words.
#[derive(Debug)]
pub(crate) struct WorldError(pub(crate) String);

impl std::fmt::Display for WorldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn os_error(what: &str, e: &std::io::Error) -> WorldError {
    WorldError(format!("{what}: {e}"))
}

/// One live world.
#[derive(Debug)]
pub(crate) struct World {
    init_pid: libc::pid_t,
    pidfd: Option<OwnedFd>,
    /// (descriptor, CLONE_NEW* type), in the order commands join them.
    namespaces: Vec<(OwnedFd, libc::c_int)>,
    network: bool,
    /// The write end of the liveness pipe; closing it ends the world.
    liveness: Mutex<Option<OwnedFd>>,
    control: Mutex<OwnedFd>,
    cgroup: Option<Arc<RunCgroup>>,
    ended: tokio::sync::watch::Receiver<bool>,
    keeper_done: Mutex<Option<std::sync::mpsc::Receiver<()>>>,
}

/// What the init process needs, as raw values (it runs in a copy of the keeper's memory).
struct InitArgs<'a> {
    sync_rd: RawFd,
    status_wr: RawFd,
    liveness_rd: RawFd,
    control: RawFd,
    view: &'a ViewPlan,
    network: bool,
}

const STATUS_OK: u32 = u32::MAX;
const STATUS_LOOPBACK: u32 = u32::MAX - 1;

fn pipe() -> Result<(OwnedFd, OwnedFd), WorldError> {
    let mut fds = [-1; 2];
    // SAFETY: pipe2 fills the array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(os_error(
            "could not create a pipe",
            &std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: both descriptors are new and owned here.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

fn socketpair() -> Result<(OwnedFd, OwnedFd), WorldError> {
    let mut fds = [-1; 2];
    // SAFETY: socketpair fills the array.
    if unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    } != 0
    {
        return Err(os_error(
            "could not create a socketpair",
            &std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: both descriptors are new and owned here.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

struct Started {
    pid: libc::pid_t,
    pidfd: Option<OwnedFd>,
    namespaces: Vec<(OwnedFd, libc::c_int)>,
}

impl World {
    /// Starts a world and waits until its view is built. Blocking (a few milliseconds).
    pub(crate) fn create(spec: Arc<WorldSpec>) -> Result<World, WorldError> {
        let cgroup = RunCgroup::create(&spec.limits)
            .map_err(|e| os_error("could not create the run's cgroup", &e))?
            .map(Arc::new);
        let (sync_rd, sync_wr) = pipe()?;
        let (status_rd, status_wr) = pipe()?;
        let (liveness_rd, liveness_wr) = pipe()?;
        let (control, control_init) = socketpair()?;
        let (ended_tx, ended_rx) = tokio::sync::watch::channel(false);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<Started, WorldError>>();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let keeper_cgroup = cgroup.clone();
        let network = spec.network;
        std::thread::Builder::new()
            .name("loopwright-world".into())
            .spawn(move || {
                let child_fds = [sync_rd, status_wr, liveness_rd, control_init];
                keeper(&spec, child_fds, sync_wr, status_rd, &ready_tx, &ended_tx);
                // The world is over: its processes are gone.
                let _ = ended_tx.send(true);
                if let Some(c) = keeper_cgroup {
                    c.remove();
                }
                let _ = done_tx.send(());
            })
            .map_err(|e| os_error("could not start the world's thread", &e))?;
        let started = ready_rx.recv().map_err(|_| {
            WorldError("the world's thread ended before the world started".into())
        })??;
        Ok(World {
            init_pid: started.pid,
            pidfd: started.pidfd,
            namespaces: started.namespaces,
            network,
            liveness: Mutex::new(Some(liveness_wr)),
            control: Mutex::new(control),
            cgroup,
            ended: ended_rx,
            keeper_done: Mutex::new(Some(done_rx)),
        })
    }

    pub(crate) fn network(&self) -> bool {
        self.network
    }

    pub(crate) fn cgroup(&self) -> Option<&RunCgroup> {
        self.cgroup.as_deref()
    }

    /// Whether the init is still running.
    pub(crate) fn alive(&self) -> bool {
        !*self.ended.borrow()
    }

    pub(crate) fn ended(&self) -> WorldEnded {
        WorldEnded(self.ended.clone())
    }

    /// The descriptors a command's child joins, as raw values for use after fork.
    pub(crate) fn entry(&self, project: CString) -> Entry {
        Entry {
            namespaces: self
                .namespaces
                .iter()
                .map(|(fd, t)| (fd.as_raw_fd(), *t))
                .collect(),
            project,
        }
    }

    /// Kills the init (and with it every process of the world) and lets go of the world.
    pub(crate) fn kill(&self) {
        // SAFETY: pidfd_send_signal on a pidfd we own, or kill on the init's pid, which cannot
        // be reused before the keeper thread reaps it.
        unsafe {
            match &self.pidfd {
                Some(pidfd) => {
                    libc::syscall(
                        libc::SYS_pidfd_send_signal,
                        pidfd.as_raw_fd(),
                        libc::SIGKILL,
                        std::ptr::null::<libc::siginfo_t>(),
                        0u32,
                    );
                }
                None => {
                    if self.alive() {
                        libc::kill(self.init_pid, libc::SIGKILL);
                    }
                }
            }
        }
        self.liveness
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }

    /// Blocks until the world's processes are gone and its cgroups removed.
    pub(crate) fn wait_gone(&self) {
        let done = self
            .keeper_done
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(rx) = done {
            let _ = rx.recv();
        }
    }

    /// A listening TCP socket on 127.0.0.1:`port` inside the world's network namespace
    /// (`port` 0: any free port), made by the init and passed back.
    pub(crate) fn listener(&self, port: u16) -> std::io::Result<std::net::TcpListener> {
        let control = self.control.lock().unwrap_or_else(PoisonError::into_inner);
        let fd = control.as_raw_fd();
        let request = port.to_be_bytes();
        // SAFETY: send/recvmsg on our socket with buffers that outlive the calls.
        unsafe {
            let sent = libc::send(fd, request.as_ptr().cast(), 2, libc::MSG_NOSIGNAL);
            if sent != 2 {
                return Err(std::io::Error::last_os_error());
            }
            let mut errno_buf = [0u8; 4];
            let mut iov = libc::iovec {
                iov_base: errno_buf.as_mut_ptr().cast(),
                iov_len: 4,
            };
            let mut cmsg_buf = [0u64; 8];
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = cmsg_buf.as_mut_ptr().cast();
            msg.msg_controllen = std::mem::size_of_val(&cmsg_buf) as _;
            let n = libc::recvmsg(fd, &mut msg, libc::MSG_CMSG_CLOEXEC);
            if n < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if n != 4 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::BrokenPipe,
                    "the world's init process is gone",
                ));
            }
            let mut received: RawFd = -1;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            if !cmsg.is_null()
                && (*cmsg).cmsg_level == libc::SOL_SOCKET
                && (*cmsg).cmsg_type == libc::SCM_RIGHTS
            {
                received = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>());
            }
            let errno = i32::from_ne_bytes(errno_buf);
            if errno != 0 {
                if received >= 0 {
                    libc::close(received);
                }
                return Err(std::io::Error::from_raw_os_error(errno));
            }
            if received < 0 {
                return Err(std::io::Error::other(
                    "the world's init process sent no socket",
                ));
            }
            Ok(std::net::TcpListener::from_raw_fd(received))
        }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The keeper thread's work until the world is over.
fn keeper(
    spec: &WorldSpec,
    child_fds: [OwnedFd; 4],
    sync_wr: OwnedFd,
    status_rd: OwnedFd,
    ready: &std::sync::mpsc::Sender<Result<Started, WorldError>>,
    ended: &tokio::sync::watch::Sender<bool>,
) {
    let [sync_rd, status_wr, liveness_rd, control] = &child_fds;
    let args = InitArgs {
        sync_rd: sync_rd.as_raw_fd(),
        status_wr: status_wr.as_raw_fd(),
        liveness_rd: liveness_rd.as_raw_fd(),
        control: control.as_raw_fd(),
        view: &spec.view,
        network: spec.network,
    };
    let mut flags = libc::CLONE_NEWUSER
        | libc::CLONE_NEWNS
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWUTS;
    if spec.network {
        flags |= libc::CLONE_NEWNET;
    }
    // SAFETY: clone with fork semantics (no new stack, no shared memory). The child runs
    // `init_main`, which never returns and only makes system calls on memory prepared above.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if pid == 0 {
        // SAFETY: this is the child.
        unsafe { init_main(&args) }
    }
    drop(child_fds);
    if pid < 0 {
        let e = std::io::Error::last_os_error();
        let _ = ready.send(Err(os_error(
            "could not create the namespaces (clone with CLONE_NEWUSER|CLONE_NEWNS|CLONE_NEWPID)",
            &e,
        )));
        return;
    }
    let pid = pid as libc::pid_t;
    // SAFETY: pidfd_open on our own unreaped child.
    let pidfd = unsafe {
        let fd = libc::syscall(libc::SYS_pidfd_open, pid, 0u32);
        (fd >= 0).then(|| OwnedFd::from_raw_fd(fd as RawFd))
    };
    match start(spec, pid, sync_wr, status_rd) {
        Ok(namespaces) => {
            let _ = ready.send(Ok(Started {
                pid,
                pidfd,
                namespaces,
            }));
        }
        Err(e) => {
            // SAFETY: kill our own unreaped child.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
            let _ = ready.send(Err(e));
        }
    }
    let mut status = 0;
    loop {
        // SAFETY: waitpid on our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid
            || (r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR))
        {
            break;
        }
    }
    let _ = ended;
}

/// Maps ids, lets the init build the view, and opens its namespaces.
fn start(
    spec: &WorldSpec,
    pid: libc::pid_t,
    sync_wr: OwnedFd,
    status_rd: OwnedFd,
) -> Result<Vec<(OwnedFd, libc::c_int)>, WorldError> {
    // SAFETY: plain id getters.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let proc_dir = format!("/proc/{pid}");
    let write = |name: &str, data: String| {
        std::fs::write(Path::new(&proc_dir).join(name), data)
            .map_err(|e| os_error(&format!("could not write {proc_dir}/{name}"), &e))
    };
    write("uid_map", format!("{uid} {uid} 1\n"))?;
    match std::fs::write(Path::new(&proc_dir).join("setgroups"), "deny") {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(os_error(
                &format!("could not write {proc_dir}/setgroups"),
                &e,
            ));
        }
        _ => {}
    }
    write("gid_map", format!("{gid} {gid} 1\n"))?;
    // Opened before the init goes on: it makes itself non-dumpable, which closes its /proc
    // files to us. The mount namespace is empty yet; commands join it once the view is built.
    let mut kinds = vec![("user", libc::CLONE_NEWUSER), ("mnt", libc::CLONE_NEWNS)];
    kinds.push(("pid", libc::CLONE_NEWPID));
    if spec.network {
        kinds.push(("net", libc::CLONE_NEWNET));
    }
    kinds.push(("ipc", libc::CLONE_NEWIPC));
    kinds.push(("uts", libc::CLONE_NEWUTS));
    let mut namespaces = Vec::new();
    for (name, kind) in kinds {
        let file = std::fs::File::open(format!("{proc_dir}/ns/{name}"))
            .map_err(|e| os_error(&format!("could not open {proc_dir}/ns/{name}"), &e))?;
        namespaces.push((OwnedFd::from(file), kind));
    }
    let mut sync = std::fs::File::from(sync_wr);
    std::io::Write::write_all(&mut sync, b"g")
        .map_err(|e| os_error("could not start the world's init process", &e))?;
    drop(sync);
    let mut status = [0u8; 8];
    std::fs::File::from(status_rd)
        .read_exact(&mut status)
        .map_err(|_| WorldError("the world's init process died while starting".into()))?;
    let step = u32::from_ne_bytes([status[0], status[1], status[2], status[3]]);
    let errno = i32::from_ne_bytes([status[4], status[5], status[6], status[7]]);
    if step != STATUS_OK {
        let what = if step == STATUS_LOOPBACK {
            "bringing up the loopback interface".to_string()
        } else {
            spec.view.describe(step as usize)
        };
        return Err(WorldError(format!(
            "could not build the sandbox's view ({what}): {}",
            std::io::Error::from_raw_os_error(errno)
        )));
    }
    Ok(namespaces)
}

/// The init process: builds the view, then reaps and serves until the world ends.
///
/// # Safety
/// Only for the child of the keeper's clone; system calls only.
unsafe fn init_main(a: &InitArgs<'_>) -> ! {
    child::close_fds_except(0, &[a.sync_rd, a.status_wr, a.liveness_rd, a.control]);
    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0);
    let mut go = [0u8; 1];
    if libc::read(a.sync_rd, go.as_mut_ptr().cast(), 1) != 1 {
        libc::_exit(1);
    }
    libc::close(a.sync_rd);
    // The init is a copy of the harness's memory (API keys included): not dumpable, so no
    // command can read its /proc/1/mem or environ (it also keeps capabilities the commands
    // lack, which denies the same). Only now: a non-dumpable process's /proc files belong to
    // root, and the keeper had to write its uid_map first.
    libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    // Out of the harness's session: terminal signals are not for the world.
    libc::setsid();
    if let Err((step, errno)) = a.view.apply() {
        report(a.status_wr, step as u32, errno);
        libc::_exit(2);
    }
    if a.network {
        if let Err(errno) = loopback_up() {
            report(a.status_wr, STATUS_LOOPBACK, errno);
            libc::_exit(3);
        }
    }
    report(a.status_wr, STATUS_OK, 0);
    libc::close(a.status_wr);
    serve(a.liveness_rd, a.control)
}

unsafe fn report(fd: RawFd, step: u32, errno: i32) {
    let mut buf = [0u8; 8];
    buf[..4].copy_from_slice(&step.to_ne_bytes());
    buf[4..].copy_from_slice(&errno.to_ne_bytes());
    libc::write(fd, buf.as_ptr().cast(), buf.len());
}

fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// `ip link set lo up`, by ioctl.
unsafe fn loopback_up() -> Result<(), i32> {
    let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
    if sock < 0 {
        return Err(last_errno());
    }
    let mut req: libc::ifreq = std::mem::zeroed();
    for (dst, src) in req.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    let mut result = Ok(());
    if libc::ioctl(sock, libc::SIOCGIFFLAGS, &mut req) != 0 {
        result = Err(last_errno());
    } else {
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
        if libc::ioctl(sock, libc::SIOCSIFFLAGS, &req) != 0 {
            result = Err(last_errno());
        }
    }
    libc::close(sock);
    result
}

/// Reaps orphans, answers listener requests, exits when the liveness pipe closes.
unsafe fn serve(liveness: RawFd, control: RawFd) -> ! {
    let mut set: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut set);
    libc::sigaddset(&mut set, libc::SIGCHLD);
    libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    let sigfd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
    let mut control = control;
    loop {
        reap();
        let mut fds = [
            libc::pollfd {
                fd: liveness,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: control,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: sigfd,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // Without a signalfd, wake up every second to reap.
        let timeout = if sigfd < 0 { 1000 } else { -1 };
        let n = libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout);
        if n < 0 {
            if last_errno() == libc::EINTR {
                continue;
            }
            libc::_exit(4);
        }
        if fds[0].revents != 0 {
            libc::_exit(0);
        }
        if fds[1].revents & libc::POLLIN != 0 {
            if !answer(control) {
                control = -1;
            }
        } else if fds[1].revents != 0 {
            control = -1;
        }
        if fds[2].revents != 0 {
            let mut buf = [0u8; 1024];
            while libc::read(sigfd, buf.as_mut_ptr().cast(), buf.len()) > 0 {}
        }
    }
}

unsafe fn reap() {
    loop {
        let mut status = 0;
        if libc::waitpid(-1, &mut status, libc::WNOHANG) <= 0 {
            return;
        }
    }
}

/// Answers one listener request; false when the harness's end is gone.
unsafe fn answer(control: RawFd) -> bool {
    let mut request = [0u8; 2];
    let n = libc::recv(control, request.as_mut_ptr().cast(), 2, 0);
    if n == 0 {
        return false;
    }
    if n != 2 {
        return n >= 0 || last_errno() == libc::EINTR;
    }
    let port = u16::from_be_bytes(request);
    let (fd, errno) = listen_on_loopback(port);
    let errno_buf = errno.to_ne_bytes();
    let mut iov = libc::iovec {
        iov_base: errno_buf.as_ptr() as *mut libc::c_void,
        iov_len: errno_buf.len(),
    };
    let mut cmsg_buf = [0u64; 8];
    let mut msg: libc::msghdr = std::mem::zeroed();
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    if fd >= 0 {
        msg.msg_control = cmsg_buf.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(std::mem::size_of::<RawFd>() as u32) as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if !cmsg.is_null() {
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<RawFd>() as u32) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<RawFd>(), fd);
        }
    }
    libc::sendmsg(control, &msg, libc::MSG_NOSIGNAL);
    if fd >= 0 {
        libc::close(fd);
    }
    true
}

/// A listening socket on 127.0.0.1:`port` (in the world's network namespace), or the errno.
unsafe fn listen_on_loopback(port: u16) -> (RawFd, i32) {
    let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
    if fd < 0 {
        return (-1, last_errno());
    }
    let one: libc::c_int = 1;
    libc::setsockopt(
        fd,
        libc::SOL_SOCKET,
        libc::SO_REUSEADDR,
        (&one as *const libc::c_int).cast(),
        std::mem::size_of::<libc::c_int>() as libc::socklen_t,
    );
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_be_bytes([127, 0, 0, 1]).to_be(),
        },
        sin_zero: [0; 8],
    };
    if libc::bind(
        fd,
        (&addr as *const libc::sockaddr_in).cast(),
        std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
    ) != 0
        || libc::listen(fd, 1024) != 0
    {
        let errno = last_errno();
        libc::close(fd);
        return (-1, errno);
    }
    (fd, 0)
}

/// What a command's child needs to enter a world, as raw values.
#[derive(Debug)]
pub(crate) struct Entry {
    namespaces: Vec<(RawFd, libc::c_int)>,
    project: CString,
}

impl Entry {
    /// Joins the world's namespaces and forks; returns in the grandchild (inside the pid
    /// namespace, in the project directory). The intermediate process never returns: it waits
    /// for the grandchild and exits with its status.
    ///
    /// # Safety
    /// For the child between fork and exec; system calls on prepared data only.
    pub(crate) unsafe fn enter(&self) -> std::io::Result<()> {
        for &(fd, kind) in &self.namespaces {
            if libc::setns(fd, kind) != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
        let pid = libc::fork();
        if pid < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if pid > 0 {
            relay(pid);
        }
        if libc::chdir(self.project.as_ptr()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

/// The intermediate process: waits for the command and exits the way it did.
unsafe fn relay(pid: libc::pid_t) -> ! {
    child::close_fds_except(0, &[]);
    let mut status = 0;
    loop {
        let r = libc::waitpid(pid, &mut status, 0);
        if r == pid {
            break;
        }
        if r < 0 && last_errno() != libc::EINTR {
            libc::_exit(127);
        }
    }
    if libc::WIFEXITED(status) {
        libc::_exit(libc::WEXITSTATUS(status));
    }
    if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        // Re-raised only to report it; the command already dumped core if it was going to
        // (a non-dumpable process dumps none, not even through a core_pattern pipe).
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
        libc::signal(sig, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::kill(libc::getpid(), sig);
        libc::_exit(128 + sig);
    }
    libc::_exit(127)
}
