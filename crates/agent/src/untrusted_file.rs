//! Reading a whole file the agent could have made, for the harness, through
//! [`sandbox::untrusted`]: no link followed anywhere beneath the root, nothing but a regular
//! file, nothing that blocks, and an error rather than a cut when it is bigger than the cap (a
//! hash of half a file would say nothing).

use sandbox::untrusted::UntrustedDir;
use std::path::Path;

/// The bytes of the regular file `rel` beneath `root`, if it has at most `cap` of them.
pub fn read_regular(root: &Path, rel: &Path, cap: u64) -> std::io::Result<Vec<u8>> {
    let dir = UntrustedDir::open(root).map_err(std::io::Error::other)?;
    let contents = dir.read(rel, cap).map_err(std::io::Error::other)?;
    if contents.truncated {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} is bigger than {cap} bytes", rel.display()),
        ));
    }
    Ok(contents.bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_fifos_and_big_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        std::fs::write(p.join("ok"), "hello").unwrap();
        assert_eq!(read_regular(p, Path::new("ok"), 10).unwrap(), b"hello");
        assert!(read_regular(p, Path::new("ok"), 3).is_err());
        std::os::unix::fs::symlink(p.join("ok"), p.join("link")).unwrap();
        assert!(read_regular(p, Path::new("link"), 10).is_err());
        std::fs::create_dir(p.join("d")).unwrap();
        std::os::unix::fs::symlink(p.join("d"), p.join("dlink")).unwrap();
        std::fs::write(p.join("d/x"), "x").unwrap();
        assert!(
            read_regular(p, Path::new("dlink/x"), 10).is_err(),
            "a linked directory"
        );
        let fifo = std::ffi::CString::new(p.join("fifo").to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        assert!(read_regular(p, Path::new("fifo"), 10).is_err());
    }
}
