//! `loopwright`: the command-line entry point. Parses arguments, loads configuration and wires
//! the libraries together; the logic lives in the library crates.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod budget_status;
mod config;
mod doctor;
mod exec;
mod exit;
mod generate;
mod init;
mod models;
mod notify;
mod progress;
mod project;
mod report;
mod reset;
mod run;
mod setup;
mod status;
mod stdout;
mod suggest;
mod terminal;
mod verbosity;

use clap::{Parser, Subcommand};
use exit::{code, CmdResult};

/// An autonomous coding harness: a pinned model, a hard budget, and an OS-confined agent.
#[derive(Debug, Parser)]
#[command(name = "loopwright", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Less output: no progress display, only warnings, errors and the outcome.
    #[arg(
        long,
        short = 'q',
        global = true,
        conflicts_with = "verbose",
        display_order = 900
    )]
    quiet: bool,
    /// More output: diagnostics on stderr (-v info, -vv debug, -vvv trace; RUST_LOG wins).
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count, display_order = 901)]
    verbose: u8,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Plan and build the app of a spec across sessions until every check passes (resumes).
    Run(run::RunArgs),
    /// Show a run's phase, features, sessions, spend and last stop.
    Status(status::StatusArgs),
    /// Run one agent session in a project directory on a task.
    Exec(exec::ExecArgs),
    /// Show the price catalog (USD per million tokens).
    Models(models::ModelsArgs),
    /// Check a model end to end: provider, key, price, one tiny verified call.
    Doctor(doctor::DoctorArgs),
    /// Write a self-contained HTML report of a run: features, sessions, spend, a chart.
    Report(report::ReportArgs),
    /// Archive a project's run (nothing is deleted) so the next `run` starts over.
    Reset(reset::ResetArgs),
    /// Scaffold a project: app_spec.txt to fill in, loopwright.toml with every key, prompts.
    Init(init::InitArgs),
    /// Print shell completions (bash, zsh, fish, elvish, powershell) on stdout.
    Completions(generate::CompletionsArgs),
    /// Print the man page (roff) on stdout, or write one page per command into a directory.
    Man(generate::ManArgs),
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let exit = if e.use_stderr() {
                code::USAGE
            } else {
                code::OK
            };
            let _ = e.print();
            std::process::exit(exit);
        }
    };
    verbosity::init(if cli.quiet {
        -1
    } else {
        i8::try_from(cli.verbose).unwrap_or(i8::MAX)
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(code::INTERNAL);
        }
    };
    let result: CmdResult = runtime.block_on(async move {
        match cli.command {
            Command::Run(args) => run::run(args).await,
            Command::Status(args) => status::run(args).await,
            Command::Exec(args) => exec::run(args).await,
            Command::Models(args) => models::run(args).await,
            Command::Doctor(args) => doctor::run(args).await,
            Command::Report(args) => report::run(args).await,
            Command::Reset(args) => reset::run(&args),
            Command::Init(args) => init::run(&args),
            Command::Completions(args) => generate::completions(&args),
            Command::Man(args) => generate::man(&args),
        }
    });
    let status = match result {
        Ok(status) => status,
        Err(failure) => {
            // Errors quote paths and text of the agent's making.
            eprintln!(
                "error: {}",
                terminal::sanitize(&format!("{:#}", failure.error))
            );
            failure.code
        }
    };
    // Leave without waiting for stray blocking tasks.
    runtime.shutdown_background();
    std::process::exit(status);
}
