//! What `list` knows of one state dir: the `Brief` it prints, or that the
//! dir is not finished yet. Shared by `list` and its cache.

use serde::Deserialize;
use std::collections::BTreeMap;

/// The part of state.json `list` prints or needs for the status; serde
/// skips the rest (cgroup, namespaces, hooks) without building it. Also
/// what the list cache keeps of a finished container.
#[derive(Deserialize)]
pub struct Brief {
    pub id: String,
    pub pid: i32,
    pub start_time: u64,
    pub bundle: String,
    pub rootfs: String,
    pub created: String,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// None when absent: a cut-short parse (see `brief`) then falls back
    /// to the whole file.
    pub created_done: Option<bool>,
    /// The state dir's owner, when it could be learnt.
    #[serde(default)]
    pub owner: Option<u32>,
    /// The cgroup freezer file; only in the brief link.
    #[serde(default)]
    pub freeze_file: Option<String>,
}

/// One state dir as `list` read it.
pub enum Seen {
    Done(Brief),
    /// Not finished (being created, or debris): read again each time.
    Pending(String),
}
