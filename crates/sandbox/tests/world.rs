//! The world: what a session's commands can see and reach, how long what they start lives, and
//! the limits they run under. Each test builds what a hostile (or merely careless) command
//! would use, then asserts the harm did not happen on the host.
//!
//! Run as root, every test here runs again as uid 65534 (`as_an_ordinary_user`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sandbox::{NamespaceMode, ResourceLimits, Sandbox, SandboxConfig};
use support::{all_gone, host_pids_with, is_root, marker, one_running};

const T: Duration = Duration::from_secs(60);

struct World {
    _project: tempfile::TempDir,
    project: PathBuf,
    sb: Sandbox,
}

fn world_with(adjust: impl FnOnce(&mut SandboxConfig)) -> World {
    let project = tempfile::tempdir().unwrap();
    let mut config = SandboxConfig::new(project.path());
    adjust(&mut config);
    let sb = Sandbox::new(config).unwrap();
    assert!(
        sb.confinement().namespaces,
        "namespaces unavailable: {:?}",
        sb.fallback_reason()
    );
    World {
        project: project.path().canonicalize().unwrap(),
        _project: project,
        sb,
    }
}

fn world() -> World {
    world_with(|_| {})
}

async fn run(w: &World, cmd: &str) -> sandbox::ExecOutput {
    w.sb.run(cmd, T).await.unwrap()
}

fn all(out: &sandbox::ExecOutput) -> String {
    format!("{}{}", out.stdout, out.stderr)
}

#[test]
fn as_an_ordinary_user() {
    support::rerun_as_nobody("as_an_ordinary_user");
}

#[tokio::test]
async fn the_confinement_is_reported() {
    let w = world();
    let c = w.sb.confinement();
    assert!(c.namespaces && c.pid_namespace && c.network_namespace);
    assert_eq!(w.sb.fallback_reason(), None);
    let project = tempfile::tempdir().unwrap();
    let mut config = SandboxConfig::new(project.path());
    config.namespaces = NamespaceMode::Off;
    let off = Sandbox::new(config).unwrap();
    assert_eq!(off.confinement(), sandbox::Confinement::default());
}

#[tokio::test]
async fn a_unix_socket_outside_the_project_is_unreachable() {
    use std::os::unix::net::UnixListener;
    let w = world();
    // An ssh-agent or docker.sock stand-in in another directory.
    let agent_dir = tempfile::tempdir().unwrap();
    let path = agent_dir.path().canonicalize().unwrap().join("agent.sock");
    let listener = UnixListener::bind(&path).unwrap();
    listener.set_nonblocking(true).unwrap();
    let p = path.display();
    let out = run(
        &w,
        &format!(
            "python3 -c \"import socket; s = socket.socket(socket.AF_UNIX); s.connect('{p}'); s.send(b'x'); print('CONNECTED')\"; \
             ls -la '{}'; grep -c agent.sock /proc/net/unix",
            agent_dir.path().display()
        ),
    )
    .await;
    assert!(!out.stdout.contains("CONNECTED"), "{out:?}");
    assert!(listener.accept().is_err(), "a connection arrived");
    assert!(out.stdout.trim_end().ends_with('0'), "{out:?}");
}

#[tokio::test]
async fn proc_shows_only_the_runs_processes() {
    std::env::set_var("WORLD_TEST_API_KEY", "sk-world-secret");
    let w = world();
    let victim_marker = marker(1);
    let mut victim = std::process::Command::new("sleep")
        .arg(&victim_marker)
        .env("ANTHROPIC_API_KEY", "sk-victim-secret")
        .spawn()
        .unwrap();
    let vpid = victim.id();
    let out = run(
        &w,
        &format!(
            "ls /proc | grep -c '^[0-9]'; ps -e -o pid=,args=; cat /proc/{vpid}/cmdline /proc/{vpid}/environ; \
             cat /proc/1/environ; python3 -c \"print(open('/proc/1/mem','rb').read(10))\"; \
             grep -ao 'sk-[a-z-]*' /proc/1/environ /proc/1/cmdline"
        ),
    )
    .await;
    victim.kill().unwrap();
    victim.wait().unwrap();
    let text = all(&out);
    let count: usize = out.stdout.lines().next().unwrap().trim().parse().unwrap();
    // init, bash, and the few processes of the pipeline.
    assert!(count <= 6, "{count} processes visible: {text}");
    assert!(!text.contains(&victim_marker), "{text}");
    assert!(!text.contains("sk-victim-secret"), "{text}");
    assert!(!text.contains("sk-world-secret"), "{text}");
    assert!(
        text.contains("/proc/1/environ: Permission denied"),
        "{text}"
    );
}

fn fake_home() -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let files = [
        (
            ".cargo/credentials.toml",
            "[registry]\ntoken = \"cio-secret-token\"\n",
        ),
        (
            ".config/git/credentials",
            "https://u:gh-secret-token@github.com\n",
        ),
        (
            ".gitconfig",
            "[user]\n\tname = someone\n[github]\n\ttoken = gitconfig-secret-token\n",
        ),
        (
            ".ssh/id_rsa",
            "-----BEGIN OPENSSH PRIVATE KEY----- ssh-secret-key\n",
        ),
        (
            ".npmrc",
            "//registry.npmjs.org/:_authToken=npm-secret-token\n",
        ),
        (
            ".local/state/loopwright/other/ledger.jsonl",
            "other-project-ledger\n",
        ),
        (".local/share/keyrings/login.keyring", "keyring-secret\n"),
        (".cache/pip/secret", "cache-secret\n"),
        (".cargo/bin/mytool", "#!/bin/sh\necho toolchain-visible\n"),
        (".local/bin/localtool", "#!/bin/sh\necho local-visible\n"),
    ];
    for (rel, content) in files {
        let path = h.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
    }
    for rel in [".ssh/id_rsa", ".cargo/credentials.toml"] {
        std::fs::set_permissions(h.join(rel), std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    for rel in [".cargo/bin/mytool", ".local/bin/localtool"] {
        std::fs::set_permissions(h.join(rel), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    home
}

#[tokio::test]
async fn home_credentials_and_other_projects_are_absent() {
    let home = fake_home();
    let h = home.path().canonicalize().unwrap();
    let w = world_with(|c| c.home = Some(h.clone()));
    let out = run(
        &w,
        "echo HOME=$HOME; ls -A ~ ~/.cargo ~/.local; \
         cat ~/.cargo/credentials.toml ~/.config/git/credentials ~/.ssh/id_rsa ~/.npmrc \
             ~/.local/state/loopwright/other/ledger.jsonl ~/.local/share/keyrings/login.keyring \
             ~/.cache/pip/secret; \
         git config --global --list; grep -r secret ~ 2>/dev/null; \
         ~/.cargo/bin/mytool; ~/.local/bin/localtool; echo CARGO_HOME=$CARGO_HOME",
    )
    .await;
    let text = all(&out);
    for secret in [
        "cio-secret-token",
        "gh-secret-token",
        "gitconfig-secret-token",
        "ssh-secret-key",
        "npm-secret-token",
        "other-project-ledger",
        "keyring-secret",
        "cache-secret",
    ] {
        assert!(!text.contains(secret), "{secret} visible: {text}");
    }
    assert!(text.contains(&format!("HOME={}", h.display())), "{text}");
    assert!(text.contains("toolchain-visible"), "{text}");
    assert!(text.contains("local-visible"), "{text}");
    assert!(text.contains("user.name=loopwright agent"), "{text}");
    assert!(text.contains("CARGO_HOME=/tmp/cargo-home"), "{text}");
}

#[tokio::test]
async fn root_only_files_devices_and_shadow_are_unreadable() {
    let w = world();
    // A root-only (or, as an ordinary user, owner-only) file in a place the harness can read.
    let home = fake_home();
    let secret = home.path().join(".ssh/id_rsa");
    let out = run(
        &w,
        &format!(
            "cat /etc/shadow /etc/gshadow; ls /etc/ssl/private; cat '{}'; \
             for d in /dev/vda /dev/sda /dev/nvme0n1 /dev/mem /dev/kmsg; do head -c 1 $d && echo READ $d; done; \
             cat /proc/kmsg /proc/slabinfo /proc/vmallocinfo | head -c 100; \
             ls /sys /root/.ssh /var /run /srv /mnt /home",
            secret.display()
        ),
    )
    .await;
    let text = all(&out);
    assert!(!text.contains("root:"), "shadow readable: {text}");
    assert!(!text.contains("ssh-secret-key"), "{text}");
    assert!(!text.contains("READ /dev"), "{text}");
    assert!(!text.contains("snakeoil"), "{text}");
    assert!(out.stdout.is_empty(), "{out:?}");
    let out = run(&w, "ls /dev").await;
    let dev: Vec<&str> = out.stdout.lines().collect();
    for name in ["null", "zero", "urandom", "shm", "pts"] {
        assert!(dev.contains(&name), "/dev lacks {name}: {dev:?}");
    }
    for absent in ["vda", "sda", "mem", "kmsg", "loop0"] {
        assert!(!dev.contains(&absent), "/dev has {absent}: {dev:?}");
    }
    if is_root() {
        eprintln!("checked as root");
    }
}

#[tokio::test]
async fn metadata_outside_the_project_cannot_change() {
    let home = fake_home();
    let h = home.path().canonicalize().unwrap();
    let w = world_with(|c| c.home = Some(h.clone()));
    let tool = h.join(".cargo/bin/mytool");
    let targets = [
        "/etc/hostname".to_string(),
        tool.display().to_string(),
        "/dev/null".to_string(),
        "/usr/bin/env".to_string(),
    ];
    let before: Vec<_> = targets
        .iter()
        .map(|t| {
            std::fs::metadata(t)
                .map(|m| (m.mode(), m.uid(), m.mtime()))
                .ok()
        })
        .collect();
    let script = format!(
        "import os\n\
         for t in {targets:?}:\n\
         \x20   for name, f in [('utime', lambda: os.utime(t, (0, 0))), ('xattr', lambda: os.setxattr(t, 'user.x', b'1')), ('chmod', lambda: os.chmod(t, 0o6777)), ('chown', lambda: os.chown(t, 0, 0))]:\n\
         \x20       try:\n\
         \x20           f(); print('CHANGED', name, t)\n\
         \x20       except OSError as e:\n\
         \x20           print('refused', name, t, e.errno)\n"
    );
    std::fs::write(w.project.join("meta.py"), script).unwrap();
    let out = run(&w, "python3 meta.py; touch -d 2001-01-01 /etc/hostname").await;
    assert!(!out.stdout.contains("CHANGED"), "{out:?}");
    let after: Vec<_> = targets
        .iter()
        .map(|t| {
            std::fs::metadata(t)
                .map(|m| (m.mode(), m.uid(), m.mtime()))
                .ok()
        })
        .collect();
    assert_eq!(before, after);
    // Inside the project, metadata is the agent's to change.
    let out = run(&w, "touch f && chmod 600 f && stat -c %a f").await;
    assert_eq!(out.stdout.trim(), "600", "{out:?}");
}

#[tokio::test]
async fn a_server_is_reachable_from_a_later_command_and_gone_after_the_session() {
    let w = world();
    let m = marker(2);
    // Started in the background with no redirection, as a dev server from init.sh would be.
    // The marker is the script's argument, so the server carries it in its command line.
    let script = "import http.server\n\
         h = http.server.HTTPServer(('127.0.0.1', 8765), http.server.SimpleHTTPRequestHandler)\n\
         print('serving', flush=True)\n\
         h.serve_forever()\n";
    std::fs::write(w.project.join("server.py"), script).unwrap();
    std::fs::write(w.project.join("hello.txt"), "hello from the world\n").unwrap();
    let out = run(&w, &format!("python3 server.py {m} &")).await;
    assert_eq!(out.exit_code, Some(0), "{out:?}");
    let fetch = "python3 -c \"\nimport time, urllib.request\nfor i in range(200):\n    try:\n        print(urllib.request.urlopen('http://127.0.0.1:8765/hello.txt', timeout=5).read().decode()); break\n    except OSError as e:\n        err = e; time.sleep(0.1)\nelse:\n    print('FAILED', err)\n\"";
    let out = run(&w, fetch).await;
    assert!(out.stdout.contains("hello from the world"), "{out:?}");
    // Not from the host's network namespace.
    assert!(TcpStream::connect(("127.0.0.1", 8765))
        .map(|mut s| {
            let _ = s.write_all(b"GET /hello.txt HTTP/1.0\r\n\r\n");
            let mut body = String::new();
            let _ = s.read_to_string(&mut body);
            !body.contains("hello from the world")
        })
        .unwrap_or(true));
    assert!(!host_pids_with(&m).is_empty(), "the server is not running");
    w.sb.end_session().await;
    assert!(all_gone(&m), "the server outlived the session");
    let out = run(&w, fetch).await;
    assert!(out.stdout.contains("FAILED"), "{out:?}");
}

#[tokio::test]
async fn only_loopback_exists_and_the_hosts_loopback_is_unreachable() {
    let w = world();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let out = run(
        &w,
        &format!(
            "cat /proc/net/dev; \
             python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=3); print('CONNECTED')\"; \
             python3 -c \"import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(); print('BOUND')\""
        ),
    )
    .await;
    let interfaces: Vec<&str> = out
        .stdout
        .lines()
        .filter_map(|l| l.split_once(':').map(|(name, _)| name.trim()))
        .filter(|name| !name.contains('|'))
        .collect();
    assert_eq!(interfaces, vec!["lo"], "{out:?}");
    assert!(!out.stdout.contains("CONNECTED"), "{out:?}");
    assert!(out.stdout.contains("BOUND"), "{out:?}");
    assert!(listener.accept().is_err(), "a connection reached the host");
}

#[tokio::test]
async fn background_processes_live_until_the_session_ends() {
    let w = world();
    let m = marker(3);
    let out = run(
        &w,
        &format!("sleep {m} > /dev/null 2>&1 & echo $! > bg.pid"),
    )
    .await;
    assert_eq!(out.exit_code, Some(0), "{out:?}");
    assert!(one_running(&m), "not running after its command");
    // A later command sees it, by its pid in the world, and may signal it.
    let out = run(
        &w,
        "kill -0 $(cat bg.pid) && echo ALIVE; ps -e -o args= | grep -c '^sleep'",
    )
    .await;
    assert!(out.stdout.contains("ALIVE"), "{out:?}");
    let m2 = marker(4);
    run(&w, &format!("setsid sleep {m2} > /dev/null 2>&1 &")).await;
    let out = run(&w, &format!("pkill -f 'slee[p] {m2}' && echo KILLED")).await;
    assert!(out.stdout.contains("KILLED"), "{out:?}");
    assert!(all_gone(&m2));
    assert_eq!(host_pids_with(&m).len(), 1);
    w.sb.end_session().await;
    assert!(all_gone(&m), "a background process outlived end_session");
    // The next command gets a fresh world.
    let out = run(&w, "ps -e -o args= | grep -c '^sleep'; echo fresh").await;
    assert!(out.stdout.starts_with("0\n"), "{out:?}");
}

#[tokio::test]
async fn background_processes_die_when_the_sandbox_is_dropped() {
    let w = world();
    let m = marker(5);
    run(&w, &format!("nohup sleep {m} > /dev/null 2>&1 & disown")).await;
    assert!(one_running(&m));
    drop(w);
    assert!(all_gone(&m), "a background process outlived the sandbox");
}

#[tokio::test]
async fn a_background_process_holding_the_output_does_not_hold_the_command() {
    let w = world();
    let m = marker(6);
    let out = run(&w, &format!("echo before; sleep {m} & echo after")).await;
    assert_eq!(out.exit_code, Some(0));
    assert!(
        out.stdout.contains("before\n") && out.stdout.contains("after\n"),
        "{out:?}"
    );
    assert!(
        out.stderr.contains("still holds its output open"),
        "{out:?}"
    );
    assert!(one_running(&m), "the background process died");
    w.sb.end_session().await;
    assert!(all_gone(&m));
}

/// An example binary of this crate, (re)built first when this process may write the target
/// directory (`cargo test --test world` alone does not build examples).
fn example(name: &str) -> Option<PathBuf> {
    let exe = std::env::current_exe().unwrap();
    let examples = exe.parent()?.parent()?.join("examples");
    let path = examples.join(name);
    let dir = std::ffi::CString::new(examples.as_os_str().as_encoded_bytes()).ok()?;
    // SAFETY: access(2) on a C string.
    let writable = unsafe { libc::access(dir.as_ptr(), libc::W_OK) } == 0;
    if let (Some(cargo), true) = (std::env::var_os("CARGO"), writable) {
        let status = std::process::Command::new(cargo)
            .args(["build", "-q", "-p", "sandbox", "--example", name])
            .status()
            .ok()?;
        assert!(status.success(), "building the {name} example failed");
    }
    path.exists().then_some(path)
}

#[test]
fn background_processes_die_when_the_harness_is_sigkilled() {
    let Some(example) = example("sigkilled_harness") else {
        panic!(
            "the sigkilled_harness example is not built; run `cargo build -p sandbox --examples`"
        );
    };
    let project = tempfile::tempdir().unwrap();
    let m = marker(7);
    let ready = project.path().join("ready");
    /// Kills the stand-in harness however the test ends.
    struct Harness(std::process::Child);
    impl Drop for Harness {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    // The marker goes by the environment: the harness's command line is also its init's (a
    // fork) and the intermediate processes'.
    let mut harness = Harness(
        std::process::Command::new(example)
            .arg(project.path())
            .arg(&ready)
            .env("SLEEP_SECONDS", &m)
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(
        support::wait_for_file(&ready),
        "the stand-in harness never got ready"
    );
    assert_eq!(
        host_pids_with(&m).len(),
        1,
        "the background sleep is not running"
    );
    harness.0.kill().unwrap(); // SIGKILL
    harness.0.wait().unwrap();
    assert!(
        all_gone(&m),
        "a background process outlived its SIGKILLed harness"
    );
}

#[tokio::test]
async fn a_command_whose_run_is_dropped_takes_its_group_along() {
    let w = world();
    let m = marker(9);
    let cmd = format!("sleep {m}; echo done");
    let run = w.sb.run(&cmd, T);
    tokio::select! {
        out = run => panic!("the command ended: {out:?}"),
        () = async {
            while host_pids_with(&m).is_empty() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        } => {}
    }
    // The run future is dropped here, mid-command (as when the harness is interrupted).
    assert!(all_gone(&m), "the command outlived its dropped run");
}

#[tokio::test]
async fn a_fork_bomb_is_contained_and_the_harness_stays_responsive() {
    let w = world_with(|c| {
        c.limits = ResourceLimits {
            processes_per_command: Some(64),
            processes_per_run: Some(128),
            ..ResourceLimits::default()
        }
    });
    let ticks = Arc::new(AtomicUsize::new(0));
    let ticker = {
        let ticks = ticks.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(50)).await;
                ticks.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    let out =
        w.sb.run(
            "bomb() { bomb | bomb & }; bomb; sleep 5",
            Duration::from_secs(8),
        )
        .await
        .unwrap();
    ticker.abort();
    assert!(
        ticks.load(Ordering::Relaxed) > 0,
        "the harness's runtime stalled"
    );
    assert!(
        out.stderr.contains("limit of"),
        "no note about the process limit: {out:?}"
    );
    w.sb.end_session().await;
    let out = run(&w, "echo alive").await;
    assert_eq!(out.stdout, "alive\n", "{out:?}");
}

#[tokio::test]
async fn a_ten_gigabyte_allocation_is_contained() {
    let w = world_with(|c| {
        c.limits = ResourceLimits {
            memory_per_command: Some(256 << 20),
            ..ResourceLimits::default()
        }
    });
    let out = run(
        &w,
        "python3 -c \"b = b'x' * (10 * 2**30); print('ALLOCATED', len(b))\"",
    )
    .await;
    assert!(!out.stdout.contains("ALLOCATED"), "{out:?}");
    assert_ne!(out.exit_code, Some(0));
    assert!(
        out.stderr.contains("256 MiB"),
        "no note about the memory limit: {out:?}"
    );
    let out = run(&w, "echo alive").await;
    assert_eq!(out.stdout, "alive\n");
}

#[tokio::test]
async fn a_disk_filler_stops_at_the_file_size_limit() {
    let w = world_with(|c| {
        c.limits = ResourceLimits {
            file_size: Some(16 << 20),
            ..ResourceLimits::default()
        }
    });
    let out = run(&w, "head -c 200000000 /dev/zero > big; ls -l big").await;
    let size = std::fs::metadata(w.project.join("big")).unwrap().len();
    assert!(size <= 16 << 20, "wrote {size} bytes");
    assert!(out.stderr.contains("file-size limit (16 MiB)"), "{out:?}");
}

#[tokio::test]
async fn a_kernel_denial_gets_a_note() {
    let w = world();
    let out = run(&w, "touch /usr/x").await;
    assert!(
        out.stderr.contains("[sandbox] \"read-only file system\""),
        "{out:?}"
    );
    assert_eq!(out.stderr.matches("[sandbox]").count(), 1, "{out:?}");
    let out = run(&w, "cat /etc/shadow").await;
    assert!(
        out.stderr.contains("[sandbox] \"permission denied\""),
        "{out:?}"
    );
    let out = run(&w, "echo fine").await;
    assert!(!out.stderr.contains("[sandbox]"), "{out:?}");
}

#[tokio::test]
async fn read_only_paths_in_the_project_cannot_be_written() {
    let project = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(project.path().join(".git/hooks")).unwrap();
    std::fs::write(project.path().join("frozen_test.py"), "assert True\n").unwrap();
    let mut config = SandboxConfig::new(project.path());
    config.read_only = vec![
        PathBuf::from(".git"),
        PathBuf::from("frozen_test.py"),
        PathBuf::from("missing.txt"),
    ];
    let sb = Sandbox::new(config).unwrap();
    let out = sb
        .run(
            "echo x > .git/hooks/pre-commit; echo x >> frozen_test.py; rm -f frozen_test.py; echo ok > mine.txt; cat mine.txt",
            T,
        )
        .await
        .unwrap();
    assert!(!project.path().join(".git/hooks/pre-commit").exists());
    assert_eq!(
        std::fs::read_to_string(project.path().join("frozen_test.py")).unwrap(),
        "assert True\n"
    );
    assert!(out.stdout.contains("ok"), "{out:?}");
    assert!(out.stderr.contains("files the harness froze"), "{out:?}");
}

#[tokio::test]
async fn tmp_is_the_private_temp_dir() {
    let w = world();
    let name = format!("loopwright-world-test-{}", std::process::id());
    let out = run(
        &w,
        &format!("echo $TMPDIR; echo hi > /tmp/{name}; cat /tmp/{name}; python3 -c \"import tempfile; print(tempfile.gettempdir())\""),
    )
    .await;
    assert_eq!(out.stdout, "/tmp\nhi\n/tmp\n", "{out:?}");
    assert!(w.sb.temp_dir().join(&name).exists());
    assert!(!Path::new("/tmp").join(&name).exists());
}

#[tokio::test]
async fn multiprocessing_and_posix_semaphores_work() {
    let w = world();
    let out = run(
        &w,
        "python3 -c 'import multiprocessing as m; print(m.Pool(2).map(abs,[-1]))'",
    )
    .await;
    assert_eq!(out.stdout, "[1]\n", "{out:?}");
}

#[tokio::test]
async fn a_listener_inside_the_world_is_reachable_from_commands() {
    let w = world();
    let (listener, ended) = w.sb.world_listener(0).await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut conn, _) = listener.accept().unwrap();
        let mut got = String::new();
        conn.read_to_string(&mut got).unwrap();
        got
    });
    let out = run(
        &w,
        &format!("python3 -c \"import socket; s = socket.create_connection(('127.0.0.1', {port})); s.sendall(b'from inside'); s.close()\""),
    )
    .await;
    assert_eq!(out.exit_code, Some(0), "{out:?}");
    assert_eq!(server.join().unwrap(), "from inside");
    assert!(!ended.is_ended());
    w.sb.end_session().await;
    tokio::time::timeout(T, ended.wait()).await.unwrap();
}

#[tokio::test]
async fn every_new_world_gets_a_listener_and_proxy_variables() {
    let w = world_with(|c| c.proxy_port = Some(3128));
    let calls = Arc::new(AtomicUsize::new(0));
    let handler: sandbox::ListenerHandler = {
        let calls = calls.clone();
        Arc::new(move |listener: TcpListener, _ended| {
            assert_eq!(listener.local_addr().unwrap().port(), 3128);
            calls.fetch_add(1, Ordering::Relaxed);
        })
    };
    w.sb.serve_in_world(3128, handler).await;
    assert_eq!(calls.load(Ordering::Relaxed), 1);
    w.sb.end_session().await;
    let out = run(&w, "echo $HTTPS_PROXY $npm_config_proxy $NO_PROXY").await;
    assert_eq!(calls.load(Ordering::Relaxed), 2);
    assert_eq!(
        out.stdout,
        "http://127.0.0.1:3128 http://127.0.0.1:3128 localhost,127.0.0.1,::1\n"
    );
}

#[tokio::test]
async fn the_init_survives_signals_from_inside() {
    let w = world();
    let m = marker(8);
    run(&w, &format!("sleep {m} > /dev/null 2>&1 &")).await;
    let out = run(&w, "kill -9 1; kill -KILL 1; echo tried").await;
    assert!(out.stdout.contains("tried"), "{out:?}");
    assert!(one_running(&m), "the world was torn down");
    let out = run(&w, "echo still").await;
    assert_eq!(out.stdout, "still\n");
}

#[tokio::test]
async fn python_and_locale_variables_of_the_harness_do_not_reach_commands() {
    std::env::set_var("PYTHONSTARTUP", "/nonexistent/evil.py");
    std::env::set_var("PYTHONPATH", "/nonexistent");
    std::env::set_var("LC_MESSAGES", "/nonexistent/locale");
    let w = world();
    let out = run(&w, "env | grep -E '^(PYTHON|LC_)' || echo none").await;
    assert_eq!(out.stdout, "none\n", "{out:?}");
}

/// Where the kernel refuses namespaces (here: a harness that itself runs inside a world, whose
/// seccomp filter refuses `clone(CLONE_NEWUSER)`), the sandbox falls back, says why, and tells
/// the model once.
#[tokio::test]
async fn without_namespaces_the_sandbox_falls_back_and_says_so() {
    let Some(probe) = example("probe") else {
        panic!("the probe example is not built; run `cargo build -p sandbox --examples`");
    };
    let examples = probe.parent().unwrap().to_path_buf();
    let outer = world_with(|c| c.extra_read = vec![examples]);
    let out = outer
        .sb
        .run(
            &format!("'{}' 'echo first' 'echo second'", probe.display()),
            T,
        )
        .await
        .unwrap();
    let text = all(&out);
    assert!(text.contains("namespaces: false"), "{text}");
    assert!(text.contains("could not create the namespaces"), "{text}");
    assert_eq!(
        text.matches("[sandbox] this machine does not allow the sandbox's namespaces")
            .count(),
        1,
        "{text}"
    );
}

/// `allow_network` without a proxy keeps the host's network, as before worlds.
#[tokio::test]
async fn allow_network_without_a_proxy_keeps_the_hosts_network() {
    let w = world_with(|c| c.allow_network = true);
    assert!(!w.sb.confinement().network_namespace);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let out = run(
        &w,
        &format!("python3 -c \"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=5); print('CONNECTED')\""),
    )
    .await;
    assert!(out.stdout.contains("CONNECTED"), "{out:?}");
}

/// Paths made read-only while a world runs (the frozen files, after planning) are read-only
/// from the next world on.
#[tokio::test]
async fn read_only_paths_set_later_apply_from_the_next_session() {
    let w = world();
    std::fs::write(w.project.join("frozen.txt"), "frozen\n").unwrap();
    w.sb.set_read_only(vec![PathBuf::from("frozen.txt")])
        .unwrap();
    let out = run(&w, "echo same-session >> frozen.txt && echo WROTE").await;
    assert!(out.stdout.contains("WROTE"), "{out:?}");
    w.sb.end_session().await;
    let out = run(&w, "echo next-session >> frozen.txt && echo WROTE").await;
    assert!(!out.stdout.contains("WROTE"), "{out:?}");
    assert_eq!(
        std::fs::read_to_string(w.project.join("frozen.txt")).unwrap(),
        "frozen\nsame-session\n"
    );
}

/// A stand-in registry on the host's 127.0.0.2 (127.0.0.1 is in `NO_PROXY`): answers every
/// request with `registry says hi`.
fn stand_in_registry() -> u16 {
    let listener = TcpListener::bind("127.0.0.2:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                let body = "registry says hi";
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            });
        }
    });
    port
}

/// The egress proxy started by the sandbox: an allowed host is reached through it from
/// inside the world, a denied one is refused with a note the model reads, every connection is
/// kept for the harness's events, and the next session's world gets the proxy too.
#[tokio::test]
async fn commands_reach_allowed_hosts_only_through_the_egress_proxy() {
    if std::process::Command::new("curl")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: curl is not installed");
        return;
    }
    let port = stand_in_registry();
    let w = world_with(|c| {
        c.network = sandbox::NetworkMode::Registries;
        c.allow_domains = vec![format!("127.0.0.2:{port}")];
        c.proxy_port = Some(sandbox::PROXY_PORT);
    });
    assert!(w.sb.start_egress_proxy().await.unwrap());
    for round in 0..2 {
        let out = run(&w, &format!("curl -sS http://127.0.0.2:{port}/simple/six/")).await;
        assert_eq!(
            out.stdout,
            "registry says hi",
            "round {round}: {}",
            all(&out)
        );
        let out = run(
            &w,
            "curl -s -o /dev/null -w '%{http_code}' http://denied.invalid/x",
        )
        .await;
        assert_eq!(out.stdout, "403", "round {round}: {}", all(&out));
        assert!(
            out.stderr
                .contains("egress proxy refused denied.invalid:80"),
            "round {round}: {}",
            all(&out)
        );
        // Nothing goes around the proxy: a direct connection to the host's address fails.
        let out = run(
            &w,
            &format!("curl -sS --noproxy '*' --max-time 5 http://127.0.0.2:{port}/"),
        )
        .await;
        assert_ne!(out.exit_code, Some(0), "round {round}: {}", all(&out));
        let events = w.sb.take_proxy_events();
        assert!(
            events
                .iter()
                .any(|e| e.allowed && e.port == port && e.bytes_down > 0),
            "round {round}: {events:?}"
        );
        assert!(
            events
                .iter()
                .any(|e| !e.allowed && e.host == "denied.invalid"),
            "round {round}: {events:?}"
        );
        w.sb.end_session().await;
    }
}
