#!/usr/bin/env python3
"""Generate src/seccomp/tables.rs: syscall name -> number for the ABIs the
seccomp compiler supports (x86_64, i386, x32, aarch64).

Run once, from the repository root, and commit the output:

    python3 tools/gen-syscalls/gen.py > src/seccomp/tables.rs

Sources, in order:
  * the kernel UAPI headers installed by linux-libc-dev
    (/usr/include/x86_64-linux-gnu/asm/unistd_{64,32,x32}.h and
    /usr/include/asm-generic/unistd.h, which arm64 uses), and
  * NEWER below: syscalls added after those headers were cut. The kernel
    numbers every syscall from 424 on identically on all these ABIs (x32 adds
    __X32_SYSCALL_BIT), so one list serves them all.

Optionally a kernel `syscall_*.tbl` may be given instead of a header
(--tbl ABI=PATH[:abi1,abi2]) when a newer tree is at hand; the .tbl format is
"<nr> <abi> <name> [entry]" with '#' comments.
"""

import re
import sys

INCLUDE = "/usr/include"
X32_BIT = 0x40000000

# (nr, name, abis) for syscalls newer than linux-libc-dev 6.1's headers.
# abis: which of our ABIs have it ("all" = x86_64, i386, x32, aarch64).
NEWER = [
    (335, "uretprobe", {"x86_64"}),  # x86_64-only number, 6.11
    (451, "cachestat", "all"),
    (452, "fchmodat2", "all"),
    (453, "map_shadow_stack", {"x86_64", "x32", "aarch64"}),
    (454, "futex_wake", "all"),
    (455, "futex_wait", "all"),
    (456, "futex_requeue", "all"),
    (457, "statmount", "all"),
    (458, "listmount", "all"),
    (459, "lsm_get_self_attr", "all"),
    (460, "lsm_set_self_attr", "all"),
    (461, "lsm_list_modules", "all"),
    (462, "mseal", "all"),
    (463, "setxattrat", "all"),
    (464, "getxattrat", "all"),
    (465, "listxattrat", "all"),
    (466, "removexattrat", "all"),
    (467, "open_tree_attr", "all"),
    (468, "file_getattr", "all"),
    (469, "file_setattr", "all"),
    (470, "listns", "all"),
]

# What arch/arm64/include/uapi/asm/unistd.h defines before including
# asm-generic/unistd.h.
ARM64_DEFINES = {
    "__ARCH_WANT_RENAMEAT",
    "__ARCH_WANT_NEW_STAT",
    "__ARCH_WANT_SET_GET_RLIMIT",
    "__ARCH_WANT_TIME32_SYSCALLS",
    "__ARCH_WANT_SYS_CLONE3",
    "__ARCH_WANT_MEMFD_SECRET",
}

NOT_SYSCALLS = {"syscalls", "arch_specific_syscall"}


def parse_unistd(path):
    """#define __NR_<name> <nr> or (__X32_SYSCALL_BIT + <nr>)."""
    out = {}
    pat = re.compile(r"^#define\s+__NR_(\w+)\s+(?:\(__X32_SYSCALL_BIT\s*\+\s*(\d+)\)|(\d+))\s*$")
    with open(path) as f:
        for line in f:
            m = pat.match(line)
            if not m:
                continue
            name, x32, plain = m.groups()
            out[name] = X32_BIT + int(x32) if x32 is not None else int(plain)
    return out


def eval_cond(expr, defines, values):
    expr = re.sub(r"defined\s*\(\s*(\w+)\s*\)", lambda m: "1" if m.group(1) in defines else "0", expr)
    expr = re.sub(r"defined\s+(\w+)", lambda m: "1" if m.group(1) in defines else "0", expr)
    expr = re.sub(r"\b__\w+\b", lambda m: str(values.get(m.group(0), 0)), expr)
    expr = expr.replace("&&", " and ").replace("||", " or ")
    expr = re.sub(r"!(?!=)", " not ", expr)
    return bool(eval(expr, {"__builtins__": {}}, {}))


def parse_generic(path, defines, bits):
    """Run the tiny subset of cpp that asm-generic/unistd.h needs."""
    values = {"__BITS_PER_LONG": bits}
    defines = set(defines)
    nums = {}  # macro -> int or macro name (alias)
    stack = []  # (taking, any_branch_taken)

    def active():
        return all(t for t, _ in stack)

    with open(path) as f:
        for raw in f:
            line = raw.strip()
            if not line.startswith("#"):
                continue
            d = line[1:].strip()
            if d.startswith("ifdef "):
                v = d.split()[1] in defines or d.split()[1] in nums
                stack.append((v, v))
            elif d.startswith("ifndef "):
                v = not (d.split()[1] in defines or d.split()[1] in nums)
                stack.append((v, v))
            elif d.startswith("if "):
                v = eval_cond(d[3:], defines, values)
                stack.append((v, v))
            elif d.startswith("else"):
                _, taken = stack.pop()
                stack.append((not taken, True))
            elif d.startswith("endif"):
                stack.pop()
            elif not active():
                continue
            elif d.startswith("define "):
                parts = d.split(None, 2)
                name = parts[1]
                defines.add(name)
                if len(parts) == 3 and (name.startswith("__NR_") or name.startswith("__NR3264_")):
                    val = parts[2].strip()
                    nums[name] = int(val) if val.isdigit() else val
            elif d.startswith("undef "):
                nums.pop(d.split()[1], None)
                defines.discard(d.split()[1])
    out = {}
    for macro, val in nums.items():
        if not macro.startswith("__NR_"):
            continue
        while isinstance(val, str):
            val = nums.get(val)
        if val is None:
            continue
        out[macro[len("__NR_"):]] = val
    return out


def parse_tbl(path, abis):
    out = {}
    with open(path) as f:
        for line in f:
            line = line.split("#", 1)[0].split()
            if len(line) >= 3 and line[1] in abis:
                out[line[2]] = int(line[0])
    return out


def add_newer(table, abi):
    for nr, name, abis in NEWER:
        if abis != "all" and abi not in abis:
            continue
        table.setdefault(name, nr + (X32_BIT if abi == "x32" else 0))


def emit(tables):
    print("// @generated by tools/gen-syscalls/gen.py from the kernel UAPI headers")
    print("// (linux-libc-dev) plus that script's list of newer syscalls. Do not edit;")
    print("// re-run the generator instead.")
    print()
    print("//! Syscall name -> number, per ABI, sorted by name for binary search.")
    for const, abi in (("X86_64", "x86_64"), ("I386", "i386"), ("X32", "x32"), ("AARCH64", "aarch64")):
        t = {k: v for k, v in tables[abi].items() if k not in NOT_SYSCALLS}
        print()
        print(f"/// {abi}: {len(t)} syscalls, highest number {max(t.values()):#x}.")
        print(f"pub static {const}: &[(&str, u32)] = &[")
        for name in sorted(t):
            print(f'    ("{name}", {t[name]}),')
        print("];")


def main():
    tables = {
        "x86_64": parse_unistd(f"{INCLUDE}/x86_64-linux-gnu/asm/unistd_64.h"),
        "i386": parse_unistd(f"{INCLUDE}/x86_64-linux-gnu/asm/unistd_32.h"),
        "x32": parse_unistd(f"{INCLUDE}/x86_64-linux-gnu/asm/unistd_x32.h"),
        "aarch64": parse_generic(f"{INCLUDE}/asm-generic/unistd.h", ARM64_DEFINES, 64),
    }
    args = sys.argv[1:]
    while args:
        if args[0] == "--tbl" and len(args) > 1:
            abi, rest = args[1].split("=", 1)
            path, _, abis = rest.partition(":")
            tables[abi] = parse_tbl(path, set(abis.split(",")) if abis else {"common", "64", abi})
            args = args[2:]
        else:
            sys.exit(f"usage: {sys.argv[0]} [--tbl ABI=PATH[:abi1,abi2]]...")
    for abi, t in tables.items():
        add_newer(t, abi)
    emit(tables)


if __name__ == "__main__":
    main()
