//! Compiler tests: every verdict is checked twice, against a hand-written
//! expectation and against the reference evaluator through the interpreter.

use super::interp::{self, SeccompData};
use super::model::*;
use super::*;
use crate::spec::Seccomp;

const X86_64: u32 = AUDIT_ARCH_X86_64;
const I386: u32 = AUDIT_ARCH_I386;
const AARCH64: u32 = AUDIT_ARCH_AARCH64;
const ALLOW: u32 = RET_ALLOW;
const KILL: u32 = RET_KILL_PROCESS;

fn errno(e: i32) -> u32 {
    RET_ERRNO | e as u32
}

fn profile(json: &str) -> Seccomp {
    serde_json::from_str(json).unwrap()
}

fn testdata(name: &str) -> Seccomp {
    let path = format!("{}/src/seccomp/testdata/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn nr(abi: Abi, name: &str) -> u32 {
    abi.lookup(name).unwrap()
}

/// Filter verdict, asserting the program is loadable and agrees with the
/// reference evaluator.
fn verdict(prog: &Program, p: &Profile, arch: u32, nr: u32, args: [u64; 6]) -> u32 {
    let got = interp::try_run(&prog.insns, &SeccompData::new(arch, nr, args)).unwrap();
    let want = reference_verdict_parsed(p, arch, nr, &args);
    assert_eq!(
        got, want,
        "arch {arch:#x} nr {nr:#x} args {args:x?}: bpf {got:#x} != reference {want:#x}"
    );
    got
}

fn check(p: &Seccomp, arch: u32, nr: u32, args: [u64; 6], want: u32) {
    let prog = compile(p).unwrap();
    assert_eq!(reference_verdict(p, arch, nr, &args).unwrap(), want);
    let parsed = Profile::parse(p).unwrap();
    assert_eq!(
        verdict(&prog, &parsed, arch, nr, args),
        want,
        "arch {arch:#x} nr {nr:#x} args {args:x?}"
    );
}

/// Deterministic pseudo-random numbers (no rand crate).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 ^ (self.0 >> 29)
    }
}

/// Compare interp(compile(p)) with the reference over many syscalls on every
/// ABI, with argument values around the profile's own constants.
fn differential(p: &Seccomp, seed: u64) -> usize {
    let prog = compile(p).unwrap();
    let parsed = Profile::parse(p).unwrap();
    interp::validate(&prog.insns).unwrap();
    let mut interesting: Vec<u64> = vec![0, 1, 0xffff_ffff, 0x1_0000_0000, u64::MAX];
    for sc in &p.syscalls {
        for a in &sc.args {
            for v in [a.value, a.value_two] {
                interesting.extend([
                    v,
                    v.wrapping_add(1),
                    v.wrapping_sub(1),
                    v ^ (1 << 32),
                    v | (7 << 32),
                ]);
            }
        }
    }
    let mut rng = Lcg(seed);
    let pick = |rng: &mut Lcg| -> u64 {
        let r = rng.next();
        match r % 4 {
            0 => r,
            1 => r & 0xffff,
            _ => interesting[(r >> 8) as usize % interesting.len()],
        }
    };
    let mut nrs: Vec<u32> = (0..600).collect();
    nrs.extend((0..600).map(|n| X32_SYSCALL_BIT + n));
    nrs.extend([0x3fff_ffff, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff]);
    let mut count = 0;
    for arch in [X86_64, I386, AARCH64, 0x4000_0028, 0] {
        for &n in &nrs {
            for _ in 0..3 {
                let args = [0; 6].map(|_: u64| pick(&mut rng));
                verdict(&prog, &parsed, arch, n, args);
                count += 1;
            }
        }
    }
    count
}

#[test]
fn every_action() {
    let cases: [(&str, Option<u32>, u32); 11] = [
        ("SCMP_ACT_ALLOW", None, ALLOW),
        ("SCMP_ACT_ERRNO", None, errno(libc::EPERM)),
        ("SCMP_ACT_ERRNO", Some(42), errno(42)),
        ("SCMP_ACT_KILL", None, RET_KILL_THREAD),
        ("SCMP_ACT_KILL_THREAD", None, RET_KILL_THREAD),
        ("SCMP_ACT_KILL_PROCESS", None, RET_KILL_PROCESS),
        ("SCMP_ACT_TRAP", None, RET_TRAP),
        ("SCMP_ACT_TRACE", None, RET_TRACE | libc::EPERM as u32),
        ("SCMP_ACT_TRACE", Some(7), RET_TRACE | 7),
        ("SCMP_ACT_LOG", None, RET_LOG),
        ("SCMP_ACT_NOTIFY", None, RET_USER_NOTIF),
    ];
    for (action, errno_ret, want) in cases {
        let errno_json = errno_ret
            .map(|e| format!(r#","errnoRet":{e}"#))
            .unwrap_or_default();
        let p = profile(&format!(
            r#"{{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/x",
                "syscalls":[{{"names":["getppid"],"action":"{action}"{errno_json}}}]}}"#
        ));
        check(&p, X86_64, nr(Abi::X86_64, "getppid"), [0; 6], want);
        check(&p, X86_64, nr(Abi::X86_64, "getpid"), [0; 6], ALLOW);
        let prog = compile(&p).unwrap();
        assert_eq!(prog.notify, action == "SCMP_ACT_NOTIFY");
        assert_eq!(prog.flags & FLAG_NEW_LISTENER != 0, prog.notify);
    }
}

#[test]
fn every_default_action() {
    for (action, errno_ret, want) in [
        ("SCMP_ACT_ERRNO", Some(13), errno(13)),
        ("SCMP_ACT_ERRNO", None, errno(libc::EPERM)),
        ("SCMP_ACT_KILL_PROCESS", None, KILL),
        ("SCMP_ACT_TRAP", None, RET_TRAP),
        ("SCMP_ACT_LOG", None, RET_LOG),
    ] {
        let errno_json = errno_ret
            .map(|e| format!(r#","defaultErrnoRet":{e}"#))
            .unwrap_or_default();
        let p = profile(&format!(
            r#"{{"defaultAction":"{action}"{errno_json},
                "syscalls":[{{"names":["getppid"],"action":"SCMP_ACT_ALLOW"}}]}}"#
        ));
        check(&p, X86_64, nr(Abi::X86_64, "getpid"), [0; 6], want);
        check(&p, X86_64, nr(Abi::X86_64, "getppid"), [0; 6], ALLOW);
    }
}

#[test]
fn bad_input_is_a_clear_error() {
    let bad = [
        (r#"{"defaultAction":"SCMP_ACT_NOPE"}"#, "unknown action"),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_FOO"}]}"#,
            "unknown action",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":1,"op":"SCMP_CMP_XX"}]}]}"#,
            "unknown argument operator",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":6,"value":1,"op":"SCMP_CMP_EQ"}]}]}"#,
            "argument index",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_X"]}"#,
            "unknown flag",
        ),
        (
            r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_Z80"]}"#,
            "unknown architecture",
        ),
        (r#"{"defaultAction":"SCMP_ACT_NOTIFY"}"#, "listenerPath"),
        (
            r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":70000}"#,
            "too large",
        ),
    ];
    for (json, msg) in bad {
        let p = profile(json);
        let e = compile(&p).unwrap_err().to_string();
        assert!(e.contains(msg), "{json}: {e}");
        assert!(reference_verdict(&p, X86_64, 0, &[0; 6]).is_err());
    }
}

#[test]
fn flags() {
    let p = profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_TSYNC",
            "SECCOMP_FILTER_FLAG_LOG","SECCOMP_FILTER_FLAG_SPEC_ALLOW",
            "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]}"#,
    );
    assert_eq!(
        compile(&p).unwrap().flags,
        FLAG_TSYNC | FLAG_LOG | FLAG_SPEC_ALLOW
    );
    let p = profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/run/agent.sock",
            "flags":["SECCOMP_FILTER_FLAG_TSYNC","SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"],
            "syscalls":[{"names":["mount"],"action":"SCMP_ACT_NOTIFY"}]}"#,
    );
    let prog = compile(&p).unwrap();
    assert!(prog.notify);
    assert_eq!(
        prog.flags,
        FLAG_TSYNC | FLAG_TSYNC_ESRCH | FLAG_NEW_LISTENER | FLAG_WAIT_KILLABLE_RECV
    );
}

fn op_profile(op: &str, value: u64, value_two: u64) -> Seccomp {
    profile(&format!(
        r#"{{"defaultAction":"SCMP_ACT_ALLOW",
            "architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32","SCMP_ARCH_AARCH64"],
            "syscalls":[{{"names":["read"],"action":"SCMP_ACT_ERRNO","errnoRet":5,
              "args":[{{"index":2,"value":{value},"valueTwo":{value_two},"op":"{op}"}}]}}]}}"#
    ))
}

#[test]
fn every_operator_on_64_bit_arguments() {
    let v: u64 = 0x0000_0005_8000_0000;
    let hit = errno(5);
    let probes = [0, v - 1, v, v + 1, v ^ (1 << 32), v & 0xffff_ffff, u64::MAX];
    let expect = |op: &str, x: u64| -> bool {
        match op {
            "SCMP_CMP_EQ" => x == v,
            "SCMP_CMP_NE" => x != v,
            "SCMP_CMP_LT" => x < v,
            "SCMP_CMP_LE" => x <= v,
            "SCMP_CMP_GT" => x > v,
            "SCMP_CMP_GE" => x >= v,
            _ => unreachable!(),
        }
    };
    for op in [
        "SCMP_CMP_EQ",
        "SCMP_CMP_NE",
        "SCMP_CMP_LT",
        "SCMP_CMP_LE",
        "SCMP_CMP_GT",
        "SCMP_CMP_GE",
    ] {
        let p = op_profile(op, v, 0);
        for x in probes {
            let want = if expect(op, x) { hit } else { ALLOW };
            for (arch, abi) in [(X86_64, Abi::X86_64), (AARCH64, Abi::Aarch64)] {
                check(&p, arch, nr(abi, "read"), [0, 0, x, 0, 0, 0], want);
            }
        }
        differential(&p, 1);
    }
    // MASKED_EQ: (arg & value) == valueTwo, on both words.
    let p = op_profile(
        "SCMP_CMP_MASKED_EQ",
        0xff00_0000_0000_00f0,
        0x1200_0000_0000_0030,
    );
    for (x, want) in [
        (0x1200_0000_0000_0030, hit),
        (0x12ff_ffff_ffff_ff3f, hit),
        (0x1300_0000_0000_0030, ALLOW),
        (0x1200_0000_0000_0040, ALLOW),
    ] {
        check(
            &p,
            X86_64,
            nr(Abi::X86_64, "read"),
            [0, 0, x, 0, 0, 0],
            want,
        );
    }
    differential(&p, 2);
}

#[test]
fn thirty_two_bit_abis_compare_the_low_word_only() {
    let read32 = nr(Abi::X86, "read");
    let readx32 = nr(Abi::X32, "read");
    // High bits in the argument are invisible on x86 and x32.
    let p = op_profile("SCMP_CMP_EQ", 9, 0);
    check(&p, I386, read32, [0, 0, 9, 0, 0, 0], errno(5));
    check(&p, I386, read32, [0, 0, 0x7_0000_0009, 0, 0, 0], errno(5));
    check(
        &p,
        X86_64,
        readx32,
        [0, 0, 0x7_0000_0009, 0, 0, 0],
        errno(5),
    );
    check(
        &p,
        X86_64,
        nr(Abi::X86_64, "read"),
        [0, 0, 0x7_0000_0009, 0, 0, 0],
        ALLOW,
    );
    // A value with high bits decides the test alone there.
    for (op, holds) in [
        ("SCMP_CMP_EQ", false),
        ("SCMP_CMP_NE", true),
        ("SCMP_CMP_LT", true),
        ("SCMP_CMP_LE", true),
        ("SCMP_CMP_GT", false),
        ("SCMP_CMP_GE", false),
    ] {
        let p = op_profile(op, 1 << 32, 0);
        let want = if holds { errno(5) } else { ALLOW };
        check(&p, I386, read32, [0, 0, 3, 0, 0, 0], want);
        check(&p, X86_64, readx32, [0, 0, u64::MAX, 0, 0, 0], want);
        differential(&p, 3);
    }
    let p = op_profile("SCMP_CMP_MASKED_EQ", u64::MAX, 1 << 32);
    check(&p, I386, read32, [0; 6], ALLOW);
    let p = op_profile("SCMP_CMP_MASKED_EQ", 0xf0, 0x30);
    check(&p, I386, read32, [0, 0, 0x1_0000_0035, 0, 0, 0], errno(5));
    differential(&p, 4);
}

#[test]
fn args_in_one_rule_are_and_rules_for_one_syscall_are_or() {
    let p = profile(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,"syscalls":[
            {"names":["socket"],"action":"SCMP_ACT_ERRNO","errnoRet":22,
             "args":[{"index":0,"value":16,"op":"SCMP_CMP_EQ"},{"index":2,"value":9,"op":"SCMP_CMP_EQ"}]},
            {"names":["socket"],"action":"SCMP_ACT_ALLOW","args":[{"index":2,"value":9,"op":"SCMP_CMP_NE"}]},
            {"names":["socket"],"action":"SCMP_ACT_ALLOW","args":[{"index":0,"value":16,"op":"SCMP_CMP_NE"}]}]}"#,
    );
    let s = nr(Abi::X86_64, "socket");
    check(&p, X86_64, s, [16, 3, 9, 0, 0, 0], errno(22));
    check(&p, X86_64, s, [16, 3, 0, 0, 0, 0], ALLOW);
    check(&p, X86_64, s, [2, 1, 9, 0, 0, 0], ALLOW);
    check(&p, X86_64, s, [2, 1, 0, 0, 0, 0], ALLOW);
    differential(&p, 5);
}

#[test]
fn tests_on_one_argument_in_one_rule_are_or() {
    // runc (libcontainer/seccomp) adds each test as a rule of its own when
    // two tests share an argument index: a0 == 1 OR a0 == 2 OR a1 == 7.
    let p = profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["personality"],"action":"SCMP_ACT_ERRNO","errnoRet":22,
             "args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"},{"index":0,"value":2,"op":"SCMP_CMP_EQ"},
                     {"index":1,"value":7,"op":"SCMP_CMP_EQ"}]}]}"#,
    );
    let s = nr(Abi::X86_64, "personality");
    check(&p, X86_64, s, [1, 0, 0, 0, 0, 0], errno(22));
    check(&p, X86_64, s, [2, 0, 0, 0, 0, 0], errno(22));
    check(&p, X86_64, s, [3, 7, 0, 0, 0, 0], errno(22));
    check(&p, X86_64, s, [3, 0, 0, 0, 0, 0], ALLOW);
    differential(&p, 8);
    // Different indexes stay AND.
    let p = profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["personality"],"action":"SCMP_ACT_ERRNO","errnoRet":22,
             "args":[{"index":0,"value":1,"op":"SCMP_CMP_EQ"},{"index":1,"value":7,"op":"SCMP_CMP_EQ"}]}]}"#,
    );
    check(&p, X86_64, s, [1, 0, 0, 0, 0, 0], ALLOW);
    check(&p, X86_64, s, [1, 7, 0, 0, 0, 0], errno(22));
}

#[test]
fn conflicting_rules_resolve_by_documented_precedence() {
    // Overlapping conditional rules: strongest action wins, order breaks ties.
    let p = profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["openat"],"action":"SCMP_ACT_LOG","args":[{"index":1,"value":0,"op":"SCMP_CMP_NE"}]},
            {"names":["openat"],"action":"SCMP_ACT_ERRNO","errnoRet":2,"args":[{"index":0,"value":5,"op":"SCMP_CMP_GE"}]},
            {"names":["openat"],"action":"SCMP_ACT_ERRNO","errnoRet":3,"args":[{"index":0,"value":7,"op":"SCMP_CMP_GE"}]},
            {"names":["openat"],"action":"SCMP_ACT_KILL_PROCESS","args":[{"index":0,"value":100,"op":"SCMP_CMP_EQ"}]}]}"#,
    );
    let o = nr(Abi::X86_64, "openat");
    check(&p, X86_64, o, [1, 1, 0, 0, 0, 0], RET_LOG);
    check(&p, X86_64, o, [6, 1, 0, 0, 0, 0], errno(2));
    check(&p, X86_64, o, [8, 1, 0, 0, 0, 0], errno(2));
    check(&p, X86_64, o, [100, 0, 0, 0, 0, 0], KILL);
    check(&p, X86_64, o, [1, 0, 0, 0, 0, 0], ALLOW);
    differential(&p, 6);

    // An unconditional rule wins over any conditional one; the first
    // unconditional one wins over later ones (as podman's setns relies on).
    let p = profile(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
            {"names":["setns"],"action":"SCMP_ACT_KILL","args":[{"index":1,"value":0,"op":"SCMP_CMP_EQ"}]},
            {"names":["setns","unshare"],"action":"SCMP_ACT_ALLOW"},
            {"names":["setns"],"action":"SCMP_ACT_ERRNO","errnoRet":1},
            {"names":["unshare"],"action":"SCMP_ACT_TRAP"}]}"#,
    );
    check(&p, X86_64, nr(Abi::X86_64, "setns"), [0; 6], ALLOW);
    check(&p, X86_64, nr(Abi::X86_64, "unshare"), [0; 6], ALLOW);
    differential(&p, 7);
}

#[test]
fn rules_equal_to_the_default_are_dropped() {
    // runc drops the ERRNO(EPERM) rule, so the LOG rule decides.
    let p = profile(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","syscalls":[
            {"names":["read"],"action":"SCMP_ACT_ERRNO","args":[{"index":0,"value":3,"op":"SCMP_CMP_EQ"}]},
            {"names":["read"],"action":"SCMP_ACT_LOG","args":[{"index":0,"value":2,"op":"SCMP_CMP_GE"}]},
            {"names":["read"],"action":"SCMP_ACT_ERRNO","errnoRet":9,"args":[{"index":0,"value":5,"op":"SCMP_CMP_EQ"}]}]}"#,
    );
    let r = nr(Abi::X86_64, "read");
    check(&p, X86_64, r, [3, 0, 0, 0, 0, 0], RET_LOG);
    check(&p, X86_64, r, [5, 0, 0, 0, 0, 0], errno(9));
    check(&p, X86_64, r, [1, 0, 0, 0, 0, 0], errno(libc::EPERM));
}

#[test]
fn architectures_and_x32() {
    // Only x86_64: i386, x32 and unknown ABIs are killed.
    let p = profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"],
            "syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","errnoRet":4}]}"#,
    );
    check(&p, X86_64, 0, [0; 6], errno(4));
    check(&p, X86_64, 1, [0; 6], ALLOW);
    check(&p, X86_64, X32_SYSCALL_BIT, [0; 6], KILL);
    check(&p, X86_64, 0xffff_ffff, [0; 6], KILL);
    check(&p, I386, 3, [0; 6], KILL);
    check(&p, AARCH64, 63, [0; 6], KILL);
    check(&p, 0x1234, 0, [0; 6], KILL);

    // x32 listed: x32 numbers use the x32 table, never x86_64 rules.
    let p = profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW",
            "architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X32","SCMP_ARCH_X86","SCMP_ARCH_AARCH64"],
            "syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","errnoRet":4},
                        {"names":["rt_sigaction"],"action":"SCMP_ACT_ERRNO","errnoRet":6}]}"#,
    );
    check(&p, X86_64, X32_SYSCALL_BIT, [0; 6], errno(4));
    check(&p, I386, 3, [0; 6], errno(4));
    check(&p, AARCH64, 63, [0; 6], errno(4));
    // x32's rt_sigaction is 512 | bit; 13 | bit is x86_64's number, not x32's.
    check(&p, X86_64, X32_SYSCALL_BIT | 512, [0; 6], errno(6));
    check(&p, X86_64, X32_SYSCALL_BIT | 13, [0; 6], ALLOW);
    check(&p, X86_64, 13, [0; 6], errno(6));
    check(&p, X86_64, 512, [0; 6], ALLOW);

    // x32 without x86_64 (the native ABI is added anyway, as libseccomp does).
    let p = profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X32"],
            "syscalls":[{"names":["read"],"action":"SCMP_ACT_ERRNO","errnoRet":4}]}"#,
    );
    check(&p, X86_64, 0, [0; 6], errno(4));
    check(&p, X86_64, X32_SYSCALL_BIT, [0; 6], errno(4));

    // Architectures without a table are accepted and reported.
    let p = profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_ARM","SCMP_ARCH_X86_64"],
            "syscalls":[{"names":["read","no_such_syscall","_llseek"],"action":"SCMP_ACT_ERRNO"}]}"#,
    );
    let prog = compile(&p).unwrap();
    assert_eq!(
        prog.ignored,
        vec!["architecture SCMP_ARCH_ARM", "no_such_syscall", "_llseek"]
    );
}

#[test]
fn enosys_above_the_profiles_newest_syscall() {
    let p = profile(
        r#"{"defaultAction":"SCMP_ACT_ERRNO","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"],
            "syscalls":[{"names":["read","write","openat","clone"],"action":"SCMP_ACT_ALLOW"}]}"#,
    );
    let max64 = nr(Abi::X86_64, "openat");
    check(&p, X86_64, nr(Abi::X86_64, "clone"), [0; 6], ALLOW);
    check(&p, X86_64, 100, [0; 6], errno(libc::EPERM));
    check(&p, X86_64, max64, [0; 6], ALLOW);
    check(&p, X86_64, max64 + 1, [0; 6], errno(libc::ENOSYS));
    check(
        &p,
        X86_64,
        nr(Abi::X86_64, "clone3"),
        [0; 6],
        errno(libc::ENOSYS),
    );
    check(&p, X86_64, 0x3fff_ffff, [0; 6], errno(libc::ENOSYS));
    check(&p, I386, nr(Abi::X86, "openat"), [0; 6], ALLOW);
    check(
        &p,
        I386,
        nr(Abi::X86, "openat") + 1,
        [0; 6],
        errno(libc::ENOSYS),
    );
    check(
        &p,
        X86_64,
        nr(Abi::X32, "openat") + 1,
        [0; 6],
        errno(libc::ENOSYS),
    );
    differential(&p, 8);

    // Permissive or already-ENOSYS defaults get no stub.
    for d in [
        r#""SCMP_ACT_ALLOW""#,
        r#""SCMP_ACT_LOG""#,
        r#""SCMP_ACT_TRACE""#,
        r#""SCMP_ACT_ERRNO","defaultErrnoRet":38"#,
    ] {
        let p = profile(&format!(
            r#"{{"defaultAction":{d},"syscalls":[{{"names":["read"],"action":"SCMP_ACT_KILL"}}]}}"#
        ));
        let want = reference_verdict(&p, X86_64, 1000, &[0; 6]).unwrap();
        assert_eq!(want, Profile::parse(&p).unwrap().default.ret());
        check(&p, X86_64, 1000, [0; 6], want);
    }

    // A rule dropped for matching the default still sets the cut-off.
    let p = profile(
        r#"{"defaultAction":"SCMP_ACT_KILL_PROCESS","syscalls":[
            {"names":["read"],"action":"SCMP_ACT_ALLOW"},
            {"names":["openat"],"action":"SCMP_ACT_KILL_PROCESS"}]}"#,
    );
    check(&p, X86_64, nr(Abi::X86_64, "openat"), [0; 6], KILL);
    check(
        &p,
        X86_64,
        nr(Abi::X86_64, "openat") + 1,
        [0; 6],
        errno(libc::ENOSYS),
    );
}

#[test]
fn podman_default_profile() {
    let p = testdata("podman.json");
    let prog = compile(&p).unwrap();
    eprintln!("podman profile: {} instructions", prog.insns.len());
    assert!(
        prog.insns.len() < 600,
        "podman profile: {} instructions",
        prog.insns.len()
    );
    let x = |n| nr(Abi::X86_64, n);
    check(&p, X86_64, x("read"), [0; 6], ALLOW);
    check(&p, X86_64, x("setns"), [0; 6], ALLOW);
    check(&p, X86_64, x("acct"), [0; 6], errno(libc::EPERM));
    check(&p, X86_64, x("kexec_load"), [0; 6], errno(libc::EPERM));
    check(
        &p,
        X86_64,
        x("socket"),
        [16, 3, 9, 0, 0, 0],
        errno(libc::EINVAL),
    );
    check(&p, X86_64, x("socket"), [2, 1, 0, 0, 0, 0], ALLOW);
    check(&p, X86_64, x("personality"), [8, 0, 0, 0, 0, 0], ALLOW);
    check(
        &p,
        X86_64,
        x("personality"),
        [0xffff_ffff, 0, 0, 0, 0, 0],
        ALLOW,
    );
    check(
        &p,
        X86_64,
        x("personality"),
        [1, 0, 0, 0, 0, 0],
        errno(libc::ENOSYS),
    );
    check(&p, X86_64, 1000, [0; 6], errno(libc::ENOSYS));
    check(&p, I386, nr(Abi::X86, "_llseek"), [0; 6], ALLOW);
    check(&p, I386, nr(Abi::X86, "socketcall"), [0; 6], ALLOW);
    check(&p, X86_64, nr(Abi::X32, "read"), [0; 6], ALLOW);
    check(&p, AARCH64, 63, [0; 6], KILL);
    let n = differential(&p, 9);
    assert!(n > 10_000);
}

#[test]
fn containerd_default_profile() {
    let p = testdata("containerd.json");
    let prog = compile(&p).unwrap();
    eprintln!("containerd profile: {} instructions", prog.insns.len());
    assert!(
        prog.insns.len() < 600,
        "containerd profile: {} instructions",
        prog.insns.len()
    );
    let x = |n| nr(Abi::X86_64, n);
    check(&p, X86_64, x("read"), [0; 6], ALLOW);
    check(&p, X86_64, x("clone"), [0x0001_0000, 0, 0, 0, 0, 0], ALLOW);
    check(
        &p,
        X86_64,
        x("clone"),
        [0x1000_0000, 0, 0, 0, 0, 0],
        errno(libc::EPERM),
    );
    check(&p, X86_64, x("clone3"), [0; 6], errno(libc::ENOSYS));
    check(&p, X86_64, x("mount"), [0; 6], errno(libc::EPERM));
    check(&p, X86_64, 1000, [0; 6], errno(libc::ENOSYS));
    differential(&p, 10);
}

#[test]
fn long_programs_use_trampolines() {
    // Hundreds of conditional rules: offsets beyond 255 must be bridged.
    let names: Vec<&str> = super::tables::X86_64
        .iter()
        .map(|(n, _)| *n)
        .take(300)
        .collect();
    let mut rules = Vec::new();
    for (i, n) in names.iter().enumerate() {
        rules.push(format!(
            r#"{{"names":["{n}"],"action":"SCMP_ACT_ERRNO","errnoRet":{e},
                "args":[{{"index":{idx},"value":{v},"op":"SCMP_CMP_GT"}}]}}"#,
            e = i % 200 + 1,
            idx = i % 6,
            v = (i as u64) << 31
        ));
    }
    let p = profile(&format!(
        r#"{{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86","SCMP_ARCH_X32"],
            "syscalls":[{}]}}"#,
        rules.join(",")
    ));
    let prog = compile(&p).unwrap();
    assert!(prog.insns.len() > 1000, "{}", prog.insns.len());
    assert!(prog
        .insns
        .iter()
        .any(|i| i.code == (libc::BPF_JMP | libc::BPF_JA) as u16));
    differential(&p, 11);
    // The kernel's checker agrees with ours.
    let status = in_child(|| if load(&prog).is_ok() { 0 } else { 1 });
    assert_eq!(exited(status), Some(0), "status {status:#x}");

    // Too many for the kernel: a clear error, not a truncated filter.
    let mut big = Vec::new();
    for (v, n) in super::tables::X86_64.iter().map(|(n, _)| *n).enumerate() {
        big.push(format!(
            r#"{{"names":["{n}"],"action":"SCMP_ACT_ERRNO",
                "args":[{{"index":0,"value":{v},"op":"SCMP_CMP_LT"}},{{"index":1,"value":1,"op":"SCMP_CMP_GT"}},
                        {{"index":2,"value":1,"op":"SCMP_CMP_LE"}},{{"index":3,"value":1,"op":"SCMP_CMP_GE"}}]}}"#
        ));
    }
    let p = profile(&format!(
        r#"{{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86","SCMP_ARCH_X32"],"syscalls":[{}]}}"#,
        big.join(",")
    ));
    let e = compile(&p).unwrap_err().to_string();
    assert!(e.contains("at most 4096"), "{e}");
}

#[test]
fn random_profiles_match_the_reference() {
    let ops = [
        "SCMP_CMP_NE",
        "SCMP_CMP_LT",
        "SCMP_CMP_LE",
        "SCMP_CMP_EQ",
        "SCMP_CMP_GE",
        "SCMP_CMP_GT",
        "SCMP_CMP_MASKED_EQ",
    ];
    let actions = [
        "SCMP_ACT_ALLOW",
        "SCMP_ACT_ERRNO",
        "SCMP_ACT_KILL",
        "SCMP_ACT_KILL_PROCESS",
        "SCMP_ACT_TRAP",
        "SCMP_ACT_TRACE",
        "SCMP_ACT_LOG",
    ];
    let names = [
        "read",
        "write",
        "openat",
        "socket",
        "personality",
        "clone",
        "_llseek",
        "mmap2",
        "rt_sigaction",
        "clone3",
        "mseal",
    ];
    let mut rng = Lcg(12345);
    for round in 0..40 {
        let mut rules = Vec::new();
        for _ in 0..(rng.next() % 8 + 1) {
            let mut args = Vec::new();
            for _ in 0..(rng.next() % 3) {
                let v = match rng.next() % 3 {
                    0 => rng.next() % 4,
                    1 => rng.next() & 0xffff_ffff,
                    _ => rng.next(),
                };
                args.push(format!(
                    r#"{{"index":{},"value":{v},"valueTwo":{},"op":"{}"}}"#,
                    rng.next() % 6,
                    rng.next() % 4,
                    ops[(rng.next() % 7) as usize]
                ));
            }
            let n1 = names[(rng.next() % names.len() as u64) as usize];
            let n2 = names[(rng.next() % names.len() as u64) as usize];
            rules.push(format!(
                r#"{{"names":["{n1}","{n2}"],"action":"{}","errnoRet":{},"args":[{}]}}"#,
                actions[(rng.next() % 7) as usize],
                rng.next() % 3 + 1,
                args.join(",")
            ));
        }
        let default = actions[(rng.next() % 7) as usize];
        let p = profile(&format!(
            r#"{{"defaultAction":"{default}","defaultErrnoRet":{},
                "architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32","SCMP_ARCH_AARCH64"],
                "syscalls":[{}]}}"#,
            rng.next() % 3 + 1,
            rules.join(",")
        ));
        differential(&p, round);
    }
}

#[test]
fn tables_are_sorted_and_sane() {
    for abi in Abi::ALL {
        let t = abi.table();
        assert!(t.windows(2).all(|w| w[0].0 < w[1].0), "{abi:?} not sorted");
        assert!(t.len() > 300, "{abi:?}");
    }
    assert_eq!(Abi::X86_64.lookup("read"), Some(0));
    assert_eq!(Abi::X86_64.lookup("clone3"), Some(435));
    assert_eq!(Abi::X86_64.lookup("listns"), Some(470));
    assert_eq!(Abi::X86.lookup("socketcall"), Some(102));
    assert_eq!(Abi::X86.lookup("map_shadow_stack"), None);
    assert_eq!(Abi::X32.lookup("rt_sigaction"), Some(X32_SYSCALL_BIT | 512));
    assert_eq!(Abi::X32.lookup("mseal"), Some(X32_SYSCALL_BIT | 462));
    assert_eq!(Abi::Aarch64.lookup("openat"), Some(56));
    assert_eq!(Abi::Aarch64.lookup("open"), None);
    assert_eq!(Abi::Aarch64.lookup("renameat"), Some(38));
    assert_eq!(Abi::Aarch64.lookup("fstat"), Some(80));
}

// ---- the real kernel ----

/// Run `f` in a forked child (which may load filters) and return its exit
/// status. The child only makes raw syscalls: other test threads may hold
/// allocator locks across fork.
fn in_child(f: impl FnOnce() -> i32) -> i32 {
    // SAFETY: the child runs `f` (syscalls only) and _exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let code = f();
        // SAFETY: leaving the child without running the parent's destructors.
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    status
}

fn exited(status: i32) -> Option<i32> {
    libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status))
}

fn raw_errno(r: libc::c_long) -> i32 {
    if r == -1 {
        // SAFETY: reading this thread's errno.
        unsafe { *libc::__errno_location() }
    } else {
        0
    }
}

#[test]
fn kernel_loads_and_enforces_a_filter() {
    let p = profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[
            {"names":["getppid"],"action":"SCMP_ACT_ERRNO","errnoRet":42},
            {"names":["uname"],"action":"SCMP_ACT_ERRNO","errnoRet":43,
             "args":[{"index":0,"value":0,"op":"SCMP_CMP_EQ"}]}]}"#,
    );
    let prog = compile(&p).unwrap();
    let status = in_child(|| {
        // SAFETY: plain syscalls.
        unsafe {
            if load(&prog).is_err() {
                return 10;
            }
            if raw_errno(libc::syscall(libc::SYS_getppid)) != 42 {
                return 11;
            }
            if raw_errno(libc::syscall(libc::SYS_uname, 0usize)) != 43 {
                return 12;
            }
            // uname(NULL) with a non-zero pointer is not matched: EFAULT.
            if raw_errno(libc::syscall(libc::SYS_uname, 8usize)) != libc::EFAULT {
                return 13;
            }
            if libc::syscall(libc::SYS_getpid) <= 0 {
                return 14;
            }
        }
        0
    });
    assert_eq!(exited(status), Some(0), "status {status:#x}");
}

#[test]
fn kernel_accepts_the_podman_profile() {
    let p = testdata("podman.json");
    let prog = compile(&p).unwrap();
    let status = in_child(|| {
        // SAFETY: plain syscalls.
        unsafe {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || load(&prog).is_err() {
                return 10;
            }
            if raw_errno(libc::syscall(libc::SYS_acct, 0usize)) != libc::EPERM {
                return 11;
            }
            if raw_errno(libc::syscall(1000)) != libc::ENOSYS {
                return 12;
            }
            if raw_errno(libc::syscall(libc::SYS_socket, 16, 3, 9)) != libc::EINVAL {
                return 13;
            }
            if libc::syscall(libc::SYS_getppid) <= 0 {
                return 14;
            }
        }
        0
    });
    assert_eq!(exited(status), Some(0), "status {status:#x}");
}

#[test]
fn kernel_kills_other_abis() {
    // Default KILL_PROCESS: a disallowed syscall ends the child by SIGSYS.
    let p = profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["getppid"],"action":"SCMP_ACT_KILL_PROCESS"}]}"#,
    );
    let prog = compile(&p).unwrap();
    let status = in_child(|| {
        if load(&prog).is_err() {
            return 10;
        }
        // SAFETY: plain syscall; the filter kills us here.
        unsafe { libc::syscall(libc::SYS_getppid) };
        0
    });
    assert!(
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGSYS,
        "status {status:#x}"
    );
}

#[test]
fn kernel_notify_listener_works() {
    use rustix::net::{
        AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
        SendAncillaryMessage, SendFlags, SocketFlags, SocketType,
    };
    use std::mem::MaybeUninit;
    use std::os::fd::{AsFd, AsRawFd, OwnedFd};

    let p = profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","listenerPath":"/unused",
            "syscalls":[{"names":["getppid"],"action":"SCMP_ACT_NOTIFY"}]}"#,
    );
    let prog = compile(&p).unwrap();
    assert!(prog.notify);
    let (ours, theirs) = rustix::net::socketpair(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::CLOEXEC,
        None,
    )
    .unwrap();

    // SAFETY: the child only makes syscalls and _exits.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let code = (|| {
            let Ok(Some(fd)) = load(&prog) else { return 10 };
            let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
            let mut cmsg = SendAncillaryBuffer::new(&mut space);
            let fds = [fd.as_fd()];
            cmsg.push(SendAncillaryMessage::ScmRights(&fds));
            if rustix::net::sendmsg(
                &theirs,
                &[std::io::IoSlice::new(b"x")],
                &mut cmsg,
                SendFlags::empty(),
            )
            .is_err()
            {
                return 11;
            }
            drop(fd);
            // SAFETY: plain syscall, answered by the parent.
            let r = unsafe { libc::syscall(libc::SYS_getppid) };
            if r != 4242 {
                return 12;
            }
            0
        })();
        // SAFETY: leaving the child.
        unsafe { libc::_exit(code) };
    }
    drop(theirs);

    let mut buf = [0u8; 1];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut cmsg = RecvAncillaryBuffer::new(&mut space);
    rustix::net::recvmsg(
        &ours,
        &mut [std::io::IoSliceMut::new(&mut buf)],
        &mut cmsg,
        RecvFlags::empty(),
    )
    .unwrap();
    let mut listener: Option<OwnedFd> = None;
    for m in cmsg.drain() {
        if let RecvAncillaryMessage::ScmRights(mut it) = m {
            listener = it.next();
        }
    }
    let listener = listener.expect("listener fd");

    // SAFETY: zeroed C structs filled by the kernel / by us.
    let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    let r = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_RECV,
            &mut req,
        )
    };
    assert_eq!(r, 0, "NOTIF_RECV: {}", std::io::Error::last_os_error());
    assert_eq!(req.pid as i32, pid);
    assert_eq!(req.data.nr as libc::c_long, libc::SYS_getppid);
    let mut resp: libc::seccomp_notif_resp = unsafe { std::mem::zeroed() };
    resp.id = req.id;
    resp.val = 4242;
    let r = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SEND,
            &mut resp,
        )
    };
    assert_eq!(r, 0, "NOTIF_SEND: {}", std::io::Error::last_os_error());

    let mut status = 0;
    // SAFETY: waiting for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert_eq!(exited(status), Some(0), "status {status:#x}");
}

/// An i386 syscall from this x86_64 process (`int 0x80`), no arguments.
#[cfg(target_arch = "x86_64")]
fn int80(nr: u32) -> i32 {
    let ret: i32;
    // SAFETY: a compat syscall without pointer arguments; the kernel only
    // writes eax and may clobber r8-r11.
    unsafe {
        std::arch::asm!("int 0x80", inlateout("eax") nr as i32 => ret,
            out("r8") _, out("r9") _, out("r10") _, out("r11") _, options(nostack));
    }
    ret
}

#[cfg(target_arch = "x86_64")]
#[test]
fn kernel_dispatches_on_the_i386_abi() {
    const I386_GETPID: u32 = 20;
    const I386_GETPPID: u32 = 64;
    // Without IA32 emulation there is nothing to test.
    let probe = in_child(|| {
        // SAFETY: plain syscall.
        let pid = unsafe { libc::syscall(libc::SYS_getpid) } as i32;
        if int80(I386_GETPID) == pid {
            0
        } else {
            1
        }
    });
    if exited(probe) != Some(0) {
        eprintln!("no IA32 emulation (status {probe:#x}), skipping");
        return;
    }

    let p = profile(
        r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86"],
            "syscalls":[{"names":["getppid"],"action":"SCMP_ACT_ERRNO","errnoRet":7}]}"#,
    );
    let prog = compile(&p).unwrap();
    let status = in_child(|| {
        if load(&prog).is_err() {
            return 10;
        }
        if int80(I386_GETPPID) != -7 {
            return 11;
        }
        // SAFETY: plain syscall.
        if raw_errno(unsafe { libc::syscall(libc::SYS_getppid) }) != 7 {
            return 12;
        }
        if int80(I386_GETPID) <= 0 {
            return 13;
        }
        0
    });
    assert_eq!(exited(status), Some(0), "status {status:#x}");

    // x86 not listed: an i386 syscall is a bad arch and kills the process.
    let p = profile(r#"{"defaultAction":"SCMP_ACT_ALLOW","architectures":["SCMP_ARCH_X86_64"]}"#);
    let prog = compile(&p).unwrap();
    let status = in_child(|| {
        if load(&prog).is_err() {
            return 10;
        }
        int80(I386_GETPID);
        0
    });
    assert!(
        libc::WIFSIGNALED(status) && libc::WTERMSIG(status) == libc::SIGSYS,
        "status {status:#x}"
    );
}
