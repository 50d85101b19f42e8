//! The config's process.rlimits, process.scheduler, process.ioPriority
//! and linux.personality, checked in the parent and turned into the
//! kernel values linux::{rlimit, sched} apply in the child.

use crate::bail;
use crate::error::Result;
use crate::linux::rlimit::{self, rlimit_from_name, Limit};
use crate::linux::sched::{
    ioprio_class_from_name, policy_from_name, policy_name, sched_flag_from_name, Sched, SchedAttr,
    IOPRIO_CLASS_SHIFT, PER_LINUX, PER_LINUX32, SCHED_DEADLINE, SCHED_FIFO, SCHED_RR,
};
use crate::spec::{IoPriority, Personality, Rlimit, Scheduler};

/// Names, duplicates and soft <= hard; no syscalls.
pub fn rlimits(rlimits: &[Rlimit]) -> Result<Vec<Limit>> {
    let mut out: Vec<Limit> = Vec::with_capacity(rlimits.len());
    for r in rlimits {
        let Some(resource) = rlimit_from_name(&r.typ) else {
            bail!("process.rlimits: unknown rlimit type {:?}", r.typ);
        };
        let name = rlimit::NAMES[resource as usize];
        if out.iter().any(|l| l.resource == resource) {
            bail!("process.rlimits: {name} given twice");
        }
        if r.soft > r.hard {
            bail!(
                "process.rlimits: {name} soft limit {} is above its hard limit {}",
                rlimit::show(r.soft),
                rlimit::show(r.hard)
            );
        }
        out.push(Limit {
            resource,
            name,
            soft: r.soft,
            hard: r.hard,
        });
    }
    Ok(out)
}

/// Same rules as runc 1.2's validator plus the kernel's, so mistakes show
/// up before clone instead of as a bare EINVAL.
pub fn scheduler(s: &Scheduler) -> Result<Sched> {
    let Some(policy) = policy_from_name(&s.policy) else {
        bail!("process.scheduler: unknown policy {:?}", s.policy);
    };
    let name = policy_name(policy).unwrap_or("?");
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

/// Returns the kernel's ioprio value (class << 13 | level).
pub fn ioprio(p: &IoPriority) -> Result<u32> {
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

/// Only the two domains runc knows; flags are refused like runc does,
/// since silently running without them would change program behaviour.
pub fn personality(p: &Personality) -> Result<u32> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sch(policy: &str) -> Scheduler {
        Scheduler {
            policy: policy.into(),
            ..Default::default()
        }
    }

    fn rl(t: &str, soft: u64, hard: u64) -> Rlimit {
        Rlimit {
            typ: t.into(),
            soft,
            hard,
        }
    }

    #[test]
    fn parse_validates() {
        let ok = rlimits(&[rl("RLIMIT_NOFILE", 10, 20), rl("RLIMIT_CORE", 0, u64::MAX)]).unwrap();
        assert_eq!(ok.len(), 2);
        assert_eq!(ok[0].resource, 7);
        assert_eq!(ok[1].hard, u64::MAX);

        let e = rlimits(&[rl("RLIMIT_FOO", 1, 1)]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "process.rlimits: unknown rlimit type \"RLIMIT_FOO\""
        );
        let e = rlimits(&[rl("RLIMIT_NOFILE", 1, 1), rl("RLIMIT_NOFILE", 2, 2)]).unwrap_err();
        assert_eq!(e.to_string(), "process.rlimits: RLIMIT_NOFILE given twice");
        let e = rlimits(&[rl("RLIMIT_NOFILE", u64::MAX, 5)]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "process.rlimits: RLIMIT_NOFILE soft limit unlimited is above its hard limit 5"
        );
    }

    #[test]
    fn scheduler_validation() {
        let mut s = sch("SCHED_OTHER");
        s.nice = Some(5);
        let p = scheduler(&s).unwrap();
        assert_eq!((p.attr.policy, p.attr.nice), (0, 5));

        s.nice = Some(20);
        assert!(scheduler(&s).unwrap_err().to_string().contains("nice 20"));
        s.nice = None;
        s.priority = Some(3);
        assert!(scheduler(&s).is_err());

        let mut f = sch("SCHED_FIFO");
        assert!(scheduler(&f).is_err(), "FIFO needs a priority");
        f.priority = Some(10);
        f.flags = vec!["SCHED_FLAG_RESET_ON_FORK".into()];
        let p = scheduler(&f).unwrap();
        assert_eq!((p.attr.policy, p.attr.priority, p.attr.flags), (1, 10, 1));
        f.flags = vec!["SCHED_FLAG_NOPE".into()];
        assert!(scheduler(&f).is_err());

        let mut d = sch("SCHED_DEADLINE");
        assert!(scheduler(&d).is_err());
        d.runtime = Some(10_000_000);
        d.deadline = Some(5_000_000);
        assert!(scheduler(&d).is_err());
        d.deadline = Some(20_000_000);
        d.period = Some(30_000_000);
        assert!(scheduler(&d).is_ok());

        let mut o = sch("SCHED_BATCH");
        o.runtime = Some(1);
        assert!(scheduler(&o).is_err());
        assert!(scheduler(&sch("SCHED_WHATEVER")).is_err());
    }

    #[test]
    fn ioprio_parsing() {
        let io = |c: &str, p| IoPriority {
            class: c.into(),
            priority: p,
        };
        assert_eq!(ioprio(&io("IOPRIO_CLASS_RT", 0)).unwrap(), 1 << 13);
        assert_eq!(ioprio(&io("IOPRIO_CLASS_BE", 4)).unwrap(), 2 << 13 | 4);
        assert_eq!(ioprio(&io("IOPRIO_CLASS_IDLE", 7)).unwrap(), 3 << 13 | 7);
        assert!(ioprio(&io("IOPRIO_CLASS_BE", 8)).is_err());
        assert!(ioprio(&io("IOPRIO_CLASS_BE", -1)).is_err());
        assert!(ioprio(&io("IOPRIO_CLASS_NONE", 0)).is_err());
    }

    #[test]
    fn personality_parsing() {
        let p = |d: &str, f: &[&str]| Personality {
            domain: d.into(),
            flags: f.iter().map(|s| s.to_string()).collect(),
        };
        assert_eq!(personality(&p("LINUX", &[])).unwrap(), 0);
        assert_eq!(personality(&p("LINUX32", &[])).unwrap(), 8);
        assert!(personality(&p("LINUX32", &["ADDR_NO_RANDOMIZE"])).is_err());
        assert!(personality(&p("BSD", &[])).is_err());
    }
}
