//! Semantic checks on a parsed config: everything that can be rejected
//! before we touch the system is rejected here, with one clear message.

use super::Spec;
use crate::bail;
use crate::error::Result;

pub const NAMESPACE_TYPES: &[&str] = &[
    "pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time",
];

pub fn validate(spec: &Spec) -> Result<()> {
    check_oci_version(&spec.oci_version)?;
    let root = match &spec.root {
        Some(r) if !r.path.is_empty() => r,
        _ => bail!("config: root.path is required"),
    };
    let _ = root;
    let process = match &spec.process {
        Some(p) => p,
        None => bail!("config: process is required"),
    };
    if process.args.is_empty() && process.command_line.is_none() {
        bail!("config: process.args must not be empty");
    }
    if process.cwd.is_empty() || !process.cwd.starts_with('/') {
        bail!(
            "config: process.cwd {:?} must be an absolute path",
            process.cwd
        );
    }
    for e in &process.env {
        if !e.contains('=') {
            bail!("config: process.env entry {e:?} is not KEY=VALUE");
        }
        if e.contains('\0') {
            bail!("config: process.env entry contains a NUL byte");
        }
    }
    for a in &process.args {
        if a.contains('\0') {
            bail!("config: process.args entry contains a NUL byte");
        }
    }
    let linux = spec.linux.as_ref();
    let mut seen = Vec::new();
    if let Some(l) = linux {
        for ns in &l.namespaces {
            if !NAMESPACE_TYPES.contains(&ns.typ.as_str()) {
                bail!("config: unknown namespace type {:?}", ns.typ);
            }
            if seen.contains(&ns.typ.as_str()) {
                bail!("config: namespace {:?} listed twice", ns.typ);
            }
            seen.push(ns.typ.as_str());
            if let Some(p) = &ns.path {
                if !p.starts_with('/') {
                    bail!("config: namespace {} path {:?} must be absolute", ns.typ, p);
                }
            }
        }
    }
    let has = |t: &str| seen.contains(&t);
    if spec.hostname.as_deref().is_some_and(|h| !h.is_empty()) && !has("uts") {
        bail!("config: hostname requires a new uts namespace");
    }
    if spec.domainname.as_deref().is_some_and(|h| !h.is_empty()) && !has("uts") {
        bail!("config: domainname requires a new uts namespace");
    }
    if let Some(l) = linux {
        if (!l.uid_mappings.is_empty() || !l.gid_mappings.is_empty()) && !has("user") {
            bail!("config: uidMappings/gidMappings require a user namespace");
        }
        if !l.time_offsets.is_empty() && !has("time") {
            bail!("config: timeOffsets require a time namespace");
        }
    }
    if let Some(h) = &spec.hooks {
        for (kind, list) in [
            ("prestart", &h.prestart),
            ("createRuntime", &h.create_runtime),
            ("createContainer", &h.create_container),
            ("startContainer", &h.start_container),
            ("poststart", &h.poststart),
            ("poststop", &h.poststop),
        ] {
            for (i, hook) in list.iter().enumerate() {
                if !hook.path.starts_with('/') {
                    bail!(
                        "config: hooks.{kind}[{i}].path {:?} must be absolute",
                        hook.path
                    );
                }
                if hook.timeout.is_some_and(|t| t <= 0) {
                    bail!("config: hooks.{kind}[{i}].timeout must be greater than zero");
                }
            }
        }
    }
    for m in &spec.mounts {
        if m.destination.is_empty() {
            bail!("config: mount with an empty destination");
        }
        if m.destination.contains('\0') {
            bail!("config: mount destination contains a NUL byte");
        }
    }
    Ok(())
}

/// `ociVersion` must be a semantic version (MAJOR.MINOR.PATCH, optional
/// `-pre.release` and `+build`) with major 1: the only spec major this
/// runtime implements; a 2.x config may mean things we would get wrong.
pub fn check_oci_version(v: &str) -> Result<()> {
    if v.is_empty() {
        bail!(
            "config: ociVersion is required (this runtime implements 1.x, e.g. \"{}\")",
            super::OCI_VERSION
        );
    }
    let (core, build) = match v.split_once('+') {
        Some((c, b)) => (c, Some(b)),
        None => (v, None),
    };
    let (core, pre) = match core.split_once('-') {
        Some((c, p)) => (c, Some(p)),
        None => (core, None),
    };
    let number = |n: &str| {
        !n.is_empty()
            && n.bytes().all(|b| b.is_ascii_digit())
            && (n == "0" || !n.starts_with('0'))
            && n.len() <= 9
    };
    let ident = |s: &str| {
        s.split('.')
            .all(|i| !i.is_empty() && i.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
    };
    let parts: Vec<&str> = core.split('.').collect();
    let semver = parts.len() == 3
        && parts.iter().all(|p| number(p))
        && pre.is_none_or(ident)
        && build.is_none_or(ident);
    if !semver {
        bail!(
            "config: ociVersion {v:?} is not a semantic version (MAJOR.MINOR.PATCH, e.g. \"{}\")",
            super::OCI_VERSION
        );
    }
    if parts[0] != "1" {
        bail!(
            "config: ociVersion {v:?} is not supported: this runtime implements version 1.x \
             of the runtime spec ({})",
            super::OCI_VERSION
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check_oci_version;

    #[test]
    fn oci_version_must_be_semver_1x() {
        for good in ["1.0.0", "1.0.2-dev", "1.1.0", "1.2.0-rc.1+abc", "1.10.3"] {
            assert!(check_oci_version(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "1",
            "1.0",
            "1.0.2.dev",
            "01.0.0",
            "1.0 .2",
            "v1.0.0",
            "1.0.0-",
            "1.0.0-a..b",
        ] {
            let e = check_oci_version(bad).unwrap_err().to_string();
            assert!(e.contains("ociVersion"), "{bad}: {e}");
        }
        let e = check_oci_version("2.0.0").unwrap_err().to_string();
        assert!(e.contains("not supported") && e.contains("1.x"), "{e}");
        assert!(check_oci_version("0.9.0").is_err());
    }
}
