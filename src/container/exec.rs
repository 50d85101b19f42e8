//! exec: a new process inside a running container. The parent joins the
//! container's pid (and time) namespace for its children and clones once;
//! the child joins the rest, gets the container's cgroup, security and
//! seccomp profile, and execs.

use crate::bail;
use crate::container::plan::{self, JoinNs, ProcessPlan};
use crate::container::process::{exec, find_exe, setup_terminal, Never};
use crate::container::state::{self, Status};
use crate::error::{Context, Error, Result};
use crate::linux::{clone::clone3_into, sync};
use crate::spec::{Process, Spec};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

pub struct ExecOpts<'a> {
    pub root: &'a Path,
    pub id: &'a str,
    pub process: Process,
    pub pid_file: Option<&'a Path>,
    pub console_socket: Option<&'a Path>,
    pub console_fd: Option<std::os::fd::RawFd>,
    pub preserve_fds: u32,
    pub ignore_paused: bool,
}

pub struct Spawned {
    pub pid: i32,
}

struct ExecPlan {
    process: ProcessPlan,
    join: Vec<JoinNs>,
    security: crate::container::security::Plan,
    seccomp: Option<crate::seccomp::Program>,
    seccomp_listener: Option<String>,
    seccomp_metadata: Option<String>,
    preserve_fds: u32,
}

/// The container's saved config (create stored it in the state dir).
pub fn saved_config(dir: &state::Dir) -> Result<Spec> {
    let p = dir.file(state::CONFIG_FILE);
    let bytes = std::fs::read(&p).ctx(|| format!("read {}", p.display()))?;
    crate::spec::parse(&bytes).map_err(|e| e.wrap(p.display()))
}

fn ns_file(typ: &str) -> &str {
    match typ {
        "network" => "net",
        "mount" => "mnt",
        other => other,
    }
}

/// Open the init's namespaces, skipping ones we already share (setns into
/// our own user namespace is EINVAL).
fn open_namespaces(st: &state::State) -> Result<Vec<JoinNs>> {
    let mut out = Vec::new();
    for (typ, _) in plan::NS_ORDER {
        if !st.namespaces.iter().any(|(t, _)| t == typ) {
            continue;
        }
        let f = ns_file(typ);
        let theirs = format!("/proc/{}/ns/{f}", st.pid);
        let ours = format!("/proc/self/ns/{f}");
        let (Ok(a), Ok(b)) = (std::fs::metadata(&theirs), std::fs::metadata(&ours)) else {
            bail!("container {}: cannot read namespace {theirs}", st.id);
        };
        if a.ino() == b.ino() && a.dev() == b.dev() {
            continue;
        }
        let fd = rustix::fs::open(
            theirs.as_str(),
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .ctx(|| format!("open {theirs}"))?;
        out.push(JoinNs {
            typ,
            flag: plan::ns_flag(typ),
            fd,
        });
    }
    Ok(out)
}

pub fn exec_process(o: &ExecOpts) -> Result<Spawned> {
    // ^C or a TERM while the new process is set up ends the exec with the
    // process killed, also when it is stuck (frozen with --ignore-paused).
    let intr = sync::Interrupts::new()?;
    let (dir, st, lock) = crate::container::open(o.root, o.id)?;
    match st.status(&dir) {
        Status::Stopped => bail!("cannot exec in a stopped container"),
        Status::Paused if !o.ignore_paused => {
            bail!("cannot exec in a paused container (use --ignore-paused to override)")
        }
        Status::Creating => bail!("container {} is still being created", o.id),
        _ => {}
    }
    let config = saved_config(&dir)?;
    let linux = config.linux.clone().unwrap_or_default();
    let ns_types: Vec<&str> = st.namespaces.iter().map(|(t, _)| t.as_str()).collect();
    let mut spec = Spec {
        process: Some(o.process.clone()),
        linux: Some(linux.clone()),
        ..Default::default()
    };
    // exec never writes sysctls; don't let them fail validation twice.
    if let Some(l) = spec.linux.as_mut() {
        l.sysctl.clear();
    }
    let security = crate::container::security::prepare(&spec, &ns_types)?;
    let seccomp = match &linux.seccomp {
        Some(s) => Some(crate::seccomp::compile(s).ctx(|| "seccomp")?),
        None => None,
    };
    let process = plan::process_plan(&o.process)?;
    if process.terminal && o.console_socket.is_none() && o.console_fd.is_none() {
        bail!("process.terminal is true but no --console-socket was given");
    }
    let ep = ExecPlan {
        process,
        join: open_namespaces(&st)?,
        security,
        seccomp,
        seccomp_listener: linux.seccomp.as_ref().and_then(|s| s.listener_path.clone()),
        seccomp_metadata: linux
            .seccomp
            .as_ref()
            .and_then(|s| s.listener_metadata.clone()),
        preserve_fds: o.preserve_fds,
    };
    let console =
        crate::linux::pty::console_for(ep.process.terminal, o.console_fd, o.console_socket)?;

    for j in &ep.join {
        if j.typ == "pid" || j.typ == "time" {
            // SAFETY: namespace fd we opened; affects our children only.
            if unsafe { libc::setns(j.fd.as_raw_fd(), j.flag as i32) } != 0 {
                return Err(Error::last_os(format!(
                    "join {} namespace of container {}",
                    j.typ, o.id
                )));
            }
        }
    }
    let (parent_sock, child_sock) = sync::pair()?;
    // A notify filter's listener goes to the agent as for the init.
    let shared = if ep.seccomp.as_ref().is_some_and(|p| p.notify) {
        Some(crate::container::create::SharedPage::new()?)
    } else {
        None
    };
    let shared_ptr = shared.as_ref().map_or(0, |p| p.ptr as usize);
    let (pid, in_cgroup) = clone3_into(0, st.cgroup.v2_dir_fd().as_ref())?;
    if pid == 0 {
        // SAFETY: our copies of the parent's fds.
        unsafe {
            libc::close(lock.as_raw_fd());
            libc::close(parent_sock.as_raw_fd());
        }
        let console = console.as_ref().map(|c| c.as_fd());
        let err = match child(&ep, child_sock.as_fd(), console, shared_ptr) {
            Ok(never) => match never {},
            Err(e) => e,
        };
        let _ = sync::send(child_sock.as_fd(), sync::ERROR, &sync::encode_error(&err));
        // SAFETY: leave without running the parent's atexit handlers.
        unsafe { libc::_exit(127) }
    }
    drop(child_sock);
    drop(console);
    crate::container::fault::point("exec-after-clone");
    let fail = |e: Error| -> Error {
        // Bounded: in a paused container the process dies only at resume
        // (it is in the container's cgroup, so delete --force gets it too).
        crate::container::create::kill_and_reap(pid, std::time::Duration::from_millis(200));
        e
    };
    if !in_cgroup {
        st.cgroup.add_pid(pid).map_err(fail)?;
    }
    ep.security.apply_from_parent(pid).map_err(fail)?;
    // Nothing below needs the container held still, and the process may
    // wait frozen (--ignore-paused) until a resume that takes the lock.
    // Unlock rather than close: the child may not have closed its copy.
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::Unlock)
        .map_err(|e| fail(Error::errno("unlock state dir", e.raw_os_error())))?;
    sync::send(parent_sock.as_fd(), sync::GO, &[]).map_err(fail)?;
    let no_check = || Ok(());
    loop {
        let msg = sync::recv_or_interrupt(
            parent_sock.as_fd(),
            &intr,
            std::time::Duration::from_secs(1),
            no_check,
        );
        match msg.map_err(fail)? {
            (sync::READY, _, _) => break,
            (sync::FD, p, _) => {
                let r = crate::container::create::send_seccomp_listener(
                    pid,
                    crate::container::create::fd_number(&p),
                    ep.seccomp_listener.as_deref(),
                    ep.seccomp_metadata.as_deref(),
                    &st,
                    "running",
                );
                if let Some(p) = &shared {
                    p.set(if r.is_ok() { 1 } else { 2 });
                }
                r.map_err(fail)?;
            }
            (sync::ERROR, p, _) => return Err(fail(sync::decode_error(&p))),
            _ => return Err(fail(Error::msg("exec: process exited during setup"))),
        }
    }
    drop(lock);
    if let Some(pf) = o.pid_file {
        crate::container::create::write_pid_file(pf, pid)?;
    }
    Ok(Spawned { pid })
}

fn child(
    ep: &ExecPlan,
    sock: std::os::fd::BorrowedFd,
    console: Option<std::os::fd::BorrowedFd>,
    shared: usize,
) -> Result<Never> {
    // /proc/<pid>/exe is our binary until execve, inside the container's
    // pid namespace: keep it out of reach (CVE-2019-5736).
    if !cfg!(feature = "weaken-cve-2019-5736") {
        let _ =
            rustix::process::set_dumpable_behavior(rustix::process::DumpableBehavior::NotDumpable);
    }
    // SAFETY: empty set, valid pointer.
    unsafe {
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    }
    match sync::recv(sock)? {
        (sync::GO, _, _) => {}
        _ => bail!("exec: runtime went away"),
    }
    for j in &ep.join {
        if j.typ == "pid" || j.typ == "time" {
            continue;
        }
        // SAFETY: namespace fd opened by the parent.
        if unsafe { libc::setns(j.fd.as_raw_fd(), j.flag as i32) } != 0 {
            return Err(Error::last_os(format!("join {} namespace", j.typ)));
        }
    }
    ep.security.apply_early()?;
    crate::container::rootfs::enter_cwd(&ep.process.cwd)?;
    if let Some(c) = console {
        setup_terminal(c, ep.process.console_size, false)?;
    }
    let exe = find_exe(&ep.process)?;
    let first = 3 + ep.preserve_fds;
    // SAFETY: close_range only sets fd flags.
    if !cfg!(feature = "weaken-cve-2024-21626") {
        unsafe {
            libc::syscall(libc::SYS_close_range, first, u32::MAX, 4u32);
        }
    }
    // As in the init: a notify filter goes in before READY, so the
    // parent can fetch its listener.
    let nnp = ep.security.no_new_privileges;
    let notify = ep.seccomp.as_ref().is_some_and(|p| p.notify);
    if let (Some(prog), true) = (&ep.seccomp, !nnp || notify) {
        crate::container::init::load_seccomp(prog, sock, shared)?;
    }
    ep.security.apply_identity()?;
    sync::send(sock, sync::READY, &[])?;
    if let (Some(prog), true) = (&ep.seccomp, nnp && !notify) {
        crate::seccomp::load(prog)?;
    }
    exec(&exe, &ep.process)
}
