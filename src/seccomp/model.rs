//! The OCI profile, checked and resolved: actions, ABIs, argument tests and
//! syscall numbers. Shared by the BPF code generator and the reference
//! evaluator so both see the same input; the matching rules themselves are
//! implemented twice, independently.

use super::tables;
use crate::error::Result;
use crate::spec::{Seccomp, SyscallArg};

pub const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
pub const AUDIT_ARCH_AARCH64: u32 = 0xC000_00B7;
/// x32 syscalls arrive as AUDIT_ARCH_X86_64 with this bit set in `nr`.
pub const X32_SYSCALL_BIT: u32 = 0x4000_0000;

pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const RET_KILL_THREAD: u32 = 0x0000_0000;
pub const RET_TRAP: u32 = 0x0003_0000;
pub const RET_ERRNO: u32 = 0x0005_0000;
pub const RET_USER_NOTIF: u32 = 0x7fc0_0000;
pub const RET_TRACE: u32 = 0x7ff0_0000;
pub const RET_LOG: u32 = 0x7ffc_0000;
pub const RET_ALLOW: u32 = 0x7fff_0000;
pub const RET_ACTION_FULL: u32 = 0xffff_0000;

/// What a syscall from an ABI the profile does not list gets. libseccomp's
/// default "bad arch" action is KILL (thread); we kill the whole process
/// instead, because a lone killed thread leaves a half-dead container.
pub const RET_BAD_ARCH: u32 = RET_KILL_PROCESS;

pub const FLAG_TSYNC: u32 = 1 << 0;
pub const FLAG_LOG: u32 = 1 << 1;
pub const FLAG_SPEC_ALLOW: u32 = 1 << 2;
pub const FLAG_NEW_LISTENER: u32 = 1 << 3;
pub const FLAG_TSYNC_ESRCH: u32 = 1 << 4;
pub const FLAG_WAIT_KILLABLE_RECV: u32 = 1 << 5;

pub const ENOSYS: u16 = libc::ENOSYS as u16;
const EPERM: u16 = libc::EPERM as u16;

/// A syscall ABI we have a number table for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Abi {
    X86_64,
    X86,
    X32,
    Aarch64,
}

impl Abi {
    pub const ALL: [Abi; 4] = [Abi::X86_64, Abi::X86, Abi::X32, Abi::Aarch64];

    /// The value of `seccomp_data.arch` for this ABI.
    pub fn audit_arch(self) -> u32 {
        match self {
            Abi::X86_64 | Abi::X32 => AUDIT_ARCH_X86_64,
            Abi::X86 => AUDIT_ARCH_I386,
            Abi::Aarch64 => AUDIT_ARCH_AARCH64,
        }
    }

    /// The ABI a syscall with this `seccomp_data` arch and nr belongs to.
    pub fn of(arch: u32, nr: u32) -> Option<Abi> {
        match arch {
            AUDIT_ARCH_X86_64 if nr >= X32_SYSCALL_BIT => Some(Abi::X32),
            AUDIT_ARCH_X86_64 => Some(Abi::X86_64),
            AUDIT_ARCH_I386 => Some(Abi::X86),
            AUDIT_ARCH_AARCH64 => Some(Abi::Aarch64),
            _ => None,
        }
    }

    pub fn table(self) -> &'static [(&'static str, u32)] {
        match self {
            Abi::X86_64 => tables::X86_64,
            Abi::X86 => tables::I386,
            Abi::X32 => tables::X32,
            Abi::Aarch64 => tables::AARCH64,
        }
    }

    /// Syscall number of `name` on this ABI.
    pub fn lookup(self, name: &str) -> Option<u32> {
        let t = self.table();
        t.binary_search_by(|(n, _)| n.cmp(&name))
            .ok()
            .map(|i| t[i].1)
    }

    /// ABIs whose arguments are 32 bits wide: as libseccomp, only the low
    /// word of each argument is compared (the kernel zero-extends i386
    /// registers; x32 is treated as a 32-bit ABI by libseccomp too).
    pub fn args_are_32bit(self) -> bool {
        matches!(self, Abi::X86 | Abi::X32)
    }

    /// The ABI this binary runs as; libseccomp always filters it.
    pub fn native() -> Option<Abi> {
        if cfg!(target_arch = "x86_64") {
            Some(Abi::X86_64)
        } else if cfg!(target_arch = "aarch64") {
            Some(Abi::Aarch64)
        } else if cfg!(target_arch = "x86") {
            Some(Abi::X86)
        } else {
            None
        }
    }

    fn from_oci(name: &str) -> Result<Option<Abi>> {
        Ok(Some(match name {
            "SCMP_ARCH_X86_64" => Abi::X86_64,
            "SCMP_ARCH_X86" => Abi::X86,
            "SCMP_ARCH_X32" => Abi::X32,
            "SCMP_ARCH_AARCH64" => Abi::Aarch64,
            // Known to libseccomp but without a table here: syscalls of those
            // ABIs cannot reach an x86_64/aarch64 host's filter except as
            // AArch32 compat on arm64, which then gets the bad-arch action.
            "SCMP_ARCH_ARM"
            | "SCMP_ARCH_MIPS"
            | "SCMP_ARCH_MIPS64"
            | "SCMP_ARCH_MIPS64N32"
            | "SCMP_ARCH_MIPSEL"
            | "SCMP_ARCH_MIPSEL64"
            | "SCMP_ARCH_MIPSEL64N32"
            | "SCMP_ARCH_PPC"
            | "SCMP_ARCH_PPC64"
            | "SCMP_ARCH_PPC64LE"
            | "SCMP_ARCH_S390"
            | "SCMP_ARCH_S390X"
            | "SCMP_ARCH_PARISC"
            | "SCMP_ARCH_PARISC64"
            | "SCMP_ARCH_RISCV64"
            | "SCMP_ARCH_LOONGARCH64"
            | "SCMP_ARCH_M68K"
            | "SCMP_ARCH_SH"
            | "SCMP_ARCH_SHEB" => return Ok(None),
            _ => crate::bail!("seccomp: unknown architecture {name:?}"),
        }))
    }
}

/// A filter verdict, before encoding as SECCOMP_RET_*.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    KillProcess,
    KillThread,
    Trap,
    Errno(u16),
    Notify,
    Trace(u16),
    Log,
    Allow,
}

impl Action {
    pub fn ret(self) -> u32 {
        match self {
            Action::KillProcess => RET_KILL_PROCESS,
            Action::KillThread => RET_KILL_THREAD,
            Action::Trap => RET_TRAP,
            Action::Errno(e) => RET_ERRNO | u32::from(e),
            Action::Notify => RET_USER_NOTIF,
            Action::Trace(d) => RET_TRACE | u32::from(d),
            Action::Log => RET_LOG,
            Action::Allow => RET_ALLOW,
        }
    }

    /// Kernel precedence when several verdicts compete: lower wins
    /// (KILL_PROCESS first, ALLOW last), as the kernel ranks stacked filters.
    pub fn rank(self) -> i32 {
        (self.ret() & RET_ACTION_FULL) as i32
    }

    /// runc skips the ENOSYS stub for defaults that let syscalls through or
    /// hand them to someone who can emulate new ones.
    fn is_permissive(self) -> bool {
        matches!(
            self,
            Action::Allow | Action::Log | Action::Trace(_) | Action::Notify
        )
    }

    pub fn parse(name: &str, errno_ret: Option<u32>) -> Result<Action> {
        let data = |what: &str| -> Result<u16> {
            match errno_ret {
                None => Ok(EPERM),
                Some(v) => u16::try_from(v).map_err(|_| {
                    crate::error::Error::msg(format!("seccomp: {what} {v} too large"))
                }),
            }
        };
        Ok(match name {
            "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => Action::KillThread,
            "SCMP_ACT_KILL_PROCESS" => Action::KillProcess,
            "SCMP_ACT_TRAP" => Action::Trap,
            "SCMP_ACT_ERRNO" => Action::Errno(data("errnoRet")?),
            "SCMP_ACT_TRACE" => Action::Trace(data("errnoRet")?),
            "SCMP_ACT_LOG" => Action::Log,
            "SCMP_ACT_ALLOW" => Action::Allow,
            "SCMP_ACT_NOTIFY" => Action::Notify,
            _ => crate::bail!("seccomp: unknown action {name:?}"),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    MaskedEq,
}

/// One argument test: `args[index] <op> value` (MASKED_EQ:
/// `args[index] & value == value_two`), unsigned 64-bit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cond {
    pub index: u8,
    pub op: Op,
    pub value: u64,
    pub value_two: u64,
}

impl Cond {
    fn parse(a: &SyscallArg) -> Result<Cond> {
        let op = match a.op.as_str() {
            "SCMP_CMP_NE" => Op::Ne,
            "SCMP_CMP_LT" => Op::Lt,
            "SCMP_CMP_LE" => Op::Le,
            "SCMP_CMP_EQ" => Op::Eq,
            "SCMP_CMP_GE" => Op::Ge,
            "SCMP_CMP_GT" => Op::Gt,
            "SCMP_CMP_MASKED_EQ" => Op::MaskedEq,
            other => crate::bail!("seccomp: unknown argument operator {other:?}"),
        };
        if a.index > 5 {
            crate::bail!("seccomp: argument index {} out of range 0-5", a.index);
        }
        Ok(Cond {
            index: a.index as u8,
            op,
            value: a.value,
            value_two: a.value_two,
        })
    }
}

/// One `syscalls[]` entry of the profile.
#[derive(Debug, Clone)]
pub struct Rule {
    pub names: Vec<String>,
    /// The names' syscall numbers, per filtered ABI (same order as
    /// `Profile::abis`): looked up once, here.
    pub nrs: Vec<Vec<u32>>,
    pub action: Action,
    pub conds: Vec<Cond>,
    /// Two or more tests look at the same argument: runc then adds every
    /// test as a rule of its own, so the rule matches when ANY test holds
    /// (otherwise all must hold).
    pub any: bool,
    /// runc drops rules whose action equals the default one (libseccomp
    /// refuses them); they still count for the ENOSYS cut-off.
    pub dropped: bool,
}

/// The whole profile, checked.
#[derive(Debug, Clone)]
pub struct Profile {
    pub default: Action,
    /// Filtered ABIs, native first, no duplicates.
    pub abis: Vec<Abi>,
    pub flags: u32,
    pub notify: bool,
    /// Return ENOSYS for syscall numbers above the highest one the profile
    /// names (per ABI), instead of the default action.
    pub enosys: bool,
    pub rules: Vec<Rule>,
    /// Syscall names unknown on every filtered ABI, and architectures
    /// accepted but not filtered.
    pub ignored: Vec<String>,
}

impl Profile {
    pub fn parse(s: &Seccomp) -> Result<Profile> {
        let default = Action::parse(&s.default_action, s.default_errno_ret)
            .map_err(|e| e.wrap("defaultAction"))?;

        let mut abis: Vec<Abi> = Abi::native().into_iter().collect();
        let mut ignored = Vec::new();
        for a in &s.architectures {
            match Abi::from_oci(a)? {
                Some(abi) if !abis.contains(&abi) => abis.push(abi),
                Some(_) => {}
                None => ignored.push(format!("architecture {a}")),
            }
        }

        let mut rules = Vec::with_capacity(s.syscalls.len());
        let mut notify = default == Action::Notify;
        for (i, sc) in s.syscalls.iter().enumerate() {
            let action = Action::parse(&sc.action, sc.errno_ret)
                .map_err(|e| e.wrap(format!("syscalls[{i}]")))?;
            let conds = sc
                .args
                .iter()
                .map(Cond::parse)
                .collect::<Result<Vec<_>>>()
                .map_err(|e| e.wrap(format!("syscalls[{i}]")))?;
            notify |= action == Action::Notify;
            let mut nrs = vec![Vec::with_capacity(sc.names.len()); abis.len()];
            for n in &sc.names {
                let mut known = false;
                for (abi, v) in abis.iter().zip(nrs.iter_mut()) {
                    if let Some(nr) = abi.lookup(n) {
                        v.push(nr);
                        known = true;
                    }
                }
                if !known && !ignored.contains(n) {
                    ignored.push(n.clone());
                }
            }
            let any = conds
                .iter()
                .enumerate()
                .any(|(j, c)| conds[..j].iter().any(|d| d.index == c.index));
            rules.push(Rule {
                names: sc.names.clone(),
                nrs,
                action,
                conds,
                any,
                dropped: action == default,
            });
        }

        let mut flags = 0;
        for f in &s.flags {
            flags |= match f.as_str() {
                "SECCOMP_FILTER_FLAG_TSYNC" => FLAG_TSYNC,
                "SECCOMP_FILTER_FLAG_LOG" => FLAG_LOG,
                "SECCOMP_FILTER_FLAG_SPEC_ALLOW" => FLAG_SPEC_ALLOW,
                "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" => FLAG_WAIT_KILLABLE_RECV,
                other => crate::bail!("seccomp: unknown flag {other:?}"),
            };
        }
        if notify {
            flags |= FLAG_NEW_LISTENER;
            // The kernel refuses TSYNC with a listener unless told to report
            // a sync failure as ESRCH instead of a thread id.
            if flags & FLAG_TSYNC != 0 {
                flags |= FLAG_TSYNC_ESRCH;
            }
            if s.listener_path.as_deref().unwrap_or("").is_empty() {
                crate::bail!("seccomp: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath");
            }
        } else {
            // Meaningless without a listener, and the kernel says EINVAL.
            flags &= !FLAG_WAIT_KILLABLE_RECV;
        }

        let enosys = !default.is_permissive() && default != Action::Errno(ENOSYS);
        Ok(Profile {
            default,
            abis,
            flags,
            notify,
            enosys,
            rules,
            ignored,
        })
    }

    /// Highest syscall number any name in the profile has on `abi`.
    pub fn max_nr(&self, abi: Abi) -> Option<u32> {
        self.rules
            .iter()
            .flat_map(|r| r.nrs_for(self, abi))
            .copied()
            .max()
    }
}

impl Rule {
    /// This rule's syscall numbers on `abi` (none if `abi` is not filtered).
    pub fn nrs_for<'a>(&'a self, p: &Profile, abi: Abi) -> &'a [u32] {
        p.abis
            .iter()
            .position(|a| *a == abi)
            .and_then(|i| self.nrs.get(i))
            .map_or(&[], |v| v.as_slice())
    }
}
