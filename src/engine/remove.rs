//! Removing a porcelain container: every trace, in an order that a crash
//! at any point leaves something `rm -f` or `prune` finishes: the OCI
//! container, the rootfs mount, the image hold, volume references, the
//! dir (renamed out of sight first), the name.

use crate::engine::{names, overlay, record, volumes};
use crate::error::{Context, Error, Result};
use std::path::Path;

/// Removes container `id` whatever its state; the caller has stopped its
/// monitor. Absent is fine. `remove_anonymous`: its anonymous volumes go
/// too.
pub fn remove(root: &Path, data_root: &Path, id: &str, remove_anonymous: bool) -> Result<()> {
    let dir = record::dir(data_root, id);
    if !dir.is_dir() {
        return Ok(());
    }
    let lock = record::lock(&dir)?;
    if !dir.is_dir() {
        return Ok(()); // removed while we waited
    }
    crate::container::delete(root, id, true)?;
    // With its process gone: links, leases, rules, names, the namespace.
    crate::engine::network::teardown(root, data_root, id)?;
    let rootfs = dir.join("bundle").join("rootfs");
    overlay::unmount(&rootfs)?;
    if overlay::is_mountpoint(&rootfs) {
        return Err(Error::errno(
            format!("remove container {id}: {} still mounted", rootfs.display()),
            libc::EBUSY,
        ));
    }
    let rec = record::load(&dir).ok();
    if let Ok(store) = crate::image::store::Store::open(data_root) {
        store.release(id)?;
    }
    if let Some(r) = &rec {
        for v in &r.volumes {
            let _ = volumes::remove_ref(data_root, v, id);
            // docker: `rm -v` and `--rm` take the anonymous ones along.
            if remove_anonymous && volumes::get(data_root, v).is_ok_and(|v| v.meta.anonymous) {
                let _ = volumes::remove(data_root, v);
            }
        }
    }
    // Out of sight first: a half-removed dir is never listed.
    let trash = names::containers_dir(data_root).join(format!(".{id}.removing"));
    std::fs::rename(&dir, &trash).ctx(|| format!("remove {}", dir.display()))?;
    drop(lock);
    let name = match rec {
        Some(r) => Some(r.name),
        None => names::name_of(data_root, id)?,
    };
    if let Some(n) = name {
        names::release(data_root, &n, id)?;
    }
    names::drop_tmp(data_root, id);
    remove_trash(&trash)
}

fn remove_trash(p: &Path) -> Result<()> {
    match std::fs::remove_dir_all(p) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).ctx(|| format!("remove {}", p.display())),
    }
}

/// What a crash left under the containers dir: half-removed dirs, and
/// dirs of creates that died before their record (nobody holds their
/// lock). Returns how many went.
pub fn sweep(root: &Path, data_root: &Path) -> usize {
    let d = names::containers_dir(data_root);
    let Ok(rd) = std::fs::read_dir(&d) else {
        return 0;
    };
    let mut n = 0;
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') && name.ends_with(".removing") {
            // Only ever renamed here after its mount was gone.
            if remove_trash(&e.path()).is_ok() {
                n += 1;
            }
            continue;
        }
        if !names::is_full_id(&name) || e.path().join(record::CONFIG).exists() {
            continue;
        }
        // A create in progress holds the lock; wait for it, then look again.
        let Ok(l) = record::lock(&e.path()) else {
            continue;
        };
        let orphan = !e.path().join(record::CONFIG).exists();
        drop(l);
        if orphan && remove(root, data_root, &name, true).is_ok() {
            n += 1;
        }
    }
    n
}
