//! The mount view: the file system a world's commands see.
//!
//! A tmpfs root holding, read-only, the system's toolchain directories (`/usr`, `/bin`,
//! `/lib*`, `/opt`, and `/etc` with every entry an ordinary user could not read masked); the
//! project read-write at its real absolute path (with `.git` and the frozen files read-only
//! when the harness names them); the run's private temp dir at `/tmp`; an empty tmpfs home at
//! the real `$HOME` path with read-only binds of toolchain directories only (`~/.rustup`,
//! `~/.cargo/bin`, `~/.pyenv`, `~/.nvm`, `~/go`, `~/.local/bin`, `~/.local/lib`) and a
//! harness-written `~/.gitconfig`; a minimal `/dev` (null, zero, full, random, urandom, tty, a
//! new devpts, a tmpfs `/dev/shm`); a fresh `/proc` (the world's pid namespace) with its
//! root-only entries masked and `/proc/sys` read-only. No `/sys`, `/run`, `/var`, `/srv`,
//! `/mnt`, `/root` or `/home` beyond what is named above, no state dir, no other project, no
//! host socket.
//!
//! The plan ([`ViewPlan`]) is computed in the harness: every path a C string, every operation
//! a plain value. The world's init process (a fork that never execs) applies it with raw
//! system calls, before `pivot_root`: procfs can only be mounted while a full `/proc` is still
//! visible, and bind sources are host paths.
//!
//! Read-only binds are remounted with the source's locked flags (`nosuid`, `nodev`, `noexec`,
//! atime) from `statfs`, as a user namespace requires, and so are the mounts below them (from
//! `/proc/self/mountinfo`: Docker's `/etc/hosts` and the like), so no file outside the project
//! takes `chmod`, `chown`, `utime` or `setxattr` (EROFS). `/lib`, `/bin` and friends that are
//! symlinks into `/usr` on the host are symlinks in the view too.

use std::collections::BTreeSet;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::exec::SandboxError;

/// System directories bound read-only (or recreated as symlinks) when the host has them.
const SYSTEM_DIRS: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt",
];

/// Toolchain directories under `$HOME` bound read-only. Never `~/.ssh`, `~/.config`,
/// `~/.cache`, `~/.local/share`, `~/.local/state`, `~/.gitconfig`, `~/.cargo` itself (its
/// `credentials.toml`), `~/.npmrc` and the like.
const HOME_TOOLCHAINS: &[&str] = &[
    ".rustup",
    ".cargo/bin",
    ".pyenv",
    ".nvm",
    "go",
    ".local/bin",
    ".local/lib",
];

/// Variables naming toolchain roots that are bound read-only where they live, unless they are
/// `$HOME` itself or above it.
const TOOLCHAIN_VARS: &[&str] = &[
    "RUSTUP_HOME",
    "GOROOT",
    "PYENV_ROOT",
    "NVM_DIR",
    "CONDA_PREFIX",
    "VIRTUAL_ENV",
    "JAVA_HOME",
];

/// Devices bound from the host (read-only mounts: writes to the device work, metadata changes
/// to the host's device node do not).
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom", "tty"];

const GITCONFIG: &str = "\
# Written by loopwright for the agent's commands (the user's own ~/.gitconfig is not visible).
[user]
\tname = loopwright agent
\temail = agent@loopwright.invalid
[safe]
\tdirectory = *
[init]
\tdefaultBranch = main
[gc]
\tautoDetach = false
[maintenance]
\tautoDetach = false
";

/// Inputs of a view.
#[derive(Debug)]
pub(crate) struct ViewSpec<'a> {
    pub(crate) project: &'a Path,
    /// The run's private temp dir (host path), shown at `/tmp`.
    pub(crate) private_tmp: &'a Path,
    /// An empty host directory the view's root is mounted on (in the world only).
    pub(crate) staging: &'a Path,
    /// The home directory (canonical), if any.
    pub(crate) home: Option<&'a Path>,
    pub(crate) read_only: &'a [PathBuf],
    pub(crate) extra_read: &'a [PathBuf],
    pub(crate) extra_write: &'a [PathBuf],
    /// The environment commands get (for toolchain variables).
    pub(crate) env: &'a [(std::ffi::OsString, std::ffi::OsString)],
}

#[derive(Debug)]
enum OpKind {
    MakePrivate,
    Tmpfs {
        dest: CString,
        flags: libc::c_ulong,
        data: CString,
    },
    Mkdir {
        path: CString,
        mode: libc::mode_t,
    },
    MakeFile {
        path: CString,
        mode: libc::mode_t,
    },
    Bind {
        src: CString,
        dest: CString,
    },
    ReadOnly {
        dest: CString,
    },
    Symlink {
        target: CString,
        path: CString,
    },
    Write {
        path: CString,
        content: Vec<u8>,
    },
    Proc {
        dest: CString,
    },
    Devpts {
        dest: CString,
        data: CString,
    },
    Unlink {
        path: CString,
    },
    Rmdir {
        path: CString,
    },
    Pivot {
        root: CString,
    },
}

#[derive(Debug)]
struct Op {
    kind: OpKind,
    /// A missing path (ENOENT, ENOTDIR) is skipped rather than failing the world.
    optional: bool,
}

/// Every step of building a view, ready to run in the init process.
#[derive(Debug)]
pub(crate) struct ViewPlan {
    ops: Vec<Op>,
    /// Paths (in the view) commands may write: Landlock rules.
    writable: Vec<PathBuf>,
}

fn cstr(path: &Path) -> Result<CString, SandboxError> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| {
        SandboxError::World(format!(
            "the path {} contains a NUL byte and cannot be shown in the sandbox",
            path.display()
        ))
    })
}

fn cstring(s: &str) -> CString {
    CString::new(s.replace('\0', "")).unwrap_or_default()
}

struct Builder<'a> {
    staging: &'a Path,
    ops: Vec<Op>,
    made: BTreeSet<PathBuf>,
}

impl Builder<'_> {
    /// The staging-side path of a view path.
    fn at(&self, view: &Path) -> PathBuf {
        let rel = view.strip_prefix("/").unwrap_or(view);
        if rel.as_os_str().is_empty() {
            self.staging.to_path_buf()
        } else {
            self.staging.join(rel)
        }
    }

    fn push(&mut self, kind: OpKind, optional: bool) {
        self.ops.push(Op { kind, optional });
    }

    /// Directories down to `view` (inclusive), created where missing.
    fn dirs(&mut self, view: &Path) -> Result<(), SandboxError> {
        let mut chain: Vec<&Path> = view.ancestors().collect();
        chain.reverse();
        for dir in chain {
            if dir == Path::new("/") || self.made.contains(dir) {
                continue;
            }
            self.made.insert(dir.to_path_buf());
            let path = cstr(&self.at(dir))?;
            self.push(OpKind::Mkdir { path, mode: 0o755 }, false);
        }
        Ok(())
    }

    /// A mount point for `src` at `view`: a directory, or an empty file for a file.
    fn mount_point(&mut self, src: &Path, view: &Path) -> Result<(), SandboxError> {
        if src.is_dir() {
            self.dirs(view)
        } else {
            if let Some(parent) = view.parent() {
                self.dirs(parent)?;
            }
            let path = cstr(&self.at(view))?;
            self.push(OpKind::MakeFile { path, mode: 0o644 }, false);
            Ok(())
        }
    }

    fn bind(
        &mut self,
        src: &Path,
        view: &Path,
        read_only: bool,
        submounts: &[PathBuf],
    ) -> Result<(), SandboxError> {
        self.mount_point(src, view)?;
        let dest = cstr(&self.at(view))?;
        self.push(
            OpKind::Bind {
                src: cstr(src)?,
                dest: dest.clone(),
            },
            false,
        );
        if read_only {
            self.push(OpKind::ReadOnly { dest }, false);
            // Mounts below the source came along (recursive bind) and are still writable.
            for sub in submounts.iter().filter(|m| m.starts_with(src) && *m != src) {
                let rel = sub.strip_prefix(src).unwrap_or(sub);
                let dest = cstr(&self.at(&view.join(rel)))?;
                self.push(OpKind::ReadOnly { dest }, true);
            }
        }
        Ok(())
    }

    /// Masks `view` (an existing file or directory under a bound tree) with an inaccessible
    /// empty one.
    fn mask(&mut self, view: &Path, is_dir: bool) -> Result<(), SandboxError> {
        let src = self.at(Path::new(if is_dir { MASK_DIR } else { MASK_FILE }));
        let dest = cstr(&self.at(view))?;
        self.push(
            OpKind::Bind {
                src: cstr(&src)?,
                dest: dest.clone(),
            },
            true,
        );
        self.push(OpKind::ReadOnly { dest }, true);
        Ok(())
    }
}

const MASK_FILE: &str = "/.loopwright-mask";
const MASK_DIR: &str = "/.loopwright-mask-dir";

impl ViewPlan {
    pub(crate) fn new(spec: &ViewSpec<'_>) -> Result<ViewPlan, SandboxError> {
        let mounts = host_mount_points();
        let mut b = Builder {
            staging: spec.staging,
            ops: Vec::new(),
            made: BTreeSet::new(),
        };
        b.push(OpKind::MakePrivate, false);
        b.push(
            OpKind::Tmpfs {
                dest: cstr(spec.staging)?,
                flags: libc::MS_NOSUID | libc::MS_NODEV,
                data: cstring("mode=0755,size=16m"),
            },
            false,
        );
        b.push(
            OpKind::MakeFile {
                path: cstr(&b.at(Path::new(MASK_FILE)))?,
                mode: 0,
            },
            false,
        );
        b.push(
            OpKind::Mkdir {
                path: cstr(&b.at(Path::new(MASK_DIR)))?,
                mode: 0,
            },
            false,
        );

        // System directories.
        for dir in SYSTEM_DIRS {
            let path = Path::new(dir);
            let Ok(meta) = std::fs::symlink_metadata(path) else {
                continue;
            };
            if meta.file_type().is_symlink() {
                if let Ok(target) = std::fs::read_link(path) {
                    let link = cstr(&b.at(path))?;
                    b.push(
                        OpKind::Symlink {
                            target: cstr(&target)?,
                            path: link,
                        },
                        false,
                    );
                }
            } else if meta.is_dir() {
                b.bind(path, path, true, &mounts)?;
            }
        }
        for (entry, is_dir) in etc_unreadable() {
            b.mask(entry, *is_dir)?;
        }

        // /proc, with what only root may read masked and /proc/sys read-only.
        let proc_dir = Path::new("/proc");
        b.dirs(proc_dir)?;
        let proc_at = cstr(&b.at(proc_dir))?;
        b.push(OpKind::Proc { dest: proc_at }, false);
        let sys_at = cstr(&b.at(Path::new("/proc/sys")))?;
        b.push(
            OpKind::Bind {
                src: sys_at.clone(),
                dest: sys_at.clone(),
            },
            true,
        );
        b.push(OpKind::ReadOnly { dest: sys_at }, true);
        for (entry, is_dir) in proc_unreadable() {
            b.mask(entry, *is_dir)?;
        }

        // /dev.
        let dev = Path::new("/dev");
        b.dirs(dev)?;
        b.push(
            OpKind::Tmpfs {
                dest: cstr(&b.at(dev))?,
                flags: libc::MS_NOSUID | libc::MS_NOEXEC,
                data: cstring("mode=0755,size=64k"),
            },
            false,
        );
        for name in DEVICES {
            let host = dev.join(name);
            if host.exists() {
                b.bind(&host, &host, true, &[])?;
            }
        }
        for (name, target) in [
            ("fd", "/proc/self/fd"),
            ("stdin", "/proc/self/fd/0"),
            ("stdout", "/proc/self/fd/1"),
            ("stderr", "/proc/self/fd/2"),
            ("ptmx", "pts/ptmx"),
        ] {
            let path = cstr(&b.at(&dev.join(name)))?;
            b.push(
                OpKind::Symlink {
                    target: cstring(target),
                    path,
                },
                false,
            );
        }
        let pts = dev.join("pts");
        b.dirs(&pts)?;
        b.push(
            OpKind::Devpts {
                dest: cstr(&b.at(&pts))?,
                data: cstring("newinstance,ptmxmode=0666,mode=0620"),
            },
            false,
        );
        let shm = dev.join("shm");
        b.dirs(&shm)?;
        b.push(
            OpKind::Tmpfs {
                dest: cstr(&b.at(&shm))?,
                flags: libc::MS_NOSUID | libc::MS_NODEV,
                data: cstring("mode=1777,size=1g"),
            },
            false,
        );
        let dev_at = cstr(&b.at(dev))?;
        b.push(OpKind::ReadOnly { dest: dev_at }, false);

        // The private temp dir at /tmp.
        let tmp = Path::new("/tmp");
        b.bind(spec.private_tmp, tmp, false, &[])?;

        let mut writable = vec![
            tmp.to_path_buf(),
            PathBuf::from("/dev/null"),
            PathBuf::from("/dev/zero"),
            PathBuf::from("/dev/full"),
            PathBuf::from("/dev/tty"),
            pts,
            shm,
        ];

        // An empty home with the toolchains.
        if let Some(home) = spec.home.filter(|h| *h != Path::new("/")) {
            b.dirs(home)?;
            b.push(
                OpKind::Tmpfs {
                    dest: cstr(&b.at(home))?,
                    flags: libc::MS_NOSUID | libc::MS_NODEV,
                    data: cstring("mode=0700,size=1g"),
                },
                false,
            );
            for rel in HOME_TOOLCHAINS {
                let src = home.join(rel);
                if let Ok(real) = src.canonicalize() {
                    if real.is_dir() && !home.starts_with(&real) {
                        b.bind(&real, &src, true, &mounts)?;
                    }
                }
            }
            let gitconfig = cstr(&b.at(&home.join(".gitconfig")))?;
            b.push(
                OpKind::Write {
                    path: gitconfig,
                    content: GITCONFIG.as_bytes().to_vec(),
                },
                false,
            );
            writable.push(home.to_path_buf());
        }
        for var in TOOLCHAIN_VARS {
            let Some(value) = spec.env.iter().find(|(k, _)| k == var).map(|(_, v)| v) else {
                continue;
            };
            let Ok(real) = Path::new(value).canonicalize() else {
                continue;
            };
            let covered = SYSTEM_DIRS.iter().any(|d| real.starts_with(d))
                || spec.home.is_some_and(|h| {
                    HOME_TOOLCHAINS.iter().any(|t| real.starts_with(h.join(t)))
                        || h.starts_with(&real)
                })
                || real.starts_with(spec.project)
                || real == Path::new("/");
            if !covered && real.is_dir() {
                b.bind(&real, &real, true, &mounts)?;
            }
        }
        for path in spec.extra_read {
            if let Ok(real) = path.canonicalize() {
                if real != Path::new("/") {
                    b.bind(&real, &real, true, &mounts)?;
                }
            }
        }

        // The project, read-write, with the harness's read-only paths inside.
        b.bind(spec.project, spec.project, false, &[])?;
        writable.push(spec.project.to_path_buf());
        for path in spec.read_only {
            let full = spec.project.join(path);
            let Ok(real) = full.canonicalize() else {
                continue;
            };
            if real.starts_with(spec.project) && real != spec.project {
                b.bind(&real, &real, true, &[])?;
            }
        }
        for path in spec.extra_write {
            if let Ok(real) = path.canonicalize() {
                if real != Path::new("/") {
                    b.bind(&real, &real, false, &[])?;
                    writable.push(real);
                }
            }
        }

        let mask_file = cstr(&b.at(Path::new(MASK_FILE)))?;
        let mask_dir = cstr(&b.at(Path::new(MASK_DIR)))?;
        b.push(OpKind::Unlink { path: mask_file }, false);
        b.push(OpKind::Rmdir { path: mask_dir }, false);
        let root = cstr(spec.staging)?;
        b.push(OpKind::ReadOnly { dest: root.clone() }, false);
        b.push(OpKind::Pivot { root }, false);
        Ok(ViewPlan {
            ops: b.ops,
            writable,
        })
    }

    /// Paths commands may write, in the view.
    pub(crate) fn writable(&self) -> &[PathBuf] {
        &self.writable
    }

    /// What step `index` does, for an error message.
    pub(crate) fn describe(&self, index: usize) -> String {
        let s = |c: &CString| c.to_string_lossy().into_owned();
        match self.ops.get(index).map(|o| &o.kind) {
            None => "finishing the view".to_string(),
            Some(OpKind::MakePrivate) => "making the mount namespace private".to_string(),
            Some(OpKind::Tmpfs { dest, .. }) => format!("mounting a tmpfs at {}", s(dest)),
            Some(OpKind::Mkdir { path, .. }) => format!("creating the directory {}", s(path)),
            Some(OpKind::MakeFile { path, .. }) => format!("creating the file {}", s(path)),
            Some(OpKind::Bind { src, dest }) => format!("binding {} at {}", s(src), s(dest)),
            Some(OpKind::ReadOnly { dest }) => format!("making {} read-only", s(dest)),
            Some(OpKind::Symlink { path, .. }) => format!("creating the symlink {}", s(path)),
            Some(OpKind::Write { path, .. }) => format!("writing {}", s(path)),
            Some(OpKind::Proc { dest }) => format!("mounting /proc at {}", s(dest)),
            Some(OpKind::Devpts { dest, .. }) => format!("mounting devpts at {}", s(dest)),
            Some(OpKind::Unlink { path }) => format!("removing {}", s(path)),
            Some(OpKind::Rmdir { path }) => format!("removing {}", s(path)),
            Some(OpKind::Pivot { root }) => format!("changing the root to {}", s(root)),
        }
    }

    /// Builds the view. Runs in the world's init process (a fork of the harness that never
    /// execs): system calls only, no allocation. Returns the failing step and errno.
    ///
    /// # Safety
    /// Changes the calling process's mounts and root; only for the init process.
    pub(crate) unsafe fn apply(&self) -> Result<(), (usize, i32)> {
        for (index, op) in self.ops.iter().enumerate() {
            if let Err(errno) = op.kind.run() {
                if op.optional && (errno == libc::ENOENT || errno == libc::ENOTDIR) {
                    continue;
                }
                return Err((index, errno));
            }
        }
        Ok(())
    }
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn check(ret: libc::c_int) -> Result<(), i32> {
    if ret == 0 {
        Ok(())
    } else {
        Err(errno())
    }
}

/// The `ST_*` mount flags of the file system at `path` (`statfs`'s `f_flags`).
#[cfg(target_pointer_width = "64")]
unsafe fn mount_flags(path: &CString) -> Result<libc::c_ulong, i32> {
    // The kernel's struct statfs on 64-bit targets: eleven 8-byte fields before the spare
    // words, `f_flags` the eleventh (libc does not expose it).
    let mut buf: [libc::c_ulong; 16] = [0; 16];
    if libc::syscall(libc::SYS_statfs, path.as_ptr(), buf.as_mut_ptr()) != 0 {
        return Err(errno());
    }
    Ok(buf[10])
}

#[cfg(not(target_pointer_width = "64"))]
unsafe fn mount_flags(path: &CString) -> Result<libc::c_ulong, i32> {
    let mut st: libc::statvfs = std::mem::zeroed();
    check(libc::statvfs(path.as_ptr(), &mut st))?;
    Ok(st.f_flag)
}

/// The `MS_*` flags a read-only remount must keep (those locked by the user namespace).
unsafe fn locked_flags(path: &CString) -> Result<libc::c_ulong, i32> {
    let f = mount_flags(path)?;
    let mut flags = 0;
    for (st_flag, ms_flag) in [
        (libc::ST_NOSUID, libc::MS_NOSUID),
        (libc::ST_NODEV, libc::MS_NODEV),
        (libc::ST_NOEXEC, libc::MS_NOEXEC),
        (libc::ST_NOATIME, libc::MS_NOATIME),
        (libc::ST_NODIRATIME, libc::MS_NODIRATIME),
        (libc::ST_RELATIME, libc::MS_RELATIME),
    ] {
        if f & st_flag != 0 {
            flags |= ms_flag;
        }
    }
    if f & (libc::ST_NOATIME | libc::ST_RELATIME) == 0 {
        flags |= libc::MS_STRICTATIME;
    }
    Ok(flags)
}

impl OpKind {
    unsafe fn run(&self) -> Result<(), i32> {
        let null = std::ptr::null::<libc::c_char>();
        match self {
            OpKind::MakePrivate => check(libc::mount(
                null,
                c"/".as_ptr(),
                null,
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            )),
            OpKind::Tmpfs { dest, flags, data } => check(libc::mount(
                c"tmpfs".as_ptr(),
                dest.as_ptr(),
                c"tmpfs".as_ptr(),
                *flags,
                data.as_ptr().cast(),
            )),
            OpKind::Mkdir { path, mode } => {
                if libc::mkdir(path.as_ptr(), *mode) == 0 {
                    return Ok(());
                }
                match errno() {
                    libc::EEXIST => Ok(()),
                    e => Err(e),
                }
            }
            OpKind::MakeFile { path, mode } => {
                let fd = libc::open(
                    path.as_ptr(),
                    libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
                    *mode as libc::c_uint,
                );
                if fd < 0 {
                    return Err(errno());
                }
                libc::close(fd);
                Ok(())
            }
            OpKind::Bind { src, dest } => check(libc::mount(
                src.as_ptr(),
                dest.as_ptr(),
                null,
                libc::MS_BIND | libc::MS_REC,
                std::ptr::null(),
            )),
            OpKind::ReadOnly { dest } => {
                let flags = locked_flags(dest)?;
                check(libc::mount(
                    null,
                    dest.as_ptr(),
                    null,
                    libc::MS_REMOUNT | libc::MS_BIND | libc::MS_RDONLY | flags,
                    std::ptr::null(),
                ))
            }
            OpKind::Symlink { target, path } => {
                if libc::symlink(target.as_ptr(), path.as_ptr()) == 0 {
                    return Ok(());
                }
                match errno() {
                    libc::EEXIST => Ok(()),
                    e => Err(e),
                }
            }
            OpKind::Write { path, content } => {
                let fd = libc::open(
                    path.as_ptr(),
                    libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC | libc::O_CLOEXEC,
                    0o644 as libc::c_uint,
                );
                if fd < 0 {
                    return Err(errno());
                }
                let mut rest: &[u8] = content;
                while !rest.is_empty() {
                    let n = libc::write(fd, rest.as_ptr().cast(), rest.len());
                    if n <= 0 {
                        let e = errno();
                        libc::close(fd);
                        return Err(e);
                    }
                    rest = rest.get(n as usize..).unwrap_or_default();
                }
                libc::close(fd);
                Ok(())
            }
            OpKind::Proc { dest } => check(libc::mount(
                c"proc".as_ptr(),
                dest.as_ptr(),
                c"proc".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                std::ptr::null(),
            )),
            OpKind::Devpts { dest, data } => check(libc::mount(
                c"devpts".as_ptr(),
                dest.as_ptr(),
                c"devpts".as_ptr(),
                libc::MS_NOSUID | libc::MS_NOEXEC,
                data.as_ptr().cast(),
            )),
            OpKind::Unlink { path } => check(libc::unlink(path.as_ptr())),
            OpKind::Rmdir { path } => check(libc::rmdir(path.as_ptr())),
            OpKind::Pivot { root } => {
                check(libc::chdir(root.as_ptr()))?;
                let dot = c".".as_ptr();
                if libc::syscall(libc::SYS_pivot_root, dot, dot) != 0 {
                    return Err(errno());
                }
                check(libc::umount2(dot, libc::MNT_DETACH))?;
                check(libc::chdir(c"/".as_ptr()))
            }
        }
    }
}

/// Mount points on the host (to remount the ones under read-only binds).
fn host_mount_points() -> Vec<PathBuf> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|p| PathBuf::from(crate::limits::unescape_mountinfo(p)))
        .collect()
}

/// Whether "other" users may read (and, for a directory, enter) an entry.
fn world_readable(meta: &std::fs::Metadata) -> bool {
    let mode = meta.permissions().mode();
    if meta.is_dir() {
        mode & 0o005 == 0o005
    } else {
        mode & 0o004 != 0
    }
}

/// Entries under `/etc` an ordinary user could not read, not descending into them; walked
/// once per process (the system's configuration does not change under a run).
fn etc_unreadable() -> &'static [(PathBuf, bool)] {
    static ETC: OnceLock<Vec<(PathBuf, bool)>> = OnceLock::new();
    ETC.get_or_init(|| {
        let mut out = Vec::new();
        walk_unreadable(Path::new("/etc"), &mut out, 0);
        out
    })
}

fn walk_unreadable(dir: &Path, out: &mut Vec<(PathBuf, bool)>, depth: usize) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let dev = std::fs::symlink_metadata(dir).map(|m| m.dev()).ok();
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.file_type().is_symlink() {
            continue;
        }
        if !world_readable(&meta) {
            out.push((path, meta.is_dir()));
        } else if meta.is_dir() && depth < 32 && Some(meta.dev()) == dev {
            walk_unreadable(&path, out, depth + 1);
        }
    }
}

/// `/proc` entries (top level and under `/proc/sys`) only root may read.
fn proc_unreadable() -> &'static [(PathBuf, bool)] {
    static PROC: OnceLock<Vec<(PathBuf, bool)>> = OnceLock::new();
    PROC.get_or_init(|| {
        let mut out = Vec::new();
        if let Ok(entries) = std::fs::read_dir("/proc") {
            for entry in entries.flatten() {
                let name = entry.file_name();
                if name.as_bytes().iter().all(u8::is_ascii_digit) {
                    continue;
                }
                let path = entry.path();
                if let Ok(meta) = std::fs::symlink_metadata(&path) {
                    if !meta.file_type().is_symlink() && !world_readable(&meta) {
                        out.push((path, meta.is_dir()));
                    }
                }
            }
        }
        walk_unreadable(Path::new("/proc/sys"), &mut out, 0);
        out
    })
}
