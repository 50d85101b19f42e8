//! Layer decompression: gzip, zstd or none, told by media type or magic bytes.

use crate::error::Error;
use std::io::{self, BufRead, BufReader, Read};
use std::sync::{Arc, Mutex};

/// How a layer blob is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Input buffer for the decoders: ruzstd reads block headers a few bytes at
/// a time, so an unbuffered source would cost a syscall per block.
const BUF: usize = 64 << 10;

impl Compression {
    /// From a blob's first bytes (4 suffice): plain tarballs and docker
    /// archives do not say how their layers are compressed.
    pub fn sniff(first: &[u8]) -> Compression {
        if first.starts_with(&GZIP_MAGIC) {
            Compression::Gzip
        } else if first.starts_with(&ZSTD_MAGIC) {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// The word error messages use.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "uncompressed",
            Compression::Gzip => "gzip",
            Compression::Zstd => "zstd",
        }
    }
}

/// The decompressed stream of `r`. Errors of the source pass through
/// unchanged (errno kept); errors in the compressed data come out as
/// `InvalidData` saying "invalid gzip data: ..." / "invalid zstd data:
/// ...", so a layer's error names the fault (see `error`).
pub fn reader<'a, R: Read + Send + 'a>(c: Compression, r: R) -> Box<dyn Read + Send + 'a> {
    if c == Compression::None {
        return Box::new(r);
    }
    let slot = Arc::new(Mutex::new(None));
    let src = Source {
        inner: r,
        slot: Arc::clone(&slot),
    };
    let inner: Box<dyn Read + Send + 'a> = match c {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(src)),
        _ => Box::new(Zstd::new(src)),
    };
    Box::new(Labeled {
        inner,
        slot,
        what: c.name(),
    })
}

/// Our error for an io error out of `reader`'s stream: "<ctx>: invalid gzip
/// data: ..." for bad data, "<ctx>: <errno words>" for the source's faults.
pub fn error(ctx: &str, e: io::Error) -> Error {
    match e.raw_os_error() {
        Some(n) => Error::errno(ctx, n),
        None => Error::msg(format!("{ctx}: {e}")),
    }
}

/// The source, remembering its own errors: whatever a decoder makes of a
/// failed read (flate2 passes it through, ruzstd wraps it in its own
/// error), `Labeled` can tell a source fault from corrupt data.
struct Source<R> {
    inner: R,
    slot: Arc<Mutex<Option<io::Error>>>,
}

impl<R: Read> Read for Source<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.inner.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let copy = match e.raw_os_error() {
                        Some(n) => io::Error::from_raw_os_error(n),
                        None => io::Error::new(e.kind(), e.to_string()),
                    };
                    if let Ok(mut s) = self.slot.lock() {
                        *s = Some(e);
                    }
                    return Err(copy);
                }
                ok => return ok,
            }
        }
    }
}

/// Maps the decoder's errors: the source's own error if it failed, else
/// "invalid <what> data: <decoder's words>".
struct Labeled<'a> {
    inner: Box<dyn Read + Send + 'a>,
    slot: Arc<Mutex<Option<io::Error>>>,
    what: &'static str,
}

impl Read for Labeled<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).map_err(|e| {
            if let Some(src) = self.slot.lock().ok().and_then(|mut s| s.take()) {
                return src;
            }
            let words = match e.kind() {
                io::ErrorKind::UnexpectedEof => "unexpected end of data".to_string(),
                _ => e.to_string(),
            };
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("invalid {} data: {words}", self.what),
            )
        })
    }
}

/// A zstd stream of any number of frames (ruzstd's StreamingDecoder reads
/// one), skippable frames skipped (zstd:chunked puts its table of contents
/// in one), each frame's checksum checked when it has one.
struct Zstd<R> {
    src: BufReader<R>,
    dec: ruzstd::decoding::FrameDecoder,
    in_frame: bool,
}

impl<R: Read> Zstd<R> {
    fn new(src: R) -> Self {
        Zstd {
            src: BufReader::with_capacity(BUF, src),
            dec: ruzstd::decoding::FrameDecoder::new(),
            in_frame: false,
        }
    }

    fn bad(e: impl std::fmt::Display) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e.to_string())
    }

    /// Starts the next frame; false at the end of the stream.
    fn next_frame(&mut self) -> io::Result<bool> {
        use ruzstd::decoding::errors::{FrameDecoderError as F, ReadFrameHeaderError as H};
        loop {
            if self.src.fill_buf()?.is_empty() {
                return Ok(false);
            }
            match self.dec.reset(&mut self.src) {
                Ok(()) => return Ok(true),
                Err(F::ReadFrameHeaderError(H::SkipFrame { length, .. })) => {
                    let want = u64::from(length);
                    let skipped = io::copy(&mut (&mut self.src).take(want), &mut io::sink())?;
                    if skipped != want {
                        return Err(Self::bad("truncated skippable frame"));
                    }
                }
                Err(e) => return Err(Self::bad(e)),
            }
        }
    }
}

impl<R: Read> Read for Zstd<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            if !self.in_frame {
                if !self.next_frame()? {
                    return Ok(0);
                }
                self.in_frame = true;
            }
            if self.dec.can_collect() > 0 {
                return self.dec.read(buf);
            }
            if self.dec.is_finished() {
                // All of the frame was read: its checksum covers it all.
                if let (Some(want), Some(got)) = (
                    self.dec.get_checksum_from_data(),
                    self.dec.get_calculated_checksum(),
                ) {
                    if want != got {
                        return Err(Self::bad("frame checksum mismatch"));
                    }
                }
                self.in_frame = false;
                continue;
            }
            self.dec
                .decode_blocks(
                    &mut self.src,
                    ruzstd::decoding::BlockDecodingStrategy::UptoBlocks(1),
                )
                .map_err(Self::bad)?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn zst(data: &[u8]) -> Vec<u8> {
        ruzstd::encoding::compress_to_vec(data, ruzstd::encoding::CompressionLevel::Fastest)
    }

    fn all(c: Compression, blob: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        reader(c, blob).read_to_end(&mut out)?;
        Ok(out)
    }

    fn data() -> Vec<u8> {
        (0..300_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect()
    }

    #[test]
    fn sniffs_magic() {
        assert_eq!(Compression::sniff(&gz(b"x")), Compression::Gzip);
        assert_eq!(Compression::sniff(&zst(b"x")), Compression::Zstd);
        assert_eq!(Compression::sniff(b"ustar"), Compression::None);
        assert_eq!(Compression::sniff(&[0x1f]), Compression::None);
        assert_eq!(Compression::sniff(&[]), Compression::None);
    }

    #[test]
    fn round_trips() {
        let d = data();
        assert_eq!(all(Compression::None, &d).unwrap(), d);
        assert_eq!(all(Compression::Gzip, &gz(&d)).unwrap(), d);
        assert_eq!(all(Compression::Zstd, &zst(&d)).unwrap(), d);
        assert!(all(Compression::Zstd, &[]).unwrap().is_empty());
    }

    #[test]
    fn multi_member_gzip_and_multi_frame_zstd_with_skippable_frames() {
        let mut g = gz(b"one ");
        g.extend(gz(b"two"));
        assert_eq!(all(Compression::Gzip, &g).unwrap(), b"one two");
        // A skippable frame (magic 0x184D2A50..5F, little-endian length).
        let mut z = vec![0x50, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 9, 9, 9];
        z.extend(zst(b"one "));
        z.extend([0x5f, 0x2a, 0x4d, 0x18, 0, 0, 0, 0]);
        z.extend(zst(b"two"));
        assert_eq!(all(Compression::Zstd, &z).unwrap(), b"one two");
    }

    #[test]
    fn corrupt_and_truncated_data_say_so() {
        let d = data();
        for (c, mut blob) in [(Compression::Gzip, gz(&d)), (Compression::Zstd, zst(&d))] {
            let full = blob.len();
            blob.truncate(full / 2);
            let e = all(c, &blob).unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
            let want = format!("invalid {} data: ", c.name());
            assert!(e.to_string().starts_with(&want), "{e}");
            assert!(error("layer", e).to_string().starts_with("layer: invalid"));
        }
        let mut g = gz(&d);
        let n = g.len();
        g[n / 2] ^= 0xff;
        g[n / 2 + 1] ^= 0xff;
        let e = all(Compression::Gzip, &g).unwrap_err();
        assert!(e.to_string().starts_with("invalid gzip data: "), "{e}");
        let e = all(Compression::Zstd, b"not zstd at all").unwrap_err();
        assert!(e.to_string().starts_with("invalid zstd data: "), "{e}");
        let e = all(Compression::Gzip, b"not gzip").unwrap_err();
        assert!(e.to_string().starts_with("invalid gzip data: "), "{e}");
    }

    /// A source that fails with an errno after some bytes.
    struct Failing(Vec<u8>, usize);
    impl Read for Failing {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.1 >= self.0.len() / 2 {
                return Err(io::Error::from_raw_os_error(libc::ECONNRESET));
            }
            let n = buf.len().min(100).min(self.0.len() - self.1);
            buf[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
            self.1 += n;
            Ok(n)
        }
    }

    #[test]
    fn source_errors_pass_through_with_their_errno() {
        let d = data();
        for (c, blob) in [(Compression::Gzip, gz(&d)), (Compression::Zstd, zst(&d))] {
            let mut out = Vec::new();
            let e = reader(c, Failing(blob, 0))
                .read_to_end(&mut out)
                .unwrap_err();
            assert_eq!(e.raw_os_error(), Some(libc::ECONNRESET), "{c:?}: {e}");
            assert_eq!(
                error("layer", e).to_string(),
                "layer: connection reset by peer"
            );
        }
    }
}
