use super::args::{self, flag, val, Flag};
use super::Global;
use crate::bail;
use crate::container::exec::{exec_process, saved_config, ExecOpts};
use crate::error::{Context, Error, Result};
use crate::spec::Process;
use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd};
use std::path::Path;

pub const FLAGS: &[Flag] = &[
    val(
        "console-socket",
        None,
        "PATH",
        "AF_UNIX socket that receives the pty master (--tty)",
    ),
    val("cwd", None, "DIR", "working directory in the container"),
    val(
        "env",
        Some('e'),
        "K=V",
        "set an environment variable (repeatable)",
    ),
    flag("tty", Some('t'), "give the process a pseudo-terminal"),
    val("user", Some('u'), "UID[:GID]", "user (and group) to run as"),
    val(
        "additional-gids",
        Some('g'),
        "GID",
        "an extra group (repeatable)",
    ),
    val(
        "process",
        Some('p'),
        "FILE",
        "process.json with the whole process (other flags then ignored)",
    ),
    flag("detach", Some('d'), "do not wait for the process"),
    val("pid-file", None, "FILE", "write the process's pid to FILE"),
    val(
        "process-label",
        None,
        "LABEL",
        "SELinux label for the process",
    ),
    val(
        "apparmor",
        None,
        "PROFILE",
        "AppArmor profile for the process",
    ),
    flag("no-new-privs", None, "set no_new_privs for the process"),
    val("cap", Some('c'), "CAP", "add a capability (repeatable)"),
    val(
        "preserve-fds",
        None,
        "N",
        "pass N more fds (from 3) to the process",
    ),
    val(
        "cgroup",
        None,
        "[CTRL:]PATH",
        "run in this existing sub-cgroup of the container",
    ),
    flag(
        "ignore-paused",
        None,
        "exec even if the container is paused",
    ),
];

const HELP: &str = "usage: runway exec [flags] <id> [--] <command> [args...]\n       runway exec [flags] --process process.json <id>\n\nRun a new process in a running container.\n";

fn parse_id_pair(s: &str, what: &str) -> Result<u32> {
    s.parse::<u32>()
        .map_err(|_| Error::msg(format!("exec: invalid {what} {s:?} (numeric ids only)")))
}

/// The process to run: --process JSON, or the container's own process
/// as a template changed by the flags (runc's rules).
fn build_process(g: &Global, a: &args::Args, id: &str) -> Result<Process> {
    if let Some(p) = a.get("process") {
        let bytes = if p == "-" {
            let mut v = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut v)
                .ctx(|| "read process from stdin")?;
            v
        } else {
            std::fs::read(p).ctx(|| format!("read process file {p}"))?
        };
        let mut proc: Process = serde_json::from_slice(&bytes)
            .map_err(|e| Error::msg(format!("process file {p}: invalid JSON: {e}")))?;
        if a.is_set("tty") {
            proc.terminal = true;
        }
        return Ok(proc);
    }
    if a.rest.is_empty() {
        bail!("exec: a command to run is required");
    }
    crate::container::state::validate_id(id)?;
    let dir = crate::container::state::Dir::new(&g.root, id);
    if !dir.exists() {
        bail!("container {id} does not exist");
    }
    let cfg = saved_config(&dir)?;
    let mut p = cfg.process.unwrap_or_default();
    p.args = a.rest.clone();
    p.terminal = a.is_set("tty");
    p.console_size = None;
    for e in a.all("env") {
        let key = e.split('=').next().unwrap_or(e);
        p.env.retain(|x| x.split('=').next() != Some(key));
        p.env.push(if e.contains('=') {
            e.to_string()
        } else {
            format!("{e}=")
        });
    }
    if let Some(c) = a.get("cwd") {
        p.cwd = c.to_string();
    }
    if let Some(u) = a.get("user") {
        let (uid, gid) = match u.split_once(':') {
            Some((u, g)) => (parse_id_pair(u, "uid")?, Some(parse_id_pair(g, "gid")?)),
            None => (parse_id_pair(u, "uid")?, None),
        };
        p.user.uid = uid;
        if let Some(g) = gid {
            p.user.gid = g;
        }
    }
    for g in a.all("additional-gids") {
        p.user
            .additional_gids
            .push(parse_id_pair(g, "additional gid")?);
    }
    if a.is_set("no-new-privs") {
        p.no_new_privileges = true;
    }
    if let Some(x) = a.get("apparmor") {
        p.apparmor_profile = Some(x.to_string());
    }
    if let Some(x) = a.get("process-label") {
        p.selinux_label = Some(x.to_string());
    }
    let caps = a.all("cap");
    if !caps.is_empty() {
        let c = p.capabilities.get_or_insert_with(Default::default);
        // Not inheritable or ambient: those would pass the capability on
        // across execve to unprivileged programs (runc's CVE-2022-29162
        // fix does the same).
        for set in [&mut c.bounding, &mut c.effective, &mut c.permitted] {
            let v = set.get_or_insert_with(Vec::new);
            for cap in &caps {
                if !v.iter().any(|x| x == cap) {
                    v.push(cap.to_string());
                }
            }
        }
    }
    Ok(p)
}

pub fn main(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    // Everything after the id is the command (runc: flags go before it).
    let pre = args::parse(argv.clone(), FLAGS, Some(1))?;
    if super::help_requested(&pre, HELP) {
        return Ok(0);
    }
    let a = pre;
    let Some(id) = a.positionals.first().cloned() else {
        bail!("exec: container id is required");
    };
    if !a.get("cgroup").unwrap_or("").is_empty() {
        crate::log::debug(
            "exec --cgroup: sub-cgroups are not supported; using the container's cgroup",
        );
    }
    // From here a failure is the exec's, not the command line's: 255, as
    // runc, so it can't be taken for the process's own exit status.
    match exec(g, &a, &id) {
        Ok(code) => Ok(code),
        Err(e) => {
            crate::log::error(&e.to_string());
            Ok(EXEC_FAILED)
        }
    }
}

/// Exit status of an exec or run that could not run its process.
pub const EXEC_FAILED: i32 = 255;

fn exec(g: &Global, a: &args::Args, id: &str) -> Result<i32> {
    let process = build_process(g, a, id)?;
    let detach = a.is_set("detach");
    let own_console = if process.terminal && a.get("console-socket").is_none() && !detach {
        let (ours, theirs) = rustix::net::socketpair(
            rustix::net::AddressFamily::UNIX,
            rustix::net::SocketType::STREAM,
            rustix::net::SocketFlags::CLOEXEC,
            None,
        )
        .map_err(|e| Error::errno("socketpair", e.raw_os_error()))?;
        Some((ours, theirs))
    } else {
        None
    };
    let set = super::run::forward_set();
    if !detach {
        super::run::block(&set);
    }
    let spawned = exec_process(&ExecOpts {
        root: &g.root,
        id,
        process,
        pid_file: a.get("pid-file").map(Path::new),
        console_socket: a.get("console-socket").map(Path::new),
        console_fd: own_console.as_ref().map(|(_, t)| t.as_raw_fd()),
        preserve_fds: a.get_num::<u32>("preserve-fds")?.unwrap_or(0),
        ignore_paused: a.is_set("ignore-paused"),
    })?;
    if detach {
        return Ok(0);
    }
    let master = match &own_console {
        Some((ours, _)) => Some(crate::linux::pty::recv_master(ours.as_fd())?),
        None => None,
    };
    drop(own_console);
    Ok(super::run::wait_forwarding(spawned.pid, &set, master))
}
