//! Differential fuzzer for the seccomp compiler: a structured profile is
//! compiled to classic BPF, the in-repo interpreter runs the program on
//! syscalls (generated ones, and ones aimed at each rule's names and
//! argument tests), and every verdict must equal the reference evaluator's
//! direct reading of the profile. The program must also pass the kernel's
//! loader checks, and compile must fail exactly when the model does (or
//! for length).
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use runway::seccomp::interp::{self, SeccompData};
use runway::seccomp::model::{
    Abi, Cond, Op, Profile, AUDIT_ARCH_AARCH64, AUDIT_ARCH_I386, AUDIT_ARCH_X86_64, X32_SYSCALL_BIT,
};
use runway::seccomp::{compile, reference_verdict, Reference};
use runway::spec::{Seccomp, Syscall, SyscallArg};

#[derive(Arbitrary, Debug, Clone, Copy)]
enum ActionSel {
    Kill,
    KillThread,
    KillProcess,
    Trap,
    Errno,
    Trace,
    Log,
    Allow,
    Notify,
    Bogus,
}

impl ActionSel {
    fn name(self) -> &'static str {
        match self {
            ActionSel::Kill => "SCMP_ACT_KILL",
            ActionSel::KillThread => "SCMP_ACT_KILL_THREAD",
            ActionSel::KillProcess => "SCMP_ACT_KILL_PROCESS",
            ActionSel::Trap => "SCMP_ACT_TRAP",
            ActionSel::Errno => "SCMP_ACT_ERRNO",
            ActionSel::Trace => "SCMP_ACT_TRACE",
            ActionSel::Log => "SCMP_ACT_LOG",
            ActionSel::Allow => "SCMP_ACT_ALLOW",
            ActionSel::Notify => "SCMP_ACT_NOTIFY",
            ActionSel::Bogus => "SCMP_ACT_BOGUS",
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum ErrnoSel {
    Absent,
    Small(u8),
    Raw(u32),
}

impl ErrnoSel {
    fn get(self) -> Option<u32> {
        match self {
            ErrnoSel::Absent => None,
            ErrnoSel::Small(v) => Some(u32::from(v)),
            ErrnoSel::Raw(v) => Some(v),
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum ArchSel {
    X86_64,
    X86,
    X32,
    Aarch64,
    Arm,
    Bogus,
}

impl ArchSel {
    fn name(self) -> &'static str {
        match self {
            ArchSel::X86_64 => "SCMP_ARCH_X86_64",
            ArchSel::X86 => "SCMP_ARCH_X86",
            ArchSel::X32 => "SCMP_ARCH_X32",
            ArchSel::Aarch64 => "SCMP_ARCH_AARCH64",
            ArchSel::Arm => "SCMP_ARCH_ARM",
            ArchSel::Bogus => "SCMP_ARCH_BOGUS",
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum FlagSel {
    Tsync,
    Log,
    SpecAllow,
    WaitKillableRecv,
    Bogus,
}

impl FlagSel {
    fn name(self) -> &'static str {
        match self {
            FlagSel::Tsync => "SECCOMP_FILTER_FLAG_TSYNC",
            FlagSel::Log => "SECCOMP_FILTER_FLAG_LOG",
            FlagSel::SpecAllow => "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
            FlagSel::WaitKillableRecv => "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV",
            FlagSel::Bogus => "SECCOMP_FILTER_FLAG_BOGUS",
        }
    }
}

/// Names that exist on some ABIs only, newest ones (ENOSYS cut-off),
/// multiplexers, and names no table has.
const SPECIAL_NAMES: &[&str] = &[
    "read",
    "write",
    "openat",
    "clone",
    "clone3",
    "socket",
    "socketcall",
    "ipc",
    "_llseek",
    "mmap2",
    "arch_prctl",
    "personality",
    "mseal",
    "futex_waitv",
    "rt_sigaction",
    "no_such_syscall",
    "",
];

#[derive(Arbitrary, Debug, Clone, Copy)]
enum NameSel {
    Special(u8),
    Table { abi: u8, idx: u16 },
}

impl NameSel {
    fn name(self) -> String {
        match self {
            NameSel::Special(i) => SPECIAL_NAMES[usize::from(i) % SPECIAL_NAMES.len()].into(),
            NameSel::Table { abi, idx } => {
                let t = Abi::ALL[usize::from(abi) % Abi::ALL.len()].table();
                t[usize::from(idx) % t.len()].0.into()
            }
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum OpSel {
    Ne,
    Lt,
    Le,
    Eq,
    Ge,
    Gt,
    MaskedEq,
    Bogus,
}

impl OpSel {
    fn name(self) -> &'static str {
        match self {
            OpSel::Ne => "SCMP_CMP_NE",
            OpSel::Lt => "SCMP_CMP_LT",
            OpSel::Le => "SCMP_CMP_LE",
            OpSel::Eq => "SCMP_CMP_EQ",
            OpSel::Ge => "SCMP_CMP_GE",
            OpSel::Gt => "SCMP_CMP_GT",
            OpSel::MaskedEq => "SCMP_CMP_MASKED_EQ",
            OpSel::Bogus => "SCMP_CMP_BOGUS",
        }
    }
}

/// 64-bit values shaped to hit word boundaries: the BPF compares high and
/// low 32-bit halves separately.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum ValSel {
    Small(u8),
    Word(u32),
    Split { hi: u8, lo: u32 },
    HighOnly(u32),
    NearMax(u8),
    Raw(u64),
}

impl ValSel {
    fn get(self) -> u64 {
        match self {
            ValSel::Small(v) => u64::from(v),
            ValSel::Word(v) => u64::from(v),
            ValSel::Split { hi, lo } => u64::from(hi) << 32 | u64::from(lo),
            ValSel::HighOnly(v) => u64::from(v) << 32,
            ValSel::NearMax(v) => u64::MAX - u64::from(v),
            ValSel::Raw(v) => v,
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
struct ArgIn {
    index: u8,
    op: OpSel,
    value: ValSel,
    value_two: ValSel,
}

#[derive(Arbitrary, Debug, Clone)]
struct RuleIn {
    names: Vec<NameSel>,
    action: ActionSel,
    errno: ErrnoSel,
    args: Vec<ArgIn>,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum ArchProbe {
    X86_64,
    X32,
    I386,
    Aarch64,
    Raw(u32),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum NrSel {
    /// The number of a name some rule uses, on the probe's ABI, moved by
    /// `delta`.
    RuleName {
        rule: u8,
        name: u8,
        delta: i8,
    },
    Small(u16),
    Raw(u32),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum ProbeVal {
    /// A rule's constant, moved by `delta`, maybe with the high word
    /// flipped.
    FromRule {
        rule: u8,
        arg: u8,
        second: bool,
        delta: i8,
        flip_high: bool,
    },
    Val(ValSel),
}

#[derive(Arbitrary, Debug, Clone, Copy)]
struct Probe {
    arch: ArchProbe,
    nr: NrSel,
    args: [ProbeVal; 6],
}

#[derive(Arbitrary, Debug)]
struct Input {
    default: ActionSel,
    default_errno: ErrnoSel,
    arches: Vec<ArchSel>,
    flags: Vec<FlagSel>,
    listener: bool,
    rules: Vec<RuleIn>,
    probes: Vec<Probe>,
}

fn profile(inp: &Input) -> Seccomp {
    Seccomp {
        default_action: inp.default.name().into(),
        default_errno_ret: inp.default_errno.get(),
        architectures: inp.arches.iter().map(|a| a.name().into()).collect(),
        flags: inp.flags.iter().map(|f| f.name().into()).collect(),
        listener_path: inp.listener.then(|| "/run/fuzz.sock".into()),
        listener_metadata: None,
        syscalls: inp
            .rules
            .iter()
            .map(|r| Syscall {
                names: r.names.iter().map(|n| n.name()).collect(),
                action: r.action.name().into(),
                errno_ret: r.errno.get(),
                args: r
                    .args
                    .iter()
                    .map(|a| SyscallArg {
                        // 6 is out of range: exercised, but rarely.
                        index: u32::from(a.index % 7),
                        value: a.value.get(),
                        value_two: a.value_two.get(),
                        op: a.op.name().into(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

fn resolve_arch(a: ArchProbe) -> (u32, Option<Abi>) {
    match a {
        ArchProbe::X86_64 => (AUDIT_ARCH_X86_64, Some(Abi::X86_64)),
        ArchProbe::X32 => (AUDIT_ARCH_X86_64, Some(Abi::X32)),
        ArchProbe::I386 => (AUDIT_ARCH_I386, Some(Abi::X86)),
        ArchProbe::Aarch64 => (AUDIT_ARCH_AARCH64, Some(Abi::Aarch64)),
        ArchProbe::Raw(v) => (v, None),
    }
}

fn resolve_nr(p: &Seccomp, abi: Option<Abi>, n: NrSel) -> u32 {
    match n {
        NrSel::RuleName { rule, name, delta } => {
            let base = p
                .syscalls
                .get(usize::from(rule) % p.syscalls.len().max(1))
                .and_then(|r| r.names.get(usize::from(name) % r.names.len().max(1)))
                .and_then(|n| abi.and_then(|abi| abi.lookup(n)))
                .unwrap_or(0);
            base.wrapping_add_signed(i32::from(delta))
        }
        NrSel::Small(v) => match abi {
            Some(Abi::X32) => X32_SYSCALL_BIT | u32::from(v),
            _ => u32::from(v),
        },
        NrSel::Raw(v) => v,
    }
}

fn resolve_val(p: &Seccomp, v: ProbeVal) -> u64 {
    match v {
        ProbeVal::FromRule {
            rule,
            arg,
            second,
            delta,
            flip_high,
        } => {
            let base = p
                .syscalls
                .get(usize::from(rule) % p.syscalls.len().max(1))
                .and_then(|r| r.args.get(usize::from(arg) % r.args.len().max(1)))
                .map(|a| if second { a.value_two } else { a.value })
                .unwrap_or(0);
            let v = base.wrapping_add_signed(i64::from(delta));
            if flip_high {
                v ^ 0xdead_0001_0000_0000
            } else {
                v
            }
        }
        ProbeVal::Val(v) => v.get(),
    }
}

/// An argument value for which `c` holds, if one is easy to name.
fn satisfying(c: &Cond) -> u64 {
    match c.op {
        Op::Eq | Op::Le | Op::Ge => c.value,
        Op::Ne | Op::Gt => c.value.wrapping_add(1),
        Op::Lt => c.value.wrapping_sub(1),
        Op::MaskedEq => c.value_two,
    }
}

struct Checker<'a> {
    prog: interp::Checked<'a>,
    oracle: Reference<'a>,
}

impl Checker<'_> {
    fn check(&self, arch: u32, nr: u32, args: [u64; 6]) {
        let got = match self.prog.run(&SeccompData::new(arch, nr, args)) {
            Ok(v) => v,
            Err(e) => panic!("filter faults on arch {arch:#x} nr {nr:#x}: {e}"),
        };
        let want = self.oracle.verdict(arch, nr, &args);
        assert_eq!(
            got, want,
            "arch {arch:#x} nr {nr:#x} args {args:#x?}: bpf {got:#x} != reference {want:#x}"
        );
    }
}

fuzz_target!(|inp: Input| {
    if inp.rules.len() > 48
        || inp
            .rules
            .iter()
            .any(|r| r.names.len() > 8 || r.args.len() > 6)
    {
        return;
    }
    let p = profile(&inp);
    let compiled = compile(&p);
    let parsed = Profile::parse(&p);
    let (prog, parsed) = match (compiled, parsed) {
        (Ok(prog), Ok(parsed)) => (prog, parsed),
        (Err(_), Err(_)) => {
            assert!(reference_verdict(&p, AUDIT_ARCH_X86_64, 0, &[0; 6]).is_err());
            return;
        }
        (Err(e), Ok(_)) => {
            assert!(
                e.to_string().contains("instructions"),
                "compile refused a profile the model accepts: {e}"
            );
            return;
        }
        (Ok(_), Err(e)) => panic!("compile accepted a profile the model refuses: {e}"),
    };
    let c = Checker {
        prog: match interp::Checked::new(&prog.insns) {
            Ok(c) => c,
            Err(e) => panic!("compiled program fails the kernel's checks: {e}"),
        },
        oracle: Reference::new(&parsed),
    };
    assert_eq!(
        reference_verdict(&p, AUDIT_ARCH_X86_64, 0, &[0; 6]).ok(),
        Some(c.oracle.verdict(AUDIT_ARCH_X86_64, 0, &[0; 6]))
    );

    for probe in inp.probes.iter().take(64) {
        let (arch, abi) = resolve_arch(probe.arch);
        let nr = resolve_nr(&p, abi.or_else(|| Abi::of(arch, 0)), probe.nr);
        let args = probe.args.map(|v| resolve_val(&p, v));
        c.check(arch, nr, args);
    }

    // Aimed probes: every rule's names on every filtered ABI, with the
    // argument tests met, and with each one in turn pushed off by one or
    // across the 32-bit boundary.
    for (ri, rule) in parsed.rules.iter().enumerate().take(16) {
        let mut met = [0u64; 6];
        for cond in &rule.conds {
            met[usize::from(cond.index)] = satisfying(cond);
        }
        for name in rule.names.iter().take(4) {
            for &abi in &parsed.abis {
                let Some(nr) = abi.lookup(name) else { continue };
                let arch = abi.audit_arch();
                c.check(arch, nr, met);
                c.check(arch, nr, [0; 6]);
                for cond in &rule.conds {
                    let i = usize::from(cond.index);
                    for v in [
                        met[i].wrapping_add(1),
                        met[i].wrapping_sub(1),
                        met[i] ^ (1 << 32),
                        !met[i],
                    ] {
                        let mut a = met;
                        a[i] = v;
                        c.check(arch, nr, a);
                    }
                }
                if ri == 0 {
                    c.check(arch, nr.wrapping_add(1), met);
                }
            }
        }
    }
    // The ENOSYS cut-off and the ends of each ABI's number space.
    for &abi in &parsed.abis {
        let arch = abi.audit_arch();
        let base = if abi == Abi::X32 { X32_SYSCALL_BIT } else { 0 };
        let mut nrs = vec![base, base.wrapping_sub(1), base | 0x3fff_ffff, u32::MAX];
        if let Some(max) = parsed.max_nr(abi) {
            nrs.extend([max, max.wrapping_add(1), max.wrapping_sub(1)]);
        }
        for nr in nrs {
            c.check(arch, nr, [0; 6]);
        }
    }
});
