//! Where the hierarchies are mounted, which cgroup we ourselves live in, and
//! how a config's `cgroupsPath` turns into one directory per hierarchy.
//! Everything here only reads /proc; the parsers are pure so they can be
//! tested without a host.

use crate::bail;
use crate::error::{Context, Result};
use crate::linux::mountinfo;

/// One mounted cgroup hierarchy as /proc/self/mountinfo shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Mount {
    /// The directory the hierarchy is mounted on.
    pub point: String,
    /// The hierarchy path mounted there ("/" unless we are nested).
    pub root: String,
    /// v1 controllers (plus "name=..." for named hierarchies); empty for cgroup2.
    pub controllers: Vec<String>,
    pub unified: bool,
    pub read_only: bool,
}

/// Controller names the v1 mount options may carry; everything else in the
/// super options is a mount flag.
const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "blkio",
    "pids",
    "net_cls",
    "net_prio",
    "hugetlb",
    "perf_event",
    "rdma",
    "misc",
    "debug",
];

/// Cgroup mounts from the text of /proc/self/mountinfo. A hierarchy mounted
/// more than once keeps its first (outermost) mount.
pub fn parse_mountinfo(text: &str) -> Vec<Mount> {
    let mut out: Vec<Mount> = Vec::new();
    for l in text.lines().filter_map(mountinfo::parse_line) {
        let unified = match l.fstype {
            "cgroup2" => true,
            "cgroup" => false,
            _ => continue,
        };
        let read_only = l.options.split(',').any(|o| o == "ro");
        let controllers: Vec<String> = if unified {
            Vec::new()
        } else {
            l.super_options
                .split(',')
                .filter(|o| V1_CONTROLLERS.contains(o) || o.starts_with("name="))
                .map(str::to_string)
                .collect()
        };
        if !unified && controllers.is_empty() {
            continue;
        }
        let m = Mount {
            point: l.point,
            root: l.root,
            controllers,
            unified,
            read_only,
        };
        let dup = out
            .iter()
            .any(|o| o.unified == m.unified && same_set(&o.controllers, &m.controllers));
        if !dup {
            out.push(m);
        }
    }
    out
}

fn same_set(a: &[String], b: &[String]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.contains(x))
}

/// One line of /proc/<pid>/cgroup.
#[derive(Debug, Clone, PartialEq)]
pub struct Membership {
    /// Empty for the cgroup2 line ("0::/path").
    pub controllers: Vec<String>,
    pub path: String,
}

pub fn parse_proc_cgroup(text: &str) -> Vec<Membership> {
    text.lines()
        .filter_map(|line| {
            let mut it = line.splitn(3, ':');
            let _id = it.next()?;
            let ctrls = it.next()?;
            let path = it.next()?;
            let controllers = if ctrls.is_empty() {
                Vec::new()
            } else {
                ctrls.split(',').map(str::to_string).collect()
            };
            Some(Membership {
                controllers,
                path: path.to_string(),
            })
        })
        .collect()
}

/// The cgroup we live in within hierarchy `m`, relative to where `m` is
/// mounted (so it can be appended to the mount point).
pub fn own_path(m: &Mount, own: &[Membership]) -> Option<String> {
    let mem = own.iter().find(|x| {
        if m.unified {
            x.controllers.is_empty()
        } else {
            same_set(&x.controllers, &m.controllers)
        }
    })?;
    // A nested runtime sees its hierarchy mounted from a sub-path; our
    // membership is shown from the true root, so strip that prefix.
    let p = if m.root != "/" {
        mem.path
            .strip_prefix(m.root.as_str())
            .unwrap_or(&mem.path)
            .to_string()
    } else {
        mem.path.clone()
    };
    Some(clean(&p))
}

/// Lexical clean of a path, rooted at "/": no "..", ".", or double slashes
/// can climb out of the hierarchy (a cgroup's, or a container's mount
/// destinations in engine::spec).
pub fn clean(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            _ => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

/// What the container's cgroup path is, before it is placed in a hierarchy.
#[derive(Debug, Clone, PartialEq)]
pub enum Inner {
    /// From the root of every hierarchy.
    Absolute(String),
    /// Below the runtime's own cgroup in each hierarchy.
    Relative(String),
}

/// Resolve `linux.cgroupsPath`. The default is /runway/<id>; like runc's and
/// crun's parents, /runway stays when its last container goes: removing it
/// cost every `run` a mkdir and an rmdir per hierarchy, and raced with the
/// containers being created beside it.
pub fn inner_path(cgroups_path: Option<&str>, id: &str, systemd: bool) -> Result<Inner> {
    if id.is_empty() || id.contains('/') || id == "." || id == ".." {
        bail!("cgroup path: invalid container id {id:?}");
    }
    if cgroups_path.is_some_and(|p| p.split('/').any(|c| c == "..")) {
        bail!(
            "cgroupsPath {:?}: \"..\" is not allowed",
            cgroups_path.unwrap_or("")
        );
    }
    if systemd {
        // Parse first: a malformed path is the config's fault on any host.
        // Without D-Bus we only lay the unit out where systemd would.
        let p = systemd_path(cgroups_path, id)?;
        if !std::path::Path::new("/run/systemd/system").exists() {
            bail!("systemd cgroup driver: systemd is not running");
        }
        return Ok(Inner::Absolute(p));
    }
    match cgroups_path {
        None | Some("") => Ok(Inner::Absolute(format!("/runway/{id}"))),
        Some(p) if p.starts_with('/') => Ok(Inner::Absolute(clean(p))),
        Some(p) => {
            let c = clean(p);
            if c == "/" {
                bail!("cgroupsPath {p:?}: resolves to the runtime's own cgroup");
            }
            Ok(Inner::Relative(c))
        }
    }
}

/// "slice:prefix:name" as the systemd driver lays it out on the file
/// system: the slice nested by its dashes, then "<prefix>-<name>.scope".
pub fn systemd_path(cgroups_path: Option<&str>, id: &str) -> Result<String> {
    let spec = match cgroups_path {
        None | Some("") => format!("system.slice:runway:{id}"),
        Some(s) => s.to_string(),
    };
    let parts: Vec<&str> = spec.split(':').collect();
    if parts.len() != 3 {
        bail!("systemd cgroup driver: cgroupsPath {spec:?}: expected \"slice:prefix:name\"");
    }
    let slice = if parts[0].is_empty() {
        "system.slice"
    } else {
        parts[0]
    };
    let slice_dir = expand_slice(slice)?;
    let name = parts[2];
    if name.is_empty() || name.contains('/') {
        bail!("systemd cgroup driver: cgroupsPath {spec:?}: bad unit name");
    }
    let unit = if name.ends_with(".slice") {
        name.to_string()
    } else if parts[1].is_empty() {
        format!("{name}.scope")
    } else {
        format!("{}-{name}.scope", parts[1])
    };
    Ok(format!("{slice_dir}/{unit}"))
}

/// "a-b-c.slice" lives at "/a.slice/a-b.slice/a-b-c.slice".
fn expand_slice(slice: &str) -> Result<String> {
    let Some(base) = slice.strip_suffix(".slice") else {
        bail!("systemd cgroup driver: {slice:?} is not a slice");
    };
    // "-.slice" is the root slice.
    if base == "-" {
        return Ok(String::new());
    }
    if base.is_empty()
        || base.contains('/')
        || base.starts_with('-')
        || base.ends_with('-')
        || base.contains("--")
    {
        bail!("systemd cgroup driver: invalid slice name {slice:?}");
    }
    let mut out = String::new();
    let mut prefix = String::new();
    for comp in base.split('-') {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(comp);
        out.push('/');
        out.push_str(&prefix);
        out.push_str(".slice");
    }
    Ok(out)
}

/// The directory of the container's cgroup within hierarchy `m`.
pub fn leaf_dir(m: &Mount, inner: &Inner, own: &[Membership]) -> Result<String> {
    let rel = match inner {
        Inner::Absolute(p) => p.clone(),
        Inner::Relative(p) => {
            let base = own_path(m, own).unwrap_or_else(|| "/".to_string());
            clean(&format!("{base}/{p}"))
        }
    };
    if rel == "/" {
        bail!(
            "cgroup path: resolves to the root of the hierarchy at {}",
            m.point
        );
    }
    Ok(format!("{}{}", m.point.trim_end_matches('/'), rel))
}

pub fn read_mounts() -> Result<Vec<Mount>> {
    let text =
        crate::linux::file::read("/proc/self/mountinfo").ctx(|| "read /proc/self/mountinfo")?;
    Ok(parse_mountinfo(&text))
}

pub fn read_own() -> Result<Vec<Membership>> {
    let text = crate::linux::file::read("/proc/self/cgroup").ctx(|| "read /proc/self/cgroup")?;
    Ok(parse_proc_cgroup(&text))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID: &str = "\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
42 31 0:39 / /sys/fs/cgroup/net_cls,net_prio rw,relatime shared:5 - cgroup cgroup rw,net_cls,net_prio
99 31 0:32 / /mnt/again rw,relatime - cgroup cgroup rw,memory
100 31 0:40 /docker/abc /sys/fs/cgroup/pids ro,relatime - cgroup cgroup rw,pids
";

    #[test]
    fn mountinfo_hybrid() {
        let m = parse_mountinfo(HYBRID);
        assert_eq!(m.len(), 7);
        assert_eq!(m[0].controllers, vec!["cpu"]);
        assert_eq!(m[3].controllers, vec!["name=systemd"]);
        assert!(m[4].unified && m[4].point == "/sys/fs/cgroup/unified");
        assert_eq!(m[5].controllers, vec!["net_cls", "net_prio"]);
        assert_eq!(m[6].root, "/docker/abc");
        assert!(m[6].read_only);
    }

    #[test]
    fn mountinfo_escapes() {
        let m = parse_mountinfo("1 2 0:1 / /a\\040b rw - cgroup2 none rw\n");
        assert_eq!(m[0].point, "/a b");
    }

    #[test]
    fn clean_paths() {
        assert_eq!(clean("/a/../../b//c/."), "/b/c");
        assert_eq!(clean(""), "/");
        assert_eq!(clean("x/y"), "/x/y");
    }

    #[test]
    fn inner_paths() {
        assert_eq!(
            inner_path(None, "c1", false).unwrap(),
            Inner::Absolute("/runway/c1".into())
        );
        assert_eq!(
            inner_path(Some("/a/./b//c"), "c1", false).unwrap(),
            Inner::Absolute("/a/b/c".into())
        );
        // ".." anywhere is refused, not cleaned away.
        assert!(inner_path(Some("/a/../b/c"), "c1", false).is_err());
        assert_eq!(
            inner_path(Some("x/y"), "c1", false).unwrap(),
            Inner::Relative("/x/y".into())
        );
        assert!(inner_path(Some(".."), "c1", false).is_err());
        assert!(inner_path(None, "a/b", false).is_err());
    }

    #[test]
    fn systemd_paths() {
        assert_eq!(
            systemd_path(Some("machine-a.slice:docker:abc"), "x").unwrap(),
            "/machine.slice/machine-a.slice/docker-abc.scope"
        );
        assert_eq!(
            systemd_path(None, "x").unwrap(),
            "/system.slice/runway-x.scope"
        );
        assert_eq!(systemd_path(Some("-.slice::n"), "x").unwrap(), "/n.scope");
        assert!(systemd_path(Some("a:b"), "x").is_err());
        assert!(systemd_path(Some("bad:b:c"), "x").is_err());
        if !std::path::Path::new("/run/systemd/system").exists() {
            let e = inner_path(Some("a.slice:b:c"), "x", true).unwrap_err();
            assert_eq!(
                e.to_string(),
                "systemd cgroup driver: systemd is not running"
            );
        }
    }

    #[test]
    fn leaf_dirs() {
        let m = parse_mountinfo(HYBRID);
        let own = parse_proc_cgroup(
            "4:memory:/process_api/f00\n1:cpu:/\n9:name=systemd:/\n0::/\n8:pids:/docker/abc/inner\n",
        );
        let rel = Inner::Relative("/sub/c".into());
        assert_eq!(
            leaf_dir(&m[2], &rel, &own).unwrap(),
            "/sys/fs/cgroup/memory/process_api/f00/sub/c"
        );
        assert_eq!(
            leaf_dir(&m[0], &rel, &own).unwrap(),
            "/sys/fs/cgroup/cpu/sub/c"
        );
        assert_eq!(
            leaf_dir(&m[6], &rel, &own).unwrap(),
            "/sys/fs/cgroup/pids/inner/sub/c"
        );
        let abs = Inner::Absolute("/runway/x".into());
        assert_eq!(
            leaf_dir(&m[4], &abs, &own).unwrap(),
            "/sys/fs/cgroup/unified/runway/x"
        );
        assert!(leaf_dir(&m[4], &Inner::Absolute("/".into()), &own).is_err());
    }
}
