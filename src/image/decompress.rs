//! Layer decompression: gzip, zstd or none, told by media type or magic bytes.

/// How a layer blob is compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

// reader(Compression, R) -> Box<dyn Read + Send> and sniff(&[u8]) come with the unpacker.
