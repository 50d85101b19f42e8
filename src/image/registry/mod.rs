//! The Distribution API v2 client: manifests and blobs over HTTP(S), with
//! docker's auth, credentials and TLS rules.
