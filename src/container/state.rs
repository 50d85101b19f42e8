//! A container's persistent state: `<root>/<id>/state.json` (written
//! tmp+rename so readers never see half a file) and `exec.fifo`.

use crate::bail;
use crate::cgroups::Cgroup;
use crate::error::{Context, Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::rc::Rc;

pub const STATE_FILE: &str = "state.json";
pub const FIFO: &str = "exec.fifo";
pub const CONFIG_FILE: &str = "config.json";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Creating,
    Created,
    Running,
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct State {
    pub id: String,
    /// Host pid of the container init; 0 while being created.
    pub pid: i32,
    /// Field 22 of /proc/PID/stat, so a recycled pid is not taken for ours.
    pub start_time: u64,
    pub bundle: String,
    pub rootfs: String,
    pub created: String,
    /// True once create has finished handing over to the init. Before
    /// the annotations and the cgroup: `list` parses only the part of the
    /// file before "cgroup".
    #[serde(default)]
    pub created_done: bool,
    /// The creating user (the state dir's owner, runc's OWNER column),
    /// so `list` needs no stat per container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<u32>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub cgroup: Cgroup,
    /// Namespaces the init lives in (type, path), for exec and delete.
    #[serde(default)]
    pub namespaces: Vec<(String, String)>,
    #[serde(default)]
    pub systemd_cgroup: bool,
    #[serde(default)]
    pub rootless: bool,
    /// The `create` process (pid, start time) while it runs: a state
    /// without an init yet is "creating" only while its creator lives.
    #[serde(default)]
    pub creator: Option<(i32, u64)>,
    /// Hooks later commands run (start, delete).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub poststart: Vec<crate::spec::Hook>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub poststop: Vec<crate::spec::Hook>,
    /// Without a mount namespace the container's mounts are in the
    /// runtime's namespace, on a bind of the rootfs: that mount's id, for
    /// `delete` to detach (0: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rootfs_mount: Option<u64>,
}

/// The OCI state as `runc state` prints it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OciState<'a> {
    pub oci_version: &'a str,
    pub id: &'a str,
    pub pid: i32,
    pub status: &'a str,
    pub bundle: &'a str,
    pub rootfs: &'a str,
    pub created: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: &'a BTreeMap<String, String>,
    pub owner: &'a str,
}

/// Container ids become directory names and cgroup names: keep them to a
/// safe alphabet (runc allows `[\w+-\.]+`).
pub fn validate_id(id: &str) -> Result<()> {
    if id.is_empty() {
        bail!("invalid container id: empty");
    }
    if id.len() > 1024 {
        bail!("invalid container id: longer than 1024 bytes");
    }
    if id == "." || id == ".." {
        bail!("invalid container id {id:?}");
    }
    if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.'))
    {
        bail!("invalid container id {id:?}: only letters, digits and _+-. are allowed");
    }
    Ok(())
}

pub struct Dir {
    pub path: PathBuf,
}

impl Dir {
    pub fn new(root: &Path, id: &str) -> Self {
        Dir {
            path: root.join(id),
        }
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub fn exists(&self) -> bool {
        self.path.is_dir()
    }

    /// Take the container's lock (flock on its directory) for the rest of
    /// the process's life.
    pub fn lock(&self) -> Result<OwnedFd> {
        let fd = rustix::fs::open(
            &self.path,
            rustix::fs::OFlags::RDONLY
                | rustix::fs::OFlags::DIRECTORY
                | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .ctx(|| format!("open state dir {}", self.path.display()))?;
        rustix::fs::flock(fd.as_fd(), rustix::fs::FlockOperation::LockExclusive)
            .ctx(|| format!("lock state dir {}", self.path.display()))?;
        Ok(fd)
    }

    pub fn load(&self, id: &str) -> Result<State> {
        let p = self.file(STATE_FILE);
        let buf = &mut Vec::new();
        match read_small(&p, buf) {
            Ok(()) => {}
            // No state yet (a create in its first steps, or one killed
            // before it wrote any): as runc, the container doesn't exist;
            // delete --force still removes the directory.
            Err(rustix::io::Errno::NOENT) => bail!("container {id} does not exist"),
            Err(e) => {
                return Err(Error::errno(
                    format!("read {}", p.display()),
                    e.raw_os_error(),
                ))
            }
        }
        serde_json::from_slice(buf).map_err(|e| {
            Error::msg(format!(
                "container {id}: corrupt state file {}: {e}",
                p.display()
            ))
        })
    }

    pub fn save(&self, st: &State) -> Result<()> {
        let data = serde_json::to_vec(st).map_err(|e| Error::msg(format!("encode state: {e}")))?;
        write_atomic(&self.file(STATE_FILE), &data)?;
        if st.created_done {
            // Best effort: without the link `list` reads state.json.
            if let Some(target) = brief_link_target(&data, st.cgroup.freeze_file()) {
                let _ = rustix::fs::symlink(target, self.file(BRIEF_LINK));
            }
        }
        Ok(())
    }
}

/// The head of a state file plus `freeze_file`, when it fits a link.
fn brief_link_target(state: &[u8], freeze_file: Option<String>) -> Option<String> {
    let mut head = head_of(state)?;
    if let Some(f) = freeze_file.and_then(|f| serde_json::to_string(&f).ok()) {
        head.pop();
        head.extend_from_slice(b",\"freeze_file\":");
        head.extend_from_slice(f.as_bytes());
        head.push(b'}');
    }
    String::from_utf8(head).ok().filter(|t| t.len() < 4096)
}

/// `list`'s part of a finished container's state (see `Brief`), kept as
/// the target of a symlink in its state dir: one readlinkat per container
/// instead of an open, read and close of state.json. Nothing in it changes
/// after create, so it is written once, by the save that finishes create.
/// Never followed; absent (a runway that predates it, a head too long for
/// a link) `list` reads state.json instead. It adds `freeze_file` (see
/// `Cgroup::freeze_file`): a live container is paused or not without a
/// read of its state.
pub(super) const BRIEF_LINK: &str = "brief";

/// tmp + fsync-free rename: state lives on tmpfs under /run; atomicity is
/// what readers need, not durability.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    if let Err(e) = std::fs::write(&tmp, data) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).ctx(|| format!("write {}", path.display()));
    }
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::errno(
            format!("rename {}", path.display()),
            e.raw_os_error().unwrap_or(libc::EIO),
        )
    })
}

/// Start time (clock ticks since boot) of a live, non-zombie process.
pub fn proc_start_time(pid: i32) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    // Raw open/read into a stack buffer: no allocation, no fstat, no
    // fcntl (musl's open adds one) — list calls this per container.
    let mut path = [0u8; 32];
    let mut w = std::io::Cursor::new(&mut path[..]);
    std::io::Write::write_fmt(&mut w, format_args!("/proc/{pid}/stat\0")).ok()?;
    let len = w.position() as usize;
    let cpath = std::ffi::CStr::from_bytes_with_nul(path.get(..len)?).ok()?;
    let fd = rustix::fs::open(
        cpath,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .ok()?;
    let mut buf = [0u8; 1024];
    let n = rustix::io::read(&fd, &mut buf).ok()?;
    let data = buf.get(..n)?;
    // comm may contain spaces and ')': fields start after the last ')'.
    let close = memchr::memrchr(b')', data)?;
    let rest = std::str::from_utf8(data.get(close + 2..)?).ok()?;
    let mut it = rest.split(' ');
    let state = it.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    // After ')' come fields 3.. ; starttime is field 22 -> index 19 here.
    it.nth(18)?.trim_end().parse().ok()
}

/// Read a small file into `buf` with one open and as few reads as it
/// takes (a short read of a regular file is its end).
pub fn read_small(path: &Path, buf: &mut Vec<u8>) -> std::result::Result<(), rustix::io::Errno> {
    let fd = rustix::fs::open(
        path,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    read_fd(&fd, buf)
}

pub(super) fn read_fd(
    fd: &OwnedFd,
    buf: &mut Vec<u8>,
) -> std::result::Result<(), rustix::io::Errno> {
    buf.clear();
    loop {
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(16384);
        }
        let spare = buf.spare_capacity_mut();
        let asked = spare.len();
        let (n, _) = rustix::io::read(fd, spare)?;
        let filled = n.len();
        let new_len = buf.len() + filled;
        // SAFETY: the kernel initialised `filled` bytes of the spare capacity.
        unsafe { buf.set_len(new_len) };
        if filled < asked {
            return Ok(());
        }
    }
}

impl State {
    pub fn hook_state(&self, status: Status) -> Vec<u8> {
        crate::container::hooks::state_json(
            &self.id,
            status.as_str(),
            self.pid,
            &self.bundle,
            &self.annotations,
        )
    }

    pub fn init_alive(&self) -> bool {
        self.pid > 0 && proc_start_time(self.pid) == Some(self.start_time)
    }

    pub fn status(&self, dir: &Dir) -> Status {
        if !self.created_done {
            let creator_alive = self
                .creator
                .is_some_and(|(p, t)| proc_start_time(p) == Some(t));
            return if (self.pid > 0 && self.init_alive()) || (self.pid == 0 && creator_alive) {
                Status::Creating
            } else {
                Status::Stopped
            };
        }
        if !self.init_alive() {
            return Status::Stopped;
        }
        if dir.file(FIFO).exists() {
            return Status::Created;
        }
        if self.cgroup.is_frozen() {
            return Status::Paused;
        }
        Status::Running
    }

    pub fn oci<'a>(&'a self, status: Status, owner: &'a str) -> OciState<'a> {
        OciState {
            oci_version: crate::spec::OCI_VERSION,
            id: &self.id,
            pid: if status == Status::Stopped {
                0
            } else {
                self.pid
            },
            status: status.as_str(),
            bundle: &self.bundle,
            rootfs: &self.rootfs,
            created: &self.created,
            annotations: &self.annotations,
            owner,
        }
    }
}

/// The text of a state file before `,"cgroup":`, closed with `}`.
pub(super) fn head_of(data: &[u8]) -> Option<Vec<u8>> {
    let pos = memchr::memmem::find(data, b",\"cgroup\":")?;
    let mut head = Vec::with_capacity(pos + 1);
    head.extend_from_slice(data.get(..pos)?);
    head.push(b'}');
    Some(head)
}

/// The user owning a state dir, by name when /etc/passwd knows it (runc
/// prints "root"). `list` asks for many dirs: /etc/passwd is read once and
/// each uid looked up once.
#[derive(Default)]
pub struct Owners {
    passwd: Option<String>,
    known: Vec<(u32, Rc<str>)>,
}

impl Owners {
    pub fn name(&mut self, path: &Path) -> String {
        use std::os::unix::fs::MetadataExt;
        match std::fs::metadata(path) {
            Ok(m) => self.of_uid(m.uid()).to_string(),
            Err(_) => String::new(),
        }
    }

    pub fn of_uid(&mut self, uid: u32) -> Rc<str> {
        if let Some((_, n)) = self.known.iter().find(|(u, _)| *u == uid) {
            return n.clone();
        }
        let pw = self
            .passwd
            .get_or_insert_with(|| std::fs::read_to_string("/etc/passwd").unwrap_or_default());
        let mut name = None;
        for line in pw.lines() {
            let mut f = line.split(':');
            if let (Some(n), Some(u)) = (f.next(), f.nth(1)) {
                if u.parse::<u32>() == Ok(uid) {
                    name = Some(Rc::from(n));
                    break;
                }
            }
        }
        let name: Rc<str> = name.unwrap_or_else(|| {
            if uid == 0 {
                Rc::from("root")
            } else {
                Rc::from(format!("#{uid}"))
            }
        });
        self.known.push((uid, name.clone()));
        name
    }
}

pub fn owner_of(path: &Path) -> String {
    Owners::default().name(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(validate_id("abc-1.2_x+y").is_ok());
        for bad in ["", ".", "..", "a/b", "../x", "a b", "a\0b"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
        assert!(validate_id(&"a".repeat(1025)).is_err());
    }

    #[test]
    fn self_start_time() {
        let me = std::process::id() as i32;
        assert!(proc_start_time(me).is_some());
        assert!(proc_start_time(0).is_none());
    }
}
