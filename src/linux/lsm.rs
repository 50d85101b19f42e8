//! process.apparmorProfile and process.selinuxLabel: exec-time labels set
//! through /proc/self/attr just before exec.
//!
//! Asking for a label on a host without that LSM is an error: running the
//! container unconfined when confinement was requested is the unsafe way
//! to fail.

use crate::bail;
use crate::error::{Error, Result};
use std::ffi::CStr;

pub fn apparmor_enabled() -> bool {
    crate::linux::file::read("/sys/module/apparmor/parameters/enabled")
        .map(|s| s.trim() == "Y")
        .unwrap_or(false)
}

pub fn selinux_enabled() -> bool {
    std::path::Path::new("/sys/fs/selinux/enforce").exists()
}

/// One label write prepared in the parent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    /// Tried in order; the first that exists is written.
    paths: &'static [&'static CStr],
    data: Vec<u8>,
    what: &'static str,
    shown: String,
}

/// Newer kernels have a per-LSM directory; /proc/self/attr/exec is the
/// legacy path used when AppArmor is the major LSM.
const APPARMOR_PATHS: &[&CStr] = &[c"/proc/self/attr/apparmor/exec", c"/proc/self/attr/exec"];
const SELINUX_PATHS: &[&CStr] = &[c"/proc/self/attr/exec"];

fn check_text(what: &str, s: &str) -> Result<()> {
    if s.bytes().any(|b| b == 0 || b == b'\n') {
        bail!("{what} {s:?}: contains a NUL or newline");
    }
    Ok(())
}

pub fn prepare_apparmor(profile: &str, enabled: bool) -> Result<Label> {
    check_text("process.apparmorProfile", profile)?;
    if !enabled {
        bail!("process.apparmorProfile {profile:?}: AppArmor is not enabled on this host");
    }
    Ok(Label {
        paths: APPARMOR_PATHS,
        data: format!("exec {profile}").into_bytes(),
        what: "apparmor profile",
        shown: profile.to_string(),
    })
}

pub fn prepare_selinux(label: &str, enabled: bool) -> Result<Label> {
    check_text("process.selinuxLabel", label)?;
    if !enabled {
        bail!("process.selinuxLabel {label:?}: SELinux is not enabled on this host");
    }
    Ok(Label {
        paths: SELINUX_PATHS,
        data: label.as_bytes().to_vec(),
        what: "selinux label",
        shown: label.to_string(),
    })
}

/// In the child, as root, before uid changes and no_new_privs.
pub fn apply(l: &Label) -> Result<()> {
    use rustix::fs::{open, Mode, OFlags};
    let mut last = libc::ENOENT;
    for p in l.paths {
        match open(*p, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty()) {
            Ok(fd) => {
                return match rustix::io::write(&fd, &l.data) {
                    Ok(_) => Ok(()),
                    Err(e) => Err(Error::errno(
                        format!("set {} {:?}", l.what, l.shown),
                        e.raw_os_error(),
                    )),
                };
            }
            Err(e) => last = e.raw_os_error(),
        }
    }
    Err(Error::errno(
        format!("set {} {:?}: open /proc/self/attr", l.what, l.shown),
        last,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabled_lsm_is_an_error() {
        let e = prepare_apparmor("docker-default", false).unwrap_err();
        assert_eq!(
            e.to_string(),
            "process.apparmorProfile \"docker-default\": AppArmor is not enabled on this host"
        );
        let e = prepare_selinux("system_u:system_r:container_t:s0", false).unwrap_err();
        assert!(e.to_string().contains("SELinux is not enabled"));
    }

    #[test]
    fn enabled_lsm_builds_writes() {
        let a = prepare_apparmor("docker-default", true).unwrap();
        assert_eq!(a.data, b"exec docker-default");
        let s = prepare_selinux("system_u:system_r:container_t:s0", true).unwrap();
        assert_eq!(s.data, b"system_u:system_r:container_t:s0");
        assert!(prepare_apparmor("a\nchangeprofile b", true).is_err());
    }
}
