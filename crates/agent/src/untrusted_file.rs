//! Reading a file the agent could have made, for the harness: the last path component is never
//! followed if it is a link, the open never waits on a FIFO, anything but a regular file is
//! refused, and at most `cap` bytes are read. (The sandbox's `untrusted` module is the general
//! home of these rules; this is the small subset the watchdog and the git guard need.)

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Opens `path` as a regular file without following a final symlink and without blocking.
pub fn open_regular(path: &Path) -> std::io::Result<File> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} is not a regular file", path.display()),
        ));
    }
    Ok(file)
}

/// Reads a regular file (see [`open_regular`]); an error when it is bigger than `cap` bytes.
pub fn read_regular(path: &Path, cap: u64) -> std::io::Result<Vec<u8>> {
    let file = open_regular(path)?;
    let mut bytes = Vec::new();
    file.take(cap.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} is bigger than {cap} bytes", path.display()),
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_fifos_and_big_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(p.join("ok"), "hello").unwrap();
        assert_eq!(read_regular(&p.join("ok"), 10).unwrap(), b"hello");
        assert!(read_regular(&p.join("ok"), 3).is_err());
        std::os::unix::fs::symlink(p.join("ok"), p.join("link")).unwrap();
        assert!(read_regular(&p.join("link"), 10).is_err());
        let fifo = std::ffi::CString::new(p.join("fifo").to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        assert!(read_regular(&p.join("fifo"), 10).is_err());
    }
}
