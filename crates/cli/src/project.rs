//! The project's side of a run: its pointer to the run's state dir, its lock, and archiving a
//! run to start over.
//!
//! Decisions:
//! - The project keeps a pointer, `.loopwright/state` (the state dir's absolute path, one
//!   line), written when a run starts, so a moved project finds its run again. The directory
//!   holds a `.gitignore` of `*`, so the harness's commits leave it out. The state dir is then
//!   chosen as: `--state-dir` (or `state_dir` in the config, `LOOPWRIGHT_STATE_DIR`), else the
//!   pointer when it names a state dir that exists, else `$XDG_STATE_HOME/loopwright/<id>`.
//! - A run whose `run.json` names another project path is followed when the project moved
//!   (the old path is gone or no longer points at that state); when the old path still holds a
//!   project pointing at it, this one is a copy and must start its own run (`--fresh`).
//! - The project itself is locked (`flock` on the project directory) for the whole run, so
//!   two runs can never build one project, whatever their state dirs.
//! - A run whose project was deleted (the directory missing or empty when `run` starts) is
//!   archived automatically with a message: the user removed the project to start over.
//! - Archiving renames the state dir to `<state dir>.archived-<UTC time>` next to it; nothing
//!   is deleted, the ledger of the old run included.
//!
//! Known residuals: the agent's commands can write the pointer (the project is theirs to
//! write); a changed pointer is only followed when it names an existing state dir, and a state
//! dir of another project is refused. The pointer is read and written through
//! [`sandbox::untrusted`] (no link followed, no FIFO opened).

use crate::exit::Failure;
use anyhow::anyhow;
use std::path::{Path, PathBuf};

const POINTER_DIR: &str = ".loopwright";
const POINTER_FILE: &str = "state";
/// The pointer is a path: anything longer is not one of ours.
const POINTER_MAX_BYTES: u64 = 8192;

/// Where a run's state dir came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateSource {
    /// `--state-dir`, `LOOPWRIGHT_STATE_DIR` or `state_dir` in the config.
    Given,
    /// The project's `.loopwright/state`.
    Pointer,
    /// `$XDG_STATE_HOME/loopwright/<project id>`.
    Default,
}

/// The state dir the project's pointer names, when it names an existing directory. Read
/// through [`sandbox::untrusted`]: never through a link, never a FIFO (which would hang the
/// start of every command), never more than [`POINTER_MAX_BYTES`].
pub fn read_pointer(project: &Path) -> Option<PathBuf> {
    let rel = Path::new(POINTER_DIR).join(POINTER_FILE);
    let contents = sandbox::untrusted::read(project, &rel, POINTER_MAX_BYTES).ok()?;
    if contents.truncated {
        return None;
    }
    let text = String::from_utf8(contents.bytes).ok()?;
    let dir = PathBuf::from(text.trim());
    (dir.is_absolute() && dir.is_dir()).then_some(dir)
}

/// Makes the project point at `state_dir` (absolute). Written with
/// [`sandbox::untrusted::UntrustedDir::replace`]: never through a link, and a file, link or
/// FIFO where `.loopwright/` or its files belong is moved aside.
pub fn write_pointer(project: &Path, state_dir: &Path) -> std::io::Result<()> {
    use sandbox::untrusted::{InTheWay, UntrustedDir};
    let files = UntrustedDir::open(project).map_err(std::io::Error::other)?;
    let text = format!("{}\n", state_dir.display());
    for (name, bytes) in [
        (".gitignore", b"*\n".as_slice()),
        (POINTER_FILE, text.as_bytes()),
    ] {
        let rel = Path::new(POINTER_DIR).join(name);
        let current = files.read(&rel, bytes.len() as u64 + 1);
        if current.is_ok_and(|c| c.bytes == bytes) {
            continue;
        }
        files
            .replace(&rel, bytes, InTheWay::MoveAside)
            .map_err(std::io::Error::other)?;
    }
    Ok(())
}

/// Removes the project's pointer (after its run was archived); a link there is removed, not
/// followed.
pub fn remove_pointer(project: &Path) {
    let _ = sandbox::untrusted::UntrustedDir::open(project).and_then(|files| {
        files.remove(
            &Path::new(POINTER_DIR).join(POINTER_FILE),
            sandbox::untrusted::InTheWay::Refuse,
        )
    });
}

/// The lock on a project directory, held for a whole run.
#[derive(Debug)]
pub struct ProjectLock {
    _dir: std::fs::File,
}

/// Locks `project` (a `flock` on the directory itself, released when the process ends).
/// Another process holding it is a usage error (exit 2).
pub fn lock_project(project: &Path) -> Result<ProjectLock, Failure> {
    let dir = std::fs::File::open(project).map_err(|e| {
        Failure::usage(anyhow!(
            "cannot open the project {}: {e}",
            project.display()
        ))
    })?;
    match dir.try_lock() {
        Ok(()) => Ok(ProjectLock { _dir: dir }),
        Err(std::fs::TryLockError::WouldBlock) => Err(Failure::usage(anyhow!(
            "another loopwright process is building {} (its run may use another state dir); two runs never build one project — wait for it to stop, or follow it with `loopwright status --watch -C {}`",
            project.display(),
            project.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(Failure::usage(anyhow!(
            "cannot lock the project {}: {e}",
            project.display()
        ))),
    }
}

/// `20261130T094500Z`: a UTC time for file names and ids.
pub(crate) fn utc_stamp(now: time::OffsetDateTime) -> String {
    let now = now.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

/// Renames `state_dir` to `<state_dir>.archived-<UTC time>` (under its lock, so never while a
/// run is live) and returns the new path.
pub fn archive_state(state_dir: &Path) -> Result<PathBuf, Failure> {
    let lock = agent::run::lock_state_dir(state_dir).map_err(Failure::run)?;
    let stamp = utc_stamp(time::OffsetDateTime::now_utc());
    let name = state_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".into());
    let mut target = state_dir.with_file_name(format!("{name}.archived-{stamp}"));
    let mut n = 1;
    while target.exists() {
        n += 1;
        target = state_dir.with_file_name(format!("{name}.archived-{stamp}-{n}"));
    }
    std::fs::rename(state_dir, &target).map_err(|e| {
        Failure::usage(anyhow!(
            "cannot archive {} to {}: {e}",
            state_dir.display(),
            target.display()
        ))
    })?;
    drop(lock);
    // The next run on this state dir starts over knowingly, though the project holds the
    // archived run's commits.
    agent::run::state::mark_start_over(state_dir, &target).map_err(|e| {
        Failure::usage(anyhow!(
            "archived the run to {}, but cannot create {} again: {e}",
            target.display(),
            state_dir.display()
        ))
    })?;
    Ok(target)
}

/// Asks `question [y/N]` on the terminal; `true` only for y/yes.
pub fn confirm(question: &str) -> bool {
    use std::io::{BufRead, Write};
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_lowercase().as_str(), "y" | "yes")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The agent can make `.loopwright/` and its files anything; `run` must neither hang on a
    /// FIFO there nor write through a link.
    #[test]
    fn pointer_files_that_are_fifos_or_links_neither_hang_nor_are_followed() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("p");
        let state = dir.path().join("s");
        let outside = dir.path().join("outside");
        std::fs::create_dir_all(project.join(POINTER_DIR)).unwrap();
        std::fs::create_dir_all(&state).unwrap();
        std::fs::write(&outside, "keep").unwrap();
        let fifo = std::ffi::CString::new(
            project
                .join(POINTER_DIR)
                .join(".gitignore")
                .to_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o644) }, 0);
        std::os::unix::fs::symlink(&outside, project.join(POINTER_DIR).join(POINTER_FILE)).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let (p, s) = (project.clone(), state.clone());
        std::thread::spawn(move || {
            let _ = tx.send((
                read_pointer(&p),
                write_pointer(&p, &s).is_ok(),
                read_pointer(&p),
            ));
        });
        let (before, written, after) = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("the pointer code hung on a FIFO");
        assert_eq!(before, None);
        assert!(written);
        assert_eq!(after, Some(state));
        assert_eq!(std::fs::read_to_string(&outside).unwrap(), "keep");
        assert_eq!(
            std::fs::read_to_string(project.join(POINTER_DIR).join(".gitignore")).unwrap(),
            "*\n"
        );
        // `.loopwright` itself a link: moved aside, not written through.
        std::fs::remove_dir_all(project.join(POINTER_DIR)).unwrap();
        std::fs::create_dir(dir.path().join("elsewhere")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("elsewhere"), project.join(POINTER_DIR))
            .unwrap();
        assert_eq!(read_pointer(&project), None);
        write_pointer(&project, &dir.path().join("s")).unwrap();
        assert!(std::fs::read_dir(dir.path().join("elsewhere"))
            .unwrap()
            .next()
            .is_none());
        assert!(std::fs::symlink_metadata(project.join(POINTER_DIR))
            .unwrap()
            .is_dir());
    }

    #[test]
    fn pointer_round_trips_and_ignores_links_and_missing_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("p");
        let state = dir.path().join("s");
        std::fs::create_dir_all(&project).unwrap();
        assert_eq!(read_pointer(&project), None);
        write_pointer(&project, &state).unwrap();
        assert_eq!(
            read_pointer(&project),
            None,
            "the state dir does not exist yet"
        );
        std::fs::create_dir_all(&state).unwrap();
        assert_eq!(read_pointer(&project), Some(state.clone()));
        assert_eq!(
            std::fs::read_to_string(project.join(".loopwright/.gitignore")).unwrap(),
            "*\n"
        );
        std::fs::remove_file(project.join(".loopwright/state")).unwrap();
        std::os::unix::fs::symlink(
            dir.path().join("elsewhere"),
            project.join(".loopwright/state"),
        )
        .unwrap();
        std::fs::write(dir.path().join("elsewhere"), state.display().to_string()).unwrap();
        assert_eq!(read_pointer(&project), None, "a link is not followed");
    }

    #[test]
    fn archive_renames_and_a_second_lock_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        std::fs::create_dir_all(&state).unwrap();
        std::fs::write(state.join("run.json"), "{}").unwrap();
        let moved = archive_state(&state).unwrap();
        assert!(!state.join("run.json").exists());
        assert!(state.join(agent::run::state::START_OVER_FILE).exists());
        assert!(moved.join("run.json").exists());
        assert!(moved
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("state.archived-"));
        let project = dir.path().join("p");
        std::fs::create_dir_all(&project).unwrap();
        let held = lock_project(&project).unwrap();
        let err = lock_project(&project).unwrap_err();
        assert_eq!(err.code, 2);
        assert!(format!("{:#}", err.error).contains("two runs never build one project"));
        drop(held);
        lock_project(&project).unwrap();
    }
}
