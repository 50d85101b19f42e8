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
const BRIEF_LINK: &str = "brief";

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

fn read_fd(fd: &OwnedFd, buf: &mut Vec<u8>) -> std::result::Result<(), rustix::io::Errno> {
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

/// One row of `list`: what it prints, nothing else.
pub struct Listed {
    pub id: String,
    /// 0 once stopped, as runc prints it.
    pub pid: i32,
    pub status: Status,
    pub bundle: String,
    pub rootfs: String,
    pub created: String,
    pub annotations: BTreeMap<String, String>,
    pub owner: Rc<str>,
}

impl Listed {
    pub fn oci(&self) -> OciState<'_> {
        OciState {
            oci_version: crate::spec::OCI_VERSION,
            id: &self.id,
            pid: self.pid,
            status: self.status.as_str(),
            bundle: &self.bundle,
            rootfs: &self.rootfs,
            created: &self.created,
            annotations: &self.annotations,
            owner: &self.owner,
        }
    }
}

/// The part of state.json `list` prints or needs for the status; serde
/// skips the rest (cgroup, namespaces, hooks) without building it.
#[derive(Deserialize)]
struct Brief {
    id: String,
    pid: i32,
    start_time: u64,
    bundle: String,
    rootfs: String,
    created: String,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    /// None when absent: a cut-short parse (see `brief`) then falls back
    /// to the whole file.
    created_done: Option<bool>,
    #[serde(default)]
    owner: Option<u32>,
    /// Only in the brief link.
    #[serde(default)]
    freeze_file: Option<String>,
}

/// The `Brief` of a state file. Most of a state.json is the cgroup plan,
/// which `list` does not print; runway writes it after everything `list`
/// reads, so the text before `,"cgroup":` closed with `}` is parsed
/// first. A cut that lands elsewhere (an annotation named "cgroup", a
/// file from an older runway) fails to parse or lacks created_done, and
/// the whole file is parsed instead.
fn brief(data: &[u8]) -> Option<Brief> {
    if let Some(head) = head_of(data) {
        if let Ok(b) = serde_json::from_slice::<Brief>(&head) {
            if b.created_done.is_some() {
                return Some(b);
            }
        }
    }
    serde_json::from_slice(data).ok()
}

/// The text of a state file before `,"cgroup":`, closed with `}`.
fn head_of(data: &[u8]) -> Option<Vec<u8>> {
    let pos = memchr::memmem::find(data, b",\"cgroup\":")?;
    let mut head = Vec::with_capacity(pos + 1);
    head.extend_from_slice(data.get(..pos)?);
    head.push(b'}');
    Some(head)
}

/// The `Brief` of container `id`, from its link or else its state file;
/// and whether `data` now holds that state file.
fn read_brief(
    rootfd: &OwnedFd,
    id: &str,
    rel: &mut Vec<u8>,
    link: &mut [u8],
    data: &mut Vec<u8>,
) -> Option<(Brief, bool)> {
    rel.clear();
    rel.extend_from_slice(id.as_bytes());
    rel.push(b'/');
    rel.extend_from_slice(BRIEF_LINK.as_bytes());
    rel.push(0);
    let path = std::ffi::CStr::from_bytes_with_nul(rel).ok()?;
    let room = link.len();
    if let Ok(n) = rustix::fs::readlinkat_raw(rootfd, path, &mut *link) {
        // A full buffer may be cut short: such links are never written.
        let b = link
            .get(..n)
            .filter(|t| t.len() < room)
            .and_then(|t| serde_json::from_slice::<Brief>(t).ok())
            .filter(|b| b.created_done.is_some() && b.owner.is_some());
        if let Some(b) = b {
            return Some((b, false));
        }
    }
    let fd = read_state_at(rootfd, id, rel, data).ok()?;
    let mut b = brief(data)?;
    // The owner is the state dir's (runc's OWNER column): recorded by
    // create, or (older states) that of state.json, written by the same
    // user.
    if b.owner.is_none() {
        b.owner = rustix::fs::fstat(&fd).ok().map(|s| s.st_uid);
    }
    Some((b, true))
}

/// The cgroup of a state file, for the freezer check of live inits.
#[derive(Deserialize)]
struct CgroupOnly {
    #[serde(default)]
    cgroup: Cgroup,
}

/// Every finished container under root, sorted by id. Dirs without a
/// readable state are skipped (being created, or debris).
///
/// This is the one command whose cost grows with the number of containers,
/// so per entry it is one openat+read+close of state.json relative to the
/// root fd, a parse of its head (see `brief`) and a kill(pid, 0) (past
/// INLINE containers, one read of /proc for all); only live inits cost more
/// (their start time, the fifo, the cgroup freezer).
pub fn list(root: &Path) -> Result<Vec<Listed>> {
    use rustix::fs::{Mode, OFlags};
    let rootfd = match rustix::fs::open(
        root,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(rustix::io::Errno::NOENT) => return Ok(Vec::new()),
        Err(e) => {
            return Err(Error::errno(
                format!("read {}", root.display()),
                e.raw_os_error(),
            ))
        }
    };
    let mut out = Vec::new();
    let mut owners = Owners::default();
    let mut data = Vec::with_capacity(16384);
    let mut rel = Vec::with_capacity(64);
    let mut scratch = Vec::new();
    // Containers past the first INLINE: (index in out, init start time,
    // freeze file).
    let mut deferred: Vec<(usize, u64, Option<String>)> = Vec::new();
    let mut dents = vec![std::mem::MaybeUninit::<u8>::uninit(); 32768];
    let mut it = rustix::fs::RawDir::new(&rootfd, &mut dents);
    let mut ids = Vec::new();
    while let Some(ent) = it.next() {
        let ent =
            ent.map_err(|e| Error::errno(format!("read {}", root.display()), e.raw_os_error()))?;
        if !matches!(
            ent.file_type(),
            rustix::fs::FileType::Directory | rustix::fs::FileType::Unknown
        ) {
            continue;
        }
        let name = ent.file_name();
        let Ok(id) = std::str::from_utf8(name.to_bytes()) else {
            continue;
        };
        if validate_id(id).is_err() {
            continue;
        }
        ids.push(id.to_owned());
    }
    sort_ids(&mut ids);
    out.reserve_exact(ids.len());
    let mut link = vec![0u8; 4096];
    for id in &ids {
        let Some((b, have_state)) = read_brief(&rootfd, id, &mut rel, &mut link, &mut data) else {
            continue;
        };
        if b.created_done != Some(true) {
            continue;
        }
        let owner = match b.owner {
            Some(uid) => owners.of_uid(uid),
            None => Rc::from(""),
        };
        let (pid, start) = (b.pid, b.start_time);
        let mut entry = Listed {
            id: b.id,
            pid,
            status: Status::Stopped,
            bundle: b.bundle,
            rootfs: b.rootfs,
            created: b.created,
            annotations: b.annotations,
            owner,
        };
        if out.len() < INLINE {
            settle(
                &rootfd,
                &mut entry,
                start,
                pid_exists(pid),
                if have_state {
                    Freezer::State(&data)
                } else {
                    Freezer::named(&b.freeze_file)
                },
                &mut rel,
                &mut scratch,
            );
        } else {
            deferred.push((out.len(), start, b.freeze_file));
        }
        out.push(entry);
    }
    // The rest, after every state was read (an init alive then and gone
    // now is rightly stopped; one started meanwhile is seen): one read of
    // /proc says which inits live, instead of a kill(pid, 0) each. Live
    // ones are few; their state is read again for the freezer.
    if !deferred.is_empty() {
        let live = live_pids();
        for (i, start, freeze_file) in deferred {
            let Some(e) = out.get_mut(i) else { continue };
            let exists = match &live {
                Some(set) => set.binary_search(&e.pid).is_ok(),
                None => pid_exists(e.pid),
            };
            let freezer = Freezer::named(&freeze_file);
            settle(&rootfd, e, start, exists, freezer, &mut rel, &mut scratch);
        }
    }
    Ok(out)
}

/// Ids in byte order, as runc lists them. Engines and scripts name their
/// containers with long shared prefixes: comparing only past the prefix
/// every id shares keeps each comparison short.
fn sort_ids(ids: &mut [String]) {
    let Some(first) = ids.first() else { return };
    let first = first.as_bytes();
    let mut shared = first.len();
    for id in ids.iter() {
        shared = first
            .iter()
            .zip(id.as_bytes())
            .take(shared)
            .take_while(|(a, b)| a == b)
            .count();
    }
    ids.sort_by(|a, b| {
        let (a, b) = (a.as_bytes(), b.as_bytes());
        a.get(shared..)
            .unwrap_or_default()
            .cmp(b.get(shared..).unwrap_or_default())
    });
}

/// Containers whose status `list` settles as it reads them; past these one
/// read of /proc is cheaper than a kill(pid, 0) each.
const INLINE: usize = 64;

/// kill(pid, 0) answers "no such process" without the /proc lookup a
/// failed open costs.
fn pid_exists(pid: i32) -> bool {
    rustix::process::Pid::from_raw(pid)
        .is_some_and(|p| rustix::process::test_kill_process(p) != Err(rustix::io::Errno::SRCH))
}

/// State::status for a finished create, given whether its init's pid
/// exists: stopped (pid 0) unless that is still our init; then created
/// while the fifo exists, paused while its cgroup is frozen, running
/// otherwise. `state` is its state file if at hand, else it is read.
fn settle(
    rootfd: &OwnedFd,
    e: &mut Listed,
    start: u64,
    exists: bool,
    freezer: Freezer,
    rel: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
) {
    if !(exists && proc_start_time(e.pid) == Some(start)) {
        e.pid = 0;
        e.status = Status::Stopped;
        return;
    }
    rel.clear();
    rel.extend_from_slice(e.id.as_bytes());
    rel.extend_from_slice(b"/exec.fifo\0");
    let fifo = std::ffi::CStr::from_bytes_with_nul(rel)
        .is_ok_and(|p| rustix::fs::statat(rootfd, p, rustix::fs::AtFlags::empty()).is_ok());
    let mut paused = || match freezer {
        Freezer::State(bytes) => frozen(bytes),
        Freezer::File(f) => crate::cgroups::file_says_frozen(f),
        Freezer::Unknown => {
            read_state_at(rootfd, &e.id, rel, scratch).is_ok_and(|_| frozen(scratch))
        }
    };
    e.status = if fifo {
        Status::Created
    } else if paused() {
        Status::Paused
    } else {
        Status::Running
    };
}

/// How `settle` learns whether a live container is paused.
enum Freezer<'a> {
    /// From its state file, at hand.
    State(&'a [u8]),
    /// From this file (its brief link named it).
    File(&'a str),
    /// From its state file, read for it.
    Unknown,
}

impl<'a> Freezer<'a> {
    /// From the file a brief link named, else from the state file.
    fn named(freeze_file: &'a Option<String>) -> Self {
        match freeze_file {
            Some(f) => Freezer::File(f),
            None => Freezer::Unknown,
        }
    }
}

/// Whether the cgroup a state file names is frozen.
fn frozen(state: &[u8]) -> bool {
    serde_json::from_slice::<CgroupOnly>(state).is_ok_and(|c| c.cgroup.is_frozen())
}

/// `<root>/<id>/state.json` into `data`; the open file, for its owner.
fn read_state_at(
    rootfd: &OwnedFd,
    id: &str,
    rel: &mut Vec<u8>,
    data: &mut Vec<u8>,
) -> std::result::Result<OwnedFd, rustix::io::Errno> {
    rel.clear();
    rel.extend_from_slice(id.as_bytes());
    rel.extend_from_slice(b"/state.json\0");
    let path = std::ffi::CStr::from_bytes_with_nul(rel).map_err(|_| rustix::io::Errno::INVAL)?;
    let fd = rustix::fs::openat(
        rootfd,
        path,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    read_fd(&fd, data)?;
    Ok(fd)
}

/// Every process id in /proc, sorted; None when /proc can't be read.
fn live_pids() -> Option<Vec<i32>> {
    let proc = rustix::fs::open(
        "/proc",
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )
    .ok()?;
    let mut buf = vec![std::mem::MaybeUninit::<u8>::uninit(); 32768];
    let mut it = rustix::fs::RawDir::new(&proc, &mut buf);
    let mut pids = Vec::new();
    while let Some(ent) = it.next() {
        let ent = ent.ok()?;
        if let Some(pid) = std::str::from_utf8(ent.file_name().to_bytes())
            .ok()
            .and_then(|n| n.parse::<i32>().ok())
        {
            pids.push(pid);
        }
    }
    pids.sort_unstable();
    Some(pids)
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
    fn ids_sort_in_byte_order_past_a_shared_prefix() {
        let mut ids: Vec<String> = ["job-b10", "job-b2", "job-a", "job-b", "job-", "job-B"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut want = ids.clone();
        want.sort();
        sort_ids(&mut ids);
        assert_eq!(ids, want);
        let mut one = vec!["x".to_string()];
        sort_ids(&mut one);
        sort_ids(&mut []);
    }

    /// Statuses on both sides of INLINE: the first containers are settled
    /// as read, the rest after one read of /proc; from a brief link or the
    /// state file alike.
    #[test]
    fn list_settles_inline_and_deferred_alike() {
        let root = std::env::temp_dir().join(format!("runway-list-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let me = rustix::process::getpid().as_raw_nonzero().get();
        let start = proc_start_time(me).unwrap();
        let n = INLINE + 10;
        for i in 0..n {
            let d = root.join(format!("c{i:03}"));
            std::fs::create_dir_all(&d).unwrap();
            // Even: "our" init is this live test process; odd: a pid past
            // any pid_max, gone.
            let pid = if i % 2 == 0 { me } else { 4_194_399 };
            let st = serde_json::json!({
                "id": format!("c{i:03}"), "pid": pid, "start_time": start,
                "bundle": "/b", "rootfs": "/r", "created": "t", "created_done": true,
                "annotations": {}, "cgroup": {}
            });
            std::fs::write(d.join("state.json"), st.to_string()).unwrap();
            // Some with the link create leaves, one with a link that is
            // not a Brief: each reads as its state file says.
            if i % 3 == 0 {
                let mut b = serde_json::json!({
                    "id": format!("c{i:03}"), "pid": pid, "start_time": start,
                    "bundle": "/b", "rootfs": "/r", "created": "t", "created_done": true,
                    "owner": 0, "annotations": {}
                });
                // One live one whose link names a freezer that says frozen.
                if i == 6 {
                    let f = d.join("freezer.state");
                    std::fs::write(&f, "FROZEN\n").unwrap();
                    b["freeze_file"] = f.to_string_lossy().into();
                }
                std::os::unix::fs::symlink(b.to_string(), d.join(BRIEF_LINK)).unwrap();
            } else if i == 1 {
                std::os::unix::fs::symlink("{\"id\":", d.join(BRIEF_LINK)).unwrap();
            }
            if i % 4 == 0 {
                std::fs::write(d.join(FIFO), "").unwrap();
            }
        }
        let got = list(&root).unwrap();
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!(got.len(), n);
        for (i, e) in got.iter().enumerate() {
            let want = match i % 4 {
                _ if i == 6 => (me, Status::Paused),
                0 => (me, Status::Created),
                2 => (me, Status::Running),
                _ => (0, Status::Stopped),
            };
            assert_eq!((e.pid, e.status), want, "{}", e.id);
        }
    }

    #[test]
    fn brief_reads_the_head_or_the_whole_file() {
        let base = r#"{"id":"a","pid":7,"start_time":1,"bundle":"/b","rootfs":"/r","created":"t","#;
        // As runway writes it: only the head is parsed (the tail here is
        // not even JSON).
        let cut = format!(r#"{base}"created_done":true,"annotations":{{}},"cgroup":<bulk>"#);
        let b = brief(cut.as_bytes()).unwrap();
        assert_eq!((b.id.as_str(), b.pid, b.created_done), ("a", 7, Some(true)));
        // An annotation named "cgroup": the cut lands inside it, the whole
        // file is parsed.
        let ann = format!(
            r#"{base}"created_done":true,"annotations":{{"x":"1","cgroup":"y"}},"cgroup":{{}}}}"#
        );
        let b = brief(ann.as_bytes()).unwrap();
        assert_eq!(b.annotations.get("cgroup").map(String::as_str), Some("y"));
        // An older layout with created_done at the end.
        let old = format!(r#"{base}"annotations":{{}},"cgroup":{{}},"created_done":true}}"#);
        assert_eq!(brief(old.as_bytes()).unwrap().created_done, Some(true));
        // Still being created.
        let new = format!(r#"{base}"annotations":{{}},"cgroup":{{}}}}"#);
        assert_eq!(brief(new.as_bytes()).unwrap().created_done, None);
    }

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
