//! The one way loopwright replaces a file of its *own* (run state, the canonical feature list,
//! frozen copies, the price cache): write a temp file beside it, fsync, rename over the target,
//! fsync the directory. A crash leaves either the old or the new content, never half. It lives
//! in `llm`, the crate every other crate depends on, so there is one copy.
//!
//! Files in the *project* (the agent's workspace) are written by `sandbox::untrusted`'s
//! `replace` instead, the same temp-and-rename resolved beneath the project without following
//! any link: the agent can make any name there a link, and this helper, given a path, would
//! follow links in its directories. The state dir and the caches are outside the agent's reach,
//! so a path is enough for them.

use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` atomically, creating missing parent directories. An existing
/// file's permissions are kept; a new file gets 0644 (a temp file would otherwise leave 0600).
pub fn atomic_write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(parent)?;
    let permissions = match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => Some(meta.permissions()),
        _ => None,
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".loopwright-")
        .suffix(".tmp")
        .tempfile_in(parent)?;
    tmp.write_all(bytes)?;
    match permissions {
        Some(p) => tmp.as_file().set_permissions(p)?,
        None => set_default_mode(tmp.as_file())?,
    }
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(parent)
}

#[cfg(unix)]
fn set_default_mode(file: &std::fs::File) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(0o644))
}

#[cfg(not(unix))]
fn set_default_mode(_file: &std::fs::File) -> std::io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}
