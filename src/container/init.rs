//! The child side of create: from clone3 to execve. It walks the plan the
//! parent made, reports any failure over the sync socket (errno + what),
//! and never returns.

use crate::cgroups::Cgroup;
use crate::container::hooks;
use crate::container::plan::Plan;
use crate::container::rootfs;
use crate::error::{Error, Result};
use crate::linux::sync;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

pub struct ChildFds {
    pub sock: OwnedFd,
    /// O_PATH fd of exec.fifo, reopened for write through `proc`.
    pub fifo: Option<OwnedFd>,
    /// Connected console socket when process.terminal is set.
    pub console: Option<OwnedFd>,
    /// The host's /proc, for reopening `fifo` after pivot_root.
    pub proc: OwnedFd,
    /// A page shared with the parent (MAP_SHARED before clone): the parent
    /// sets it once it holds our seccomp listener. Waiting on it takes no
    /// syscall, so no notify rule can deadlock us.
    pub shared: usize,
    /// Parent-only fds the clone duplicated (the state-dir lock, the
    /// parent's end of the socket): holding them would block `start`
    /// and hide the parent's exit from us.
    pub close: Vec<i32>,
}

/// `join`: the cgroups to join once the parent says GO (it made them while
/// we made our namespaces).
pub fn run(plan: &Plan, fds: ChildFds, join: Option<&Cgroup>) -> ! {
    let err = match setup(plan, &fds, join) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let bound = HOST_ROOTFS.load(std::sync::atomic::Ordering::Relaxed);
    if bound >= 0 && !READY_SENT.load(std::sync::atomic::Ordering::Relaxed) {
        // No mount namespace: our mounts are the runtime's. The host's
        // /proc reaches the rootfs bind through our fd, chrooted or not.
        if rustix::process::fchdir(&fds.proc).is_ok() {
            let _ = rustix::mount::unmount(
                format!("self/fd/{bound}").as_str(),
                rustix::mount::UnmountFlags::DETACH,
            );
        }
    }
    if READY_SENT.load(std::sync::atomic::Ordering::Relaxed) {
        // Nobody reads the socket any more (start hooks, exec): the
        // container's stderr is where the engine will look.
        let _ = rustix::io::write(
            rustix::stdio::stderr(),
            format!("runway: {err}\n").as_bytes(),
        );
    } else {
        let _ = sync::send(fds.sock.as_fd(), sync::ERROR, &sync::encode_error(&err));
    }
    // SAFETY: _exit is always safe; skip atexit handlers of the parent image.
    unsafe { libc::_exit(1) }
}

use crate::container::process::{exec, find_exe, setup_terminal, Never};

static READY_SENT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// Fd of the rootfs bind made in the runtime's mount namespace (no mount
/// namespace), or -1.
static HOST_ROOTFS: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

/// GO carries the state JSON hooks get on stdin.
fn wait_go(sock: BorrowedFd) -> Result<Vec<u8>> {
    match sync::recv(sock)? {
        (sync::GO, payload, _) => Ok(payload),
        (0, _, _) => Err(Error::msg("runtime went away")),
        (t, _, _) => Err(Error::msg(format!("sync: unexpected message {t}"))),
    }
}

fn setup(plan: &Plan, fds: &ChildFds, join: Option<&Cgroup>) -> Result<Never> {
    for fd in &fds.close {
        // SAFETY: these fds are the parent's; we own our copies.
        unsafe { libc::close(*fd) };
    }
    // /proc/<pid>/exe of this process is the runway binary until execve:
    // non-dumpable keeps container processes from opening it
    // (CVE-2019-5736). execve resets it.
    if !cfg!(feature = "weaken-cve-2019-5736") {
        let _ =
            rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable);
    }
    // SAFETY: plain prctl; the parent may die, the init must not outlive a
    // create that never finished, but once created it must survive us, so
    // no PDEATHSIG here.
    rustix::process::umask(rustix::fs::Mode::empty());

    // `run` blocks signals to forward them; the container starts clean.
    // SAFETY: empty set, valid pointer.
    unsafe {
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    }
    let sock = fds.sock.as_fd();
    // Parent puts us in the cgroup and writes id maps, then says go.
    let hook_state = wait_go(sock)?;
    if let Some(cg) = join {
        cg.join_self()?;
    }

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

    for j in &plan.ns_join {
        if j.typ == "pid" || j.typ == "time" {
            continue; // joined by the parent before clone: they apply to children
        }
        // SAFETY: fd is a namespace fd opened by the parent.
        if unsafe { libc::setns(j.fd.as_raw_fd(), j.flag as i32) } != 0 {
            return Err(Error::last_os(format!("join {} namespace", j.typ)));
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

    // A joined mount namespace gets the rootfs prepared and pivoted into
    // like a new one (runc does the same), not the joined root as is.
    rootfs::prepare_mounts(plan, |root| {
        if !plan.mount_ns {
            // Our mounts are in the runtime's namespace: on failure take
            // them back (`delete` does it once the container exists).
            if let Ok(fd) = rustix::io::fcntl_dupfd_cloexec(root, 3) {
                HOST_ROOTFS.store(
                    std::os::fd::IntoRawFd::into_raw_fd(fd),
                    std::sync::atomic::Ordering::Relaxed,
                );
            }
        }
    })?;
    if crate::container::fault::armed("after-mounts") {
        sync::send(sock, sync::FAULT, &[])?;
    }
    if !plan.hooks.prestart.is_empty() || !plan.hooks.create_runtime.is_empty() {
        // The runtime's hooks run now, in its namespaces, with our
        // namespaces and mounts in place.
        sync::send(sock, sync::HOOKS, &[])?;
        wait_go(sock)?;
    }
    hooks::run_create_container(plan, &hook_state)?;
    rootfs::pivot(plan)?;
    plan.security.apply_sysctl()?;
    rootfs::finish(plan)?;
    rootfs::enter_cwd(&plan.process.cwd)?;
    if let Some(console) = &fds.console {
        setup_terminal(console.as_fd(), plan.process.console_size, true)?;
    }
    rootfs::seal_dev(plan)?;

    let exe = find_exe(&plan.process)?;

    // Fds we inherited beyond the preserved ones must not reach the
    // container (CVE-2024-21626); ours are all O_CLOEXEC already.
    let first = 3 + plan.preserve_fds;
    // SAFETY: close_range only changes fd flags.
    #[cfg(not(feature = "weaken-cve-2024-21626"))]
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
    // under the filter); otherwise before dropping capabilities. A notify
    // filter goes in before READY so the parent can fetch its listener.
    let nnp = plan.security.no_new_privileges;
    let notify = plan.seccomp.as_ref().is_some_and(|p| p.notify);
    if let (Some(prog), true) = (&plan.seccomp, !nnp || notify) {
        load_seccomp(prog, sock, fds.shared)?;
    }
    plan.security.apply_identity()?;

    sync::send(sock, sync::READY, &[])?;
    READY_SENT.store(true, std::sync::atomic::Ordering::Relaxed);

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
        // startContainer hooks run before `start` is released, so its
        // poststart hooks come after them.
        run_start_hooks(plan, &hook_state)?;
        let _ = rustix::io::write(&w, b"0");
    } else {
        run_start_hooks(plan, &hook_state)?;
    }
    if let (Some(prog), true) = (&plan.seccomp, nnp && !notify) {
        crate::seccomp::load(prog)?;
    }
    exec(&exe, &plan.process)
}

/// Load the filter; with a notify listener, tell the parent which fd
/// number it will get *before* loading (after loading, our own sendmsg may
/// be notified and wait for an agent that has no listener yet). The
/// parent takes it with pidfd_getfd.
pub fn load_seccomp(prog: &crate::seccomp::Program, sock: BorrowedFd, shared: usize) -> Result<()> {
    if !prog.notify {
        crate::seccomp::load(prog)?;
        return Ok(());
    }
    // The kernel hands out the lowest free fd: find it now.
    let probe = rustix::io::fcntl_dupfd_cloexec(rustix::stdio::stdin(), 0)
        .or_else(|_| {
            rustix::fs::open(
                "/",
                rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )
        })
        .map_err(|e| Error::errno("probe fd", e.raw_os_error()))?;
    let n = probe.as_raw_fd();
    drop(probe);
    sync::send(sock, sync::FD, &n.to_le_bytes())?;
    match crate::seccomp::load(prog)? {
        Some(fd) => {
            // Keep it open (and at number n) until the parent has a copy.
            let flag = shared as *const std::sync::atomic::AtomicU32;
            if flag.is_null() {
                return Err(Error::msg("seccomp: no shared page"));
            }
            let start = std::time::Instant::now();
            loop {
                // SAFETY: the parent mapped this page MAP_SHARED before clone
                // and keeps it for its lifetime; we never unmap it.
                match unsafe { &*flag }.load(std::sync::atomic::Ordering::Acquire) {
                    0 => {}
                    1 => break,
                    _ => return Err(Error::msg("seccomp: parent failed to take the listener")),
                }
                // vDSO clock: not a syscall, so not filtered.
                if start.elapsed() > std::time::Duration::from_secs(15) {
                    return Err(Error::msg("seccomp: timed out handing over the listener"));
                }
                std::hint::spin_loop();
            }
            drop(fd);
            Ok(())
        }
        None => Err(Error::msg("seccomp: no listener returned")),
    }
}

fn run_start_hooks(plan: &Plan, creating_state: &[u8]) -> Result<()> {
    if plan.hooks.start_container.is_empty() {
        return Ok(());
    }
    // The container exists and start was called: "created", as runc.
    let st = String::from_utf8_lossy(creating_state).replacen(
        "\"status\":\"creating\"",
        "\"status\":\"created\"",
        1,
    );
    hooks::run_start_container(plan, st.as_bytes())
}
