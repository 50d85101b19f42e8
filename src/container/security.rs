//! Process security: capabilities, rlimits, user/groups, NNP, oom score,
//! scheduler, io priority, personality, sysctl, LSM labels.
//!
//! The parent calls `prepare` (all parsing, validation and name->number
//! translation, with errors before anything is cloned); the child only
//! replays the `Plan` with syscalls and pre-built paths.
//!
//! Decisions where runc is silent or unhelpful:
//! - Capability names need the "CAP_" prefix, any case; unknown names are
//!   an error (runc warns and drops them).
//! - Caps newer than the host kernel (> cap_last_cap) are dropped with a
//!   debug note (runc does not know them either). Without a user namespace,
//!   an effective, permitted or inheritable cap the runtime itself cannot
//!   pass on (not in its permitted set; for inheritable, not in both its
//!   permitted and bounding sets nor already inheritable) fails the
//!   create, naming the cap, where
//!   runc fails in capset with a bare EPERM: a container silently missing a
//!   cap it asked for breaks later and far from the cause. A bounding-only
//!   cap the runtime's bounding set lacks is left out with a debug note, as
//!   runc leaves it out without a word (the bounding set can only shrink).
//!   Inside a user namespace the child holds every cap, so nothing is cut.
//! - effective must be a subset of permitted and inheritable of bounding
//!   (the kernel refuses otherwise); both are reported by name here.
//! - Ambient caps not in both permitted and inheritable are dropped with a
//!   debug note (runc ignores the kernel's EINVAL for them).
//! - `process.capabilities` absent means every set is empty, as runc.
//! - In a user namespace the child has no capability in the initial one,
//!   which raising rlimits, lowering oom_score_adj, realtime scheduling and
//!   io priorities check. So with "user" among the namespaces the parent
//!   applies those four to the child's pid (`apply_from_parent`); without,
//!   the child does in `apply_early`.
//! - process.terminal: the pty (stdin by then) is given to process.user.uid
//!   before the uid change, as runc and crun do; its group (devpts' tty
//!   group) stays. Only the pty: stdio the engine passed in is not ours.
//! - additionalGids with /proc/self/setgroups = "deny" is an error; with no
//!   additionalGids setgroups is skipped there.

use crate::bail;
use crate::container::limits;
use crate::error::{Error, Result};
use crate::linux::{caps, lsm, rlimit, sched, sysctl};
use crate::spec::{Process, Spec};
use rustix::process::{Gid, Uid};
use std::ffi::{CStr, CString};

pub use crate::linux::caps::{cap_from_name, cap_name};
pub use crate::linux::rlimit::rlimit_from_name;

const DEFAULT_UMASK: u32 = 0o022;

#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub umask: Option<u32>,
    pub no_new_privileges: bool,

    /// process.terminal: the pty on stdin is handed to `uid` (runc, crun).
    console_owner: bool,
    gids: Vec<Gid>,
    last_cap: u32,
    bounding: caps::CapMask,
    sets: caps::Sets,
    ambient: caps::CapMask,

    rlimits: Vec<rlimit::Limit>,
    early_in_child: bool,
    oom_score_adj: Option<Vec<u8>>,
    scheduler: Option<sched::Sched>,
    ioprio: Option<u32>,
    personality: Option<u32>,

    sysctls: Vec<sysctl::Write>,
    labels: Vec<lsm::Label>,

    notes: Vec<String>,
}

/// Parent side: validate and translate names (caps, rlimits, sysctls...)
/// into numbers. `namespaces` is the list of namespace types the container
/// gets (new or joined) so sysctls can be checked against them.
pub fn prepare(spec: &Spec, namespaces: &[&str]) -> Result<Plan> {
    let default_process = Process::default();
    let p = spec.process.as_ref().unwrap_or(&default_process);
    let user_ns = namespaces.contains(&"user");
    let mut plan = Plan {
        uid: p.user.uid,
        gid: p.user.gid,
        additional_gids: p.user.additional_gids.clone(),
        umask: p.user.umask,
        no_new_privileges: p.no_new_privileges,
        console_owner: p.terminal,
        early_in_child: !user_ns,
        ..Plan::default()
    };

    prepare_user(&mut plan, p)?;
    prepare_caps(&mut plan, p, user_ns)?;

    let self_caps = caps::capget()?;
    plan.rlimits = limits::rlimits(&p.rlimits)?;
    rlimit::precheck(
        &plan.rlimits,
        self_caps.effective & caps::mask_of(caps::CAP_SYS_RESOURCE) != 0,
    )?;

    if let Some(adj) = p.oom_score_adj {
        if !(-1000..=1000).contains(&adj) {
            bail!("process.oomScoreAdj {adj} is outside -1000..1000");
        }
        plan.oom_score_adj = Some(adj.to_string().into_bytes());
    }
    if let Some(s) = &p.scheduler {
        plan.scheduler = Some(limits::scheduler(s)?);
    }
    if let Some(io) = &p.io_priority {
        plan.ioprio = Some(limits::ioprio(io)?);
    }

    let linux = spec.linux.as_ref();
    if let Some(pers) = linux.and_then(|l| l.personality.as_ref()) {
        plan.personality = Some(limits::personality(pers)?);
    }
    if let Some(l) = linux {
        let has_ns = |kind: &str| {
            namespaces.contains(&kind) || (kind == "network" && namespaces.contains(&"net"))
        };
        let net_path = l
            .namespaces
            .iter()
            .find(|n| n.typ == "network")
            .and_then(|n| n.path.as_deref());
        plan.sysctls = sysctl::prepare(&l.sysctl, has_ns, || match net_path {
            Some(path) => is_own_netns(path),
            None => Ok(false),
        })?;
    }

    if let Some(profile) = p.apparmor_profile.as_deref().filter(|s| !s.is_empty()) {
        plan.labels
            .push(lsm::prepare_apparmor(profile, lsm::apparmor_enabled())?);
    }
    if let Some(label) = p.selinux_label.as_deref().filter(|s| !s.is_empty()) {
        plan.labels
            .push(lsm::prepare_selinux(label, lsm::selinux_enabled())?);
    }
    Ok(plan)
}

fn prepare_user(plan: &mut Plan, p: &Process) -> Result<()> {
    // (uid_t)-1 means "unchanged" to the set*id calls: never a real id.
    let bad = u32::MAX;
    if p.user.uid == bad {
        bail!("process.user.uid {bad} is not a valid id");
    }
    if p.user.gid == bad || p.user.additional_gids.contains(&bad) {
        bail!("process.user: gid {bad} is not a valid id");
    }
    if let Some(m) = p.user.umask {
        if m > 0o777 {
            bail!("process.user.umask {m:#o} is not a permission mask");
        }
    }
    plan.gids = p
        .user
        .additional_gids
        .iter()
        .map(|g| Gid::from_raw(*g))
        .collect();
    if let Some(name) = &p.user.username {
        plan.notes.push(format!(
            "process.user.username {name:?} ignored: uid/gid are used as given"
        ));
    }
    Ok(())
}

fn prepare_caps(plan: &mut Plan, p: &Process, user_ns: bool) -> Result<()> {
    let empty = Vec::new();
    let c = p.capabilities.clone().unwrap_or_default();
    let set =
        |name: &str, v: &Option<Vec<String>>| caps::parse_set(name, v.as_ref().unwrap_or(&empty));
    let mut bounding = set("bounding", &c.bounding)?;
    let mut effective = set("effective", &c.effective)?;
    let mut permitted = set("permitted", &c.permitted)?;
    let mut inheritable = set("inheritable", &c.inheritable)?;
    let mut ambient = set("ambient", &c.ambient)?;
    let all = bounding | effective | permitted | inheritable | ambient;

    let last = caps::host_last_cap();
    plan.last_cap = last;
    let host_mask = if last >= 63 {
        u64::MAX
    } else {
        (1u64 << (last + 1)) - 1
    };
    for cap in caps::caps_in(all & !host_mask) {
        plan.notes.push(format!(
            "{} dropped: unknown to the host kernel (cap_last_cap is {last})",
            caps::describe(cap)
        ));
    }

    // A fresh or joined user namespace hands the child every cap in it.
    let (held, held_bounding, old_inheritable) = if user_ns {
        (host_mask, host_mask, 0)
    } else {
        let s = caps::capget()?;
        (s.permitted, caps::bounding_set(last), s.inheritable)
    };
    let usable = host_mask & held;
    for (set, mask, grantable) in [
        ("effective", effective, usable),
        ("permitted", permitted, usable),
        // After setuid the effective set is empty (no CAP_SETPCAP), so a
        // new inheritable cap must be permitted and in the bounding set.
        (
            "inheritable",
            inheritable,
            (usable & held_bounding) | old_inheritable,
        ),
    ] {
        if let Some(cap) = caps::caps_in(mask & host_mask & !grantable).next() {
            bail!(
                "process.capabilities.{set}: {0} cannot be granted: the runtime does not hold \
                 {0} (give it to runway or remove it from the config)",
                caps::describe(cap)
            );
        }
    }
    for cap in caps::caps_in(bounding & host_mask & !held_bounding) {
        plan.notes.push(format!(
            "{} not in the bounding set: the runtime's bounding set lacks it",
            caps::describe(cap)
        ));
    }
    bounding &= host_mask & held_bounding;
    effective &= host_mask;
    permitted &= host_mask;
    inheritable &= host_mask;
    ambient &= host_mask;

    if let Some(cap) = caps::caps_in(effective & !permitted).next() {
        bail!(
            "process.capabilities: {} is effective but not permitted",
            caps::describe(cap)
        );
    }
    if let Some(cap) = caps::caps_in(inheritable & !(bounding | old_inheritable)).next() {
        bail!(
            "process.capabilities: {} is inheritable but not in the bounding set",
            caps::describe(cap)
        );
    }
    for cap in caps::caps_in(ambient & !(permitted & inheritable)) {
        plan.notes.push(format!(
            "ambient {} dropped: it is not both permitted and inheritable",
            caps::describe(cap)
        ));
    }
    ambient &= permitted & inheritable;

    plan.bounding = bounding;
    plan.sets = caps::Sets {
        effective,
        permitted,
        inheritable,
    };
    plan.ambient = ambient;
    Ok(())
}

/// Whether `path` names the network namespace the runtime itself is in;
/// net.* sysctls written there would change the host.
fn is_own_netns(path: &str) -> Result<bool> {
    use rustix::fs::stat;
    let theirs = stat(path)
        .map_err(|e| Error::errno(format!("stat network namespace {path}"), e.raw_os_error()))?;
    let ours = stat("/proc/self/ns/net")
        .map_err(|e| Error::errno("stat /proc/self/ns/net", e.raw_os_error()))?;
    Ok(theirs.st_dev == ours.st_dev && theirs.st_ino == ours.st_ino)
}

fn prctl(what: &str, option: libc::c_int, arg: libc::c_ulong) -> Result<()> {
    // SAFETY: integer-only prctl options on the calling thread.
    let r = unsafe {
        libc::prctl(
            option,
            arg,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if r != 0 {
        return Err(Error::last_os(what));
    }
    Ok(())
}

/// /proc/self/setgroups reads "deny" inside a user namespace whose gid map
/// was written without setgroups permission.
fn setgroups_denied() -> bool {
    use rustix::fs::{open, Mode, OFlags};
    let Ok(fd) = open(
        c"/proc/self/setgroups",
        OFlags::RDONLY | OFlags::CLOEXEC,
        Mode::empty(),
    ) else {
        return false;
    };
    let mut buf = [0u8; 16];
    match rustix::io::read(&fd, &mut buf) {
        Ok(n) => buf.get(..n).is_some_and(|b| b.starts_with(b"deny")),
        Err(_) => false,
    }
}

impl Plan {
    /// Lines the caller logs at debug level: what was dropped or ignored.
    pub fn debug_notes(&self) -> &[String] {
        &self.notes
    }

    /// Before the rootfs is set up, still fully privileged: personality,
    /// and unless `apply_from_parent` does them: oom_score_adj, rlimits,
    /// scheduler, io priority.
    pub fn apply_early(&self) -> Result<()> {
        if self.early_in_child {
            if let Some(v) = &self.oom_score_adj {
                write_oom_score_adj(c"/proc/self/oom_score_adj", v)?;
            }
            rlimit::apply(&self.rlimits)?;
            if let Some(s) = &self.scheduler {
                sched::apply_scheduler(s, 0)?;
            }
            if let Some(io) = self.ioprio {
                sched::apply_ioprio(io, 0)?;
            }
        }
        if let Some(p) = self.personality {
            sched::apply_personality(p)?;
        }
        Ok(())
    }

    /// Parent side, with the child's pid, before the child execs: the
    /// settings a child in a user namespace cannot make itself (see the
    /// module docs). No-op without a user namespace; call it always.
    pub fn apply_from_parent(&self, pid: i32) -> Result<()> {
        if self.early_in_child {
            return Ok(());
        }
        if pid <= 0 {
            bail!("apply process settings: invalid pid {pid}");
        }
        if let Some(v) = &self.oom_score_adj {
            let path = CString::new(format!("/proc/{pid}/oom_score_adj"))
                .map_err(|_| Error::msg("oom_score_adj path"))?;
            write_oom_score_adj(&path, v)?;
        }
        rlimit::apply_to(pid, &self.rlimits)?;
        if let Some(s) = &self.scheduler {
            sched::apply_scheduler(s, pid)?;
        }
        if let Some(io) = self.ioprio {
            sched::apply_ioprio(io, pid)?;
        }
        Ok(())
    }

    /// Inside the container's mount namespace, after /proc is mounted and
    /// before readonly paths are applied: linux.sysctl.
    pub fn apply_sysctl(&self) -> Result<()> {
        sysctl::apply(&self.sysctls)
    }

    /// Last step before exec (seccomp aside): LSM exec label, keep caps
    /// across setuid, drop the bounding set, setgroups/setresgid/setresuid,
    /// set the remaining cap sets and ambient caps, umask, no_new_privs.
    pub fn apply_identity(&self) -> Result<()> {
        for l in &self.labels {
            lsm::apply(l)?;
        }
        if self.console_owner {
            chown_console(self.uid)?;
        }
        prctl("prctl PR_SET_KEEPCAPS 1", libc::PR_SET_KEEPCAPS, 1)?;
        caps::drop_bounding(self.bounding, self.last_cap)?;
        if !setgroups_denied() {
            rustix::thread::set_thread_groups(&self.gids)
                .map_err(|e| Error::errno("setgroups", e.raw_os_error()))?;
        } else if !self.gids.is_empty() {
            bail!("setgroups: additionalGids given but /proc/self/setgroups is \"deny\" in this user namespace");
        }
        let gid = Gid::from_raw(self.gid);
        rustix::thread::set_thread_res_gid(gid, gid, gid)
            .map_err(|e| id_error("setresgid", self.gid, e))?;
        let uid = Uid::from_raw(self.uid);
        rustix::thread::set_thread_res_uid(uid, uid, uid)
            .map_err(|e| id_error("setresuid", self.uid, e))?;
        prctl("prctl PR_SET_KEEPCAPS 0", libc::PR_SET_KEEPCAPS, 0)?;
        caps::capset(&self.sets).map_err(|e| {
            Error::errno(
                format!(
                    "capset effective={:#x} permitted={:#x} inheritable={:#x}",
                    self.sets.effective, self.sets.permitted, self.sets.inheritable
                ),
                e,
            )
        })?;
        caps::raise_ambient(self.ambient)?;
        rustix::process::umask(rustix::fs::Mode::from_raw_mode(
            self.umask.unwrap_or(DEFAULT_UMASK),
        ));
        if self.no_new_privileges {
            prctl("prctl PR_SET_NO_NEW_PRIVS", libc::PR_SET_NO_NEW_PRIVS, 1)?;
        }
        Ok(())
    }
}

/// Give the container's pty (on stdin by now) to the process's user, so a
/// non-root process can e.g. change its terminal modes and `tty` shows it
/// as the owner. The group stays (devpts' tty group). EINVAL/EPERM mean
/// the uid or the inode's owner has no mapping in this user namespace:
/// nothing to fix there (runc skips these too).
fn chown_console(uid: u32) -> Result<()> {
    // SAFETY: fd 0 is the pty slave `setup_terminal` put there; the
    // borrow lasts for the call only.
    let fd = unsafe { std::os::fd::BorrowedFd::borrow_raw(0) };
    if !rustix::termios::isatty(fd) {
        return Ok(());
    }
    match rustix::fs::fchown(fd, Some(Uid::from_raw(uid)), None) {
        Ok(()) | Err(rustix::io::Errno::INVAL) | Err(rustix::io::Errno::PERM) => Ok(()),
        Err(e) => Err(Error::errno(
            format!("chown console to uid {uid}"),
            e.raw_os_error(),
        )),
    }
}

/// The kernel says EINVAL when the id has no mapping in the user namespace.
fn id_error(call: &str, id: u32, e: rustix::io::Errno) -> Error {
    if e == rustix::io::Errno::INVAL {
        return Error::msg(format!(
            "{call} {id}: invalid argument (id not mapped in the container's user namespace)"
        ));
    }
    Error::errno(format!("{call} {id}"), e.raw_os_error())
}

fn write_oom_score_adj(path: &CStr, v: &[u8]) -> Result<()> {
    use rustix::fs::{open, Mode, OFlags};
    let shown = || String::from_utf8_lossy(v).into_owned();
    let fd = open(path, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| Error::errno(format!("open {}", path.to_string_lossy()), e.raw_os_error()))?;
    if let Err(e) = rustix::io::write(&fd, v) {
        let hint = if e == rustix::io::Errno::ACCESS {
            " (lowering it needs CAP_SYS_RESOURCE)"
        } else {
            ""
        };
        return Err(Error::msg(format!(
            "write {} {}: {}{hint}",
            path.to_string_lossy(),
            shown(),
            crate::error::errno_text(e.raw_os_error())
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Capabilities, IoPriority, Linux, Namespace, Personality, Rlimit, Scheduler};
    use std::collections::BTreeMap;

    const NS: &[&str] = &["pid", "network", "mount", "ipc", "uts"];

    fn names(v: &[&str]) -> Option<Vec<String>> {
        Some(v.iter().map(|s| s.to_string()).collect())
    }

    fn caps_all(v: &[&str]) -> Capabilities {
        Capabilities {
            bounding: names(v),
            effective: names(v),
            inheritable: names(v),
            permitted: names(v),
            ambient: None,
        }
    }

    fn spec_with(p: Process) -> Spec {
        Spec {
            process: Some(p),
            ..Default::default()
        }
    }

    fn is_root() -> bool {
        rustix::process::geteuid().is_root()
    }

    // ---- prepare: pure validation ----

    #[test]
    fn absent_capabilities_mean_empty_sets() {
        let plan = prepare(&spec_with(Process::default()), NS).unwrap();
        assert_eq!(plan.bounding, 0);
        assert_eq!(plan.sets, caps::Sets::default());
        assert_eq!(plan.ambient, 0);
        let plan = prepare(&Spec::default(), NS).unwrap();
        assert_eq!(plan.uid, 0);
        assert!(plan.debug_notes().is_empty());
    }

    #[test]
    fn capability_errors() {
        let mut p = Process {
            capabilities: Some(caps_all(&["CAP_KILL", "CAP_TEST"])),
            ..Default::default()
        };
        let e = prepare(&spec_with(p.clone()), NS).unwrap_err().to_string();
        assert_eq!(
            e,
            "process.capabilities.bounding: unknown capability \"CAP_TEST\""
        );

        let mut c = caps_all(&["CAP_KILL"]);
        c.effective = names(&["CAP_KILL", "CAP_CHOWN"]);
        p.capabilities = Some(c);
        let e = prepare(&spec_with(p.clone()), NS).unwrap_err().to_string();
        assert_eq!(
            e,
            "process.capabilities: CAP_CHOWN is effective but not permitted"
        );

        let mut c = caps_all(&["CAP_KILL"]);
        c.inheritable = names(&["CAP_SYS_ADMIN"]);
        p.capabilities = Some(c);
        let e = prepare(&spec_with(p), NS).unwrap_err().to_string();
        assert_eq!(
            e,
            "process.capabilities: CAP_SYS_ADMIN is inheritable but not in the bounding set"
        );
    }

    #[test]
    fn lowercase_names_and_ambient_filtering() {
        let mut c = caps_all(&["cap_kill", "CAP_NET_BIND_SERVICE"]);
        c.ambient = names(&["CAP_KILL", "CAP_CHOWN"]);
        let p = Process {
            capabilities: Some(c),
            ..Default::default()
        };
        let plan = prepare(&spec_with(p), &["user"]).unwrap();
        assert_eq!(plan.bounding, 1 << 5 | 1 << 10);
        assert_eq!(plan.sets.effective, 1 << 5 | 1 << 10);
        assert_eq!(plan.ambient, 1 << 5);
        assert_eq!(
            plan.debug_notes(),
            ["ambient CAP_CHOWN dropped: it is not both permitted and inheritable"]
        );
    }

    #[test]
    fn caps_the_runtime_lacks_fail_without_userns() {
        let held = caps::capget().unwrap().permitted;
        let Some(missing) = (0..=caps::host_last_cap()).find(|c| held & caps::mask_of(*c) == 0)
        else {
            return;
        };
        let name = caps::cap_name(missing).unwrap();
        let p = Process {
            capabilities: Some(caps_all(&["CAP_KILL", name])),
            ..Default::default()
        };
        let e = prepare(&spec_with(p.clone()), NS).unwrap_err().to_string();
        assert!(
            e.contains(&format!(
                "{name} cannot be granted: the runtime does not hold"
            )),
            "{e}"
        );
        // In a user namespace the child holds every cap.
        let plan = prepare(&spec_with(p), &["user", "mount"]).unwrap();
        assert_eq!(plan.sets.permitted, 1 << 5 | caps::mask_of(missing));
    }

    #[test]
    fn user_and_misc_validation() {
        let bad = |f: &dyn Fn(&mut Process)| {
            let mut p = Process::default();
            f(&mut p);
            prepare(&spec_with(p), NS).unwrap_err().to_string()
        };
        assert!(bad(&|p| p.user.uid = u32::MAX).contains("not a valid id"));
        assert!(bad(&|p| p.user.additional_gids = vec![1, u32::MAX]).contains("not a valid id"));
        assert!(bad(&|p| p.user.umask = Some(0o1000)).contains("umask"));
        assert_eq!(
            bad(&|p| p.oom_score_adj = Some(1001)),
            "process.oomScoreAdj 1001 is outside -1000..1000"
        );
        assert!(bad(&|p| p.scheduler = Some(Scheduler {
            policy: "SCHED_X".into(),
            ..Default::default()
        }))
        .contains("unknown policy"));
        assert!(bad(&|p| p.io_priority = Some(IoPriority {
            class: "IOPRIO_CLASS_BE".into(),
            priority: 9
        }))
        .contains("outside 0..7"));
        assert!(bad(&|p| p.rlimits = vec![Rlimit {
            typ: "RLIMIT_NOPE".into(),
            soft: 1,
            hard: 1
        }])
        .contains("unknown rlimit"));

        let mut p = Process::default();
        p.user.username = Some("nobody".into());
        let plan = prepare(&spec_with(p), NS).unwrap();
        assert_eq!(plan.debug_notes().len(), 1);
    }

    #[test]
    fn lsm_requests_fail_when_lsm_is_off() {
        if lsm::apparmor_enabled() {
            return;
        }
        let p = Process {
            apparmor_profile: Some("docker-default".into()),
            ..Default::default()
        };
        let e = prepare(&spec_with(p), NS).unwrap_err().to_string();
        assert!(e.contains("AppArmor is not enabled"), "{e}");
        let p = Process {
            apparmor_profile: Some(String::new()),
            ..Default::default()
        };
        prepare(&spec_with(p), NS).unwrap();
    }

    #[test]
    fn sysctl_and_personality_through_prepare() {
        let mut sysctl = BTreeMap::new();
        sysctl.insert("net.ipv4.ip_forward".to_string(), "1".to_string());
        let mut spec = Spec {
            linux: Some(Linux {
                sysctl,
                personality: Some(Personality {
                    domain: "LINUX32".into(),
                    flags: vec![],
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let plan = prepare(&spec, NS).unwrap();
        assert_eq!(plan.personality, Some(8));
        assert_eq!(plan.sysctls.len(), 1);
        assert!(prepare(&spec, &["pid", "mount"]).is_err());

        // Joining our own netns by path is the host's netns.
        if let Some(l) = spec.linux.as_mut() {
            l.namespaces = vec![Namespace {
                typ: "network".into(),
                path: Some("/proc/self/ns/net".into()),
            }];
        }
        let e = prepare(&spec, NS).unwrap_err().to_string();
        assert!(e.contains("host's network namespace"), "{e}");
    }

    // ---- real kernel: fork, apply, inspect /proc/self/status ----

    /// Runs `f` in a forked child and returns its exit code (0 = pass).
    fn in_child(f: impl FnOnce() -> i32) -> i32 {
        // SAFETY: the child only makes syscalls and leaves with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let code = f();
            // SAFETY: leave without running the parent's destructors.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        assert_eq!(r, pid);
        assert!(libc::WIFEXITED(status), "child died: {status:#x}");
        libc::WEXITSTATUS(status)
    }

    /// Field of /proc/self/status parsed with `radix`, no allocation.
    fn status_field(name: &[u8], radix: u32) -> Option<u64> {
        use rustix::fs::{open, Mode, OFlags};
        let fd = open(c"/proc/self/status", OFlags::RDONLY, Mode::empty()).ok()?;
        let mut buf = [0u8; 8192];
        let mut len = 0;
        loop {
            let n = rustix::io::read(&fd, &mut buf[len..]).ok()?;
            if n == 0 || len + n == buf.len() {
                len += n;
                break;
            }
            len += n;
        }
        let text = &buf[..len];
        for line in text.split(|b| *b == b'\n') {
            if let Some(rest) = line.strip_prefix(name) {
                let v = std::str::from_utf8(rest).ok()?.trim();
                return u64::from_str_radix(v, radix).ok();
            }
        }
        None
    }

    fn read_small(path: &std::ffi::CStr) -> Option<i64> {
        use rustix::fs::{open, Mode, OFlags};
        let fd = open(path, OFlags::RDONLY, Mode::empty()).ok()?;
        let mut buf = [0u8; 64];
        let n = rustix::io::read(&fd, &mut buf).ok()?;
        std::str::from_utf8(&buf[..n]).ok()?.trim().parse().ok()
    }

    #[test]
    fn child_drops_to_uid_1000_with_small_cap_set() {
        if !is_root() {
            return;
        }
        let mut c = caps_all(&["CAP_KILL", "CAP_NET_BIND_SERVICE"]);
        c.ambient = names(&["CAP_NET_BIND_SERVICE"]);
        let (_, nofile_hard) = rlimit::current(rlimit::RLIMIT_NOFILE).unwrap();
        let p = Process {
            user: crate::spec::User {
                uid: 1000,
                gid: 1000,
                umask: Some(0o027),
                additional_gids: vec![1001, 1002],
                username: None,
            },
            capabilities: Some(c),
            rlimits: vec![Rlimit {
                typ: "RLIMIT_NOFILE".into(),
                soft: 100,
                hard: nofile_hard.min(200),
            }],
            no_new_privileges: true,
            ..Default::default()
        };
        let plan = prepare(&spec_with(p), NS).unwrap();
        let want = 1u64 << 5 | 1 << 10;
        let code = in_child(|| {
            if plan.apply_early().is_err() {
                return 10;
            }
            if plan.apply_identity().is_err() {
                return 11;
            }
            let checks: [(&[u8], u32, u64); 6] = [
                (b"CapEff:", 16, want),
                (b"CapPrm:", 16, want),
                (b"CapInh:", 16, want),
                (b"CapBnd:", 16, want),
                (b"CapAmb:", 16, 1 << 10),
                (b"NoNewPrivs:", 10, 1),
            ];
            for (i, (name, radix, v)) in checks.iter().enumerate() {
                if status_field(name, *radix) != Some(*v) {
                    return 20 + i as i32;
                }
            }
            if rustix::process::getuid().as_raw() != 1000
                || rustix::process::geteuid().as_raw() != 1000
                || rustix::process::getgid().as_raw() != 1000
            {
                return 30;
            }
            let mut groups = [0 as libc::gid_t; 8];
            // SAFETY: buffer of the size we pass.
            let n = unsafe { libc::getgroups(8, groups.as_mut_ptr()) };
            if n != 2 || groups[0] != 1001 || groups[1] != 1002 {
                return 31;
            }
            if rustix::process::umask(rustix::fs::Mode::empty()).bits() != 0o027 {
                return 32;
            }
            if rlimit::current(rlimit::RLIMIT_NOFILE) != Some((100, nofile_hard.min(200))) {
                return 33;
            }
            0
        });
        assert_eq!(code, 0);
    }

    #[test]
    fn child_without_capabilities_has_none() {
        if !is_root() {
            return;
        }
        let plan = prepare(&spec_with(Process::default()), NS).unwrap();
        let code = in_child(|| {
            if plan.apply_identity().is_err() {
                return 11;
            }
            for (i, f) in [b"CapEff:", b"CapPrm:", b"CapBnd:", b"CapAmb:", b"CapInh:"]
                .iter()
                .enumerate()
            {
                if status_field(*f, 16) != Some(0) {
                    return 20 + i as i32;
                }
            }
            if status_field(b"NoNewPrivs:", 10) != Some(0) {
                return 30;
            }
            // Default umask.
            if rustix::process::umask(rustix::fs::Mode::empty()).bits() != 0o022 {
                return 31;
            }
            0
        });
        assert_eq!(code, 0);
    }

    #[test]
    fn child_applies_early_settings() {
        if !is_root() {
            return;
        }
        let p = Process {
            oom_score_adj: Some(500),
            scheduler: Some(Scheduler {
                policy: "SCHED_BATCH".into(),
                nice: Some(5),
                ..Default::default()
            }),
            io_priority: Some(IoPriority {
                class: "IOPRIO_CLASS_BE".into(),
                priority: 6,
            }),
            ..Default::default()
        };
        let mut spec = spec_with(p);
        spec.linux = Some(Linux {
            personality: Some(Personality {
                domain: "LINUX32".into(),
                flags: vec![],
            }),
            ..Default::default()
        });
        let plan = prepare(&spec, NS).unwrap();
        let code = in_child(|| {
            if plan.apply_early().is_err() {
                return 10;
            }
            if read_small(c"/proc/self/oom_score_adj") != Some(500) {
                return 20;
            }
            // SAFETY: plain queries about ourselves.
            unsafe {
                // musl's sched_getscheduler is a stub returning ENOSYS.
                if libc::syscall(libc::SYS_sched_getscheduler, 0)
                    != libc::SCHED_BATCH as libc::c_long
                {
                    return 21;
                }
                *libc::__errno_location() = 0;
                if libc::getpriority(libc::PRIO_PROCESS, 0) != 5 {
                    return 22;
                }
                if libc::syscall(libc::SYS_ioprio_get, 1, 0) != (2 << 13 | 6) {
                    return 23;
                }
                if libc::personality(0xffff_ffff) != 8 {
                    return 24;
                }
            }
            0
        });
        assert_eq!(code, 0);
    }

    #[test]
    fn child_rlimit_above_runtime_hard_fails_clearly() {
        if !is_root() || caps::capget().unwrap().effective & caps::mask_of(24) != 0 {
            return;
        }
        let (_, hard) = rlimit::current(rlimit::RLIMIT_NOFILE).unwrap();
        let l = limits::rlimits(&[Rlimit {
            typ: "RLIMIT_NOFILE".into(),
            soft: 10,
            hard: hard + 1,
        }])
        .unwrap();
        let want = format!(
            "setrlimit RLIMIT_NOFILE soft=10 hard={}: operation not permitted (hard limit of the runtime is {hard})",
            hard + 1
        );
        let code = in_child(|| match rlimit::apply(&l) {
            Err(e) if e.to_string() == want => 0,
            _ => 1,
        });
        assert_eq!(code, 0);
    }

    #[test]
    fn child_writes_namespaced_sysctls() {
        if !is_root() {
            return;
        }
        let mut sysctl = BTreeMap::new();
        sysctl.insert("kernel.shmmni".to_string(), "1234".to_string());
        sysctl.insert("net.ipv4.ip_forward".to_string(), "1".to_string());
        let spec = Spec {
            linux: Some(Linux {
                sysctl,
                ..Default::default()
            }),
            ..Default::default()
        };
        let plan = prepare(&spec, NS).unwrap();
        let code = in_child(|| {
            // Private namespaces so the host's values stay untouched.
            // SAFETY: single-threaded child; no fd table sharing involved.
            let r = unsafe {
                rustix::thread::unshare_unsafe(
                    rustix::thread::UnshareFlags::NEWIPC | rustix::thread::UnshareFlags::NEWNET,
                )
            };
            if r.is_err() {
                return 10;
            }
            if plan.apply_sysctl().is_err() {
                return 11;
            }
            if read_small(c"/proc/sys/kernel/shmmni") != Some(1234) {
                return 20;
            }
            if read_small(c"/proc/sys/net/ipv4/ip_forward") != Some(1) {
                return 21;
            }
            0
        });
        assert_eq!(code, 0);
    }

    #[test]
    fn parent_applies_early_settings_to_a_child_in_a_user_namespace() {
        if !is_root() {
            return;
        }
        let (_, nofile_hard) = rlimit::current(rlimit::RLIMIT_NOFILE).unwrap();
        let p = Process {
            oom_score_adj: Some(600),
            rlimits: vec![Rlimit {
                typ: "RLIMIT_NOFILE".into(),
                soft: 50,
                hard: nofile_hard.min(60),
            }],
            scheduler: Some(Scheduler {
                policy: "SCHED_IDLE".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let plan = prepare(&spec_with(p), &["user", "mount", "pid"]).unwrap();
        let (ready_r, ready_w) = rustix::pipe::pipe().unwrap();
        let (go_r, go_w) = rustix::pipe::pipe().unwrap();
        // SAFETY: the child only makes syscalls and leaves with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0);
        if pid == 0 {
            let code = (|| {
                // SAFETY: single-threaded child.
                let r = unsafe {
                    rustix::thread::unshare_unsafe(rustix::thread::UnshareFlags::NEWUSER)
                };
                if r.is_err() {
                    return 10;
                }
                // Nothing of the early part may happen in the child here.
                if plan.apply_early().is_err() {
                    return 11;
                }
                if read_small(c"/proc/self/oom_score_adj") == Some(600) {
                    return 12;
                }
                let _ = rustix::io::write(&ready_w, b"r");
                let mut b = [0u8; 1];
                if rustix::io::read(&go_r, &mut b) != Ok(1) || b[0] != b'g' {
                    return 13;
                }
                if read_small(c"/proc/self/oom_score_adj") != Some(600) {
                    return 20;
                }
                if rlimit::current(rlimit::RLIMIT_NOFILE) != Some((50, nofile_hard.min(60))) {
                    return 21;
                }
                // SAFETY: plain query about ourselves.
                if unsafe { libc::syscall(libc::SYS_sched_getscheduler, 0) }
                    != libc::SCHED_IDLE as libc::c_long
                {
                    return 22;
                }
                0
            })();
            // SAFETY: leave without running the parent's destructors.
            unsafe { libc::_exit(code) };
        }
        let mut b = [0u8; 1];
        let got = rustix::io::read(&ready_r, &mut b);
        let applied = if got == Ok(1) {
            plan.apply_from_parent(pid)
        } else {
            Ok(())
        };
        let _ = rustix::io::write(&go_w, b"g");
        drop(go_w);
        let mut status = 0;
        // SAFETY: waiting for our own child.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        applied.unwrap();
        assert!(libc::WIFEXITED(status));
        assert_eq!(libc::WEXITSTATUS(status), 0);
    }

    #[test]
    fn child_oom_lowering_error_names_the_cap() {
        if !is_root() || caps::capget().unwrap().effective & caps::mask_of(24) != 0 {
            return;
        }
        let p = Process {
            oom_score_adj: Some(-999),
            ..Default::default()
        };
        let plan = prepare(&spec_with(p), NS).unwrap();
        let code = in_child(|| match plan.apply_early() {
            Ok(()) => 0, // this process may have a low floor already
            Err(e) => {
                let m = e.to_string();
                if m == "write /proc/self/oom_score_adj -999: permission denied (lowering it needs CAP_SYS_RESOURCE)" {
                    0
                } else {
                    1
                }
            }
        });
        assert_eq!(code, 0);
    }
}
