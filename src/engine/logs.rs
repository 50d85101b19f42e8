//! The container log: docker's json-file format, written by the
//! per-container monitor (single-threaded, appends records as the
//! container's stdout and stderr arrive) and read by other processes
//! (`runway container logs [-f] [--tail N] [--since] [-t]`).
//!
//! On disk: `container.log` is the live file, `container.log.1` the one
//! before it, and so on up to `max-file - 1`. One JSON object per line:
//! `{"log":"text\n","stream":"stdout","time":"2026-12-06T23:59:59.123456789Z"}`.
//! A record whose `log` does not end in `\n` is part of a longer line
//! (split at 16 KiB, as docker does) or the last unterminated output.
//!
//! Rotation renames files and never truncates, so a reader that holds an
//! old file descriptor can finish reading it, notice that the path now
//! names another inode, and move on to the next file.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::bail;
use crate::error::{Context, Error, Result};

/// A line longer than this is written as several records of at most this
/// size, all but the last without a trailing newline (docker's 16 KiB
/// limit).
pub const MAX_LINE: usize = 16 * 1024;

/// How long `follow` sleeps when no new data has arrived.
const FOLLOW_POLL: Duration = Duration::from_millis(100);

/// Block size for reading a file backwards (`--tail`).
const BACK_BLOCK: u64 = 64 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    fn index(self) -> usize {
        match self {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        }
    }
}

/// `--log-opt max-size=… max-file=…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogOpts {
    /// Rotate before the live file would grow past this many bytes; `None`
    /// never rotates.
    pub max_size: Option<u64>,
    /// How many files to keep, the live one included (at least 1).
    pub max_file: u32,
}

impl Default for LogOpts {
    fn default() -> Self {
        LogOpts {
            max_size: None,
            max_file: 1,
        }
    }
}

/// Docker's size syntax for `max-size`: a number with an optional k/m/g
/// suffix (binary multiples, optionally followed by `b`), e.g. `10m`,
/// `512k`, `1g`, `1048576`.
pub fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.as_bytes().last() {
        Some(b'k') => (&t[..t.len() - 1], 1u64 << 10),
        Some(b'm') => (&t[..t.len() - 1], 1u64 << 20),
        Some(b'g') => (&t[..t.len() - 1], 1u64 << 30),
        Some(b't') => (&t[..t.len() - 1], 1u64 << 40),
        _ => (t, 1),
    };
    let num = num.trim();
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        bail!("invalid size: '{s}'");
    }
    // A fraction is allowed ("1.5m"), as docker's units package allows it.
    let Some(value) = crate::num::parse_decimal(num) else {
        bail!("invalid size: '{s}'");
    };
    let bytes = value * mult as f64;
    if !bytes.is_finite() || bytes >= u64::MAX as f64 {
        bail!("invalid size: '{s}'");
    }
    Ok(bytes as u64)
}

/// Parses the json-file driver's `--log-opt` values (`key=value` each):
/// `max-size` and `max-file`. As docker: max-file defaults to 1, must be
/// at least 1, and more than one file needs a max-size; unknown keys are
/// an error.
pub fn parse_log_opts<S: AsRef<str>>(opts: &[S]) -> Result<LogOpts> {
    let mut out = LogOpts::default();
    let mut max_file_set = false;
    for opt in opts {
        let opt = opt.as_ref();
        let Some((k, v)) = opt.split_once('=') else {
            bail!("invalid log opt '{opt}': want key=value");
        };
        match k {
            "max-size" => {
                let n = parse_size(v)?;
                if n == 0 {
                    bail!("max-size must be a positive number");
                }
                out.max_size = Some(n);
            }
            "max-file" => {
                let n: u32 = match v.trim().parse() {
                    Ok(n) => n,
                    Err(_) => bail!("invalid max-file: '{v}'"),
                };
                if n < 1 {
                    bail!("max-file cannot be less than 1");
                }
                out.max_file = n;
                max_file_set = true;
            }
            _ => bail!("unknown log opt '{k}' for json-file log driver"),
        }
    }
    if max_file_set && out.max_file > 1 && out.max_size.is_none() {
        bail!("max-file cannot be set when max-size is not set");
    }
    Ok(out)
}

/// `container.log.N` for N >= 1, `container.log` for 0.
fn rotated(path: &Path, n: u32) -> PathBuf {
    if n == 0 {
        return path.to_path_buf();
    }
    let mut s = path.as_os_str().to_os_string();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

fn time_field(now: SystemTime) -> String {
    match now.duration_since(UNIX_EPOCH) {
        Ok(d) => crate::timefmt::rfc3339_nano(d.as_secs() as i64, d.subsec_nanos()),
        // A clock before 1970 is a broken clock; the record still counts.
        Err(_) => crate::timefmt::rfc3339_nano(0, 0),
    }
}

/// Where to split a full 16 KiB window: before a UTF-8 sequence that the
/// window would cut in two, so that both records keep the character
/// (docker cuts at exactly 16 KiB and both halves become U+FFFD). Bytes
/// that are not UTF-8 are cut at 16 KiB.
fn utf8_cut(window: &[u8]) -> usize {
    let len = window.len();
    for back in 1..=4.min(len) {
        let i = len - back;
        let b = window[i];
        if b & 0xC0 == 0x80 {
            continue; // a continuation byte: the lead is further back
        }
        let need = match b {
            0xC0..=0xDF => 2,
            0xE0..=0xEF => 3,
            0xF0..=0xF7 => 4,
            _ => 1,
        };
        return if i + need > len && i > 0 { i } else { len };
    }
    len
}

/// The monitor's end: appends records, splits lines, rotates.
#[derive(Debug)]
pub struct LogWriter {
    path: PathBuf,
    file: File,
    /// Size of the live file, as written by us (plus what was there).
    size: u64,
    opts: LogOpts,
    /// Per stream: bytes of a line not yet terminated.
    pending: [Vec<u8>; 2],
    /// Encoded records not yet written to the file.
    out: Vec<u8>,
}

fn open_append(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .read(true)
        .mode(0o640)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .ctx(|| format!("open log {}", path.display()))
}

impl LogWriter {
    /// Opens (creating) the live log for appending. If an earlier monitor
    /// was killed mid-record, the file ends in a torn line: a newline is
    /// added so that the torn part stays one corrupt line (skipped by
    /// readers) instead of swallowing the next record.
    pub fn open(path: &Path, opts: LogOpts) -> Result<LogWriter> {
        let mut opts = opts;
        opts.max_file = opts.max_file.max(1);
        let mut file = open_append(path)?;
        let size = file
            .metadata()
            .ctx(|| format!("stat log {}", path.display()))?
            .len();
        let mut size = size;
        if size > 0 {
            let mut last = [0u8; 1];
            file.read_exact_at(&mut last, size - 1)
                .ctx(|| format!("read log {}", path.display()))?;
            if last[0] != b'\n' {
                file.write_all(b"\n")
                    .ctx(|| format!("write log {}", path.display()))?;
                size += 1;
            }
        }
        Ok(LogWriter {
            path: path.to_path_buf(),
            file,
            size,
            opts,
            pending: [Vec::new(), Vec::new()],
            out: Vec::new(),
        })
    }

    /// Adds bytes the container wrote on `stream` at `now`. Every complete
    /// line becomes a record (and every 16 KiB of a longer one); the rest
    /// waits for more bytes or `close`. The records reach the file before
    /// this returns, so followers see them.
    pub fn write(&mut self, stream: Stream, bytes: &[u8], now: SystemTime) -> Result<()> {
        let i = stream.index();
        self.pending[i].extend_from_slice(bytes);
        let time = time_field(now);
        let mut start = 0;
        let res = loop {
            let rest = &self.pending[i][start..];
            let window = &rest[..rest.len().min(MAX_LINE)];
            let cut = match memchr::memchr(b'\n', window) {
                Some(nl) => nl + 1,
                None if rest.len() >= MAX_LINE => utf8_cut(window),
                None => break Ok(()),
            };
            let chunk = self.pending[i][start..start + cut].to_vec();
            start += cut;
            if let Err(e) = self.record(stream, &chunk, &time) {
                break Err(e);
            }
        };
        self.pending[i].drain(..start);
        res?;
        self.flush()
    }

    /// Encodes one record, rotating first if it would not fit.
    fn record(&mut self, stream: Stream, chunk: &[u8], time: &str) -> Result<()> {
        let text = String::from_utf8_lossy(chunk);
        let log = serde_json::to_string(&*text)
            .map_err(|e| Error::msg(format!("encode log record: {e}")))?;
        let line = format!(
            "{{\"log\":{log},\"stream\":\"{}\",\"time\":\"{time}\"}}\n",
            stream.as_str()
        );
        if let Some(max) = self.opts.max_size {
            let have = self.size + self.out.len() as u64;
            if have > 0 && have + line.len() as u64 > max {
                self.flush()?;
                self.rotate()?;
            }
        }
        self.out.extend_from_slice(line.as_bytes());
        Ok(())
    }

    /// Writes out encoded records. `write` already calls it; it is public
    /// for a retry after a failed write (e.g. the disk was full): on error
    /// the buffered records are dropped rather than grow without bound.
    pub fn flush(&mut self) -> Result<()> {
        if self.out.is_empty() {
            return Ok(());
        }
        let res = self.file.write_all(&self.out);
        match res {
            Ok(()) => {
                self.size += self.out.len() as u64;
                self.out.clear();
                Ok(())
            }
            Err(e) => {
                self.out.clear();
                // Re-read the size: part of the buffer may have landed.
                if let Ok(m) = self.file.metadata() {
                    self.size = m.len();
                }
                Err(e).ctx(|| format!("write log {}", self.path.display()))
            }
        }
    }

    /// container.log.{n-2} -> .{n-1}, …, container.log -> .1, new container.log.
    /// With max-file 1 the live file is unlinked, not truncated, so a
    /// reader holding it still finishes it.
    fn rotate(&mut self) -> Result<()> {
        let n = self.opts.max_file;
        if n <= 1 {
            match std::fs::remove_file(&self.path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e).ctx(|| format!("remove log {}", self.path.display()));
                }
            }
        } else {
            for k in (1..n).rev() {
                let from = rotated(&self.path, k - 1);
                let to = rotated(&self.path, k);
                match std::fs::rename(&from, &to) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(e)
                            .ctx(|| format!("rotate log {} -> {}", from.display(), to.display()));
                    }
                }
            }
        }
        self.file = open_append(&self.path)?;
        self.size = self
            .file
            .metadata()
            .ctx(|| format!("stat log {}", self.path.display()))?
            .len();
        Ok(())
    }

    /// Writes the unterminated lines left in either stream as records
    /// without a newline (the container's last output) and closes.
    pub fn close(mut self, now: SystemTime) -> Result<()> {
        let time = time_field(now);
        for stream in [Stream::Stdout, Stream::Stderr] {
            let rest = std::mem::take(&mut self.pending[stream.index()]);
            if !rest.is_empty() {
                self.record(stream, &rest, &time)?;
            }
        }
        self.flush()
    }
}

// ---------------------------------------------------------------- reading

/// One parsed record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub log: String,
    pub stream: Stream,
    pub secs: i64,
    pub nanos: u32,
}

impl Record {
    fn time(&self) -> Option<SystemTime> {
        if self.secs >= 0 {
            UNIX_EPOCH.checked_add(Duration::new(self.secs as u64, self.nanos))
        } else {
            UNIX_EPOCH
                .checked_sub(Duration::from_secs(self.secs.unsigned_abs()))?
                .checked_add(Duration::from_nanos(self.nanos as u64))
        }
    }
}

#[derive(serde::Deserialize)]
struct RawRecord {
    log: String,
    stream: String,
    time: String,
}

/// Parses one line of the log (without its newline). `None` for anything
/// that is not a well-formed record; never panics.
pub fn parse_line(line: &[u8]) -> Option<Record> {
    let raw: RawRecord = serde_json::from_slice(line).ok()?;
    let stream = match raw.stream.as_str() {
        "stdout" => Stream::Stdout,
        "stderr" => Stream::Stderr,
        _ => return None,
    };
    let (secs, nanos) = parse_rfc3339(&raw.time)?;
    Some(Record {
        log: raw.log,
        stream,
        secs,
        nanos,
    })
}

pub use crate::timefmt::parse_rfc3339;

pub use crate::timefmt::parse_duration;

/// A `--since`/`--until` value as docker takes it: a duration relative to
/// `now` (`10m`, `2h30m`), Unix seconds (`1700000000` or
/// `1700000000.5`), or an RFC 3339 date/time (see `parse_rfc3339`).
pub fn parse_time_arg(s: &str, now: SystemTime) -> Result<SystemTime> {
    let s = s.trim();
    if let Some(d) = parse_duration(s) {
        // "0" alone is Unix time 0, as docker reads it.
        if s != "0" {
            return match now.checked_sub(d) {
                Some(t) => Ok(t),
                None => bail!("time '{s}' is out of range"),
            };
        }
    }
    let unix = s.split_once('.').unwrap_or((s, ""));
    if !unix.0.is_empty()
        && unix.0.bytes().all(|b| b.is_ascii_digit())
        && unix.1.bytes().all(|b| b.is_ascii_digit())
        && unix.0.len() <= 12
    {
        let secs: u64 = unix.0.parse().unwrap_or(0);
        let mut nanos: u32 = 0;
        for (k, d) in unix.1.bytes().take(9).enumerate() {
            nanos += (d - b'0') as u32 * 10u32.pow(8 - k as u32);
        }
        if let Some(t) = UNIX_EPOCH.checked_add(Duration::new(secs, nanos)) {
            return Ok(t);
        }
    }
    if let Some((secs, nanos)) = parse_rfc3339(s) {
        let r = Record {
            log: String::new(),
            stream: Stream::Stdout,
            secs,
            nanos,
        };
        if let Some(t) = r.time() {
            return Ok(t);
        }
    }
    bail!("invalid time '{s}': want a duration (10m, 2h), Unix seconds or RFC 3339")
}

/// What `logs` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadOpts {
    /// Only the last N records (after the other filters); `None` = all.
    pub tail: Option<usize>,
    /// Only records at or after this time.
    pub since: Option<SystemTime>,
    /// Only records at or before this time; `follow` stops once the clock
    /// passes it.
    pub until: Option<SystemTime>,
    /// Prefix each record with its time, as `docker logs -t`.
    pub timestamps: bool,
    pub stdout: bool,
    pub stderr: bool,
}

impl Default for ReadOpts {
    fn default() -> Self {
        ReadOpts {
            tail: None,
            since: None,
            until: None,
            timestamps: false,
            stdout: true,
            stderr: true,
        }
    }
}

/// `--tail`'s value as docker takes it: a count, or `all` (also any
/// negative number) for everything.
pub fn parse_tail(s: &str) -> Result<Option<usize>> {
    let s = s.trim();
    if s == "all"
        || (s.starts_with('-') && s[1..].bytes().all(|b| b.is_ascii_digit()) && s.len() > 1)
    {
        return Ok(None);
    }
    match s.parse::<usize>() {
        Ok(n) => Ok(Some(n)),
        Err(_) => bail!("invalid --tail value '{s}': want a number or 'all'"),
    }
}

/// `docker logs -t`'s prefix: RFC 3339 with exactly nine fraction digits.
pub fn timestamp_prefix(secs: i64, nanos: u32) -> String {
    let base = crate::timefmt::rfc3339(secs);
    let base = base.strip_suffix('Z').unwrap_or(&base);
    format!("{base}.{nanos:09}Z ")
}

fn wanted(rec: &Record, opts: &ReadOpts) -> bool {
    let stream_ok = match rec.stream {
        Stream::Stdout => opts.stdout,
        Stream::Stderr => opts.stderr,
    };
    if !stream_ok {
        return false;
    }
    if opts.since.is_none() && opts.until.is_none() {
        return true;
    }
    let Some(t) = rec.time() else { return false };
    if opts.since.is_some_and(|s| t < s) {
        return false;
    }
    if opts.until.is_some_and(|u| t > u) {
        return false;
    }
    true
}

/// Parses a line and keeps it if the filters want it; corrupt lines are
/// logged at debug level and skipped.
fn select(line: &[u8], opts: &ReadOpts) -> Option<Record> {
    if line.is_empty() {
        return None;
    }
    match parse_line(line) {
        Some(r) if wanted(&r, opts) => Some(r),
        Some(_) => None,
        None => {
            crate::log::debug(&format!(
                "log: skipping a corrupt record ({} bytes)",
                line.len()
            ));
            None
        }
    }
}

struct Outputs<'a> {
    stdout: &'a mut dyn Write,
    stderr: &'a mut dyn Write,
}

impl Outputs<'_> {
    fn emit(&mut self, rec: &Record, opts: &ReadOpts) -> Result<()> {
        let w: &mut dyn Write = match rec.stream {
            Stream::Stdout => &mut *self.stdout,
            Stream::Stderr => &mut *self.stderr,
        };
        if opts.timestamps {
            w.write_all(timestamp_prefix(rec.secs, rec.nanos).as_bytes())
                .ctx(|| "write logs")?;
        }
        w.write_all(rec.log.as_bytes()).ctx(|| "write logs")
    }

    fn flush(&mut self) -> Result<()> {
        self.stdout.flush().ctx(|| "write logs")?;
        self.stderr.flush().ctx(|| "write logs")
    }
}

/// An open log file and how far it counts: `end` is just past its last
/// newline when it was opened (bytes after that are a torn or unfinished
/// record).
struct Opened {
    file: File,
    id: (u64, u64),
    end: u64,
}

fn file_id(m: &std::fs::Metadata) -> (u64, u64) {
    (m.dev(), m.ino())
}

fn open_read(path: &Path) -> Result<Option<(File, std::fs::Metadata)>> {
    match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => {
            let m = f
                .metadata()
                .ctx(|| format!("stat log {}", path.display()))?;
            Ok(Some((f, m)))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).ctx(|| format!("open log {}", path.display())),
    }
}

/// The offset just past the last newline before `len`.
fn complete_end(file: &File, len: u64) -> Result<u64> {
    let mut pos = len;
    let mut buf = vec![0u8; BACK_BLOCK as usize];
    while pos > 0 {
        let n = BACK_BLOCK.min(pos);
        let start = pos - n;
        let chunk = &mut buf[..n as usize];
        file.read_exact_at(chunk, start).ctx(|| "read log")?;
        if let Some(i) = memchr::memrchr(b'\n', chunk) {
            return Ok(start + i as u64 + 1);
        }
        pos = start;
    }
    Ok(0)
}

/// Opens the live file and the rotated ones, newest first, and returns
/// them oldest first. A rotation while we open shifts names by one; the
/// same inode seen twice is kept once. Also returns whether the last one
/// is the live file.
fn open_all(path: &Path) -> Result<(Vec<Opened>, bool)> {
    let mut files: Vec<Opened> = Vec::new();
    let mut have_live = false;
    let mut n = 0u32;
    loop {
        let p = rotated(path, n);
        match open_read(&p)? {
            Some((file, m)) => {
                let id = file_id(&m);
                if !files.iter().any(|o| o.id == id) {
                    let end = complete_end(&file, m.len())?;
                    files.push(Opened { file, id, end });
                    if n == 0 {
                        have_live = true;
                    }
                }
            }
            // The live file may be missing for an instant mid-rotation;
            // .1 onwards end at the first gap.
            None if n == 0 => {}
            None => break,
        }
        n += 1;
        if n > 100_000 {
            break;
        }
    }
    files.reverse();
    Ok((files, have_live))
}

/// Reads a file backwards, one complete line at a time.
struct RevLines<'a> {
    file: &'a File,
    /// File offset of buf[0].
    pos: u64,
    /// Bytes [pos, pos + buf.len()) not yet returned, ending with '\n'
    /// unless empty.
    buf: Vec<u8>,
}

impl<'a> RevLines<'a> {
    fn new(file: &'a File, end: u64) -> Self {
        RevLines {
            file,
            pos: end,
            buf: Vec::new(),
        }
    }

    fn prev_line(&mut self) -> Result<Option<Vec<u8>>> {
        loop {
            if self.buf.is_empty() && self.pos == 0 {
                return Ok(None);
            }
            // The region is [pos, pos+len) with the final byte a '\n'
            // (the end offset is always just past a newline).
            let body_len = self.buf.len().saturating_sub(1);
            if let Some(i) = memchr::memrchr(b'\n', &self.buf[..body_len]) {
                let line = self.buf[i + 1..body_len].to_vec();
                self.buf.truncate(i + 1);
                return Ok(Some(line));
            }
            if self.pos == 0 {
                let line = self.buf[..body_len].to_vec();
                self.buf.clear();
                return Ok(Some(line));
            }
            let n = BACK_BLOCK.min(self.pos);
            let start = self.pos - n;
            let mut block = vec![0u8; n as usize];
            self.file
                .read_exact_at(&mut block, start)
                .ctx(|| "read log")?;
            block.extend_from_slice(&self.buf);
            self.buf = block;
            self.pos = start;
        }
    }
}

/// Writes every wanted complete record of `file` in [from, end).
fn forward(file: &File, from: u64, end: u64, opts: &ReadOpts, out: &mut Outputs) -> Result<()> {
    let mut pos = from;
    let mut buf = vec![0u8; BACK_BLOCK as usize];
    let mut carry: Vec<u8> = Vec::new();
    while pos < end {
        let want = (end - pos).min(BACK_BLOCK) as usize;
        let n = file.read_at(&mut buf[..want], pos).ctx(|| "read log")?;
        if n == 0 {
            break;
        }
        pos += n as u64;
        carry.extend_from_slice(&buf[..n]);
        let mut start = 0;
        while let Some(i) = memchr::memchr(b'\n', &carry[start..]) {
            if let Some(rec) = select(&carry[start..start + i], opts) {
                out.emit(&rec, opts)?;
            }
            start += i + 1;
        }
        carry.drain(..start);
    }
    Ok(())
}

/// Prints what the log holds now; returns a cursor on the live file at the
/// offset up to which it was printed (for `follow`).
fn print_existing(path: &Path, opts: &ReadOpts, out: &mut Outputs) -> Result<Option<Cursor>> {
    let (files, have_live) = open_all(path)?;
    match opts.tail {
        Some(want) => {
            let mut picked: Vec<Record> = Vec::new();
            if want > 0 {
                'files: for o in files.iter().rev() {
                    let mut lines = RevLines::new(&o.file, o.end);
                    while let Some(line) = lines.prev_line()? {
                        if let Some(rec) = select(&line, opts) {
                            picked.push(rec);
                            if picked.len() >= want {
                                break 'files;
                            }
                        }
                    }
                }
            }
            for rec in picked.iter().rev() {
                out.emit(rec, opts)?;
            }
        }
        None => {
            for o in &files {
                forward(&o.file, 0, o.end, opts, out)?;
            }
        }
    }
    out.flush()?;
    if !have_live {
        return Ok(None);
    }
    Ok(files.into_iter().last().map(|o| Cursor {
        file: o.file,
        id: o.id,
        pos: o.end,
        partial: Vec::new(),
    }))
}

/// Prints the log (`runway container logs` without `-f`): the rotated
/// files oldest first, then the live one. A torn last record is skipped.
pub fn read(
    path: &Path,
    opts: &ReadOpts,
    out_stdout: &mut dyn Write,
    out_stderr: &mut dyn Write,
) -> Result<()> {
    let mut out = Outputs {
        stdout: out_stdout,
        stderr: out_stderr,
    };
    print_existing(path, opts, &mut out).map(|_| ())
}

/// The file that follows the one with `old` id after rotations: if `old`
/// is now `container.log.k`, it is `container.log.{k-1}`. When `old` was
/// already dropped (or unlinked with max-file 1) the live file is the
/// best we can do.
fn next_after(path: &Path, old: (u64, u64)) -> Result<Option<(File, (u64, u64))>> {
    for _attempt in 0..5 {
        let mut found = None;
        for k in 1..100_000u32 {
            match std::fs::metadata(rotated(path, k)) {
                Ok(m) if file_id(&m) == old => {
                    found = Some(k);
                    break;
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        let Some(k) = found else {
            return Ok(open_read(path)?.map(|(f, m)| (f, file_id(&m))));
        };
        let Some((f, m)) = open_read(&rotated(path, k - 1))? else {
            continue;
        };
        // Still where we found it? Otherwise another rotation raced us.
        if std::fs::metadata(rotated(path, k)).is_ok_and(|m| file_id(&m) == old) {
            return Ok(Some((f, file_id(&m))));
        }
    }
    Ok(open_read(path)?.map(|(f, m)| (f, file_id(&m))))
}

/// The live file being followed.
struct Cursor {
    file: File,
    id: (u64, u64),
    pos: u64,
    partial: Vec<u8>,
}

impl Cursor {
    /// Reads what was appended; returns whether anything was.
    fn pump(&mut self, opts: &ReadOpts, out: &mut Outputs) -> Result<bool> {
        let mut buf = vec![0u8; BACK_BLOCK as usize];
        let mut any = false;
        loop {
            let n = self.file.read_at(&mut buf, self.pos).ctx(|| "read log")?;
            if n == 0 {
                break;
            }
            any = true;
            self.pos += n as u64;
            self.partial.extend_from_slice(&buf[..n]);
            let mut start = 0;
            while let Some(i) = memchr::memchr(b'\n', &self.partial[start..]) {
                if let Some(rec) = select(&self.partial[start..start + i], opts) {
                    out.emit(&rec, opts)?;
                }
                start += i + 1;
            }
            self.partial.drain(..start);
        }
        if any {
            out.flush()?;
        }
        Ok(any)
    }
}

/// `logs -f`: prints what is there, then new records as they arrive,
/// across rotations, until no data arrives and `still_running()` says the
/// container (its monitor) is gone, or the clock passes `until`. Polls
/// every 100 ms while idle.
pub fn follow(
    path: &Path,
    opts: &ReadOpts,
    out_stdout: &mut dyn Write,
    out_stderr: &mut dyn Write,
    still_running: &mut dyn FnMut() -> bool,
) -> Result<()> {
    let mut out = Outputs {
        stdout: out_stdout,
        stderr: out_stderr,
    };
    // Every new record counts; --tail applies to the existing ones only.
    let live_opts = ReadOpts {
        tail: None,
        ..opts.clone()
    };
    let mut cur = print_existing(path, opts, &mut out)?;
    let mut stopping = false;
    loop {
        let mut progressed = false;
        if let Some(c) = cur.as_mut() {
            progressed |= c.pump(&live_opts, &mut out)?;
        }
        // Has the path moved on to another file?
        let live_id = std::fs::metadata(path).ok().map(|m| file_id(&m));
        match cur.as_mut() {
            Some(c) if live_id != Some(c.id) && live_id.is_some() => {
                // The writer renames before it creates the next file, so
                // the old one is complete now: finish it, then move on.
                c.pump(&live_opts, &mut out)?;
                if !c.partial.is_empty() {
                    crate::log::debug("log: skipping a torn record at the end of a rotated file");
                }
                if let Some((file, id)) = next_after(path, c.id)? {
                    cur = Some(Cursor {
                        file,
                        id,
                        pos: 0,
                        partial: Vec::new(),
                    });
                }
                progressed = true;
            }
            None if live_id.is_some() => {
                if let Some((file, m)) = open_read(path)? {
                    cur = Some(Cursor {
                        file,
                        id: file_id(&m),
                        pos: 0,
                        partial: Vec::new(),
                    });
                    progressed = true;
                }
            }
            _ => {}
        }
        if progressed {
            continue;
        }
        if stopping {
            return Ok(());
        }
        if opts.until.is_some_and(|u| SystemTime::now() > u) || !still_running() {
            // One more round: the writer may have written (or rotated)
            // between our last read and its exit.
            stopping = true;
            continue;
        }
        std::thread::sleep(FOLLOW_POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let p = std::env::temp_dir().join(format!(
                "runway-logs-{tag}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::SeqCst)
            ));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
        fn log(&self) -> PathBuf {
            self.0.join("container.log")
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn at(secs: u64, nanos: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, nanos)
    }

    const T0: u64 = 1_796_601_599; // 2026-12-06T23:59:59Z

    fn read_all(path: &Path, opts: &ReadOpts) -> (String, String) {
        let (mut o, mut e) = (Vec::new(), Vec::new());
        read(path, opts, &mut o, &mut e).unwrap();
        (String::from_utf8(o).unwrap(), String::from_utf8(e).unwrap())
    }

    fn file_records(path: &Path) -> Vec<Record> {
        let data = std::fs::read(path).unwrap();
        data.split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| parse_line(l).unwrap())
            .collect()
    }

    #[test]
    fn time_constant_is_what_the_tests_say() {
        assert_eq!(crate::timefmt::rfc3339(T0 as i64), "2026-12-06T23:59:59Z");
    }

    #[test]
    fn round_trip_keeps_streams_apart_and_in_order() {
        let d = TempDir::new("rt");
        let mut w = LogWriter::open(&d.log(), LogOpts::default()).unwrap();
        w.write(Stream::Stdout, b"one\n", at(T0, 1)).unwrap();
        w.write(Stream::Stderr, b"oops \"quoted\" \\ \t\n", at(T0, 2))
            .unwrap();
        w.write(Stream::Stdout, b"two\nthree\n", at(T0, 3)).unwrap();
        w.write(Stream::Stdout, "ünïcode \u{1}\n".as_bytes(), at(T0, 4))
            .unwrap();
        w.close(at(T0, 5)).unwrap();

        let recs = file_records(&d.log());
        let order: Vec<(Stream, &str)> = recs.iter().map(|r| (r.stream, r.log.as_str())).collect();
        assert_eq!(
            order,
            vec![
                (Stream::Stdout, "one\n"),
                (Stream::Stderr, "oops \"quoted\" \\ \t\n"),
                (Stream::Stdout, "two\n"),
                (Stream::Stdout, "three\n"),
                (Stream::Stdout, "ünïcode \u{1}\n"),
            ]
        );
        // docker's field order and time format (RFC3339Nano, zeros trimmed).
        let first = std::fs::read_to_string(d.log()).unwrap();
        let first = first.lines().next().unwrap();
        assert_eq!(
            first,
            r#"{"log":"one\n","stream":"stdout","time":"2026-12-06T23:59:59.000000001Z"}"#
        );

        let (o, e) = read_all(&d.log(), &ReadOpts::default());
        assert_eq!(o, "one\ntwo\nthree\nünïcode \u{1}\n");
        assert_eq!(e, "oops \"quoted\" \\ \t\n");
        let only_err = ReadOpts {
            stdout: false,
            ..ReadOpts::default()
        };
        let (o, e) = read_all(&d.log(), &only_err);
        assert_eq!(o, "");
        assert_eq!(e, "oops \"quoted\" \\ \t\n");
    }

    #[test]
    fn partial_lines_wait_and_long_lines_split_at_16k() {
        let d = TempDir::new("partial");
        let mut w = LogWriter::open(&d.log(), LogOpts::default()).unwrap();
        w.write(Stream::Stdout, b"hel", at(T0, 0)).unwrap();
        w.write(Stream::Stderr, b"err-a", at(T0, 0)).unwrap();
        assert!(
            file_records(&d.log()).is_empty(),
            "no record before a newline"
        );
        w.write(Stream::Stdout, b"lo\nwor", at(T0, 0)).unwrap();
        let long = vec![b'x'; 2 * MAX_LINE + 100];
        w.write(Stream::Stderr, &long, at(T0, 0)).unwrap();
        w.write(Stream::Stderr, b"\n", at(T0, 0)).unwrap();
        w.close(at(T0, 0)).unwrap();

        let recs = file_records(&d.log());
        let lens: Vec<(Stream, usize, bool)> = recs
            .iter()
            .map(|r| (r.stream, r.log.len(), r.log.ends_with('\n')))
            .collect();
        assert_eq!(
            lens,
            vec![
                (Stream::Stdout, 6, true),
                (Stream::Stderr, MAX_LINE, false),
                (Stream::Stderr, MAX_LINE, false),
                (Stream::Stderr, 5 + 100 + 1, true),
                (Stream::Stdout, 3, false), // "wor", written by close
            ]
        );
        let (o, e) = read_all(&d.log(), &ReadOpts::default());
        assert_eq!(o, "hello\nwor");
        let mut want = b"err-a".to_vec();
        want.extend_from_slice(&long);
        want.push(b'\n');
        assert_eq!(e.as_bytes(), &want[..]);
    }

    #[test]
    fn long_lines_are_not_split_inside_a_character() {
        let d = TempDir::new("utf8");
        let mut w = LogWriter::open(&d.log(), LogOpts::default()).unwrap();
        // "a" then 2-byte characters: byte 16384 falls inside one.
        let line = format!("a{}\n", "é".repeat(MAX_LINE));
        w.write(Stream::Stdout, line.as_bytes(), at(T0, 0)).unwrap();
        // Not UTF-8 at all: cut at exactly 16 KiB.
        w.write(Stream::Stderr, &vec![0xFFu8; MAX_LINE + 5], at(T0, 0))
            .unwrap();
        w.close(at(T0, 0)).unwrap();
        let recs = file_records(&d.log());
        assert_eq!(recs[0].log.len(), MAX_LINE - 1);
        assert!(!recs[0].log.contains('\u{FFFD}'));
        let err: Vec<&Record> = recs.iter().filter(|r| r.stream == Stream::Stderr).collect();
        assert_eq!(err.len(), 2);
        assert_eq!(err[0].log.chars().count(), MAX_LINE);
        assert_eq!(
            recs.iter()
                .filter(|r| r.stream == Stream::Stdout)
                .map(|r| r.log.as_str())
                .collect::<String>(),
            line
        );
        assert_eq!(utf8_cut(b"abc"), 3);
        assert_eq!(utf8_cut("ab\u{20AC}".as_bytes()), 5);
        assert_eq!(utf8_cut(&"ab\u{20AC}".as_bytes()[..4]), 2);
        assert_eq!(utf8_cut(&[0x80; 8]), 8);
        assert_eq!(utf8_cut(&[0xF0]), 1);
    }

    fn write_numbered(w: &mut LogWriter, from: u64, to: u64) {
        for i in from..to {
            let s = if i % 2 == 0 {
                Stream::Stdout
            } else {
                Stream::Stderr
            };
            w.write(s, format!("line {i:05}\n").as_bytes(), at(T0 + i, 0))
                .unwrap();
        }
    }

    fn numbers(s: &str) -> Vec<u64> {
        s.lines()
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
            .collect()
    }

    #[test]
    fn rotates_by_size_keeping_max_file() {
        let d = TempDir::new("rot");
        let opts = parse_log_opts(&["max-size=1k", "max-file=3"]).unwrap();
        assert_eq!(
            opts,
            LogOpts {
                max_size: Some(1024),
                max_file: 3
            }
        );
        let mut w = LogWriter::open(&d.log(), opts).unwrap();
        write_numbered(&mut w, 0, 200);
        w.close(at(T0, 0)).unwrap();
        for n in 0..3 {
            let p = rotated(&d.log(), n);
            let len = std::fs::metadata(&p).unwrap().len();
            assert!(len <= 1024 && len > 0, "{} is {len} bytes", p.display());
        }
        assert!(!rotated(&d.log(), 3).exists(), "the oldest is dropped");
        // Each file holds consecutive records; .2 < .1 < live.
        let mut all = Vec::new();
        for n in (0..3).rev() {
            all.extend(file_records(&rotated(&d.log(), n)));
        }
        let nums: Vec<u64> = all
            .iter()
            .map(|r| r.log.trim().rsplit(' ').next().unwrap().parse().unwrap())
            .collect();
        assert_eq!(*nums.last().unwrap(), 199);
        assert!(nums[0] > 0, "the first records were dropped");
        assert!(nums.windows(2).all(|p| p[1] == p[0] + 1));

        // Reading goes across the three files in order.
        let only_out = ReadOpts {
            stderr: false,
            ..ReadOpts::default()
        };
        let (o, _) = read_all(&d.log(), &only_out);
        let got = numbers(&o);
        let want: Vec<u64> = nums.iter().copied().filter(|n| n % 2 == 0).collect();
        assert_eq!(got, want);

        // --tail spanning more than one file (each holds 13 records).
        let tail = ReadOpts {
            tail: Some(30),
            ..ReadOpts::default()
        };
        let (o, e) = read_all(&d.log(), &tail);
        let mut got = numbers(&o);
        got.extend(numbers(&e));
        got.sort();
        assert_eq!(got, (170..200).collect::<Vec<u64>>());
        let tail_out = ReadOpts {
            tail: Some(3),
            stderr: false,
            ..ReadOpts::default()
        };
        assert_eq!(
            numbers(&read_all(&d.log(), &tail_out).0),
            vec![194, 196, 198]
        );
        let tail0 = ReadOpts {
            tail: Some(0),
            ..ReadOpts::default()
        };
        assert_eq!(read_all(&d.log(), &tail0), (String::new(), String::new()));
    }

    #[test]
    fn max_file_one_starts_a_new_file() {
        let d = TempDir::new("rot1");
        let opts = LogOpts {
            max_size: Some(300),
            max_file: 1,
        };
        let mut w = LogWriter::open(&d.log(), opts).unwrap();
        write_numbered(&mut w, 0, 50);
        w.close(at(T0, 0)).unwrap();
        assert!(!rotated(&d.log(), 1).exists());
        let (o, e) = read_all(&d.log(), &ReadOpts::default());
        let mut got = numbers(&o);
        got.extend(numbers(&e));
        got.sort();
        assert_eq!(*got.last().unwrap(), 49);
        assert!(got.len() < 50 && !got.is_empty());
    }

    #[test]
    fn tail_reads_backwards_over_large_files() {
        let d = TempDir::new("bigtail");
        let mut w = LogWriter::open(&d.log(), LogOpts::default()).unwrap();
        // Lines longer than the backwards block and many short ones.
        let big = vec![b'y'; 100_000];
        w.write(Stream::Stdout, &big, at(T0, 0)).unwrap();
        w.write(Stream::Stdout, b"\n", at(T0, 0)).unwrap();
        write_numbered(&mut w, 0, 5000);
        w.close(at(T0, 0)).unwrap();
        let tail = ReadOpts {
            tail: Some(4),
            ..ReadOpts::default()
        };
        let (o, e) = read_all(&d.log(), &tail);
        assert_eq!(numbers(&o), vec![4996, 4998]);
        assert_eq!(numbers(&e), vec![4997, 4999]);
        // Reaching back into the long line: its last two 16 KiB parts and
        // its end, then the 2500 stdout lines.
        let tail = ReadOpts {
            tail: Some(2503),
            stderr: false,
            ..ReadOpts::default()
        };
        let (o, _) = read_all(&d.log(), &tail);
        let ys = 100_000 - 4 * MAX_LINE;
        assert!(o.starts_with(&format!("{}\nline 00000\n", "y".repeat(ys))));
        assert_eq!(o.len(), ys + 1 + 2500 * 11);
    }

    #[test]
    fn since_and_until_filter_by_record_time() {
        let d = TempDir::new("since");
        let mut w = LogWriter::open(&d.log(), LogOpts::default()).unwrap();
        write_numbered(&mut w, 0, 10);
        w.close(at(T0, 0)).unwrap();
        let opts = ReadOpts {
            since: Some(at(T0 + 5, 0)),
            until: Some(at(T0 + 7, 0)),
            ..ReadOpts::default()
        };
        let (o, e) = read_all(&d.log(), &opts);
        let mut got = numbers(&o);
        got.extend(numbers(&e));
        got.sort();
        assert_eq!(got, vec![5, 6, 7]);
        // The same through the argument parser, absolute and relative.
        let now = at(T0 + 10, 0);
        let since = parse_time_arg("2026-12-07T00:00:07Z", now).unwrap();
        assert_eq!(since, at(T0 + 8, 0));
        assert_eq!(parse_time_arg("3s", now).unwrap(), at(T0 + 7, 0));
        let opts = ReadOpts {
            since: Some(parse_time_arg("3s", now).unwrap()),
            tail: Some(2),
            ..ReadOpts::default()
        };
        let (o, e) = read_all(&d.log(), &opts);
        let mut got = numbers(&o);
        got.extend(numbers(&e));
        got.sort();
        assert_eq!(got, vec![8, 9]);
    }

    #[test]
    fn timestamps_are_prefixed_with_nine_digits() {
        let d = TempDir::new("ts");
        let mut w = LogWriter::open(&d.log(), LogOpts::default()).unwrap();
        w.write(Stream::Stdout, b"hi\n", at(T0, 123_456_789))
            .unwrap();
        w.write(Stream::Stderr, b"err\n", at(T0, 120_000_000))
            .unwrap();
        w.write(Stream::Stdout, b"zero\n", at(T0 + 1, 0)).unwrap();
        w.close(at(T0, 0)).unwrap();
        let raw = std::fs::read_to_string(d.log()).unwrap();
        assert!(raw.contains(r#""time":"2026-12-06T23:59:59.123456789Z""#));
        assert!(raw.contains(r#""time":"2026-12-06T23:59:59.12Z""#));
        assert!(raw.contains(r#""time":"2026-12-07T00:00:00Z""#));
        let opts = ReadOpts {
            timestamps: true,
            ..ReadOpts::default()
        };
        let (o, e) = read_all(&d.log(), &opts);
        assert_eq!(
            o,
            "2026-12-06T23:59:59.123456789Z hi\n2026-12-07T00:00:00.000000000Z zero\n"
        );
        assert_eq!(e, "2026-12-06T23:59:59.120000000Z err\n");
    }

    #[test]
    fn torn_and_corrupt_lines_are_skipped() {
        let d = TempDir::new("torn");
        let good = |s: &str| {
            format!(
                "{{\"log\":\"{s}\\n\",\"stream\":\"stdout\",\"time\":\"2026-12-06T23:59:59Z\"}}\n"
            )
        };
        let mut data = String::new();
        data += &good("a");
        data += "not json at all\n";
        data += "{\"log\":\"x\\n\",\"stream\":\"stdin\",\"time\":\"2026-12-06T23:59:59Z\"}\n";
        data += "{\"log\":\"x\\n\",\"stream\":\"stdout\",\"time\":\"yesterday\"}\n";
        data += "{\"log\":7,\"stream\":\"stdout\",\"time\":\"2026-12-06T23:59:59Z\"}\n";
        data += "\n";
        let mut bytes = data.into_bytes();
        bytes.extend_from_slice(b"\xff\xfe\x00garbage\n");
        bytes.extend_from_slice(good("b").as_bytes());
        bytes.extend_from_slice(b"{\"log\":\"torn"); // writer killed mid-record
        std::fs::write(d.log(), &bytes).unwrap();
        assert_eq!(read_all(&d.log(), &ReadOpts::default()).0, "a\nb\n");
        let tail = ReadOpts {
            tail: Some(1),
            ..ReadOpts::default()
        };
        assert_eq!(read_all(&d.log(), &tail).0, "b\n");

        // A new monitor appending to the torn file keeps its records whole.
        let mut w = LogWriter::open(&d.log(), LogOpts::default()).unwrap();
        w.write(Stream::Stdout, b"c\n", at(T0, 0)).unwrap();
        w.close(at(T0, 0)).unwrap();
        assert_eq!(read_all(&d.log(), &ReadOpts::default()).0, "a\nb\nc\n");
        assert_eq!(read_all(&d.log(), &tail).0, "c\n");

        // No log at all: nothing, no error.
        let none = d.0.join("missing.log");
        assert_eq!(read_all(&none, &ReadOpts::default()).0, "");
    }

    #[test]
    fn follow_sees_every_record_once_across_rotations() {
        let d = TempDir::new("follow");
        let path = d.log();
        let opts = LogOpts {
            max_size: Some(16 * 1024),
            max_file: 3,
        };
        let mut w = LogWriter::open(&path, opts).unwrap();
        write_numbered(&mut w, 0, 100);
        let done = Arc::new(AtomicBool::new(false));
        const N: u64 = 1500;
        let writer = {
            let done = done.clone();
            std::thread::spawn(move || {
                for i in 100..N {
                    write_numbered(&mut w, i, i + 1);
                    std::thread::sleep(Duration::from_millis(1));
                }
                w.close(at(T0, 0)).unwrap();
                done.store(true, Ordering::SeqCst);
            })
        };
        let (mut o, mut e) = (Vec::new(), Vec::new());
        let mut checks = 0;
        follow(&path, &ReadOpts::default(), &mut o, &mut e, &mut || {
            checks += 1;
            !done.load(Ordering::SeqCst)
        })
        .unwrap();
        writer.join().unwrap();
        assert!(checks > 0);
        assert!(rotated(&path, 2).exists(), "the writer rotated");
        let got_o = numbers(&String::from_utf8(o).unwrap());
        let got_e = numbers(&String::from_utf8(e).unwrap());
        let want_o: Vec<u64> = (0..N).filter(|n| n % 2 == 0).collect();
        let want_e: Vec<u64> = (0..N).filter(|n| n % 2 == 1).collect();
        assert_eq!(got_o, want_o);
        assert_eq!(got_e, want_e);
    }

    #[test]
    fn follow_with_tail_then_new_records_and_stops_when_told() {
        let d = TempDir::new("follow-tail");
        let path = d.log();
        let mut w = LogWriter::open(&path, LogOpts::default()).unwrap();
        write_numbered(&mut w, 0, 10);
        // An unfinished record at the end must not be printed twice or lost.
        let (mut o, mut e) = (Vec::new(), Vec::new());
        let mut calls = 0;
        let opts = ReadOpts {
            tail: Some(2),
            stderr: false,
            ..ReadOpts::default()
        };
        follow(&path, &opts, &mut o, &mut e, &mut || {
            calls += 1;
            if calls == 1 {
                write_numbered(&mut w, 10, 14);
                true
            } else {
                false
            }
        })
        .unwrap();
        assert_eq!(numbers(&String::from_utf8(o).unwrap()), vec![6, 8, 10, 12]);
        assert!(e.is_empty());

        // Following a log that does not exist yet ends when told.
        let none = d.0.join("none.log");
        let (mut o, mut e) = (Vec::new(), Vec::new());
        follow(&none, &ReadOpts::default(), &mut o, &mut e, &mut || false).unwrap();
        assert!(o.is_empty());
    }

    /// Between two of the reader's polls the writer rotates several times
    /// (driven from the idle callback, so it is deterministic): the reader
    /// must finish its old file and walk .2 -> .1 -> live, missing nothing.
    #[test]
    fn follow_walks_through_several_rotations_between_polls() {
        let d = TempDir::new("follow-chain");
        let path = d.log();
        let opts = LogOpts {
            max_size: Some(1024),
            max_file: 5,
        };
        let mut w = LogWriter::open(&path, opts).unwrap();
        write_numbered(&mut w, 0, 5);
        let (mut o, mut e) = (Vec::new(), Vec::new());
        let mut calls = 0;
        let mut next = 5;
        follow(&path, &ReadOpts::default(), &mut o, &mut e, &mut || {
            calls += 1;
            if calls <= 3 {
                // ~40 records: three rotations at 13 records a file.
                write_numbered(&mut w, next, next + 40);
                next += 40;
                assert!(rotated(&path, 3).exists());
                true
            } else {
                false
            }
        })
        .unwrap();
        let mut got = numbers(&String::from_utf8(o).unwrap());
        got.extend(numbers(&String::from_utf8(e).unwrap()));
        got.sort();
        assert_eq!(got, (0..125).collect::<Vec<u64>>());
    }

    /// With max-file 1 the live file is unlinked and recreated: a reader
    /// on the old one finishes it and moves to the new one.
    #[test]
    fn follow_survives_unlink_rotation_with_max_file_one() {
        let d = TempDir::new("follow-unlink");
        let path = d.log();
        let opts = LogOpts {
            max_size: Some(1024),
            max_file: 1,
        };
        let mut w = LogWriter::open(&path, opts).unwrap();
        write_numbered(&mut w, 0, 5);
        let (mut o, mut e) = (Vec::new(), Vec::new());
        let mut calls = 0;
        follow(&path, &ReadOpts::default(), &mut o, &mut e, &mut || {
            calls += 1;
            match calls {
                // 5 + 7 = 12 records still fit; the 14th starts a new file.
                1 => write_numbered(&mut w, 5, 12),
                2 => write_numbered(&mut w, 12, 20),
                _ => return false,
            }
            true
        })
        .unwrap();
        let mut got = numbers(&String::from_utf8(o).unwrap());
        got.extend(numbers(&String::from_utf8(e).unwrap()));
        got.sort();
        assert_eq!(got, (0..20).collect::<Vec<u64>>());
        assert!(!rotated(&path, 1).exists());
    }

    #[test]
    fn log_opts_parse_like_docker() {
        assert_eq!(parse_size("10m").unwrap(), 10 << 20);
        assert_eq!(parse_size("10MB").unwrap(), 10 << 20);
        assert_eq!(parse_size("512k").unwrap(), 512 << 10);
        assert_eq!(parse_size("2g").unwrap(), 2 << 30);
        assert_eq!(parse_size("1.5k").unwrap(), 1536);
        assert_eq!(parse_size("100").unwrap(), 100);
        for bad in ["", "m", "-1m", "10x", "1e9", "k10", "99999999999999999999g"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_log_opts::<&str>(&[]).unwrap(),
            LogOpts {
                max_size: None,
                max_file: 1
            }
        );
        assert_eq!(parse_log_opts(&["max-size=10m"]).unwrap().max_file, 1);
        assert!(parse_log_opts(&["max-file=3"]).is_err());
        assert!(parse_log_opts(&["max-size=1m", "max-file=0"]).is_err());
        assert!(parse_log_opts(&["max-size=0"]).is_err());
        assert!(parse_log_opts(&["mode=non-blocking"]).is_err());
        assert!(parse_log_opts(&["max-size"]).is_err());
    }

    #[test]
    fn time_arguments_parse_like_docker() {
        let now = at(T0, 0);
        assert_eq!(parse_duration("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("300ms"), Some(Duration::from_millis(300)));
        assert_eq!(parse_duration("2µs"), Some(Duration::from_micros(2)));
        for bad in ["", "10", "m", "1x", "1..5s", ".s", "-1s"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
        assert_eq!(parse_time_arg("2h", now).unwrap(), at(T0 - 7200, 0));
        assert_eq!(parse_time_arg("0", now).unwrap(), UNIX_EPOCH);
        assert_eq!(
            parse_time_arg("1700000000.25", now).unwrap(),
            at(1_700_000_000, 250_000_000)
        );
        let base = at(T0, 0);
        assert_eq!(parse_time_arg("2026-12-06T23:59:59Z", now).unwrap(), base);
        assert_eq!(
            parse_time_arg("2026-12-07T01:59:59+02:00", now).unwrap(),
            base
        );
        assert_eq!(
            parse_time_arg("2026-12-06T23:59:59.5", now).unwrap(),
            at(T0, 500_000_000)
        );
        assert_eq!(
            parse_time_arg("2026-12-06T23:59", now).unwrap(),
            at(T0 - 59, 0)
        );
        assert_eq!(
            parse_time_arg("2026-12-06", now).unwrap(),
            at(T0 - 86_399, 0)
        );
        for bad in [
            "yesterday",
            "2026-13-01",
            "2026-02-30",
            "2026-12-06T25:00",
            "2026-12-06Tx",
        ] {
            assert!(parse_time_arg(bad, now).is_err(), "{bad}");
        }
    }

    #[test]
    fn tail_values_parse_like_docker() {
        assert_eq!(parse_tail("all").unwrap(), None);
        assert_eq!(parse_tail("-1").unwrap(), None);
        assert_eq!(parse_tail("0").unwrap(), Some(0));
        assert_eq!(parse_tail("25").unwrap(), Some(25));
        for bad in ["", "-", "ten", "1.5", "--1"] {
            assert!(parse_tail(bad).is_err(), "{bad}");
        }
    }

    /// xorshift: deterministic noise without a crate.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn fuzz_parsers_and_reader_never_panic() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let good = br#"{"log":"ok\n","stream":"stdout","time":"2026-12-06T23:59:59.1Z"}"#;
        for round in 0..20_000u32 {
            let len = (rng.next() % 120) as usize;
            let mut buf: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if round.is_multiple_of(2) {
                // Mutate a valid record: more interesting than pure noise.
                buf = good.to_vec();
                for _ in 0..(rng.next() % 4 + 1) {
                    let i = (rng.next() as usize) % buf.len();
                    match rng.next() % 3 {
                        0 => buf[i] = rng.next() as u8,
                        1 => {
                            buf.remove(i);
                        }
                        _ => buf.insert(i, rng.next() as u8),
                    }
                }
            }
            let _ = parse_line(&buf);
            let s = String::from_utf8_lossy(&buf);
            let _ = parse_rfc3339(&s);
            let _ = parse_duration(&s);
            let _ = parse_time_arg(&s, SystemTime::now());
            let _ = parse_size(&s);
        }
        // A whole file of noise and records, read forwards and backwards.
        let d = TempDir::new("fuzz");
        let mut data = Vec::new();
        let mut n_good = 0;
        for _ in 0..3000 {
            if rng.next().is_multiple_of(3) {
                data.extend_from_slice(good);
                data.push(b'\n');
                n_good += 1;
            } else {
                let len = (rng.next() % 200) as usize;
                data.extend((0..len).map(|_| {
                    let b = rng.next() as u8;
                    if b == b'{' {
                        b'['
                    } else {
                        b
                    }
                }));
                data.push(b'\n');
            }
        }
        std::fs::write(d.log(), &data).unwrap();
        let (o, _) = read_all(&d.log(), &ReadOpts::default());
        assert_eq!(o.matches("ok\n").count(), n_good);
        let tail = ReadOpts {
            tail: Some(10),
            timestamps: true,
            since: Some(UNIX_EPOCH),
            ..ReadOpts::default()
        };
        let (o, _) = read_all(&d.log(), &tail);
        assert_eq!(o.matches("ok\n").count(), 10.min(n_good));
    }
}
