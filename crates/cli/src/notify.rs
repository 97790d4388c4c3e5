//! The notify hook: `notify = ["cmd", "arg"]` in the configuration runs that command when a
//! run stops, for any cause, with a one-line JSON summary on its standard input (the format is
//! in docs/events.md). It runs in its own process group, is killed after [`NOTIFY_TIMEOUT`],
//! and its failure is only a warning: the run's outcome stands.

use std::process::Stdio;
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// How long the hook may take.
pub const NOTIFY_TIMEOUT: Duration = Duration::from_secs(10);

/// Runs the hook with `summary` on stdin; `Err` says what went wrong, for a warning.
pub async fn notify(command: &[String], summary: &serde_json::Value) -> Result<(), String> {
    let Some((program, args)) = command.split_first() else {
        return Err("notify is an empty list; give the command and its arguments".into());
    };
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start the notify command {program:?}: {e}"))?;
    let pgid = child.id();
    let mut line = summary.to_string();
    line.push('\n');
    let run = async {
        if let Some(mut stdin) = child.stdin.take() {
            // A hook that does not read its input is not an error.
            let _ = stdin.write_all(line.as_bytes()).await;
        }
        child.wait().await
    };
    match tokio::time::timeout(NOTIFY_TIMEOUT, run).await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => Err(format!("the notify command {program:?} failed ({status})")),
        Ok(Err(e)) => Err(format!("the notify command {program:?}: {e}")),
        Err(_) => {
            if let Some(pgid) = pgid.and_then(|p| i32::try_from(p).ok()) {
                // SAFETY: kill(2) on the hook's own process group; no memory is involved.
                unsafe {
                    libc::kill(-pgid, libc::SIGKILL);
                }
            }
            Err(format!(
                "the notify command {program:?} took more than {}s and was killed",
                NOTIFY_TIMEOUT.as_secs()
            ))
        }
    }
}
