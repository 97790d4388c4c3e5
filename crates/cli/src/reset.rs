//! `loopwright reset`: archives a project's run (its state dir is renamed, nothing deleted) so
//! the next `run` starts over; asks first on a terminal.

use crate::exit::{code, CmdResult, Failure};
use agent::run::state::RunState;
use anyhow::anyhow;
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct ResetArgs {
    /// The project directory of the run [default: the current directory].
    #[arg(long, short = 'C', value_name = "DIR")]
    pub project_dir: Option<PathBuf>,
    /// The run's state directory [default: the project's, else $XDG_STATE_HOME/loopwright/<project id>].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Do not ask first.
    #[arg(long, short = 'y')]
    pub yes: bool,
}

pub fn run(args: &ResetArgs) -> CmdResult {
    use std::io::IsTerminal;
    let (project, state_dir) =
        crate::status::locate(args.project_dir.as_deref(), args.state_dir.clone())?;
    // A state dir whose run.json was lost is archived too (its ledger and plan are kept).
    let question = match RunState::load(&state_dir).ok().flatten() {
        Some(state) => format!(
            "Archive the run in {} ({}, passing {}/{}, {} sessions)?",
            state_dir.display(),
            format!("{:?}", state.phase).to_lowercase(),
            state.passing(),
            state.features.len(),
            state.sessions.len()
        ),
        None if agent::run::state::holds_a_run(&state_dir) => format!(
            "Archive what is left of the run in {} (it has no readable run.json)?",
            state_dir.display()
        ),
        None => {
            return Err(Failure::usage(anyhow!(
                "no run to reset for {} (nothing in {})",
                project.display(),
                state_dir.display()
            )))
        }
    };
    if !args.yes && std::io::stdin().is_terminal() && !crate::project::confirm(&question) {
        eprintln!("not archived");
        return Ok(code::OK);
    }
    let archived = crate::project::archive_state(&state_dir)?;
    if crate::project::read_pointer(&project).is_none() {
        crate::project::remove_pointer(&project);
    }
    eprintln!(
        "archived the run to {}; the next `loopwright run` starts over",
        archived.display()
    );
    Ok(code::OK)
}
