//! OCI mount options -> mount(2) flags, propagation and filesystem data.

use libc::c_ulong;

pub const MS_NOSYMFOLLOW: c_ulong = 256;

/// mount_setattr(2) attribute bits (linux/mount.h).
pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;
pub const MOUNT_ATTR_NOATIME: u64 = 0x10;
pub const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
pub const MOUNT_ATTR_NODIRATIME: u64 = 0x80;
pub const MOUNT_ATTR_NOSYMFOLLOW: u64 = 0x200000;
pub const MOUNT_ATTR_RELATIME: u64 = 0;
/// The access-time mode field (RELATIME, NOATIME, STRICTATIME).
pub const MOUNT_ATTR_ATIME_MASK: u64 = 0x70;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountOpts {
    /// MS_* bits to set.
    pub flags: c_ulong,
    /// MS_* bits explicitly cleared (e.g. "rw", "suid"): matters on remount.
    pub clear: c_ulong,
    /// MS_SHARED/MS_SLAVE/MS_PRIVATE/MS_UNBINDABLE, with MS_REC if recursive.
    pub propagation: c_ulong,
    /// Options the filesystem parses itself ("mode=755,size=64k").
    pub data: String,
    /// Recursive attributes ("rro", "rnosuid"...): set/clear for
    /// mount_setattr(AT_RECURSIVE).
    pub rec_set: u64,
    pub rec_clear: u64,
    /// runc/crun extension: copy the image's files into a fresh tmpfs.
    pub tmpcopyup: bool,
    pub idmap: bool,
    pub recursive_idmap: bool,
}

impl MountOpts {
    pub fn is_bind(&self) -> bool {
        self.flags & libc::MS_BIND != 0
    }
}

#[derive(Clone, Copy)]
enum Op {
    Set(c_ulong),
    Clear(c_ulong),
    Prop(c_ulong),
    RecSet(u64),
    RecClear(u64),
    /// A recursive access-time mode: one value of the ATIME field.
    RecAtime(u64),
    Nothing,
}

/// Every option we know, for `features` and for parsing.
#[rustfmt::skip]
const TABLE: &[(&str, Op)] = &[
    ("defaults", Op::Nothing),
    ("ro", Op::Set(libc::MS_RDONLY)),
    ("rw", Op::Clear(libc::MS_RDONLY)),
    ("suid", Op::Clear(libc::MS_NOSUID)),
    ("nosuid", Op::Set(libc::MS_NOSUID)),
    ("dev", Op::Clear(libc::MS_NODEV)),
    ("nodev", Op::Set(libc::MS_NODEV)),
    ("exec", Op::Clear(libc::MS_NOEXEC)),
    ("noexec", Op::Set(libc::MS_NOEXEC)),
    ("sync", Op::Set(libc::MS_SYNCHRONOUS)),
    ("async", Op::Clear(libc::MS_SYNCHRONOUS)),
    ("dirsync", Op::Set(libc::MS_DIRSYNC)),
    ("remount", Op::Set(libc::MS_REMOUNT)),
    ("mand", Op::Set(libc::MS_MANDLOCK)),
    ("nomand", Op::Clear(libc::MS_MANDLOCK)),
    ("atime", Op::Clear(libc::MS_NOATIME)),
    ("noatime", Op::Set(libc::MS_NOATIME)),
    ("diratime", Op::Clear(libc::MS_NODIRATIME)),
    ("nodiratime", Op::Set(libc::MS_NODIRATIME)),
    ("relatime", Op::Set(libc::MS_RELATIME)),
    ("norelatime", Op::Clear(libc::MS_RELATIME)),
    ("strictatime", Op::Set(libc::MS_STRICTATIME)),
    ("nostrictatime", Op::Clear(libc::MS_STRICTATIME)),
    ("lazytime", Op::Set(libc::MS_LAZYTIME)),
    ("nolazytime", Op::Clear(libc::MS_LAZYTIME)),
    ("silent", Op::Set(libc::MS_SILENT)),
    ("loud", Op::Clear(libc::MS_SILENT)),
    ("iversion", Op::Set(libc::MS_I_VERSION)),
    ("noiversion", Op::Clear(libc::MS_I_VERSION)),
    ("nosymfollow", Op::Set(libc::MS_NOSYMFOLLOW)),
    ("symfollow", Op::Clear(libc::MS_NOSYMFOLLOW)),
    ("bind", Op::Set(libc::MS_BIND)),
    ("rbind", Op::Set(libc::MS_BIND | libc::MS_REC)),
    ("private", Op::Prop(libc::MS_PRIVATE)),
    ("rprivate", Op::Prop(libc::MS_PRIVATE | libc::MS_REC)),
    ("shared", Op::Prop(libc::MS_SHARED)),
    ("rshared", Op::Prop(libc::MS_SHARED | libc::MS_REC)),
    ("slave", Op::Prop(libc::MS_SLAVE)),
    ("rslave", Op::Prop(libc::MS_SLAVE | libc::MS_REC)),
    ("unbindable", Op::Prop(libc::MS_UNBINDABLE)),
    ("runbindable", Op::Prop(libc::MS_UNBINDABLE | libc::MS_REC)),
    ("rro", Op::RecSet(MOUNT_ATTR_RDONLY)),
    ("rrw", Op::RecClear(MOUNT_ATTR_RDONLY)),
    ("rnosuid", Op::RecSet(MOUNT_ATTR_NOSUID)),
    ("rsuid", Op::RecClear(MOUNT_ATTR_NOSUID)),
    ("rnodev", Op::RecSet(MOUNT_ATTR_NODEV)),
    ("rdev", Op::RecClear(MOUNT_ATTR_NODEV)),
    ("rnoexec", Op::RecSet(MOUNT_ATTR_NOEXEC)),
    ("rexec", Op::RecClear(MOUNT_ATTR_NOEXEC)),
    ("rnodiratime", Op::RecSet(MOUNT_ATTR_NODIRATIME)),
    ("rdiratime", Op::RecClear(MOUNT_ATTR_NODIRATIME)),
    ("rnoatime", Op::RecAtime(MOUNT_ATTR_NOATIME)),
    ("rstrictatime", Op::RecAtime(MOUNT_ATTR_STRICTATIME)),
    ("rrelatime", Op::RecAtime(MOUNT_ATTR_RELATIME)),
    ("rnosymfollow", Op::RecSet(MOUNT_ATTR_NOSYMFOLLOW)),
    ("rsymfollow", Op::RecClear(MOUNT_ATTR_NOSYMFOLLOW)),
];

/// mount(2) flags as mount_setattr(2) attributes to set and to clear. The
/// access-time mode is set only when the flags name one.
pub fn setattr_of(flags: c_ulong) -> (u64, u64) {
    const PAIRS: &[(c_ulong, u64)] = &[
        (libc::MS_RDONLY, MOUNT_ATTR_RDONLY),
        (libc::MS_NOSUID, MOUNT_ATTR_NOSUID),
        (libc::MS_NODEV, MOUNT_ATTR_NODEV),
        (libc::MS_NOEXEC, MOUNT_ATTR_NOEXEC),
        (libc::MS_NODIRATIME, MOUNT_ATTR_NODIRATIME),
        (MS_NOSYMFOLLOW, MOUNT_ATTR_NOSYMFOLLOW),
    ];
    let set = PAIRS
        .iter()
        .filter(|(ms, _)| flags & ms != 0)
        .fold(0, |acc, (_, attr)| acc | attr);
    let atime = if flags & libc::MS_NOATIME != 0 {
        Some(MOUNT_ATTR_NOATIME)
    } else if flags & libc::MS_STRICTATIME != 0 {
        Some(MOUNT_ATTR_STRICTATIME)
    } else if flags & libc::MS_RELATIME != 0 {
        Some(MOUNT_ATTR_RELATIME)
    } else {
        None
    };
    match atime {
        Some(a) => (set | a, MOUNT_ATTR_ATIME_MASK),
        None => (set, 0),
    }
}

fn lookup(o: &str) -> Option<Op> {
    TABLE.iter().find(|(n, _)| *n == o).map(|(_, op)| *op)
}

/// Names `features` reports (runc's list shape).
pub fn known() -> Vec<&'static str> {
    let mut v: Vec<&str> = TABLE.iter().map(|(n, _)| *n).collect();
    v.extend(["tmpcopyup", "idmap", "ridmap"]);
    v.sort_unstable();
    v
}

pub fn parse(options: &[String]) -> MountOpts {
    let mut m = MountOpts::default();
    for o in options {
        match o.as_str() {
            "tmpcopyup" => m.tmpcopyup = true,
            "idmap" => m.idmap = true,
            "ridmap" => {
                m.idmap = true;
                m.recursive_idmap = true;
            }
            _ => match lookup(o) {
                Some(Op::Set(f)) => {
                    m.flags |= f;
                    m.clear &= !f;
                }
                Some(Op::Clear(f)) => {
                    m.flags &= !f;
                    m.clear |= f;
                }
                Some(Op::Prop(f)) => m.propagation = f,
                Some(Op::RecSet(a)) => {
                    m.rec_set |= a;
                    m.rec_clear &= !a;
                }
                Some(Op::RecClear(a)) => {
                    m.rec_clear |= a;
                    m.rec_set &= !a;
                }
                // mount_setattr(2) takes an atime value only with the
                // whole field in attr_clr (EINVAL otherwise).
                Some(Op::RecAtime(a)) => {
                    m.rec_set = (m.rec_set & !MOUNT_ATTR_ATIME_MASK) | a;
                    m.rec_clear |= MOUNT_ATTR_ATIME_MASK;
                }
                Some(Op::Nothing) => {}
                None => {
                    if !m.data.is_empty() {
                        m.data.push(',');
                    }
                    m.data.push_str(o);
                }
            },
        }
    }
    m
}

/// rootfsPropagation value -> MS_* flags.
pub fn propagation(name: &str) -> Option<c_ulong> {
    match lookup(name) {
        Some(Op::Prop(f)) => Some(f),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn setattr_of_cgroup_mount_flags() {
        let f = parse(&["nosuid", "noexec", "nodev", "relatime", "ro"].map(String::from)).flags;
        let set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
        assert_eq!(setattr_of(f), (set, MOUNT_ATTR_ATIME_MASK));
        // No access-time mode named: leave it alone.
        assert_eq!(setattr_of(libc::MS_RDONLY), (MOUNT_ATTR_RDONLY, 0));
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parse_flags_and_data() {
        let m = parse(&s(&[
            "nosuid",
            "strictatime",
            "mode=755",
            "size=65536k",
            "ro",
        ]));
        assert_eq!(
            m.flags,
            libc::MS_NOSUID | libc::MS_STRICTATIME | libc::MS_RDONLY
        );
        assert_eq!(m.data, "mode=755,size=65536k");
        let m = parse(&s(&["rbind", "rprivate", "ro", "rw"]));
        assert!(m.is_bind());
        assert_eq!(m.flags & libc::MS_RDONLY, 0);
        assert_eq!(m.propagation, libc::MS_PRIVATE | libc::MS_REC);
        let m = parse(&s(&["tmpcopyup", "rro"]));
        assert!(m.tmpcopyup);
        assert_eq!(m.rec_set, MOUNT_ATTR_RDONLY);
        assert_eq!(propagation("rslave"), Some(libc::MS_SLAVE | libc::MS_REC));
        // An atime mode clears the whole field; the last one wins.
        let m = parse(&s(&["rnoatime", "rnosuid", "rstrictatime"]));
        assert_eq!(m.rec_set, MOUNT_ATTR_STRICTATIME | MOUNT_ATTR_NOSUID);
        assert_eq!(m.rec_clear, MOUNT_ATTR_ATIME_MASK);
        let m = parse(&s(&["rrelatime"]));
        assert_eq!((m.rec_set, m.rec_clear), (0, MOUNT_ATTR_ATIME_MASK));
        assert_eq!(propagation("bogus"), None);
    }
}
