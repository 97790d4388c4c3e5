//! Process and socket tools (`kill`, `pkill`, `killall`, `ps`, `pgrep`, `pidof`, `lsof`,
//! `ss`, `netstat`). When the run's commands live in a pid namespace of their own, these only
//! see and signal the run's processes, and are allowed. Otherwise they would see or signal the
//! host's, the harness's included: only a command's own background jobs may be signalled
//! (`kill %1`, `kill $!`).

use super::super::walk::Checker;
use super::super::words::Arg;
use super::super::{deny, PolicyDenial};

impl Checker<'_> {
    pub(crate) fn processes(&mut self, name: &str, args: &[Arg]) -> Result<(), PolicyDenial> {
        if self.context.processes_scoped {
            return self.arguments(name, args);
        }
        if name == "kill" && own_jobs_only(args) {
            return Ok(());
        }
        deny(format!(
            "`{name}`: this run's commands do not have a process namespace of their own, so `{name}` would see or signal processes outside the run, the harness's included; stop the command's own background jobs with `kill %1` or `kill $!` (`jobs -l` lists them), and let the session's end stop the rest"
        ))
    }
}

/// `kill` aimed only at the shell's own jobs (`%1`, `%%`, `$!`), or listing signals.
fn own_jobs_only(args: &[Arg]) -> bool {
    let mut targets = 0;
    let mut i = 0;
    while let Some(a) = args.get(i) {
        i += 1;
        let raw = a.raw.trim_matches('"');
        if raw == "$!" {
            targets += 1;
            continue;
        }
        let Some(text) = a.plain() else {
            return false;
        };
        if matches!(text, "-l" | "-L" | "--list" | "--table") {
            return true;
        }
        if matches!(text, "-s" | "-n") {
            i += 1; // the signal
            continue;
        }
        if text == "--" {
            continue;
        }
        if text.starts_with('-') && text.len() > 1 {
            continue; // -9, -TERM, -SIGKILL
        }
        if text.starts_with('%') {
            targets += 1;
            continue;
        }
        return false;
    }
    targets > 0
}
