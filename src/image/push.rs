//! Push: an image from the store to a registry (blobs the registry lacks, then the manifest).
