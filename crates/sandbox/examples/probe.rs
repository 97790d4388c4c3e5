//! Runs commands in the sandbox and prints what happened:
//! `cargo run -p sandbox --example probe -- 'cmd' ['cmd2' ...]` (one session; `--off` first for
//! fallback mode).
use std::time::{Duration, Instant};
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let off = args.first().is_some_and(|a| a == "--off");
    if off {
        args.remove(0);
    }
    if args.is_empty() {
        args.push("id".into());
    }
    let dir = tempfile::tempdir()?;
    let mut config = sandbox::SandboxConfig::new(dir.path());
    if off {
        config.namespaces = sandbox::NamespaceMode::Off;
    }
    let started = Instant::now();
    let sb = sandbox::Sandbox::new(config)?;
    println!(
        "sandbox ready in {:?}: {:?} {:?}",
        started.elapsed(),
        sb.confinement(),
        sb.fallback_reason()
    );
    for command in args {
        let out = sb.run(&command, Duration::from_secs(30)).await?;
        println!("{out:#?}");
    }
    Ok(())
}
