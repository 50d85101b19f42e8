//! Linux capabilities: names <-> numbers, the five sets of a config, and the
//! raw syscalls that install them in the container's init.
//!
//! Names must carry the "CAP_" prefix (as runc); case is not significant
//! ("cap_sys_admin" is accepted, runc would silently drop it). A name this
//! table does not know is an error rather than runc's warning: a typo must
//! not quietly cost the container a capability.

use crate::bail;
use crate::error::{Error, Result};

/// Indexed by capability number; from include/uapi/linux/capability.h.
const NAMES: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

pub const CAP_SYS_RESOURCE: u32 = 24;

/// Highest capability number this runtime has a name for.
pub const LAST_KNOWN: u32 = NAMES.len() as u32 - 1;

/// "CAP_SYS_ADMIN" (any case) -> 21. The prefix is required.
pub fn cap_from_name(name: &str) -> Option<u32> {
    let prefix = name.get(..4)?;
    if !prefix.eq_ignore_ascii_case("CAP_") {
        return None;
    }
    NAMES
        .iter()
        .position(|n| n.eq_ignore_ascii_case(name))
        .map(|i| i as u32)
}

/// 21 -> "CAP_SYS_ADMIN".
pub fn cap_name(cap: u32) -> Option<&'static str> {
    NAMES.get(cap as usize).copied()
}

/// Name for messages, also for numbers newer than our table.
pub fn describe(cap: u32) -> String {
    match cap_name(cap) {
        Some(n) => n.to_string(),
        None => format!("capability {cap}"),
    }
}

/// A capability set as the kernel's 64-bit mask.
pub type CapMask = u64;

pub fn mask_of(cap: u32) -> CapMask {
    if cap < 64 {
        1u64 << cap
    } else {
        0
    }
}

/// Caps in `mask`, lowest first.
pub fn caps_in(mask: CapMask) -> impl Iterator<Item = u32> {
    (0..64u32).filter(move |c| mask & (1u64 << c) != 0)
}

/// Translate one set of a config. `set` is the config key, for messages.
pub fn parse_set(set: &str, names: &[String]) -> Result<CapMask> {
    let mut mask = 0;
    for n in names {
        match cap_from_name(n) {
            Some(c) => mask |= mask_of(c),
            None => bail!("process.capabilities.{set}: unknown capability {n:?}"),
        }
    }
    Ok(mask)
}

/// The host kernel's highest capability, /proc/sys/kernel/cap_last_cap.
/// Falls back to probing the bounding set when /proc is unusual.
pub fn host_last_cap() -> u32 {
    if let Ok(s) = crate::linux::file::read("/proc/sys/kernel/cap_last_cap") {
        if let Ok(n) = s.trim().parse::<u32>() {
            return n.min(63);
        }
    }
    let mut last = 0;
    for c in 0..64u32 {
        // SAFETY: PR_CAPBSET_READ only reads the caller's creds.
        let r = unsafe { libc::prctl(libc::PR_CAPBSET_READ, c as libc::c_ulong, 0, 0, 0) };
        if r < 0 {
            break;
        }
        last = c;
    }
    last
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_V3: u32 = 0x2008_0522;

/// Effective, permitted, inheritable of the calling thread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sets {
    pub effective: CapMask,
    pub permitted: CapMask,
    pub inheritable: CapMask,
}

pub fn capget() -> Result<Sets> {
    let mut hdr = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: v3 header with two data words, as the kernel expects.
    let r = unsafe { libc::syscall(libc::SYS_capget, &mut hdr, data.as_mut_ptr()) };
    if r != 0 {
        return Err(Error::last_os("capget"));
    }
    let join = |lo: u32, hi: u32| u64::from(lo) | (u64::from(hi) << 32);
    Ok(Sets {
        effective: join(data[0].effective, data[1].effective),
        permitted: join(data[0].permitted, data[1].permitted),
        inheritable: join(data[0].inheritable, data[1].inheritable),
    })
}

/// capset(2) directly: no libcap, no allocation.
pub fn capset(s: &Sets) -> std::result::Result<(), i32> {
    let mut hdr = CapHeader {
        version: CAP_V3,
        pid: 0,
    };
    let data = [
        CapData {
            effective: s.effective as u32,
            permitted: s.permitted as u32,
            inheritable: s.inheritable as u32,
        },
        CapData {
            effective: (s.effective >> 32) as u32,
            permitted: (s.permitted >> 32) as u32,
            inheritable: (s.inheritable >> 32) as u32,
        },
    ];
    // SAFETY: v3 header with two data words, as the kernel expects.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut hdr, data.as_ptr()) };
    if r != 0 {
        return Err(crate::error::last_errno());
    }
    Ok(())
}

/// The calling thread's bounding set, read with PR_CAPBSET_READ.
pub fn bounding_set(last_cap: u32) -> CapMask {
    let mut mask = 0;
    for c in 0..=last_cap.min(63) {
        // SAFETY: PR_CAPBSET_READ only reads the caller's creds.
        let r = unsafe { libc::prctl(libc::PR_CAPBSET_READ, c as libc::c_ulong, 0, 0, 0) };
        if r == 1 {
            mask |= mask_of(c);
        }
    }
    mask
}

/// Drop from the bounding set every cap up to `last_cap` not in `keep`.
pub fn drop_bounding(keep: CapMask, last_cap: u32) -> Result<()> {
    for c in 0..=last_cap.min(63) {
        if keep & mask_of(c) != 0 {
            continue;
        }
        // SAFETY: plain prctl on the calling thread.
        let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, c as libc::c_ulong, 0, 0, 0) };
        if r != 0 {
            return Err(Error::last_os(format!(
                "drop {} from the bounding set",
                describe(c)
            )));
        }
    }
    Ok(())
}

/// Raise every cap of `mask` in the ambient set (after capset).
pub fn raise_ambient(mask: CapMask) -> Result<()> {
    for c in caps_in(mask) {
        // SAFETY: plain prctl on the calling thread.
        let r = unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                c as libc::c_ulong,
                0,
                0,
            )
        };
        if r != 0 {
            return Err(Error::last_os(format!("raise ambient {}", describe(c))));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for c in 0..=LAST_KNOWN {
            let n = cap_name(c).unwrap();
            assert_eq!(cap_from_name(n), Some(c), "{n}");
            assert_eq!(cap_from_name(&n.to_ascii_lowercase()), Some(c));
        }
        assert_eq!(cap_name(LAST_KNOWN + 1), None);
        assert_eq!(cap_name(u32::MAX), None);
    }

    #[test]
    fn known_numbers() {
        assert_eq!(cap_from_name("CAP_CHOWN"), Some(0));
        assert_eq!(cap_from_name("CAP_SYS_ADMIN"), Some(21));
        assert_eq!(cap_from_name("Cap_Sys_Resource"), Some(CAP_SYS_RESOURCE));
        assert_eq!(cap_from_name("CAP_BPF"), Some(39));
        assert_eq!(cap_from_name("CAP_CHECKPOINT_RESTORE"), Some(40));
    }

    #[test]
    fn bad_names() {
        for n in [
            "",
            "CAP",
            "CAP_",
            "SYS_ADMIN",
            "CAP_TEST",
            "CAPSYS_ADMIN",
            " CAP_KILL",
            "CAP_KILL ",
            "CAP_KILL\0",
            "ÄAP_KILL",
            "CA",
        ] {
            assert_eq!(cap_from_name(n), None, "{n:?}");
        }
    }

    #[test]
    fn parse_set_errors_name_the_set() {
        let e = parse_set("bounding", &["CAP_KILL".into(), "CAP_TEST".into()]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "process.capabilities.bounding: unknown capability \"CAP_TEST\""
        );
        let m = parse_set("effective", &["CAP_KILL".into(), "CAP_AUDIT_WRITE".into()]).unwrap();
        assert_eq!(m, 0x2000_0020);
    }

    #[test]
    fn caps_in_lists_bits() {
        assert_eq!(caps_in(0x2000_0420).collect::<Vec<_>>(), vec![5, 10, 29]);
        assert_eq!(caps_in(1 << 63).collect::<Vec<_>>(), vec![63]);
        assert_eq!(mask_of(64), 0);
    }

    #[test]
    fn host_values_are_sane() {
        let last = host_last_cap();
        assert!((30..64).contains(&last));
        let s = capget().unwrap();
        assert_eq!(s.effective & !s.permitted, 0);
        assert_eq!(bounding_set(last) & !((1u64 << (last + 1)) - 1), 0);
    }
}
