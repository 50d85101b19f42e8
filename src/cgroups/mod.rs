//! Control groups: where a container's processes live and what limits them.
//! STUB: the interface the container code uses; implementation lands from the
//! cgroups work (v1, hybrid, v2).

use crate::error::Result;
use crate::spec::Resources;
use serde::{Deserialize, Serialize};

/// A container's cgroup, as planned in the parent and stored in state.json
/// so later commands (delete, pause, ps, events, update) find it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Cgroup {
    /// Absolute directories, one per mounted hierarchy we use.
    pub dirs: Vec<String>,
}

/// Work out the cgroup directories for a container. No system changes.
pub fn plan(
    _cgroups_path: Option<&str>,
    _id: &str,
    _systemd: bool,
    _resources: Option<&Resources>,
) -> Result<Cgroup> {
    Ok(Cgroup::default())
}

impl Cgroup {
    /// mkdir every directory (parents too).
    pub fn create(&self) -> Result<()> {
        Ok(())
    }
    /// Write the limits of `linux.resources`.
    pub fn apply(&self, _res: &Resources) -> Result<()> {
        Ok(())
    }
    /// Move `pid` into every hierarchy.
    pub fn add_pid(&self, _pid: i32) -> Result<()> {
        Ok(())
    }
    /// An O_DIRECTORY fd of the v2 dir for clone3(CLONE_INTO_CGROUP), if
    /// the host is pure v2.
    pub fn v2_dir_fd(&self) -> Option<std::os::fd::OwnedFd> {
        None
    }
    /// Remove every directory; waits for processes to leave (kill them when
    /// `force`).
    pub fn destroy(&self, _force: bool) -> Result<()> {
        Ok(())
    }
    pub fn freeze(&self) -> Result<()> {
        Ok(())
    }
    pub fn thaw(&self) -> Result<()> {
        Ok(())
    }
    pub fn is_frozen(&self) -> bool {
        false
    }
    pub fn stats(&self) -> Result<serde_json::Value> {
        Ok(serde_json::json!({}))
    }
    /// OOM kills so far (memory.oom_control / memory.events).
    pub fn oom_kills(&self) -> u64 {
        0
    }
    /// Host pids of every process in the container's cgroup.
    pub fn pids(&self) -> Result<Vec<i32>> {
        Ok(Vec::new())
    }
}
