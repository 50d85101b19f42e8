//! The profile's meaning, evaluated directly on one syscall: the oracle the
//! compiled BPF is checked against (`interp::run(compile(p)) ==
//! reference_verdict(p)` for every input). Written for obviousness, not speed.

use super::model::{Abi, Action, Cond, Op, Profile, ENOSYS, RET_BAD_ARCH, RET_ERRNO};
use crate::error::Result;
use crate::spec::Seccomp;

/// The SECCOMP_RET_* value the profile gives syscall `nr` with `args` from an
/// `arch` (AUDIT_ARCH_*) caller. Errors exactly when `compile` does.
pub fn reference_verdict(profile: &Seccomp, arch: u32, nr: u32, args: &[u64; 6]) -> Result<u32> {
    let p = Profile::parse(profile)?;
    Ok(Reference::new(&p).verdict(arch, nr, args))
}

/// As `reference_verdict`, for a profile parsed once.
pub fn reference_verdict_parsed(p: &Profile, arch: u32, nr: u32, args: &[u64; 6]) -> u32 {
    Reference::new(p).verdict(arch, nr, args)
}

/// The oracle for one parsed profile, asked many times (the differential
/// fuzzer): each rule's names are looked up by string once per ABI, here,
/// independently of the compiler's own `Rule::nrs`.
pub struct Reference<'a> {
    p: &'a Profile,
    /// `nrs[rule][abi index in Abi::ALL]`: the numbers the rule's names
    /// have on that ABI.
    nrs: Vec<[Vec<u32>; 4]>,
    /// Highest number any name has on each ABI (dropped rules count too):
    /// above it, a profile with the ENOSYS cut-off answers ENOSYS.
    max: [Option<u32>; 4],
}

impl<'a> Reference<'a> {
    pub fn new(p: &'a Profile) -> Self {
        let nrs = p
            .rules
            .iter()
            .map(|r| Abi::ALL.map(|abi| r.names.iter().filter_map(|n| abi.lookup(n)).collect()))
            .collect::<Vec<[Vec<u32>; 4]>>();
        let max = [0, 1, 2, 3].map(|i| nrs.iter().flat_map(|n| n[i].iter().copied()).max());
        Reference { p, nrs, max }
    }

    pub fn verdict(&self, arch: u32, nr: u32, args: &[u64; 6]) -> u32 {
        let p = self.p;
        let (abi, slot) = match Abi::of(arch, nr) {
            Some(abi) if p.abis.contains(&abi) => (abi, abi_slot(abi)),
            _ => return RET_BAD_ARCH,
        };

        let mut unconditional: Option<Action> = None;
        let mut best: Option<Action> = None;
        for (r, nrs) in p.rules.iter().zip(&self.nrs) {
            if r.dropped || !nrs[slot].contains(&nr) {
                continue;
            }
            if r.conds.is_empty() {
                unconditional.get_or_insert(r.action);
                continue;
            }
            let hold = |c: &Cond| holds(abi, c, args[usize::from(c.index)]);
            // runc: tests on a repeated argument index become separate
            // rules, so any one of them matching is enough.
            let repeated = r
                .conds
                .iter()
                .enumerate()
                .any(|(j, c)| r.conds[j + 1..].iter().any(|d| d.index == c.index));
            let matched = if repeated {
                r.conds.iter().any(hold)
            } else {
                r.conds.iter().all(hold)
            };
            if matched {
                // Strictly stronger only: the earlier rule wins a tie.
                if best.is_none_or(|b| r.action.rank() < b.rank()) {
                    best = Some(r.action);
                }
            }
        }
        if let Some(a) = unconditional.or(best) {
            return a.ret();
        }
        if p.enosys && self.max[slot].is_some_and(|max| nr > max) {
            return RET_ERRNO | u32::from(ENOSYS);
        }
        p.default.ret()
    }
}

fn abi_slot(abi: Abi) -> usize {
    match abi {
        Abi::X86_64 => 0,
        Abi::X86 => 1,
        Abi::X32 => 2,
        Abi::Aarch64 => 3,
    }
}

fn holds(abi: Abi, c: &Cond, arg: u64) -> bool {
    let arg = if abi.args_are_32bit() {
        arg & 0xffff_ffff
    } else {
        arg
    };
    match c.op {
        Op::Ne => arg != c.value,
        Op::Lt => arg < c.value,
        Op::Le => arg <= c.value,
        Op::Eq => arg == c.value,
        Op::Ge => arg >= c.value,
        Op::Gt => arg > c.value,
        Op::MaskedEq => arg & c.value == c.value_two,
    }
}
