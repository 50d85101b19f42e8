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

enum Op {
    Set(c_ulong),
    Clear(c_ulong),
    Prop(c_ulong),
    RecSet(u64),
    RecClear(u64),
    Nothing,
}

fn lookup(o: &str) -> Option<Op> {
    use libc::*;
    Some(match o {
        "defaults" => Op::Nothing,
        "ro" => Op::Set(MS_RDONLY),
        "rw" => Op::Clear(MS_RDONLY),
        "suid" => Op::Clear(MS_NOSUID),
        "nosuid" => Op::Set(MS_NOSUID),
        "dev" => Op::Clear(MS_NODEV),
        "nodev" => Op::Set(MS_NODEV),
        "exec" => Op::Clear(MS_NOEXEC),
        "noexec" => Op::Set(MS_NOEXEC),
        "sync" => Op::Set(MS_SYNCHRONOUS),
        "async" => Op::Clear(MS_SYNCHRONOUS),
        "dirsync" => Op::Set(MS_DIRSYNC),
        "remount" => Op::Set(MS_REMOUNT),
        "mand" => Op::Set(MS_MANDLOCK),
        "nomand" => Op::Clear(MS_MANDLOCK),
        "atime" => Op::Clear(MS_NOATIME),
        "noatime" => Op::Set(MS_NOATIME),
        "diratime" => Op::Clear(MS_NODIRATIME),
        "nodiratime" => Op::Set(MS_NODIRATIME),
        "relatime" => Op::Set(MS_RELATIME),
        "norelatime" => Op::Clear(MS_RELATIME),
        "strictatime" => Op::Set(MS_STRICTATIME),
        "nostrictatime" => Op::Clear(MS_STRICTATIME),
        "lazytime" => Op::Set(MS_LAZYTIME),
        "nolazytime" => Op::Clear(MS_LAZYTIME),
        "silent" => Op::Set(MS_SILENT),
        "loud" => Op::Clear(MS_SILENT),
        "iversion" => Op::Set(MS_I_VERSION),
        "noiversion" => Op::Clear(MS_I_VERSION),
        "nosymfollow" => Op::Set(MS_NOSYMFOLLOW),
        "symfollow" => Op::Clear(MS_NOSYMFOLLOW),
        "bind" => Op::Set(MS_BIND),
        "rbind" => Op::Set(MS_BIND | MS_REC),
        "private" => Op::Prop(MS_PRIVATE),
        "rprivate" => Op::Prop(MS_PRIVATE | MS_REC),
        "shared" => Op::Prop(MS_SHARED),
        "rshared" => Op::Prop(MS_SHARED | MS_REC),
        "slave" => Op::Prop(MS_SLAVE),
        "rslave" => Op::Prop(MS_SLAVE | MS_REC),
        "unbindable" => Op::Prop(MS_UNBINDABLE),
        "runbindable" => Op::Prop(MS_UNBINDABLE | MS_REC),
        "rro" => Op::RecSet(MOUNT_ATTR_RDONLY),
        "rrw" => Op::RecClear(MOUNT_ATTR_RDONLY),
        "rnosuid" => Op::RecSet(MOUNT_ATTR_NOSUID),
        "rsuid" => Op::RecClear(MOUNT_ATTR_NOSUID),
        "rnodev" => Op::RecSet(MOUNT_ATTR_NODEV),
        "rdev" => Op::RecClear(MOUNT_ATTR_NODEV),
        "rnoexec" => Op::RecSet(MOUNT_ATTR_NOEXEC),
        "rexec" => Op::RecClear(MOUNT_ATTR_NOEXEC),
        "rnodiratime" => Op::RecSet(MOUNT_ATTR_NODIRATIME),
        "rdiratime" => Op::RecClear(MOUNT_ATTR_NODIRATIME),
        "rnoatime" => Op::RecSet(MOUNT_ATTR_NOATIME),
        "rstrictatime" => Op::RecSet(MOUNT_ATTR_STRICTATIME),
        "rnosymfollow" => Op::RecSet(MOUNT_ATTR_NOSYMFOLLOW),
        "rsymfollow" => Op::RecClear(MOUNT_ATTR_NOSYMFOLLOW),
        _ => return None,
    })
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
        assert_eq!(propagation("bogus"), None);
    }
}
