//! A classic-BPF interpreter for seccomp programs: the instruction subset
//! and checks the kernel's seccomp loader accepts, so tests and fuzzers can
//! run compiled filters without loading them.

use libc::sock_filter;

/// BPF_MAXINSNS: the kernel refuses longer filters.
pub const MAX_INSNS: usize = 4096;

/// What `run` returns for a program the kernel would refuse or that faults.
/// No SECCOMP_RET_* action has these bits, so it cannot be confused.
pub const RET_INVALID: u32 = 0x7fff_ffff;

/// `struct seccomp_data`, the only packet a seccomp filter sees.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SeccompData {
    pub nr: i32,
    pub arch: u32,
    pub instruction_pointer: u64,
    pub args: [u64; 6],
}

const DATA_LEN: u32 = 64;

impl SeccompData {
    pub fn new(arch: u32, nr: u32, args: [u64; 6]) -> Self {
        SeccompData {
            nr: nr as i32,
            arch,
            instruction_pointer: 0,
            args,
        }
    }

    /// 32-bit word at byte offset `off`, in host (little-endian) layout.
    fn word(&self, off: u32) -> Option<u32> {
        if !off.is_multiple_of(4) || off >= DATA_LEN {
            return None;
        }
        let split = |v: u64, hi: bool| if hi { (v >> 32) as u32 } else { v as u32 };
        Some(match off {
            0 => self.nr as u32,
            4 => self.arch,
            8 | 12 => split(self.instruction_pointer, off == 12),
            _ => {
                let i = ((off - 16) / 8) as usize;
                split(self.args[i], (off - 16) % 8 == 4)
            }
        })
    }
}

const BPF_LD: u16 = 0x00;
const BPF_LDX: u16 = 0x01;
const BPF_ST: u16 = 0x02;
const BPF_STX: u16 = 0x03;
const BPF_ALU: u16 = 0x04;
const BPF_JMP: u16 = 0x05;
const BPF_RET: u16 = 0x06;
const BPF_MISC: u16 = 0x07;

const BPF_W: u16 = 0x00;
const BPF_IMM: u16 = 0x00;
const BPF_ABS: u16 = 0x20;
const BPF_MEM: u16 = 0x60;
const BPF_LEN: u16 = 0x80;

const BPF_K: u16 = 0x00;
const BPF_X: u16 = 0x08;
const BPF_A: u16 = 0x10;

const MEMWORDS: usize = 16;

/// Checks the kernel makes at load time (bpf_check_classic plus
/// seccomp_check_filter): size, known opcodes, in-range jumps and scratch
/// slots, constant divisors, ending in a return.
pub fn validate(prog: &[sock_filter]) -> Result<(), String> {
    if prog.is_empty() || prog.len() > MAX_INSNS {
        return Err(format!("bad length {}", prog.len()));
    }
    for (pc, i) in prog.iter().enumerate() {
        let k = i.k;
        let ok = match i.code {
            c if c == BPF_LD | BPF_W | BPF_ABS => k.is_multiple_of(4) && k < DATA_LEN,
            c if c == BPF_LD | BPF_W | BPF_LEN || c == BPF_LDX | BPF_W | BPF_LEN => true,
            c if c == BPF_LD | BPF_IMM || c == BPF_LDX | BPF_W | BPF_IMM => true,
            c if c == BPF_LD | BPF_MEM || c == BPF_LDX | BPF_MEM => (k as usize) < MEMWORDS,
            c if c == BPF_ST || c == BPF_STX => (k as usize) < MEMWORDS,
            c if c & 0x07 == BPF_ALU => {
                let op = c & 0xf0;
                let known = matches!(
                    op,
                    0x00 | 0x10 | 0x20 | 0x30 | 0x40 | 0x50 | 0x60 | 0x70 | 0x80 | 0x90 | 0xa0
                );
                let const_zero_div = (op == 0x30 || op == 0x90) && c & BPF_X == 0 && k == 0;
                known && !const_zero_div && c & !0xf8 == BPF_ALU
            }
            c if c & 0x07 == BPF_JMP => {
                let op = c & 0xf0;
                let rest = prog.len() - pc - 1;
                if op == 0x00 {
                    c == BPF_JMP && (k as usize) < rest
                } else {
                    matches!(op, 0x10 | 0x20 | 0x30 | 0x40)
                        && c & !0xf8 == BPF_JMP
                        && (i.jt as usize) < rest
                        && (i.jf as usize) < rest
                }
            }
            c if c == BPF_RET | BPF_K || c == BPF_RET | BPF_A => true,
            c if c == BPF_MISC || c == BPF_MISC | 0x80 => true,
            _ => false,
        };
        if !ok {
            return Err(format!(
                "bad instruction at {pc}: code {:#x} jt {} jf {} k {:#x}",
                i.code, i.jt, i.jf, k
            ));
        }
    }
    match prog.last() {
        Some(l) if l.code & 0x07 == BPF_RET => Ok(()),
        _ => Err("program does not end with a return".into()),
    }
}

/// Run `prog` on `data`; `RET_INVALID` if the kernel would refuse it.
pub fn run(prog: &[sock_filter], data: &SeccompData) -> u32 {
    try_run(prog, data).unwrap_or(RET_INVALID)
}

pub fn try_run(prog: &[sock_filter], data: &SeccompData) -> Result<u32, String> {
    Checked::new(prog)?.run(data)
}

/// A program that passed `validate`: run it many times without checking
/// it again (the differential fuzzer runs thousands of syscalls per program).
pub struct Checked<'a>(&'a [sock_filter]);

impl<'a> Checked<'a> {
    pub fn new(prog: &'a [sock_filter]) -> Result<Self, String> {
        validate(prog)?;
        Ok(Checked(prog))
    }

    pub fn run(&self, data: &SeccompData) -> Result<u32, String> {
        exec(self.0, data)
    }
}

/// Only for programs `validate` accepted: scratch slot indexes are not
/// checked again here.
fn exec(prog: &[sock_filter], data: &SeccompData) -> Result<u32, String> {
    let (mut a, mut x) = (0u32, 0u32);
    let mut mem: [Option<u32>; MEMWORDS] = [None; MEMWORDS];
    let mut pc = 0usize;
    loop {
        let i = prog.get(pc).ok_or("ran off the end")?;
        let k = i.k;
        pc += 1;
        match i.code & 0x07 {
            BPF_LD | BPF_LDX => {
                let v = match i.code & 0xe0 {
                    BPF_ABS => data.word(k).ok_or("bad load offset")?,
                    BPF_LEN => DATA_LEN,
                    BPF_IMM => k,
                    BPF_MEM => mem[k as usize].ok_or("read of unset scratch slot")?,
                    _ => return Err("bad load mode".into()),
                };
                if i.code & 0x07 == BPF_LD {
                    a = v;
                } else {
                    x = v;
                }
            }
            BPF_ST => mem[k as usize] = Some(a),
            BPF_STX => mem[k as usize] = Some(x),
            BPF_ALU => {
                let src = if i.code & BPF_X != 0 { x } else { k };
                a = match i.code & 0xf0 {
                    0x00 => a.wrapping_add(src),
                    0x10 => a.wrapping_sub(src),
                    0x20 => a.wrapping_mul(src),
                    0x30 | 0x90 if src == 0 => return Ok(0),
                    0x30 => a / src,
                    0x90 => a % src,
                    0x40 => a | src,
                    0x50 => a & src,
                    0x60 => a.checked_shl(src).unwrap_or(0),
                    0x70 => a.checked_shr(src).unwrap_or(0),
                    0x80 => a.wrapping_neg(),
                    0xa0 => a ^ src,
                    _ => return Err("bad alu op".into()),
                };
            }
            BPF_JMP => {
                let src = if i.code & BPF_X != 0 { x } else { k };
                let taken = match i.code & 0xf0 {
                    0x00 => {
                        pc += k as usize;
                        continue;
                    }
                    0x10 => a == src,
                    0x20 => a > src,
                    0x30 => a >= src,
                    0x40 => a & src != 0,
                    _ => return Err("bad jump op".into()),
                };
                pc += usize::from(if taken { i.jt } else { i.jf });
            }
            BPF_RET => return Ok(if i.code & 0x18 == BPF_A { a } else { k }),
            _ => {
                if i.code & 0x80 != 0 {
                    a = x;
                } else {
                    x = a;
                }
            }
        }
    }
}

/// One line per instruction, libseccomp-ish (`scmp_bpf_disasm`), for
/// debugging filters and fuzzer reports.
pub fn disasm(prog: &[sock_filter]) -> String {
    let mut out = String::new();
    for (pc, i) in prog.iter().enumerate() {
        let (k, src) = (i.k, if i.code & BPF_X != 0 { "x" } else { "" });
        let to = |off: u8| pc + 1 + usize::from(off);
        let text = match i.code & 0x07 {
            BPF_LD | BPF_LDX => {
                let reg = if i.code & 0x07 == BPF_LD { "a" } else { "x" };
                match i.code & 0xe0 {
                    BPF_ABS => format!("ld{reg} [{k}]"),
                    BPF_LEN => format!("ld{reg} len"),
                    BPF_MEM => format!("ld{reg} M[{k}]"),
                    _ => format!("ld{reg} #{k:#x}"),
                }
            }
            BPF_ST => format!("st M[{k}]"),
            BPF_STX => format!("stx M[{k}]"),
            BPF_ALU => {
                let op = [
                    "add", "sub", "mul", "div", "or", "and", "lsh", "rsh", "neg", "mod", "xor",
                ]
                .get(usize::from(i.code >> 4))
                .unwrap_or(&"alu?");
                if src.is_empty() {
                    format!("{op} #{k:#x}")
                } else {
                    format!("{op} x")
                }
            }
            BPF_JMP if i.code & 0xf0 == 0 => format!("ja {}", pc + 1 + k as usize),
            BPF_JMP => {
                let op = ["ja", "jeq", "jgt", "jge", "jset"]
                    .get(usize::from(i.code >> 4))
                    .unwrap_or(&"j?");
                let v = if src.is_empty() {
                    format!("#{k:#x}")
                } else {
                    "x".into()
                };
                format!("{op} {v} true:{} false:{}", to(i.jt), to(i.jf))
            }
            BPF_RET if i.code & 0x18 == BPF_A => "ret a".into(),
            BPF_RET => format!("ret #{k:#x}"),
            _ if i.code & 0x80 != 0 => "txa".into(),
            _ => "tax".into(),
        };
        out.push_str(&format!("{pc:4}: {text}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn i(code: u16, jt: u8, jf: u8, k: u32) -> sock_filter {
        sock_filter { code, jt, jf, k }
    }

    #[test]
    fn alu_jumps_scratch_and_returns() {
        let d = SeccompData::new(7, 3, [0x1_0000_0005, 0, 0, 0, 0, 0x42]);
        let prog = [
            i(BPF_LD | BPF_W | BPF_ABS, 0, 0, 16), // A = lo(args[0]) = 5
            i(BPF_ALU, 0, 0, 10),                  // A += 10 -> 15
            i(BPF_ST, 0, 0, 3),                    // M[3] = 15
            i(BPF_LDX | BPF_W | BPF_IMM, 0, 0, 4), // X = 4
            i(BPF_ALU | 0x60 | BPF_X, 0, 0, 0),    // A <<= 4 -> 240
            i(BPF_JMP | 0x30 | BPF_K, 1, 0, 240),  // A >= 240 -> skip 1
            i(BPF_RET | BPF_K, 0, 0, 1),
            i(BPF_LD | BPF_MEM, 0, 0, 3), // A = 15
            i(BPF_JMP | 0x40 | BPF_K, 0, 1, 8),
            i(BPF_JMP, 0, 0, 1),
            i(BPF_RET | BPF_K, 0, 0, 2),
            i(BPF_LD | BPF_W | BPF_ABS, 0, 0, 20), // hi(args[0]) = 1
            i(BPF_MISC, 0, 0, 0),                  // X = A
            i(BPF_LD | BPF_W | BPF_ABS, 0, 0, 56), // lo(args[5]) = 0x42
            i(BPF_ALU | 0x10 | BPF_X, 0, 0, 0),    // 0x41
            i(BPF_RET | BPF_A, 0, 0, 0),
        ];
        assert_eq!(try_run(&prog, &d), Ok(0x41));
    }

    #[test]
    fn refuses_what_the_kernel_refuses() {
        let d = SeccompData::default();
        let ret = i(BPF_RET | BPF_K, 0, 0, 0);
        assert!(try_run(&[], &d).is_err());
        assert!(try_run(&[i(BPF_LD | BPF_W | BPF_ABS, 0, 0, 64), ret], &d).is_err());
        assert!(try_run(&[i(BPF_LD | BPF_W | BPF_ABS, 0, 0, 2), ret], &d).is_err());
        assert!(try_run(&[i(BPF_JMP | 0x10, 1, 0, 0), ret], &d).is_err());
        assert!(try_run(&[i(BPF_LD | BPF_W | BPF_ABS, 0, 0, 0)], &d).is_err());
        assert!(try_run(&[i(BPF_ALU | 0x30 | BPF_K, 0, 0, 0), ret], &d).is_err());
        assert!(try_run(&[i(BPF_LD | BPF_MEM, 0, 0, 1), ret], &d).is_err());
        assert!(try_run(&[i(0xff, 0, 0, 0), ret], &d).is_err());
        assert_eq!(run(&vec![ret; MAX_INSNS + 1], &d), RET_INVALID);
        assert_eq!(run(&vec![ret; MAX_INSNS], &d), 0);
    }

    #[test]
    fn disassembles() {
        let prog = [
            i(BPF_LD | BPF_W | BPF_ABS, 0, 0, 4),
            i(BPF_JMP | 0x10 | BPF_K, 0, 1, 0xc000_003e),
            i(BPF_RET | BPF_K, 0, 0, 0x7fff_0000),
            i(BPF_RET | BPF_K, 0, 0, 0),
        ];
        assert_eq!(
            disasm(&prog),
            "   0: lda [4]\n   1: jeq #0xc000003e true:2 false:3\n   2: ret #0x7fff0000\n   3: ret #0x0\n"
        );
    }

    #[test]
    fn division_by_zero_register_returns_zero() {
        let d = SeccompData::default();
        let prog = [
            i(BPF_LD | BPF_IMM, 0, 0, 9),
            i(BPF_ALU | 0x30 | BPF_X, 0, 0, 0),
            i(BPF_RET | BPF_K, 0, 0, 5),
        ];
        assert_eq!(run(&prog, &d), 0);
    }
}
