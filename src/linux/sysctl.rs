//! linux.sysctl: only sysctls that live in a namespace the container owns
//! (the same list runc accepts), written under the container's /proc/sys.

use crate::bail;
use crate::error::{Error, Result};
use std::ffi::CString;

/// Which namespace a sysctl belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Ipc,
    Net,
    Uts,
}

const IPC_KEYS: [&str; 8] = [
    "kernel.msgmax",
    "kernel.msgmnb",
    "kernel.msgmni",
    "kernel.sem",
    "kernel.shmall",
    "kernel.shmmax",
    "kernel.shmmni",
    "kernel.shm_rmid_forced",
];

/// Namespace of a key, or an error naming why it is refused.
/// kernel.hostname is refused as runc does: process hostname has its own
/// OCI field and two sources of truth would race.
pub fn classify(key: &str) -> Result<Class> {
    check_key(key)?;
    if IPC_KEYS.contains(&key) || key.starts_with("fs.mqueue.") {
        return Ok(Class::Ipc);
    }
    if key.starts_with("net.") {
        return Ok(Class::Net);
    }
    match key {
        "kernel.domainname" => Ok(Class::Uts),
        "kernel.hostname" => {
            bail!("sysctl {key:?} is not allowed: it conflicts with the OCI \"hostname\" field")
        }
        _ => bail!("sysctl {key:?} is not namespaced / not allowed"),
    }
}

/// Dotted names only: no '/', no empty or ".." components, nothing that
/// could walk out of /proc/sys.
fn check_key(key: &str) -> Result<()> {
    let ok = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
        && key.split('.').all(|c| !c.is_empty());
    if !ok {
        bail!("sysctl {key:?}: invalid name");
    }
    Ok(())
}

/// /proc/sys path of a checked key.
pub fn proc_path(key: &str) -> String {
    format!("/proc/sys/{}", key.replace('.', "/"))
}

/// A write prepared in the parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Write {
    pub key: String,
    pub path: CString,
    pub value: Vec<u8>,
}

/// `has_ns(kind)` says whether the container gets its own namespace of
/// that kind ("ipc", "network", "uts"); `host_net` whether its network
/// namespace is the runtime's own (joined by a path that points back to it).
pub fn prepare(
    sysctl: &std::collections::BTreeMap<String, String>,
    has_ns: impl Fn(&str) -> bool,
    host_net: impl Fn() -> Result<bool>,
) -> Result<Vec<Write>> {
    let mut out = Vec::with_capacity(sysctl.len());
    let mut host_net_cache: Option<bool> = None;
    for (key, value) in sysctl {
        match classify(key)? {
            Class::Ipc if !has_ns("ipc") => {
                bail!("sysctl {key:?} is not allowed in the host's ipc namespace")
            }
            Class::Uts if !has_ns("uts") => {
                bail!("sysctl {key:?} is not allowed in the host's uts namespace")
            }
            Class::Net => {
                let host = match host_net_cache {
                    Some(h) => h,
                    None => {
                        let h = !has_ns("network") || host_net()?;
                        host_net_cache = Some(h);
                        h
                    }
                };
                if host {
                    bail!("sysctl {key:?} is not allowed in the host's network namespace");
                }
            }
            _ => {}
        }
        if value.contains('\0') {
            bail!("sysctl {key:?}: value contains a NUL byte");
        }
        let path = CString::new(proc_path(key))
            .map_err(|_| Error::msg(format!("sysctl {key:?}: invalid name")))?;
        out.push(Write {
            key: key.clone(),
            path,
            value: value.as_bytes().to_vec(),
        });
    }
    Ok(out)
}

/// In the child, inside the container's mount namespace with /proc mounted.
pub fn apply(writes: &[Write]) -> Result<()> {
    use rustix::fs::{open, Mode, OFlags};
    for w in writes {
        let fd = open(
            w.path.as_c_str(),
            OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
            Mode::empty(),
        )
        .map_err(|e| Error::errno(format!("open sysctl {}", w.key), e.raw_os_error()))?;
        let mut rest: &[u8] = &w.value;
        // An empty value still needs one write: some sysctls accept "".
        loop {
            let n = rustix::io::write(&fd, rest).map_err(|e| {
                Error::errno(
                    format!(
                        "write sysctl {}={}",
                        w.key,
                        String::from_utf8_lossy(&w.value)
                    ),
                    e.raw_os_error(),
                )
            })?;
            rest = rest.get(n..).unwrap_or(&[]);
            if rest.is_empty() || n == 0 {
                break;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn classification() {
        assert_eq!(classify("kernel.shmmax").unwrap(), Class::Ipc);
        assert_eq!(classify("kernel.shm_rmid_forced").unwrap(), Class::Ipc);
        assert_eq!(classify("fs.mqueue.msg_max").unwrap(), Class::Ipc);
        assert_eq!(classify("net.ipv4.ip_forward").unwrap(), Class::Net);
        assert_eq!(classify("net.ipv4.conf.all.rp_filter").unwrap(), Class::Net);
        assert_eq!(classify("kernel.domainname").unwrap(), Class::Uts);
        let e = classify("kernel.hostname").unwrap_err().to_string();
        assert!(e.contains("conflicts"), "{e}");
        let e = classify("vm.swappiness").unwrap_err().to_string();
        assert_eq!(
            e,
            "sysctl \"vm.swappiness\" is not namespaced / not allowed"
        );
        assert!(classify("kernel.pid_max").is_err());
        assert!(classify("fs.mqueue").is_err());
    }

    #[test]
    fn bad_keys() {
        for k in [
            "",
            "net..ipv4",
            "net.ipv4.",
            ".net",
            "net/ipv4/ip_forward",
            "net.ipv4.../../x",
            "net.ipv4 .x",
            "net.ipv4.\0",
        ] {
            let e = classify(k).unwrap_err().to_string();
            assert!(e.ends_with("invalid name"), "{k:?}: {e}");
        }
    }

    #[test]
    fn paths() {
        assert_eq!(
            proc_path("net.ipv4.ip_forward"),
            "/proc/sys/net/ipv4/ip_forward"
        );
    }

    #[test]
    fn namespace_rules() {
        let mut m = BTreeMap::new();
        m.insert("kernel.shmmax".to_string(), "1000".to_string());
        m.insert("net.ipv4.ip_forward".to_string(), "1".to_string());
        let all = |_: &str| true;
        let w = prepare(&m, all, || Ok(false)).unwrap();
        assert_eq!(w.len(), 2);
        assert_eq!(w[0].path.to_str().unwrap(), "/proc/sys/kernel/shmmax");
        assert_eq!(w[1].value, b"1");

        let no_ipc = |k: &str| k != "ipc";
        assert!(prepare(&m, no_ipc, || Ok(false))
            .unwrap_err()
            .to_string()
            .contains("host's ipc"));
        let no_net = |k: &str| k != "network";
        assert!(prepare(&m, no_net, || Ok(false))
            .unwrap_err()
            .to_string()
            .contains("host's network"));
        // A network namespace joined by a path that is the runtime's own.
        assert!(prepare(&m, all, || Ok(true)).is_err());

        let mut d = BTreeMap::new();
        d.insert("kernel.domainname".to_string(), "example".to_string());
        assert!(prepare(&d, all, || Ok(false)).is_ok());
        assert!(prepare(&d, |k: &str| k != "uts", || Ok(false)).is_err());
    }
}
