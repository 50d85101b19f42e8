//! Container ids and names: random 64-hex ids, docker's name rules, the
//! atomic name reservation under DATA_ROOT/names, and lookup of a
//! container by name, full id or unique id prefix.
//!
//! Contract with the caller (so that a crash never blocks a name for good):
//! create `DATA_ROOT/containers/<id>/` first, then `reserve`; on failure
//! `release` and remove the dir. A reservation whose container dir is gone
//! is stale and the next `reserve` of the name reclaims it. `reserve`
//! refuses an id whose dir does not exist, which keeps the contract honest.

use crate::error::{Context, Error, Result};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Length of an id in hex digits.
pub const ID_LEN: usize = 64;
/// Length of the short id (`ps`, hostname, default names).
pub const SHORT_LEN: usize = 12;

/// `DATA_ROOT/names`.
pub fn names_dir(data_root: &Path) -> PathBuf {
    data_root.join("names")
}

/// `DATA_ROOT/containers`.
pub fn containers_dir(data_root: &Path) -> PathBuf {
    data_root.join("containers")
}

/// A fresh id: 32 bytes from getrandom(2) as 64 lower-case hex digits.
/// Like docker, an id whose short form is all digits is drawn again: a
/// short id that looks like a number confuses tools (and YAML) that read
/// it back.
pub fn new_id() -> Result<String> {
    loop {
        let mut b = [0u8; 32];
        let mut got = 0;
        while got < b.len() {
            // SAFETY: writes at most the remaining bytes of `b`.
            let n = unsafe { libc::getrandom(b[got..].as_mut_ptr().cast(), b.len() - got, 0) };
            if n < 0 {
                if crate::error::last_errno() == libc::EINTR {
                    continue;
                }
                return Err(Error::last_os("getrandom"));
            }
            got += n as usize;
        }
        let id: String = b.iter().map(|x| format!("{x:02x}")).collect();
        if !id[..SHORT_LEN].bytes().all(|c| c.is_ascii_digit()) {
            return Ok(id);
        }
    }
}

/// The first 12 digits of an id (the whole string if shorter).
pub fn short_id(id: &str) -> &str {
    id.get(..SHORT_LEN).unwrap_or(id)
}

/// Whether `s` is a full id: 64 lower-case hex digits.
pub fn is_full_id(s: &str) -> bool {
    s.len() == ID_LEN && s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f'))
}

/// docker's rule for container and volume names,
/// `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, at most 255 bytes (a file name).
pub fn docker_name_ok(n: &str) -> bool {
    let b = n.as_bytes();
    b.len() >= 2
        && b.len() <= 255
        && b[0].is_ascii_alphanumeric()
        && b[1..]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-'))
}

/// Checks a user-given name by docker's rule `/?[a-zA-Z0-9][a-zA-Z0-9_.-]+`
/// and returns it without the optional leading `/` (docker stores names
/// with it and accepts either). Longer than 255 bytes cannot be a file name
/// and is refused with the same words.
pub fn validate(name: &str) -> Result<&str> {
    let n = name.strip_prefix('/').unwrap_or(name);
    if docker_name_ok(n) {
        Ok(n)
    } else {
        Err(Error::msg(format!(
            "Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )))
    }
}

/// The name of a container created without `--name`: `runway-<short id>`.
/// Docker's adjective_surname needs a word list and retries on collision;
/// this one is as unique as the short id and says who made the container.
pub fn default_name(id: &str) -> String {
    format!("runway-{}", short_id(id))
}

fn conflict(name: &str, holder: &str) -> Error {
    Error::msg(format!(
        "Conflict. The container name \"/{name}\" is already in use by container \"{holder}\". You have to remove (or rename) that container to be able to reuse that name."
    ))
}

/// The id a reservation file holds; None when the file is absent.
fn holder(file: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(file) {
        Ok(s) => Ok(Some(s.trim().to_string())),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).ctx(|| format!("read {}", file.display())),
    }
}

/// A reservation is live while its container dir exists.
fn is_live(data_root: &Path, id: &str) -> bool {
    is_full_id(id) && containers_dir(data_root).join(id).is_dir()
}

/// Held while reclaiming or releasing, so that two processes that both see
/// the same stale reservation cannot both replace it. The fast path (a
/// free name) needs no lock: link(2) alone decides.
struct NamesLock(#[allow(dead_code)] std::os::fd::OwnedFd);

fn lock(dir: &Path) -> Result<NamesLock> {
    Ok(NamesLock(crate::engine::record::lock_file(
        &dir.join(".lock"),
    )?))
}

/// Reserves `name` for container `id`: DATA_ROOT/names/NAME holding the id.
/// The file is written under a private temporary name and then link(2)ed
/// into place, which is as exclusive as O_EXCL and means nobody ever reads
/// a half-written reservation. Of any number of concurrent reservations
/// (threads or processes) of one name exactly one succeeds; the others get
/// docker's Conflict error naming the holder. Reserving a name again for
/// the id that holds it succeeds.
pub fn reserve(data_root: &Path, name: &str, id: &str) -> Result<()> {
    let name = validate(name)?;
    if !is_full_id(id) {
        return Err(Error::msg(format!("reserve name {name}: bad id {id:?}")));
    }
    if !is_live(data_root, id) {
        return Err(Error::errno(
            format!(
                "reserve name {name}: container dir {}",
                containers_dir(data_root).join(id).display()
            ),
            libc::ENOENT,
        ));
    }
    let dir = names_dir(data_root);
    std::fs::create_dir_all(&dir).ctx(|| format!("create {}", dir.display()))?;
    let file = dir.join(name);
    // Names start with [a-zA-Z0-9], so dot files never collide with one.
    static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".tmp-{id}-{}-{seq}", std::process::id()));
    {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o644)
            .custom_flags(libc::O_CLOEXEC)
            .open(&tmp)
            .ctx(|| format!("create {}", tmp.display()))?;
        f.write_all(id.as_bytes())
            .and_then(|()| f.write_all(b"\n"))
            .ctx(|| format!("write {}", tmp.display()))?;
    }
    let r = reserve_link(data_root, &dir, &file, &tmp, name, id);
    let _ = std::fs::remove_file(&tmp);
    r
}

fn reserve_link(
    data_root: &Path,
    dir: &Path,
    file: &Path,
    tmp: &Path,
    name: &str,
    id: &str,
) -> Result<()> {
    let mut locked: Option<NamesLock> = None;
    // Bounded: each round either wins, meets a live holder, or removes a
    // stale one under the lock (after which only a live holder can appear).
    for _ in 0..8 {
        match std::fs::hard_link(tmp, file) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).ctx(|| format!("reserve name {name}")),
        }
        let Some(h) = holder(file)? else {
            continue; // released meanwhile: try again
        };
        if h == id {
            return Ok(());
        }
        if is_live(data_root, &h) {
            return Err(conflict(name, &h));
        }
        // Stale: reclaim under the lock, re-checking that it still is.
        if locked.is_none() {
            locked = Some(lock(dir)?);
            continue;
        }
        match holder(file)? {
            Some(h2) if h2 == h => {
                std::fs::remove_file(file).ctx(|| format!("remove stale {}", file.display()))?;
            }
            _ => continue,
        }
    }
    Err(Error::msg(format!(
        "reserve name {name}: the reservation keeps changing"
    )))
}

/// Frees `name` if it still holds `id` (a name since reclaimed by another
/// container is left alone). Absent is fine.
pub fn release(data_root: &Path, name: &str, id: &str) -> Result<()> {
    let Ok(name) = validate(name) else {
        return Ok(());
    };
    let dir = names_dir(data_root);
    let file = dir.join(name);
    if holder(&file)?.as_deref() != Some(id) {
        return Ok(());
    }
    let _l = lock(&dir)?;
    if holder(&file)?.as_deref() == Some(id) {
        match std::fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => return Err(e).ctx(|| format!("release name {name}")),
        }
    }
    Ok(())
}

/// Removes what a `reserve` of `id` killed between writing its temporary
/// file and removing it left in DATA_ROOT/names (`.tmp-ID-PID-SEQ`): the
/// container's removal is the one place that knows the id is gone.
pub fn drop_tmp(data_root: &Path, id: &str) {
    let dir = names_dir(data_root);
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return;
    };
    let prefix = format!(".tmp-{id}-");
    for ent in rd.flatten() {
        if ent.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_file(ent.path());
        }
    }
}

/// The name reserved for `id`, if any (a scan of DATA_ROOT/names; callers
/// normally know the name from the container's record).
pub fn name_of(data_root: &Path, id: &str) -> Result<Option<String>> {
    let dir = names_dir(data_root);
    let rd = match std::fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).ctx(|| format!("read {}", dir.display())),
    };
    for ent in rd.flatten() {
        let n = ent.file_name().to_string_lossy().into_owned();
        if n.starts_with('.') {
            continue;
        }
        if holder(&ent.path())?.as_deref() == Some(id) {
            return Ok(Some(n));
        }
    }
    Ok(None)
}

fn no_such(s: &str) -> Error {
    Error::msg(format!("No such container: {s}"))
}

/// The id of the container `s` names, in docker's order: a full id, then a
/// name (a stale reservation does not count), then a unique id prefix.
/// Unknown: "No such container: S"; a prefix matching several ids: docker's
/// "multiple IDs found with provided prefix: S".
pub fn resolve(data_root: &Path, s: &str) -> Result<String> {
    if s.is_empty() {
        return Err(no_such(s));
    }
    if is_full_id(s) && is_live(data_root, s) {
        return Ok(s.to_string());
    }
    if let Ok(n) = validate(s) {
        if let Some(h) = holder(&names_dir(data_root).join(n))? {
            if is_live(data_root, &h) {
                return Ok(h);
            }
        }
    }
    if !s.bytes().all(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')) || s.len() > ID_LEN {
        return Err(no_such(s));
    }
    let dir = containers_dir(data_root);
    let rd = match std::fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == ErrorKind::NotFound => return Err(no_such(s)),
        Err(e) => return Err(e).ctx(|| format!("read {}", dir.display())),
    };
    let mut found: Option<String> = None;
    for ent in rd.flatten() {
        let n = ent.file_name();
        let Some(n) = n.to_str() else { continue };
        if !n.starts_with(s) || !is_full_id(n) {
            continue;
        }
        if found.is_some() {
            return Err(Error::msg(format!(
                "multiple IDs found with provided prefix: {s}"
            )));
        }
        found = Some(n.to_string());
    }
    found.ok_or_else(|| no_such(s))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static SEQ: AtomicUsize = AtomicUsize::new(0);

    /// A fresh data root, removed on drop.
    struct Root(PathBuf);
    impl Root {
        fn new() -> Root {
            let p = std::env::temp_dir().join(format!(
                "runway-names-{}-{}",
                std::process::id(),
                SEQ.fetch_add(1, Ordering::SeqCst)
            ));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            Root(p)
        }
        fn container(&self) -> String {
            let id = new_id().unwrap();
            std::fs::create_dir_all(containers_dir(&self.0).join(&id)).unwrap();
            id
        }
        fn gone(&self, id: &str) {
            std::fs::remove_dir_all(containers_dir(&self.0).join(id)).unwrap();
        }
    }
    impl Drop for Root {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn ids_are_64_hex_and_differ() {
        let a = new_id().unwrap();
        let b = new_id().unwrap();
        assert!(is_full_id(&a) && is_full_id(&b), "{a} {b}");
        assert_ne!(a, b);
        assert_eq!(short_id(&a).len(), 12);
        assert!(!short_id(&a).bytes().all(|c| c.is_ascii_digit()));
        assert_eq!(default_name(&a), format!("runway-{}", &a[..12]));
        assert!(validate(&default_name(&a)).is_ok());
    }

    #[test]
    fn validation_follows_docker() {
        for ok in ["ab", "a1", "web.1", "my_app-2", "/web", "0-"] {
            assert!(validate(ok).is_ok(), "{ok}");
        }
        assert_eq!(validate("/web").unwrap(), "web");
        for bad in [
            "", "a", "/", "_ab", ".ab", "-ab", "a b", "a/b", "ab!", "é1", "a:b", "..",
        ] {
            let e = validate(bad).unwrap_err().to_string();
            assert_eq!(
                e,
                format!(
                    "Invalid container name ({bad}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
                )
            );
        }
        assert!(validate(&"a".repeat(256)).is_err());
        assert!(validate(&"a".repeat(255)).is_ok());
    }

    #[test]
    fn drop_tmp_removes_only_that_ids_leftovers() {
        let r = Root::new();
        let a = r.container();
        let b = r.container();
        let dir = names_dir(&r.0);
        std::fs::create_dir_all(&dir).unwrap();
        for f in [format!(".tmp-{a}-7-0"), format!(".tmp-{b}-7-1")] {
            std::fs::write(dir.join(f), "x").unwrap();
        }
        reserve(&r.0, "web", &a).unwrap();
        drop_tmp(&r.0, &a);
        assert!(!dir.join(format!(".tmp-{a}-7-0")).exists());
        assert!(dir.join(format!(".tmp-{b}-7-1")).exists());
        assert_eq!(resolve(&r.0, "web").unwrap(), a);
    }

    #[test]
    fn reserve_release_resolve() {
        let r = Root::new();
        let a = r.container();
        let b = r.container();
        reserve(&r.0, "web", &a).unwrap();
        reserve(&r.0, "/web", &a).unwrap(); // same holder: fine
        let e = reserve(&r.0, "web", &b).unwrap_err().to_string();
        assert_eq!(
            e,
            format!("Conflict. The container name \"/web\" is already in use by container \"{a}\". You have to remove (or rename) that container to be able to reuse that name.")
        );
        assert_eq!(
            std::fs::read_to_string(names_dir(&r.0).join("web")).unwrap(),
            format!("{a}\n")
        );
        assert_eq!(name_of(&r.0, &a).unwrap().as_deref(), Some("web"));
        // By name, full id, prefix.
        assert_eq!(resolve(&r.0, "web").unwrap(), a);
        assert_eq!(resolve(&r.0, "/web").unwrap(), a);
        assert_eq!(resolve(&r.0, &a).unwrap(), a);
        assert_eq!(resolve(&r.0, &b[..12]).unwrap(), b);
        assert_eq!(
            resolve(&r.0, "nope").unwrap_err().to_string(),
            "No such container: nope"
        );
        assert_eq!(
            resolve(&r.0, "").unwrap_err().to_string(),
            "No such container: "
        );
        // release by another id does nothing; by the holder frees it.
        release(&r.0, "web", &b).unwrap();
        assert_eq!(resolve(&r.0, "web").unwrap(), a);
        release(&r.0, "web", &a).unwrap();
        assert!(!names_dir(&r.0).join("web").exists());
        release(&r.0, "web", &a).unwrap(); // absent: fine
        reserve(&r.0, "web", &b).unwrap();
        assert_eq!(resolve(&r.0, "web").unwrap(), b);
        // No temporary files left beside the reservations.
        let left: Vec<_> = std::fs::read_dir(names_dir(&r.0))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != ".lock")
            .collect();
        assert_eq!(left, vec!["web".to_string()]);
    }

    #[test]
    fn reserve_needs_the_container_dir_and_a_valid_name() {
        let r = Root::new();
        let a = new_id().unwrap();
        assert!(reserve(&r.0, "web", &a).is_err());
        assert!(!names_dir(&r.0).join("web").exists());
        let a = r.container();
        assert!(reserve(&r.0, "-web", &a)
            .unwrap_err()
            .to_string()
            .starts_with("Invalid container name (-web)"));
        assert!(reserve(&r.0, "web", "xyz").is_err());
    }

    #[test]
    fn ambiguous_prefix() {
        let r = Root::new();
        // Two ids sharing a prefix.
        let a = format!("abc{}", &new_id().unwrap()[3..]);
        let b = format!("abd{}", &new_id().unwrap()[3..]);
        for id in [&a, &b] {
            std::fs::create_dir_all(containers_dir(&r.0).join(id)).unwrap();
        }
        assert_eq!(
            resolve(&r.0, "ab").unwrap_err().to_string(),
            "multiple IDs found with provided prefix: ab"
        );
        assert_eq!(resolve(&r.0, "abc").unwrap(), a);
        assert_eq!(resolve(&r.0, "abd").unwrap(), b);
        assert!(resolve(&r.0, "abe").is_err());
        // Non-id entries in containers/ never match.
        std::fs::create_dir_all(containers_dir(&r.0).join("abcjunk")).unwrap();
        assert_eq!(resolve(&r.0, "abc").unwrap(), a);
    }

    #[test]
    fn stale_reservation_is_reclaimed() {
        let r = Root::new();
        let a = r.container();
        reserve(&r.0, "web", &a).unwrap();
        // The container dir vanished (crash after reserve, or rm without
        // release): the name is not found and can be taken.
        r.gone(&a);
        assert_eq!(
            resolve(&r.0, "web").unwrap_err().to_string(),
            "No such container: web"
        );
        let b = r.container();
        reserve(&r.0, "web", &b).unwrap();
        assert_eq!(resolve(&r.0, "web").unwrap(), b);
        // A garbage reservation (not an id) is stale too.
        std::fs::write(names_dir(&r.0).join("db"), "garbage").unwrap();
        reserve(&r.0, "db", &b).unwrap();
        assert_eq!(resolve(&r.0, "db").unwrap(), b);
        // The old holder's release does not touch the new reservation.
        release(&r.0, "web", &a).unwrap();
        assert_eq!(resolve(&r.0, "web").unwrap(), b);
    }

    fn race(r: &Root, ids: &[String]) -> (Vec<String>, Vec<String>) {
        let root = r.0.clone();
        let hs: Vec<_> = ids
            .iter()
            .cloned()
            .map(|id| {
                let root = root.clone();
                std::thread::spawn(move || (id.clone(), reserve(&root, "same", &id)))
            })
            .collect();
        let mut won = vec![];
        let mut lost = vec![];
        for h in hs {
            let (id, res) = h.join().unwrap();
            match res {
                Ok(()) => won.push(id),
                Err(e) => lost.push(e.to_string()),
            }
        }
        (won, lost)
    }

    #[test]
    fn twenty_threads_one_name_one_winner() {
        let r = Root::new();
        let ids: Vec<String> = (0..20).map(|_| r.container()).collect();
        let (won, lost) = race(&r, &ids);
        assert_eq!(won.len(), 1, "{won:?} {lost:?}");
        for e in &lost {
            assert_eq!(*e, conflict("same", &won[0]).to_string());
        }
        assert_eq!(resolve(&r.0, "same").unwrap(), won[0]);
    }

    #[test]
    fn twenty_threads_reclaiming_a_stale_name_one_winner() {
        let r = Root::new();
        let old = r.container();
        reserve(&r.0, "same", &old).unwrap();
        r.gone(&old);
        let ids: Vec<String> = (0..20).map(|_| r.container()).collect();
        let (won, lost) = race(&r, &ids);
        assert_eq!(won.len(), 1, "{won:?} {lost:?}");
        assert_eq!(lost.len(), 19);
        assert_eq!(resolve(&r.0, "same").unwrap(), won[0]);
    }

    /// The child side of `twenty_processes_one_name_one_winner`: does
    /// nothing unless that test spawned this binary.
    #[test]
    fn reserve_child_process() {
        let (Ok(root), Ok(id)) = (
            std::env::var("RUNWAY_TEST_NAMES_ROOT"),
            std::env::var("RUNWAY_TEST_NAMES_ID"),
        ) else {
            return;
        };
        let res = reserve(Path::new(&root), "same", &id);
        let out = Path::new(&root).join(format!("result-{id}"));
        std::fs::write(out, if res.is_ok() { "won" } else { "lost" }).unwrap();
    }

    #[test]
    fn twenty_processes_one_name_one_winner() {
        let r = Root::new();
        let exe = std::env::current_exe().unwrap();
        let ids: Vec<String> = (0..20).map(|_| r.container()).collect();
        let children: Vec<_> = ids
            .iter()
            .map(|id| {
                std::process::Command::new(&exe)
                    .args([
                        "--exact",
                        "engine::names::tests::reserve_child_process",
                        "--test-threads=1",
                        "-q",
                    ])
                    .env("RUNWAY_TEST_NAMES_ROOT", &r.0)
                    .env("RUNWAY_TEST_NAMES_ID", id)
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for mut c in children {
            assert!(c.wait().unwrap().success());
        }
        let results: Vec<String> = ids
            .iter()
            .map(|id| std::fs::read_to_string(r.0.join(format!("result-{id}"))).unwrap())
            .collect();
        assert_eq!(results.iter().filter(|s| *s == "won").count(), 1);
        assert_eq!(results.iter().filter(|s| *s == "lost").count(), 19);
        let winner = &ids[results.iter().position(|s| s == "won").unwrap()];
        assert_eq!(resolve(&r.0, "same").unwrap(), *winner);
    }
}
