//! Unpack one layer tarball into a directory ready to be an overlayfs lowerdir.
