//! `testkit-server --script FILE.json [--port N]`: serves a script until killed.

use clap::Parser;
use std::io::Write;
use std::path::PathBuf;

/// A scripted fake model server (Anthropic Messages and OpenAI Chat Completions) on 127.0.0.1.
#[derive(Parser)]
#[command(name = "testkit-server", version)]
struct Args {
    /// JSON script: `{"turns": [...], "quirks": {...}, "catalog": [...]}` or a bare turn array.
    #[arg(long)]
    script: PathBuf,
    /// Port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let script = match testkit::load_script(&args.script) {
        Ok(script) => script,
        Err(e) => {
            eprintln!("testkit-server: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    let server = match testkit::FakeServer::start_on(script, args.port).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("testkit-server: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "listening on {}", server.base_url());
    let _ = stdout.flush();
    let _ = tokio::signal::ctrl_c().await;
    server.shutdown().await;
    std::process::ExitCode::SUCCESS
}
