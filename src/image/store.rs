//! The store: an OCI image layout under the data root, plus unpacked layers by chain id.
