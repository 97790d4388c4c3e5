//! Landlock on raw system calls: which paths a command may read and write.
//!
//! The rules are per inode, so they must be built where the command will run: in the command's
//! own child, after it joined the world's mount namespace (the view's `/proc`, `/dev` and `/tmp`
//! are other inodes than the host's). Everything is prepared in the parent ([`LandlockRules`]
//! holds C strings and access masks for the kernel's ABI); the child only makes system calls
//! (`open(O_PATH)`, `fstat`, `landlock_*`), so it is safe between fork and exec.
//!
//! Best effort across ABI versions, as the `landlock` crate does: rights the kernel does not
//! know are left out of both the handled set and the rules, and scoping (ABI 6) is used only
//! where the kernel has it. A kernel without Landlock is refused when the sandbox is created.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::exec::SandboxError;

const EXECUTE: u64 = 1 << 0;
const WRITE_FILE: u64 = 1 << 1;
const READ_FILE: u64 = 1 << 2;
const READ_DIR: u64 = 1 << 3;
/// `REMOVE_DIR` .. `MAKE_SYM`, ABI 1.
const MODIFY_TREE: u64 = 0b1_1111_1111 << 4;
const REFER: u64 = 1 << 13;
const TRUNCATE: u64 = 1 << 14;
const IOCTL_DEV: u64 = 1 << 15;
/// The rights that make sense on a file (not a directory) in a path-beneath rule.
const FILE_RIGHTS: u64 = EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV;
const READ: u64 = EXECUTE | READ_FILE | READ_DIR;

const SCOPE_ABSTRACT_UNIX_SOCKET: u64 = 1 << 0;
const SCOPE_SIGNAL: u64 = 1 << 1;

const CREATE_RULESET_VERSION: u32 = 1;
const RULE_PATH_BENEATH: libc::c_int = 1;

#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

/// `landlock_create_ruleset` with `LANDLOCK_CREATE_RULESET_VERSION`: the ABI version, or < 1.
pub(crate) fn abi_version() -> i64 {
    // SAFETY: a null attribute pointer with size 0 and the VERSION flag only queries.
    unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            CREATE_RULESET_VERSION,
        )
    }
}

/// The file-system rights this ABI knows.
fn handled_for(abi: i64) -> u64 {
    let mut all = READ | WRITE_FILE | MODIFY_TREE;
    if abi >= 2 {
        all |= REFER;
    }
    if abi >= 3 {
        all |= TRUNCATE;
    }
    if abi >= 5 {
        all |= IOCTL_DEV;
    }
    all
}

/// A ruleset ready to be applied in a child: paths readable (and executable), paths writable.
#[derive(Debug)]
pub(crate) struct LandlockRules {
    abi: i64,
    handled: u64,
    scoped: u64,
    rules: Vec<(CString, u64)>,
}

impl LandlockRules {
    /// `scope_ipc`: also refuse signals to and abstract Unix sockets of processes outside the
    /// command's own Landlock domain (fallback mode; inside a world the pid and network
    /// namespaces already bound both, and later commands must reach a server an earlier one
    /// started).
    pub(crate) fn new(
        read: &[PathBuf],
        write: &[PathBuf],
        scope_ipc: bool,
    ) -> Result<LandlockRules, SandboxError> {
        let abi = abi_version();
        if abi < 1 {
            return Err(SandboxError::LandlockUnavailable);
        }
        let handled = handled_for(abi);
        let scoped = if abi >= 6 && scope_ipc {
            SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
        } else {
            0
        };
        let mut rules = Vec::new();
        for (paths, access) in [(read, READ), (write, handled)] {
            for path in paths {
                let c = CString::new(path.as_os_str().as_bytes()).map_err(|_| {
                    SandboxError::Landlock(format!("{} contains a NUL byte", path.display()))
                })?;
                rules.push((c, access & handled));
            }
        }
        Ok(LandlockRules {
            abi,
            handled,
            scoped,
            rules,
        })
    }

    /// Builds the ruleset and restricts the calling process. Paths that do not exist (in the
    /// child's view) are skipped.
    ///
    /// # Safety
    /// Only system calls on data prepared in the parent; meant for the child between fork and
    /// exec. `PR_SET_NO_NEW_PRIVS` must be set.
    pub(crate) unsafe fn restrict_self(&self) -> std::io::Result<()> {
        let attr = RulesetAttr {
            handled_access_fs: self.handled,
            handled_access_net: 0,
            scoped: self.scoped,
        };
        // Kernels accept a larger struct whose unknown tail is zero; send what this ABI knows.
        let size = if self.abi >= 6 { 24usize } else { 8usize };
        let ruleset = libc::syscall(
            libc::SYS_landlock_create_ruleset,
            &attr as *const RulesetAttr,
            size,
            0u32,
        );
        if ruleset < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let ruleset = ruleset as libc::c_int;
        for (path, access) in &self.rules {
            let fd = libc::open(path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC);
            if fd < 0 {
                continue;
            }
            let mut st: libc::stat = std::mem::zeroed();
            let mut allowed = *access;
            if libc::fstat(fd, &mut st) == 0 && (st.st_mode & libc::S_IFMT) != libc::S_IFDIR {
                allowed &= FILE_RIGHTS;
            }
            let rule = PathBeneathAttr {
                allowed_access: allowed,
                parent_fd: fd,
            };
            let added = libc::syscall(
                libc::SYS_landlock_add_rule,
                ruleset,
                RULE_PATH_BENEATH,
                &rule as *const PathBeneathAttr,
                0u32,
            );
            let err = std::io::Error::last_os_error();
            libc::close(fd);
            if added != 0 {
                libc::close(ruleset);
                return Err(err);
            }
        }
        let restricted = libc::syscall(libc::SYS_landlock_restrict_self, ruleset, 0u32);
        let err = std::io::Error::last_os_error();
        libc::close(ruleset);
        if restricted != 0 {
            return Err(err);
        }
        Ok(())
    }
}
