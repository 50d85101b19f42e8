//! sched_setattr, ioprio_set and personality: the names and numbers, and
//! one syscall each (the config's values are checked in
//! container::limits).

use crate::error::{Error, Result};

const POLICIES: [(&str, u32); 7] = [
    ("SCHED_OTHER", 0),
    ("SCHED_FIFO", 1),
    ("SCHED_RR", 2),
    ("SCHED_BATCH", 3),
    ("SCHED_ISO", 4),
    ("SCHED_IDLE", 5),
    ("SCHED_DEADLINE", 6),
];

pub const SCHED_FIFO: u32 = 1;
pub const SCHED_RR: u32 = 2;
pub const SCHED_DEADLINE: u32 = 6;

const FLAG_UTIL_CLAMP: u64 = 0x20 | 0x40;

/// From include/uapi/linux/sched.h; the two aggregates are what the OCI
/// spec lists too.
const FLAGS: [(&str, u64); 9] = [
    ("SCHED_FLAG_RESET_ON_FORK", 0x01),
    ("SCHED_FLAG_RECLAIM", 0x02),
    ("SCHED_FLAG_DL_OVERRUN", 0x04),
    ("SCHED_FLAG_KEEP_POLICY", 0x08),
    ("SCHED_FLAG_KEEP_PARAMS", 0x10),
    ("SCHED_FLAG_UTIL_CLAMP_MIN", 0x20),
    ("SCHED_FLAG_UTIL_CLAMP_MAX", 0x40),
    ("SCHED_FLAG_KEEP_ALL", 0x08 | 0x10),
    ("SCHED_FLAG_UTIL_CLAMP", FLAG_UTIL_CLAMP),
];

pub fn policy_from_name(name: &str) -> Option<u32> {
    POLICIES.iter().find(|p| p.0 == name).map(|p| p.1)
}

pub fn policy_name(policy: u32) -> Option<&'static str> {
    POLICIES.iter().find(|p| p.1 == policy).map(|p| p.0)
}

pub fn sched_flag_from_name(name: &str) -> Option<u64> {
    FLAGS.iter().find(|f| f.0 == name).map(|f| f.1)
}

/// struct sched_attr, SCHED_ATTR_SIZE_VER1 (with the util clamp fields, so
/// the UTIL_CLAMP flags are accepted; the spec has no values for them, so
/// they reset the clamps to "none").
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SchedAttr {
    pub size: u32,
    pub policy: u32,
    pub flags: u64,
    pub nice: i32,
    pub priority: u32,
    pub runtime: u64,
    pub deadline: u64,
    pub period: u64,
    pub util_min: u32,
    pub util_max: u32,
}

/// Validated scheduler request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sched {
    pub attr: SchedAttr,
    pub name: &'static str,
}

/// `pid` 0 is the caller.
pub fn apply_scheduler(s: &Sched, pid: i32) -> Result<()> {
    // SAFETY: sched_setattr with a fully initialised struct.
    let r = unsafe { libc::syscall(libc::SYS_sched_setattr, pid, &s.attr, 0) };
    if r != 0 {
        return Err(Error::last_os(format!("sched_setattr {}", s.name)));
    }
    Ok(())
}

pub const IOPRIO_CLASS_SHIFT: u32 = 13;
const IOPRIO_WHO_PROCESS: libc::c_int = 1;

pub fn ioprio_class_from_name(name: &str) -> Option<u32> {
    match name {
        "IOPRIO_CLASS_RT" => Some(1),
        "IOPRIO_CLASS_BE" => Some(2),
        "IOPRIO_CLASS_IDLE" => Some(3),
        _ => None,
    }
}

/// `pid` 0 is the caller.
pub fn apply_ioprio(value: u32, pid: i32) -> Result<()> {
    // SAFETY: ioprio_set, integer arguments only.
    let r = unsafe {
        libc::syscall(
            libc::SYS_ioprio_set,
            IOPRIO_WHO_PROCESS,
            pid,
            value as libc::c_int,
        )
    };
    if r != 0 {
        return Err(Error::last_os(format!(
            "ioprio_set class {} priority {}",
            value >> IOPRIO_CLASS_SHIFT,
            value & 7
        )));
    }
    Ok(())
}

pub const PER_LINUX: u32 = 0x0000;
pub const PER_LINUX32: u32 = 0x0008;

pub fn apply_personality(persona: u32) -> Result<()> {
    // SAFETY: integer argument; only changes our own execution domain.
    let r = unsafe { libc::personality(persona as libc::c_ulong) };
    if r < 0 {
        return Err(Error::last_os(format!("personality {persona:#x}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_names() {
        for (n, v) in POLICIES {
            assert_eq!(policy_from_name(n), Some(v));
            assert_eq!(policy_name(v), Some(n));
        }
        assert_eq!(policy_from_name("SCHED_NORMAL"), None);
        assert_eq!(policy_from_name("sched_other"), None);
        assert_eq!(
            policy_from_name("SCHED_OTHER").unwrap(),
            libc::SCHED_OTHER as u32
        );
        assert_eq!(
            policy_from_name("SCHED_IDLE").unwrap(),
            libc::SCHED_IDLE as u32
        );
        assert_eq!(sched_flag_from_name("SCHED_FLAG_KEEP_ALL"), Some(0x18));
        assert_eq!(sched_flag_from_name("SCHED_FLAG_X"), None);
    }

    #[test]
    fn struct_is_ver1() {
        assert_eq!(std::mem::size_of::<SchedAttr>(), 56);
    }
}
