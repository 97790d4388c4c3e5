//! The files a run reads from and writes into the project: `progress.md` (read into the build
//! prompt), `app_spec.txt` and `feature_list.json` (written by the harness), `loopwright.toml`
//! (guarded by [`tools::guarded`]). The agent can make any of them a link, a
//! FIFO or a directory, so every access goes through [`sandbox::untrusted`]: no link followed,
//! regular files only, never blocking, capped. What the agent broke is reported (an event, and
//! a note in the prompt) and the run carries on.

use std::path::{Path, PathBuf};

use sandbox::untrusted::{self, InTheWay, Replaced, UntrustedDir, UntrustedError};

/// The agent's notes for the next session.
pub const PROGRESS_FILE: &str = "progress.md";
/// Bytes of `progress.md` read at most: its end, which is what the prompt shows.
pub const PROGRESS_MAX_BYTES: u64 = 64 * 1024;
/// Characters of `progress.md` shown in the prompt at most: its end.
pub const PROGRESS_PROMPT_CHARS: usize = 8000;
pub use tools::guarded::PROJECT_CONFIG_MAX_BYTES;
/// A spec may be at most this big.
pub const SPEC_MAX_BYTES: u64 = 8 * 1024 * 1024;

/// `progress.md` as the build prompt shows it, and a warning when it could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgressNotes {
    pub text: String,
    pub warning: Option<String>,
}

/// The end of `progress.md` (at most [`PROGRESS_PROMPT_CHARS`] of its last
/// [`PROGRESS_MAX_BYTES`], with a note when cut), or a note that it is missing or was not read
/// (a link, a FIFO, a directory...) and why.
pub fn read_progress(project: &Path) -> ProgressNotes {
    let read = UntrustedDir::open(project)
        .and_then(|dir| dir.read_tail(Path::new(PROGRESS_FILE), PROGRESS_MAX_BYTES));
    match read {
        Ok(c) => {
            let text = String::from_utf8_lossy(&c.bytes);
            let mut shown: &str = &text;
            if c.truncated {
                // The read may have started inside a character: start at the next line.
                shown = shown.split_once('\n').map_or(shown, |(_, rest)| rest);
            }
            let count = shown.chars().count();
            if count > PROGRESS_PROMPT_CHARS {
                let skip = shown
                    .char_indices()
                    .nth(count - PROGRESS_PROMPT_CHARS)
                    .map_or(0, |(i, _)| i);
                shown = &shown[skip..];
            }
            let text = if shown.len() as u64 == c.size {
                shown.to_string()
            } else {
                format!(
                    "(cut at {} bytes: {PROGRESS_FILE} is {} bytes, its end is shown)\n{shown}",
                    shown.len(),
                    c.size
                )
            };
            ProgressNotes {
                text,
                warning: None,
            }
        }
        Err(e) if e.is_not_found() => ProgressNotes {
            text: format!("(no {PROGRESS_FILE} yet)"),
            warning: None,
        },
        Err(e) => ProgressNotes {
            text: format!(
                "({PROGRESS_FILE} was not read: it {}. Keep your notes in a regular file named \
                 {PROGRESS_FILE}.)",
                e.reason()
            ),
            warning: Some(format!(
                "{PROGRESS_FILE} was not put into the prompt: {}",
                e.reason()
            )),
        },
    }
}

/// Writes a file the harness owns into the project (`feature_list.json`, `app_spec.txt`):
/// never through a link, and whatever is in the way is moved aside. Returns a warning
/// describing what was moved aside or replaced, if anything.
pub fn write_project_file(
    project: &Path,
    name: &str,
    bytes: &[u8],
) -> Result<Option<String>, UntrustedError> {
    let report = untrusted::replace(project, Path::new(name), bytes, InTheWay::MoveAside)?;
    Ok(describe_replaced(name, &report))
}

/// Copies the spec to `app_spec.txt` unless it is there already (as a regular file).
pub fn copy_spec(project: &Path, spec: &str) -> Result<Option<String>, UntrustedError> {
    let current = untrusted::read(project, Path::new("app_spec.txt"), spec.len() as u64 + 1);
    if current.is_ok_and(|c| c.bytes == spec.as_bytes()) {
        return Ok(None);
    }
    write_project_file(project, "app_spec.txt", spec.as_bytes())
}

/// A warning about what [`UntrustedDir::replace`] had to clear away, if anything.
fn describe_replaced(name: &str, report: &Replaced) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(kind) = report.replaced {
        parts.push(format!(
            "{name} was {kind} and was replaced by the harness's file"
        ));
    }
    for d in &report.displaced {
        parts.push(format!(
            "{} was {}, in the way of {name}; it was moved to {}",
            d.from.display(),
            d.kind,
            d.to.display()
        ));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// Reads the spec at `path`, without blocking on a FIFO and capped at [`SPEC_MAX_BYTES`]. A
/// spec inside the project (the default is the project's `app_spec.txt`) is the agent's to
/// change, so it is read beneath the project without following links, like any other project
/// file; a spec elsewhere is the user's own path, and links in it are followed.
pub fn read_spec_bytes(project: &Path, path: &Path) -> Result<Vec<u8>, SpecError> {
    let read = match beneath(project, path) {
        Some(rel) => untrusted::read(project, &rel, SPEC_MAX_BYTES),
        None => untrusted::read_regular(path, SPEC_MAX_BYTES),
    };
    match read {
        Ok(c) if c.truncated => Err(SpecError::TooBig { size: c.size }),
        Ok(c) => Ok(c.bytes),
        Err(e) if e.is_not_found() => Err(SpecError::NotFound),
        Err(e) => Err(SpecError::Unreadable(e.reason())),
    }
}

/// Why [`read_spec_bytes`] failed (the messages follow "the spec PATH").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("does not exist")]
    NotFound,
    #[error("is {size} bytes, more than the {SPEC_MAX_BYTES} a spec may have")]
    TooBig { size: u64 },
    #[error("cannot be read: it {0}")]
    Unreadable(String),
}

/// `path` relative to `project` when it lies inside it: lexically (as given, made absolute), or
/// once the directory it is in is resolved.
pub fn beneath(project: &Path, path: &Path) -> Option<PathBuf> {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().ok()?.join(path)
    };
    let lexical = sandbox::normalize_lexically(&absolute);
    if let Ok(rel) = lexical.strip_prefix(project) {
        return Some(rel.to_path_buf());
    }
    let parent = lexical.parent()?.canonicalize().ok()?;
    let rel = parent.strip_prefix(project).ok()?;
    Some(rel.join(lexical.file_name()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_is_cut_from_its_end_with_a_note() {
        let dir = tempfile::tempdir().unwrap();
        let mut text = String::new();
        for i in 0..20_000 {
            text.push_str(&format!("line {i}\n"));
        }
        std::fs::write(dir.path().join(PROGRESS_FILE), &text).unwrap();
        let notes = read_progress(dir.path());
        assert!(notes.warning.is_none());
        let tail = &text[text.len() - PROGRESS_PROMPT_CHARS..];
        assert_eq!(
            notes.text,
            format!(
                "(cut at 8000 bytes: progress.md is {} bytes, its end is shown)\n{tail}",
                text.len()
            )
        );
        std::fs::write(dir.path().join(PROGRESS_FILE), "short\n").unwrap();
        assert_eq!(read_progress(dir.path()).text, "short\n");
    }

    #[test]
    fn progress_that_is_a_link_or_fifo_is_skipped_with_a_note() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/proc/self/environ", dir.path().join(PROGRESS_FILE)).unwrap();
        let notes = read_progress(dir.path());
        assert_eq!(
            notes.text,
            "(progress.md was not read: it is a symbolic link (to /proc/self/environ); \
             loopwright does not follow links in the project. Keep your notes in a regular file \
             named progress.md.)"
        );
        assert!(notes.warning.unwrap().contains("/proc/self/environ"));
        assert_eq!(
            read_progress(tempfile::tempdir().unwrap().path()).text,
            "(no progress.md yet)"
        );
    }

    #[test]
    fn a_spec_inside_the_project_is_read_without_following_links() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().canonicalize().unwrap().join("p");
        std::fs::create_dir(&project).unwrap();
        std::os::unix::fs::symlink("/proc/self/environ", project.join("app_spec.txt")).unwrap();
        let e = read_spec_bytes(&project, &project.join("app_spec.txt"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("is a symbolic link (to /proc/self/environ)"),
            "{e}"
        );
        // Reached through a link to the project, too.
        std::os::unix::fs::symlink(&project, dir.path().join("alias")).unwrap();
        let e = read_spec_bytes(&project, &dir.path().join("alias/app_spec.txt"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("symbolic link"), "{e}");
        // Outside the project, the user's links are followed.
        std::fs::write(dir.path().join("spec.txt"), "the app").unwrap();
        std::os::unix::fs::symlink(dir.path().join("spec.txt"), dir.path().join("spec-link"))
            .unwrap();
        assert_eq!(
            read_spec_bytes(&project, &dir.path().join("spec-link")).unwrap(),
            b"the app"
        );
        assert!(read_spec_bytes(&project, Path::new("/dev/zero")).is_err());
    }
}
