//! Files the agent controls, read and written by the harness.
//!
//! # Threat model
//! The agent shapes everything under the project directory, and the harness touches those files
//! *unconfined*: with its own privileges, its own environment (API keys) and its own view of the
//! file system. Whatever a name in the project looked like a moment ago, the agent (or a
//! background process it left running) can make it:
//! - a symbolic link to anything — `/proc/self/environ` (the harness's keys, read by the harness
//!   itself), `~/.ssh/id_rsa`, `/dev/zero` — in the last component or in any directory on the
//!   way (`notes -> ~/.ssh`, then `notes/id_rsa`);
//! - a FIFO (opening it for reading waits for a writer: forever), a Unix socket, a device node;
//! - a directory where the harness expects a file, a file where it expects a directory;
//! - a regular file of any size, growing or shrinking while it is read;
//! - a name with control characters or newlines;
//! - any of these swapped in between the harness's check and its use.
//!
//! # What this module guarantees
//! - **No link is followed beneath the root.** Paths are resolved with `openat2(2)` and
//!   `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS` when the kernel has it
//!   (Linux 5.6+); otherwise component by component with `openat(O_NOFOLLOW | O_DIRECTORY)` from
//!   the directory descriptor before, and a final `O_NOFOLLOW`. Both are race-free: every step
//!   starts from a descriptor, never from a path that could be swapped. A link is reported (with
//!   its target, which is harmless to show) and never read through.
//! - **Regular files only, and nothing blocks.** The last component is `fstatat`ed without
//!   following it before it is opened, so a FIFO or device is normally never even opened; the
//!   open itself is `O_NONBLOCK | O_NOCTTY | O_CLOEXEC | O_NOFOLLOW` (a FIFO swapped in at the
//!   last moment opens without waiting for a writer, and a lease held by an agent process makes
//!   the open fail with `EWOULDBLOCK` instead of waiting out the lease-break time), and the
//!   opened descriptor is `fstat`ed again: anything but a regular file is refused with an error
//!   that names the path and what it is. With regular files only, `O_NONBLOCK` makes a read
//!   deadline unnecessary: a read of a regular file never waits for another process.
//! - **Bounded size.** Reading stops at the size `fstat` reported when the file was opened and
//!   at the caller's cap, whichever is smaller: a file appended to while it is read is cut, a
//!   file truncated meanwhile ends early. Memory never grows past the cap.
//! - **Writes never go through a link.** [`UntrustedDir::replace`] writes a temp file created
//!   `O_EXCL | O_NOFOLLOW` in the target's directory (reached as above), fsyncs it and
//!   `renameat`s it over the target: a rename replaces a symlink, FIFO, socket or device *itself*,
//!   never what it points to. A directory in the way (or a non-directory where a directory
//!   belongs) is moved aside to a unique `.loopwright-displaced-*` name and reported, or refused,
//!   as the caller chooses — a `feature_list.json` turned into a directory must not stop a run.
//! - **Walks never follow links.** [`UntrustedDir::walk`] descends with `openat(O_NOFOLLOW |
//!   O_DIRECTORY)` from the parent's descriptor, reports every entry with its kind (from
//!   `d_type`, or `fstatat` without following) and never opens anything that is not a directory.
//!
//! # Decisions
//! - **Links in the root itself are followed.** The root (the project directory) is given by the
//!   user and canonicalized before the agent runs; only what is *beneath* it is the agent's.
//! - **Hard links are not refused.** A hard link is the same file under another name: path rules
//!   cannot see that `notes.md` is also `~/.ssh/id_rsa`, and `st_nlink > 1` is ordinary (pnpm's
//!   store, git's local clones, backup tools). What makes them harmless here is that the agent
//!   cannot create one to a file outside its reach: its commands cannot name such a file (the
//!   mount view has no home; Landlock refuses cross-directory links without `REFER` on the
//!   source) and the kernel's `protected_hardlinks` refuses links to files the user cannot read
//!   and write. A hard link that already exists is readable by the agent's own `cat` through the
//!   project path too, so the harness reading it gives away nothing more.
//! - **One writer for project files.** Everything the harness writes into the project (the
//!   agent's `write_file`/`edit_file`, `feature_list.json`, the `app_spec.txt` copy, restored
//!   frozen files, `loopwright.toml` put back) goes through [`UntrustedDir::replace`].
//!   `llm::atomic_write` stays the writer for the harness's own files (the state dir, the price
//!   cache): those are outside the agent's reach (not in its mount view, not writable under
//!   Landlock), so following a link there is the user's choice, and `llm` sits below `sandbox`
//!   in the crate graph and cannot call this module.
//! - **Only the caller knows what is a bug and what is an attack.** Errors say what the path is
//!   ([`UntrustedError::NotRegular`] with its [`FileKind`], [`UntrustedError::Symlink`] with the
//!   link and its target); whether to stop (a `loopwright.toml` that is a FIFO: exit 2) or skip
//!   with a note (`progress.md`) is decided where the file is used.
//! - **Paths given by the user** (the spec on the command line) are not agent-controlled, so
//!   [`read_regular`] follows their links, but keeps the other guarantees: non-blocking,
//!   regular files only, capped.
//!
//! # Known residuals
//! - A regular file on a FUSE or network file system can still make a read wait; the agent
//!   cannot mount one (no `/dev/fuse` in its view, no mount rights).
//! - Names are not checked for control characters here: that is a display concern, handled
//!   where names are shown (the tools escape them, the CLI strips terminal controls).

use std::ffi::{CStr, CString, OsStr, OsString};
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// What a directory entry is, seen without following links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Regular,
    Directory,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
    Unknown,
}

impl FileKind {
    fn from_mode(mode: libc::mode_t) -> FileKind {
        match mode & libc::S_IFMT {
            libc::S_IFREG => FileKind::Regular,
            libc::S_IFDIR => FileKind::Directory,
            libc::S_IFLNK => FileKind::Symlink,
            libc::S_IFIFO => FileKind::Fifo,
            libc::S_IFSOCK => FileKind::Socket,
            libc::S_IFCHR => FileKind::CharDevice,
            libc::S_IFBLK => FileKind::BlockDevice,
            _ => FileKind::Unknown,
        }
    }

    /// From a `d_type`; `None` when the file system did not say (`DT_UNKNOWN`).
    fn from_dtype(dtype: u8) -> Option<FileKind> {
        Some(match dtype {
            libc::DT_REG => FileKind::Regular,
            libc::DT_DIR => FileKind::Directory,
            libc::DT_LNK => FileKind::Symlink,
            libc::DT_FIFO => FileKind::Fifo,
            libc::DT_SOCK => FileKind::Socket,
            libc::DT_CHR => FileKind::CharDevice,
            libc::DT_BLK => FileKind::BlockDevice,
            _ => return None,
        })
    }

    /// `a FIFO (named pipe)`, `a directory`...: for messages.
    pub fn describe(self) -> &'static str {
        match self {
            FileKind::Regular => "a regular file",
            FileKind::Directory => "a directory",
            FileKind::Symlink => "a symbolic link",
            FileKind::Fifo => "a FIFO (named pipe)",
            FileKind::Socket => "a Unix socket",
            FileKind::CharDevice => "a character device",
            FileKind::BlockDevice => "a block device",
            FileKind::Unknown => "a file of unknown type",
        }
    }
}

impl std::fmt::Display for FileKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.describe())
    }
}

/// What `lstat` says about a path beneath the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub kind: FileKind,
    /// Size in bytes.
    pub len: u64,
    /// Permission bits (`0o7777`).
    pub mode: u32,
    /// Number of hard links.
    pub nlink: u64,
}

impl Stat {
    fn from_raw(st: &libc::stat) -> Stat {
        Stat {
            kind: FileKind::from_mode(st.st_mode),
            len: u64::try_from(st.st_size).unwrap_or(0),
            mode: st.st_mode & 0o7777,
            #[allow(clippy::useless_conversion, reason = "nlink_t is u32 on some targets")]
            nlink: u64::from(st.st_nlink),
        }
    }
}

/// Why an agent-controlled path was not read or written. The message names the path and says
/// what it is; [`UntrustedError::reason`] is the same without the path, for callers that show
/// the path their own way.
#[derive(Debug, thiserror::Error)]
pub enum UntrustedError {
    #[error("{} does not exist", .path.display())]
    NotFound { path: PathBuf },
    /// The path is, or goes through, a symbolic link (`link`, pointing to `target`).
    #[error("{} {}", .path.display(), symlink_reason(.path, .link, .target.as_deref()))]
    Symlink {
        path: PathBuf,
        link: PathBuf,
        target: Option<PathBuf>,
    },
    /// A regular file was wanted.
    #[error("{} is {kind}, not a regular file", .path.display())]
    NotRegular { path: PathBuf, kind: FileKind },
    /// A directory was wanted (the path itself, or `path` as a component of a longer one).
    #[error("{} is {kind}, not a directory", .path.display())]
    NotDirectory { path: PathBuf, kind: FileKind },
    #[error("{} is not a plain relative path (no `..`, no absolute path, no NUL byte)", .path.display())]
    BadPath { path: PathBuf },
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn symlink_reason(path: &Path, link: &Path, target: Option<&Path>) -> String {
    let to = target
        .map(|t| format!(" (to {})", t.display()))
        .unwrap_or_default();
    if link == path {
        format!("is a symbolic link{to}; loopwright does not follow links in the project")
    } else {
        format!(
            "goes through {}, a symbolic link{to}; loopwright does not follow links in the project",
            link.display()
        )
    }
}

impl UntrustedError {
    /// The path the error is about.
    pub fn path(&self) -> &Path {
        match self {
            UntrustedError::NotFound { path }
            | UntrustedError::Symlink { path, .. }
            | UntrustedError::NotRegular { path, .. }
            | UntrustedError::NotDirectory { path, .. }
            | UntrustedError::BadPath { path }
            | UntrustedError::Io { path, .. } => path,
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, UntrustedError::NotFound { .. })
    }

    /// The message without the leading path: `is a FIFO (named pipe), not a regular file`.
    pub fn reason(&self) -> String {
        let full = self.to_string();
        let path = self.path().display().to_string();
        match full.strip_prefix(&path) {
            Some(rest) => rest.trim_start_matches([' ', ':']).to_string(),
            None => full,
        }
    }
}

/// What [`UntrustedDir::read`] and [`UntrustedDir::read_tail`] return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contents {
    pub bytes: Vec<u8>,
    /// The file's size when it was opened.
    pub size: u64,
    /// Whether the file was bigger than the cap (then `bytes` is its start, or its end for
    /// `read_tail`, of at most the cap).
    pub truncated: bool,
}

/// A regular file opened beneath the root. Read it through [`UntrustedFile::reader`], which stops
/// at the size it had when it was opened.
#[derive(Debug)]
pub struct UntrustedFile {
    file: File,
    stat: Stat,
    path: PathBuf,
}

impl UntrustedFile {
    /// Size, mode and link count from `fstat` of the open descriptor.
    pub fn stat(&self) -> Stat {
        self.stat
    }

    /// The size when opened.
    pub fn len(&self) -> u64 {
        self.stat.len
    }

    pub fn is_empty(&self) -> bool {
        self.stat.len == 0
    }

    /// The path it was opened as (root joined with the relative path).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads from the current position up to the size the file had when it was opened.
    pub fn reader(&mut self) -> io::Take<&mut File> {
        let len = self.stat.len;
        let pos = self.file.stream_position().unwrap_or(len);
        (&mut self.file).take(len.saturating_sub(pos))
    }

    /// Back to the start (after sniffing the head, say).
    pub fn rewind(&mut self) -> io::Result<()> {
        self.file.rewind()
    }

    /// Reads at most `cap` bytes from the start.
    pub fn read_capped(&mut self, cap: u64) -> io::Result<Contents> {
        let size = self.stat.len;
        let limit = size.min(cap);
        let mut bytes = Vec::with_capacity(usize::try_from(limit).unwrap_or(0));
        self.rewind()?;
        self.reader().take(limit).read_to_end(&mut bytes)?;
        Ok(Contents {
            bytes,
            size,
            truncated: size > cap,
        })
    }
}

/// What to do when a directory (or another non-file) is where [`UntrustedDir::replace`] must
/// put a file, or a non-directory is where it must create a directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InTheWay {
    /// Fail with an error naming the path and what is there (the agent's own writes: the model
    /// should know it named a directory).
    Refuse,
    /// Rename it to a unique `.loopwright-displaced-*` name beside it and carry on (the
    /// harness's writes: a run must not end because the agent made a mess).
    MoveAside,
}

/// Something [`UntrustedDir::replace`] moved out of the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Displaced {
    /// Where it was, relative to the root.
    pub from: PathBuf,
    /// Where it is now, relative to the root.
    pub to: PathBuf,
    pub kind: FileKind,
}

/// What [`UntrustedDir::replace`] did besides writing the file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replaced {
    /// What was at the target before, when it was not a regular file (a symlink, FIFO...
    /// replaced by the rename itself).
    pub replaced: Option<FileKind>,
    /// Things moved aside (directories in the way).
    pub displaced: Vec<Displaced>,
}

/// A directory (the project) whose contents the agent controls, held open; every path given to
/// its methods is relative to it and resolved beneath it without following links.
#[derive(Debug)]
pub struct UntrustedDir {
    fd: OwnedFd,
    path: PathBuf,
    openat2: bool,
}

/// Entries read from one directory at most; the rest are skipped (and reported).
pub const MAX_DIR_ENTRIES: usize = 100_000;
/// Directories a walk descends at most (each level holds a descriptor).
pub const MAX_WALK_DEPTH: usize = 100;

impl UntrustedDir {
    /// Opens `root` (links in `root` itself are followed: it is the user's path).
    pub fn open(root: &Path) -> Result<UntrustedDir, UntrustedError> {
        let c = cstring(root.as_os_str()).ok_or_else(|| UntrustedError::BadPath {
            path: root.to_path_buf(),
        })?;
        let fd = sys_openat(
            libc::AT_FDCWD,
            &c,
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC | libc::O_NOCTTY,
            0,
        )
        .map_err(|source| match source.raw_os_error() {
            Some(libc::ENOENT) => UntrustedError::NotFound {
                path: root.to_path_buf(),
            },
            Some(libc::ENOTDIR) => UntrustedError::NotDirectory {
                path: root.to_path_buf(),
                kind: std::fs::metadata(root)
                    .map(|m| kind_of_metadata(&m))
                    .unwrap_or(FileKind::Unknown),
            },
            _ => UntrustedError::Io {
                path: root.to_path_buf(),
                source,
            },
        })?;
        Ok(UntrustedDir {
            fd,
            path: root.to_path_buf(),
            openat2: openat2_available(),
        })
    }

    /// The root as given.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `lstat` of `rel`: `None` when it (or a directory on its way) does not exist. A symlink as
    /// the last component is reported as [`FileKind::Symlink`]; one on the way is an error.
    pub fn stat(&self, rel: &Path) -> Result<Option<Stat>, UntrustedError> {
        let names = self.names(rel)?;
        let Some((last, parents)) = names.split_last() else {
            return fstat(&self.fd).map(Some).map_err(|e| self.io(rel, e));
        };
        let dir = match self.open_dir(parents, rel) {
            Ok(dir) => dir,
            Err(UntrustedError::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e),
        };
        match fstatat(&dir, last) {
            Ok(st) => Ok(Some(st)),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(None),
            Err(e) => Err(self.io(rel, e)),
        }
    }

    /// The target of the symbolic link `rel` (the link itself is beneath the root; its target
    /// is only text).
    pub fn read_link(&self, rel: &Path) -> Result<PathBuf, UntrustedError> {
        let names = self.names(rel)?;
        let Some((last, parents)) = names.split_last() else {
            return Err(UntrustedError::NotRegular {
                path: self.shown(rel),
                kind: FileKind::Directory,
            });
        };
        let dir = self.open_dir(parents, rel)?;
        readlinkat(&dir, last).map_err(|e| self.io(rel, e))
    }

    /// Opens the regular file `rel` for reading, beneath the root, following no link.
    pub fn open_file(&self, rel: &Path) -> Result<UntrustedFile, UntrustedError> {
        let names = self.names(rel)?;
        let Some((last, parents)) = names.split_last() else {
            return Err(UntrustedError::NotRegular {
                path: self.shown(rel),
                kind: FileKind::Directory,
            });
        };
        let dir = self.open_dir(parents, rel)?;
        // Look before opening: a FIFO or a device is refused without being opened at all.
        let before = fstatat(&dir, last).map_err(|e| self.not_found_or_io(rel, e))?;
        match before.kind {
            FileKind::Regular => {}
            FileKind::Symlink => return Err(self.symlink_error(rel, &dir, last, rel)),
            kind => {
                return Err(UntrustedError::NotRegular {
                    path: self.shown(rel),
                    kind,
                })
            }
        }
        let name = cstring(last).ok_or_else(|| self.bad_path(rel))?;
        let fd = sys_openat(
            dir.as_raw_fd(),
            &name,
            libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC,
            0,
        )
        .map_err(|e| match e.raw_os_error() {
            // Swapped for a link since the look.
            Some(libc::ELOOP) => self.symlink_error(rel, &dir, last, rel),
            _ => self.not_found_or_io(rel, e),
        })?;
        let stat = fstat(&fd).map_err(|e| self.io(rel, e))?;
        if stat.kind != FileKind::Regular {
            return Err(UntrustedError::NotRegular {
                path: self.shown(rel),
                kind: stat.kind,
            });
        }
        Ok(UntrustedFile {
            file: File::from(fd),
            stat,
            path: self.shown(rel),
        })
    }

    /// The first `cap` bytes of the regular file `rel` (never more than its size when opened).
    pub fn read(&self, rel: &Path, cap: u64) -> Result<Contents, UntrustedError> {
        let mut file = self.open_file(rel)?;
        file.read_capped(cap).map_err(|e| self.io(rel, e))
    }

    /// The last `cap` bytes of the regular file `rel` (as its size was when opened).
    pub fn read_tail(&self, rel: &Path, cap: u64) -> Result<Contents, UntrustedError> {
        let mut file = self.open_file(rel)?;
        let size = file.len();
        let start = size.saturating_sub(cap);
        let mut bytes = Vec::with_capacity(usize::try_from(size - start).unwrap_or(0));
        file.file
            .seek(SeekFrom::Start(start))
            .and_then(|_| file.reader().take(cap).read_to_end(&mut bytes))
            .map_err(|e| self.io(rel, e))?;
        Ok(Contents {
            bytes,
            size,
            truncated: start > 0,
        })
    }

    /// Writes `bytes` to `rel` atomically, never through a link: a temp file beside it
    /// (`O_EXCL | O_NOFOLLOW`), fsync, `renameat` over the target, fsync of the directory.
    /// Missing directories on the way are created. An existing regular file's permission bits
    /// are kept (without setuid/setgid/sticky); a new file gets 0644. A symlink, FIFO, socket or
    /// device at the target is replaced by the rename itself; a directory there, and anything
    /// but a directory on the way, is handled as `in_the_way` says.
    pub fn replace(
        &self,
        rel: &Path,
        bytes: &[u8],
        in_the_way: InTheWay,
    ) -> Result<Replaced, UntrustedError> {
        let names = self.names(rel)?;
        let Some((last, parents)) = names.split_last() else {
            return Err(UntrustedError::NotRegular {
                path: self.shown(rel),
                kind: FileKind::Directory,
            });
        };
        let mut report = Replaced::default();
        let dir = self.make_dirs(parents, rel, in_the_way, &mut report)?;
        let dir_rel: PathBuf = parents.iter().collect();
        let mode = match fstatat(&dir, last) {
            Ok(st) => match st.kind {
                FileKind::Regular => st.mode & 0o777,
                FileKind::Directory => {
                    self.clear_way(&dir, &dir_rel, last, st.kind, in_the_way, &mut report)?;
                    0o644
                }
                other => {
                    report.replaced = Some(other);
                    0o644
                }
            },
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => 0o644,
            Err(e) => return Err(self.io(rel, e)),
        };
        let (tmp_name, tmp_fd) = create_temp(&dir).map_err(|e| self.io(rel, e))?;
        let written = write_all_synced(tmp_fd, bytes, mode);
        let renamed = written.and_then(|()| {
            match renameat(&dir, &tmp_name, &dir, last) {
                // A directory appeared since the look: move it aside (or refuse) and retry once.
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::EISDIR | libc::ENOTEMPTY | libc::EEXIST)
                    ) =>
                {
                    let kind = fstatat(&dir, last)
                        .map(|s| s.kind)
                        .unwrap_or(FileKind::Directory);
                    match self.clear_way(&dir, &dir_rel, last, kind, in_the_way, &mut report) {
                        Ok(()) => renameat(&dir, &tmp_name, &dir, last),
                        Err(refused) => Err(io::Error::other(refused.to_string())),
                    }
                }
                other => other,
            }
        });
        if let Err(e) = renameat_cleanup(&dir, &tmp_name, renamed) {
            return Err(match in_the_way {
                InTheWay::Refuse
                    if fstatat(&dir, last).is_ok_and(|s| s.kind == FileKind::Directory) =>
                {
                    UntrustedError::NotRegular {
                        path: self.shown(rel),
                        kind: FileKind::Directory,
                    }
                }
                _ => self.io(rel, e),
            });
        }
        // The rename is durable once the directory is synced.
        let _ = fsync(&dir);
        Ok(report)
    }

    /// Removes `rel` if it exists: a non-directory is unlinked (a link itself, never its
    /// target); a directory is moved aside or refused as `in_the_way` says.
    pub fn remove(&self, rel: &Path, in_the_way: InTheWay) -> Result<Replaced, UntrustedError> {
        let names = self.names(rel)?;
        let Some((last, parents)) = names.split_last() else {
            return Err(self.bad_path(rel));
        };
        let mut report = Replaced::default();
        let dir = match self.open_dir(parents, rel) {
            Ok(dir) => dir,
            Err(UntrustedError::NotFound { .. }) => return Ok(report),
            Err(e) => return Err(e),
        };
        match fstatat(&dir, last) {
            Ok(st) if st.kind == FileKind::Directory => {
                let dir_rel: PathBuf = parents.iter().collect();
                self.clear_way(&dir, &dir_rel, last, st.kind, in_the_way, &mut report)?;
            }
            Ok(st) => {
                let name = cstring(last).ok_or_else(|| self.bad_path(rel))?;
                // SAFETY: valid descriptor and NUL-terminated name.
                if unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) } != 0 {
                    return Err(self.io(rel, io::Error::last_os_error()));
                }
                report.replaced = Some(st.kind);
                let _ = fsync(&dir);
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(self.io(rel, e)),
        }
        Ok(report)
    }

    /// Walks the directory `rel` (the root when empty), depth first, entries of a directory in
    /// byte order of their names, never following a link. `keep` is asked about every entry:
    /// `false` leaves it out (and, for a directory, everything under it). The start itself is
    /// not yielded. Errors (a directory that could not be opened, one too deep or too big) come
    /// as `Err` items and the walk goes on.
    pub fn walk<F>(&self, rel: &Path, keep: F) -> Result<Walk<'_, F>, UntrustedError>
    where
        F: FnMut(&WalkEntry) -> bool,
    {
        let names = self.names(rel)?;
        let fd = self.open_dir(&names, rel)?;
        let start: PathBuf = names.iter().collect();
        let mut walk = Walk {
            dir: self,
            stack: Vec::new(),
            pending: std::collections::VecDeque::new(),
            keep,
        };
        walk.push_frame(fd, start, 0);
        Ok(walk)
    }

    // ---- resolution ----

    /// The components of a relative path: plain names only (`.` is dropped).
    fn names<'p>(&self, rel: &'p Path) -> Result<Vec<&'p OsStr>, UntrustedError> {
        let mut out = Vec::new();
        for c in rel.components() {
            match c {
                Component::CurDir => {}
                Component::Normal(name) if !name.as_bytes().contains(&0) => out.push(name),
                _ => return Err(self.bad_path(rel)),
            }
        }
        Ok(out)
    }

    /// Opens the directory made of `names` beneath the root, following no link.
    fn open_dir(&self, names: &[&OsStr], rel: &Path) -> Result<OwnedFd, UntrustedError> {
        if names.is_empty() {
            return dup(&self.fd).map_err(|e| self.io(rel, e));
        }
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC | libc::O_NOCTTY;
        let result = if self.openat2 {
            let joined: PathBuf = names.iter().collect();
            let c = cstring(joined.as_os_str()).ok_or_else(|| self.bad_path(rel))?;
            sys_openat2(
                self.fd.as_raw_fd(),
                &c,
                flags,
                libc::RESOLVE_BENEATH | libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_NO_MAGICLINKS,
            )
        } else {
            let mut dir: Option<OwnedFd> = None;
            let mut result = Ok(());
            for name in names {
                let c = cstring(name).ok_or_else(|| self.bad_path(rel))?;
                let from = dir.as_ref().map_or(self.fd.as_raw_fd(), AsRawFd::as_raw_fd);
                match sys_openat(from, &c, flags | libc::O_NOFOLLOW, 0) {
                    Ok(fd) => dir = Some(fd),
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
            result.and_then(|()| dir.ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT)))
        };
        result.map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP | libc::ENOTDIR | libc::EXDEV) => self.diagnose(names, rel, e),
            Some(libc::ENOENT) => UntrustedError::NotFound {
                path: self.shown(rel),
            },
            _ => self.io(rel, e),
        })
    }

    /// Why `names` could not be opened as a directory: the first component that is a link or
    /// not a directory.
    fn diagnose(&self, names: &[&OsStr], rel: &Path, original: io::Error) -> UntrustedError {
        let mut dir = match dup(&self.fd) {
            Ok(fd) => fd,
            Err(_) => return self.io(rel, original),
        };
        let mut so_far = PathBuf::new();
        for name in names {
            so_far.push(name);
            let st = match fstatat(&dir, name) {
                Ok(st) => st,
                Err(_) => break,
            };
            match st.kind {
                FileKind::Directory => {}
                FileKind::Symlink => return self.symlink_error(rel, &dir, name, &so_far),
                kind => {
                    return UntrustedError::NotDirectory {
                        path: self.shown(&so_far),
                        kind,
                    }
                }
            }
            let Some(c) = cstring(name) else { break };
            match sys_openat(
                dir.as_raw_fd(),
                &c,
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                0,
            ) {
                Ok(next) => dir = next,
                Err(_) => break,
            }
        }
        self.io(rel, original)
    }

    fn symlink_error(
        &self,
        rel: &Path,
        dir: &OwnedFd,
        name: &OsStr,
        link: &Path,
    ) -> UntrustedError {
        UntrustedError::Symlink {
            path: self.shown(rel),
            link: self.shown(link),
            target: readlinkat(dir, name).ok(),
        }
    }

    /// Opens (creating them as needed) the directories `names`; what is in the way of one is
    /// refused or moved aside.
    fn make_dirs(
        &self,
        names: &[&OsStr],
        rel: &Path,
        in_the_way: InTheWay,
        report: &mut Replaced,
    ) -> Result<OwnedFd, UntrustedError> {
        let mut dir = dup(&self.fd).map_err(|e| self.io(rel, e))?;
        let mut so_far = PathBuf::new();
        for name in names {
            let parent_rel = so_far.clone();
            so_far.push(name);
            let c = cstring(name).ok_or_else(|| self.bad_path(rel))?;
            let open = |dir: &OwnedFd| {
                sys_openat(
                    dir.as_raw_fd(),
                    &c,
                    libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
                    0,
                )
            };
            let mut attempt = 0;
            dir = loop {
                attempt += 1;
                match open(&dir) {
                    Ok(fd) => break fd,
                    Err(e) if attempt > 3 => return Err(self.io(rel, e)),
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                        // SAFETY: valid descriptor and NUL-terminated name.
                        let made = unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), 0o755) };
                        if made != 0 {
                            let err = io::Error::last_os_error();
                            if err.raw_os_error() != Some(libc::EEXIST) {
                                return Err(self.io(&so_far, err));
                            }
                        }
                    }
                    Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR)) => {
                        let kind = fstatat(&dir, name)
                            .map(|s| s.kind)
                            .unwrap_or(FileKind::Unknown);
                        if in_the_way == InTheWay::Refuse {
                            return Err(if kind == FileKind::Symlink {
                                self.symlink_error(rel, &dir, name, &so_far)
                            } else {
                                UntrustedError::NotDirectory {
                                    path: self.shown(&so_far),
                                    kind,
                                }
                            });
                        }
                        self.clear_way(&dir, &parent_rel, name, kind, in_the_way, report)?;
                    }
                    Err(e) => return Err(self.io(&so_far, e)),
                }
            };
        }
        Ok(dir)
    }

    /// Moves `dir/name` (of `kind`) aside, or refuses.
    fn clear_way(
        &self,
        dir: &OwnedFd,
        dir_rel: &Path,
        name: &OsStr,
        kind: FileKind,
        in_the_way: InTheWay,
        report: &mut Replaced,
    ) -> Result<(), UntrustedError> {
        let from = dir_rel.join(name);
        if in_the_way == InTheWay::Refuse {
            return Err(if kind == FileKind::Directory {
                UntrustedError::NotRegular {
                    path: self.shown(&from),
                    kind,
                }
            } else {
                UntrustedError::NotDirectory {
                    path: self.shown(&from),
                    kind,
                }
            });
        }
        let aside = displaced_name(name);
        renameat_noreplace(dir, name, dir, &aside).map_err(|e| self.io(&from, e))?;
        report.displaced.push(Displaced {
            from,
            to: dir_rel.join(&aside),
            kind,
        });
        Ok(())
    }

    // ---- messages ----

    fn shown(&self, rel: &Path) -> PathBuf {
        if rel.as_os_str().is_empty() {
            self.path.clone()
        } else {
            self.path.join(rel)
        }
    }

    fn io(&self, rel: &Path, source: io::Error) -> UntrustedError {
        UntrustedError::Io {
            path: self.shown(rel),
            source,
        }
    }

    fn not_found_or_io(&self, rel: &Path, source: io::Error) -> UntrustedError {
        if source.raw_os_error() == Some(libc::ENOENT) {
            UntrustedError::NotFound {
                path: self.shown(rel),
            }
        } else {
            self.io(rel, source)
        }
    }

    fn bad_path(&self, rel: &Path) -> UntrustedError {
        UntrustedError::BadPath {
            path: rel.to_path_buf(),
        }
    }
}

/// One entry of a [`Walk`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalkEntry {
    /// Relative to the walked [`UntrustedDir`]'s root (not to the walk's start).
    pub rel: PathBuf,
    pub kind: FileKind,
    /// 1 for the start's own entries.
    pub depth: usize,
}

impl WalkEntry {
    pub fn file_name(&self) -> &OsStr {
        self.rel.file_name().unwrap_or(self.rel.as_os_str())
    }
}

/// The iterator of [`UntrustedDir::walk`].
pub struct Walk<'a, F> {
    dir: &'a UntrustedDir,
    stack: Vec<Frame>,
    pending: std::collections::VecDeque<UntrustedError>,
    keep: F,
}

struct Frame {
    fd: OwnedFd,
    rel: PathBuf,
    depth: usize,
    entries: std::vec::IntoIter<DirEntryName>,
}

impl<F> Walk<'_, F> {
    fn push_frame(&mut self, fd: OwnedFd, rel: PathBuf, depth: usize) {
        match read_dir_entries(&fd) {
            Ok((entries, complete)) => {
                if !complete {
                    self.pending.push_back(UntrustedError::Io {
                        path: self.dir.shown(&rel),
                        source: io::Error::other(format!(
                            "more than {MAX_DIR_ENTRIES} entries; the rest were skipped"
                        )),
                    });
                }
                self.stack.push(Frame {
                    fd,
                    rel,
                    depth,
                    entries: entries.into_iter(),
                });
            }
            Err(source) => self.pending.push_back(UntrustedError::Io {
                path: self.dir.shown(&rel),
                source,
            }),
        }
    }
}

impl<F> Iterator for Walk<'_, F>
where
    F: FnMut(&WalkEntry) -> bool,
{
    type Item = Result<WalkEntry, UntrustedError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(e) = self.pending.pop_front() {
                return Some(Err(e));
            }
            let frame = self.stack.last_mut()?;
            let Some((name, dkind)) = frame.entries.next() else {
                self.stack.pop();
                continue;
            };
            let kind = match dkind {
                Some(k) => k,
                None => match fstatat(&frame.fd, &name) {
                    Ok(st) => st.kind,
                    // Gone since the directory was read.
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
                    Err(source) => {
                        return Some(Err(UntrustedError::Io {
                            path: self.dir.shown(&frame.rel.join(&name)),
                            source,
                        }))
                    }
                },
            };
            let entry = WalkEntry {
                rel: frame.rel.join(&name),
                kind,
                depth: frame.depth + 1,
            };
            if !(self.keep)(&entry) {
                continue;
            }
            if kind == FileKind::Directory {
                if entry.depth >= MAX_WALK_DEPTH {
                    self.pending.push_back(UntrustedError::Io {
                        path: self.dir.shown(&entry.rel),
                        source: io::Error::other(format!(
                            "more than {MAX_WALK_DEPTH} directories deep; not walked"
                        )),
                    });
                } else {
                    let opened = cstring(&name)
                        .ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))
                        .and_then(|c| {
                            sys_openat(
                                frame.fd.as_raw_fd(),
                                &c,
                                libc::O_RDONLY
                                    | libc::O_DIRECTORY
                                    | libc::O_NOFOLLOW
                                    | libc::O_CLOEXEC
                                    | libc::O_NOCTTY,
                                0,
                            )
                        });
                    match opened {
                        Ok(fd) => self.push_frame(fd, entry.rel.clone(), entry.depth),
                        // Replaced by a link or removed since it was listed: not followed.
                        Err(source) => self.pending.push_back(UntrustedError::Io {
                            path: self.dir.shown(&entry.rel),
                            source,
                        }),
                    }
                }
            }
            return Some(Ok(entry));
        }
    }
}

/// Reads a file the *user* named (not beneath an agent-controlled root): links are followed,
/// but the open does not block, the file must be regular, and at most `cap` bytes are read.
pub fn read_regular(path: &Path, cap: u64) -> Result<Contents, UntrustedError> {
    let c = cstring(path.as_os_str()).ok_or_else(|| UntrustedError::BadPath {
        path: path.to_path_buf(),
    })?;
    // Look first, so that a FIFO or device is not opened at all.
    let meta = std::fs::metadata(path).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => UntrustedError::NotFound {
            path: path.to_path_buf(),
        },
        _ => UntrustedError::Io {
            path: path.to_path_buf(),
            source,
        },
    })?;
    let kind = kind_of_metadata(&meta);
    if kind != FileKind::Regular {
        return Err(UntrustedError::NotRegular {
            path: path.to_path_buf(),
            kind,
        });
    }
    let fd = sys_openat(
        libc::AT_FDCWD,
        &c,
        libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC,
        0,
    )
    .map_err(|source| UntrustedError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let stat = fstat(&fd).map_err(|source| UntrustedError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    if stat.kind != FileKind::Regular {
        return Err(UntrustedError::NotRegular {
            path: path.to_path_buf(),
            kind: stat.kind,
        });
    }
    let mut file = UntrustedFile {
        file: File::from(fd),
        stat,
        path: path.to_path_buf(),
    };
    file.read_capped(cap).map_err(|source| UntrustedError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// [`UntrustedDir::read`] without keeping the directory open.
pub fn read(root: &Path, rel: &Path, cap: u64) -> Result<Contents, UntrustedError> {
    UntrustedDir::open(root)?.read(rel, cap)
}

/// [`UntrustedDir::replace`] without keeping the directory open.
pub fn replace(
    root: &Path,
    rel: &Path,
    bytes: &[u8],
    in_the_way: InTheWay,
) -> Result<Replaced, UntrustedError> {
    UntrustedDir::open(root)?.replace(rel, bytes, in_the_way)
}

fn kind_of_metadata(meta: &std::fs::Metadata) -> FileKind {
    use std::os::unix::fs::MetadataExt;
    FileKind::from_mode(meta.mode())
}

// ---- system calls ----

fn cstring(s: &OsStr) -> Option<CString> {
    CString::new(s.as_bytes()).ok()
}

fn sys_openat(
    dir: RawFd,
    path: &CStr,
    flags: libc::c_int,
    mode: libc::mode_t,
) -> io::Result<OwnedFd> {
    loop {
        // SAFETY: `path` is NUL-terminated; `dir` is a descriptor we hold or AT_FDCWD.
        let fd = unsafe { libc::openat(dir, path.as_ptr(), flags, mode) };
        if fd >= 0 {
            // SAFETY: the kernel just gave us this descriptor; nothing else owns it.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EINTR) {
            return Err(err);
        }
    }
}

/// `struct open_how` of `openat2(2)` (libc's is `non_exhaustive`).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

fn sys_openat2(dir: RawFd, path: &CStr, flags: libc::c_int, resolve: u64) -> io::Result<OwnedFd> {
    let how = OpenHow {
        flags: u64::try_from(flags).unwrap_or(0),
        mode: 0,
        resolve,
    };
    loop {
        // SAFETY: `path` is NUL-terminated, `how` is a valid `open_how` of the size given.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir,
                path.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if fd >= 0 {
            let fd = RawFd::try_from(fd).map_err(|_| io::Error::from_raw_os_error(libc::EBADF))?;
            // SAFETY: the kernel just gave us this descriptor; nothing else owns it.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd) });
        }
        let err = io::Error::last_os_error();
        // EAGAIN: a rename raced the lookup (RESOLVE_BENEATH refuses to guess); try again.
        if !matches!(err.raw_os_error(), Some(libc::EINTR | libc::EAGAIN)) {
            return Err(err);
        }
    }
}

/// Whether `openat2` works here (Linux 5.6+, and not refused by a seccomp profile).
fn openat2_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        sys_openat2(
            libc::AT_FDCWD,
            c"/",
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
            libc::RESOLVE_NO_SYMLINKS,
        )
        .is_ok()
    })
}

fn dup(fd: &OwnedFd) -> io::Result<OwnedFd> {
    fd.try_clone()
}

fn fstat(fd: &OwnedFd) -> io::Result<Stat> {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: valid descriptor; `st` is written by the kernel on success.
    if unsafe { libc::fstat(fd.as_raw_fd(), st.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fstat succeeded, so `st` is initialized.
    Ok(Stat::from_raw(unsafe { &st.assume_init() }))
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`.
fn fstatat(dir: &OwnedFd, name: &OsStr) -> io::Result<Stat> {
    let c = cstring(name).ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    // SAFETY: valid descriptor, NUL-terminated name; `st` is written by the kernel on success.
    let rc = unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            c.as_ptr(),
            st.as_mut_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fstatat succeeded, so `st` is initialized.
    Ok(Stat::from_raw(unsafe { &st.assume_init() }))
}

fn readlinkat(dir: &OwnedFd, name: &OsStr) -> io::Result<PathBuf> {
    let c = cstring(name).ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    let mut buf = vec![0u8; 4096];
    // SAFETY: valid descriptor, NUL-terminated name, `buf` is writable for its length.
    let n = unsafe {
        libc::readlinkat(
            dir.as_raw_fd(),
            c.as_ptr(),
            buf.as_mut_ptr().cast::<libc::c_char>(),
            buf.len(),
        )
    };
    let n = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
    buf.truncate(n);
    Ok(PathBuf::from(OsString::from_vec(buf)))
}

fn renameat(from_dir: &OwnedFd, from: &OsStr, to_dir: &OwnedFd, to: &OsStr) -> io::Result<()> {
    let a = cstring(from).ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    let b = cstring(to).ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: valid descriptors and NUL-terminated names.
    let rc = unsafe {
        libc::renameat(
            from_dir.as_raw_fd(),
            a.as_ptr(),
            to_dir.as_raw_fd(),
            b.as_ptr(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// `renameat2(RENAME_NOREPLACE)`, or a plain rename where the file system lacks it (the target
/// name is random, so a clash is not expected).
fn renameat_noreplace(
    from_dir: &OwnedFd,
    from: &OsStr,
    to_dir: &OwnedFd,
    to: &OsStr,
) -> io::Result<()> {
    let a = cstring(from).ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    let b = cstring(to).ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: valid descriptors and NUL-terminated names.
    let rc = unsafe {
        libc::renameat2(
            from_dir.as_raw_fd(),
            a.as_ptr(),
            to_dir.as_raw_fd(),
            b.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if matches!(err.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) {
        return renameat(from_dir, from, to_dir, to);
    }
    Err(err)
}

/// Removes the temp file when the rename did not happen.
fn renameat_cleanup(dir: &OwnedFd, tmp: &OsStr, result: io::Result<()>) -> io::Result<()> {
    if result.is_err() {
        if let Some(c) = cstring(tmp) {
            // SAFETY: valid descriptor and NUL-terminated name.
            unsafe { libc::unlinkat(dir.as_raw_fd(), c.as_ptr(), 0) };
        }
    }
    result
}

fn fsync(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: valid descriptor.
    if unsafe { libc::fsync(fd.as_raw_fd()) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A name no one else picks: pid, time and a counter.
fn unique_suffix() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{:x}{:08x}{n:x}", std::process::id(), nanos)
}

/// `.loopwright-displaced-<name>-<unique>`, the name cut so the whole stays under NAME_MAX.
fn displaced_name(name: &OsStr) -> OsString {
    let mut bytes = b".loopwright-displaced-".to_vec();
    bytes.extend(name.as_bytes().iter().take(120));
    bytes.push(b'-');
    bytes.extend(unique_suffix().as_bytes());
    OsString::from_vec(bytes)
}

/// Creates `.loopwright-<unique>.tmp` in `dir`, exclusively, without following links.
fn create_temp(dir: &OwnedFd) -> io::Result<(OsString, OwnedFd)> {
    let mut last = io::Error::from_raw_os_error(libc::EEXIST);
    for _ in 0..16 {
        let name = OsString::from(format!(".loopwright-{}.tmp", unique_suffix()));
        let c = cstring(&name).ok_or_else(|| io::Error::from_raw_os_error(libc::EINVAL))?;
        match sys_openat(
            dir.as_raw_fd(),
            &c,
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            0o600,
        ) {
            Ok(fd) => return Ok((name, fd)),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

fn write_all_synced(fd: OwnedFd, bytes: &[u8], mode: u32) -> io::Result<()> {
    let mut file = File::from(fd);
    file.write_all(bytes)?;
    // SAFETY: valid descriptor.
    if unsafe { libc::fchmod(file.as_raw_fd(), mode) } != 0 {
        return Err(io::Error::last_os_error());
    }
    file.sync_all()
}

/// A name in a directory and its kind from `d_type` (if the file system gave one).
type DirEntryName = (OsString, Option<FileKind>);

/// The names in a directory (not `.`/`..`) with their `d_type` kind, sorted by bytes; false
/// when there were more than [`MAX_DIR_ENTRIES`].
fn read_dir_entries(fd: &OwnedFd) -> io::Result<(Vec<DirEntryName>, bool)> {
    let dupd = dup(fd)?;
    // fdopendir takes ownership of the descriptor (closedir closes it).
    let raw = std::os::fd::IntoRawFd::into_raw_fd(dupd);
    // SAFETY: `raw` is an open directory descriptor we own.
    let dirp = unsafe { libc::fdopendir(raw) };
    if dirp.is_null() {
        let err = io::Error::last_os_error();
        // SAFETY: fdopendir failed, so the descriptor is still ours to close.
        unsafe { libc::close(raw) };
        return Err(err);
    }
    // Every descriptor-level read goes from the start: the dup shares the offset.
    // SAFETY: `dirp` is a valid DIR stream.
    unsafe { libc::rewinddir(dirp) };
    let mut entries = Vec::new();
    let mut complete = true;
    let result = loop {
        // SAFETY: errno is thread-local.
        unsafe { *libc::__errno_location() = 0 };
        // SAFETY: `dirp` is a valid DIR stream.
        let ent = unsafe { libc::readdir64(dirp) };
        if ent.is_null() {
            // SAFETY: errno is thread-local.
            let errno = unsafe { *libc::__errno_location() };
            break if errno == 0 {
                Ok(())
            } else {
                Err(io::Error::from_raw_os_error(errno))
            };
        }
        // SAFETY: readdir returned a valid entry whose d_name is NUL-terminated.
        let (name, dtype) = unsafe {
            (
                CStr::from_ptr((*ent).d_name.as_ptr()).to_bytes().to_vec(),
                (*ent).d_type,
            )
        };
        if name == b"." || name == b".." {
            continue;
        }
        if entries.len() >= MAX_DIR_ENTRIES {
            complete = false;
            break Ok(());
        }
        entries.push((OsString::from_vec(name), FileKind::from_dtype(dtype)));
    };
    // SAFETY: `dirp` is valid and closed once.
    unsafe { libc::closedir(dirp) };
    result?;
    entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    Ok((entries, complete))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use std::os::unix::fs::symlink;

    /// Both resolvers: openat2 (when the kernel has it) and the component walk.
    fn both(root: &Path) -> Vec<UntrustedDir> {
        let a = UntrustedDir::open(root).unwrap();
        let mut b = UntrustedDir::open(root).unwrap();
        b.openat2 = false;
        vec![a, b]
    }

    fn mkfifo(path: &Path) {
        let c = CString::new(path.as_os_str().as_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    }

    #[test]
    fn openat2_is_used_on_this_kernel() {
        // Linux 5.6+; the fallback is tested through `both` regardless.
        assert!(openat2_available());
    }

    #[test]
    fn reads_regular_files_and_caps_them() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/a.txt"), "hello world").unwrap();
        for d in both(dir.path()) {
            let c = d.read(Path::new("sub/a.txt"), 100).unwrap();
            assert_eq!(c.bytes, b"hello world");
            assert!(!c.truncated);
            let c = d.read(Path::new("./sub/a.txt"), 5).unwrap();
            assert_eq!(c.bytes, b"hello");
            assert!(c.truncated);
            assert_eq!(c.size, 11);
            let t = d.read_tail(Path::new("sub/a.txt"), 5).unwrap();
            assert_eq!(t.bytes, b"world");
            assert!(t.truncated);
            assert!(d
                .read(Path::new("sub/missing"), 5)
                .unwrap_err()
                .is_not_found());
            assert!(d
                .read(Path::new("nodir/missing"), 5)
                .unwrap_err()
                .is_not_found());
        }
    }

    #[test]
    fn links_are_never_followed_in_any_component() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "SECRET").unwrap();
        symlink(outside.path().join("secret"), dir.path().join("last")).unwrap();
        symlink(outside.path(), dir.path().join("mid")).unwrap();
        symlink("/proc/self/environ", dir.path().join("environ")).unwrap();
        symlink("/dev/zero", dir.path().join("zero")).unwrap();
        std::fs::write(dir.path().join("inside"), "in").unwrap();
        symlink("inside", dir.path().join("inner-link")).unwrap();
        for d in both(dir.path()) {
            let e = d.read(Path::new("last"), 1 << 20).unwrap_err();
            assert!(matches!(e, UntrustedError::Symlink { .. }), "{e}");
            assert!(e.to_string().contains("is a symbolic link (to"), "{e}");
            let e = d.read(Path::new("mid/secret"), 1 << 20).unwrap_err();
            match &e {
                UntrustedError::Symlink { link, .. } => assert!(link.ends_with("mid"), "{e}"),
                other => panic!("{other}"),
            }
            assert!(e.to_string().contains("goes through"), "{e}");
            for name in ["environ", "zero", "inner-link"] {
                let e = d.read(Path::new(name), 1 << 20).unwrap_err();
                assert!(matches!(e, UntrustedError::Symlink { .. }), "{name}: {e}");
            }
            assert_eq!(
                d.stat(Path::new("last")).unwrap().unwrap().kind,
                FileKind::Symlink
            );
            assert!(d.stat(Path::new("mid/secret")).is_err());
            assert!(matches!(
                d.read(Path::new("../x"), 1).unwrap_err(),
                UntrustedError::BadPath { .. }
            ));
            assert!(matches!(
                d.read(Path::new("/etc/passwd"), 1).unwrap_err(),
                UntrustedError::BadPath { .. }
            ));
        }
    }

    #[test]
    fn fifos_sockets_directories_and_devices_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        mkfifo(&dir.path().join("fifo"));
        let _listener = std::os::unix::net::UnixListener::bind(dir.path().join("sock")).unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        for d in both(dir.path()) {
            for (name, kind) in [
                ("fifo", FileKind::Fifo),
                ("sock", FileKind::Socket),
                ("d", FileKind::Directory),
            ] {
                match d.read(Path::new(name), 10).unwrap_err() {
                    UntrustedError::NotRegular { kind: k, path } => {
                        assert_eq!(k, kind);
                        assert!(path.ends_with(name));
                    }
                    other => panic!("{name}: {other}"),
                }
            }
            let e = d.read(Path::new("fifo"), 10).unwrap_err();
            assert!(
                e.to_string()
                    .ends_with("fifo is a FIFO (named pipe), not a regular file"),
                "{e}"
            );
            assert_eq!(e.reason(), "is a FIFO (named pipe), not a regular file");
        }
        let e = read_regular(Path::new("/dev/zero"), 10).unwrap_err();
        assert!(
            matches!(
                e,
                UntrustedError::NotRegular {
                    kind: FileKind::CharDevice,
                    ..
                }
            ),
            "{e}"
        );
        let e = read_regular(&dir.path().join("fifo"), 10).unwrap_err();
        assert!(
            matches!(
                e,
                UntrustedError::NotRegular {
                    kind: FileKind::Fifo,
                    ..
                }
            ),
            "{e}"
        );
    }

    #[test]
    fn a_file_growing_while_read_is_cut_at_its_size_when_opened() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grows");
        std::fs::write(&path, vec![b'a'; 4096]).unwrap();
        let d = UntrustedDir::open(dir.path()).unwrap();
        let mut f = d.open_file(Path::new("grows")).unwrap();
        // Appended to after the open (as a background process would): not read.
        let mut w = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        w.write_all(&vec![b'b'; 1 << 20]).unwrap();
        let mut all = Vec::new();
        f.reader().read_to_end(&mut all).unwrap();
        assert_eq!(all.len(), 4096);
        // And a truncated one simply ends early.
        let mut f = d.open_file(Path::new("grows")).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(10)
            .unwrap();
        let mut all = Vec::new();
        f.reader().read_to_end(&mut all).unwrap();
        assert_eq!(all.len(), 10);
        // The cap holds whatever the size.
        let c = d.read(Path::new("grows"), 100).unwrap();
        assert_eq!(c.bytes.len(), 10);
    }

    #[test]
    fn replace_writes_through_no_link_and_moves_directories_aside() {
        for openat2 in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let outside = tempfile::tempdir().unwrap();
            std::fs::write(outside.path().join("target"), "keep").unwrap();
            symlink(outside.path().join("target"), dir.path().join("link")).unwrap();
            std::fs::create_dir_all(dir.path().join("asdir/inner")).unwrap();
            std::fs::write(dir.path().join("asdir/inner/x"), "x").unwrap();
            mkfifo(&dir.path().join("fifo"));
            symlink(outside.path(), dir.path().join("linkdir")).unwrap();
            std::fs::write(dir.path().join("plainfile"), "p").unwrap();
            {
                let mut d = UntrustedDir::open(dir.path()).unwrap();
                d.openat2 = openat2;
                let r = d
                    .replace(Path::new("link"), b"new", InTheWay::MoveAside)
                    .unwrap();
                assert_eq!(r.replaced, Some(FileKind::Symlink));
                assert_eq!(
                    std::fs::read_to_string(outside.path().join("target")).unwrap(),
                    "keep"
                );
                assert_eq!(
                    std::fs::read_to_string(dir.path().join("link")).unwrap(),
                    "new"
                );

                let r = d
                    .replace(Path::new("fifo"), b"f", InTheWay::MoveAside)
                    .unwrap();
                assert_eq!(r.replaced, Some(FileKind::Fifo));

                // A directory in the way, the agent's own write: refused.
                std::fs::create_dir_all(dir.path().join("asdir/inner")).unwrap();
                let e = d
                    .replace(Path::new("asdir"), b"j", InTheWay::Refuse)
                    .unwrap_err();
                assert!(
                    matches!(
                        e,
                        UntrustedError::NotRegular {
                            kind: FileKind::Directory,
                            ..
                        }
                    ),
                    "{e}"
                );
                // The harness's write: moved aside, reported.
                let r = d
                    .replace(Path::new("asdir"), b"j", InTheWay::MoveAside)
                    .unwrap();
                assert_eq!(r.displaced.len(), 1, "{r:?}");
                let aside = dir.path().join(&r.displaced[0].to);
                assert!(r.displaced[0]
                    .to
                    .to_string_lossy()
                    .starts_with(".loopwright-displaced-asdir-"));
                assert!(aside.join("inner").is_dir());
                assert_eq!(
                    std::fs::read_to_string(dir.path().join("asdir")).unwrap(),
                    "j"
                );

                // A link where a directory belongs: never written through.
                let e = d
                    .replace(Path::new("linkdir/new"), b"n", InTheWay::Refuse)
                    .unwrap_err();
                assert!(matches!(e, UntrustedError::Symlink { .. }), "{e}");
                let r = d
                    .replace(Path::new("linkdir/new"), b"n", InTheWay::MoveAside)
                    .unwrap();
                assert_eq!(r.displaced[0].kind, FileKind::Symlink);
                assert!(!outside.path().join("new").exists());
                assert!(std::fs::symlink_metadata(dir.path().join("linkdir"))
                    .unwrap()
                    .is_dir());
                std::fs::remove_dir_all(dir.path().join("linkdir")).unwrap();
                symlink(outside.path(), dir.path().join("linkdir")).unwrap();

                // A file where a directory belongs.
                let e = d
                    .replace(Path::new("plainfile/x"), b"n", InTheWay::Refuse)
                    .unwrap_err();
                assert!(
                    matches!(
                        e,
                        UntrustedError::NotDirectory {
                            kind: FileKind::Regular,
                            ..
                        }
                    ),
                    "{e}"
                );

                // Missing directories are created; permissions of a file are kept.
                d.replace(Path::new("a/b/c.txt"), b"abc", InTheWay::Refuse)
                    .unwrap();
                assert_eq!(
                    std::fs::read_to_string(dir.path().join("a/b/c.txt")).unwrap(),
                    "abc"
                );
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(
                    dir.path().join("a/b/c.txt"),
                    std::fs::Permissions::from_mode(0o4755),
                )
                .unwrap();
                d.replace(Path::new("a/b/c.txt"), b"abcd", InTheWay::Refuse)
                    .unwrap();
                let mode = std::fs::metadata(dir.path().join("a/b/c.txt"))
                    .unwrap()
                    .permissions()
                    .mode();
                assert_eq!(mode & 0o7777, 0o755);
                d.replace(Path::new("new.txt"), b"n", InTheWay::Refuse)
                    .unwrap();
                let mode = std::fs::metadata(dir.path().join("new.txt"))
                    .unwrap()
                    .permissions()
                    .mode();
                assert_eq!(mode & 0o777, 0o644);
                std::fs::remove_dir_all(dir.path().join("a")).unwrap();
            }
            // No temp files left behind.
            let leftovers: Vec<_> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(".tmp"))
                .collect();
            assert!(leftovers.is_empty(), "{leftovers:?}");
        }
    }

    #[test]
    fn remove_unlinks_links_not_targets() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("t"), "keep").unwrap();
        symlink(outside.path().join("t"), dir.path().join("l")).unwrap();
        std::fs::create_dir(dir.path().join("d")).unwrap();
        let d = UntrustedDir::open(dir.path()).unwrap();
        assert_eq!(
            d.remove(Path::new("l"), InTheWay::Refuse).unwrap().replaced,
            Some(FileKind::Symlink)
        );
        assert!(outside.path().join("t").exists());
        assert!(d.remove(Path::new("d"), InTheWay::Refuse).is_err());
        assert_eq!(
            d.remove(Path::new("d"), InTheWay::MoveAside)
                .unwrap()
                .displaced
                .len(),
            1
        );
        assert_eq!(
            d.remove(Path::new("absent"), InTheWay::Refuse).unwrap(),
            Replaced::default()
        );
    }

    #[test]
    fn walk_lists_sorted_never_follows_links_and_reports_kinds() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "s").unwrap();
        std::fs::create_dir_all(dir.path().join("b/c")).unwrap();
        std::fs::write(dir.path().join("b/c/f"), "f").unwrap();
        std::fs::write(dir.path().join("a"), "a").unwrap();
        std::fs::write(dir.path().join("new\nline"), "n").unwrap();
        symlink(outside.path(), dir.path().join("out")).unwrap();
        mkfifo(&dir.path().join("pipe"));
        std::fs::create_dir(dir.path().join("skipme")).unwrap();
        std::fs::write(dir.path().join("skipme/x"), "x").unwrap();
        for d in both(dir.path()) {
            let entries: Vec<(String, FileKind)> = d
                .walk(Path::new(""), |e| e.file_name() != "skipme")
                .unwrap()
                .map(|e| e.unwrap())
                .map(|e| (e.rel.to_string_lossy().into_owned(), e.kind))
                .collect();
            assert_eq!(
                entries,
                vec![
                    ("a".to_string(), FileKind::Regular),
                    ("b".to_string(), FileKind::Directory),
                    ("b/c".to_string(), FileKind::Directory),
                    ("b/c/f".to_string(), FileKind::Regular),
                    ("new\nline".to_string(), FileKind::Regular),
                    ("out".to_string(), FileKind::Symlink),
                    ("pipe".to_string(), FileKind::Fifo),
                ]
            );
            let sub: Vec<String> = d
                .walk(Path::new("b"), |_| true)
                .unwrap()
                .map(|e| e.unwrap().rel.to_string_lossy().into_owned())
                .collect();
            assert_eq!(sub, vec!["b/c", "b/c/f"]);
            assert!(matches!(
                d.walk(Path::new("out"), |_| true).err().unwrap(),
                UntrustedError::Symlink { .. }
            ));
        }
    }

    #[test]
    fn walk_depth_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = dir.path().to_path_buf();
        for _ in 0..(MAX_WALK_DEPTH + 5) {
            p.push("d");
        }
        std::fs::create_dir_all(&p).unwrap();
        let d = UntrustedDir::open(dir.path()).unwrap();
        let items: Vec<_> = d.walk(Path::new(""), |_| true).unwrap().collect();
        assert_eq!(items.iter().filter(|i| i.is_ok()).count(), MAX_WALK_DEPTH);
        assert_eq!(items.iter().filter(|i| i.is_err()).count(), 1);
    }
}
