//! The HTTP/1.1 wire format, without I/O of its own (only `Read`/`Write`
//! traits): request and response heads, body framing (Content-Length,
//! chunked, read-to-close) and connection reuse rules. Every malformed or
//! oversized input is an error, never a panic: the registry server and the
//! reverse proxy will parse untrusted peers with it (fuzz/fuzz_targets/http.rs).

use crate::error::{Error, Result};
use std::io::{self, BufRead, Read, Write};

/// A head (start line and headers) may be at most this long.
pub const MAX_HEAD: usize = 64 << 10;
/// At most this many header (or trailer) fields.
pub const MAX_HEADERS: usize = 100;
/// A chunk-size line (with its extensions) may be at most this long.
const MAX_CHUNK_LINE: usize = 4096;

/// Header fields in arrival order; names compare case-insensitively.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    pub fn new() -> Headers {
        Headers(Vec::new())
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order (e.g. several WWW-Authenticate).
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn push(&mut self, name: &str, value: &str) {
        self.0.push((name.to_string(), value.to_string()));
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a comma-separated list header (Connection,
    /// Transfer-Encoding) has `token` in any of its values.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.get_all(name)
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }
}

/// A parsed status line and headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    pub status: u16,
    pub reason: String,
    pub headers: Headers,
}

/// A parsed request line and headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead {
    pub method: String,
    /// As sent: origin-form (`/v2/`), absolute-form, authority-form
    /// (CONNECT) or `*`.
    pub target: String,
    pub minor: u8,
    pub headers: Headers,
}

/// How a message's body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body (HEAD answers, 1xx/204/304, requests without a length).
    Empty,
    Length(u64),
    Chunked,
    /// Until the peer closes (a response without a length).
    Close,
}

fn bad(what: impl Into<String>) -> Error {
    Error::msg(what.into())
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && s.iter().all(|&b| is_tchar(b))
}

/// Read one head (up to and including the empty line) from `r`, leaving
/// whatever follows (the body) in the reader. Leading empty lines are
/// skipped (RFC 9112 §2.2). A peer that closes before sending anything
/// gives `UnexpectedEof` (a stale keep-alive connection).
pub fn read_head<R: BufRead + ?Sized>(r: &mut R) -> io::Result<Vec<u8>> {
    let mut head = Vec::new();
    let mut skipped = 0;
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            let msg = if head.is_empty() {
                "connection closed"
            } else {
                "connection closed in the middle of a head"
            };
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, msg));
        }
        let mut used = 0;
        let mut end = false;
        for &b in buf {
            used += 1;
            if head.is_empty() && (b == b'\r' || b == b'\n') {
                skipped += 1;
                if skipped > MAX_HEAD {
                    break;
                }
                continue;
            }
            head.push(b);
            if b == b'\n' && (head.ends_with(b"\n\r\n") || head.ends_with(b"\n\n")) {
                end = true;
                break;
            }
            if head.len() > MAX_HEAD {
                break;
            }
        }
        r.consume(used);
        if end {
            return Ok(head);
        }
        if head.len() > MAX_HEAD || skipped > MAX_HEAD {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("head longer than {MAX_HEAD} bytes"),
            ));
        }
    }
}

/// The head's lines without their CR LF (the final empty line dropped).
fn lines(head: &[u8]) -> Result<Vec<&[u8]>> {
    if head.len() > MAX_HEAD {
        return Err(bad(format!("head longer than {MAX_HEAD} bytes")));
    }
    let mut out = Vec::new();
    for line in head.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            break;
        }
        if line.contains(&b'\r') || line.contains(&0) {
            return Err(bad("stray CR or NUL in a head"));
        }
        out.push(line);
    }
    if out.is_empty() {
        return Err(bad("empty head"));
    }
    Ok(out)
}

/// Header lines `name: value`; no whitespace before the colon, no obsolete
/// line folding (both are request smuggling vectors, RFC 9112 §5).
fn parse_fields(lines: &[&[u8]]) -> Result<Headers> {
    if lines.len() > MAX_HEADERS {
        return Err(bad(format!("more than {MAX_HEADERS} header fields")));
    }
    let mut h = Headers::new();
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(bad("header line without a colon"));
        };
        let name = &line[..colon];
        if !is_token(name) {
            return Err(bad(format!(
                "invalid header name {:?}",
                String::from_utf8_lossy(name)
            )));
        }
        let value = &line[colon + 1..];
        let value = value.trim_ascii();
        if value.iter().any(|&b| b < 0x20 && b != b'\t' || b == 0x7f) {
            return Err(bad("control character in a header value"));
        }
        h.0.push((
            String::from_utf8_lossy(name).into_owned(),
            String::from_utf8_lossy(value).into_owned(),
        ));
    }
    Ok(h)
}

/// `HTTP/1.0` or `HTTP/1.1` -> the minor version.
fn version(v: &[u8]) -> Result<u8> {
    match v {
        b"HTTP/1.1" => Ok(1),
        b"HTTP/1.0" => Ok(0),
        _ => Err(bad(format!(
            "unsupported HTTP version {:?}",
            String::from_utf8_lossy(v)
        ))),
    }
}

/// Parse a response head as [`read_head`] returns it.
pub fn parse_response_head(head: &[u8]) -> Result<ResponseHead> {
    let lines = lines(head)?;
    let first = lines[0];
    let mut parts = first.splitn(3, |&b| b == b' ');
    let minor = version(parts.next().unwrap_or_default())?;
    let code = parts.next().unwrap_or_default();
    if code.len() != 3 || !code.iter().all(u8::is_ascii_digit) || code[0] == b'0' {
        return Err(bad(format!(
            "invalid status line {:?}",
            String::from_utf8_lossy(first)
        )));
    }
    let status = code.iter().fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
    let reason = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    Ok(ResponseHead {
        minor,
        status,
        reason,
        headers: parse_fields(&lines[1..])?,
    })
}

/// Parse a request head as [`read_head`] returns it.
pub fn parse_request_head(head: &[u8]) -> Result<RequestHead> {
    let lines = lines(head)?;
    let first = lines[0];
    let parts: Vec<&[u8]> = first.split(|&b| b == b' ').collect();
    let [method, target, v] = parts[..] else {
        return Err(bad(format!(
            "invalid request line {:?}",
            String::from_utf8_lossy(first)
        )));
    };
    if !is_token(method) {
        return Err(bad("invalid request method"));
    }
    if target.is_empty() || target.iter().any(|&b| b <= 0x20 || b == 0x7f) {
        return Err(bad("invalid request target"));
    }
    Ok(RequestHead {
        method: String::from_utf8_lossy(method).into_owned(),
        target: String::from_utf8_lossy(target).into_owned(),
        minor: version(v)?,
        headers: parse_fields(&lines[1..])?,
    })
}

/// Content-Length: every value (and every comma-separated element) must be
/// the same decimal number; anything else is a framing error.
fn content_length(h: &Headers) -> Result<Option<u64>> {
    let mut len: Option<u64> = None;
    for v in h.get_all("content-length").flat_map(|v| v.split(',')) {
        let v = v.trim();
        if v.is_empty() || v.len() > 19 || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(format!("invalid Content-Length {v:?}")));
        }
        let n: u64 = v
            .parse()
            .map_err(|_| bad(format!("invalid Content-Length {v:?}")))?;
        if len.is_some_and(|l| l != n) {
            return Err(bad("conflicting Content-Length values"));
        }
        len = Some(n);
    }
    Ok(len)
}

/// Whether the last transfer coding is chunked (None: no Transfer-Encoding).
fn chunked(h: &Headers) -> Option<bool> {
    let last = h
        .get_all("transfer-encoding")
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .last()?;
    Some(last.eq_ignore_ascii_case("chunked"))
}

/// How the body of a response to `method` is framed (RFC 9112 §6.3).
pub fn response_framing(method: &str, status: u16, h: &Headers) -> Result<Framing> {
    if method.eq_ignore_ascii_case("HEAD")
        || (100..200).contains(&status)
        || status == 204
        || status == 304
        || (method.eq_ignore_ascii_case("CONNECT") && (200..300).contains(&status))
    {
        return Ok(Framing::Empty);
    }
    match chunked(h) {
        Some(true) => return Ok(Framing::Chunked),
        // Another coding last: the body runs to the close.
        Some(false) => return Ok(Framing::Close),
        None => {}
    }
    Ok(match content_length(h)? {
        Some(n) => Framing::Length(n),
        None => Framing::Close,
    })
}

/// How a request's body is framed: a request cannot run to the close, and
/// a coding other than chunked last cannot be delimited (a 400).
pub fn request_framing(h: &Headers) -> Result<Framing> {
    match chunked(h) {
        Some(true) if h.get("content-length").is_none() => Ok(Framing::Chunked),
        Some(true) => Err(bad("both Transfer-Encoding and Content-Length")),
        Some(false) => Err(bad("request body with an unknown transfer coding")),
        None => Ok(match content_length(h)? {
            Some(n) => Framing::Length(n),
            None => Framing::Empty,
        }),
    }
}

/// Whether the connection may carry another message after this one.
pub fn keep_alive(minor: u8, h: &Headers) -> bool {
    if h.has_token("connection", "close") {
        return false;
    }
    minor >= 1 || h.has_token("connection", "keep-alive")
}

/// Write a request head. Names must be tokens and values must not contain
/// CR, LF or NUL (no header injection through a URL or a token).
pub fn write_request_head<W: Write + ?Sized>(
    w: &mut W,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> io::Result<()> {
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidInput, what.to_string());
    if !is_token(method.as_bytes()) {
        return Err(invalid("invalid request method"));
    }
    if target.is_empty() || target.bytes().any(|b| b <= 0x20 || b == 0x7f) {
        return Err(invalid("invalid request target"));
    }
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(method.as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (n, v) in headers {
        if !is_token(n.as_bytes()) || v.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(invalid("invalid header field"));
        }
        out.extend_from_slice(n.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    w.write_all(&out)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Length(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkEnd,
    Trailers,
    Close,
    Done,
}

/// A body as a `Read`: stops at its end (never reads into the next
/// message), fails on a truncated body instead of returning a short one.
pub struct Body<R> {
    inner: R,
    state: State,
}

fn invalid_data(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

fn truncated() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "connection closed before the end of the body",
    )
}

/// One line without its CR LF, at most `limit` bytes.
fn read_line<R: BufRead>(r: &mut R, limit: usize) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Err(truncated());
        }
        let (take, end) = match memchr::memchr(b'\n', buf) {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        line.extend_from_slice(&buf[..take]);
        r.consume(take);
        if line.len() > limit + 2 {
            return Err(invalid_data("chunked framing line too long"));
        }
        if end {
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            return Ok(line);
        }
    }
}

/// `1a;ext=v` -> 26. Hex digits only (no sign, no `0x`), at most 15 of
/// them (sizes beyond 2^60 are refused rather than overflowed).
pub fn parse_chunk_size(line: &[u8]) -> io::Result<u64> {
    let digits = line
        .iter()
        .position(|b| !b.is_ascii_hexdigit())
        .unwrap_or(line.len());
    if digits == 0 || digits > 15 {
        return Err(invalid_data("invalid chunk size"));
    }
    let rest = line[digits..].trim_ascii_start();
    if !rest.is_empty() && rest[0] != b';' {
        return Err(invalid_data("invalid chunk size"));
    }
    let mut n = 0u64;
    for &b in &line[..digits] {
        let d = (b as char).to_digit(16).unwrap_or(0);
        n = (n << 4) | u64::from(d);
    }
    Ok(n)
}

impl<R: BufRead> Body<R> {
    pub fn new(inner: R, framing: Framing) -> Body<R> {
        let state = match framing {
            Framing::Empty | Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::ChunkSize,
            Framing::Close => State::Close,
        };
        Body { inner, state }
    }

    /// The whole body has been read (the connection is at the next message).
    pub fn done(&self) -> bool {
        self.state == State::Done
    }

    /// The connection back, e.g. to reuse it once [`Body::done`].
    pub fn into_inner(self) -> R {
        self.inner
    }

    /// Consume the trailer section (fields are not kept).
    fn trailers(&mut self) -> io::Result<()> {
        let mut total = 0;
        for _ in 0..=MAX_HEADERS {
            let line = read_line(&mut self.inner, MAX_HEAD)?;
            if line.is_empty() {
                self.state = State::Done;
                return Ok(());
            }
            total += line.len();
            if total > MAX_HEAD || !line.contains(&b':') {
                return Err(invalid_data("invalid chunked trailer"));
            }
        }
        Err(invalid_data("too many chunked trailer fields"))
    }
}

/// Reads at most `left` bytes of a counted body (Content-Length or one
/// chunk) into `buf`: (bytes read, bytes still due). The peer closing
/// before the count is a truncated body.
fn read_counted<R: Read>(inner: &mut R, buf: &mut [u8], left: u64) -> io::Result<(usize, u64)> {
    let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
    let n = inner.read(&mut buf[..want])?;
    if n == 0 {
        return Err(truncated());
    }
    Ok((n, left - n as u64))
}

impl<R: BufRead> Read for Body<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            match self.state {
                State::Done => return Ok(0),
                State::Close => return self.inner.read(buf),
                State::Length(left) => {
                    let (n, left) = read_counted(&mut self.inner, buf, left)?;
                    self.state = if left == 0 {
                        State::Done
                    } else {
                        State::Length(left)
                    };
                    return Ok(n);
                }
                State::ChunkSize => {
                    let line = read_line(&mut self.inner, MAX_CHUNK_LINE)?;
                    self.state = match parse_chunk_size(&line)? {
                        0 => State::Trailers,
                        n => State::ChunkData(n),
                    };
                }
                State::ChunkData(left) => {
                    let (n, left) = read_counted(&mut self.inner, buf, left)?;
                    self.state = if left == 0 {
                        State::ChunkEnd
                    } else {
                        State::ChunkData(left)
                    };
                    return Ok(n);
                }
                State::ChunkEnd => {
                    if !read_line(&mut self.inner, 0)?.is_empty() {
                        return Err(invalid_data("chunk data longer than its size"));
                    }
                    self.state = State::ChunkSize;
                }
                State::Trailers => self.trailers()?,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(bytes: &[u8], f: Framing) -> (io::Result<Vec<u8>>, Vec<u8>, bool) {
        let mut b = Body::new(bytes, f);
        let mut out = Vec::new();
        let r = b.read_to_end(&mut out).map(|_| out);
        let done = b.done();
        (r, b.into_inner().to_vec(), done)
    }

    #[test]
    fn response_heads() {
        let h = parse_response_head(
            b"HTTP/1.1 200 OK\r\nContent-Type: a/b\r\nX-A:  1 \r\nx-a: 2\r\n\r\n",
        )
        .unwrap();
        assert_eq!((h.minor, h.status, h.reason.as_str()), (1, 200, "OK"));
        assert_eq!(h.headers.get("CONTENT-TYPE"), Some("a/b"));
        assert_eq!(h.headers.get_all("x-a").collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(h.headers.get("missing"), None);
        // No reason phrase, bare LF line ends.
        let h = parse_response_head(b"HTTP/1.0 404\n\n").unwrap();
        assert_eq!((h.minor, h.status, h.reason.as_str()), (0, 404, ""));
        let h = parse_response_head(b"HTTP/1.1 503 Service  Unavailable\r\n\r\n").unwrap();
        assert_eq!(h.reason, "Service  Unavailable");
        for bad in [
            &b""[..],
            b"\r\n",
            b"HTTP/2 200 OK\r\n\r\n",
            b"HTTP/1.1 20 OK\r\n\r\n",
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1 099 x\r\n\r\n",
            b"HTTP/1.1 +20 x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nNo colon\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nBad name: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nName : x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n: x\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nA: 1\r\n folded\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nA: 1\r2\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nA: \x01\r\n\r\n",
        ] {
            assert!(
                parse_response_head(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn request_heads() {
        let h = parse_request_head(
            b"GET /v2/x/manifests/latest HTTP/1.1\r\nHost: r\r\nAccept: a\r\n\r\n",
        )
        .unwrap();
        assert_eq!(h.method, "GET");
        assert_eq!(h.target, "/v2/x/manifests/latest");
        assert_eq!(h.minor, 1);
        assert_eq!(h.headers.get("host"), Some("r"));
        let h = parse_request_head(b"CONNECT r:443 HTTP/1.1\r\n\r\n").unwrap();
        assert_eq!(h.target, "r:443");
        for bad in [
            &b"GET / HTTP/1.1 x\r\n\r\n"[..],
            b"GET  / HTTP/1.1\r\n\r\n",
            b"GET /\r\n\r\n",
            b"G(T / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.2\r\n\r\n",
            b"GET / HTTP/1.1\r\nA\r\n\r\n",
        ] {
            assert!(
                parse_request_head(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn header_limits() {
        let mut many = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("H{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert!(parse_response_head(&many).is_err());
        // read_head stops at the limit instead of buffering forever.
        let mut endless = b"HTTP/1.1 200 OK\r\nA: ".to_vec();
        endless.resize(MAX_HEAD * 2, b'a');
        let e = read_head(&mut &endless[..]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn read_head_leaves_the_body() {
        let mut r: &[u8] = b"\r\nHTTP/1.1 200 OK\r\nA: b\r\n\r\nbody";
        let head = read_head(&mut r).unwrap();
        assert_eq!(head, b"HTTP/1.1 200 OK\r\nA: b\r\n\r\n");
        assert_eq!(r, b"body");
        let e = read_head(&mut &b""[..]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        let e = read_head(&mut &b"HTTP/1.1 200 OK\r\n"[..]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        // Through a BufReader with a tiny buffer: the end spans fills.
        let mut r = io::BufReader::with_capacity(3, &b"HTTP/1.1 204 x\r\n\r\nnext"[..]);
        assert_eq!(read_head(&mut r).unwrap(), b"HTTP/1.1 204 x\r\n\r\n");
        let mut rest = String::new();
        r.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "next");
    }

    #[test]
    fn framing_rules() {
        let h = |s: &[u8]| parse_response_head(s).unwrap().headers;
        let cl = h(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n");
        assert_eq!(
            response_framing("GET", 200, &cl).unwrap(),
            Framing::Length(5)
        );
        assert_eq!(response_framing("HEAD", 200, &cl).unwrap(), Framing::Empty);
        assert_eq!(response_framing("GET", 204, &cl).unwrap(), Framing::Empty);
        assert_eq!(response_framing("GET", 304, &cl).unwrap(), Framing::Empty);
        assert_eq!(
            response_framing("CONNECT", 200, &cl).unwrap(),
            Framing::Empty
        );
        let te =
            h(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, Chunked\r\nContent-Length: 5\r\n\r\n");
        assert_eq!(response_framing("GET", 200, &te).unwrap(), Framing::Chunked);
        let gz = h(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n");
        assert_eq!(response_framing("GET", 200, &gz).unwrap(), Framing::Close);
        assert!(request_framing(&gz).is_err());
        assert!(request_framing(&te).is_err());
        let none = Headers::new();
        assert_eq!(response_framing("GET", 200, &none).unwrap(), Framing::Close);
        assert_eq!(request_framing(&none).unwrap(), Framing::Empty);
        let same = h(b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\n");
        assert_eq!(
            response_framing("GET", 200, &same).unwrap(),
            Framing::Length(5)
        );
        for v in ["5, 6", "-1", "+5", "0x5", "", "99999999999999999999", "1 2"] {
            let h = h(format!("HTTP/1.1 200 OK\r\nContent-Length: {v}\r\n\r\n").as_bytes());
            assert!(response_framing("GET", 200, &h).is_err(), "{v}");
        }
    }

    #[test]
    fn connection_reuse() {
        let h = |s: &str| {
            parse_response_head(format!("HTTP/1.1 200 OK\r\n{s}\r\n").as_bytes())
                .unwrap()
                .headers
        };
        assert!(keep_alive(1, &h("")));
        assert!(!keep_alive(1, &h("Connection: Close\r\n")));
        assert!(!keep_alive(1, &h("Connection: upgrade, close\r\n")));
        assert!(!keep_alive(0, &h("")));
        assert!(keep_alive(0, &h("Connection: keep-alive\r\n")));
    }

    #[test]
    fn length_bodies() {
        let (r, rest, done) = body(b"helloNEXT", Framing::Length(5));
        assert_eq!(r.unwrap(), b"hello");
        assert_eq!(rest, b"NEXT");
        assert!(done);
        let (r, _, done) = body(b"hel", Framing::Length(5));
        assert_eq!(r.unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
        assert!(!done);
        let (r, rest, done) = body(b"x", Framing::Empty);
        assert_eq!((r.unwrap(), rest, done), (vec![], b"x".to_vec(), true));
        let (r, _, done) = body(b"all of it", Framing::Close);
        assert_eq!(r.unwrap(), b"all of it");
        assert!(!done, "a read-to-close connection is never reused");
    }

    #[test]
    fn chunked_bodies() {
        let (r, rest, done) = body(
            b"5;name=v\r\nhello\r\n7 ; x\r\n, world\r\n0\r\nTrailer: t\r\n\r\nNEXT",
            Framing::Chunked,
        );
        assert_eq!(r.unwrap(), b"hello, world");
        assert_eq!(rest, b"NEXT");
        assert!(done);
        let (r, _, _) = body(b"A\nabcdefghij\n0\n\n", Framing::Chunked);
        assert_eq!(r.unwrap(), b"abcdefghij");
        for bad in [
            &b"g\r\n"[..],
            b"\r\nx\r\n0\r\n\r\n",
            b"-1\r\n",
            b"0x5\r\nhello\r\n0\r\n\r\n",
            b"1000000000000000\r\n",
            b"5\r\nhello!\r\n0\r\n\r\n",
            b"5\r\nhel",
            b"5\r\nhello\r\n",
            b"0\r\nno colon\r\n\r\n",
        ] {
            let (r, _, _) = body(bad, Framing::Chunked);
            assert!(r.is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        let mut long = b"5;".to_vec();
        long.resize(MAX_CHUNK_LINE + 10, b'x');
        long.extend_from_slice(b"\r\nhello\r\n0\r\n\r\n");
        assert!(body(&long, Framing::Chunked).0.is_err());
        assert_eq!(
            parse_chunk_size(b"fFfFfFfFfFfFfFf").unwrap(),
            0x0fff_ffff_ffff_ffff
        );
    }

    #[test]
    fn request_heads_are_written_safely() {
        let mut out = Vec::new();
        write_request_head(&mut out, "GET", "/v2/", &[("Host", "r:5000"), ("A", "b c")]).unwrap();
        assert_eq!(out, b"GET /v2/ HTTP/1.1\r\nHost: r:5000\r\nA: b c\r\n\r\n");
        let again = parse_request_head(&out).unwrap();
        assert_eq!(again.headers.get("a"), Some("b c"));
        let mut out = Vec::new();
        assert!(write_request_head(&mut out, "GET", "/a b", &[]).is_err());
        assert!(write_request_head(&mut out, "GET", "/", &[("A", "x\r\nB: y")]).is_err());
        assert!(write_request_head(&mut out, "G T", "/", &[]).is_err());
        assert!(out.is_empty());
    }
}
