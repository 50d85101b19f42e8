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
    Ok(verdict(&p, arch, nr, args))
}

/// As `reference_verdict`, for a profile parsed once (fuzzers).
pub fn reference_verdict_parsed(p: &Profile, arch: u32, nr: u32, args: &[u64; 6]) -> u32 {
    verdict(p, arch, nr, args)
}

fn verdict(p: &Profile, arch: u32, nr: u32, args: &[u64; 6]) -> u32 {
    let abi = match Abi::of(arch, nr) {
        Some(abi) if p.abis.contains(&abi) => abi,
        _ => return RET_BAD_ARCH,
    };

    let mut unconditional: Option<Action> = None;
    let mut best: Option<Action> = None;
    for r in &p.rules {
        if r.dropped || !r.names.iter().any(|n| abi.lookup(n) == Some(nr)) {
            continue;
        }
        if r.conds.is_empty() {
            unconditional.get_or_insert(r.action);
        } else if r
            .conds
            .iter()
            .all(|c| holds(abi, c, args[usize::from(c.index)]))
        {
            // Strictly stronger only: the earlier rule wins a tie.
            if best.is_none_or(|b| r.action.rank() < b.rank()) {
                best = Some(r.action);
            }
        }
    }
    if let Some(a) = unconditional.or(best) {
        return a.ret();
    }
    if p.enosys && p.max_nr(abi).is_some_and(|max| nr > max) {
        return RET_ERRNO | u32::from(ENOSYS);
    }
    p.default.ret()
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
