//! Profile -> classic BPF.
//!
//! Layout: dispatch on `arch`, then per ABI a binary search over syscall
//! number ranges whose leaves either return directly or run the argument
//! tests of that syscall's rules. Code is emitted back to front so every jump
//! target already exists when its jump is written; a conditional jump whose
//! 8-bit offset cannot reach gets a `ja` (32-bit offset) trampoline next to it.

use super::model::{
    Abi, Action, Cond, Op, Profile, Rule, ENOSYS, RET_BAD_ARCH, RET_ERRNO, X32_SYSCALL_BIT,
};
use libc::sock_filter;

const LD_W_ABS: u16 = (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16;
const ALU_AND_K: u16 = (libc::BPF_ALU | libc::BPF_AND | libc::BPF_K) as u16;
const JA: u16 = (libc::BPF_JMP | libc::BPF_JA) as u16;
const JEQ_K: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const JGT_K: u16 = (libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K) as u16;
const JGE_K: u16 = (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16;
const RET_K: u16 = (libc::BPF_RET | libc::BPF_K) as u16;

const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
fn off_arg_lo(i: u8) -> u32 {
    16 + 8 * u32::from(i)
}
fn off_arg_hi(i: u8) -> u32 {
    off_arg_lo(i) + 4
}

/// A position in the reversed instruction vector.
type Label = usize;

/// How far back a `ret` may be reused before a fresh copy is cheaper than a
/// trampoline (leaves slack below the 255 limit for trampolines in between).
const RET_REUSE: usize = 200;

#[derive(Default)]
struct Asm {
    rev: Vec<sock_filter>,
    /// Last `ret` emitted per value; a profile has a handful of distinct
    /// verdicts, so a list beats hashing.
    rets: Vec<(u32, Label)>,
}

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

impl Asm {
    fn push(&mut self, i: sock_filter) -> Label {
        self.rev.push(i);
        self.rev.len() - 1
    }

    /// Distance a jump placed next would need to reach `target`.
    fn dist(&self, target: Label) -> usize {
        self.rev.len() - target - 1
    }

    fn ret(&mut self, k: u32) -> Label {
        let slot = self.rets.iter().position(|r| r.0 == k);
        if let Some(i) = slot {
            if self.dist(self.rets[i].1) < RET_REUSE {
                return self.rets[i].1;
            }
        }
        let l = self.push(insn(RET_K, 0, 0, k));
        match slot {
            Some(i) => self.rets[i].1 = l,
            None => self.rets.push((k, l)),
        }
        l
    }

    /// A nearby instruction that continues at `target`: a copy of it if it
    /// is a `ret`, else a `ja`.
    fn near(&mut self, target: Label) -> Label {
        let t = self.rev[target];
        if t.code == RET_K {
            return self.push(t);
        }
        let off = self.dist(target) as u32;
        self.push(insn(JA, 0, 0, off))
    }

    fn jump(&mut self, code: u16, k: u32, mut t: Label, mut f: Label) -> Label {
        if t == f {
            return t;
        }
        loop {
            if self.dist(t) > 255 {
                t = self.near(t);
            } else if self.dist(f) > 255 {
                f = self.near(f);
            } else {
                let (jt, jf) = (self.dist(t) as u8, self.dist(f) as u8);
                return self.push(insn(code, jt, jf, k));
            }
        }
    }

    /// A non-jump instruction that falls through to `next`.
    fn stmt(&mut self, code: u16, k: u32, mut next: Label) -> Label {
        if self.dist(next) != 0 {
            next = self.near(next);
        }
        debug_assert_eq!(self.dist(next), 0);
        self.push(insn(code, 0, 0, k))
    }

    fn load(&mut self, off: u32, next: Label) -> Label {
        self.stmt(LD_W_ABS, off, next)
    }

    fn finish(self) -> Vec<sock_filter> {
        let mut v = self.rev;
        v.reverse();
        v
    }
}

/// Code that continues at `t` if `c` holds for the argument, else at `f`.
fn cond(a: &mut Asm, abi: Abi, c: &Cond, t: Label, f: Label) -> Label {
    let (vlo, vhi) = (c.value as u32, (c.value >> 32) as u32);
    let (mlo, mhi) = (c.value as u32, (c.value >> 32) as u32);
    let (v2lo, v2hi) = (c.value_two as u32, (c.value_two >> 32) as u32);
    let (lo, hi) = (off_arg_lo(c.index), off_arg_hi(c.index));

    if abi.args_are_32bit() {
        // Only the low word exists; a value with high bits set decides the
        // test by itself (the argument's high word is zero).
        let (code, k, yes, no) = match c.op {
            Op::Eq if vhi != 0 => return f,
            Op::Ne if vhi != 0 => return t,
            Op::Gt | Op::Ge if vhi != 0 => return f,
            Op::Lt | Op::Le if vhi != 0 => return t,
            Op::MaskedEq if v2hi != 0 => return f,
            Op::Eq => (JEQ_K, vlo, t, f),
            Op::Ne => (JEQ_K, vlo, f, t),
            Op::Gt => (JGT_K, vlo, t, f),
            Op::Ge => (JGE_K, vlo, t, f),
            Op::Lt => (JGE_K, vlo, f, t),
            Op::Le => (JGT_K, vlo, f, t),
            Op::MaskedEq => {
                let j = a.jump(JEQ_K, v2lo, t, f);
                let m = a.stmt(ALU_AND_K, mlo, j);
                return a.load(lo, m);
            }
        };
        let j = a.jump(code, k, yes, no);
        return a.load(lo, j);
    }

    match c.op {
        Op::Eq | Op::Ne => {
            let (yes, no) = if c.op == Op::Eq { (t, f) } else { (f, t) };
            let jl = a.jump(JEQ_K, vlo, yes, no);
            let l = a.load(lo, jl);
            let jh = a.jump(JEQ_K, vhi, l, no);
            a.load(hi, jh)
        }
        Op::MaskedEq => {
            let jl = a.jump(JEQ_K, v2lo, t, f);
            let ml = a.stmt(ALU_AND_K, mlo, jl);
            let l = a.load(lo, ml);
            let jh = a.jump(JEQ_K, v2hi, l, f);
            let mh = a.stmt(ALU_AND_K, mhi, jh);
            a.load(hi, mh)
        }
        Op::Gt | Op::Ge | Op::Lt | Op::Le => {
            // x > v  <=>  hi > vhi || (hi == vhi && lo > vlo); LT/LE are the
            // negations of GE/GT.
            let (lo_code, yes, no) = match c.op {
                Op::Gt => (JGT_K, t, f),
                Op::Ge => (JGE_K, t, f),
                Op::Lt => (JGE_K, f, t),
                _ => (JGT_K, f, t),
            };
            let jl = a.jump(lo_code, vlo, yes, no);
            let l = a.load(lo, jl);
            let eq = a.jump(JEQ_K, vhi, l, no);
            let gt = a.jump(JGT_K, vhi, yes, eq);
            a.load(hi, gt)
        }
    }
}

/// What one syscall number does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Handler {
    Ret(u32),
    /// Rules in evaluation order (first match wins), then the default.
    Rules(Vec<(Action, Vec<Cond>)>),
}

/// Per-syscall semantics (see the module docs of `seccomp`): an
/// unconditional rule wins outright (the first one, as libseccomp keeps);
/// otherwise the matching conditional rule with the strongest action wins,
/// earlier rules breaking ties.
fn handlers(p: &Profile, abi: Abi) -> Vec<(u32, Handler)> {
    // syscall number << 32 | profile position, sorted: one flat vector of
    // integers instead of a map of vectors (this runs on every create).
    let mut all: Vec<u64> = Vec::new();
    for (i, r) in p.rules.iter().enumerate() {
        if !r.dropped {
            all.extend(
                r.nrs_for(p, abi)
                    .iter()
                    .map(|&nr| u64::from(nr) << 32 | i as u64),
            );
        }
    }
    all.sort_unstable();
    let mut out = Vec::new();
    for group in all.chunk_by(|a, b| a >> 32 == b >> 32) {
        let nr = (group[0] >> 32) as u32;
        let rule = |g: &u64| &p.rules[(*g & 0xffff_ffff) as usize];
        if let Some(r) = group.iter().map(rule).find(|r| r.conds.is_empty()) {
            out.push((nr, Handler::Ret(r.action.ret())));
            continue;
        }
        let mut rules: Vec<(u64, &Rule)> = group.iter().map(|g| (*g, rule(g))).collect();
        rules.sort_by_key(|(i, r)| (r.action.rank(), *i));
        // A rule whose tests are OR'd (see `Rule::any`) becomes one entry
        // per test, as runc adds them to libseccomp.
        let list = rules
            .into_iter()
            .flat_map(|(_, r)| {
                if r.any {
                    r.conds.iter().map(|c| (r.action, vec![*c])).collect()
                } else {
                    vec![(r.action, r.conds.clone())]
                }
            })
            .collect();
        out.push((nr, Handler::Rules(list)));
    }
    out
}

/// The search tree and handlers for one ABI; expects `nr` in A.
fn abi_body(a: &mut Asm, p: &Profile, abi: Abi) -> Label {
    let default = p.default.ret();
    let mut table: Vec<Handler> = Vec::new();
    let mut index = |h: Handler| -> usize {
        match table.iter().position(|x| *x == h) {
            Some(i) => i,
            None => {
                table.push(h);
                table.len() - 1
            }
        }
    };

    // Ranges [start, next start) of syscall numbers sharing a handler.
    let mut ranges: Vec<(u32, usize)> = Vec::new();
    let push = |ranges: &mut Vec<(u32, usize)>, start: u32, h: usize| {
        // A range starting where the last one starts replaces it.
        if ranges.last().map(|r| r.0) == Some(start) {
            ranges.pop();
        }
        if ranges.last().map(|r| r.1) != Some(h) {
            ranges.push((start, h));
        }
    };
    let hs = handlers(p, abi);
    let def = index(Handler::Ret(default));
    push(&mut ranges, 0, def);
    for (nr, h) in hs {
        let i = index(h);
        push(&mut ranges, nr, i);
        if let Some(next) = nr.checked_add(1) {
            push(&mut ranges, next, def);
        }
    }
    if p.enosys {
        if let Some(next) = p.max_nr(abi).and_then(|m| m.checked_add(1)) {
            let e = index(Handler::Ret(RET_ERRNO | u32::from(ENOSYS)));
            push(&mut ranges, next, e);
        }
    }

    // Rule blocks first: they end up after the search tree.
    let mut labels: Vec<Option<Label>> = vec![None; table.len()];
    for (i, h) in table.iter().enumerate() {
        if let Handler::Rules(rules) = h {
            let mut next = a.ret(default);
            for (act, conds) in rules.iter().rev() {
                let mut ok = a.ret(act.ret());
                for c in conds.iter().rev() {
                    ok = cond(a, abi, c, ok, next);
                }
                next = ok;
            }
            labels[i] = Some(next);
        }
    }
    tree(a, &ranges, &table, &labels)
}

fn tree(
    a: &mut Asm,
    ranges: &[(u32, usize)],
    table: &[Handler],
    labels: &[Option<Label>],
) -> Label {
    match ranges {
        [] => a.ret(RET_BAD_ARCH),
        [(_, h)] => match (&table[*h], labels[*h]) {
            (Handler::Ret(k), _) => a.ret(*k),
            (_, Some(l)) => l,
            (Handler::Rules(_), None) => a.ret(RET_BAD_ARCH),
        },
        _ => {
            let mid = ranges.len() / 2;
            let right = tree(a, &ranges[mid..], table, labels);
            let left = tree(a, &ranges[..mid], table, labels);
            a.jump(JGE_K, ranges[mid].0, right, left)
        }
    }
}

pub fn generate(p: &Profile) -> Vec<sock_filter> {
    let mut a = Asm::default();
    let has = |abi| p.abis.contains(&abi);

    // (audit arch, entry) per arch block; x86_64 and x32 share one.
    let mut blocks: Vec<(u32, Label)> = Vec::new();
    for abi in [Abi::Aarch64, Abi::X86] {
        if has(abi) {
            let body = abi_body(&mut a, p, abi);
            let entry = a.load(OFF_NR, body);
            blocks.push((abi.audit_arch(), entry));
        }
    }
    if has(Abi::X86_64) || has(Abi::X32) {
        let x32 = if has(Abi::X32) {
            abi_body(&mut a, p, Abi::X32)
        } else {
            a.ret(RET_BAD_ARCH)
        };
        let x64 = if has(Abi::X86_64) {
            abi_body(&mut a, p, Abi::X86_64)
        } else {
            a.ret(RET_BAD_ARCH)
        };
        let split = a.jump(JGE_K, X32_SYSCALL_BIT, x32, x64);
        let entry = a.load(OFF_NR, split);
        blocks.push((Abi::X86_64.audit_arch(), entry));
    }

    // The native ABI's block is tested first.
    let native = Abi::native().map(Abi::audit_arch);
    blocks.sort_by_key(|(arch, _)| Some(*arch) == native);
    let mut next = a.ret(RET_BAD_ARCH);
    for (arch, entry) in blocks {
        next = a.jump(JEQ_K, arch, entry, next);
    }
    a.load(OFF_ARCH, next);
    a.finish()
}
