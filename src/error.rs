//! One small error type: what we were doing, plus the errno when a syscall
//! said no. Rendered as "<context>: <the C library's words>", e.g.
//! "rootfs /x: no such file or directory", as runc prints it.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub ctx: String,
    pub errno: Option<i32>,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An error with no errno (bad input, protocol breakage).
    pub fn msg(ctx: impl Into<String>) -> Self {
        Error {
            ctx: ctx.into(),
            errno: None,
        }
    }

    pub fn errno(ctx: impl Into<String>, errno: i32) -> Self {
        Error {
            ctx: ctx.into(),
            errno: Some(errno),
        }
    }

    /// Wrap with an outer context: "outer: inner".
    pub fn wrap(self, outer: impl fmt::Display) -> Self {
        Error {
            ctx: format!("{outer}: {}", self.ctx),
            errno: self.errno,
        }
    }

    pub fn last_os(ctx: impl Into<String>) -> Self {
        Error::errno(ctx, last_errno())
    }
}

pub fn last_errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.errno {
            None => f.write_str(&self.ctx),
            Some(e) => write!(f, "{}: {}", self.ctx, errno_text(e)),
        }
    }
}

impl std::error::Error for Error {}

impl From<rustix::io::Errno> for Error {
    fn from(e: rustix::io::Errno) -> Self {
        Error::errno("syscall", e.raw_os_error())
    }
}

/// Attach context to any fallible result.
pub trait Context<T> {
    fn ctx<S: Into<String>>(self, f: impl FnOnce() -> S) -> Result<T>;
}

impl<T> Context<T> for std::result::Result<T, rustix::io::Errno> {
    fn ctx<S: Into<String>>(self, f: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|e| Error::errno(f(), e.raw_os_error()))
    }
}

impl<T> Context<T> for std::result::Result<T, std::io::Error> {
    fn ctx<S: Into<String>>(self, f: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|e| match e.raw_os_error() {
            Some(n) => Error::errno(f(), n),
            None => Error::msg(format!("{}: {e}", f().into())),
        })
    }
}

impl<T> Context<T> for Result<T> {
    fn ctx<S: Into<String>>(self, f: impl FnOnce() -> S) -> Result<T> {
        self.map_err(|e| e.wrap(f().into()))
    }
}

/// The C library's words for an errno, lower case, as Go (runc) prints
/// them: "no such file or directory", not "ENOENT". Engines match these
/// words (podman: "no such file or directory" -> exit 127), and a user
/// reads them. Fixed here rather than strerror(3) because musl's and
/// glibc's texts differ ("I/O error" vs "input/output error").
pub fn errno_text(e: i32) -> String {
    let s = match e {
        libc::EPERM => "operation not permitted",
        libc::ENOENT => "no such file or directory",
        libc::ESRCH => "no such process",
        libc::EINTR => "interrupted system call",
        libc::EIO => "input/output error",
        libc::ENXIO => "no such device or address",
        libc::E2BIG => "argument list too long",
        libc::ENOEXEC => "exec format error",
        libc::EBADF => "bad file descriptor",
        libc::ECHILD => "no child processes",
        libc::EAGAIN => "resource temporarily unavailable",
        libc::ENOMEM => "cannot allocate memory",
        libc::EACCES => "permission denied",
        libc::EFAULT => "bad address",
        libc::EBUSY => "device or resource busy",
        libc::EEXIST => "file exists",
        libc::EXDEV => "invalid cross-device link",
        libc::ENODEV => "no such device",
        libc::ENOTDIR => "not a directory",
        libc::EISDIR => "is a directory",
        libc::EINVAL => "invalid argument",
        libc::ENFILE => "too many open files in system",
        libc::EMFILE => "too many open files",
        libc::ENOTTY => "inappropriate ioctl for device",
        libc::ETXTBSY => "text file busy",
        libc::EFBIG => "file too large",
        libc::ENOSPC => "no space left on device",
        libc::ESPIPE => "illegal seek",
        libc::EROFS => "read-only file system",
        libc::EMLINK => "too many links",
        libc::EPIPE => "broken pipe",
        libc::ERANGE => "numerical result out of range",
        libc::ENAMETOOLONG => "file name too long",
        libc::ENOSYS => "function not implemented",
        libc::ENOTEMPTY => "directory not empty",
        libc::ELOOP => "too many levels of symbolic links",
        libc::ENOTSUP => "operation not supported",
        libc::ECONNREFUSED => "connection refused",
        libc::ETIMEDOUT => "connection timed out",
        libc::EDQUOT => "disk quota exceeded",
        libc::ENOTSOCK => "socket operation on non-socket",
        libc::EADDRINUSE => "address already in use",
        libc::ENOTCONN => "transport endpoint is not connected",
        libc::ECONNRESET => "connection reset by peer",
        libc::EOVERFLOW => "value too large for defined data type",
        _ => return format!("errno {e}"),
    };
    s.to_string()
}

/// Shorthand for bad-input errors.
#[macro_export]
macro_rules! bail {
    ($($arg:tt)*) => { return Err($crate::error::Error::msg(format!($($arg)*))) };
}
