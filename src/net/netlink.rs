//! A synchronous netlink socket and hand-built messages: the framing that
//! rtnetlink (links, addresses, routes) and nf_tables share. Messages are
//! built into a byte buffer (header, fixed family header, attributes with
//! nesting) and replies are read until the kernel's ACK or DONE; an
//! error reply becomes an errno-carrying error. No async, no threads.

use crate::error::{Error, Result};
use std::os::fd::{AsFd, OwnedFd};

pub const NLMSG_HDRLEN: usize = 16;
pub const NLA_HDRLEN: usize = 4;
pub const NLMSG_NOOP: u16 = 1;
pub const NLMSG_ERROR: u16 = 2;
pub const NLMSG_DONE: u16 = 3;

pub const NLM_F_REQUEST: u16 = 0x1;
pub const NLM_F_MULTI: u16 = 0x2;
pub const NLM_F_ACK: u16 = 0x4;
pub const NLM_F_ROOT: u16 = 0x100;
pub const NLM_F_MATCH: u16 = 0x200;
pub const NLM_F_DUMP: u16 = NLM_F_ROOT | NLM_F_MATCH;
pub const NLM_F_REPLACE: u16 = 0x100;
pub const NLM_F_EXCL: u16 = 0x200;
pub const NLM_F_CREATE: u16 = 0x400;
pub const NLM_F_APPEND: u16 = 0x800;

/// Attribute type bit for nested attributes (some families want it set).
pub const NLA_F_NESTED: u16 = 0x8000;

/// Netlink aligns everything to 4 bytes.
pub const fn align(n: usize) -> usize {
    (n + 3) & !3
}

/// One message being built: the netlink header is written by `finish`.
#[derive(Debug, Clone)]
pub struct Msg {
    ty: u16,
    flags: u16,
    /// Everything after the 16-byte netlink header.
    body: Vec<u8>,
}

impl Msg {
    pub fn new(ty: u16, flags: u16) -> Msg {
        Msg {
            ty,
            flags,
            body: Vec::with_capacity(128),
        }
    }

    /// The family's fixed header (ifinfomsg, ifaddrmsg, rtmsg, nfgenmsg…)
    /// as raw bytes; padded to 4.
    pub fn header(&mut self, bytes: &[u8]) -> &mut Self {
        self.body.extend_from_slice(bytes);
        self.pad();
        self
    }

    fn pad(&mut self) {
        while !self.body.len().is_multiple_of(4) {
            self.body.push(0);
        }
    }

    /// An attribute with a raw payload.
    pub fn attr(&mut self, ty: u16, data: &[u8]) -> &mut Self {
        let len = (NLA_HDRLEN + data.len()) as u16;
        self.body.extend_from_slice(&len.to_ne_bytes());
        self.body.extend_from_slice(&ty.to_ne_bytes());
        self.body.extend_from_slice(data);
        self.pad();
        self
    }

    pub fn attr_u8(&mut self, ty: u16, v: u8) -> &mut Self {
        self.attr(ty, &[v])
    }

    pub fn attr_u16(&mut self, ty: u16, v: u16) -> &mut Self {
        self.attr(ty, &v.to_ne_bytes())
    }

    pub fn attr_u32(&mut self, ty: u16, v: u32) -> &mut Self {
        self.attr(ty, &v.to_ne_bytes())
    }

    /// Big-endian u32 (nf_tables carries its numbers in network order).
    pub fn attr_be32(&mut self, ty: u16, v: u32) -> &mut Self {
        self.attr(ty, &v.to_be_bytes())
    }

    pub fn attr_be64(&mut self, ty: u16, v: u64) -> &mut Self {
        self.attr(ty, &v.to_be_bytes())
    }

    /// A NUL-terminated string attribute.
    pub fn attr_str(&mut self, ty: u16, s: &str) -> &mut Self {
        let mut v = Vec::with_capacity(s.len() + 1);
        v.extend_from_slice(s.as_bytes());
        v.push(0);
        self.attr(ty, &v)
    }

    /// Opens a nested attribute; close it with [`Msg::nest_end`] on the
    /// returned position.
    pub fn nest_start(&mut self, ty: u16) -> usize {
        let pos = self.body.len();
        self.body.extend_from_slice(&0u16.to_ne_bytes());
        self.body.extend_from_slice(&ty.to_ne_bytes());
        pos
    }

    pub fn nest_end(&mut self, pos: usize) -> &mut Self {
        let len = (self.body.len() - pos) as u16;
        self.body[pos..pos + 2].copy_from_slice(&len.to_ne_bytes());
        self
    }

    /// The message's type.
    pub fn ty(&self) -> u16 {
        self.ty
    }

    /// The whole message with its netlink header, for sequence number
    /// `seq`.
    pub fn finish(&self, seq: u32) -> Vec<u8> {
        let len = (NLMSG_HDRLEN + self.body.len()) as u32;
        let mut out = Vec::with_capacity(len as usize);
        out.extend_from_slice(&len.to_ne_bytes());
        out.extend_from_slice(&self.ty.to_ne_bytes());
        out.extend_from_slice(&self.flags.to_ne_bytes());
        out.extend_from_slice(&seq.to_ne_bytes());
        out.extend_from_slice(&0u32.to_ne_bytes());
        out.extend_from_slice(&self.body);
        out
    }
}

/// One message of a reply: its type, flags, sequence and body (what
/// follows the netlink header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply<'a> {
    pub ty: u16,
    pub flags: u16,
    pub seq: u32,
    pub body: &'a [u8],
}

/// Splits a buffer of netlink messages; a truncated or malformed message
/// ends the iteration (never a panic: the input may be anything).
pub fn messages(buf: &[u8]) -> impl Iterator<Item = Reply<'_>> {
    let mut rest = buf;
    std::iter::from_fn(move || {
        if rest.len() < NLMSG_HDRLEN {
            return None;
        }
        let len = u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if len < NLMSG_HDRLEN || len > rest.len() {
            return None;
        }
        let m = Reply {
            ty: u16::from_ne_bytes([rest[4], rest[5]]),
            flags: u16::from_ne_bytes([rest[6], rest[7]]),
            seq: u32::from_ne_bytes([rest[8], rest[9], rest[10], rest[11]]),
            body: &rest[NLMSG_HDRLEN..len],
        };
        rest = &rest[align(len).min(rest.len())..];
        Some(m)
    })
}

/// Splits attributes: (type without the nested/byte-order bits, payload).
pub fn attrs(buf: &[u8]) -> impl Iterator<Item = (u16, &[u8])> {
    let mut rest = buf;
    std::iter::from_fn(move || {
        if rest.len() < NLA_HDRLEN {
            return None;
        }
        let len = u16::from_ne_bytes([rest[0], rest[1]]) as usize;
        let ty = u16::from_ne_bytes([rest[2], rest[3]]) & 0x3fff;
        if len < NLA_HDRLEN || len > rest.len() {
            return None;
        }
        let a = (ty, &rest[NLA_HDRLEN..len]);
        rest = &rest[align(len).min(rest.len())..];
        Some(a)
    })
}

/// The errno of an NLMSG_ERROR body (0 is an ACK); None if malformed.
pub fn error_code(body: &[u8]) -> Option<i32> {
    let b: [u8; 4] = body.get(..4)?.try_into().ok()?;
    Some(-i32::from_ne_bytes(b))
}

pub fn u32_of(p: &[u8]) -> Option<u32> {
    Some(u32::from_ne_bytes(p.get(..4)?.try_into().ok()?))
}

/// A NUL-terminated string payload.
pub fn str_of(p: &[u8]) -> Option<&str> {
    let end = p.iter().position(|b| *b == 0).unwrap_or(p.len());
    std::str::from_utf8(&p[..end]).ok()
}

/// A netlink socket of one protocol (NETLINK_ROUTE, NETLINK_NETFILTER),
/// in the network namespace of the thread that opened it.
pub struct Socket {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

pub const NETLINK_ROUTE: i32 = 0;
pub const NETLINK_NETFILTER: i32 = 12;

impl Socket {
    pub fn open(protocol: i32) -> Result<Socket> {
        // SAFETY: socket(2) with constant arguments; the fd is ours.
        let fd = unsafe {
            libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                protocol,
            )
        };
        if fd < 0 {
            return Err(Error::last_os("netlink socket"));
        }
        // SAFETY: fd was just returned by socket(2).
        let fd = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        // Extended ACKs carry the kernel's own words for an error.
        let one: libc::c_int = 1;
        // SAFETY: setsockopt with a valid int; failure (old kernel) is fine.
        unsafe {
            libc::setsockopt(
                std::os::fd::AsRawFd::as_raw_fd(&fd),
                libc::SOL_NETLINK,
                libc::NETLINK_EXT_ACK,
                &one as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as u32,
            );
        }
        Ok(Socket {
            fd,
            seq: 1,
            buf: vec![0u8; 64 * 1024],
        })
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1).max(1);
        self.seq
    }

    fn send(&self, bytes: &[u8]) -> Result<()> {
        loop {
            match rustix::net::send(self.fd.as_fd(), bytes, rustix::net::SendFlags::empty()) {
                Ok(_) => return Ok(()),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(Error::errno("netlink send", e.raw_os_error())),
            }
        }
    }

    fn recv(&mut self) -> Result<usize> {
        loop {
            match rustix::net::recv(
                self.fd.as_fd(),
                &mut self.buf[..],
                rustix::net::RecvFlags::empty(),
            ) {
                Ok((n, _)) => return Ok(n),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(Error::errno("netlink receive", e.raw_os_error())),
            }
        }
    }

    /// Sends `msgs` in one write (a batch) and reads replies until every
    /// message with NLM_F_ACK is acknowledged, or a dump is DONE. Returns
    /// the bodies of the data replies (a dump's entries). `what` names the
    /// operation in errors: `what: file exists`.
    pub fn transact(&mut self, msgs: &[Msg], what: &str) -> Result<Vec<(u16, Vec<u8>)>> {
        self.transact_named(msgs, &|_| what.to_string())
    }

    /// [`Socket::transact`], but an error reply is named by the message it
    /// answers: `what(i)` for `msgs[i]` (a batch's rules each name their
    /// own chain).
    pub fn transact_named(
        &mut self,
        msgs: &[Msg],
        what: &dyn Fn(usize) -> String,
    ) -> Result<Vec<(u16, Vec<u8>)>> {
        let mut out_bytes = Vec::new();
        let first = self.seq.wrapping_add(1).max(1);
        let mut last = first;
        let mut waiting = 0usize;
        let mut dump = false;
        for m in msgs {
            last = self.next_seq();
            out_bytes.extend_from_slice(&m.finish(last));
            if m.flags & NLM_F_ACK != 0 {
                waiting += 1;
            }
            if m.flags & NLM_F_DUMP == NLM_F_DUMP && m.flags & NLM_F_REQUEST != 0 {
                dump = true;
            }
        }
        self.send(&out_bytes)?;
        let mut data = Vec::new();
        let in_range = |s: u32| {
            if first <= last {
                (first..=last).contains(&s)
            } else {
                s >= first || s <= last
            }
        };
        while waiting > 0 || dump {
            let n = self.recv()?;
            let mut done = false;
            let mut err: Option<Error> = None;
            let mut acks = 0usize;
            for r in messages(&self.buf[..n]) {
                if !in_range(r.seq) {
                    continue; // a stale reply to an earlier request
                }
                match r.ty {
                    NLMSG_ERROR => match error_code(r.body) {
                        Some(0) => acks += 1,
                        Some(e) => {
                            acks += 1;
                            if err.is_none() {
                                let i = r.seq.wrapping_sub(first) as usize;
                                err = Some(Error::errno(what(i), e));
                            }
                        }
                        None => {
                            let i = r.seq.wrapping_sub(first) as usize;
                            err = Some(Error::msg(format!("{}: bad netlink error", what(i))))
                        }
                    },
                    NLMSG_DONE => done = true,
                    NLMSG_NOOP => {}
                    ty => data.push((ty, r.body.to_vec())),
                }
            }
            if let Some(e) = err {
                return Err(e);
            }
            waiting = waiting.saturating_sub(acks);
            if done {
                dump = false;
            }
        }
        Ok(data)
    }

    /// One request that wants an ACK.
    pub fn request(&mut self, msg: Msg, what: &str) -> Result<()> {
        self.transact(&[msg], what).map(|_| ())
    }

    /// A dump request: the entries' bodies.
    pub fn dump(&mut self, msg: Msg, what: &str) -> Result<Vec<(u16, Vec<u8>)>> {
        self.transact(&[msg], what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_nested_attributes_round_trip() {
        let mut m = Msg::new(16, NLM_F_REQUEST | NLM_F_ACK);
        m.header(&[1, 2, 3]); // padded to 4
        m.attr_str(3, "eth0");
        let n = m.nest_start(18 | NLA_F_NESTED);
        m.attr_u32(1, 7);
        m.nest_end(n);
        let bytes = m.finish(9);
        assert!(bytes.len().is_multiple_of(4));
        let msgs: Vec<_> = messages(&bytes).collect();
        assert_eq!(msgs.len(), 1);
        assert_eq!((msgs[0].ty, msgs[0].seq), (16, 9));
        let body = msgs[0].body;
        assert_eq!(&body[..3], &[1, 2, 3]);
        let a: Vec<_> = attrs(&body[4..]).collect();
        assert_eq!(a.len(), 2);
        assert_eq!((a[0].0, str_of(a[0].1)), (3, Some("eth0")));
        assert_eq!(a[1].0, 18);
        let inner: Vec<_> = attrs(a[1].1).collect();
        assert_eq!((inner[0].0, u32_of(inner[0].1)), (1, Some(7)));
    }

    #[test]
    fn malformed_input_ends_iteration() {
        assert_eq!(messages(&[0xff; 15]).count(), 0);
        let mut bad = Msg::new(1, 0).finish(1);
        bad[0] = 200; // longer than the buffer
        assert_eq!(messages(&bad).count(), 0);
        assert_eq!(attrs(&[2, 0, 1, 0]).count(), 0);
        assert_eq!(error_code(&[1, 2]), None);
    }

    #[test]
    fn a_dump_of_links_in_our_namespace_lists_loopback() {
        // RTM_GETLINK dump: every namespace has lo.
        let Ok(mut s) = Socket::open(NETLINK_ROUTE) else {
            return;
        };
        let mut m = Msg::new(18, NLM_F_REQUEST | NLM_F_DUMP);
        m.header(&[0u8; 16]);
        let links = s.dump(m, "dump links").unwrap();
        let names: Vec<String> = links
            .iter()
            .filter_map(|(_, b)| {
                attrs(b.get(16..)?)
                    .find(|(t, _)| *t == 3)
                    .and_then(|(_, p)| str_of(p).map(str::to_string))
            })
            .collect();
        assert!(names.iter().any(|n| n == "lo"), "{names:?}");
    }
}
