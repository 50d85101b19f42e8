//! The parent side of create: plan, state dir, clone3, cgroup placement,
//! id maps, then wait for the child to report ready. On any failure every
//! trace is removed (state dir, cgroup, process).

use crate::bail;
use crate::cgroups::Cgroup;
use crate::container::init::{self, ChildFds};
use crate::container::plan::{self, JoinNs, Plan};
use crate::container::state::{self, Dir, State};
use crate::error::{Context, Error, Result};
use crate::linux::{
    clone::{clone3, clone3_into},
    sync,
};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct CreateOpts<'a> {
    pub root: &'a Path,
    pub id: &'a str,
    pub bundle: &'a Path,
    pub pid_file: Option<&'a Path>,
    pub console_socket: Option<&'a Path>,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
    pub systemd_cgroup: bool,
    pub rootless: bool,
    /// `run`: no exec.fifo, the caller execs right away.
    pub no_fifo: bool,
    /// `run` with a terminal and no console socket: our own socket end.
    pub console_fd: Option<std::os::fd::RawFd>,
}

/// What create leaves to its caller (`run` waits on the child).
pub struct Created {
    pub pid: i32,
    pub dir: Dir,
    pub state: State,
    pub lock: OwnedFd,
    pub terminal: bool,
}

/// Undo on drop unless disarmed.
struct Cleanup<'a> {
    dir: Option<&'a Dir>,
    cgroup: Option<Cgroup>,
    pid: i32,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if self.pid > 0 && !kill_and_reap(self.pid, Duration::from_millis(200)) {
            // Frozen: SIGKILL takes effect once the cgroup thaws. It is the
            // container's cgroup and goes away next anyway.
            if let Some(cg) = &self.cgroup {
                let _ = cg.thaw();
            }
            kill_and_reap(self.pid, Duration::from_secs(2));
        }
        if let Some(cg) = &self.cgroup {
            let _ = cg.destroy(true);
        }
        if let Some(d) = self.dir {
            let _ = std::fs::remove_dir_all(&d.path);
        }
    }
}

/// Create a container: plan it, record it, make its cgroup, clone its
/// init, hand the init over through the handshake, and record the result.
/// Each step is its own function below, in this order.
pub fn create(o: &CreateOpts) -> Result<Created> {
    // From here ^C or a TERM ends the create with everything undone, also
    // while the init is stuck (see handshake).
    let intr = sync::Interrupts::new()?;
    let Planned {
        spec,
        mut plan,
        cgroup,
        resources,
    } = plan_container(o)?;

    let dir = make_state_dir(o)?;
    let mut cleanup = Cleanup {
        dir: Some(&dir),
        cgroup: None,
        pid: 0,
    };
    let lock = dir.lock()?;
    let mut st = first_state(o, &spec, &plan, &cgroup);
    record_state(&dir, &st, &spec)?;
    let (fifo, proc) = open_child_files(o, &dir)?;

    let overlap = overlap_cgroup_setup(&plan, &cgroup);
    if !overlap {
        setup_cgroup(&cgroup, &resources, &mut cleanup)?;
    }
    // A user namespace given by path is joined before the clone (see
    // spawn), not by the init.
    let join_user = take_joined_user(&mut plan);
    let init = spawn_init(o, &plan, &cgroup, overlap, join_user, fifo, proc, &lock)?;
    cleanup.pid = init.pid;
    record_init(&dir, &mut st, init.pid)?;
    if overlap {
        setup_cgroup(&cgroup, &resources, &mut cleanup)?;
    }
    crate::container::fault::point("after-clone");
    place_init(&plan, &cgroup, &init)?;

    // No lock across the wait on the init: a stuck init must not make
    // kill, delete or resume of this id wait for us. (Unlock, not close:
    // the init may still hold a copy of the fd.)
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::Unlock)
        .ctx(|| format!("unlock {}", dir.path.display()))?;
    handshake(o, &plan, &st, &init, &cgroup, &intr)?;
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
        .ctx(|| format!("lock {}", dir.path.display()))?;
    if !still_ours(&dir, &st) {
        // delete --force came meanwhile: the dir and cgroup are its now.
        cleanup.dir = None;
        cleanup.cgroup = None;
        bail!("container {} was deleted while being created", o.id);
    }

    crate::container::fault::point("after-ready");
    st.namespaces = namespace_paths(init.pid, &plan);
    if !plan.mount_ns {
        st.rootfs_mount = crate::container::rootfs::mount_id(&plan.rootfs);
    }
    st.created_done = true;
    dir.save(&st)?;
    if let Some(pf) = o.pid_file {
        write_pid_file(pf, init.pid)?;
    }
    cleanup.pid = 0;
    cleanup.cgroup = None;
    cleanup.dir = None;
    drop(cleanup);
    Ok(Created {
        pid: init.pid,
        dir,
        state: st,
        lock,
        terminal: plan.process.terminal,
    })
}

/// What `plan_container` makes of the bundle: everything the later steps
/// need, decided before anything is written.
struct Planned {
    spec: crate::spec::Spec,
    plan: Plan,
    cgroup: Cgroup,
    resources: crate::spec::Resources,
}

/// Step 1, plan: read and check the bundle's config, and work out the
/// cgroup. Nothing is written yet, so a bad config leaves nothing.
fn plan_container(o: &CreateOpts) -> Result<Planned> {
    state::validate_id(o.id)?;
    let spec = crate::spec::load(o.bundle)?;
    let mut plan = plan::prepare(
        &spec,
        &plan::Options {
            bundle: o.bundle,
            no_pivot: o.no_pivot,
            no_new_keyring: o.no_new_keyring,
            preserve_fds: o.preserve_fds,
        },
    )?;
    if plan.process.terminal && o.console_socket.is_none() && o.console_fd.is_none() {
        bail!("process.terminal is true but no --console-socket was given");
    }
    let linux = spec.linux.clone().unwrap_or_default();
    let (cgroup, view) = crate::cgroups::plan_and_view(
        linux.cgroups_path.as_deref(),
        o.id,
        o.systemd_cgroup,
        linux.resources.as_ref(),
    )?;
    plan.cgroup_view = view;
    Ok(Planned {
        spec,
        plan,
        cgroup,
        resources: linux.resources.unwrap_or_default(),
    })
}

/// Step 2, state: the container's directory under --root. Its existence
/// is what makes the id taken.
fn make_state_dir(o: &CreateOpts) -> Result<Dir> {
    std::fs::create_dir_all(o.root).ctx(|| format!("create root {}", o.root.display()))?;
    let dir = Dir::new(o.root, o.id);
    match std::fs::create_dir(&dir.path) {
        Ok(()) => Ok(dir),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!("container with id {} already exists", o.id)
        }
        Err(e) => Err(e).ctx(|| format!("create state dir {}", dir.path.display())),
    }
}

/// The state as it is before the init exists (pid 0, "creating" while we
/// live).
fn first_state(o: &CreateOpts, spec: &crate::spec::Spec, plan: &Plan, cgroup: &Cgroup) -> State {
    let (secs, nanos) = crate::timefmt::now();
    let hooks = spec.hooks.as_ref();
    State {
        id: o.id.to_string(),
        pid: 0,
        start_time: 0,
        bundle: plan.bundle.to_string_lossy().into_owned(),
        rootfs: plan.rootfs.to_string_lossy().into_owned(),
        created: crate::timefmt::rfc3339_nano(secs, nanos),
        annotations: spec.annotations.clone(),
        cgroup: cgroup.clone(),
        namespaces: Vec::new(),
        systemd_cgroup: o.systemd_cgroup,
        rootless: o.rootless,
        created_done: false,
        owner: Some(rustix::process::geteuid().as_raw()),
        creator: {
            let me = rustix::process::getpid().as_raw_nonzero().get();
            state::proc_start_time(me).map(|t| (me, t))
        },
        poststart: hooks.map(|h| h.poststart.clone()).unwrap_or_default(),
        poststop: hooks.map(|h| h.poststop.clone()).unwrap_or_default(),
        rootfs_mount: None,
    }
}

/// Write the first state and the config exec will use. Early, so a
/// runtime killed from here on can be cleaned by delete -f.
fn record_state(dir: &Dir, st: &State, spec: &crate::spec::Spec) -> Result<()> {
    dir.save(st)?;
    // exec takes its defaults (caps, env, seccomp...) from the config as
    // it was at create, whatever happens to the bundle later.
    let cfg = serde_json::to_vec(spec).map_err(|e| Error::msg(format!("encode config: {e}")))?;
    state::write_atomic(&dir.file(state::CONFIG_FILE), &cfg)?;
    crate::container::fault::point("after-state-dir");
    Ok(())
}

/// The exec fifo (not for `run`) as an O_PATH fd, and the host's /proc:
/// the init reopens the fifo through it after pivot_root.
fn open_child_files(o: &CreateOpts, dir: &Dir) -> Result<(Option<OwnedFd>, OwnedFd)> {
    let fifo = if o.no_fifo {
        None
    } else {
        let p = dir.file(state::FIFO);
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &p,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o622),
            0,
        )
        .ctx(|| format!("mkfifo {}", p.display()))?;
        // Writable by the container's user whatever our umask: opening it
        // for write is the init's only way to wait for start.
        rustix::fs::chmod(&p, rustix::fs::Mode::from_raw_mode(0o622))
            .ctx(|| format!("chmod {}", p.display()))?;
        Some(
            rustix::fs::open(
                &p,
                rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )
            .ctx(|| format!("open {}", p.display()))?,
        )
    };
    // The weakened test build leaks this host fd the way runc leaked one
    // (CVE-2024-21626).
    let cloexec = if cfg!(feature = "weaken-cve-2024-21626") {
        rustix::fs::OFlags::empty()
    } else {
        rustix::fs::OFlags::CLOEXEC
    };
    let proc = rustix::fs::open(
        "/proc",
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | cloexec,
        rustix::fs::Mode::empty(),
    )
    .ctx(|| "open /proc (is procfs mounted on the host?)")?;
    Ok((fifo, proc))
}

/// The cloned init as the parent holds it.
struct Init {
    pid: i32,
    placed: Placed,
    sock: OwnedFd,
    /// The seccomp-listener flag page, when the filter notifies.
    shared: Option<SharedPage>,
}

/// Step 4, spawn: the console, the sync socket, and the init itself.
#[allow(clippy::too_many_arguments)]
fn spawn_init(
    o: &CreateOpts,
    plan: &Plan,
    cgroup: &Cgroup,
    overlap: bool,
    join_user: Option<JoinNs>,
    fifo: Option<OwnedFd>,
    proc: OwnedFd,
    lock: &OwnedFd,
) -> Result<Init> {
    let console =
        crate::linux::pty::console_for(plan.process.terminal, o.console_fd, o.console_socket)?;
    let (sock, child_sock) = sync::pair()?;
    let close = vec![lock.as_raw_fd(), sock.as_raw_fd()];
    let shared = if plan.seccomp.as_ref().is_some_and(|p| p.notify) {
        Some(SharedPage::new()?)
    } else {
        None
    };
    let (pid, placed) = spawn(
        plan,
        cgroup,
        overlap,
        join_user.as_ref(),
        &sock,
        ChildFds {
            sock: child_sock,
            fifo,
            console,
            proc,
            shared: shared.as_ref().map_or(0, |p| p.ptr as usize),
            close,
        },
    )?;
    Ok(Init {
        pid,
        placed,
        sock,
        shared,
    })
}

/// Record the init's pid before it goes on, so delete --force finds it
/// even if we die from here.
fn record_init(dir: &Dir, st: &mut State, pid: i32) -> Result<()> {
    st.pid = pid;
    // Read now: the child waits for GO, so it can't have exited yet; a
    // short-lived container may be a zombie by the time it says ready.
    st.start_time = state::proc_start_time(pid)
        .ok_or_else(|| Error::msg("container init exited during setup"))?;
    dir.save(st)
}

/// The init waits for GO: first put it where it belongs (see `Placed`).
fn place_init(plan: &Plan, cgroup: &Cgroup, init: &Init) -> Result<()> {
    match init.placed {
        Placed::Fully => {}
        Placed::V1 => cgroup.add_pid_unified(init.pid)?,
        Placed::Not => cgroup.add_pid(init.pid)?,
    }
    if plan.ns_new & libc::CLONE_NEWUSER as u64 != 0 {
        write_id_maps(init.pid, plan)?;
    }
    // In a user namespace the child can't raise rlimits or lower its oom
    // score against the host: we do it for it.
    plan.security.apply_from_parent(init.pid)
}

/// Step 5, handshake: GO, then serve the init (hooks, seccomp listener)
/// until it reports READY or fails. The wait is interruptible (`intr`)
/// and ends, with an error, when the init's cgroup gets frozen: a frozen
/// init never answers.
fn handshake(
    o: &CreateOpts,
    plan: &Plan,
    st: &State,
    init: &Init,
    cgroup: &Cgroup,
    intr: &sync::Interrupts,
) -> Result<()> {
    let pid = init.pid;
    let sock = init.sock.as_fd();
    let hook_state =
        crate::container::hooks::state_json(o.id, "creating", pid, &st.bundle, &st.annotations);
    sync::send(sock, sync::GO, &hook_state)?;
    let frozen = || {
        if cgroup.frozen_or_freezing() {
            bail!("{FROZEN}");
        }
        Ok(())
    };
    loop {
        let (tag, payload, _fd) =
            sync::recv_or_interrupt(sock, intr, Duration::from_millis(100), frozen)?;
        match tag {
            sync::READY => return Ok(()),
            sync::FAULT => crate::container::fault::point("after-mounts"),
            sync::FD => {
                let r = send_seccomp_listener(
                    pid,
                    fd_number(&payload),
                    plan.seccomp_listener.as_deref(),
                    plan.seccomp_metadata.as_deref(),
                    st,
                    "creating",
                );
                if let Some(p) = &init.shared {
                    p.set(if r.is_ok() { 1 } else { 2 });
                }
                r?;
            }
            sync::HOOKS => {
                // A hook may hang too: ^C/TERM end us meanwhile as they
                // would without the interrupt wait (delete --force cleans).
                intr.unblocked(|| {
                    crate::container::hooks::run_all(
                        "prestart",
                        &plan.hooks.prestart,
                        &hook_state,
                    )?;
                    crate::container::hooks::run_all(
                        "createRuntime",
                        &plan.hooks.create_runtime,
                        &hook_state,
                    )
                })?;
                sync::send(sock, sync::GO, &[])?;
            }
            sync::ERROR => return Err(sync::decode_error(&payload)),
            0 => bail!("container init exited during setup"),
            t => bail!("sync: unexpected message {t} from container init"),
        }
    }
}

/// runc's words for a create into a frozen cgroup.
const FROZEN: &str = "container's cgroup unexpectedly frozen";

/// SIGKILL our child `pid` and reap it, waiting at most `limit`; false if
/// it is still there (a frozen task dies only once thawed).
pub(crate) fn kill_and_reap(pid: i32, limit: Duration) -> bool {
    // SAFETY: plain kill(2) of our own child, which stays ours (its pid
    // can't be reused) until we reap it.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let deadline = Instant::now() + limit;
    loop {
        // SAFETY: plain waitpid of our own child.
        let r = unsafe { libc::waitpid(pid, std::ptr::null_mut(), libc::WNOHANG) };
        if r != 0 {
            // Reaped, or not ours to reap (ECHILD): nothing to wait for.
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Whether the state dir still holds our container (not deleted and made
/// anew while we waited unlocked).
fn still_ours(dir: &Dir, st: &State) -> bool {
    dir.load(&st.id)
        .is_ok_and(|now| now.pid == st.pid && now.start_time == st.start_time)
}

/// Namespaces the child can make itself with unshare(2) as well as clone3
/// could: a new network namespace alone takes ~0.5 ms of kernel time.
const UNSHARED_BY_CHILD: u64 =
    (libc::CLONE_NEWNS | libc::CLONE_NEWNET | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS) as u64;

/// Whether the parent makes the cgroups while the child, already cloned,
/// makes its namespaces: the two biggest pieces of kernel work in a create
/// then run side by side. Only where nothing depends on the order: no
/// namespace to join (runc's order is join, then unshare), no user
/// namespace (its maps come first), and no pure v2 host (there clone3 puts
/// the child straight into its cgroup, which must exist by then).
fn overlap_cgroup_setup(plan: &Plan, cgroup: &Cgroup) -> bool {
    plan.ns_join.is_empty()
        && plan.ns_new & libc::CLONE_NEWUSER as u64 == 0
        && plan.ns_new & UNSHARED_BY_CHILD != 0
        && cgroup.layout != crate::cgroups::Layout::V2
}

/// Step 3, cgroup: mkdir the cgroups and write their limits; even without
/// resources the device policy is deny-all plus the defaults, as runc.
fn setup_cgroup(
    cgroup: &Cgroup,
    res: &crate::spec::Resources,
    cleanup: &mut Cleanup,
) -> Result<()> {
    cgroup.create()?;
    cleanup.cgroup = Some(cgroup.clone());
    // An init placed in a frozen cgroup stops before it can say anything:
    // refuse rather than wait for it (as runc).
    if cgroup.frozen_or_freezing() {
        bail!("{FROZEN}");
    }
    cgroup.apply(res)?;
    crate::container::fault::point("after-cgroup");
    Ok(())
}

/// Clone the container init. With `overlap` the child unshares its own
/// namespaces at once and joins its cgroups (made meanwhile by us) only
/// after GO; otherwise the cgroups exist already and it joins first.
/// Returns the pid and whether the unified hierarchy is taken care of.
/// Which cgroups the init is in (or joins itself) once spawned; the rest
/// are the parent's to write.
#[derive(Clone, Copy)]
enum Placed {
    /// clone3 put it in the unified hierarchy and it joins the v1 ones.
    Fully,
    /// It joins the v1 hierarchies itself.
    V1,
    /// Nothing: it runs as the joined user namespace's root, which may
    /// not write the host's cgroup files.
    Not,
}

/// Take the user namespace to join out of the plan: it is joined before
/// the init is cloned, never by the init.
fn take_joined_user(plan: &mut Plan) -> Option<JoinNs> {
    let i = plan.ns_join.iter().position(|j| j.typ == "user")?;
    Some(plan.ns_join.remove(i))
}

fn spawn(
    plan: &Plan,
    cgroup: &Cgroup,
    overlap: bool,
    join_user: Option<&JoinNs>,
    parent_sock: &OwnedFd,
    fds: ChildFds,
) -> Result<(i32, Placed)> {
    // pid and time namespaces given by path apply to our children: join
    // them here so the one clone lands the init inside.
    for j in &plan.ns_join {
        if j.typ == "pid" || j.typ == "time" {
            // SAFETY: namespace fd from the plan.
            if unsafe { libc::setns(j.fd.as_raw_fd(), j.flag as i32) } != 0 {
                return Err(Error::last_os(format!("join {} namespace", j.typ)));
            }
        }
    }
    // The cgroup namespace is unshared by the child once it is in its
    // cgroup; everything else is created by clone3 itself.
    let mut flags = plan.ns_new & !(libc::CLONE_NEWCGROUP as u64);
    if flags & libc::CLONE_NEWTIME as u64 != 0 {
        // Offsets can only be set before a process lives in the namespace:
        // make it for our children, set them, then clone into it.
        // SAFETY: a time namespace affects no memory or fd state.
        unsafe { rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWTIME) }
            .ctx(|| "unshare time namespace")?;
        if !plan.time_offsets.is_empty() {
            std::fs::write("/proc/self/timens_offsets", &plan.time_offsets)
                .ctx(|| "write timens_offsets")?;
        }
        flags &= !(libc::CLONE_NEWTIME as u64);
    }
    let child_unshares = if overlap {
        flags & UNSHARED_BY_CHILD
    } else {
        0
    };
    flags &= !child_unshares;
    if let Some(user) = join_user {
        let pid = clone_in_user_ns(plan, user, flags, parent_sock, fds)?;
        crate::log::debug(&format!(
            "cloned container init {pid} in the user namespace it joins"
        ));
        return Ok((pid, Placed::Not));
    }
    let (pid, in_cgroup) = if overlap {
        (clone3_into(flags, None)?.0, true)
    } else {
        clone3_into(flags, cgroup.unified_dir_fd().as_ref())?
    };
    if pid == 0 {
        // Namespaces now (overlap), or into the v1 hierarchies before
        // anything else, as the thread that moves (see join_self_v1: no
        // global lock, no RCU wait).
        let first = if overlap {
            // SAFETY: namespaces only; no memory or fd state changes.
            unsafe {
                rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::from_bits_retain(
                    child_unshares as u32,
                ))
            }
            .ctx(|| "unshare namespaces")
        } else {
            cgroup.join_self_v1()
        };
        if let Err(e) = first {
            child_fail(fds.sock.as_fd(), &e);
        }
        init::run(plan, fds, overlap.then_some(cgroup));
    }
    crate::log::debug(&format!(
        "cloned container init {pid}{}",
        if overlap {
            "; it makes its namespaces while we make its cgroups"
        } else if in_cgroup {
            " with CLONE_INTO_CGROUP"
        } else {
            ""
        }
    ));
    Ok((pid, if in_cgroup { Placed::Fully } else { Placed::V1 }))
}

/// Report `e` from a child that failed before init::run, and end it.
fn child_fail(sock: std::os::fd::BorrowedFd, e: &Error) -> ! {
    let _ = sync::send(sock, sync::ERROR, &sync::encode_error(e));
    // The parent reads the error after its GO; wait for it to end us so it
    // finds the message, not a dead socket.
    while let Ok((t, _, _)) = sync::recv(sock) {
        if t == 0 {
            break;
        }
    }
    // SAFETY: _exit skips the parent image's atexit handlers.
    unsafe { libc::_exit(1) }
}

/// Clone the init inside the user namespace `user` (runc's and crun's
/// order: join it, then make the new namespaces), so the namespaces it
/// gets belong to that user namespace and its root may use them (mount
/// /proc in a new pid namespace, sysfs in a new network one). We can't
/// join it ourselves (we'd lose our rights on the host), so a short-lived
/// helper joins, becomes its root, and clones the init with CLONE_PARENT:
/// the init is our child all the same. The helper sends its pid.
fn clone_in_user_ns(
    plan: &Plan,
    user: &JoinNs,
    flags: u64,
    parent_sock: &OwnedFd,
    fds: ChildFds,
) -> Result<i32> {
    let helper = clone3(0, None)?;
    if helper == 0 {
        // SAFETY: a namespace fd from the plan; we are single-threaded.
        let joined = if unsafe { libc::setns(user.fd.as_raw_fd(), libc::CLONE_NEWUSER) } != 0 {
            Err(Error::last_os("join user namespace"))
        } else {
            become_root()
        };
        match joined.and_then(|()| clone3(flags | libc::CLONE_PARENT as u64, None)) {
            // The init: its first wait is for GO, which comes once we
            // have said its pid.
            Ok(0) => init::run(plan, fds, None),
            Ok(pid) => {
                let _ = sync::send(fds.sock.as_fd(), sync::CHILD_PID, &pid.to_le_bytes());
            }
            Err(e) => {
                let _ = sync::send(fds.sock.as_fd(), sync::ERROR, &sync::encode_error(&e));
            }
        }
        // SAFETY: _exit skips the parent image's atexit handlers.
        unsafe { libc::_exit(0) }
    }
    // Our copies go now, so a helper that died without a word reads as
    // a closed socket, not a wait.
    drop(fds);
    // SAFETY: waitpid of the helper we just cloned; it exits at once.
    unsafe { libc::waitpid(helper, std::ptr::null_mut(), 0) };
    match sync::recv(parent_sock.as_fd())? {
        (sync::CHILD_PID, p, _) if p.len() == 4 => Ok(i32::from_le_bytes([p[0], p[1], p[2], p[3]])),
        (sync::ERROR, p, _) => Err(sync::decode_error(&p)),
        _ => bail!("container init: no pid from the user namespace helper"),
    }
}

/// Become the root of the user namespace just joined (our host uid 0 is
/// not mapped there): what the init's own setup expects to be.
fn become_root() -> Result<()> {
    rustix::thread::set_thread_res_gid(
        rustix::process::Gid::ROOT,
        rustix::process::Gid::ROOT,
        rustix::process::Gid::ROOT,
    )
    .map_err(|e| Error::errno("setresgid 0 in joined user namespace", e.raw_os_error()))?;
    rustix::thread::set_thread_res_uid(
        rustix::process::Uid::ROOT,
        rustix::process::Uid::ROOT,
        rustix::process::Uid::ROOT,
    )
    .map_err(|e| Error::errno("setresuid 0 in joined user namespace", e.raw_os_error()))
}

fn write_id_maps(pid: i32, plan: &Plan) -> Result<()> {
    let base = PathBuf::from(format!("/proc/{pid}"));
    std::fs::write(base.join("uid_map"), &plan.uid_map).ctx(|| "write uid_map")?;
    // An unprivileged mapping of one gid needs setgroups denied; as root
    // we keep setgroups usable unless the config is rootless-shaped.
    if plan.security_rootless_like() {
        let _ = std::fs::write(base.join("setgroups"), "deny");
    }
    std::fs::write(base.join("gid_map"), &plan.gid_map).ctx(|| "write gid_map")?;
    Ok(())
}

impl Plan {
    fn security_rootless_like(&self) -> bool {
        !rustix::process::geteuid().is_root()
    }
}

fn namespace_paths(pid: i32, plan: &Plan) -> Vec<(String, String)> {
    plan.ns_types
        .iter()
        .map(|t| {
            let name = match *t {
                "network" => "net",
                "mount" => "mnt",
                other => other,
            };
            (t.to_string(), format!("/proc/{pid}/ns/{name}"))
        })
        .collect()
}

pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().ctx(|| "getcwd")?.join(path)
    };
    state::write_atomic(&abs, pid.to_string().as_bytes()).map_err(|e| e.wrap("pid file"))
}

/// The fd number an FD sync message announces (-1 if malformed).
pub(crate) fn fd_number(payload: &[u8]) -> i32 {
    payload
        .get(..4)
        .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .unwrap_or(-1)
}

/// Fetch the child's seccomp listener (fd `n`, announced before it loaded
/// the filter) and give it to the agent at listenerPath, with the
/// container's state as `status` says.
pub(crate) fn send_seccomp_listener(
    pid: i32,
    n: i32,
    listener: Option<&str>,
    metadata: Option<&str>,
    st: &State,
    status: &str,
) -> Result<()> {
    let Some(path) = listener else {
        bail!("seccomp notify without listenerPath");
    };
    let pidfd = rustix::process::pidfd_open(
        rustix::process::Pid::from_raw(pid).ok_or_else(|| Error::msg("bad pid"))?,
        rustix::process::PidfdFlags::empty(),
    )
    .ctx(|| "pidfd_open container init")?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let fd = loop {
        // SAFETY: pidfd_getfd with a valid pidfd; returns a new fd or -1.
        let r = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), n, 0u32) };
        if r >= 0 {
            // SAFETY: a fresh fd we now own.
            let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(r as i32) };
            let link =
                std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap_or_default();
            if link.to_string_lossy().contains("seccomp") {
                break fd;
            }
        }
        if std::time::Instant::now() > deadline || state::proc_start_time(pid).is_none() {
            bail!("seccomp: could not get the notify listener from the container init");
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    };
    let cstate = serde_json::json!({
        "ociVersion": crate::spec::OCI_VERSION,
        "id": st.id,
        "status": status,
        "pid": st.pid,
        "bundle": st.bundle,
        "annotations": st.annotations,
    });
    let doc = crate::seccomp::build_process_state(pid, metadata.unwrap_or(""), &cstate)?;
    crate::seccomp::send_listener(path, fd.as_fd(), &doc)
}

/// One anonymous MAP_SHARED page: a flag the child can wait on without
/// making syscalls.
pub(crate) struct SharedPage {
    pub(crate) ptr: *mut std::sync::atomic::AtomicU32,
}

impl SharedPage {
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: fresh anonymous mapping, not aliased by any Rust object.
        let p = unsafe {
            rustix::mm::mmap_anonymous(
                std::ptr::null_mut(),
                4096,
                rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE,
                rustix::mm::MapFlags::SHARED,
            )
        }
        .ctx(|| "mmap shared page")?;
        Ok(SharedPage { ptr: p.cast() })
    }

    pub(crate) fn set(&self, v: u32) {
        // SAFETY: the mapping lives until drop; AtomicU32 fits in it.
        unsafe { &*self.ptr }.store(v, std::sync::atomic::Ordering::Release);
    }
}

impl Drop for SharedPage {
    fn drop(&mut self) {
        // SAFETY: unmapping the page we mapped.
        let _ = unsafe { rustix::mm::munmap(self.ptr.cast(), 4096) };
    }
}
