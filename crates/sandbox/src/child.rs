//! What a command's child does to itself between fork and exec: descriptors, no new
//! privileges, capabilities. Raw system calls on stack data only.

/// Capabilities a fallback-mode command keeps when the harness has them (running as root): the
/// ones that decide file access (`CAP_CHOWN`, `CAP_DAC_OVERRIDE`, `CAP_DAC_READ_SEARCH`,
/// `CAP_FOWNER`, `CAP_FSETID`), so a root harness still works in a project owned by another
/// user; Landlock governs where they apply. Inside a world nothing is kept (see
/// `namespaces.rs`).
pub(crate) const FALLBACK_KEPT_CAPS: u64 = 0b1_1111;

const CAPABILITY_VERSION_3: u32 = 0x2008_0522;
const SECBIT_NOROOT: libc::c_ulong = 1 << 0;
const SECBIT_NOROOT_LOCKED: libc::c_ulong = 1 << 1;
const SECBIT_NO_SETUID_FIXUP: libc::c_ulong = 1 << 2;
const SECBIT_NO_SETUID_FIXUP_LOCKED: libc::c_ulong = 1 << 3;
const SECBIT_KEEP_CAPS_LOCKED: libc::c_ulong = 1 << 5;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Drops every capability but `keep`, from every set, the bounding set included (which needs
/// `CAP_SETPCAP`; without it there is nothing to drop). With `keep == 0` the securebits are
/// locked too, so a uid-0 process never regains capabilities on exec.
///
/// # Safety
/// Only makes system calls on stack data.
pub(crate) unsafe fn drop_capabilities(keep: u64) -> std::io::Result<()> {
    for cap in 0..64u64 {
        if keep & (1 << cap) == 0 {
            libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0);
        }
    }
    libc::prctl(
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_CLEAR_ALL,
        0,
        0,
        0,
    );
    if keep == 0 {
        // Fails without CAP_SETPCAP (an unprivileged fallback-mode child): then there was
        // nothing to regain either.
        libc::prctl(
            libc::PR_SET_SECUREBITS,
            SECBIT_NOROOT
                | SECBIT_NOROOT_LOCKED
                | SECBIT_NO_SETUID_FIXUP
                | SECBIT_NO_SETUID_FIXUP_LOCKED
                | SECBIT_KEEP_CAPS_LOCKED,
            0,
            0,
            0,
        );
    }
    let mut header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    if libc::syscall(
        libc::SYS_capget,
        &mut header as *mut CapHeader,
        data.as_mut_ptr(),
    ) != 0
    {
        return Err(std::io::Error::last_os_error());
    }
    for (word, set) in data.iter_mut().enumerate() {
        let kept = (keep >> (32 * word)) as u32;
        set.effective &= kept;
        set.permitted &= kept;
        set.inheritable &= kept;
    }
    if libc::syscall(
        libc::SYS_capset,
        &mut header as *mut CapHeader,
        data.as_ptr(),
    ) != 0
    {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Marks every descriptor above stderr close-on-exec, so nothing the harness holds or inherited
/// without `O_CLOEXEC` (a file opened outside the project, a socket) reaches the command; Landlock
/// only checks at open time, so such a descriptor would be a way around it.
///
/// # Safety
/// Only makes system calls.
pub(crate) unsafe fn cloexec_inherited_fds() {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    if libc::syscall(
        libc::SYS_close_range,
        3 as libc::c_uint,
        libc::c_uint::MAX,
        CLOSE_RANGE_CLOEXEC,
    ) == 0
    {
        return;
    }
    // Kernels before 5.11: one fcntl per possible descriptor.
    for fd in 3..fd_limit() {
        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
    }
}

/// Closes every descriptor from `first` up, except those in `keep`.
///
/// # Safety
/// Only makes system calls; the caller must not use the closed descriptors afterwards.
pub(crate) unsafe fn close_fds_except(first: libc::c_int, keep: &[libc::c_int]) {
    let mut sorted = [-1 as libc::c_int; 8];
    let n = keep.len().min(sorted.len());
    sorted[..n].copy_from_slice(&keep[..n]);
    let sorted = &mut sorted[..n];
    sorted.sort_unstable();
    let mut from = first;
    for &k in sorted.iter() {
        if k >= from {
            if k > from {
                close_range(from, k - 1);
            }
            from = k + 1;
        }
    }
    close_range(from, libc::c_int::MAX);
}

unsafe fn close_range(first: libc::c_int, last: libc::c_int) {
    if libc::syscall(
        libc::SYS_close_range,
        first as libc::c_uint,
        last as libc::c_uint,
        0 as libc::c_uint,
    ) == 0
    {
        return;
    }
    let end = last.min(fd_limit());
    let mut fd = first;
    while fd <= end {
        libc::close(fd);
        fd += 1;
    }
}

unsafe fn fd_limit() -> libc::c_int {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
        limit.rlim_cur.min(1 << 20) as libc::c_int
    } else {
        1024
    }
}

/// `PR_SET_NO_NEW_PRIVS`.
///
/// # Safety
/// Only makes a system call.
pub(crate) unsafe fn no_new_privs() -> std::io::Result<()> {
    if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Writes `data` to the file at `path` (already a C string), for `/proc` and cgroup files.
///
/// # Safety
/// Only makes system calls.
pub(crate) unsafe fn write_file(path: &std::ffi::CStr, data: &[u8]) -> std::io::Result<()> {
    let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let written = libc::write(fd, data.as_ptr().cast(), data.len());
    let err = std::io::Error::last_os_error();
    libc::close(fd);
    if written != data.len() as isize {
        return Err(err);
    }
    Ok(())
}
