//! Headless Chromium inside the confinement, as a feature's browser check runs it: a page that
//! scripts a form and writes a verdict into its own DOM, read back through `--dump-dom`; and the
//! same against an app served on 127.0.0.1 by a server started in the same command. Each in a
//! world (the default) and in the fallback confinement. Skipped, with a message, when Chromium
//! is not installed (`.ci/run` installs Debian's `chromium`).
//!
//! What Chromium needs from the sandbox, found with these tests: its own sandbox off
//! (`--no-sandbox`: it needs user namespaces or a setuid helper, which seccomp refuses); a
//! profile in `$TMPDIR` (`--user-data-dir`); shared memory files in `$TMPDIR` rather than the
//! host's `/dev/shm`, which is not writable in the fallback confinement
//! (`--disable-dev-shm-usage`; a world's `/dev/shm` is its own tmpfs and works either way);
//! AF_INET sockets on loopback for an app server (a world's own network namespace, or
//! `network = "open"` in the fallback); `XDG_CONFIG_HOME` and `XDG_CACHE_HOME` in `$TMPDIR`, or
//! its crash reporter's database and caches go to `$HOME`. The crash reporter's handler fails
//! to start in the fallback (`setsid` is refused) and the browser carries on without it; in a
//! world it starts and ends with the browser. No `/sys` is needed. Nothing in the sandbox had to
//! change for Chromium.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::time::Duration;

use sandbox::{NamespaceMode, Sandbox, SandboxConfig};

/// Chromium as a browser check runs it (as `tests/browser_check.py` of the todo-web demo does):
/// its crash reporter's database and caches in the temp dir too.
const CHROMIUM: &str = "XDG_CONFIG_HOME=\"$TMPDIR/config\" XDG_CACHE_HOME=\"$TMPDIR/cache\" \
    chromium --headless --no-sandbox --disable-gpu --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --disable-extensions --no-proxy-server --disable-dev-shm-usage \
    --user-data-dir=\"$(mktemp -d)\" --virtual-time-budget=5000";

/// A page that types into an input, clicks a button and checks what the click did.
const PAGE: &str = r#"<!doctype html>
<pre id="verdict">PENDING</pre>
<input id="name"><button id="greet" onclick="out.textContent = 'Hello, ' + document.getElementById('name').value">greet</button>
<p id="out"></p>
<script>
  setTimeout(() => {
    const name = document.getElementById("name");
    name.value = "confined browser";
    name.dispatchEvent(new Event("input", { bubbles: true }));
    document.getElementById("greet").click();
    const ok = document.getElementById("out").textContent === "Hello, confined browser";
    document.getElementById("verdict").textContent = ok ? "PASS greeting" : "FAIL greeting";
  }, 100);
</script>
"#;

fn chromium() -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join("chromium"))
        .find(|p| p.is_file())
}

fn project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("page.html"), PAGE).unwrap();
    dir
}

fn verdict(stdout: &str) -> Option<&str> {
    let start = stdout.find("<pre id=\"verdict\">")? + "<pre id=\"verdict\">".len();
    let end = stdout[start..].find("</pre>")?;
    Some(&stdout[start..start + end])
}

fn config(dir: &tempfile::TempDir, namespaces: NamespaceMode) -> SandboxConfig {
    let mut config = SandboxConfig::new(dir.path());
    config.namespaces = namespaces;
    config
}

/// Chromium loads `page.html` from the project and the page's verdict is read back.
async fn scripts_a_page(config: SandboxConfig) {
    let sb = Sandbox::new(config).unwrap();
    let out = sb
        .run(
            &format!("{CHROMIUM} --dump-dom \"file://$PWD/page.html\""),
            Duration::from_secs(120),
        )
        .await
        .unwrap();
    sb.end_session().await;
    assert_eq!(out.exit_code, Some(0), "{out:?}");
    assert_eq!(verdict(&out.stdout), Some("PASS greeting"), "{out:?}");
}

/// A server started in the background serves the project on 127.0.0.1; Chromium loads the page
/// from it in the same command, as a browser check does.
async fn loads_an_app_served_on_loopback(config: SandboxConfig) {
    let sb = Sandbox::new(config).unwrap();
    let command = format!(
        "python3 -u -m http.server 0 --bind 127.0.0.1 > \"$TMPDIR/server.log\" 2>&1 & \
         server=$!; \
         for _ in $(seq 100); do port=$(sed -n 's/.*port \\([0-9]*\\).*/\\1/p' \"$TMPDIR/server.log\"); [ -n \"$port\" ] && break; sleep 0.1; done; \
         {CHROMIUM} --dump-dom \"http://127.0.0.1:$port/page.html\"; status=$?; \
         kill $server; exit $status"
    );
    let out = sb.run(&command, Duration::from_secs(120)).await.unwrap();
    sb.end_session().await;
    assert_eq!(out.exit_code, Some(0), "{out:?}");
    assert_eq!(verdict(&out.stdout), Some("PASS greeting"), "{out:?}");
}

macro_rules! skip_without_chromium {
    () => {
        if chromium().is_none() {
            eprintln!("SKIPPED: no chromium installed (apt-get install chromium)");
            return;
        }
    };
}

#[tokio::test]
async fn chromium_runs_in_a_world_and_scripts_a_page() {
    skip_without_chromium!();
    let dir = project();
    scripts_a_page(config(&dir, NamespaceMode::Auto)).await;
}

#[tokio::test]
async fn chromium_runs_in_the_fallback_confinement_and_scripts_a_page() {
    skip_without_chromium!();
    let dir = project();
    scripts_a_page(config(&dir, NamespaceMode::Off)).await;
}

#[tokio::test]
async fn chromium_loads_an_app_served_on_the_worlds_loopback() {
    skip_without_chromium!();
    let dir = project();
    // The default network: nothing but the world's own loopback.
    loads_an_app_served_on_loopback(config(&dir, NamespaceMode::Auto)).await;
}

#[tokio::test]
async fn in_the_fallback_chromium_loads_a_loopback_app_when_the_network_is_open() {
    skip_without_chromium!();
    let dir = project();
    // Without a network namespace of its own, a command gets AF_INET sockets only when the
    // network is open.
    let mut config = config(&dir, NamespaceMode::Off);
    config.allow_network = true;
    loads_an_app_served_on_loopback(config).await;
}
