//! OCI image layouts for the image tests, built from busybox-static: layers from entry lists (whiteouts, opaque dirs, hard links, devices, xattrs), gzip/zstd/uncompressed, multi-arch indexes.
