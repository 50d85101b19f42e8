//! process.scheduler (sched_setattr), process.ioPriority (ioprio_set) and
//! linux.personality: parsed in the parent, one syscall each in the child.

use crate::bail;
use crate::error::{Error, Result};
use crate::spec::{IoPriority, Personality, Scheduler};

const POLICIES: [(&str, u32); 7] = [
    ("SCHED_OTHER", 0),
    ("SCHED_FIFO", 1),
    ("SCHED_RR", 2),
    ("SCHED_BATCH", 3),
    ("SCHED_ISO", 4),
    ("SCHED_IDLE", 5),
    ("SCHED_DEADLINE", 6),
];

const SCHED_FIFO: u32 = 1;
const SCHED_RR: u32 = 2;
const SCHED_DEADLINE: u32 = 6;

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
    size: u32,
    policy: u32,
    flags: u64,
    nice: i32,
    priority: u32,
    runtime: u64,
    deadline: u64,
    period: u64,
    util_min: u32,
    util_max: u32,
}

/// Validated scheduler request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sched {
    attr: SchedAttr,
    name: &'static str,
}

/// Same rules as runc 1.2's validator plus the kernel's, so mistakes show
/// up before clone instead of as a bare EINVAL.
pub fn parse_scheduler(s: &Scheduler) -> Result<Sched> {
    let Some(policy) = policy_from_name(&s.policy) else {
        bail!("process.scheduler: unknown policy {:?}", s.policy);
    };
    let name = POLICIES.iter().find(|p| p.1 == policy).map_or("?", |p| p.0);
    let nice = s.nice.unwrap_or(0);
    if !(-20..=19).contains(&nice) {
        bail!("process.scheduler: nice {nice} is outside -20..19");
    }
    let priority = s.priority.unwrap_or(0);
    if policy == SCHED_FIFO || policy == SCHED_RR {
        if !(1..=99).contains(&priority) {
            bail!("process.scheduler: priority {priority} for {name} is outside 1..99");
        }
    } else if priority != 0 {
        bail!("process.scheduler: priority can only be set for SCHED_FIFO or SCHED_RR");
    }
    let (runtime, deadline, period) = (
        s.runtime.unwrap_or(0),
        s.deadline.unwrap_or(0),
        s.period.unwrap_or(0),
    );
    if policy == SCHED_DEADLINE {
        if runtime == 0 || deadline == 0 {
            bail!("process.scheduler: SCHED_DEADLINE needs runtime and deadline");
        }
        if runtime > deadline || (period != 0 && deadline > period) {
            bail!(
                "process.scheduler: SCHED_DEADLINE needs runtime <= deadline <= period, got {runtime} / {deadline} / {period}"
            );
        }
    } else if runtime != 0 || deadline != 0 || period != 0 {
        bail!("process.scheduler: runtime/deadline/period can only be set for SCHED_DEADLINE");
    }
    let mut flags = 0;
    for f in &s.flags {
        match sched_flag_from_name(f) {
            Some(v) => flags |= v,
            None => bail!("process.scheduler: unknown flag {f:?}"),
        }
    }
    Ok(Sched {
        attr: SchedAttr {
            size: std::mem::size_of::<SchedAttr>() as u32,
            policy,
            flags,
            nice,
            priority: priority as u32,
            runtime,
            deadline,
            period,
            util_min: 0,
            util_max: 1024,
        },
        name,
    })
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

const IOPRIO_CLASS_SHIFT: u32 = 13;
const IOPRIO_WHO_PROCESS: libc::c_int = 1;

pub fn ioprio_class_from_name(name: &str) -> Option<u32> {
    match name {
        "IOPRIO_CLASS_RT" => Some(1),
        "IOPRIO_CLASS_BE" => Some(2),
        "IOPRIO_CLASS_IDLE" => Some(3),
        _ => None,
    }
}

/// Returns the kernel's ioprio value (class << 13 | level).
pub fn parse_ioprio(p: &IoPriority) -> Result<u32> {
    let Some(class) = ioprio_class_from_name(&p.class) else {
        bail!("process.ioPriority: unknown class {:?}", p.class);
    };
    if !(0..=7).contains(&p.priority) {
        bail!(
            "process.ioPriority: priority {} is outside 0..7",
            p.priority
        );
    }
    Ok(class << IOPRIO_CLASS_SHIFT | p.priority as u32)
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

const PER_LINUX: u32 = 0x0000;
const PER_LINUX32: u32 = 0x0008;

/// Only the two domains runc knows; flags are refused like runc does,
/// since silently running without them would change program behaviour.
pub fn parse_personality(p: &Personality) -> Result<u32> {
    if !p.flags.is_empty() {
        bail!(
            "linux.personality: flags are not supported (got {:?})",
            p.flags
        );
    }
    match p.domain.as_str() {
        "LINUX" => Ok(PER_LINUX),
        "LINUX32" => Ok(PER_LINUX32),
        d => bail!("linux.personality: unknown domain {d:?} (LINUX or LINUX32)"),
    }
}

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

    fn sch(policy: &str) -> Scheduler {
        Scheduler {
            policy: policy.into(),
            ..Default::default()
        }
    }

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

    #[test]
    fn scheduler_validation() {
        let mut s = sch("SCHED_OTHER");
        s.nice = Some(5);
        let p = parse_scheduler(&s).unwrap();
        assert_eq!((p.attr.policy, p.attr.nice), (0, 5));

        s.nice = Some(20);
        assert!(parse_scheduler(&s)
            .unwrap_err()
            .to_string()
            .contains("nice 20"));
        s.nice = None;
        s.priority = Some(3);
        assert!(parse_scheduler(&s).is_err());

        let mut f = sch("SCHED_FIFO");
        assert!(parse_scheduler(&f).is_err(), "FIFO needs a priority");
        f.priority = Some(10);
        f.flags = vec!["SCHED_FLAG_RESET_ON_FORK".into()];
        let p = parse_scheduler(&f).unwrap();
        assert_eq!((p.attr.policy, p.attr.priority, p.attr.flags), (1, 10, 1));
        f.flags = vec!["SCHED_FLAG_NOPE".into()];
        assert!(parse_scheduler(&f).is_err());

        let mut d = sch("SCHED_DEADLINE");
        assert!(parse_scheduler(&d).is_err());
        d.runtime = Some(10_000_000);
        d.deadline = Some(5_000_000);
        assert!(parse_scheduler(&d).is_err());
        d.deadline = Some(20_000_000);
        d.period = Some(30_000_000);
        assert!(parse_scheduler(&d).is_ok());

        let mut o = sch("SCHED_BATCH");
        o.runtime = Some(1);
        assert!(parse_scheduler(&o).is_err());
        assert!(parse_scheduler(&sch("SCHED_WHATEVER")).is_err());
    }

    #[test]
    fn ioprio_parsing() {
        let io = |c: &str, p| IoPriority {
            class: c.into(),
            priority: p,
        };
        assert_eq!(parse_ioprio(&io("IOPRIO_CLASS_RT", 0)).unwrap(), 1 << 13);
        assert_eq!(
            parse_ioprio(&io("IOPRIO_CLASS_BE", 4)).unwrap(),
            2 << 13 | 4
        );
        assert_eq!(
            parse_ioprio(&io("IOPRIO_CLASS_IDLE", 7)).unwrap(),
            3 << 13 | 7
        );
        assert!(parse_ioprio(&io("IOPRIO_CLASS_BE", 8)).is_err());
        assert!(parse_ioprio(&io("IOPRIO_CLASS_BE", -1)).is_err());
        assert!(parse_ioprio(&io("IOPRIO_CLASS_NONE", 0)).is_err());
    }

    #[test]
    fn personality_parsing() {
        let p = |d: &str, f: &[&str]| Personality {
            domain: d.into(),
            flags: f.iter().map(|s| s.to_string()).collect(),
        };
        assert_eq!(parse_personality(&p("LINUX", &[])).unwrap(), 0);
        assert_eq!(parse_personality(&p("LINUX32", &[])).unwrap(), 8);
        assert!(parse_personality(&p("LINUX32", &["ADDR_NO_RANDOMIZE"])).is_err());
        assert!(parse_personality(&p("BSD", &[])).is_err());
    }
}
