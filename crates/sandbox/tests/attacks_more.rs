//! More attacks, run for real against the kernel layer ([`Sandbox::run`], no policy in front):
//! links out of the project, other processes (environment, limits, scheduling, signals),
//! inherited file descriptors, surviving the command, sockets the seccomp filter must refuse,
//! capabilities a root harness would otherwise pass on, and hostile `.git` settings under the
//! harness's own git command line. Each test first builds what a hostile model would try, then
//! asserts the harm did not happen (not merely that a command failed). The tests run in a
//! world (the default); those whose expectations differ run in fallback mode as well.
//!
//! Run as root, every test here runs again as uid 65534 (`as_an_ordinary_user`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use sandbox::{NamespaceMode, Sandbox, SandboxConfig};

const T: Duration = Duration::from_secs(30);

struct Setup {
    _project: tempfile::TempDir,
    _outside: tempfile::TempDir,
    project: PathBuf,
    out: PathBuf,
    canary: PathBuf,
    sb: Sandbox,
}

fn setup() -> Setup {
    setup_in(NamespaceMode::Auto)
}

fn setup_fallback() -> Setup {
    setup_in(NamespaceMode::Off)
}

fn setup_in(namespaces: NamespaceMode) -> Setup {
    let project = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let out = outside.path().canonicalize().unwrap();
    let canary = out.join("canary");
    std::fs::write(&canary, "canary").unwrap();
    let mut config = SandboxConfig::new(project.path());
    config.namespaces = namespaces;
    let sb = Sandbox::new(config).unwrap();
    assert_eq!(
        sb.confinement().namespaces,
        namespaces == NamespaceMode::Auto,
        "{:?}",
        sb.fallback_reason()
    );
    Setup {
        project: project.path().canonicalize().unwrap(),
        _project: project,
        _outside: outside,
        out,
        canary,
        sb,
    }
}

fn assert_canary(s: &Setup) {
    assert_eq!(std::fs::read_to_string(&s.canary).unwrap(), "canary");
    let names: Vec<_> = std::fs::read_dir(&s.out)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("canary")]);
}

/// A process outside the sandbox, standing in for the harness or the shell that started it:
/// it holds an API key in its environment.
struct Victim(Child);

impl Victim {
    fn spawn() -> Victim {
        Victim(
            Command::new("sleep")
                .arg("300")
                .env("ANTHROPIC_API_KEY", "sk-victim-secret")
                .stdin(Stdio::null())
                .spawn()
                .unwrap(),
        )
    }
    fn pid(&self) -> u32 {
        self.0.id()
    }
    fn proc_file(&self, name: &str) -> String {
        std::fs::read_to_string(format!("/proc/{}/{name}", self.pid())).unwrap()
    }
    fn alive(&mut self) -> bool {
        self.0.try_wait().unwrap().is_none()
    }
}

impl Drop for Victim {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn as_an_ordinary_user() {
    support::rerun_as_nobody("as_an_ordinary_user");
}

#[tokio::test]
async fn a_hard_link_to_a_file_outside_cannot_be_made() {
    let s = setup();
    let cmd = format!(
        "python3 -c \"import os; os.link('{c}', 'h')\"; ln '{c}' h2; echo pwned >> h; echo pwned >> h2; cat h",
        c = s.canary.display()
    );
    let out = s.sb.run(&cmd, T).await.unwrap();
    assert!(!out.stdout.contains("canary"), "{out:?}");
    assert_canary(&s);
    // Not even to a root-owned system file (the inode would be shared with the project).
    let out =
        s.sb.run(
            "python3 -c \"import os; os.link('/etc/hostname', 'sys')\"; ls sys",
            T,
        )
        .await
        .unwrap();
    assert_ne!(out.exit_code, Some(0), "{out:?}");
    assert!(!s.project.join("sys").exists());
}

#[tokio::test]
async fn a_symlinked_or_renamed_file_outside_cannot_be_written_or_taken() {
    let s = setup();
    let cmd = format!(
        "python3 -c \"import os; os.symlink('{c}', 's'); open('s', 'a').write('pwned')\"; \
         python3 -c \"import os; os.rename('{c}', 'taken')\"; \
         python3 -c \"import os; os.truncate('{c}', 0)\"",
        c = s.canary.display()
    );
    s.sb.run(&cmd, T).await.unwrap();
    assert_canary(&s);
    assert!(!s.project.join("taken").exists());
}

#[tokio::test]
async fn the_environment_of_processes_outside_is_not_readable() {
    let s = setup();
    let victim = Victim::spawn();
    let pid = victim.pid();
    let cmd = format!(
        "cat /proc/{pid}/environ; tr '\\0' '\\n' < /proc/{pid}/environ; \
         python3 -c \"print(open('/proc/{pid}/environ','rb').read())\"; \
         head -c 100 /proc/{pid}/mem; cat /proc/{pid}/maps"
    );
    let out = s.sb.run(&cmd, T).await.unwrap();
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(!all.contains("sk-victim-secret"), "{all}");
    assert!(!all.contains("/usr/bin/sleep"), "maps readable: {all}");
}

#[tokio::test]
async fn processes_outside_cannot_be_signalled_limited_or_deprioritized() {
    let s = setup();
    let mut victim = Victim::spawn();
    let pid = victim.pid();
    let limits_before = victim.proc_file("limits");
    let stat_before = victim.proc_file("stat");
    let nice = |stat: &str| {
        stat.rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .nth(16)
            .map(str::to_owned)
    };
    let affinity = |v: &Victim| {
        v.proc_file("status")
            .lines()
            .find(|l| l.starts_with("Cpus_allowed_list"))
            .map(str::to_owned)
    };
    let affinity_before = affinity(&victim);
    let cmd = format!(
        "kill -9 {pid}; kill -STOP {pid}; prlimit --pid {pid} --nofile=1:1 --as=1000000:1000000; \
         renice -n 19 -p {pid}; taskset -p -c 0 {pid}; ionice -c 3 -p {pid}; \
         chrt -p -i 0 {pid}; \
         python3 -c \"import resource; resource.prlimit({pid}, resource.RLIMIT_NOFILE, (1, 1))\""
    );
    s.sb.run(&cmd, T).await.unwrap();
    assert!(victim.alive());
    assert_eq!(victim.proc_file("limits"), limits_before);
    assert_eq!(nice(&victim.proc_file("stat")), nice(&stat_before));
    assert!(victim.proc_file("status").contains("State:\tS"));
    assert_eq!(affinity(&victim), affinity_before);
}

async fn harness_cannot_be_limited_or_signalled(s: &Setup, parent: &str) {
    let me = std::process::id();
    let before = std::fs::read_to_string(format!("/proc/{me}/limits")).unwrap();
    let cmd = format!(
        "prlimit --pid {me} --nofile=3:3; prlimit --pid {parent} --nproc=1:1; kill -STOP {me}; \
         kill -9 {parent}; echo done"
    );
    let out = s.sb.run(&cmd, T).await.unwrap();
    assert!(out.stdout.contains("done"), "{out:?}");
    assert_eq!(
        std::fs::read_to_string(format!("/proc/{me}/limits")).unwrap(),
        before
    );
}

#[tokio::test]
async fn the_harness_itself_cannot_be_limited_or_signalled_in_fallback_mode() {
    harness_cannot_be_limited_or_signalled(&setup_fallback(), "$PPID").await;
}

/// In a world the command's parent is outside its pid namespace (`$PPID` is 0, and `kill -9 0`
/// would be the command's own group), and pid 1 is the world's init, which ignores signals from
/// inside.
#[tokio::test]
async fn the_harness_itself_cannot_be_limited_or_signalled() {
    let s = setup();
    harness_cannot_be_limited_or_signalled(&s, "1").await;
    let out = s.sb.run("echo $PPID", T).await.unwrap();
    assert_eq!(out.stdout, "0\n");
}

#[tokio::test]
async fn file_descriptors_the_harness_inherited_do_not_reach_commands() {
    let s = setup();
    // A descriptor without close-on-exec, the way a parent process may hand one to the harness.
    let file = std::fs::OpenOptions::new()
        .append(true)
        .open(&s.canary)
        .unwrap();
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor this test owns.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFD);
        assert!(flags >= 0);
        assert_eq!(libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC), 0);
    }
    let cmd = format!(
        "echo pwned >&{fd}; python3 -c \"import os; os.write({fd}, b'pwned')\"; \
         python3 -c \"import os; print(sorted(int(f) for f in os.listdir('/proc/self/fd')))\""
    );
    let out = s.sb.run(&cmd, T).await.unwrap();
    drop(file);
    assert_canary(&s);
    // Only stdin, stdout, stderr and the directory listdir itself opened.
    assert!(out.stdout.contains("[0, 1, 2, 3]"), "{out:?}");
}

/// Background job, nohup + disown, a double fork, a child that ignores SIGTERM/SIGHUP and
/// tries to leave the process group (and session); each carries `marker` in its command line.
fn escapers(marker: &str) -> String {
    format!(
        "sleep {marker} & \
         nohup sleep {marker} >/dev/null 2>&1 & disown; \
         python3 -c \"\nimport os, signal, time\n# {marker}\nif os.fork() == 0:\n    if os.fork() == 0:\n        signal.signal(signal.SIGTERM, signal.SIG_IGN)\n        signal.signal(signal.SIGHUP, signal.SIG_IGN)\n        for f in (os.setsid, lambda: os.setpgid(0, 0)):\n            try: f()\n            except OSError: pass\n        time.sleep(600)\n    os._exit(0)\n\"; \
         sleep 2; echo started"
    )
}

#[tokio::test]
async fn nothing_outlives_the_command_in_fallback_mode() {
    let s = setup_fallback();
    let m = support::marker(21);
    let out = s.sb.run(&escapers(&m), T).await.unwrap();
    assert!(out.stdout.contains("started"), "{out:?}");
    assert!(support::all_gone(&m), "a process outlived the command");

    // Same when the command times out.
    let m = support::marker(22);
    let cmd = format!("sleep {m} & sleep {m}");
    let out = s.sb.run(&cmd, Duration::from_secs(1)).await.unwrap();
    assert!(out.timed_out);
    assert!(support::all_gone(&m), "a process outlived the timeout");
}

/// In a world background processes outlive their command (servers must), but nothing outlives
/// the session: the same escapes end with [`Sandbox::end_session`].
#[tokio::test]
async fn nothing_outlives_the_session() {
    let s = setup();
    let m = support::marker(23);
    let out = s.sb.run(&escapers(&m), T).await.unwrap();
    assert!(out.stdout.contains("started"), "{out:?}");
    assert_eq!(support::host_pids_with(&m).len(), 3, "{out:?}");
    s.sb.end_session().await;
    assert!(support::all_gone(&m), "a process outlived the session");

    // A timeout kills the command's group, background jobs included.
    let m = support::marker(24);
    let cmd = format!("sleep {m} & sleep {m}");
    let out = s.sb.run(&cmd, Duration::from_secs(1)).await.unwrap();
    assert!(out.timed_out);
    assert!(support::all_gone(&m), "a process outlived the timeout");
}

const SOCKETS_SCRIPT: &str = "\
import ctypes, socket, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
params = ctypes.create_string_buffer(120)
r = libc.syscall(425, 8, params)
print('io_uring_setup', r, ctypes.get_errno())
for name, fam, typ, proto in [('netlink', socket.AF_NETLINK, socket.SOCK_RAW, 0), ('packet', socket.AF_PACKET, socket.SOCK_RAW, 0), ('inet6', socket.AF_INET6, socket.SOCK_STREAM, 0), ('inet', socket.AF_INET, socket.SOCK_DGRAM, 0), ('netlink-audit', socket.AF_NETLINK, socket.SOCK_RAW, 9), ('netlink-uevent', socket.AF_NETLINK, socket.SOCK_RAW, 15)]:
    try:
        socket.socket(fam, typ, proto)
        print(name, 'OPENED')
    except OSError as e:
        print(name, 'refused', e.errno)
try:
    socket.socketpair(socket.AF_INET, socket.SOCK_STREAM)
    print('inet pair OPENED')
except OSError as e:
    print('inet pair refused', e.errno)
";

#[tokio::test]
async fn seccomp_refuses_io_uring_raw_netlink_packet_and_inet_pairs_in_fallback_mode() {
    let s = setup_fallback();
    std::fs::write(s.project.join("net.py"), SOCKETS_SCRIPT).unwrap();
    let out = s.sb.run("python3 net.py", T).await.unwrap();
    assert!(
        out.stdout.contains("io_uring_setup -1 1\n"),
        "io_uring not refused with EPERM: {out:?}"
    );
    assert!(!out.stdout.contains("OPENED"), "{out:?}");
    assert_eq!(out.stdout.matches("refused").count(), 7, "{out:?}");
}

/// In a world the network namespace holds only loopback, so inet sockets are allowed, and so is
/// NETLINK_ROUTE (interface listings); raw packet sockets, other netlink families and io_uring
/// stay refused.
#[tokio::test]
async fn seccomp_refuses_io_uring_raw_packet_and_other_netlink_in_a_world() {
    let s = setup();
    std::fs::write(s.project.join("net.py"), SOCKETS_SCRIPT).unwrap();
    let out = s.sb.run("python3 net.py", T).await.unwrap();
    assert!(
        out.stdout.contains("io_uring_setup -1 1\n"),
        "io_uring not refused with EPERM: {out:?}"
    );
    for refused in [
        "packet refused 1",
        "netlink-audit refused 1",
        "netlink-uevent refused 1",
        "inet pair refused",
    ] {
        assert!(out.stdout.contains(refused), "{refused}: {out:?}");
    }
    for opened in ["inet OPENED", "inet6 OPENED", "netlink OPENED"] {
        assert!(out.stdout.contains(opened), "{opened}: {out:?}");
    }
}

#[tokio::test]
async fn abstract_unix_sockets_outside_are_not_reachable() {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixListener};
    let s = setup();
    let name = format!("loopwright-attack-{}", std::process::id());
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let listener = UnixListener::bind_addr(&addr).unwrap();
    listener.set_nonblocking(true).unwrap();
    let cmd = format!(
        "python3 -c \"import socket; s = socket.socket(socket.AF_UNIX); s.connect('\\0{name}'); s.send(b'x'); print('CONNECTED')\""
    );
    let out = s.sb.run(&cmd, T).await.unwrap();
    assert!(!out.stdout.contains("CONNECTED"), "{out:?}");
    assert!(listener.accept().is_err());
}

#[tokio::test]
async fn commands_hold_no_capability_beyond_file_access() {
    let s = setup();
    let out = s
        .sb
        .run(
            "grep -E '^Cap(Eff|Prm|Bnd|Amb)' /proc/self/status; \
             python3 -c \"import socket; socket.sethostname(socket.gethostname()); print('HOSTNAME SET')\"; \
             python3 -c \"import time; time.clock_settime(time.CLOCK_REALTIME, time.time()); print('CLOCK SET')\"",
            T,
        )
        .await
        .unwrap();
    assert!(!out.stdout.contains("HOSTNAME SET"), "{out:?}");
    assert!(!out.stdout.contains("CLOCK SET"), "{out:?}");
    // Only CAP_CHOWN, CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_FSETID at most.
    let allowed: u64 = 0b1_1111;
    for line in out.stdout.lines().filter(|l| l.starts_with("Cap")) {
        let hex = line.split_whitespace().nth(1).unwrap();
        let caps = u64::from_str_radix(hex, 16).unwrap();
        assert_eq!(caps & !allowed, 0, "{line}");
    }
}

#[tokio::test]
async fn hostile_git_settings_stay_confined_under_the_harness_git_command() {
    let s = setup();
    let c = s.canary.display();
    let init =
        s.sb.run(
            "git init -q . && echo a > a.txt && \
             git -c user.name=t -c user.email=t@t commit -q --allow-empty -m init",
            T,
        )
        .await
        .unwrap();
    assert_eq!(init.exit_code, Some(0), "{init:?}");
    // What a script (not the policy, which refuses literal writes into .git) could plant.
    let plant = format!(
        "import os\n\
         open('evil.sh', 'w').write('#!/bin/sh\\necho pwned > {c}\\ntouch ran-$1\\ncat\\n')\n\
         os.chmod('evil.sh', 0o755)\n\
         for hook in ('pre-commit', 'post-commit', 'commit-msg', 'pre-auto-gc'):\n\
         \x20   os.symlink(os.path.abspath('evil.sh'), '.git/hooks/' + hook)\n\
         open('.git/config', 'a').write('[core]\\n\\tfsmonitor = ./evil.sh fsmonitor\\n\\thooksPath = .git/hooks\\n[filter \"x\"]\\n\\tclean = ./evil.sh filter\\n')\n\
         open('.gitattributes', 'w').write('* filter=x\\n')\n"
    );
    std::fs::write(s.project.join("plant.py"), plant).unwrap();
    let out = s.sb.run("python3 plant.py", T).await.unwrap();
    assert_eq!(out.exit_code, Some(0), "{out:?}");
    std::fs::write(s.project.join("b.txt"), "b\n").unwrap();
    // The harness's command line (crates/agent/src/run/git.rs).
    let git = "git -c core.hooksPath=/dev/null -c commit.gpgsign=false -c user.name=loopwright \
               -c user.email=loopwright@localhost -c core.fsmonitor=false";
    for args in [
        "add -A",
        "status --porcelain",
        "commit -q -m x",
        "log --oneline -n 5",
    ] {
        s.sb.run(&format!("{git} {args}"), T).await.unwrap();
    }
    assert_canary(&s);
    // Hooks and fsmonitor are switched off; the filter driver is the one thing that runs, and
    // it ran confined.
    assert!(!s.project.join("ran-fsmonitor").exists());
    assert!(!s.project.join("ran-").exists());
}
