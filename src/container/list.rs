//! `list`: every finished container under a root, read as cheaply as
//! the state layout allows (see `state::BRIEF_LINK`).

use super::brief::{Brief, Seen};
use super::list_cache;
use super::state::{
    head_of, proc_start_time, read_fd, validate_id, OciState, Owners, Status, BRIEF_LINK,
};
use crate::cgroups::Cgroup;
use crate::error::{Error, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::rc::Rc;

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

/// Buffers reused from one state dir to the next.
struct Reader {
    rel: Vec<u8>,
    link: Vec<u8>,
    data: Vec<u8>,
}

impl Reader {
    fn new() -> Self {
        Reader {
            rel: Vec::with_capacity(64),
            link: vec![0u8; 4096],
            data: Vec::with_capacity(16384),
        }
    }

    /// State dir `id`.
    fn read(&mut self, rootfd: &OwnedFd, id: &str) -> Seen {
        match self.brief(rootfd, id) {
            Some(b) if b.created_done == Some(true) => Seen::Done(b),
            _ => Seen::Pending(id.to_owned()),
        }
    }

    /// The `Brief` of container `id`, from its link or else its state file.
    fn brief(&mut self, rootfd: &OwnedFd, id: &str) -> Option<Brief> {
        let rel = &mut self.rel;
        rel.clear();
        rel.extend_from_slice(id.as_bytes());
        rel.push(b'/');
        rel.extend_from_slice(BRIEF_LINK.as_bytes());
        rel.push(0);
        let path = std::ffi::CStr::from_bytes_with_nul(rel).ok()?;
        let room = self.link.len();
        if let Ok(n) = rustix::fs::readlinkat_raw(rootfd, path, &mut self.link[..]) {
            // A full buffer may be cut short: such links are never written.
            let b = self
                .link
                .get(..n)
                .filter(|t| t.len() < room)
                .and_then(|t| serde_json::from_slice::<Brief>(t).ok())
                .filter(|b| b.created_done.is_some() && b.owner.is_some());
            if b.is_some() {
                return b;
            }
        }
        let fd = read_state_at(rootfd, id, &mut self.rel, &mut self.data).ok()?;
        let mut b = brief(&self.data)?;
        // The owner is the state dir's (runc's OWNER column): recorded by
        // create, or (older states) that of state.json, written by the same
        // user.
        if b.owner.is_none() {
            b.owner = rustix::fs::fstat(&fd).ok().map(|s| s.st_uid);
        }
        Some(b)
    }
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
/// This is the one command whose cost grows with the number of containers.
/// What it prints of each is read from the list cache while that holds
/// (see `list_cache`), else from each state dir: one readlinkat of its
/// brief link, or (older states) a read of the head of state.json. Then
/// a status for each: one read of /proc for all, or a kill(pid, 0) each
/// when few; only live inits cost more (their start time, the fifo, the
/// cgroup freezer).
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
    let mut rd = Reader::new();
    let cacheable = list_cache::trusted_fs(&rootfd);
    let mut seen = match cacheable.then(|| list_cache::load(&rootfd)).flatten() {
        Some(seen) => seen,
        None => scan(&rootfd, root, &mut rd, cacheable)?,
    };
    for s in seen.iter_mut() {
        if let Seen::Pending(id) = s {
            *s = rd.read(&rootfd, id);
        }
    }
    Ok(settle_all(&rootfd, seen, &mut rd))
}

/// Every state dir under root, read one by one; the list cache (on a
/// filesystem that may have one) is rewritten from what was read.
fn scan(rootfd: &OwnedFd, root: &Path, rd: &mut Reader, cacheable: bool) -> Result<Vec<Seen>> {
    let writer = cacheable
        .then(|| list_cache::Writer::start(rootfd))
        .flatten();
    let mut dents = vec![std::mem::MaybeUninit::<u8>::uninit(); 32768];
    let mut it = rustix::fs::RawDir::new(rootfd, &mut dents);
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
    let seen: Vec<Seen> = ids.iter().map(|id| rd.read(rootfd, id)).collect();
    if cacheable {
        list_cache::keep(rootfd, writer, &seen);
    }
    Ok(seen)
}

/// Each container's status, once all were read (an init alive then and
/// gone now is rightly stopped; one started meanwhile is seen). Past
/// INLINE containers one read of /proc says which inits live, instead of
/// a kill(pid, 0) each.
fn settle_all(rootfd: &OwnedFd, seen: Vec<Seen>, rd: &mut Reader) -> Vec<Listed> {
    let live = if seen.len() > INLINE {
        live_pids()
    } else {
        None
    };
    let mut owners = Owners::default();
    let mut out = Vec::with_capacity(seen.len());
    for s in seen {
        let Seen::Done(f) = s else { continue };
        let exists = match &live {
            Some(set) => set.binary_search(&f.pid).is_ok(),
            None => pid_exists(f.pid),
        };
        let owner = match f.owner {
            Some(uid) => owners.of_uid(uid),
            None => Rc::from(""),
        };
        let mut e = Listed {
            id: f.id,
            pid: f.pid,
            status: Status::Stopped,
            bundle: f.bundle,
            rootfs: f.rootfs,
            created: f.created,
            annotations: f.annotations,
            owner,
        };
        let freezer = Freezer::named(&f.freeze_file);
        settle(
            rootfd,
            &mut e,
            f.start_time,
            exists,
            freezer,
            &mut rd.rel,
            &mut rd.data,
        );
        out.push(e);
    }
    out
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

/// Up to this many containers, a kill(pid, 0) each is cheaper than one
/// read of /proc.
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
/// otherwise.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::state::FIFO;

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

    /// Statuses on both sides of INLINE (a kill each, or one read of
    /// /proc), from a brief link or the state file alike.
    #[test]
    fn list_settles_few_and_many_alike() {
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
        let many = list(&root).unwrap();
        for i in INLINE..n {
            std::fs::remove_dir_all(root.join(format!("c{i:03}"))).unwrap();
        }
        let few = list(&root).unwrap();
        std::fs::remove_dir_all(&root).unwrap();
        assert_eq!((many.len(), few.len()), (n, INLINE));
        for (i, e) in many.iter().chain(&few).enumerate() {
            let i = i % n;
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
}
