//! Runs one command in the sandbox and prints what happened: `cargo run -p sandbox --example probe -- 'cmd'`.
use std::time::Duration;
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let command = std::env::args().nth(1).unwrap_or_else(|| "id".into());
    let dir = tempfile::tempdir()?;
    let sb = sandbox::Sandbox::new(sandbox::SandboxConfig::new(dir.path()))?;
    let out = sb.run(&command, Duration::from_secs(30)).await?;
    println!("{out:#?}");
    Ok(())
}
