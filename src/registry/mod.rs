//! The OCI Distribution server behind `runway registry serve` and `registry gc`.
