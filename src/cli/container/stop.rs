//! `container stop`, `restart`, `kill` and `top`: signals to a running
//! container's init (the stop signal, then KILL after the timeout), the
//! user's stop recorded so that no restart policy brings it back.

use super::each;
use crate::cli::args::{self, val, Flag};
use crate::cli::Global;
use crate::engine::{names, record};
use crate::error::Result;
use std::ffi::OsString;
use std::path::Path;
use std::time::{Duration, Instant};

const STOP_FLAGS: &[Flag] = &[
    val(
        "time",
        Some('t'),
        "SECONDS",
        "wait this long before KILL (default 10)",
    ),
    val("timeout", None, "SECONDS", "same as --time"),
    val("signal", Some('s'), "SIG", "the signal to send first"),
];

const STOP_USAGE: &str = "usage: runway container stop [flags] CONTAINER [CONTAINER...]\n";
const RESTART_USAGE: &str = "usage: runway container restart [flags] CONTAINER [CONTAINER...]\n";

fn running(s: &record::State) -> bool {
    matches!(
        s.status,
        record::Status::Running | record::Status::Restarting
    )
}

/// Stops `id`: records the user's stop, sends the stop signal, waits up
/// to `timeout`, then KILLs every process; returns once the monitor has
/// recorded the exit (or is gone).
pub fn stop(g: &Global, id: &str, timeout: Option<u32>, signal: Option<&str>) -> Result<()> {
    let dir = record::dir(&g.data_root, id);
    let rec = record::load(&dir)?;
    let st = {
        let _l = record::lock(&dir)?;
        let mut s = record::load_state(&dir);
        s.stopped_by_user = true;
        record::save_state(&dir, &s)?;
        s
    };
    let alive = record::monitor_alive(&dir);
    if !running(&record::effective_state(&dir)) && !alive {
        return Ok(());
    }
    let sig = crate::linux::signal::parse(signal.unwrap_or(&rec.config.stop_signal))
        .unwrap_or(libc::SIGTERM);
    let secs = timeout.or(rec.config.stop_timeout).unwrap_or(10);
    if st.status == record::Status::Running {
        let _ = crate::container::kill(&g.root, id, sig, false);
    }
    if !wait_stopped(&dir, Duration::from_secs(u64::from(secs))) {
        let _ = crate::container::kill(&g.root, id, libc::SIGKILL, true);
        wait_stopped(&dir, Duration::from_secs(10));
    }
    // The monitor unmounts and exits; a dead monitor left the record
    // saying running: say what happened.
    wait_monitor(&dir, Duration::from_secs(10));
    if !record::monitor_alive(&dir) && dir.exists() {
        let _l = record::lock(&dir)?;
        let mut s = record::load_state(&dir);
        if running(&s) {
            let _ = crate::container::delete(&g.root, id, true);
            s.status = record::Status::Exited;
            s.pid = 0;
            s.exit_code = 128 + libc::SIGKILL;
            s.finished_at = record::now_rfc3339();
            record::save_state(&dir, &s)?;
        }
    }
    Ok(())
}

/// Waits until the container no longer runs; false on timeout. The
/// init's exit is waited for on a pidfd (no polling delay), then the
/// monitor's record of it in small steps.
fn wait_stopped(dir: &Path, d: Duration) -> bool {
    let end = Instant::now() + d;
    let pid = record::load_state(dir).pid;
    if let Some(p) = rustix::process::Pid::from_raw(pid) {
        if let Ok(fd) = rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()) {
            let left = end.saturating_duration_since(Instant::now());
            let ts = rustix::event::Timespec {
                tv_sec: left.as_secs() as i64,
                tv_nsec: i64::from(left.subsec_nanos()),
            };
            let mut pfd = [rustix::event::PollFd::new(
                &fd,
                rustix::event::PollFlags::IN,
            )];
            let _ = rustix::event::poll(&mut pfd, Some(&ts));
        }
    }
    loop {
        let s = record::effective_state(dir);
        let init_gone = s.pid <= 0 || !pid_alive(s.pid);
        if !running(&s)
            || (s.status == record::Status::Running && init_gone && !record::monitor_alive(dir))
        {
            return true;
        }
        if s.status == record::Status::Restarting && !record::monitor_alive(dir) {
            return true;
        }
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

pub fn wait_monitor(dir: &Path, d: Duration) -> bool {
    let end = Instant::now() + d;
    while record::monitor_alive(dir) {
        if Instant::now() >= end {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    true
}

pub fn pid_alive(pid: i32) -> bool {
    record::pid_alive(pid)
}

fn timeout_of(a: &args::Args) -> Result<Option<u32>> {
    match a.get_num::<i64>("time")?.or(a.get_num::<i64>("timeout")?) {
        Some(t) if t < 0 => Ok(Some(u32::MAX / 2)),
        Some(t) => Ok(Some(t.min(i64::from(u32::MAX / 2)) as u32)),
        None => Ok(None),
    }
}

pub fn stop_main(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = args::parse_docker(argv, STOP_FLAGS, None)?;
    if crate::cli::help_requested(&a, STOP_USAGE) {
        return Ok(0);
    }
    if a.positionals.is_empty() {
        crate::bail!("\"container stop\" requires at least 1 argument");
    }
    let t = timeout_of(&a)?;
    Ok(each(&a.positionals, |n| {
        let id = names::resolve(&g.data_root, n)?;
        stop(g, &id, t, a.get("signal"))?;
        println!("{n}");
        Ok(())
    }))
}

pub fn restart_main(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = args::parse_docker(argv, STOP_FLAGS, None)?;
    if crate::cli::help_requested(&a, RESTART_USAGE) {
        return Ok(0);
    }
    if a.positionals.is_empty() {
        crate::bail!("\"container restart\" requires at least 1 argument");
    }
    let t = timeout_of(&a)?;
    let mut code = 0;
    for n in &a.positionals {
        let r = names::resolve(&g.data_root, n).and_then(|id| {
            stop(g, &id, t, a.get("signal"))?;
            Ok(id)
        });
        match r {
            Ok(_) => {
                let c = super::run::start_main(g, vec![OsString::from(n)])?;
                if c != 0 {
                    code = 1;
                }
            }
            Err(e) => {
                crate::log::error(&e.to_string());
                code = 1;
            }
        }
    }
    Ok(code)
}

const KILL_FLAGS: &[Flag] = &[val("signal", Some('s'), "SIG", "the signal (default KILL)")];
const KILL_USAGE: &str = "usage: runway container kill [flags] CONTAINER [CONTAINER...]\n";

pub fn kill_main(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = args::parse_docker(argv, KILL_FLAGS, None)?;
    if crate::cli::help_requested(&a, KILL_USAGE) {
        return Ok(0);
    }
    if a.positionals.is_empty() {
        crate::bail!("\"container kill\" requires at least 1 argument");
    }
    let sig = crate::linux::signal::parse(a.get("signal").unwrap_or("KILL"))?;
    Ok(each(&a.positionals, |n| {
        let id = names::resolve(&g.data_root, n)?;
        let dir = record::dir(&g.data_root, &id);
        let s = record::effective_state(&dir);
        if s.status != record::Status::Running {
            crate::bail!("cannot kill container: {n}: container {id} is not running");
        }
        if sig == libc::SIGKILL {
            // docker: a killed container is not restarted.
            let _l = record::lock(&dir)?;
            let mut s = record::load_state(&dir);
            s.stopped_by_user = true;
            record::save_state(&dir, &s)?;
        }
        crate::container::kill(&g.root, &id, sig, false)?;
        println!("{n}");
        Ok(())
    }))
}

const TOP_USAGE: &str = "usage: runway container top CONTAINER\n";

/// `container top`: runc's `ps` of the running container.
pub fn top_main(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = args::parse_docker(argv, &[], Some(1))?;
    if crate::cli::help_requested(&a, TOP_USAGE) {
        return Ok(0);
    }
    let [n] = a.positionals.as_slice() else {
        crate::bail!("\"container top\" requires at least 1 argument");
    };
    let id = names::resolve(&g.data_root, n)?;
    let s = record::effective_state(&record::dir(&g.data_root, &id));
    if s.status != record::Status::Running {
        crate::bail!("container {n} is not running");
    }
    let mut argv = vec![OsString::from(id)];
    argv.extend(a.rest.iter().map(OsString::from));
    crate::cli::ps::main(g, argv)
}
