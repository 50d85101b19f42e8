//! `container run`, `create`, `start` and `exec`: docker's flags to an
//! engine request, then the monitor; in the foreground, the caller's end
//! of the attach (signals forwarded, the terminal raw and resized).

use super::{ctx, FAILED};
use crate::cli::args::{self, flag, val, Flag};
use crate::cli::Global;
use crate::engine::create::{self, PullPolicy, Request};
use crate::engine::monitor::{self, Msg};
use crate::engine::spec::{NetworkMode, SeccompOpt};
use crate::engine::{names, record};
use crate::error::{Error, Result};
use std::ffi::OsString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

pub const CREATE_FLAGS: &[Flag] = &[
    flag("interactive", Some('i'), "keep stdin open"),
    flag("tty", Some('t'), "allocate a pseudo-terminal"),
    flag("rm", None, "remove the container when it exits"),
    val("name", None, "NAME", "the container's name"),
    val(
        "env",
        Some('e'),
        "K=V",
        "set an environment variable (repeatable)",
    ),
    val(
        "env-file",
        None,
        "FILE",
        "read environment variables from FILE",
    ),
    val(
        "volume",
        Some('v'),
        "SPEC",
        "HOST:CTR[:ro] or NAME:CTR bind or volume",
    ),
    val("tmpfs", None, "PATH[:OPTS]", "mount a tmpfs"),
    val("workdir", Some('w'), "DIR", "working directory inside"),
    val("user", Some('u'), "USER[:GROUP]", "user to run as"),
    val("entrypoint", None, "CMD", "override the image's entrypoint"),
    val("hostname", Some('h'), "NAME", "the container's hostname"),
    flag("read-only", None, "mount the root filesystem read-only"),
    val("memory", Some('m'), "SIZE", "memory limit (512m, 1g)"),
    val("cpus", None, "N", "number of CPUs"),
    val("pids-limit", None, "N", "process limit (-1: none)"),
    val("cap-add", None, "CAP", "add a capability"),
    val("cap-drop", None, "CAP", "drop a capability (ALL for all)"),
    flag(
        "privileged",
        None,
        "every capability, no seccomp, writable /sys",
    ),
    val(
        "security-opt",
        None,
        "OPT",
        "seccomp=FILE|unconfined, no-new-privileges",
    ),
    val(
        "restart",
        None,
        "POLICY",
        "no, on-failure[:N], always, unless-stopped",
    ),
    val(
        "stop-signal",
        None,
        "SIG",
        "signal that stops the container",
    ),
    val("stop-timeout", None, "SECONDS", "wait before KILL on stop"),
    flag("init", None, "run a tiny init as PID 1 that reaps zombies"),
    val("label", Some('l'), "K=V", "set a label"),
    val("pull", None, "POLICY", "missing (default), always, never"),
    val("platform", None, "OS/ARCH", "the image's platform"),
    val("rootfs", None, "DIR", "run from DIR instead of an image"),
    val("log-opt", None, "K=V", "max-size=SIZE, max-file=N"),
    val("log-driver", None, "DRIVER", "json-file (the only one)"),
    val(
        "network",
        None,
        "NET",
        "a network's name (default: runway), none, host or container:NAME (repeatable)",
    ),
    val("net", None, "NET", "same as --network"),
    val(
        "ip",
        None,
        "IP",
        "the container's address on its first network",
    ),
    val(
        "network-alias",
        None,
        "NAME",
        "another name on its first network",
    ),
    val(
        "publish",
        Some('p'),
        "[IP:][HOSTPORT:]PORT[/udp]",
        "publish a port (repeatable)",
    ),
    flag(
        "publish-all",
        Some('P'),
        "publish every port the image exposes",
    ),
    val("dns", None, "IP", "a DNS server for the container"),
    val("dns-search", None, "DOMAIN", "a DNS search domain"),
    val("dns-option", None, "OPT", "a resolv.conf option"),
    val("add-host", None, "HOST:IP", "add a line to /etc/hosts"),
    flag("sig-proxy", None, "accepted: signals are always proxied"),
    val("attach", Some('a'), "STREAM", "accepted: stdout and stderr"),
];

const RUN_USAGE: &str = "usage: runway container run [flags] IMAGE [COMMAND [ARG...]]

Create a container from IMAGE and start it; without -d wait for it and
exit with its status (125: runway failed, 126: the command cannot be
run, 127: the command was not found).
";

const CREATE_USAGE: &str = "usage: runway container create [flags] IMAGE [COMMAND [ARG...]]

Create a container from IMAGE without starting it; prints its id.
";

fn run_flags() -> Vec<Flag> {
    let mut t = CREATE_FLAGS.to_vec();
    t.push(flag(
        "detach",
        Some('d'),
        "run in the background; print the id",
    ));
    t
}

/// The engine request for `run`/`create`'s flags.
fn request(a: &args::Args) -> Result<Request> {
    let mut req = Request::default();
    let rootfs = a.get("rootfs");
    // With --rootfs the first word is the command, not an image.
    let mut words: Vec<String> = a.positionals.clone();
    words.extend(a.rest.iter().cloned());
    match rootfs {
        Some(r) => req.rootfs = Some(r.into()),
        None => {
            if words.is_empty() {
                return Err(Error::msg(
                    "\"container run\" requires at least 1 argument: IMAGE [COMMAND [ARG...]]",
                ));
            }
            req.image = Some(words.remove(0));
        }
    }
    let o = &mut req.run;
    o.args = words;
    o.entrypoint = a.get("entrypoint").map(str::to_string);
    o.env = a.all("env").iter().map(|s| s.to_string()).collect();
    for f in a.all("env-file") {
        let text = std::fs::read_to_string(f).map_err(|e| Error::msg(format!("open {f}: {e}")))?;
        o.env_file_lines.extend(text.lines().map(str::to_string));
    }
    o.workdir = a.get("workdir").map(str::to_string);
    o.user = a.get("user").map(str::to_string);
    o.hostname = a.get("hostname").map(str::to_string);
    o.tty = a.is_set("tty");
    o.read_only = a.is_set("read-only");
    o.tmpfs = a.all("tmpfs").iter().map(|s| s.to_string()).collect();
    if let Some(m) = a.get("memory") {
        o.memory = Some(crate::engine::logs::parse_size(m)? as i64);
    }
    if let Some(v) = a.get("cpus") {
        let n = crate::num::parse_decimal(v)
            .ok_or_else(|| Error::msg(format!("invalid value {v:?} for flag --cpus")))?;
        o.cpus = Some(n);
    }
    o.pids_limit = a.get_num::<i64>("pids-limit")?;
    o.cap_add = a.all("cap-add").iter().map(|s| s.to_string()).collect();
    o.cap_drop = a.all("cap-drop").iter().map(|s| s.to_string()).collect();
    o.privileged = a.is_set("privileged");
    for s in a.all("security-opt") {
        let (k, v) = s.split_once(['=', ':']).unwrap_or((s, ""));
        match (k, v) {
            ("seccomp", "unconfined") => o.seccomp = SeccompOpt::Unconfined,
            ("seccomp", f) if !f.is_empty() => {
                o.seccomp = SeccompOpt::Profile(
                    std::fs::read(f)
                        .map_err(|e| Error::msg(format!("opening seccomp profile ({f}): {e}")))?,
                )
            }
            ("no-new-privileges", _) | ("label", _) | ("apparmor", _) => {}
            _ => return Err(Error::msg(format!("invalid --security-opt: {s:?}"))),
        }
    }
    for l in a.all("label") {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        o.labels.insert(k.to_string(), v.to_string());
    }
    let mut nets: Vec<&str> = a.all("network");
    nets.extend(a.all("net"));
    if nets.is_empty() {
        nets.push(crate::net::network::DEFAULT);
    }
    let first = nets[0];
    o.network = match first {
        "none" => NetworkMode::None,
        "host" => NetworkMode::Host,
        // A private namespace with loopback only (runway's own; kept for
        // scripts that used it before networks).
        "private" => NetworkMode::New,
        _ => match first.strip_prefix("ns:") {
            Some(p) => NetworkMode::Path(p.to_string()),
            None => NetworkMode::New,
        },
    };
    let named = !matches!(first, "none" | "host" | "private")
        && !first.starts_with("ns:")
        && !first.starts_with("container:");
    if nets.len() > 1 && !named {
        return Err(Error::msg(format!(
            "--network {first} cannot be combined with other networks"
        )));
    }
    if let Some(c) = first.strip_prefix("container:") {
        if c.is_empty() {
            return Err(Error::msg("--network container: needs a container"));
        }
    }
    let net = &mut req.net;
    if named {
        for n in &nets {
            if matches!(*n, "none" | "host" | "private") || n.contains(':') {
                return Err(Error::msg(format!(
                    "--network {n} cannot be combined with other networks"
                )));
            }
            net.networks.push(n.to_string());
        }
    }
    if let Some(ip) = a.get("ip") {
        net.ip = Some(
            ip.parse()
                .map_err(|_| Error::msg(format!("invalid --ip {ip:?}: not an IP address")))?,
        );
    }
    let need_net = |flag: &str| -> Result<()> {
        if named {
            Ok(())
        } else {
            Err(Error::msg(format!(
                "{flag} needs a network: not --network {first}"
            )))
        }
    };
    if net.ip.is_some() {
        need_net("--ip")?;
    }
    net.aliases = a
        .all("network-alias")
        .iter()
        .map(|s| s.to_string())
        .collect();
    if !net.aliases.is_empty() {
        need_net("--network-alias")?;
    }
    for p in a.all("publish") {
        net.publish.push(crate::net::ports::Spec::parse(p)?);
    }
    net.publish_all = a.is_set("publish-all");
    for d in a.all("dns") {
        net.dns.push(
            d.parse()
                .map_err(|_| Error::msg(format!("invalid --dns {d:?}: not an IP address")))?,
        );
    }
    net.dns_search = a.all("dns-search").iter().map(|s| s.to_string()).collect();
    net.dns_options = a.all("dns-option").iter().map(|s| s.to_string()).collect();
    for h in a.all("add-host") {
        net.add_hosts
            .push(crate::engine::network::parse_add_host(h)?);
    }
    req.network = first.to_string();
    req.name = a.get("name").map(str::to_string);
    req.volumes = a.all("volume").iter().map(|s| s.to_string()).collect();
    req.restart = create::parse_restart(a.get("restart").unwrap_or("no"))?;
    req.auto_remove = a.is_set("rm");
    req.log_opts = a.all("log-opt").iter().map(|s| s.to_string()).collect();
    if let Some(d) = a.get("log-driver") {
        if d != "json-file" {
            return Err(Error::msg(format!(
                "log driver {d:?}: only json-file is supported"
            )));
        }
    }
    if let Some(s) = a.get("stop-signal") {
        crate::linux::signal::parse(s)?;
        req.stop_signal = Some(s.to_string());
    }
    req.stop_timeout = a.get_num::<u32>("stop-timeout")?;
    req.pull = PullPolicy::parse(a.get("pull").unwrap_or("missing"))?;
    req.platform = a.get("platform").map(str::to_string);
    req.interactive = a.is_set("interactive");
    req.init = a.is_set("init");
    req.security_opts = a
        .all("security-opt")
        .iter()
        .map(|s| s.to_string())
        .collect();
    Ok(req)
}

/// Prints the error and gives docker's 125.
fn failed(e: Error) -> i32 {
    crate::log::error(&e.to_string());
    FAILED
}

pub fn run_main(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let table = run_flags();
    let a = match args::parse_docker(argv, &table, Some(1)) {
        Ok(a) => a,
        Err(e) => return Ok(failed(e)),
    };
    if crate::cli::help_requested(&a, RUN_USAGE) {
        return Ok(0);
    }
    let req = match request(&a) {
        Ok(r) => r,
        Err(e) => return Ok(failed(e)),
    };
    let detach = a.is_set("detach");
    if detach && req.auto_remove && req.run.tty && req.interactive {
        // docker allows it; nothing to check.
    }
    let id = match create::create(&ctx(g), req) {
        Ok(id) => id,
        Err(e) => return Ok(failed(e)),
    };
    Ok(start_one(g, &id, !detach, detach))
}

pub fn create_main(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = match args::parse_docker(argv, CREATE_FLAGS, Some(1)) {
        Ok(a) => a,
        Err(e) => return Ok(failed(e)),
    };
    if crate::cli::help_requested(&a, CREATE_USAGE) {
        return Ok(0);
    }
    let r = request(&a).and_then(|req| create::create(&ctx(g), req));
    match r {
        Ok(id) => {
            println!("{id}");
            Ok(0)
        }
        Err(e) => Ok(failed(e)),
    }
}

const START_FLAGS: &[Flag] = &[
    flag("attach", Some('a'), "attach stdout/stderr and wait"),
    flag("interactive", Some('i'), "attach stdin"),
    flag(
        "all-restartable",
        None,
        "start every container with --restart always or unless-stopped that is not running (after a reboot)",
    ),
];

const START_USAGE: &str = "usage: runway container start [flags] CONTAINER [CONTAINER...]\n";

pub fn start_main(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = args::parse_docker(argv, START_FLAGS, None)?;
    if crate::cli::help_requested(&a, START_USAGE) {
        return Ok(0);
    }
    if a.is_set("all-restartable") {
        return Ok(start_all_restartable(g));
    }
    if a.positionals.is_empty() {
        crate::bail!("\"container start\" requires at least 1 argument");
    }
    let attach = a.is_set("attach");
    if attach && a.positionals.len() > 1 {
        crate::bail!("you cannot attach to multiple containers at once");
    }
    let mut code = 0;
    for n in &a.positionals {
        let id = match names::resolve(&g.data_root, n) {
            Ok(id) => id,
            Err(e) => {
                crate::log::error(&e.to_string());
                code = 1;
                continue;
            }
        };
        let dir = record::dir(&g.data_root, &id);
        let st = record::effective_state(&dir);
        if matches!(
            st.status,
            record::Status::Running | record::Status::Restarting
        ) {
            if !attach {
                println!("{n}");
            }
            continue;
        }
        // A start by the user clears an earlier stop.
        if let Err(e) = clear_stopped(&dir) {
            crate::log::error(&e.to_string());
            code = 1;
            continue;
        }
        let c = start_one(g, &id, attach, false);
        if attach {
            return Ok(c);
        }
        if c == 0 {
            println!("{n}");
        } else {
            code = 1;
        }
    }
    Ok(code)
}

fn clear_stopped(dir: &std::path::Path) -> Result<()> {
    let _l = record::lock(dir)?;
    let mut s = record::load_state(dir);
    s.stopped_by_user = false;
    s.restart_count = 0;
    record::save_state(dir, &s)
}

/// After a reboot: every `always` container, and every `unless-stopped`
/// one the user had not stopped.
fn start_all_restartable(g: &Global) -> i32 {
    let mut code = 0;
    for id in record::list_ids(&g.data_root) {
        let dir = record::dir(&g.data_root, &id);
        let Ok(rec) = record::load(&dir) else {
            continue;
        };
        let st = record::effective_state(&dir);
        let want = match rec.host_config.restart_policy.name.as_str() {
            "always" => true,
            "unless-stopped" => !st.stopped_by_user,
            _ => false,
        };
        if !want
            || matches!(
                st.status,
                record::Status::Running | record::Status::Restarting
            )
        {
            continue;
        }
        if clear_stopped(&dir).is_err() || start_one(g, &id, false, false) != 0 {
            code = 1;
        } else {
            println!("{}", rec.name);
        }
    }
    code
}

/// Starts the monitor for `id`; with `attach`, waits for the first run's
/// end and returns its code. `print_id`: `run -d` prints the id.
fn start_one(g: &Global, id: &str, attach: bool, print_id: bool) -> i32 {
    let dir = record::dir(&g.data_root, id);
    let rec = match record::load(&dir) {
        Ok(r) => r,
        Err(e) => return failed(e),
    };
    let tty = rec.config.tty && attach;
    // Signals for the container, blocked before it exists so none is lost.
    let set = crate::cli::run::forward_set();
    if attach {
        crate::cli::run::block(&set);
    }
    let h = match monitor::spawn(&monitor::Launch {
        root: &g.root,
        data_root: &g.data_root,
        id,
        attach,
    }) {
        Ok(h) => h,
        Err(e) => return failed(e),
    };
    let (pid, master) = match h.recv() {
        Msg::Started { pid, master } => (pid, master),
        Msg::Failed { code, msg } => {
            crate::log::error(&msg);
            if rec.host_config.auto_remove {
                wait_pid(h.monitor_pid);
            }
            return code;
        }
        Msg::Exited { code } => return code,
    };
    if print_id {
        println!("{id}");
    }
    if !attach {
        return 0;
    }
    let code = attach_wait(&h, pid, &set, master, tty);
    if rec.host_config.auto_remove {
        // docker run --rm returns once the container is gone.
        wait_pid(h.monitor_pid);
    }
    code
}

fn wait_pid(pid: i32) {
    let mut st = 0;
    // SAFETY: waiting on our own child.
    while unsafe { libc::waitpid(pid, &mut st, 0) } < 0
        && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
    {}
}

/// The foreground: forward signals to the container's init, keep the
/// pty's size in step with ours, and wait for the monitor's word.
fn attach_wait(
    h: &monitor::Handle,
    pid: i32,
    set: &libc::sigset_t,
    master: Option<OwnedFd>,
    tty: bool,
) -> i32 {
    // SAFETY: signalfd on a valid set; -1 creates a new fd.
    let sfd = unsafe { libc::signalfd(-1, set, libc::SFD_CLOEXEC) };
    let sfd = (sfd >= 0).then(|| {
        // SAFETY: we own the fd just created.
        unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(sfd) }
    });
    let _raw = (tty && rustix::termios::isatty(rustix::stdio::stdin()))
        .then(crate::cli::run::RawMode::enter);
    let resize = |m: &OwnedFd| {
        if let Ok(ws) = rustix::termios::tcgetwinsize(rustix::stdio::stdout()) {
            let _ = crate::linux::pty::set_size(m.as_fd(), ws.ws_row, ws.ws_col);
        }
    };
    if let Some(m) = &master {
        resize(m);
    }
    loop {
        use rustix::event::{PollFd, PollFlags};
        let sock = h.sock();
        let mut fds = vec![PollFd::new(&sock, PollFlags::IN)];
        if let Some(s) = &sfd {
            fds.push(PollFd::new(s, PollFlags::IN));
        }
        if rustix::event::poll(&mut fds, None).is_err() {
            continue;
        }
        let sock_ready = !fds[0].revents().is_empty();
        let sig_ready = fds.get(1).is_some_and(|f| !f.revents().is_empty());
        drop(fds);
        if sig_ready {
            if let Some(s) = &sfd {
                let mut info = [0u8; 128];
                if let Ok(128) = rustix::io::read(s, &mut info) {
                    let sig = i32::from_ne_bytes([info[0], info[1], info[2], info[3]]);
                    if sig == libc::SIGWINCH {
                        if let Some(m) = &master {
                            resize(m);
                        }
                    } else if sig != libc::SIGCHLD {
                        // SAFETY: plain kill(2) of the container's init.
                        unsafe {
                            libc::kill(pid, sig);
                        }
                    }
                }
            }
        }
        if sock_ready {
            return match h.recv() {
                Msg::Exited { code } => code,
                Msg::Failed { code, msg } => {
                    crate::log::error(&msg);
                    code
                }
                Msg::Started { .. } => continue,
            };
        }
    }
}

const EXEC_FLAGS: &[Flag] = &[
    flag("interactive", Some('i'), "keep stdin open"),
    flag("tty", Some('t'), "allocate a pseudo-terminal"),
    flag("detach", Some('d'), "run in the background"),
    val("env", Some('e'), "K=V", "set an environment variable"),
    val("user", Some('u'), "USER[:GROUP]", "user to run as"),
    val("workdir", Some('w'), "DIR", "working directory"),
    flag(
        "privileged",
        None,
        "accepted (the container's capabilities)",
    ),
];

const EXEC_USAGE: &str = "usage: runway container exec [flags] CONTAINER COMMAND [ARG...]\n";

/// `container exec`: the container's own process settings, overridden by
/// the flags; 126/127 when the command cannot be run, as podman.
pub fn exec_main(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = match args::parse_docker(argv, EXEC_FLAGS, Some(1)) {
        Ok(a) => a,
        Err(e) => return Ok(failed(e)),
    };
    if crate::cli::help_requested(&a, EXEC_USAGE) {
        return Ok(0);
    }
    match exec(g, &a) {
        Ok(code) => Ok(code),
        Err(e) => {
            let code = monitor::start_failure_code(&e);
            crate::log::error(&e.to_string());
            Ok(code)
        }
    }
}

fn exec(g: &Global, a: &args::Args) -> Result<i32> {
    let [name] = a.positionals.as_slice() else {
        crate::bail!("\"container exec\" requires at least 2 arguments");
    };
    if a.rest.is_empty() {
        crate::bail!("\"container exec\" requires at least 2 arguments");
    }
    let id = names::resolve(&g.data_root, name)?;
    let dir = record::dir(&g.data_root, &id);
    let st = record::effective_state(&dir);
    if st.status != record::Status::Running {
        crate::bail!("container {name} is not running");
    }
    let odir = crate::container::state::Dir::new(&g.root, &id);
    let saved = crate::container::exec::saved_config(&odir)?;
    let mut p = saved.process.clone().unwrap_or_default();
    p.args = a.rest.clone();
    p.terminal = a.is_set("tty");
    p.console_size = None;
    for e in a.all("env") {
        let e = if e.contains('=') {
            e.to_string()
        } else {
            match std::env::var(e) {
                Ok(v) => format!("{e}={v}"),
                Err(_) => continue,
            }
        };
        let key = e.split('=').next().unwrap_or("").to_string();
        p.env.retain(|x| x.split('=').next() != Some(key.as_str()));
        p.env.push(e);
    }
    if let Some(w) = a.get("workdir") {
        if !w.starts_with('/') {
            crate::bail!("the working directory '{w}' is invalid, it needs to be an absolute path");
        }
        p.cwd = w.to_string();
    }
    if let Some(u) = a.get("user") {
        let rootfs = match record::load(&dir)?.rootfs {
            Some(r) => std::path::PathBuf::from(r),
            None => dir.join("bundle/rootfs"),
        };
        let eu = crate::engine::spec::resolve_user(u, &rootfs)?;
        p.user.uid = eu.uid;
        p.user.gid = eu.gid;
        p.user.additional_gids = eu.sgids;
    }
    let detach = a.is_set("detach");
    let own_console = if p.terminal && !detach {
        Some(crate::linux::sync::pair()?)
    } else {
        None
    };
    let set = crate::cli::run::forward_set();
    if !detach {
        crate::cli::run::block(&set);
    }
    let stdin_null = if a.is_set("interactive") {
        None
    } else {
        // Without -i the command reads nothing, as docker's.
        rustix::fs::open(
            "/dev/null",
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )
        .ok()
        .and_then(|n| {
            rustix::io::fcntl_dupfd_cloexec(rustix::stdio::stdin(), 3)
                .ok()
                .map(|s| (n, s))
        })
    };
    if let Some((n, _)) = &stdin_null {
        // SAFETY: dup2 onto stdin; restored below.
        unsafe {
            libc::dup2(n.as_raw_fd(), 0);
        }
    }
    let spawned = crate::container::exec::exec_process(&crate::container::exec::ExecOpts {
        root: &g.root,
        id: &id,
        process: p,
        pid_file: None,
        console_socket: None,
        console_fd: own_console.as_ref().map(|(_, t)| t.as_raw_fd()),
        preserve_fds: 0,
        ignore_paused: false,
    });
    if let Some((_, saved_in)) = &stdin_null {
        // SAFETY: restore our stdin.
        unsafe {
            libc::dup2(saved_in.as_raw_fd(), 0);
        }
    }
    let spawned = spawned?;
    if detach {
        return Ok(0);
    }
    let master = match &own_console {
        Some((ours, _)) => Some(crate::linux::pty::recv_master(ours.as_fd())?),
        None => None,
    };
    drop(own_console);
    Ok(crate::cli::run::wait_forwarding(spawned.pid, &set, master))
}
