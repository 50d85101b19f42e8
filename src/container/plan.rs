//! Everything the parent works out before clone3: the child only walks this
//! plan making syscalls (no parsing, no lookups that could fail late).

use crate::bail;
use crate::error::{Context, Error, Result};
use crate::linux::mountinfo;
use crate::linux::mountopt::{self, MountOpts};
use crate::spec::{Device, Spec};
use std::ffi::CString;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub enum MountKind {
    /// mount(2) of a filesystem type.
    Fs {
        fstype: CString,
    },
    Bind,
    /// `type: cgroup` / `cgroup2`: the container's view of its cgroups.
    Cgroup,
}

#[derive(Debug)]
pub struct MountPlan {
    pub dest: String,
    pub source: Option<CString>,
    /// Source is a regular file (bind): the target is created as a file.
    pub source_is_file: bool,
    pub kind: MountKind,
    pub opts: MountOpts,
    pub data: Option<CString>,
    /// Bind source cloned with open_tree(2) by the parent, in the host's
    /// namespaces: a user namespace's root may be unable to reach it
    /// (runc's mount fds). The child attaches it with move_mount(2).
    pub tree: Option<OwnedFd>,
}

#[derive(Debug, Clone)]
pub struct DevicePlan {
    pub path: String,
    pub kind: u32,
    pub major: u32,
    pub minor: u32,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

#[derive(Debug, Default)]
pub struct ProcessPlan {
    pub args: Vec<CString>,
    pub env: Vec<CString>,
    pub cwd: String,
    /// PATH entries from the container env, for the executable lookup done
    /// inside the container right before we report ready.
    pub path: Vec<String>,
    pub terminal: bool,
    /// (rows, cols)
    pub console_size: Option<(u16, u16)>,
}

pub const NS_ORDER: &[(&str, u64)] = &[
    ("user", libc::CLONE_NEWUSER as u64),
    ("ipc", libc::CLONE_NEWIPC as u64),
    ("uts", libc::CLONE_NEWUTS as u64),
    ("network", libc::CLONE_NEWNET as u64),
    ("cgroup", libc::CLONE_NEWCGROUP as u64),
    ("pid", libc::CLONE_NEWPID as u64),
    ("time", libc::CLONE_NEWTIME as u64),
    ("mount", libc::CLONE_NEWNS as u64),
];

pub fn ns_flag(typ: &str) -> u64 {
    NS_ORDER
        .iter()
        .find(|(t, _)| *t == typ)
        .map(|(_, f)| *f)
        .unwrap_or(0)
}

#[derive(Debug)]
pub struct JoinNs {
    pub typ: &'static str,
    pub flag: u64,
    pub fd: OwnedFd,
}

#[derive(Debug)]
pub struct Plan {
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub rootfs_c: CString,
    pub readonly_root: bool,
    /// CLONE_NEW* flags of namespaces created fresh.
    pub ns_new: u64,
    /// Namespaces joined by path, opened now, in setns order.
    pub ns_join: Vec<JoinNs>,
    /// Every namespace type the container has, new or joined.
    pub ns_types: Vec<&'static str>,
    pub hostname: Option<CString>,
    pub domainname: Option<CString>,
    pub mounts: Vec<MountPlan>,
    /// Propagation given to / of the mount namespace before the rootfs is
    /// bound (rslave unless the config says otherwise).
    pub root_propagation: libc::c_ulong,
    /// rootfsPropagation applied again to the container's / once it is the
    /// root: the bind and pivot happen under a private parent, so the
    /// requested type is only set afterwards (0: nothing to do).
    pub root_propagation_after: libc::c_ulong,
    /// The container has a mount namespace (new or joined). Without one
    /// it runs in the runtime's, as runc and crun do: mounts land there and
    /// `delete` detaches them.
    pub mount_ns: bool,
    pub no_pivot: bool,
    /// The runtime's root is the initramfs (rootfs, the namespace's first
    /// mount): pivot_root(2) cannot work there, so the root is switched
    /// the --no-pivot way.
    pub initramfs_root: bool,
    /// Full proc and sysfs mounts outside the rootfs: hidden but still in
    /// the mount namespace after MS_MOVE + chroot, where they would let the
    /// container mount a fresh, unmasked procfs. Detached before the move.
    pub host_pseudo_mounts: Vec<CString>,
    /// /dev is not bind-mounted from the host: create device nodes.
    pub setup_dev: bool,
    pub devices: Vec<DevicePlan>,
    pub masked: Vec<CString>,
    pub readonly_paths: Vec<CString>,
    pub process: ProcessPlan,
    pub uid_map: String,
    pub gid_map: String,
    pub security: crate::container::security::Plan,
    pub seccomp: Option<crate::seccomp::Program>,
    pub preserve_fds: u32,
    pub no_new_keyring: bool,
    /// /proc/self/timens_offsets content for a new time namespace.
    pub time_offsets: String,
    pub hooks: crate::spec::Hooks,
    pub seccomp_listener: Option<String>,
    pub seccomp_metadata: Option<String>,
    /// What `type: cgroup` mounts show; create fills it in with the cgroup
    /// plan.
    pub cgroup_view: crate::cgroups::View,
}

pub fn cstr(s: &str, what: &str) -> Result<CString> {
    CString::new(s).map_err(|_| Error::msg(format!("{what} {s:?} contains a NUL byte")))
}

pub struct Options<'a> {
    pub bundle: &'a Path,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub preserve_fds: u32,
}

pub fn prepare(spec: &Spec, o: &Options) -> Result<Plan> {
    crate::spec::validate::validate(spec)?;
    let linux = spec.linux.clone().unwrap_or_default();
    let bundle =
        std::fs::canonicalize(o.bundle).ctx(|| format!("bundle {}", o.bundle.display()))?;
    let root = spec.root.clone().unwrap_or_default();
    let rootfs_raw = if root.path.starts_with('/') {
        PathBuf::from(&root.path)
    } else {
        bundle.join(&root.path)
    };
    let rootfs =
        std::fs::canonicalize(&rootfs_raw).ctx(|| format!("rootfs {}", rootfs_raw.display()))?;
    if !rootfs.is_dir() {
        bail!("rootfs {}: not a directory", rootfs.display());
    }
    let rootfs_c = cstr(&rootfs.to_string_lossy(), "rootfs")?;

    // Namespaces.
    let mut ns_new = 0u64;
    let mut ns_join = Vec::new();
    let mut ns_types = Vec::new();
    for (typ, flag) in NS_ORDER {
        let Some(ns) = linux.namespaces.iter().find(|n| n.typ == *typ) else {
            continue;
        };
        ns_types.push(*typ);
        match ns.path.as_deref() {
            None | Some("") => ns_new |= flag,
            Some(p) => {
                let fd = rustix::fs::open(
                    p,
                    rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
                    rustix::fs::Mode::empty(),
                )
                .ctx(|| format!("open {typ} namespace {p}"))?;
                ns_join.push(JoinNs {
                    typ,
                    flag: *flag,
                    fd,
                });
            }
        }
    }
    let mount_ns = ns_types.contains(&"mount");
    if ns_join.iter().any(|j| j.typ == "user") && ns_new & libc::CLONE_NEWTIME as u64 != 0 {
        bail!(
            "config: joining a user namespace together with a new time namespace is not supported"
        );
    }
    let userns = ns_types.contains(&"user");

    let idmap = |m: &[crate::spec::IdMapping]| -> String {
        m.iter()
            .map(|e| format!("{} {} {}\n", e.container_id, e.host_id, e.size))
            .collect()
    };
    let uid_map = idmap(&linux.uid_mappings);
    let gid_map = idmap(&linux.gid_mappings);
    if ns_new & libc::CLONE_NEWUSER as u64 != 0 && (uid_map.is_empty() || gid_map.is_empty()) {
        bail!("config: a new user namespace needs uidMappings and gidMappings");
    }

    // Mounts.
    let mut mounts = Vec::with_capacity(spec.mounts.len());
    let mut setup_dev = true;
    for m in &spec.mounts {
        let dest = if m.destination.starts_with('/') {
            m.destination.clone()
        } else {
            format!("/{}", m.destination)
        };
        let opts = mountopt::parse(m.options.as_deref().unwrap_or(&[]));
        let typ = m.typ.as_deref().unwrap_or("");
        let kind = if opts.is_bind() || typ == "bind" {
            MountKind::Bind
        } else if typ == "cgroup" || typ == "cgroup2" {
            MountKind::Cgroup
        } else if typ.is_empty() || typ == "none" {
            bail!("config: mount {dest}: no type and not a bind mount");
        } else {
            MountKind::Fs {
                fstype: cstr(typ, "mount type")?,
            }
        };
        let mut opts = opts;
        let mut source_is_file = false;
        let source = match (&kind, m.source.as_deref()) {
            (MountKind::Bind, None) | (MountKind::Bind, Some("")) => {
                bail!("config: bind mount {dest} has no source")
            }
            (MountKind::Bind, Some(src)) => {
                let src = if src.starts_with('/') {
                    PathBuf::from(src)
                } else {
                    bundle.join(src)
                };
                let md = std::fs::metadata(&src)
                    .ctx(|| format!("bind mount source {}", src.display()))?;
                source_is_file = !md.is_dir();
                opts.flags |= libc::MS_BIND;
                Some(cstr(&src.to_string_lossy(), "mount source")?)
            }
            (_, Some(s)) => Some(cstr(s, "mount source")?),
            (_, None) => None,
        };
        if dest == "/dev" && matches!(kind, MountKind::Bind) {
            setup_dev = false;
        }
        let data = if opts.data.is_empty() {
            None
        } else {
            Some(cstr(&opts.data, "mount options")?)
        };
        let tree = match (&kind, &source) {
            (MountKind::Bind, Some(src)) if ns_types.contains(&"user") => {
                open_bind_source(src, opts.flags & libc::MS_REC != 0)?
            }
            _ => None,
        };
        mounts.push(MountPlan {
            dest,
            source,
            source_is_file,
            kind,
            opts,
            data,
            tree,
        });
    }

    let (root_propagation, root_propagation_after) = match linux.rootfs_propagation.as_deref() {
        None | Some("") => (libc::MS_SLAVE | libc::MS_REC, 0),
        Some(p) => match mountopt::propagation(p) {
            // Private needs no second pass: the parent was made private.
            Some(f) if f & libc::MS_PRIVATE != 0 => (f, 0),
            // Unbindable mounts cannot be bind sources (the rootfs, the
            // host's cgroup dirs): private while binding, unbindable once
            // the container's tree is all there is.
            Some(f) if f & libc::MS_UNBINDABLE != 0 => ((f & libc::MS_REC) | libc::MS_PRIVATE, f),
            Some(f) => (f, f),
            None => bail!("config: invalid rootfsPropagation {p:?}"),
        },
    };
    // The mount table is read only when / could be the initramfs (a
    // ramfs or tmpfs): hosts with thousands of mounts pay nothing.
    const RAMFS_MAGIC: i64 = 0x8584_58f6;
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    let ram_root =
        rustix::fs::statfs("/").is_ok_and(|st| matches!(st.f_type, RAMFS_MAGIC | TMPFS_MAGIC));
    let mountinfo = if mount_ns && (ram_root || o.no_pivot) {
        std::fs::read("/proc/self/mountinfo").unwrap_or_default()
    } else {
        Vec::new()
    };
    let initramfs_root = ram_root && is_initramfs_root(&mountinfo);
    let host_pseudo_mounts = if initramfs_root || o.no_pivot {
        pseudo_mounts_outside(&mountinfo, &rootfs)
    } else {
        Vec::new()
    };

    let devices = linux
        .devices
        .iter()
        .map(device_plan)
        .collect::<Result<Vec<_>>>()?;

    let cpaths = |v: &Option<Vec<String>>| -> Result<Vec<CString>> {
        v.as_deref()
            .unwrap_or(&[])
            .iter()
            .map(|p| cstr(p, "path"))
            .collect()
    };
    let masked = cpaths(&linux.masked_paths)?;
    let readonly_paths = cpaths(&linux.readonly_paths)?;

    let p = spec.process.clone().unwrap_or_default();
    let process = process_plan(&p)?;
    let security = crate::container::security::prepare(spec, &ns_types)?;
    for note in security.debug_notes() {
        crate::log::debug(note);
    }
    let seccomp = match &linux.seccomp {
        Some(s) => {
            let prog = crate::seccomp::compile(s).ctx(|| "seccomp")?;
            for name in &prog.ignored {
                crate::log::debug(&format!(
                    "seccomp: ignoring syscall {name} unknown on this architecture"
                ));
            }
            Some(prog)
        }
        None => None,
    };

    let hostname = match spec.hostname.as_deref() {
        Some(h) if !h.is_empty() => Some(cstr(h, "hostname")?),
        _ => None,
    };
    let domainname = match spec.domainname.as_deref() {
        Some(h) if !h.is_empty() => Some(cstr(h, "domainname")?),
        _ => None,
    };
    let _ = userns;
    let mut time_offsets = String::new();
    for (clock, off) in &linux.time_offsets {
        if clock != "monotonic" && clock != "boottime" {
            bail!("config: timeOffsets: unknown clock {clock:?} (monotonic or boottime)");
        }
        if off.nanosecs >= 1_000_000_000 {
            bail!("config: timeOffsets.{clock}.nanosecs must be below 1e9");
        }
        time_offsets.push_str(&format!("{clock} {} {}\n", off.secs, off.nanosecs));
    }

    Ok(Plan {
        bundle,
        rootfs,
        rootfs_c,
        readonly_root: root.readonly,
        ns_new,
        ns_join,
        ns_types,
        hostname,
        domainname,
        mounts,
        root_propagation,
        root_propagation_after,
        mount_ns,
        no_pivot: o.no_pivot,
        initramfs_root,
        host_pseudo_mounts,
        setup_dev,
        devices,
        masked,
        readonly_paths,
        process,
        uid_map,
        gid_map,
        security,
        seccomp,
        preserve_fds: o.preserve_fds,
        no_new_keyring: o.no_new_keyring,
        time_offsets,
        hooks: spec.hooks.clone().unwrap_or_default(),
        seccomp_listener: linux.seccomp.as_ref().and_then(|s| s.listener_path.clone()),
        seccomp_metadata: linux
            .seccomp
            .as_ref()
            .and_then(|s| s.listener_metadata.clone()),
        cgroup_view: crate::cgroups::View::Hierarchies(Vec::new()),
    })
}

/// A detached copy of the mount tree at `src` (None before Linux 5.2:
/// the child binds by path then).
fn open_bind_source(src: &CString, recursive: bool) -> Result<Option<OwnedFd>> {
    use rustix::mount::OpenTreeFlags as F;
    let mut flags = F::OPEN_TREE_CLONE | F::OPEN_TREE_CLOEXEC;
    if recursive {
        flags |= F::AT_RECURSIVE;
    }
    match rustix::mount::open_tree(rustix::fs::CWD, src.as_c_str(), flags) {
        Ok(fd) => Ok(Some(fd)),
        Err(rustix::io::Errno::NOSYS) => Ok(None),
        Err(e) => Err(Error::errno(
            format!("bind mount source {}", src.to_string_lossy()),
            e.raw_os_error(),
        )),
    }
}

/// Whether our root is the namespace's first mount (the initramfs): its
/// mountinfo line is its own parent, and pivot_root(2) refuses to move it.
pub fn is_initramfs_root(mountinfo: &[u8]) -> bool {
    let text = String::from_utf8_lossy(mountinfo);
    // The last mount on / is the one we see.
    text.lines()
        .rev()
        .filter_map(mountinfo::parse_line)
        .find(|l| l.point == "/")
        .is_some_and(|l| l.id == l.parent || l.fstype == "rootfs")
}

/// Mount points of whole proc and sysfs instances outside `rootfs`.
pub fn pseudo_mounts_outside(mountinfo: &[u8], rootfs: &Path) -> Vec<CString> {
    let text = String::from_utf8_lossy(mountinfo);
    let rootfs = rootfs.to_string_lossy();
    text.lines()
        .filter_map(mountinfo::parse_line)
        .filter(|l| {
            l.root == "/"
                && (l.fstype == "proc" || l.fstype == "sysfs")
                && !(l.point.as_str() == rootfs
                    || l.point
                        .strip_prefix(rootfs.as_ref())
                        .is_some_and(|r| r.starts_with('/')))
        })
        .filter_map(|l| CString::new(l.point).ok())
        .collect()
}

/// argv, env, cwd and PATH of a process, as C strings for execve.
pub fn process_plan(p: &crate::spec::Process) -> Result<ProcessPlan> {
    if p.args.is_empty() {
        bail!("process.args must not be empty");
    }
    if !p.cwd.starts_with('/') {
        bail!("process.cwd {:?} must be an absolute path", p.cwd);
    }
    let args = p
        .args
        .iter()
        .map(|a| cstr(a, "process arg"))
        .collect::<Result<Vec<_>>>()?;
    let env = p
        .env
        .iter()
        .map(|a| cstr(a, "process env"))
        .collect::<Result<Vec<_>>>()?;
    let path = p
        .env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
        .split(':')
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let clamp = |v: u32| v.min(u16::MAX as u32) as u16;
    Ok(ProcessPlan {
        args,
        env,
        cwd: p.cwd.clone(),
        path,
        terminal: p.terminal,
        console_size: p.console_size.map(|b| (clamp(b.height), clamp(b.width))),
    })
}

fn device_plan(d: &Device) -> Result<DevicePlan> {
    let kind = match d.typ.as_str() {
        "c" | "u" => libc::S_IFCHR,
        "b" => libc::S_IFBLK,
        "p" => libc::S_IFIFO,
        t => bail!("config: device {}: unknown type {t:?}", d.path),
    };
    if !d.path.starts_with("/dev/") || d.path.split('/').any(|c| c == "..") {
        bail!("config: device path {:?} must be under /dev", d.path);
    }
    let num = |v: i64, what: &str| -> Result<u32> {
        u32::try_from(v)
            .map_err(|_| Error::msg(format!("config: device {}: invalid {what} {v}", d.path)))
    };
    Ok(DevicePlan {
        path: d.path.clone(),
        kind,
        major: num(d.major, "major")?,
        minor: num(d.minor, "minor")?,
        mode: d.file_mode.unwrap_or(0o666) & 0o7777,
        uid: d.uid.unwrap_or(0),
        gid: d.gid.unwrap_or(0),
    })
}

/// Devices every container gets (runc's list).
pub fn default_devices() -> Vec<DevicePlan> {
    let d = |path: &str, major, minor| DevicePlan {
        path: path.to_string(),
        kind: libc::S_IFCHR,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
    };
    vec![
        d("/dev/null", 1, 3),
        d("/dev/zero", 1, 5),
        d("/dev/full", 1, 7),
        d("/dev/random", 1, 8),
        d("/dev/urandom", 1, 9),
        d("/dev/tty", 5, 0),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    const INITRAMFS: &str = "1 1 0:2 / / rw - rootfs rootfs rw\n\
        22 1 0:21 / /proc rw,relatime - proc proc rw\n\
        23 1 0:22 / /sys rw,relatime - sysfs sysfs rw\n\
        24 23 0:23 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
    const DISK: &str = "27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
        22 27 0:21 / /proc rw,relatime - proc proc rw\n\
        30 27 0:21 /sys /mnt/procsys rw - proc proc rw\n\
        31 27 0:40 / /srv/my\\040root/proc rw - proc proc rw\n";

    #[test]
    fn initramfs_root_is_its_own_parent() {
        assert!(is_initramfs_root(INITRAMFS.as_bytes()));
        assert!(!is_initramfs_root(DISK.as_bytes()));
        // switch_root to a tmpfs: the tmpfs is on top, with a parent.
        let switched = format!("{INITRAMFS}40 1 0:30 / / rw - tmpfs tmpfs rw\n");
        assert!(!is_initramfs_root(switched.as_bytes()));
    }

    #[test]
    fn pseudo_mounts_are_whole_instances_outside_the_rootfs() {
        let got = pseudo_mounts_outside(INITRAMFS.as_bytes(), Path::new("/rootfs"));
        assert_eq!(got, vec![c"/proc".to_owned(), c"/sys".to_owned()]);
        // Not a subtree bind (/mnt/procsys), not the rootfs's own (escaped).
        let got = pseudo_mounts_outside(DISK.as_bytes(), Path::new("/srv/my root"));
        assert_eq!(got, vec![c"/proc".to_owned()]);
    }
}
