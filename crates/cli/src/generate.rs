//! `loopwright completions SHELL` and `loopwright man`: generated from the clap definitions, so
//! they always match the flags.

use crate::exit::{code, CmdResult, Failure};
use anyhow::anyhow;
use clap::CommandFactory;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write loopwright.1 and one page per command (loopwright-run.1...) into this directory
    /// instead of printing loopwright.1.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Prints the completion script, e.g. `loopwright completions bash > ~/.local/share/bash-completion/completions/loopwright`.
pub fn completions(args: &CompletionsArgs) -> CmdResult {
    let mut cmd = crate::Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "loopwright", &mut out);
    crate::stdout::write(&String::from_utf8_lossy(&out));
    Ok(code::OK)
}

pub fn man(args: &ManArgs) -> CmdResult {
    let cmd = crate::Cli::command();
    match &args.dir {
        None => {
            let mut out = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut out)
                .map_err(|e| Failure::from(anyhow!("cannot render the man page: {e}")))?;
            crate::stdout::write(&String::from_utf8_lossy(&out));
        }
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| Failure::usage(anyhow!("cannot create {}: {e}", dir.display())))?;
            clap_mangen::generate_to(cmd, dir).map_err(|e| {
                Failure::usage(anyhow!(
                    "cannot write man pages into {}: {e}",
                    dir.display()
                ))
            })?;
            eprintln!("man pages written to {}", dir.display());
        }
    }
    Ok(code::OK)
}
