//! A stand-in harness for the SIGKILL test in `tests/world.rs` (and for trying it by hand):
//! creates a sandbox on the project directory `ARGV[1]`, starts `sleep $SLEEP_SECONDS &` in
//! its world, writes the file `ARGV[2]` once the sleep runs, then waits to be killed.
//!
//! `SLEEP_SECONDS=1000.42 cargo run -p sandbox --example sigkilled_harness -- /tmp/p
//! /tmp/p/ready & sleep 5; kill -9 %1; pgrep -f 'sleep 1000.42'` prints nothing: the world
//! went with its harness.
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (Some(project), Some(ready), Ok(marker)) =
        (args.get(1), args.get(2), std::env::var("SLEEP_SECONDS"))
    else {
        return Err("usage: SLEEP_SECONDS=N sigkilled_harness PROJECT READY_FILE".into());
    };
    let sb = sandbox::Sandbox::new(sandbox::SandboxConfig::new(project))?;
    let out = sb
        .run(
            &format!("sleep {marker} > /dev/null 2>&1 & echo $! > bg.pid"),
            Duration::from_secs(30),
        )
        .await?;
    if out.exit_code != Some(0) {
        return Err(format!("the background command failed: {out:?}").into());
    }
    std::fs::write(ready, "ready")?;
    loop {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}
