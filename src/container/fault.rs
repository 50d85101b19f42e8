//! Fault injection for tests: `RUNWAY_TEST_FAULT=<step>` makes the runtime
//! SIGKILL itself at that step, so tests can prove `delete --force` cleans
//! up after a runtime killed anywhere. Steps: after-state-dir, after-cgroup,
//! after-clone, after-mounts, after-ready (create); exec-after-clone (exec).

pub const ENV: &str = "RUNWAY_TEST_FAULT";

pub fn armed(step: &str) -> bool {
    std::env::var_os(ENV).is_some_and(|v| v == step)
}

pub fn point(step: &str) {
    if armed(step) {
        // SAFETY: signalling ourselves.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}
