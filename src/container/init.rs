//! The child side of create: from clone3 to execve. It walks the plan the
//! parent made, reports any failure over the sync socket (errno + what),
//! and never returns.

use crate::container::plan::Plan;
use crate::error::{Error, Result};
use crate::linux::{rootfs, sync};
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

pub struct ChildFds {
    pub sock: OwnedFd,
    /// O_PATH fd of exec.fifo, reopened for write through `proc`.
    pub fifo: Option<OwnedFd>,
    /// The host's /proc, for reopening `fifo` after pivot_root.
    pub proc: OwnedFd,
    /// Parent-only fds the clone duplicated (the state-dir lock, the
    /// parent's end of the socket): holding them would block `start`
    /// and hide the parent's exit from us.
    pub close: Vec<i32>,
}

pub fn run(plan: &Plan, fds: ChildFds) -> ! {
    let err = match setup(plan, &fds) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let _ = sync::send(fds.sock.as_fd(), sync::ERROR, &sync::encode_error(&err));
    // SAFETY: _exit is always safe; skip atexit handlers of the parent image.
    unsafe { libc::_exit(1) }
}

enum Never {}

fn wait_go(sock: BorrowedFd) -> Result<()> {
    match sync::recv(sock)? {
        (sync::GO, _, _) => Ok(()),
        (0, _, _) => Err(Error::msg("runtime went away")),
        (t, _, _) => Err(Error::msg(format!("sync: unexpected message {t}"))),
    }
}

fn setup(plan: &Plan, fds: &ChildFds) -> Result<Never> {
    for fd in &fds.close {
        // SAFETY: these fds are the parent's; we own our copies.
        unsafe { libc::close(*fd) };
    }
    // /proc/<pid>/exe of this process is the runway binary until execve:
    // non-dumpable keeps container processes from opening it
    // (CVE-2019-5736). execve resets it.
    let _ = rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable);
    // SAFETY: plain prctl; the parent may die, the init must not outlive a
    // create that never finished, but once created it must survive us, so
    // no PDEATHSIG here.
    rustix::process::umask(rustix::fs::Mode::empty());

    let sock = fds.sock.as_fd();
    // Parent puts us in the cgroup and writes id maps, then says go.
    wait_go(sock)?;

    let userns_new = plan.ns_new & libc::CLONE_NEWUSER as u64 != 0;
    if userns_new {
        rustix::thread::set_thread_res_gid(
            rustix::process::Gid::ROOT,
            rustix::process::Gid::ROOT,
            rustix::process::Gid::ROOT,
        )
        .map_err(|e| Error::errno("setresgid 0 in user namespace", e.raw_os_error()))?;
        rustix::thread::set_thread_res_uid(
            rustix::process::Uid::ROOT,
            rustix::process::Uid::ROOT,
            rustix::process::Uid::ROOT,
        )
        .map_err(|e| Error::errno("setresuid 0 in user namespace", e.raw_os_error()))?;
    }

    let mut mount_joined = false;
    for j in &plan.ns_join {
        if j.typ == "pid" || j.typ == "time" {
            continue; // joined by the parent before clone: they apply to children
        }
        // SAFETY: fd is a namespace fd opened by the parent.
        if unsafe { libc::setns(j.fd.as_raw_fd(), j.flag as i32) } != 0 {
            return Err(Error::last_os(format!("join {} namespace", j.typ)));
        }
        if j.typ == "mount" {
            mount_joined = true;
        }
    }
    // A cgroup namespace is made here, after the parent moved us into the
    // container's cgroup, so its root is that cgroup.
    if plan.ns_types.contains(&"cgroup") && !plan.ns_join.iter().any(|j| j.typ == "cgroup") {
        // SAFETY: a cgroup namespace affects no memory or fd state.
        unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWCGROUP) }
            .map_err(|e| Error::errno("unshare cgroup namespace", e.raw_os_error()))?;
    }

    if plan.ns_new & libc::CLONE_NEWUTS as u64 != 0 {
        if let Some(h) = &plan.hostname {
            rustix::system::sethostname(h.as_bytes())
                .map_err(|e| Error::errno("sethostname", e.raw_os_error()))?;
        }
        if let Some(d) = &plan.domainname {
            // SAFETY: valid buffer and length.
            if unsafe { libc::setdomainname(d.as_ptr(), d.as_bytes().len()) } != 0 {
                return Err(Error::last_os("setdomainname"));
            }
        }
    }

    if !plan.no_new_keyring {
        // A fresh session keyring so containers don't share the host's.
        // SAFETY: keyctl(JOIN_SESSION_KEYRING, NULL).
        let r = unsafe {
            libc::syscall(
                libc::SYS_keyctl,
                1, /* KEYCTL_JOIN_SESSION_KEYRING */
                0usize,
            )
        };
        if r < 0 {
            let e = crate::error::last_errno();
            if e != libc::ENOSYS && e != libc::EPERM && e != libc::EACCES {
                return Err(Error::errno("create session keyring", e));
            }
        }
    }

    plan.security.apply_early()?;

    if !mount_joined {
        rootfs::prepare_mounts(plan)?;
        rootfs::pivot(plan)?;
        plan.security.apply_sysctl()?;
        rootfs::finish(plan)?;
    } else {
        plan.security.apply_sysctl()?;
    }
    rootfs::enter_cwd(&plan.process.cwd)?;

    let exe = find_exe(plan)?;

    // Fds we inherited beyond the preserved ones must not reach the
    // container (CVE-2024-21626); ours are all O_CLOEXEC already.
    let first = 3 + plan.preserve_fds;
    // SAFETY: close_range only changes fd flags.
    unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            u32::MAX,
            4u32, /* CLOSE_RANGE_CLOEXEC */
        );
    }
    for fd in 3..first {
        let _ = rustix::io::fcntl_setfd(
            unsafe { BorrowedFd::borrow_raw(fd as i32) },
            rustix::io::FdFlags::empty(),
        );
    }

    // Seccomp last when NNP allows loading it unprivileged (fewest syscalls
    // under the filter); otherwise before dropping capabilities.
    let nnp = plan.security.no_new_privileges;
    if let (Some(prog), false) = (&plan.seccomp, nnp) {
        crate::seccomp::load(prog)?;
    }
    plan.security.apply_identity()?;

    sync::send(sock, sync::READY, &[])?;

    if let Some(fifo) = &fds.fifo {
        // Blocks until `start` opens the read side.
        let path = format!("self/fd/{}", fifo.as_raw_fd());
        let w = loop {
            match rustix::fs::openat(
                &fds.proc,
                path.as_str(),
                rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            ) {
                Ok(w) => break w,
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(Error::errno("open exec fifo", e.raw_os_error())),
            }
        };
        let _ = rustix::io::write(&w, b"0");
    }
    if let (Some(prog), true) = (&plan.seccomp, nnp) {
        crate::seccomp::load(prog)?;
    }
    exec(&exe, plan)
}

fn find_exe(plan: &Plan) -> Result<CString> {
    let Some(arg0) = plan.process.args.first() else {
        return Err(Error::msg("process.args is empty"));
    };
    let a = arg0.to_string_lossy();
    let ok = |p: &str| -> bool {
        rustix::fs::access(p, rustix::fs::Access::EXEC_OK).is_ok()
            && rustix::fs::stat(p)
                .map(|s| {
                    rustix::fs::FileType::from_raw_mode(s.st_mode)
                        != rustix::fs::FileType::Directory
                })
                .unwrap_or(false)
    };
    if a.contains('/') {
        if ok(&a) {
            return Ok(arg0.clone());
        }
        let e = rustix::fs::access(&*a, rustix::fs::Access::EXEC_OK)
            .err()
            .map(|e| e.raw_os_error())
            .unwrap_or(libc::EACCES);
        return Err(Error::errno(format!("exec {a}"), e));
    }
    for dir in &plan.process.path {
        let cand = format!("{}/{}", dir.trim_end_matches('/'), a);
        if ok(&cand) {
            return CString::new(cand).map_err(|_| Error::msg("path contains NUL"));
        }
    }
    Err(Error::msg(format!(
        "exec {a}: executable file not found in $PATH"
    )))
}

fn exec(exe: &CString, plan: &Plan) -> Result<Never> {
    let mut argv: Vec<*const libc::c_char> = plan.process.args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let mut envp: Vec<*const libc::c_char> = plan.process.env.iter().map(|a| a.as_ptr()).collect();
    envp.push(std::ptr::null());
    // SAFETY: NULL-terminated arrays of NUL-terminated strings that live
    // until execve, which only returns on failure.
    unsafe { libc::execve(exe.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    Err(Error::last_os(format!("exec {}", exe.to_string_lossy())))
}
