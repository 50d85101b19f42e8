//! The OCI config.json of a porcelain container: the image config plus the
//! `container run` flags, with docker's semantics and defaults.
//!
//! Pure: the only I/O is reading the image's /etc/passwd and /etc/group
//! (for `-u NAME`), under a rootfs path the caller gives. Everything that
//! depends on the host (the caller's environment, cgroup v2, the container
//! dir's files, the init binary) comes in through [`Host`].

use crate::bail;
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

    let user_spec = opts
        .user
        .as_deref()
        .or(image.user.as_deref())
        .unwrap_or("");
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
        linux.sysctl.insert(
            "net.ipv4.ip_unprivileged_port_start".into(),
            "0".into(),
        );
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
            let e = if e.is_empty() { vec![] } else { vec![e.clone()] };
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
        match env
            .iter_mut()
            .find(|x| x.split('=').next() == Some(key))
        {
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

/// Lexical clean of an absolute path: no `.`, `..` or doubled slashes.
fn clean(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
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
                    None => bail!(
                        "unable to find user {user_arg}: no matching entries in passwd file"
                    ),
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
                    None => bail!(
                        "unable to find group {group_arg}: no matching entries in group file"
                    ),
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
    let norm = |l: &[String]| -> Result<Vec<String>> { l.iter().map(|c| normalize_cap(c)).collect() };
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
            bail!("invalid --cpus {c}: must be a positive number");
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
    let sys_ro = if opts.privileged { "rw" } else { "ro" };
    let mut v = vec![
        m("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        m(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        ),
        m(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        ),
        m(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        ),
        m("/dev/mqueue", "mqueue", "mqueue", &["nosuid", "noexec", "nodev"]),
        m("/sys", "sysfs", "sysfs", &["nosuid", "noexec", "nodev", sys_ro]),
        m(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", sys_ro],
        ),
    ];
    let path = |p: &Path| p.to_string_lossy().into_owned();
    for (dest, src) in [
        ("/etc/hostname", path(host.hostname_file)),
        ("/etc/hosts", path(host.hosts_file)),
        ("/etc/resolv.conf", path(host.resolv_conf)),
    ] {
        v.push(m(dest, "bind", &src, &["rbind", "rprivate"]));
    }

    let mut user: Vec<Mount> = Vec::new();
    for t in &opts.tmpfs {
        let (dest, extra) = t.split_once(':').unwrap_or((t, ""));
        if !dest.starts_with('/') {
            bail!("invalid --tmpfs {t:?}: the path must be absolute");
        }
        let mut o = vec!["nosuid", "noexec", "nodev"];
        o.extend(extra.split(',').filter(|s| !s.is_empty()));
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
    user.sort_by_key(|u| u.destination.split('/').filter(|c| !c.is_empty()).count());
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
    #[serde(default)]
    min_kernel: Option<String>,
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
        match p.arch_map.into_iter().find(|a| a.architecture == scmp_arch()) {
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
        let _ = (inc.min_kernel, exc.min_kernel);
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
