//! Measures worlds: `cargo run --release -p sandbox --example worldtime`. Prints the time to
//! create a sandbox (first world included), the per-command overhead in a world and in
//! fallback mode, the time to end a session and to start a fresh world, and the memory of
//! the world's init process (RSS counts the harness pages it shares copy-on-write; the
//! private figure is what it costs).
use std::time::{Duration, Instant};

/// (VmRSS, VmHWM, private) in KiB of this process's children that are pid 1 of a pid namespace.
fn init_memory() -> Vec<(u64, u64, u64)> {
    let me = std::process::id().to_string();
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .map(|l| l[name.len()..].trim().to_string())
                .unwrap_or_default()
        };
        let nspid = field("NSpid:");
        if field("PPid:") != me || !nspid.ends_with("\t1") && !nspid.ends_with(" 1") {
            continue;
        }
        let kb = |s: String| {
            s.split_whitespace()
                .next()
                .and_then(|n| n.parse().ok())
                .unwrap_or(0u64)
        };
        let rollup = std::fs::read_to_string(entry.path().join("smaps_rollup")).unwrap_or_default();
        let private: u64 = rollup
            .lines()
            .filter(|l| l.starts_with("Private_"))
            .map(|l| {
                kb(l.split_once(':')
                    .map(|(_, v)| v.to_string())
                    .unwrap_or_default())
            })
            .sum();
        out.push((kb(field("VmRSS:")), kb(field("VmHWM:")), private));
    }
    out
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let n = 50;
    for round in 0..3 {
        let t = Instant::now();
        let sb = sandbox::Sandbox::new(sandbox::SandboxConfig::new(dir.path()))?;
        let created = t.elapsed();
        let t = Instant::now();
        for _ in 0..n {
            sb.run("true", Duration::from_secs(30)).await?;
        }
        println!(
            "round {round}: Sandbox::new (world included) {created:?}, per command in a world {:?}",
            t.elapsed() / n
        );
        println!(
            "  init memory (VmRSS, VmHWM, private KiB): {:?}",
            init_memory()
        );
        let t = Instant::now();
        sb.end_session().await;
        println!("  end_session {:?}", t.elapsed());
        let t = Instant::now();
        sb.run("true", Duration::from_secs(30)).await?;
        println!("  fresh world + one command {:?}", t.elapsed());
    }
    let mut config = sandbox::SandboxConfig::new(dir.path());
    config.namespaces = sandbox::NamespaceMode::Off;
    let t = Instant::now();
    let sb = sandbox::Sandbox::new(config)?;
    let created = t.elapsed();
    let t = Instant::now();
    for _ in 0..n {
        sb.run("true", Duration::from_secs(30)).await?;
    }
    println!(
        "fallback: Sandbox::new {created:?}, per command {:?}",
        t.elapsed() / n
    );
    Ok(())
}
