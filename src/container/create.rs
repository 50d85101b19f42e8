//! The parent side of create: plan, state dir, clone3, cgroup placement,
//! id maps, then wait for the child to report ready. On any failure every
//! trace is removed (state dir, cgroup, process).

use crate::bail;
use crate::cgroups::Cgroup;
use crate::container::init::{self, ChildFds};
use crate::container::plan::{self, Plan};
use crate::container::state::{self, Dir, State};
use crate::error::{Context, Error, Result};
use crate::linux::{clone::clone3, sync};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

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
}

/// What create leaves to its caller (`run` waits on the child).
pub struct Created {
    pub pid: i32,
    pub dir: Dir,
    pub state: State,
    pub lock: OwnedFd,
}

/// Undo on drop unless disarmed.
struct Cleanup<'a> {
    dir: Option<&'a Dir>,
    cgroup: Option<Cgroup>,
    pid: i32,
}

impl Drop for Cleanup<'_> {
    fn drop(&mut self) {
        if self.pid > 0 {
            let _ = rustix::process::kill_process(
                rustix::process::Pid::from_raw(self.pid).unwrap_or(rustix::process::Pid::INIT),
                rustix::process::Signal::KILL,
            );
            let _ = rustix::process::waitpid(
                rustix::process::Pid::from_raw(self.pid),
                rustix::process::WaitOptions::empty(),
            );
        }
        if let Some(cg) = &self.cgroup {
            let _ = cg.destroy(true);
        }
        if let Some(d) = self.dir {
            let _ = std::fs::remove_dir_all(&d.path);
        }
    }
}

pub fn create(o: &CreateOpts) -> Result<Created> {
    state::validate_id(o.id)?;
    if o.console_socket.is_some() {
        // Terminal plumbing lands with the process-plumbing work.
        crate::log::debug("console socket given; terminals are not implemented yet");
    }
    let spec = crate::spec::load(o.bundle)?;
    let plan = plan::prepare(
        &spec,
        &plan::Options {
            bundle: o.bundle,
            no_pivot: o.no_pivot,
            no_new_keyring: o.no_new_keyring,
            preserve_fds: o.preserve_fds,
        },
    )?;
    if plan.process.terminal && o.console_socket.is_none() && !o.no_fifo {
        bail!("process.terminal is true but no --console-socket was given");
    }
    let linux = spec.linux.clone().unwrap_or_default();
    let cgroup = crate::cgroups::plan(
        linux.cgroups_path.as_deref(),
        o.id,
        o.systemd_cgroup,
        linux.resources.as_ref(),
    )?;

    std::fs::create_dir_all(o.root).ctx(|| format!("create root {}", o.root.display()))?;
    let dir = Dir::new(o.root, o.id);
    match std::fs::create_dir(&dir.path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!("container with id {} already exists", o.id)
        }
        Err(e) => return Err(e).ctx(|| format!("create state dir {}", dir.path.display())),
    }
    let mut cleanup = Cleanup {
        dir: Some(&dir),
        cgroup: None,
        pid: 0,
    };
    let lock = dir.lock()?;

    let (secs, nanos) = crate::timefmt::now();
    let mut st = State {
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
    };
    // Early, so a runtime killed from here on can be cleaned by delete -f.
    dir.save(&st)?;

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
        Some(
            rustix::fs::open(
                &p,
                rustix::fs::OFlags::PATH | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::empty(),
            )
            .ctx(|| format!("open {}", p.display()))?,
        )
    };
    let proc = rustix::fs::open(
        "/proc",
        rustix::fs::OFlags::PATH | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .ctx(|| "open /proc (is procfs mounted on the host?)")?;

    cgroup.create()?;
    cleanup.cgroup = Some(cgroup.clone());
    if let Some(res) = &linux.resources {
        cgroup.apply(res)?;
    }

    let (parent_sock, child_sock) = sync::pair()?;
    let close = vec![lock.as_raw_fd(), parent_sock.as_raw_fd()];
    let (pid, in_cgroup) = spawn(
        &plan,
        &cgroup,
        ChildFds {
            sock: child_sock,
            fifo,
            proc,
            close,
        },
    )?;
    cleanup.pid = pid;
    st.pid = pid;

    // Child waits for GO: first put it where it belongs.
    if !in_cgroup {
        cgroup.add_pid(pid)?;
    }
    if plan.ns_new & libc::CLONE_NEWUSER as u64 != 0 {
        write_id_maps(pid, &plan)?;
    }
    // In a user namespace the child can't raise rlimits or lower its oom
    // score against the host: we do it for it.
    plan.security.apply_from_parent(pid)?;
    sync::send(parent_sock.as_fd(), sync::GO, &[])?;

    loop {
        let (tag, payload, _fd) = sync::recv(parent_sock.as_fd())?;
        match tag {
            sync::READY => break,
            sync::ERROR => return Err(sync::decode_error(&payload)),
            0 => bail!("container init exited during setup"),
            t => bail!("sync: unexpected message {t} from container init"),
        }
    }

    st.start_time = state::proc_start_time(pid)
        .ok_or_else(|| Error::msg("container init exited during setup"))?;
    st.namespaces = namespace_paths(pid, &plan);
    st.created_done = true;
    dir.save(&st)?;
    if let Some(pf) = o.pid_file {
        write_pid_file(pf, pid)?;
    }
    cleanup.pid = 0;
    cleanup.cgroup = None;
    cleanup.dir = None;
    drop(cleanup);
    Ok(Created {
        pid,
        dir,
        state: st,
        lock,
    })
}

fn spawn(plan: &Plan, cgroup: &Cgroup, fds: ChildFds) -> Result<(i32, bool)> {
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
    let cg_fd = cgroup.v2_dir_fd();
    let mut in_cgroup = cg_fd.is_some();
    let mut r = clone3(flags, cg_fd.as_ref().map(|f| f.as_raw_fd()));
    if r.is_err() && in_cgroup {
        in_cgroup = false;
        r = clone3(flags, None);
    }
    let pid = r?;
    if pid == 0 {
        init::run(plan, fds);
    }
    Ok((pid, in_cgroup))
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
