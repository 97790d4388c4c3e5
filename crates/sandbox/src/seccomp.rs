//! The seccomp filters: system calls a command may not make, whatever the files allow.
//!
//! Two programs, built in the parent with `seccompiler` and installed in the child with one
//! `prctl` each: one answering EPERM (ptrace, mounts, namespaces, module and kexec loading,
//! bpf, io_uring, keyrings, other processes' limits and scheduling, sockets outside the allowed
//! families), one answering ENOSYS for `clone3` (whose flags seccomp cannot inspect; libc then
//! falls back to `clone`, whose namespace flags are checked).

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use crate::exec::SandboxError;

/// What the filter allows beyond the calls every command may make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FilterKind {
    /// No world (fallback): only AF_UNIX sockets unless the network is allowed, and no
    /// `setsid`/`setpgid` (nothing may leave the process group the harness kills).
    Fallback { allow_network: bool },
    /// Inside a world: the network namespace holds only loopback, so AF_INET/AF_INET6 (and
    /// NETLINK_ROUTE, for interface listings such as `os.networkInterfaces()`) are allowed;
    /// the pid namespace bounds every process's lifetime, so sessions and process groups are
    /// allowed.
    World,
}

pub(crate) fn build(kind: FilterKind) -> Result<[BpfProgram; 2], SandboxError> {
    let err = |e: &dyn std::fmt::Display| SandboxError::Seccomp(e.to_string());
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|e| err(&e))?;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    let mut always: Vec<libc::c_long> = vec![
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_chroot,
        libc::SYS_unshare,
        libc::SYS_setns,
        libc::SYS_kexec_load,
        libc::SYS_kexec_file_load,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        libc::SYS_userfaultfd,
        libc::SYS_keyctl,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_open_by_handle_at,
        libc::SYS_name_to_handle_at,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_reboot,
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
        libc::SYS_fsopen,
        libc::SYS_fsmount,
        libc::SYS_move_mount,
        libc::SYS_open_tree,
    ];
    if let FilterKind::Fallback { .. } = kind {
        always.extend([libc::SYS_setsid, libc::SYS_setpgid]);
    }
    for sys in always {
        rules.insert(sys, Vec::new());
    }
    let namespace_flags = [
        libc::CLONE_NEWUSER,
        libc::CLONE_NEWNS,
        libc::CLONE_NEWNET,
        libc::CLONE_NEWPID,
        libc::CLONE_NEWIPC,
        libc::CLONE_NEWUTS,
        libc::CLONE_NEWCGROUP,
    ];
    let mut clone_rules = Vec::new();
    for flag in namespace_flags {
        let flag = flag as u64;
        let cond = SeccompCondition::new(
            0,
            SeccompCmpArgLen::Qword,
            SeccompCmpOp::MaskedEq(flag),
            flag,
        )
        .map_err(|e| err(&e))?;
        clone_rules.push(SeccompRule::new(vec![cond]).map_err(|e| err(&e))?);
    }
    rules.insert(libc::SYS_clone, clone_rules);
    // Other processes' limits and scheduling: a command may change its own (pid/who 0), never
    // another process's, since processes of the same user (the harness, the shell that
    // started it) would otherwise be open to `prlimit --pid`, `renice`, `taskset -p`,
    // `ionice -p`, `chrt -p`.
    for (sys, arg) in [
        (libc::SYS_prlimit64, 0u8),
        (libc::SYS_setpriority, 1),
        (libc::SYS_sched_setaffinity, 0),
        (libc::SYS_sched_setscheduler, 0),
        (libc::SYS_sched_setparam, 0),
        (libc::SYS_sched_setattr, 0),
        (libc::SYS_ioprio_set, 1),
    ] {
        let other = SeccompCondition::new(arg, SeccompCmpArgLen::Dword, SeccompCmpOp::Ne, 0)
            .map_err(|e| err(&e))?;
        rules.insert(
            sys,
            vec![SeccompRule::new(vec![other]).map_err(|e| err(&e))?],
        );
    }
    let ne = |arg: u8, value: libc::c_int| {
        SeccompCondition::new(arg, SeccompCmpArgLen::Dword, SeccompCmpOp::Ne, value as u64)
            .map_err(|e| err(&e))
    };
    let eq = |arg: u8, value: libc::c_int| {
        SeccompCondition::new(arg, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, value as u64)
            .map_err(|e| err(&e))
    };
    match kind {
        FilterKind::Fallback {
            allow_network: true,
        } => {}
        FilterKind::Fallback {
            allow_network: false,
        } => {
            rules.insert(
                libc::SYS_socket,
                vec![SeccompRule::new(vec![ne(0, libc::AF_UNIX)?]).map_err(|e| err(&e))?],
            );
        }
        FilterKind::World => {
            // Refused: any family but these four, and netlink protocols but NETLINK_ROUTE.
            let other_family = SeccompRule::new(vec![
                ne(0, libc::AF_UNIX)?,
                ne(0, libc::AF_INET)?,
                ne(0, libc::AF_INET6)?,
                ne(0, libc::AF_NETLINK)?,
            ])
            .map_err(|e| err(&e))?;
            let other_netlink =
                SeccompRule::new(vec![eq(0, libc::AF_NETLINK)?, ne(2, libc::NETLINK_ROUTE)?])
                    .map_err(|e| err(&e))?;
            rules.insert(libc::SYS_socket, vec![other_family, other_netlink]);
        }
    }
    let main = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(|e| err(&e))?;
    let mut clone3 = BTreeMap::new();
    clone3.insert(libc::SYS_clone3, Vec::new());
    let clone3 = SeccompFilter::new(
        clone3,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )
    .map_err(|e| err(&e))?;
    let main: BpfProgram = main
        .try_into()
        .map_err(|e: seccompiler::BackendError| err(&e))?;
    let clone3: BpfProgram = clone3
        .try_into()
        .map_err(|e: seccompiler::BackendError| err(&e))?;
    Ok([main, clone3])
}

/// Installs the programs on the calling process.
///
/// # Safety
/// Only `prctl` on data prepared in the parent; for the child between fork and exec, after
/// `PR_SET_NO_NEW_PRIVS`.
pub(crate) unsafe fn install(programs: &[BpfProgram; 2]) -> std::io::Result<()> {
    for program in programs.iter() {
        let fprog = libc::sock_fprog {
            len: program.len() as libc::c_ushort,
            filter: program.as_ptr() as *mut libc::sock_filter,
        };
        if libc::prctl(
            libc::PR_SET_SECCOMP,
            libc::SECCOMP_MODE_FILTER,
            &fprog as *const libc::sock_fprog,
        ) != 0
        {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
