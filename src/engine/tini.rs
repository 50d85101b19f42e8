//! `--init`: runway itself as the container's PID 1 (docker-init/tini's
//! job): run as `runway-init -- CMD ARG…`, it forks CMD, forwards the
//! signals it gets to it, reaps every zombie and exits with CMD's status;
//! plus the read-only copy of the binary that gets bind-mounted for it.
//!
//! Why a copy and not /proc/self/exe or the host's runway: a container must
//! never reach a writable handle on the binary the host runs (the
//! CVE-2019-5736 class). The copy lives under the data root, is mode 0555
//! and is only ever mounted read-only; the host never executes it.

use crate::engine::spec::InitBinary;
use crate::error::{Context, Error, Result};
use std::ffi::{CString, OsStr, OsString};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// argv[0]'s basename that makes the binary act as init.
pub const INIT_NAME: &str = "runway-init";
/// Where the copy is bind-mounted inside the container.
pub const CONTAINER_PATH: &str = "/sbin/runway-init";

/// When the running binary was invoked as `runway-init`: run as init and
/// return its exit code; None otherwise (main goes on to the CLI).
pub fn dispatch() -> Option<i32> {
    let mut args = std::env::args_os();
    let argv0 = args.next()?;
    if !is_init_name(&argv0) {
        return None;
    }
    let rest: Vec<OsString> = args.collect();
    Some(main(&rest))
}

/// Whether argv[0] names the init (its basename is `runway-init`).
pub fn is_init_name(argv0: &OsStr) -> bool {
    let b = argv0.as_bytes();
    let base = b.rsplit(|&c| c == b'/').next().unwrap_or(b);
    base == INIT_NAME.as_bytes()
}

fn say(parts: &[&[u8]]) {
    // Raw write(2): usable in the forked child, where nothing may allocate.
    for p in parts {
        // SAFETY: writes `p`'s bytes from a live slice to fd 2.
        unsafe { libc::write(2, p.as_ptr().cast(), p.len()) };
    }
}

/// The words for exec's errnos, without allocating (the forked child).
fn exec_errno_words(e: i32) -> &'static [u8] {
    match e {
        libc::ENOENT => b"no such file or directory",
        libc::EACCES => b"permission denied",
        libc::ENOEXEC => b"exec format error",
        libc::ENOTDIR => b"not a directory",
        libc::ELOOP => b"too many levels of symbolic links",
        libc::ETXTBSY => b"text file busy",
        libc::E2BIG => b"argument list too long",
        libc::ENOMEM => b"cannot allocate memory",
        libc::EISDIR => b"is a directory",
        libc::EPERM => b"operation not permitted",
        _ => b"cannot execute",
    }
}

/// Signals that say something about the process itself (a fault), never
/// forwarded: they stay unblocked so that a fault in the init kills it.
const SYNCHRONOUS: [i32; 7] = [
    libc::SIGFPE,
    libc::SIGILL,
    libc::SIGSEGV,
    libc::SIGBUS,
    libc::SIGABRT,
    libc::SIGTRAP,
    libc::SIGSYS,
];

/// The init: `args` is what follows argv[0] (`-- CMD ARG…`, the `--`
/// optional). Returns the exit code: CMD's status, 128+N when it died by
/// signal N, 127/126 when it could not be executed (message on stderr).
pub fn main(args: &[OsString]) -> i32 {
    let args = match args.first() {
        Some(a) if a == "--" => &args[1..],
        _ => args,
    };
    if args.is_empty() {
        say(&[b"usage: runway-init -- COMMAND [ARG...]\n"]);
        return 1;
    }
    // Everything the child needs is made before the fork.
    let mut cargs: Vec<CString> = Vec::with_capacity(args.len());
    for a in args {
        match CString::new(a.as_bytes()) {
            Ok(c) => cargs.push(c),
            Err(_) => {
                say(&[b"runway-init: an argument contains a NUL byte\n"]);
                return 1;
            }
        }
    }
    let mut argv: Vec<*const libc::c_char> = cargs.iter().map(|c| c.as_ptr()).collect();
    argv.push(std::ptr::null());

    // SAFETY: plain libc calls on local, initialised sigset_t values; no
    // threads exist, so the fork below is async-signal-safe territory.
    unsafe {
        let mut waited: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut waited);
        for s in SYNCHRONOUS {
            libc::sigdelset(&mut waited, s);
        }
        let mut old: libc::sigset_t = std::mem::zeroed();
        // Blocked, every signal is queued for sigtimedwait, even as PID 1
        // of a namespace (where the kernel drops unhandled default-action
        // signals that are not blocked).
        libc::sigprocmask(libc::SIG_SETMASK, &waited, &mut old);
        // tcsetpgrp from a background group raises SIGTTOU; the child
        // calls it, and we must not be stopped by terminal access either.
        let old_ttin = libc::signal(libc::SIGTTIN, libc::SIG_IGN);
        let old_ttou = libc::signal(libc::SIGTTOU, libc::SIG_IGN);
        if libc::getpid() != 1 {
            // Not PID 1 (no PID namespace): orphans still come to us.
            libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        }

        let child = libc::fork();
        if child < 0 {
            say(&[b"runway-init: fork failed\n"]);
            return 1;
        }
        if child == 0 {
            // Its own process group, in the foreground of the terminal if
            // there is one: job control and ^C in `-it` shells then work.
            libc::setpgid(0, 0);
            if libc::isatty(0) == 1 {
                libc::tcsetpgrp(0, libc::getpgrp());
            }
            libc::signal(libc::SIGTTIN, old_ttin);
            libc::signal(libc::SIGTTOU, old_ttou);
            libc::sigprocmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
            libc::execvp(argv[0], argv.as_ptr());
            let e = *libc::__errno_location();
            say(&[
                b"runway-init: exec \"",
                cargs[0].as_bytes(),
                b"\": ",
                exec_errno_words(e),
                b"\n",
            ]);
            libc::_exit(if e == libc::ENOENT || e == libc::ENOTDIR {
                127
            } else {
                126
            });
        }
        supervise(child, &waited)
    }
}

/// The init's loop: forward what arrives, reap what died, leave with the
/// child's status once it is reaped.
fn supervise(child: libc::pid_t, waited: &libc::sigset_t) -> i32 {
    loop {
        // SAFETY: sigtimedwait writes into a local siginfo_t.
        let sig = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            // A timeout, not an endless wait: a reap is re-tried each
            // second even if a SIGCHLD was coalesced with another.
            let ts = libc::timespec {
                tv_sec: 1,
                tv_nsec: 0,
            };
            libc::sigtimedwait(waited, &mut info, &ts)
        };
        if sig > 0 && sig != libc::SIGCHLD {
            // SAFETY: kill(2); ESRCH (child already gone) is harmless.
            unsafe { libc::kill(child, sig) };
        }
        if let Some(code) = reap(child) {
            return code;
        }
    }
}

/// Reaps every exited process (orphans are ours as PID 1); the exit code
/// when `child` was among them.
fn reap(child: libc::pid_t) -> Option<i32> {
    let mut code = None;
    loop {
        let mut status = 0;
        // SAFETY: waitpid(2) into a local int.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return code;
        }
        if pid == child {
            code = Some(if libc::WIFSIGNALED(status) {
                128 + libc::WTERMSIG(status)
            } else {
                libc::WEXITSTATUS(status)
            });
        }
    }
}

/// The init binary for `--init`: a copy of the running binary at
/// DATA_ROOT/bin/runway-init (refreshed when it differs), to be bind-mounted
/// read-only at [`CONTAINER_PATH`].
pub fn init_binary(data_root: &Path) -> Result<InitBinary> {
    let host = install(Path::new("/proc/self/exe"), &data_root.join("bin"))?;
    Ok(InitBinary {
        host_path: host.to_string_lossy().into_owned(),
        container_path: CONTAINER_PATH.to_string(),
    })
}

fn read_all(p: &Path) -> Result<Vec<u8>> {
    let mut f = std::fs::File::open(p).ctx(|| format!("open {}", p.display()))?;
    let mut v = Vec::new();
    f.read_to_end(&mut v)
        .ctx(|| format!("read {}", p.display()))?;
    Ok(v)
}

/// Whether `dest` holds exactly `want` (size first: the cheap no).
fn same_content(dest: &Path, want: &[u8]) -> Result<bool> {
    match std::fs::metadata(dest) {
        Ok(m) if m.len() == want.len() as u64 && m.permissions().mode() & 0o7777 == 0o555 => {
            Ok(read_all(dest)? == want)
        }
        Ok(_) => Ok(false),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e).ctx(|| format!("stat {}", dest.display())),
    }
}

/// Copies `src` to `dir/runway-init` unless that already holds the same
/// bytes; returns the path. Concurrent callers serialise on `dir/.lock`;
/// the copy appears whole or not at all (tmp + fsync + rename), so a
/// container never mounts half a binary.
pub fn install(src: &Path, dir: &Path) -> Result<PathBuf> {
    let dest = dir.join(INIT_NAME);
    let want = read_all(src)?;
    if same_content(&dest, &want)? {
        return Ok(dest);
    }
    std::fs::create_dir_all(dir).ctx(|| format!("create {}", dir.display()))?;
    let lock_path = dir.join(".lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_CLOEXEC)
        .open(&lock_path)
        .ctx(|| format!("open {}", lock_path.display()))?;
    rustix::fs::flock(&lock, rustix::fs::FlockOperation::LockExclusive)
        .ctx(|| format!("lock {}", lock_path.display()))?;
    // Another caller may have installed it while we waited.
    if same_content(&dest, &want)? {
        return Ok(dest);
    }
    let tmp = dir.join(format!(".{INIT_NAME}.tmp{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let written = (|| -> Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o555)
            .custom_flags(libc::O_CLOEXEC)
            .open(&tmp)
            .ctx(|| format!("create {}", tmp.display()))?;
        f.write_all(&want)
            .ctx(|| format!("write {}", tmp.display()))?;
        // The umask may have taken bits off the create mode.
        f.set_permissions(std::fs::Permissions::from_mode(0o555))
            .ctx(|| format!("chmod {}", tmp.display()))?;
        f.sync_all().ctx(|| format!("fsync {}", tmp.display()))?;
        std::fs::rename(&tmp, &dest).ctx(|| format!("rename to {}", dest.display()))?;
        let d = std::fs::File::open(dir).ctx(|| format!("open {}", dir.display()))?;
        d.sync_all().ctx(|| format!("fsync {}", dir.display()))
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    drop(lock);
    if !same_content(&dest, &want)? {
        return Err(Error::msg(format!(
            "{}: the installed copy does not match",
            dest.display()
        )));
    }
    Ok(dest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn scratch(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("runway-tini-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn argv0_dispatch() {
        assert!(is_init_name(OsStr::new("runway-init")));
        assert!(is_init_name(OsStr::new("/sbin/runway-init")));
        assert!(!is_init_name(OsStr::new("runway")));
        assert!(!is_init_name(OsStr::new("/usr/bin/runway-init2")));
        assert!(!is_init_name(OsStr::new("")));
    }

    #[test]
    fn install_is_idempotent_and_replaces_changed_content() {
        let d = scratch("install");
        let src = d.join("src");
        std::fs::write(&src, b"version one").unwrap();
        let bin = d.join("bin");
        let p = install(&src, &bin).unwrap();
        assert_eq!(p, bin.join(INIT_NAME));
        assert_eq!(std::fs::read(&p).unwrap(), b"version one");
        let m1 = std::fs::metadata(&p).unwrap();
        assert_eq!(m1.permissions().mode() & 0o7777, 0o555);

        // Same content: the very same file is kept (no rewrite).
        install(&src, &bin).unwrap();
        let m2 = std::fs::metadata(&p).unwrap();
        assert_eq!((m1.ino(), m1.mtime_nsec()), (m2.ino(), m2.mtime_nsec()));

        // Same size, other content: replaced by a new file.
        std::fs::write(&src, b"version two").unwrap();
        install(&src, &bin).unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"version two");
        assert_ne!(std::fs::metadata(&p).unwrap().ino(), m1.ino());

        // A copy someone made writable is replaced too.
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        install(&src, &bin).unwrap();
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o7777,
            0o555
        );
        // No temporary file is left.
        let names: Vec<String> = std::fs::read_dir(&bin)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.iter().all(|n| n == INIT_NAME || n == ".lock"),
            "{names:?}"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn init_binary_copies_the_running_binary() {
        let d = scratch("self");
        let ib = init_binary(&d).unwrap();
        assert_eq!(ib.container_path, CONTAINER_PATH);
        assert_eq!(
            std::fs::read(&ib.host_path).unwrap(),
            std::fs::read("/proc/self/exe").unwrap()
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn concurrent_installs_agree() {
        let d = scratch("race");
        let src = d.join("src");
        std::fs::write(&src, vec![7u8; 1 << 16]).unwrap();
        let bin = d.join("bin");
        let hs: Vec<_> = (0..8)
            .map(|_| {
                let (s, b) = (src.clone(), bin.clone());
                std::thread::spawn(move || install(&s, &b).unwrap())
            })
            .collect();
        for h in hs {
            h.join().unwrap();
        }
        assert_eq!(
            std::fs::read(bin.join(INIT_NAME)).unwrap(),
            vec![7u8; 1 << 16]
        );
        std::fs::remove_dir_all(&d).unwrap();
    }
}
