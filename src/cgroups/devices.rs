//! The device cgroup: which device nodes a container may open or mknod.
//!
//! The config's rules are replayed the way the v1 kernel controller would
//! (a wildcard rule resets everything, others add or remove exceptions) to
//! get one default verdict plus exceptions. v1 writes that result to
//! devices.deny/devices.allow; v2 compiles it to an eBPF program
//! (BPF_PROG_TYPE_CGROUP_DEVICE) attached to the cgroup directory.
//!
//! Like runc 1.1, the default rules are appended after the config's own:
//! mknod of any char/block device, and rwm on /dev/null, zero, full,
//! random, urandom, tty, ptmx, /dev/pts/*, and /dev/net/tun. /dev/console
//! (5:1) is not in the list, again as runc: the container's console is a
//! pty bind mount (136:*), already allowed.

use super::files;
use crate::bail;
use crate::error::{Error, Result};
use crate::spec::DeviceCgroup;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const ACC_MKNOD: u8 = 1;
const ACC_READ: u8 = 2;
const ACC_WRITE: u8 = 4;
const ACC_ALL: u8 = ACC_MKNOD | ACC_READ | ACC_WRITE;

/// One device exception: type 'a', 'c' or 'b'; None means any number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub typ: char,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// ACC_* bits.
    pub access: u8,
}

impl Rule {
    /// The v1 file syntax: "c 1:3 rwm".
    pub fn v1_string(&self) -> String {
        let num = |n: Option<u32>| n.map_or("*".to_string(), |v| v.to_string());
        format!(
            "{} {}:{} {}",
            self.typ,
            num(self.major),
            num(self.minor),
            access_string(self.access)
        )
    }
}

fn access_string(a: u8) -> String {
    let mut s = String::new();
    if a & ACC_READ != 0 {
        s.push('r');
    }
    if a & ACC_WRITE != 0 {
        s.push('w');
    }
    if a & ACC_MKNOD != 0 {
        s.push('m');
    }
    s
}

/// The net effect of a rule list: a default, and exceptions to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRules {
    pub default_allow: bool,
    pub exceptions: Vec<Rule>,
}

/// runc's default allow list, appended after the config's rules.
const DEFAULTS: &[(char, Option<u32>, Option<u32>, u8)] = &[
    ('c', None, None, ACC_MKNOD),
    ('b', None, None, ACC_MKNOD),
    ('c', Some(1), Some(3), ACC_ALL),
    ('c', Some(1), Some(8), ACC_ALL),
    ('c', Some(1), Some(7), ACC_ALL),
    ('c', Some(5), Some(0), ACC_ALL),
    ('c', Some(1), Some(5), ACC_ALL),
    ('c', Some(1), Some(9), ACC_ALL),
    ('c', Some(136), None, ACC_ALL),
    ('c', Some(5), Some(2), ACC_ALL),
    ('c', Some(10), Some(200), ACC_ALL),
];

fn parse_rule(d: &DeviceCgroup) -> Result<(bool, Rule)> {
    let typ = match d.typ.as_deref() {
        None | Some("") | Some("a") => 'a',
        Some("c") => 'c',
        Some("b") => 'b',
        Some(t) => bail!("linux.resources.devices: invalid type {t:?}"),
    };
    let num = |v: Option<i64>, what: &str| -> Result<Option<u32>> {
        match v {
            None => Ok(None),
            Some(-1) => Ok(None),
            Some(n) if (0..=u32::MAX as i64).contains(&n) => Ok(Some(n as u32)),
            Some(n) => Err(Error::msg(format!(
                "linux.resources.devices: invalid {what} {n}"
            ))),
        }
    };
    let mut access = 0;
    let acc = d.access.as_deref().unwrap_or("rwm");
    for c in acc.chars() {
        access |= match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => bail!("linux.resources.devices: invalid access {acc:?}"),
        };
    }
    if acc.is_empty() {
        access = ACC_ALL;
    }
    Ok((
        d.allow,
        Rule {
            typ,
            major: num(d.major, "major")?,
            minor: num(d.minor, "minor")?,
            access,
        },
    ))
}

/// The effective device policy for the config's rules plus the defaults.
/// With no rules at all the kernel default (allow everything) would
/// remain; runc starts from deny-all, and so do we.
pub fn effective_rules(config: &[DeviceCgroup]) -> Result<DeviceRules> {
    let mut st = DeviceRules {
        default_allow: false,
        exceptions: Vec::new(),
    };
    let mut rules = Vec::with_capacity(config.len() + DEFAULTS.len());
    for d in config {
        rules.push(parse_rule(d)?);
    }
    for &(typ, major, minor, access) in DEFAULTS {
        rules.push((
            true,
            Rule {
                typ,
                major,
                minor,
                access,
            },
        ));
    }
    for (allow, r) in rules {
        // "a" always means every device, whatever numbers it carries.
        if r.typ == 'a' {
            if r.access == ACC_ALL {
                st.default_allow = allow;
                st.exceptions.clear();
                continue;
            }
            // A partial-access wildcard is an exception for both kinds.
            for typ in ['c', 'b'] {
                apply_one(
                    &mut st,
                    allow,
                    Rule {
                        typ,
                        major: None,
                        minor: None,
                        access: r.access,
                    },
                );
            }
            continue;
        }
        apply_one(&mut st, allow, r);
    }
    Ok(st)
}

/// A rule with the default's verdict removes access from a matching
/// exception; one with the opposite verdict adds an exception.
fn apply_one(st: &mut DeviceRules, allow: bool, r: Rule) {
    let same = |e: &Rule| e.typ == r.typ && e.major == r.major && e.minor == r.minor;
    if allow == st.default_allow {
        st.exceptions.retain_mut(|e| {
            if same(e) {
                e.access &= !r.access;
            }
            e.access != 0
        });
    } else if let Some(e) = st.exceptions.iter_mut().find(|e| same(e)) {
        e.access |= r.access;
    } else {
        st.exceptions.push(r);
    }
}

/// v1: reset to the default, then write each exception.
pub fn apply_v1(dir: &str, rules: &DeviceRules) -> Result<()> {
    let (reset, except) = if rules.default_allow {
        ("devices.allow", "devices.deny")
    } else {
        ("devices.deny", "devices.allow")
    };
    // Skip the reset when the list already says exactly this, so an update
    // never opens a window where a running container loses its devices.
    if files::read(dir, "devices.list").is_ok_and(|l| v1_list_matches(&l, rules)) {
        return Ok(());
    }
    files::write(dir, reset, "a")?;
    let lines: Vec<String> = rules.exceptions.iter().map(|e| e.v1_string()).collect();
    files::write_each(dir, except, &lines)
}

fn v1_list_matches(list: &str, rules: &DeviceRules) -> bool {
    if rules.default_allow {
        return rules.exceptions.is_empty() && list.trim() == "a *:* rwm";
    }
    let mut have: Vec<String> = list.lines().map(|l| l.trim().to_string()).collect();
    let mut want: Vec<String> = rules.exceptions.iter().map(Rule::v1_string).collect();
    have.sort();
    want.sort();
    have == want
}

// ---- eBPF ----

/// struct bpf_insn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;

const LDX_MEM_W: u8 = 0x61;
const ALU64_AND_K: u8 = 0x57;
const ALU64_RSH_K: u8 = 0x77;
const ALU64_MOV_K: u8 = 0xb7;
const ALU64_MOV_X: u8 = 0xbf;
const JMP_JEQ_K: u8 = 0x15;
const JMP_JNE_K: u8 = 0x55;
const JMP_EXIT: u8 = 0x95;

fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | (dst & 0x0f),
        off,
        imm,
    }
}

/// The program for `rules`. Context is struct bpf_cgroup_dev_ctx
/// { u32 access_type (access << 16 | type); u32 major; u32 minor; }; the
/// result is 1 to allow, 0 to deny.
pub fn program(rules: &DeviceRules) -> Vec<Insn> {
    let mut p = vec![
        insn(LDX_MEM_W, R2, R1, 0, 0),
        insn(ALU64_AND_K, R2, 0, 0, 0xffff), // r2 = type (1 block, 2 char)
        insn(LDX_MEM_W, R3, R1, 0, 0),
        insn(ALU64_RSH_K, R3, 0, 0, 16), // r3 = access bits
        insn(LDX_MEM_W, R4, R1, 4, 0),   // r4 = major
        insn(LDX_MEM_W, R5, R1, 8, 0),   // r5 = minor
    ];
    let verdict = i32::from(!rules.default_allow);
    for e in &rules.exceptions {
        // Tests that fail jump to the next block; collect them and patch
        // the offsets once the block's length is known.
        let mut block: Vec<Insn> = Vec::new();
        let mut jumps: Vec<usize> = Vec::new();
        match e.typ {
            'c' => {
                jumps.push(block.len());
                block.push(insn(JMP_JNE_K, R2, 0, 0, 2));
            }
            'b' => {
                jumps.push(block.len());
                block.push(insn(JMP_JNE_K, R2, 0, 0, 1));
            }
            _ => {}
        }
        if e.access != ACC_ALL {
            block.push(insn(ALU64_MOV_X, R1, R3, 0, 0));
            if rules.default_allow {
                // A deny exception hits if any requested bit is denied.
                block.push(insn(ALU64_AND_K, R1, 0, 0, i32::from(e.access)));
                jumps.push(block.len());
                block.push(insn(JMP_JEQ_K, R1, 0, 0, 0));
            } else {
                // An allow exception hits only if it covers every bit.
                block.push(insn(ALU64_AND_K, R1, 0, 0, i32::from(!e.access & ACC_ALL)));
                jumps.push(block.len());
                block.push(insn(JMP_JNE_K, R1, 0, 0, 0));
            }
        }
        if let Some(m) = e.major {
            jumps.push(block.len());
            block.push(insn(JMP_JNE_K, R4, 0, 0, m as i32));
        }
        if let Some(m) = e.minor {
            jumps.push(block.len());
            block.push(insn(JMP_JNE_K, R5, 0, 0, m as i32));
        }
        block.push(insn(ALU64_MOV_K, R0, 0, 0, verdict));
        block.push(insn(JMP_EXIT, 0, 0, 0, 0));
        let len = block.len();
        for j in jumps {
            block[j].off = (len - j - 1) as i16;
        }
        p.extend(block);
    }
    p.push(insn(ALU64_MOV_K, R0, 0, 0, i32::from(rules.default_allow)));
    p.push(insn(JMP_EXIT, 0, 0, 0, 0));
    p
}

/// Run `prog` the way the kernel would, to check that the emitter and the
/// rule semantics agree.
#[cfg(test)]
pub fn interpret(prog: &[Insn], typ: u32, access: u32, major: u32, minor: u32) -> Option<u64> {
    let mut r = [0u64; 11];
    let ctx = [(access << 16) | typ, major, minor];
    let mut pc = 0usize;
    for _ in 0..4096 {
        let i = prog.get(pc)?;
        let dst = (i.regs & 0x0f) as usize;
        let src = (i.regs >> 4) as usize;
        pc += 1;
        match i.code {
            LDX_MEM_W => {
                if src != 1 {
                    return None;
                }
                r[dst] = u64::from(*ctx.get(i.off as usize / 4)?);
            }
            ALU64_AND_K => r[dst] &= i.imm as i64 as u64,
            ALU64_RSH_K => r[dst] >>= i.imm,
            ALU64_MOV_K => r[dst] = i.imm as i64 as u64,
            ALU64_MOV_X => r[dst] = r[src],
            JMP_JEQ_K | JMP_JNE_K => {
                let eq = r[dst] == i.imm as i64 as u64;
                if eq == (i.code == JMP_JEQ_K) {
                    pc = (pc as i64 + i64::from(i.off)) as usize;
                }
            }
            JMP_EXIT => return Some(r[0]),
            _ => return None,
        }
    }
    None
}

// bpf(2) commands and constants from linux/bpf.h.
const BPF_PROG_LOAD: i32 = 5;
const BPF_PROG_ATTACH: i32 = 8;
const BPF_PROG_DETACH: i32 = 9;
const BPF_PROG_GET_FD_BY_ID: i32 = 13;
const BPF_PROG_QUERY: i32 = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_fd: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
}

#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_fd: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
}

#[repr(C)]
#[derive(Default)]
struct GetFdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

fn bpf<T>(cmd: i32, attr: &mut T) -> std::result::Result<i64, i32> {
    // SAFETY: attr is a live, correctly laid out union member for `cmd`,
    // and its size is passed along.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as u32,
        )
    };
    if r < 0 {
        Err(crate::error::last_errno())
    } else {
        Ok(r)
    }
}

fn owned(fd: i64) -> OwnedFd {
    // SAFETY: the kernel just returned this new descriptor to us.
    unsafe { OwnedFd::from_raw_fd(fd as i32) }
}

/// Load the program; on rejection, the verifier's log is in the error.
pub fn load(prog: &[Insn]) -> Result<OwnedFd> {
    let license = b"Apache\0";
    let mut log = vec![0u8; 4096];
    let mut attr = ProgLoadAttr {
        prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
        insn_cnt: prog.len() as u32,
        insns: prog.as_ptr() as u64,
        license: license.as_ptr() as u64,
        ..Default::default()
    };
    attr.prog_name[..6].copy_from_slice(b"runway");
    match bpf(BPF_PROG_LOAD, &mut attr) {
        Ok(fd) => Ok(owned(fd)),
        Err(e) => {
            // Load again with the log on, only to explain the failure.
            let mut attr2 = ProgLoadAttr {
                prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
                insn_cnt: prog.len() as u32,
                insns: prog.as_ptr() as u64,
                license: license.as_ptr() as u64,
                log_level: 1,
                log_size: log.len() as u32,
                log_buf: log.as_mut_ptr() as u64,
                ..Default::default()
            };
            let _ = bpf(BPF_PROG_LOAD, &mut attr2);
            let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
            let text = String::from_utf8_lossy(&log[..end]);
            let last = text
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            if last.is_empty() {
                Err(Error::errno("load device cgroup eBPF program", e))
            } else {
                Err(Error::errno(
                    format!("load device cgroup eBPF program ({last})"),
                    e,
                ))
            }
        }
    }
}

/// Ids of the device programs attached to the cgroup `dir_fd`.
fn attached(dir_fd: &OwnedFd) -> Vec<u32> {
    let mut ids = [0u32; 64];
    let mut attr = QueryAttr {
        target_fd: dir_fd.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..Default::default()
    };
    match bpf(BPF_PROG_QUERY, &mut attr) {
        Ok(_) => ids[..(attr.prog_cnt as usize).min(ids.len())].to_vec(),
        Err(_) => Vec::new(),
    }
}

/// Attach the program for `rules` to the cgroup directory `dir`, then
/// detach whatever device programs were there before, so an update swaps
/// policies without a moment of no policy.
pub fn apply_v2(dir: &str, rules: &DeviceRules) -> Result<()> {
    let prog = program(rules);
    let prog_fd = load(&prog)?;
    let dir_fd = rustix::fs::open(
        dir,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .map_err(|e| Error::errno(format!("open cgroup {dir}"), e.raw_os_error()))?;
    let old = attached(&dir_fd);
    let mut attr = AttachAttr {
        target_fd: dir_fd.as_raw_fd() as u32,
        attach_bpf_fd: prog_fd.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        attach_flags: BPF_F_ALLOW_MULTI,
        ..Default::default()
    };
    bpf(BPF_PROG_ATTACH, &mut attr)
        .map_err(|e| Error::errno(format!("attach device eBPF program to {dir}"), e))?;
    for id in old {
        let mut g = GetFdAttr {
            prog_id: id,
            ..Default::default()
        };
        let Ok(fd) = bpf(BPF_PROG_GET_FD_BY_ID, &mut g) else {
            continue;
        };
        let old_fd = owned(fd);
        let mut d = AttachAttr {
            target_fd: dir_fd.as_raw_fd() as u32,
            attach_bpf_fd: old_fd.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            ..Default::default()
        };
        bpf(BPF_PROG_DETACH, &mut d)
            .map_err(|e| Error::errno(format!("detach old device eBPF program from {dir}"), e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dc(
        allow: bool,
        typ: Option<&str>,
        major: Option<i64>,
        minor: Option<i64>,
        acc: &str,
    ) -> DeviceCgroup {
        DeviceCgroup {
            allow,
            typ: typ.map(str::to_string),
            major,
            minor,
            access: Some(acc.to_string()),
        }
    }

    const CHAR: u32 = 2;
    const BLOCK: u32 = 1;
    const R: u32 = ACC_READ as u32;
    const W: u32 = ACC_WRITE as u32;
    const M: u32 = ACC_MKNOD as u32;

    #[test]
    fn default_deny_plus_runc_defaults() {
        let r = effective_rules(&[dc(false, None, None, None, "rwm")]).unwrap();
        assert!(!r.default_allow);
        let list: Vec<String> = r.exceptions.iter().map(Rule::v1_string).collect();
        assert_eq!(list[0], "c *:* m");
        assert_eq!(list[1], "b *:* m");
        assert!(list.contains(&"c 1:3 rwm".to_string()));
        assert!(list.contains(&"c 136:* rwm".to_string()));
        assert!(list.contains(&"c 10:200 rwm".to_string()));
        assert_eq!(list.len(), 11);
    }

    #[test]
    fn allow_all_then_deny_one() {
        let r = effective_rules(&[
            dc(true, None, None, None, "rwm"),
            dc(false, Some("c"), Some(1), Some(3), "w"),
        ])
        .unwrap();
        // The defaults only re-grant what was already granted... except
        // that re-allowing 1:3 rwm removes the deny exception, as in v1.
        assert!(r.default_allow);
        assert!(r.exceptions.is_empty());
        let r = effective_rules(&[
            dc(true, None, None, None, "rwm"),
            dc(false, Some("c"), Some(4), Some(1), "w"),
        ])
        .unwrap();
        assert_eq!(r.exceptions.len(), 1);
        let p = program(&r);
        assert_eq!(interpret(&p, CHAR, W, 4, 1), Some(0));
        assert_eq!(interpret(&p, CHAR, R | W, 4, 1), Some(0));
        assert_eq!(interpret(&p, CHAR, R, 4, 1), Some(1));
        assert_eq!(interpret(&p, BLOCK, W, 4, 1), Some(1));
        assert_eq!(interpret(&p, CHAR, W, 4, 2), Some(1));
    }

    #[test]
    fn program_matches_rules() {
        let r = effective_rules(&[
            dc(false, None, None, None, "rwm"),
            dc(true, Some("b"), Some(8), None, "r"),
            dc(true, Some("c"), Some(4), Some(2), "rw"),
        ])
        .unwrap();
        let p = program(&r);
        assert_eq!(interpret(&p, CHAR, R | W, 1, 3), Some(1)); // null
        assert_eq!(interpret(&p, CHAR, R, 1, 1), Some(0)); // mem
        assert_eq!(interpret(&p, CHAR, M, 1, 1), Some(1)); // mknod any char
        assert_eq!(interpret(&p, BLOCK, M, 8, 0), Some(1));
        assert_eq!(interpret(&p, BLOCK, R, 8, 0), Some(1));
        assert_eq!(interpret(&p, BLOCK, R | W, 8, 0), Some(0));
        assert_eq!(interpret(&p, CHAR, R, 8, 0), Some(0));
        assert_eq!(interpret(&p, CHAR, R | W, 4, 2), Some(1));
        assert_eq!(interpret(&p, CHAR, R | W | M, 4, 2), Some(0));
        assert_eq!(interpret(&p, CHAR, R, 136, 7), Some(1));
    }

    #[test]
    fn bad_rules_rejected() {
        assert!(effective_rules(&[dc(true, Some("x"), None, None, "r")]).is_err());
        assert!(effective_rules(&[dc(true, Some("c"), None, None, "rx")]).is_err());
        assert!(effective_rules(&[dc(true, Some("c"), Some(-5), None, "r")]).is_err());
    }

    #[test]
    fn instruction_encoding() {
        // r2 = *(u32 *)(r1 + 0) encodes as 61 12 00 00 00 00 00 00.
        let i = insn(LDX_MEM_W, R2, R1, 0, 0);
        assert_eq!(i.code, 0x61);
        assert_eq!(i.regs, 0x12);
        assert_eq!(std::mem::size_of::<Insn>(), 8);
    }
}
