//! The OCI config.json of a porcelain container: the image config plus the
//! `container run` flags, with docker's semantics and defaults.
//!
//! Pure: the only I/O is reading the image's /etc/passwd and /etc/group
//! (for `-u NAME`), under a rootfs path the caller gives. Everything that
//! depends on the host (the caller's environment, cgroup v2, the container
//! dir's files, the init binary) comes in through [`Host`].

use crate::bail;
use crate::cgroups::clean_path as clean;
use crate::error::{Context, Error, Result};
use crate::image::types::ContainerConfig;
use crate::spec::{
    Capabilities, Cpu, DeviceCgroup, Linux, Memory, Mount, Namespace, Pids, Process, Resources,
    Root, Seccomp, Spec, Syscall, SyscallArg, User, OCI_VERSION,
};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

/// docker's `PATH` when neither the image nor `-e` sets one.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// docker's default capability set (moby oci/caps/defaults.go).
pub const DEFAULT_CAPS: [&str; 14] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FSETID",
    "CAP_FOWNER",
    "CAP_MKNOD",
    "CAP_NET_RAW",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETFCAP",
    "CAP_SETPCAP",
    "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT",
    "CAP_KILL",
    "CAP_AUDIT_WRITE",
];

/// podman's (containers.conf) masked paths.
const MASKED_PATHS: [&str; 11] = [
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/fs/selinux",
    "/sys/dev/block",
];

/// podman's read-only paths.
const READONLY_PATHS: [&str; 6] = [
    "/proc/asound",
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// podman's default seccomp profile (containers/common seccomp.json, with
/// its `includes`/`excludes`), minified: comments, empty fields and zero
/// `valueTwo`s dropped. Resolved per container by [`resolve_seccomp`].
const DEFAULT_SECCOMP: &[u8] = include_bytes!("seccomp_default.json");

/// `--network`: where the container's network namespace comes from. The
/// networking issue adds named networks here.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum NetworkMode {
    /// `--network none`: a new namespace with only loopback.
    None,
    /// `--network host`: the host's namespace (no network namespace entry).
    Host,
    /// The default: a new, private namespace (loopback only until the
    /// networking issue wires a network into it).
    #[default]
    New,
    /// Join an existing namespace (`/proc/PID/ns/net` or a bind-mounted one).
    Path(String),
}

/// `--security-opt seccomp=…`.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum SeccompOpt {
    /// The built-in profile (podman's default).
    #[default]
    Default,
    /// `seccomp=unconfined`: no filter.
    Unconfined,
    /// `seccomp=FILE`: the file's bytes, in docker/podman's profile format
    /// (`includes`/`excludes`/`archMap` are resolved as for the default) or
    /// plain OCI.
    Profile(Vec<u8>),
}

/// A bind mount from `-v HOST:CTR[:ro]` (or a named volume's directory),
/// already parsed by the caller.
#[derive(Debug, Clone, PartialEq)]
pub struct BindMount {
    pub source: String,
    pub destination: String,
    pub readonly: bool,
}

/// `--init`: the binary that becomes PID 1, bind-mounted read-only from
/// `host_path` to `container_path`.
#[derive(Debug, Clone, PartialEq)]
pub struct InitBinary {
    pub host_path: String,
    pub container_path: String,
}

/// The `container run` flags that shape the spec. `Default` is `run IMAGE`
/// with no flags.
#[derive(Debug, Clone, Default)]
pub struct RunOpts {
    /// The words after the image name (replace the image's Cmd).
    pub args: Vec<String>,
    /// `--entrypoint`: `Some("")` clears the image's Entrypoint; any
    /// `Some` also drops the image's Cmd (docker).
    pub entrypoint: Option<String>,
    /// `-e KEY=V` or bare `-e KEY` (taken from [`Host::env`]), in order.
    pub env: Vec<String>,
    /// The lines of the `--env-file`s, as read (comments and blanks are
    /// skipped here); applied before `-e`.
    pub env_file_lines: Vec<String>,
    /// `-w`
    pub workdir: Option<String>,
    /// `-u user[:group]`
    pub user: Option<String>,
    /// `--hostname` (default: the id's first 12 hex).
    pub hostname: Option<String>,
    /// `-t`
    pub tty: bool,
    pub read_only: bool,
    /// `--tmpfs PATH[:opts]`, as given.
    pub tmpfs: Vec<String>,
    pub binds: Vec<BindMount>,
    /// `--memory`, bytes.
    pub memory: Option<i64>,
    /// `--cpus`
    pub cpus: Option<f64>,
    /// `--pids-limit` (≤ 0: unlimited, as docker).
    pub pids_limit: Option<i64>,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub seccomp: SeccompOpt,
    pub init: Option<InitBinary>,
    /// `--label`, merged over the image's labels into the annotations.
    pub labels: BTreeMap<String, String>,
    pub network: NetworkMode,
}

/// What the caller knows about the host and the container's directory.
#[derive(Debug, Clone)]
pub struct Host<'a> {
    /// The container's 64-hex id.
    pub id: &'a str,
    /// The container's root filesystem as the caller sees it (the overlay
    /// mount point): `-u NAME` is looked up in its /etc/passwd, /etc/group.
    pub rootfs: &'a Path,
    /// The caller's environment, for bare `-e KEY` and env-file `KEY` lines.
    pub env: &'a BTreeMap<String, String>,
    /// The container dir's `hostname`, `hosts` and `resolv.conf`.
    pub hostname_file: &'a Path,
    pub hosts_file: &'a Path,
    pub resolv_conf: &'a Path,
    /// The host mounts cgroup v2 at /sys/fs/cgroup: the container gets its
    /// own cgroup namespace (docker's default on v2). The caller decides
    /// (a statfs), which keeps this function free of host probes.
    pub cgroup_v2: bool,
}

/// The OCI spec for `run` of an image whose config is `image` (None for
/// `--rootfs DIR`). The caller writes it as bundle/config.json; the
/// rootfs is `rootfs` in the bundle. Errors are docker's one-line
/// messages ("no command specified", "unable to find user …").
pub fn build(image: Option<&ContainerConfig>, opts: &RunOpts, host: &Host) -> Result<Spec> {
    let empty = ContainerConfig::default();
    let image = image.unwrap_or(&empty);

    let mut args = command(image, opts)?;
    if let Some(init) = &opts.init {
        args.splice(0..0, [init.container_path.clone(), "--".to_string()]);
    }

    let hostname = match &opts.hostname {
        Some(h) if !h.is_empty() => h.clone(),
        _ => host.id.chars().take(12).collect(),
    };

    let user_spec = opts.user.as_deref().or(image.user.as_deref()).unwrap_or("");
    let exec_user = resolve_user(user_spec, host.rootfs)?;

    let env = environment(image, opts, host.env, &hostname, &exec_user.home)?;
    let cwd = workdir(image, opts)?;

    let caps = capabilities(opts)?;
    let seccomp = match (&opts.seccomp, opts.privileged) {
        (_, true) | (SeccompOpt::Unconfined, _) => None,
        (SeccompOpt::Default, _) => Some(resolve_seccomp(DEFAULT_SECCOMP, &caps)?),
        (SeccompOpt::Profile(bytes), _) => Some(resolve_seccomp(bytes, &caps)?),
    };

    let mut annotations = image.labels.clone().unwrap_or_default();
    annotations.extend(opts.labels.iter().map(|(k, v)| (k.clone(), v.clone())));

    let process = Process {
        terminal: opts.tty,
        user: User {
            uid: exec_user.uid,
            gid: exec_user.gid,
            additional_gids: exec_user.sgids,
            ..Default::default()
        },
        args,
        env,
        cwd,
        capabilities: Some(Capabilities {
            bounding: Some(caps.clone()),
            effective: Some(caps.clone()),
            permitted: Some(caps),
            inheritable: None,
            ambient: None,
        }),
        // docker's defaults: no_new_privileges false, no oom_score_adj, no
        // rlimits (the container inherits runway's, as dockerd's).
        ..Default::default()
    };

    let mut linux = Linux {
        namespaces: namespaces(&opts.network, host.cgroup_v2),
        resources: Some(resources(opts)?),
        seccomp,
        ..Default::default()
    };
    if !opts.privileged {
        linux.masked_paths = Some(MASKED_PATHS.iter().map(|s| s.to_string()).collect());
        linux.readonly_paths = Some(READONLY_PATHS.iter().map(|s| s.to_string()).collect());
    }
    if !matches!(opts.network, NetworkMode::Host) {
        // docker 20.10+: unprivileged ping and low ports inside a private
        // network namespace (both sysctls are per network namespace).
        linux
            .sysctl
            .insert("net.ipv4.ip_unprivileged_port_start".into(), "0".into());
        linux
            .sysctl
            .insert("net.ipv4.ping_group_range".into(), "0 2147483647".into());
    }

    Ok(Spec {
        oci_version: OCI_VERSION.to_string(),
        process: Some(process),
        root: Some(Root {
            path: "rootfs".to_string(),
            readonly: opts.read_only,
        }),
        hostname: Some(hostname),
        mounts: mounts(opts, host)?,
        annotations,
        linux: Some(linux),
        ..Default::default()
    })
}

/// docker's Entrypoint + Cmd: `--entrypoint` (even "") drops the image's
/// Cmd; words after the image replace Cmd; nothing at all is an error.
pub fn command(image: &ContainerConfig, opts: &RunOpts) -> Result<Vec<String>> {
    let (entrypoint, cmd): (Vec<String>, Vec<String>) = match &opts.entrypoint {
        Some(e) => {
            let e = if e.is_empty() {
                vec![]
            } else {
                vec![e.clone()]
            };
            (e, opts.args.clone())
        }
        None => {
            let cmd = if opts.args.is_empty() {
                image.cmd.clone().unwrap_or_default()
            } else {
                opts.args.clone()
            };
            (image.entrypoint.clone().unwrap_or_default(), cmd)
        }
    };
    let argv: Vec<String> = entrypoint.into_iter().chain(cmd).collect();
    if argv.is_empty() {
        bail!("no command specified");
    }
    Ok(argv)
}

/// docker's environment: PATH (default), HOSTNAME, TERM (with -t), then the
/// image's Env, the env files and `-e`, each replacing by key; HOME from
/// the user's passwd entry when still unset.
pub fn environment(
    image: &ContainerConfig,
    opts: &RunOpts,
    caller_env: &BTreeMap<String, String>,
    hostname: &str,
    home: &str,
) -> Result<Vec<String>> {
    let mut env: Vec<String> = vec![
        format!("PATH={DEFAULT_PATH}"),
        format!("HOSTNAME={hostname}"),
    ];
    if opts.tty {
        env.push("TERM=xterm".to_string());
    }
    let mut user = Vec::new();
    for line in &opts.env_file_lines {
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let key = line.split('=').next().unwrap_or("");
        if key.chars().any(char::is_whitespace) {
            bail!("variable '{key}' contains whitespaces");
        }
        user.push(line.to_string());
    }
    user.extend(opts.env.iter().cloned());
    let user = user.into_iter().filter_map(|e| {
        if e.contains('=') {
            Some(e)
        } else {
            // Bare KEY: the caller's value, or nothing (docker drops it).
            caller_env.get(&e).map(|v| format!("{e}={v}"))
        }
    });
    for e in image.env.iter().flatten().cloned().chain(user) {
        if e.starts_with('=') || e.contains('\0') {
            bail!("invalid environment variable: {e:?}");
        }
        let key = e.split('=').next().unwrap_or("");
        match env.iter_mut().find(|x| x.split('=').next() == Some(key)) {
            Some(slot) => *slot = e,
            None => env.push(e),
        }
    }
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={home}"));
    }
    Ok(env)
}

fn workdir(image: &ContainerConfig, opts: &RunOpts) -> Result<String> {
    if let Some(w) = opts.workdir.as_deref().filter(|w| !w.is_empty()) {
        if !w.starts_with('/') {
            bail!("the working directory '{w}' is invalid, it needs to be an absolute path");
        }
        return Ok(clean(w));
    }
    match image.working_dir.as_deref().filter(|w| !w.is_empty()) {
        // An image's relative WorkingDir is taken from / (docker cleans it).
        Some(w) => Ok(clean(&format!("/{w}"))),
        None => Ok("/".to_string()),
    }
}

/// The process's user as docker's (moby/sys/user) GetExecUser finds it.
#[derive(Debug, Clone, PartialEq)]
pub struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    pub sgids: Vec<u32>,
    pub home: String,
}

/// `user[:group]` against `<rootfs>/etc/passwd` and `<rootfs>/etc/group`.
/// Numbers pass through (with the passwd entry's gid and home when there is
/// one); a name must exist. Supplementary groups: the groups listing the
/// matched user as a member, only when no group is given (docker).
/// A missing passwd or group file counts as empty.
pub fn resolve_user(spec: &str, rootfs: &Path) -> Result<ExecUser> {
    let (user_arg, group_arg) = match spec.split_once(':') {
        Some((u, g)) => (u, g),
        None => (spec, ""),
    };
    let uid_num = user_arg.parse::<u32>().ok();
    let gid_num = group_arg.parse::<u32>().ok();
    let mut out = ExecUser {
        uid: 0,
        gid: 0,
        sgids: Vec::new(),
        home: "/".to_string(),
    };

    let passwd = read_db(&rootfs.join("etc/passwd"))?;
    let found = passwd.lines().filter_map(parse_passwd).find(|u| {
        if user_arg.is_empty() {
            u.uid == 0
        } else if let Some(n) = uid_num {
            u.uid == n
        } else {
            u.name == user_arg
        }
    });
    let matched_name = match found {
        Some(u) => {
            out.uid = u.uid;
            out.gid = u.gid;
            out.home = u.home.to_string();
            Some(u.name.to_string())
        }
        None => {
            if !user_arg.is_empty() {
                match uid_num {
                    Some(n) => out.uid = n,
                    None => {
                        bail!("unable to find user {user_arg}: no matching entries in passwd file")
                    }
                }
            }
            None
        }
    };

    if !group_arg.is_empty() || matched_name.is_some() {
        let groups = read_db(&rootfs.join("etc/group"))?;
        let matches = groups.lines().filter_map(parse_group).filter(|g| {
            if group_arg.is_empty() {
                g.members
                    .split(',')
                    .any(|m| Some(m) == matched_name.as_deref())
            } else if let Some(n) = gid_num {
                g.gid == n
            } else {
                g.name == group_arg
            }
        });
        if group_arg.is_empty() {
            out.sgids = matches.map(|g| g.gid).collect();
        } else {
            match matches.map(|g| g.gid).next() {
                Some(gid) => out.gid = gid,
                None => match gid_num {
                    Some(n) => out.gid = n,
                    None => {
                        bail!("unable to find group {group_arg}: no matching entries in group file")
                    }
                },
            }
        }
    }
    Ok(out)
}

fn read_db(path: &Path) -> Result<String> {
    match std::fs::read(path) {
        Ok(b) => Ok(String::from_utf8_lossy(&b).into_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(e).ctx(|| format!("read {}", path.display())),
    }
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
    home: &'a str,
}

fn parse_passwd(line: &str) -> Option<PasswdEntry<'_>> {
    let f: Vec<&str> = line.trim().split(':').collect();
    if f.len() < 4 || f[0].is_empty() || line.starts_with('#') {
        return None;
    }
    Some(PasswdEntry {
        name: f[0],
        uid: f[2].parse().ok()?,
        gid: f[3].parse().ok()?,
        home: f.get(5).copied().filter(|h| !h.is_empty()).unwrap_or("/"),
    })
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: &'a str,
}

fn parse_group(line: &str) -> Option<GroupEntry<'_>> {
    let f: Vec<&str> = line.trim().split(':').collect();
    if f.len() < 3 || f[0].is_empty() || line.starts_with('#') {
        return None;
    }
    Some(GroupEntry {
        name: f[0],
        gid: f[2].parse().ok()?,
        members: f.get(3).copied().unwrap_or(""),
    })
}

/// Every capability runway knows, "CAP_…" names in number order.
fn all_caps() -> Vec<String> {
    (0..=crate::linux::caps::LAST_KNOWN)
        .filter_map(crate::linux::caps::cap_name)
        .map(str::to_string)
        .collect()
}

/// "sys_admin", "CAP_SYS_ADMIN", "all" -> canonical "CAP_SYS_ADMIN"/"ALL".
fn normalize_cap(name: &str) -> Result<String> {
    if name.eq_ignore_ascii_case("ALL") {
        return Ok("ALL".to_string());
    }
    let full = if name.len() >= 4 && name[..4].eq_ignore_ascii_case("CAP_") {
        name.to_string()
    } else {
        format!("CAP_{name}")
    };
    match crate::linux::caps::cap_from_name(&full).and_then(crate::linux::caps::cap_name) {
        Some(n) => Ok(n.to_string()),
        None => bail!("unknown capability: {name:?}"),
    }
}

/// docker's TweakCapabilities: privileged -> all; `--cap-add ALL` -> all
/// but the drops; `--cap-drop ALL` -> only the adds; else defaults minus
/// drops plus adds.
pub fn capabilities(opts: &RunOpts) -> Result<Vec<String>> {
    if opts.privileged {
        return Ok(all_caps());
    }
    let norm =
        |l: &[String]| -> Result<Vec<String>> { l.iter().map(|c| normalize_cap(c)).collect() };
    let adds = norm(&opts.cap_add)?;
    let drops = norm(&opts.cap_drop)?;
    let add_all = adds.iter().any(|c| c == "ALL");
    let drop_all = drops.iter().any(|c| c == "ALL");
    let mut caps: Vec<String> = if add_all {
        all_caps()
            .into_iter()
            .filter(|c| !drops.contains(c))
            .collect()
    } else if drop_all {
        adds.into_iter().filter(|c| c != "ALL").collect()
    } else {
        DEFAULT_CAPS
            .iter()
            .map(|c| c.to_string())
            .filter(|c| !drops.contains(c))
            .chain(adds)
            .collect()
    };
    let mut seen = Vec::new();
    caps.retain(|c| {
        let new = !seen.contains(c);
        seen.push(c.clone());
        new
    });
    Ok(caps)
}

fn namespaces(net: &NetworkMode, cgroup_v2: bool) -> Vec<Namespace> {
    let ns = |t: &str, path: Option<String>| Namespace {
        typ: t.to_string(),
        path,
    };
    let mut v = vec![ns("pid", None)];
    match net {
        NetworkMode::Host => {}
        NetworkMode::None | NetworkMode::New => v.push(ns("network", None)),
        NetworkMode::Path(p) => v.push(ns("network", Some(p.clone()))),
    }
    v.extend([ns("ipc", None), ns("uts", None), ns("mount", None)]);
    if cgroup_v2 {
        v.push(ns("cgroup", None));
    }
    v
}

fn resources(opts: &RunOpts) -> Result<Resources> {
    let mut r = Resources {
        devices: vec![DeviceCgroup {
            allow: opts.privileged,
            access: Some("rwm".to_string()),
            ..Default::default()
        }],
        ..Default::default()
    };
    if let Some(m) = opts.memory {
        if m < 6 * 1024 * 1024 {
            bail!("minimum memory limit allowed is 6MB");
        }
        // docker: swap (memory+swap in OCI) defaults to twice the memory.
        r.memory = Some(Memory {
            limit: Some(m),
            swap: Some(m.saturating_mul(2)),
            ..Default::default()
        });
    }
    if let Some(c) = opts.cpus {
        const PERIOD: u64 = 100_000;
        if !c.is_finite() || c <= 0.0 {
            // (The value is not echoed: printing a float would link core's
            // float formatting, 10 KB, for this one message.)
            bail!("invalid --cpus: must be a positive number");
        }
        r.cpu = Some(Cpu {
            quota: Some((c * PERIOD as f64).round() as i64),
            period: Some(PERIOD),
            ..Default::default()
        });
    }
    if let Some(p) = opts.pids_limit {
        // docker: 0 or -1 mean unlimited.
        r.pids = Some(Pids {
            limit: if p <= 0 { -1 } else { p },
        });
    }
    Ok(r)
}

fn m(dest: &str, typ: &str, source: &str, opts: &[&str]) -> Mount {
    Mount {
        destination: dest.to_string(),
        typ: Some(typ.to_string()),
        source: Some(source.to_string()),
        options: Some(opts.iter().map(|s| s.to_string()).collect()),
        ..Default::default()
    }
}

fn mounts(opts: &RunOpts, host: &Host) -> Result<Vec<Mount>> {
    // (A table and one loop: a call per mount inlines to kilobytes.)
    const SYSTEM: [(&str, &str, &str, &str); 7] = [
        ("/proc", "proc", "proc", "nosuid,noexec,nodev"),
        (
            "/dev",
            "tmpfs",
            "tmpfs",
            "nosuid,strictatime,mode=755,size=65536k",
        ),
        (
            "/dev/pts",
            "devpts",
            "devpts",
            "nosuid,noexec,newinstance,ptmxmode=0666,mode=0620,gid=5",
        ),
        (
            "/dev/shm",
            "tmpfs",
            "shm",
            "nosuid,noexec,nodev,mode=1777,size=65536k",
        ),
        ("/dev/mqueue", "mqueue", "mqueue", "nosuid,noexec,nodev"),
        ("/sys", "sysfs", "sysfs", "nosuid,noexec,nodev,ro"),
        (
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            "nosuid,noexec,nodev,relatime,ro",
        ),
    ];
    let mut v: Vec<Mount> = Vec::new();
    for (dest, typ, src, o) in SYSTEM {
        let mut o: Vec<&str> = o.split(',').collect();
        // --privileged: /sys and its cgroup mount writable (docker).
        if opts.privileged && dest.starts_with("/sys") {
            o.retain(|x| *x != "ro");
            o.push("rw");
        }
        v.push(m(dest, typ, src, &o));
    }
    let path = |p: &Path| p.to_string_lossy().into_owned();
    for (dest, src) in [
        ("/etc/hostname", path(host.hostname_file)),
        ("/etc/hosts", path(host.hosts_file)),
        ("/etc/resolv.conf", path(host.resolv_conf)),
    ] {
        // docker: with --read-only these are read-only too.
        let mut o = vec!["rbind", "rprivate"];
        if opts.read_only {
            o.push("ro");
        }
        v.push(m(dest, "bind", &src, &o));
    }

    let mut user: Vec<Mount> = Vec::new();
    for t in &opts.tmpfs {
        let (dest, extra) = t.split_once(':').unwrap_or((t, ""));
        if !dest.starts_with('/') {
            bail!("invalid --tmpfs {t:?}: the path must be absolute");
        }
        // docker's defaults for --tmpfs, which the user's options override
        // ("exec" removes "noexec", as docker's MergeTmpfsOptions).
        let extra: Vec<&str> = extra.split(',').filter(|s| !s.is_empty()).collect();
        let mut o: Vec<&str> = ["nosuid", "noexec", "nodev"]
            .into_iter()
            .filter(|d| !extra.contains(&&d[2..]))
            .collect();
        for x in extra {
            if !o.contains(&x) {
                o.push(x);
            }
        }
        user.push(m(&clean(dest), "tmpfs", "tmpfs", &o));
    }
    for b in &opts.binds {
        if !b.destination.starts_with('/') || !b.source.starts_with('/') {
            bail!(
                "invalid volume {}:{}: both paths must be absolute",
                b.source,
                b.destination
            );
        }
        let ro = if b.readonly { "ro" } else { "rw" };
        user.push(m(
            &clean(&b.destination),
            "bind",
            &b.source,
            &["rbind", "rprivate", ro],
        ));
    }
    if let Some(init) = &opts.init {
        user.push(m(
            &init.container_path,
            "bind",
            &init.host_path,
            &["bind", "ro", "nosuid", "nodev"],
        ));
    }
    for (i, u) in user.iter().enumerate() {
        if user[..i].iter().any(|x| x.destination == u.destination) {
            bail!("duplicate mount point: {}", u.destination);
        }
    }
    // A user mount replaces a default one at the same place (docker).
    v.retain(|d| !user.iter().any(|u| u.destination == d.destination));
    // Parents before children, as docker sorts: by path depth, stable.
    // (A hand-written insertion sort: the std stable sort costs ~12 KB of
    // code for this one call, and there are a handful of mounts.)
    let depth = |m: &Mount| m.destination.split('/').filter(|c| !c.is_empty()).count();
    for i in 1..user.len() {
        let mut j = i;
        while j > 0 && depth(&user[j - 1]) > depth(&user[j]) {
            user.swap(j - 1, j);
            j -= 1;
        }
    }
    v.extend(user);
    Ok(v)
}

// ---- the seccomp profile format of docker and podman ----

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SrcProfile {
    default_action: String,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    architectures: Vec<String>,
    #[serde(default)]
    arch_map: Vec<SrcArch>,
    #[serde(default)]
    flags: Vec<String>,
    #[serde(default)]
    syscalls: Vec<SrcRule>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SrcArch {
    architecture: String,
    #[serde(default)]
    sub_architectures: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SrcRule {
    #[serde(default)]
    names: Vec<String>,
    /// docker's old one-name form.
    #[serde(default)]
    name: Option<String>,
    action: String,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<SyscallArg>>,
    #[serde(default)]
    includes: Option<Filter>,
    #[serde(default)]
    excludes: Option<Filter>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    caps: Vec<String>,
    #[serde(default)]
    arches: Vec<String>,
}

/// This machine's architecture as Go (and so the profiles' `arches`) names it.
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        a => a,
    }
}

/// The architecture's SCMP_ARCH_ name, for picking the `archMap` entry.
fn scmp_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "SCMP_ARCH_X86_64",
        "x86" => "SCMP_ARCH_X86",
        "aarch64" => "SCMP_ARCH_AARCH64",
        "arm" => "SCMP_ARCH_ARM",
        "powerpc64" => "SCMP_ARCH_PPC64LE",
        "s390x" => "SCMP_ARCH_S390X",
        "riscv64" => "SCMP_ARCH_RISCV64",
        _ => "",
    }
}

/// A docker/podman seccomp profile made into OCI's `linux.seccomp` for a
/// process whose bounding set is `caps`, as podman does before it writes
/// config.json: a rule with `includes` applies only when all its caps are
/// in the set and this architecture is among its arches; a rule with
/// `excludes` is dropped when any of its caps is in the set or this
/// architecture is listed. `archMap` becomes this architecture and its
/// sub-architectures. `minKernel` is not checked (podman's profile has
/// none; docker's rules with one then apply on every kernel).
pub fn resolve_seccomp(profile: &[u8], caps: &[String]) -> Result<Seccomp> {
    let p: SrcProfile = serde_json::from_slice(profile)
        .map_err(|e| Error::msg(format!("invalid seccomp profile: {e}")))?;
    let arch = go_arch();
    let architectures = if p.arch_map.is_empty() {
        p.architectures
    } else {
        match p
            .arch_map
            .into_iter()
            .find(|a| a.architecture == scmp_arch())
        {
            Some(a) => std::iter::once(a.architecture)
                .chain(a.sub_architectures)
                .collect(),
            None => Vec::new(),
        }
    };
    let mut syscalls = Vec::new();
    for r in p.syscalls {
        let inc = r.includes.unwrap_or_default();
        let exc = r.excludes.unwrap_or_default();
        if !inc.arches.is_empty() && !inc.arches.iter().any(|a| a == arch) {
            continue;
        }
        if !inc.caps.iter().all(|c| caps.contains(c)) {
            continue;
        }
        if exc.arches.iter().any(|a| a == arch) || exc.caps.iter().any(|c| caps.contains(c)) {
            continue;
        }
        let mut names = r.names;
        names.extend(r.name);
        if names.is_empty() {
            continue;
        }
        syscalls.push(Syscall {
            names,
            action: r.action,
            errno_ret: r.errno_ret,
            args: r.args.unwrap_or_default(),
        });
    }
    Ok(Seccomp {
        default_action: p.default_action,
        default_errno_ret: p.default_errno_ret,
        architectures,
        flags: p.flags,
        syscalls,
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::collections::BTreeSet;

    const PODMAN_RUN: &str = include_str!("../../tests/fixtures/engine/podman-run.json");
    const PODMAN_LIMITS: &str = include_str!("../../tests/fixtures/engine/podman-run-limits.json");
    const ID: &str = "29a58382651f14c7e92064b40233159014e3f2ef715f92369dcc3cbac0d16b0e";

    fn busybox() -> ContainerConfig {
        ContainerConfig {
            env: Some(vec![format!("PATH={DEFAULT_PATH}")]),
            cmd: Some(vec!["sh".into()]),
            ..Default::default()
        }
    }

    fn strs(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    /// A rootfs dir with the given /etc/passwd and /etc/group, removed on drop.
    struct Rootfs(PathBuf);
    impl Rootfs {
        fn new(passwd: &str, group: &str) -> Rootfs {
            use std::sync::atomic::{AtomicU32, Ordering};
            static N: AtomicU32 = AtomicU32::new(0);
            let dir = std::env::temp_dir().join(format!(
                "runway-engine-spec-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(dir.join("etc")).unwrap();
            std::fs::write(dir.join("etc/passwd"), passwd).unwrap();
            std::fs::write(dir.join("etc/group"), group).unwrap();
            Rootfs(dir)
        }
    }
    impl Drop for Rootfs {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
    use std::path::PathBuf;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
        daemon:x:1:1:daemon:/usr/sbin:/bin/false\n\
        # a comment\n\
        alice:x:1000:1000:Alice:/home/alice:/bin/sh\n\
        bob:x:1001:100::/home/bob:/bin/sh\n";
    const GROUP: &str = "root:x:0:\n\
        daemon:x:1:\n\
        users:x:100:\n\
        alice:x:1000:\n\
        wheel:x:10:alice,root\n\
        audio:x:29:bob,alice\n";

    fn with_host<T>(f: impl FnOnce(&Host) -> T) -> T {
        let root = Rootfs::new(PASSWD, GROUP);
        let mut env = BTreeMap::new();
        env.insert("FROM_CALLER".to_string(), "yes".to_string());
        let dir = Path::new("/var/lib/runway/containers/x");
        let host = Host {
            id: ID,
            rootfs: &root.0,
            env: &env,
            hostname_file: &dir.join("hostname"),
            hosts_file: &dir.join("hosts"),
            resolv_conf: &dir.join("resolv.conf"),
            cgroup_v2: false,
        };
        f(&host)
    }

    fn run(image: &ContainerConfig, opts: &RunOpts) -> Result<Spec> {
        with_host(|h| build(Some(image), opts, h))
    }

    /// Serialised, re-parsed by the project's parser, and validated.
    fn roundtrip(spec: &Spec) -> Spec {
        let json = serde_json::to_vec(spec).unwrap();
        let back = crate::spec::parse(&json).unwrap();
        crate::spec::validate::validate(&back).unwrap();
        assert_eq!(&back, spec);
        back
    }

    fn podman() -> Value {
        serde_json::from_str(PODMAN_RUN).unwrap()
    }

    fn set(v: &Value) -> BTreeSet<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn default_run_passes_the_projects_validation() {
        let spec = roundtrip(&run(&busybox(), &RunOpts::default()).unwrap());
        assert_eq!(spec.root.as_ref().unwrap().path, "rootfs");
        assert!(!spec.root.as_ref().unwrap().readonly);
        assert_eq!(spec.hostname.as_deref(), Some("29a58382651f"));
        let p = spec.process.as_ref().unwrap();
        assert_eq!(p.args, ["sh"]);
        assert!(!p.no_new_privileges && p.oom_score_adj.is_none() && !p.terminal);
        let ns: Vec<_> = spec
            .linux
            .as_ref()
            .unwrap()
            .namespaces
            .iter()
            .map(|n| n.typ.as_str())
            .collect();
        assert_eq!(ns, ["pid", "network", "ipc", "uts", "mount"]);
        // The compiler takes the resolved profile.
        let prog = crate::seccomp::compile(spec.linux.as_ref().unwrap().seccomp.as_ref().unwrap());
        assert!(prog.is_ok(), "{:?}", prog.err());
    }

    #[test]
    fn variants_pass_validation() {
        let variants = [
            RunOpts {
                privileged: true,
                ..Default::default()
            },
            RunOpts {
                network: NetworkMode::Host,
                ..Default::default()
            },
            RunOpts {
                network: NetworkMode::Path("/proc/1/ns/net".into()),
                ..Default::default()
            },
            RunOpts {
                network: NetworkMode::None,
                tty: true,
                read_only: true,
                ..Default::default()
            },
            RunOpts {
                seccomp: SeccompOpt::Unconfined,
                cap_add: strs(&["ALL"]),
                ..Default::default()
            },
            RunOpts {
                init: Some(InitBinary {
                    host_path: "/usr/bin/runway".into(),
                    container_path: "/sbin/runway-init".into(),
                }),
                tmpfs: strs(&["/tmp:size=1m", "/run"]),
                binds: vec![BindMount {
                    source: "/srv/data".into(),
                    destination: "/data".into(),
                    readonly: true,
                }],
                memory: Some(64 << 20),
                cpus: Some(1.5),
                pids_limit: Some(10),
                ..Default::default()
            },
        ];
        for o in variants {
            roundtrip(&run(&busybox(), &o).unwrap());
        }
        let spec = with_host(|h| {
            build(
                None,
                &RunOpts {
                    args: strs(&["true"]),
                    ..Default::default()
                },
                h,
            )
        })
        .unwrap();
        roundtrip(&spec);
        let v2 = with_host(|h| {
            build(
                Some(&busybox()),
                &RunOpts::default(),
                &Host {
                    cgroup_v2: true,
                    ..h.clone()
                },
            )
        })
        .unwrap();
        assert_eq!(
            roundtrip(&v2).linux.unwrap().namespaces.last().unwrap().typ,
            "cgroup"
        );
    }

    /// docker's 14 = podman's 11 + MKNOD, NET_RAW, AUDIT_WRITE (podman
    /// dropped those three from its defaults; the issue asks for docker's).
    #[test]
    fn capabilities_are_dockers_podmans_plus_three() {
        let spec = run(&busybox(), &RunOpts::default()).unwrap();
        let caps = spec.process.unwrap().capabilities.unwrap();
        let p = podman();
        for (ours, name) in [
            (&caps.bounding, "bounding"),
            (&caps.effective, "effective"),
            (&caps.permitted, "permitted"),
        ] {
            let ours: BTreeSet<String> = ours.clone().unwrap().into_iter().collect();
            let mut want = set(&p["process"]["capabilities"][name]);
            want.extend(strs(&["CAP_MKNOD", "CAP_NET_RAW", "CAP_AUDIT_WRITE"]));
            assert_eq!(ours, want, "{name}");
        }
        assert!(caps.inheritable.is_none() && caps.ambient.is_none());
    }

    #[test]
    fn masked_and_readonly_paths_are_podmans() {
        let spec = run(&busybox(), &RunOpts::default()).unwrap();
        let l = spec.linux.unwrap();
        let p = podman();
        assert_eq!(
            l.masked_paths.unwrap(),
            serde_json::from_value::<Vec<String>>(p["linux"]["maskedPaths"].clone()).unwrap()
        );
        assert_eq!(
            l.readonly_paths.unwrap(),
            serde_json::from_value::<Vec<String>>(p["linux"]["readonlyPaths"].clone()).unwrap()
        );
    }

    /// Differences from podman's mounts, on purpose:
    /// - podman's /run/.containerenv: a podman marker, not docker's.
    /// - /dev/shm: podman binds a per-container shm dir; docker (and we)
    ///   mount a 64m tmpfs, which needs no host dir and goes with the
    ///   container's mount namespace.
    /// - /etc/resolv.conf: ours always (docker's); podman's sample ran
    ///   without one.
    /// - /dev: podman adds noexec; docker does not (we follow docker).
    /// - binds: we use rbind (docker), podman writes bind; podman adds
    ///   rprivate to /sys/fs/cgroup, which is the runtime's default anyway.
    #[test]
    fn mounts_match_podmans_but_the_listed_differences() {
        let spec = run(&busybox(), &RunOpts::default()).unwrap();
        let norm = |o: &[String]| -> BTreeSet<String> {
            o.iter()
                .filter(|x| *x != "rprivate")
                .map(|x| {
                    if x == "rbind" {
                        "bind".to_string()
                    } else {
                        x.clone()
                    }
                })
                .collect()
        };
        let ours: BTreeMap<String, (String, BTreeSet<String>)> = spec
            .mounts
            .iter()
            .map(|m| {
                (
                    m.destination.clone(),
                    (m.typ.clone().unwrap(), norm(m.options.as_ref().unwrap())),
                )
            })
            .collect();
        let theirs: Vec<Mount> = serde_json::from_value(podman()["mounts"].clone()).unwrap();
        let mut seen = BTreeSet::new();
        for t in &theirs {
            let d = t.destination.as_str();
            seen.insert(d.to_string());
            if d == "/run/.containerenv" {
                assert!(!ours.contains_key(d));
                continue;
            }
            let (typ, opts) = ours.get(d).unwrap_or_else(|| panic!("no mount at {d}"));
            let mut want = norm(t.options.as_ref().unwrap());
            match d {
                "/dev/shm" => {
                    assert_eq!(typ, "tmpfs");
                    assert!(opts.contains("size=65536k"), "{opts:?}");
                    continue;
                }
                "/dev" => {
                    want.remove("noexec");
                }
                _ => {}
            }
            assert_eq!(typ, t.typ.as_ref().unwrap(), "{d}");
            assert_eq!(opts, &want, "{d}");
        }
        let extra: Vec<_> = ours.keys().filter(|k| !seen.contains(*k)).collect();
        assert_eq!(extra, ["/etc/resolv.conf"]);
        let hosts = spec
            .mounts
            .iter()
            .find(|m| m.destination == "/etc/hosts")
            .unwrap();
        assert_eq!(
            hosts.source.as_deref(),
            Some("/var/lib/runway/containers/x/hosts")
        );
    }

    type RuleKey = (String, Option<u32>, String);
    /// Each rule as (action, errnoRet, args) -> names, for set comparison.
    fn rules(s: &Seccomp) -> BTreeMap<RuleKey, BTreeSet<String>> {
        let mut out: BTreeMap<RuleKey, BTreeSet<String>> = BTreeMap::new();
        for r in &s.syscalls {
            let key = (
                r.action.clone(),
                r.errno_ret,
                serde_json::to_string(&r.args).unwrap(),
            );
            out.entry(key).or_default().extend(r.names.iter().cloned());
        }
        out
    }

    fn podman_seccomp() -> Seccomp {
        serde_json::from_value(podman()["linux"]["seccomp"].clone()).unwrap()
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn seccomp_resolved_for_podmans_caps_is_podmans() {
        let p = podman();
        let caps: Vec<String> =
            serde_json::from_value(p["process"]["capabilities"]["bounding"].clone()).unwrap();
        let ours = resolve_seccomp(DEFAULT_SECCOMP, &caps).unwrap();
        let theirs = podman_seccomp();
        assert_eq!(ours.default_action, theirs.default_action);
        assert_eq!(ours.default_errno_ret, theirs.default_errno_ret);
        assert_eq!(ours.architectures, theirs.architectures);
        assert_eq!(rules(&ours), rules(&theirs));
        // Same rules in the same order, even.
        assert_eq!(ours.syscalls, theirs.syscalls);
    }

    /// With docker's caps, CAP_AUDIT_WRITE is in: podman's profile then
    /// drops its four AF_NETLINK/NETLINK_AUDIT socket rules (excludes) and
    /// allows socket outright (includes). Nothing else changes.
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn seccomp_with_dockers_caps_differs_only_in_socket() {
        let spec = run(&busybox(), &RunOpts::default()).unwrap();
        let ours = spec.linux.unwrap().seccomp.unwrap();
        let theirs = podman_seccomp();
        let not_socket = |s: &Seccomp| -> Vec<Syscall> {
            s.syscalls
                .iter()
                .filter(|r| r.names != ["socket"])
                .cloned()
                .collect()
        };
        assert_eq!(not_socket(&ours), not_socket(&theirs));
        let sockets: Vec<_> = ours
            .syscalls
            .iter()
            .filter(|r| r.names == ["socket"])
            .collect();
        assert_eq!(sockets.len(), 1);
        assert_eq!(sockets[0].action, "SCMP_ACT_ALLOW");
        assert!(sockets[0].args.is_empty());
    }

    fn names_for(s: &Seccomp, action: &str) -> BTreeSet<String> {
        s.syscalls
            .iter()
            .filter(|r| r.action == action && r.args.is_empty())
            .flat_map(|r| r.names.iter().cloned())
            .collect()
    }

    #[test]
    fn cap_add_switches_the_profiles_cap_rules() {
        let spec = run(
            &busybox(),
            &RunOpts {
                cap_add: strs(&["sys_admin", "CAP_SYS_PTRACE"]),
                ..Default::default()
            },
        )
        .unwrap();
        let s = spec.linux.unwrap().seccomp.unwrap();
        let allow = names_for(&s, "SCMP_ACT_ALLOW");
        let deny = names_for(&s, "SCMP_ACT_ERRNO");
        for n in ["bpf", "perf_event_open", "kcmp", "process_madvise"] {
            assert!(allow.contains(n) && !deny.contains(n), "{n}");
        }
        assert!(deny.contains("init_module") && !allow.contains("init_module"));
        // Dropping CAP_SYS_CHROOT moves chroot from allowed to denied.
        let spec = run(
            &busybox(),
            &RunOpts {
                cap_drop: strs(&["SYS_CHROOT"]),
                ..Default::default()
            },
        )
        .unwrap();
        let s = spec.linux.unwrap().seccomp.unwrap();
        assert!(names_for(&s, "SCMP_ACT_ERRNO").contains("chroot"));
        assert!(!names_for(&s, "SCMP_ACT_ALLOW").contains("chroot"));
    }

    #[test]
    fn cap_add_drop_as_docker() {
        let caps = |add: &[&str], drop: &[&str]| {
            capabilities(&RunOpts {
                cap_add: strs(add),
                cap_drop: strs(drop),
                ..Default::default()
            })
        };
        assert_eq!(caps(&[], &[]).unwrap(), DEFAULT_CAPS);
        let c = caps(&["NET_ADMIN"], &["chown", "CAP_KILL"]).unwrap();
        assert!(c.contains(&"CAP_NET_ADMIN".to_string()));
        assert!(!c.contains(&"CAP_CHOWN".to_string()) && !c.contains(&"CAP_KILL".to_string()));
        assert_eq!(c.len(), 13);
        assert_eq!(caps(&["CHOWN"], &["ALL"]).unwrap(), ["CAP_CHOWN"]);
        let all = caps(&["ALL"], &["SYS_ADMIN"]).unwrap();
        assert_eq!(all.len(), all_caps().len() - 1);
        assert!(!all.contains(&"CAP_SYS_ADMIN".to_string()));
        assert_eq!(
            caps(&["CHOWN"], &[]).unwrap(),
            DEFAULT_CAPS,
            "no duplicates"
        );
        let e = caps(&["NOPE"], &[]).unwrap_err();
        assert!(
            e.to_string().contains("unknown capability: \"NOPE\""),
            "{e}"
        );
    }

    #[test]
    fn privileged_drops_the_confinement() {
        let spec = run(
            &busybox(),
            &RunOpts {
                privileged: true,
                cap_drop: strs(&["ALL"]),
                ..Default::default()
            },
        )
        .unwrap();
        let l = spec.linux.as_ref().unwrap();
        assert!(l.seccomp.is_none() && l.masked_paths.is_none() && l.readonly_paths.is_none());
        assert!(l.resources.as_ref().unwrap().devices[0].allow);
        let caps = spec.process.as_ref().unwrap().capabilities.clone().unwrap();
        assert_eq!(caps.bounding.unwrap(), all_caps());
        for d in ["/sys", "/sys/fs/cgroup"] {
            let m = spec.mounts.iter().find(|m| m.destination == d).unwrap();
            assert!(
                m.options.as_ref().unwrap().contains(&"rw".to_string()),
                "{d}"
            );
        }
        let unconfined = run(
            &busybox(),
            &RunOpts {
                seccomp: SeccompOpt::Unconfined,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(unconfined.linux.unwrap().seccomp.is_none());
    }

    #[test]
    fn a_given_profile_is_resolved_too() {
        let prof = br#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
            "syscalls":[{"names":["mount"],"action":"SCMP_ACT_ERRNO","excludes":{"caps":["CAP_SYS_ADMIN"]}},
                        {"name":"reboot","action":"SCMP_ACT_ERRNO"}]}"#;
        let spec = run(
            &busybox(),
            &RunOpts {
                seccomp: SeccompOpt::Profile(prof.to_vec()),
                ..Default::default()
            },
        )
        .unwrap();
        let s = spec.linux.unwrap().seccomp.unwrap();
        assert_eq!(s.syscalls.len(), 2);
        assert_eq!(s.syscalls[1].names, ["reboot"]);
        let spec = run(
            &busybox(),
            &RunOpts {
                seccomp: SeccompOpt::Profile(prof.to_vec()),
                cap_add: strs(&["SYS_ADMIN"]),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(spec.linux.unwrap().seccomp.unwrap().syscalls.len(), 1);
        let bad = run(
            &busybox(),
            &RunOpts {
                seccomp: SeccompOpt::Profile(b"[".to_vec()),
                ..Default::default()
            },
        );
        assert!(bad
            .unwrap_err()
            .to_string()
            .starts_with("invalid seccomp profile"));
    }

    #[test]
    fn limits_match_podmans() {
        let spec = run(
            &busybox(),
            &RunOpts {
                memory: Some(64 << 20),
                cpus: Some(0.5),
                pids_limit: Some(20),
                ..Default::default()
            },
        )
        .unwrap();
        let ours = serde_json::to_value(spec.linux.unwrap().resources.unwrap()).unwrap();
        let theirs: Value = serde_json::from_str(PODMAN_LIMITS).unwrap();
        let theirs = &theirs["linux"]["resources"];
        for k in ["memory", "cpu", "pids", "devices"] {
            assert_eq!(ours[k], theirs[k], "{k}");
        }
        let r = resources(&RunOpts {
            pids_limit: Some(0),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(r.pids.unwrap().limit, -1);
        assert!(resources(&RunOpts {
            memory: Some(1024),
            ..Default::default()
        })
        .is_err());
        assert!(resources(&RunOpts {
            cpus: Some(-1.0),
            ..Default::default()
        })
        .is_err());
        let none = resources(&RunOpts::default()).unwrap();
        assert!(none.memory.is_none() && none.cpu.is_none() && none.pids.is_none());
    }

    /// docker's documented Entrypoint/Cmd table (docs "Understand how CMD
    /// and ENTRYPOINT interact") plus the run-time overrides.
    #[test]
    fn entrypoint_cmd_matrix() {
        let img = |e: Option<&[&str]>, c: Option<&[&str]>| ContainerConfig {
            entrypoint: e.map(strs),
            cmd: c.map(strs),
            ..Default::default()
        };
        let opts = |ep: Option<&str>, args: &[&str]| RunOpts {
            entrypoint: ep.map(str::to_string),
            args: strs(args),
            ..Default::default()
        };
        let e: &[&str] = &["/ep", "-x"];
        let c: &[&str] = &["cmd", "arg"];
        // image E, image C, --entrypoint, args, result (None: error)
        type Case<'a> = (
            Option<&'a [&'a str]>,
            Option<&'a [&'a str]>,
            Option<&'a str>,
            &'a [&'a str],
            Option<&'a [&'a str]>,
        );
        let cases: &[Case] = &[
            // image E, image C, --entrypoint, args, result (None: error)
            (None, None, None, &[], None),
            (None, Some(c), None, &[], Some(&["cmd", "arg"])),
            (Some(e), None, None, &[], Some(&["/ep", "-x"])),
            (
                Some(e),
                Some(c),
                None,
                &[],
                Some(&["/ep", "-x", "cmd", "arg"]),
            ),
            (None, None, None, &["a", "b"], Some(&["a", "b"])),
            (None, Some(c), None, &["a"], Some(&["a"])),
            (Some(e), None, None, &["a"], Some(&["/ep", "-x", "a"])),
            (Some(e), Some(c), None, &["a"], Some(&["/ep", "-x", "a"])),
            (None, None, Some("/new"), &[], Some(&["/new"])),
            (None, Some(c), Some("/new"), &[], Some(&["/new"])),
            (Some(e), Some(c), Some("/new"), &[], Some(&["/new"])),
            (Some(e), Some(c), Some("/new"), &["a"], Some(&["/new", "a"])),
            (Some(e), Some(c), Some(""), &[], None),
            (None, Some(c), Some(""), &[], None),
            (Some(e), Some(c), Some(""), &["a", "b"], Some(&["a", "b"])),
            (Some(&[]), Some(&[]), None, &[], None),
        ];
        for (ie, ic, ep, args, want) in cases {
            let got = command(&img(*ie, *ic), &opts(*ep, args));
            match want {
                Some(w) => assert_eq!(got.unwrap(), *w, "{ie:?} {ic:?} {ep:?} {args:?}"),
                None => assert_eq!(
                    got.unwrap_err().to_string(),
                    "no command specified",
                    "{ie:?} {ic:?} {ep:?} {args:?}"
                ),
            }
        }
        // Through build, with --init in front.
        let spec = run(
            &img(Some(e), Some(c)),
            &RunOpts {
                init: Some(InitBinary {
                    host_path: "/usr/bin/runway".into(),
                    container_path: "/sbin/runway-init".into(),
                }),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            spec.process.as_ref().unwrap().args,
            ["/sbin/runway-init", "--", "/ep", "-x", "cmd", "arg"]
        );
        let m = spec
            .mounts
            .iter()
            .find(|m| m.destination == "/sbin/runway-init")
            .unwrap();
        assert_eq!(m.source.as_deref(), Some("/usr/bin/runway"));
        assert!(m.options.as_ref().unwrap().contains(&"ro".to_string()));
        assert!(run(&img(None, None), &RunOpts::default()).is_err());
    }

    #[test]
    fn user_resolution_as_docker() {
        let root = Rootfs::new(PASSWD, GROUP);
        let r = |s: &str| resolve_user(s, &root.0);
        let u = |uid, gid, sgids: &[u32], home: &str| ExecUser {
            uid,
            gid,
            sgids: sgids.to_vec(),
            home: home.into(),
        };
        assert_eq!(r("").unwrap(), u(0, 0, &[10], "/root"));
        assert_eq!(r("root").unwrap(), u(0, 0, &[10], "/root"));
        assert_eq!(r("alice").unwrap(), u(1000, 1000, &[10, 29], "/home/alice"));
        assert_eq!(r("bob").unwrap(), u(1001, 100, &[29], "/home/bob"));
        // A numeric uid with an entry takes its gid, home and groups.
        assert_eq!(r("1000").unwrap(), u(1000, 1000, &[10, 29], "/home/alice"));
        // Without one, it passes through with gid 0.
        assert_eq!(r("4242").unwrap(), u(4242, 0, &[], "/"));
        assert_eq!(r("4242:4343").unwrap(), u(4242, 4343, &[], "/"));
        // An explicit group: no supplementary groups.
        assert_eq!(r("alice:audio").unwrap(), u(1000, 29, &[], "/home/alice"));
        assert_eq!(r("alice:10").unwrap(), u(1000, 10, &[], "/home/alice"));
        assert_eq!(r("alice:777").unwrap(), u(1000, 777, &[], "/home/alice"));
        assert_eq!(r("daemon").unwrap(), u(1, 1, &[], "/usr/sbin"));
        assert_eq!(
            r("nobody").unwrap_err().to_string(),
            "unable to find user nobody: no matching entries in passwd file"
        );
        assert_eq!(
            r("alice:nogroup").unwrap_err().to_string(),
            "unable to find group nogroup: no matching entries in group file"
        );
        // No /etc/passwd at all: names fail, numbers pass.
        let bare = Rootfs::new("", "");
        std::fs::remove_file(bare.0.join("etc/passwd")).unwrap();
        assert_eq!(resolve_user("7", &bare.0).unwrap(), u(7, 0, &[], "/"));
        assert!(resolve_user("alice", &bare.0).is_err());

        // Through build: the image's User, then -u over it.
        let img = ContainerConfig {
            user: Some("bob".into()),
            ..busybox()
        };
        let p = run(&img, &RunOpts::default()).unwrap().process.unwrap();
        assert_eq!(
            (p.user.uid, p.user.gid, p.user.additional_gids.clone()),
            (1001, 100, vec![29])
        );
        assert!(p.env.contains(&"HOME=/home/bob".to_string()));
        let p = run(
            &img,
            &RunOpts {
                user: Some("1000:10".into()),
                ..Default::default()
            },
        )
        .unwrap()
        .process
        .unwrap();
        assert_eq!((p.user.uid, p.user.gid), (1000, 10));
        assert!(p.user.additional_gids.is_empty());
    }

    #[test]
    fn env_merge_as_docker() {
        let img = ContainerConfig {
            env: Some(strs(&["PATH=/img/bin", "A=image", "B=image"])),
            ..busybox()
        };
        let opts = RunOpts {
            env: strs(&["B=flag", "C=flag", "FROM_CALLER", "UNSET_IN_CALLER", "E="]),
            env_file_lines: strs(&["# comment", "", "  A=file", "B=file", "D=file"]),
            tty: true,
            hostname: Some("box".into()),
            ..Default::default()
        };
        let p = run(&img, &opts).unwrap().process.unwrap();
        assert_eq!(
            p.env,
            [
                "PATH=/img/bin",
                "HOSTNAME=box",
                "TERM=xterm",
                "A=file",
                "B=flag",
                "D=file",
                "C=flag",
                "FROM_CALLER=yes",
                "E=",
                "HOME=/root",
            ]
        );
        assert!(p.terminal);
        // No PATH anywhere: docker's default; HOME from -e wins.
        let p = run(
            &ContainerConfig {
                cmd: Some(strs(&["sh"])),
                ..Default::default()
            },
            &RunOpts {
                env: strs(&["HOME=/h"]),
                ..Default::default()
            },
        )
        .unwrap()
        .process
        .unwrap();
        assert_eq!(
            p.env,
            [
                format!("PATH={DEFAULT_PATH}"),
                "HOSTNAME=29a58382651f".into(),
                "HOME=/h".into()
            ]
        );
        let bad = RunOpts {
            env_file_lines: strs(&["MY VAR=1"]),
            ..Default::default()
        };
        assert_eq!(
            run(&busybox(), &bad).unwrap_err().to_string(),
            "variable 'MY VAR' contains whitespaces"
        );
    }

    #[test]
    fn workdir_hostname_rootfs_and_user_mounts() {
        let img = ContainerConfig {
            working_dir: Some("app/./x/".into()),
            ..busybox()
        };
        let spec = run(&img, &RunOpts::default()).unwrap();
        assert_eq!(spec.process.unwrap().cwd, "/app/x");
        let spec = run(
            &img,
            &RunOpts {
                workdir: Some("/w//z".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(spec.process.unwrap().cwd, "/w/z");
        let e = run(
            &img,
            &RunOpts {
                workdir: Some("rel".into()),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("needs to be an absolute path"));

        let spec = run(
            &busybox(),
            &RunOpts {
                read_only: true,
                hostname: Some("web".into()),
                tmpfs: strs(&["/run:size=1m,exec", "/dev/shm:size=128m"]),
                binds: vec![
                    BindMount {
                        source: "/srv/a/b".into(),
                        destination: "/data/sub".into(),
                        readonly: false,
                    },
                    BindMount {
                        source: "/srv/a".into(),
                        destination: "/data".into(),
                        readonly: true,
                    },
                ],
                labels: [("l".to_string(), "flag".to_string())].into(),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(spec.root.as_ref().unwrap().readonly);
        let hosts = spec.mounts.iter().find(|m| m.destination == "/etc/hosts");
        assert!(hosts
            .unwrap()
            .options
            .as_ref()
            .unwrap()
            .contains(&"ro".to_string()));
        assert_eq!(spec.hostname.as_deref(), Some("web"));
        let dests: Vec<_> = spec.mounts.iter().map(|m| m.destination.as_str()).collect();
        // The user's /dev/shm replaced the default; parents before children.
        assert_eq!(dests.iter().filter(|d| **d == "/dev/shm").count(), 1);
        let pos = |d: &str| dests.iter().position(|x| *x == d).unwrap();
        assert!(pos("/data") < pos("/data/sub"));
        let run_m = &spec.mounts[pos("/run")];
        assert_eq!(
            run_m.options.as_ref().unwrap(),
            &strs(&["nosuid", "nodev", "size=1m", "exec"])
        );
        assert!(spec.mounts[pos("/data")]
            .options
            .as_ref()
            .unwrap()
            .contains(&"ro".to_string()));
        assert_eq!(spec.annotations.get("l").map(String::as_str), Some("flag"));
        roundtrip(&spec);

        let dup = RunOpts {
            tmpfs: strs(&["/x"]),
            binds: vec![BindMount {
                source: "/a".into(),
                destination: "/x".into(),
                readonly: false,
            }],
            ..Default::default()
        };
        assert!(run(&busybox(), &dup)
            .unwrap_err()
            .to_string()
            .contains("duplicate mount point"));
    }

    #[test]
    fn labels_merge_over_the_images() {
        let img = ContainerConfig {
            labels: Some(
                [
                    ("a".to_string(), "img".to_string()),
                    ("b".to_string(), "img".to_string()),
                ]
                .into(),
            ),
            ..busybox()
        };
        let spec = run(
            &img,
            &RunOpts {
                labels: [("b".to_string(), "flag".to_string())].into(),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(spec.annotations.get("a").map(String::as_str), Some("img"));
        assert_eq!(spec.annotations.get("b").map(String::as_str), Some("flag"));
    }
}
