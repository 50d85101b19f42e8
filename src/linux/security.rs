//! Process security: capabilities, rlimits, user/groups, NNP, oom score,
//! scheduler, io priority, personality, sysctl, LSM labels.
//! STUB: interface used by container init; implementation lands from the
//! isolation work. Parent prepares a `Plan`; the child only applies it.

use crate::error::Result;
use crate::spec::Spec;

#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub umask: Option<u32>,
    pub no_new_privileges: bool,
}

/// Parent side: validate and translate names (caps, rlimits, sysctls...)
/// into numbers. `namespaces` is the list of namespace types the container
/// gets (new or joined) so sysctls can be checked against them.
pub fn prepare(spec: &Spec, _namespaces: &[&str]) -> Result<Plan> {
    let mut plan = Plan::default();
    if let Some(p) = &spec.process {
        plan.uid = p.user.uid;
        plan.gid = p.user.gid;
        plan.additional_gids = p.user.additional_gids.clone();
        plan.umask = p.user.umask;
        plan.no_new_privileges = p.no_new_privileges;
    }
    Ok(plan)
}

impl Plan {
    /// Before the rootfs is set up, still fully privileged: rlimits,
    /// oom_score_adj, scheduler, io priority, personality.
    pub fn apply_early(&self) -> Result<()> {
        Ok(())
    }
    /// Inside the container's mount namespace, after /proc is mounted and
    /// before readonly paths are applied: linux.sysctl.
    pub fn apply_sysctl(&self) -> Result<()> {
        Ok(())
    }
    /// Last step before exec (seccomp aside): keep caps across setuid, drop
    /// the bounding set, setgroups/setresgid/setresuid, set the remaining
    /// cap sets and ambient caps, umask, no_new_privs, LSM exec label.
    pub fn apply_identity(&self) -> Result<()> {
        Ok(())
    }
}
