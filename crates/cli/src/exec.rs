//! `loopwright exec`: one agent session in a directory. (Being written.)

use crate::exit::{CmdResult, Failure};

#[derive(Debug, clap::Args)]
pub struct ExecArgs {
    /// The task; read from standard input when omitted.
    pub task: Option<String>,
}

pub async fn run(args: ExecArgs) -> CmdResult {
    let _ = args;
    Err(Failure::usage(anyhow::anyhow!("`loopwright exec` is not available in this build yet")))
}
