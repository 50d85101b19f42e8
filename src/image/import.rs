//! image import: OCI layouts (dir or tar), docker-archives and plain rootfs tarballs into the store.
