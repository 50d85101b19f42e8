//! Registry credentials in docker's auth file format (`{"auths": {KEY:
//! {"auth": base64(user:pass)}}}`): looked up where podman and docker look,
//! written by `image login`. Credential helpers (`credsStore`,
//! `credHelpers`) are not supported: entries they hold are not found.

use crate::error::{Context, Error, Result};
use serde_json::{Map, Value};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// docker's key for Docker Hub in `auths`.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
    /// docker's `identitytoken`: an OAuth2 refresh token, used instead of
    /// the password with the token service.
    pub identity_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    // Never print a secret, not even in a debug message.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({})", self.username)
    }
}

impl Credentials {
    pub fn new(username: &str, password: &str) -> Credentials {
        Credentials {
            username: username.to_string(),
            password: password.to_string(),
            identity_token: None,
        }
    }

    /// `Basic base64(user:pass)` for an Authorization header.
    pub fn basic(&self) -> String {
        format!(
            "Basic {}",
            b64_encode(format!("{}:{}", self.username, self.password).as_bytes())
        )
    }
}

/// The registry as auth files name it: `docker.io` for Docker Hub (any of
/// its spellings), else `host[:port]` without scheme or path.
pub fn normalize_key(key: &str) -> Option<String> {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let (host, path) = match k.split_once('/') {
        Some((h, p)) => (h, p),
        None => (k, ""),
    };
    // docker writes "https://index.docker.io/v1/"; podman may key by
    // "host/namespace", which is a narrower grant: not used for the host.
    if !matches!(path, "" | "v1" | "v1/" | "v2" | "v2/") || host.is_empty() {
        return None;
    }
    let host = host.to_ascii_lowercase();
    Some(match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" | "registry.hub.docker.com" => {
            "docker.io".to_string()
        }
        _ => host,
    })
}

/// The auth files read, first match wins (podman's order: REGISTRY_AUTH_FILE,
/// the runtime dir's, ~/.config/containers', then docker's).
pub fn search_path() -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(f) = std::env::var_os("REGISTRY_AUTH_FILE").filter(|f| !f.is_empty()) {
        v.push(PathBuf::from(f));
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").filter(|f| !f.is_empty()) {
        v.push(Path::new(&d).join("containers/auth.json"));
    }
    // podman's fallback when there is no runtime dir.
    v.push(home().join(".config/containers/auth.json"));
    v.push(docker_config());
    v
}

/// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn docker_config() -> PathBuf {
    if let Some(d) = std::env::var_os("DOCKER_CONFIG").filter(|f| !f.is_empty()) {
        return Path::new(&d).join("config.json");
    }
    home().join(".docker/config.json")
}

fn home() -> PathBuf {
    match std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        Some(h) => PathBuf::from(h),
        None => PathBuf::from("/root"),
    }
}

/// The file `login` writes: `$REGISTRY_AUTH_FILE` if set, else docker's.
pub fn login_file() -> PathBuf {
    match std::env::var_os("REGISTRY_AUTH_FILE").filter(|f| !f.is_empty()) {
        Some(f) => PathBuf::from(f),
        None => docker_config(),
    }
}

/// Credentials for `registry` (a registry name or API host) from the
/// first of `files` that has an entry for it.
pub fn lookup(files: &[PathBuf], registry: &str) -> Option<Credentials> {
    let want = normalize_key(registry)?;
    files
        .iter()
        .find_map(|f| lookup_in(&fs::read(f).ok()?, &want))
}

/// Look up the normalised key `want` in one auth file's bytes.
pub fn lookup_in(bytes: &[u8], want: &str) -> Option<Credentials> {
    let v: Value = serde_json::from_slice(bytes).ok()?;
    let auths = v.get("auths")?.as_object()?;
    auths.iter().find_map(|(k, e)| {
        if normalize_key(k).as_deref() != Some(want) {
            return None;
        }
        entry_credentials(e)
    })
}

fn entry_credentials(e: &Value) -> Option<Credentials> {
    let identity_token = e
        .get("identitytoken")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let (username, password) = match e.get("auth").and_then(Value::as_str) {
        Some(a) if !a.is_empty() => {
            let raw = b64_decode(a)?;
            let s = String::from_utf8(raw).ok()?;
            let (u, p) = s.split_once(':')?;
            (u.to_string(), p.to_string())
        }
        _ => (
            e.get("username")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            e.get("password")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
        ),
    };
    if username.is_empty() && identity_token.is_none() {
        return None;
    }
    Some(Credentials {
        username,
        password,
        identity_token,
    })
}

/// The key `login` writes for `registry`: docker's Hub URL, else `host:port`.
pub fn login_key(registry: &str) -> Option<String> {
    let n = normalize_key(registry)?;
    Some(if n == "docker.io" {
        DOCKER_HUB_KEY.to_string()
    } else {
        n
    })
}

/// Store `creds` for `registry` in `file`, keeping everything else in it.
pub fn store(file: &Path, registry: &str, creds: &Credentials) -> Result<()> {
    let key = login_key(registry)
        .ok_or_else(|| Error::msg(format!("invalid registry name {registry:?}")))?;
    let mut doc = read_doc(file)?;
    let auths = auths_mut(&mut doc, file)?;
    // One entry per registry: drop other spellings of the same one.
    let norm = normalize_key(registry);
    auths.retain(|k, _| normalize_key(k) != norm);
    let auth = b64_encode(format!("{}:{}", creds.username, creds.password).as_bytes());
    auths.insert(key, serde_json::json!({ "auth": auth }));
    write_doc(file, &doc)
}

/// Remove every entry for `registry` from `file`; false if there was none.
pub fn remove(file: &Path, registry: &str) -> Result<bool> {
    let Some(norm) = normalize_key(registry) else {
        return Ok(false);
    };
    if !file.exists() {
        return Ok(false);
    }
    let mut doc = read_doc(file)?;
    let auths = auths_mut(&mut doc, file)?;
    let before = auths.len();
    auths.retain(|k, _| normalize_key(k).as_deref() != Some(norm.as_str()));
    if auths.len() == before {
        return Ok(false);
    }
    write_doc(file, &doc)?;
    Ok(true)
}

fn read_doc(file: &Path) -> Result<Value> {
    match fs::read(file) {
        Ok(b) if b.iter().all(u8::is_ascii_whitespace) => Ok(Value::Object(Map::new())),
        Ok(b) => serde_json::from_slice(&b)
            .map_err(|e| Error::msg(format!("{}: invalid JSON: {e}", file.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Value::Object(Map::new())),
        Err(e) => Err(e).ctx(|| format!("read {}", file.display())),
    }
}

fn auths_mut<'a>(doc: &'a mut Value, file: &Path) -> Result<&'a mut Map<String, Value>> {
    let obj = doc
        .as_object_mut()
        .ok_or_else(|| Error::msg(format!("{}: not a JSON object", file.display())))?;
    let auths = obj
        .entry("auths")
        .or_insert_with(|| Value::Object(Map::new()));
    if !auths.is_object() {
        *auths = Value::Object(Map::new());
    }
    auths
        .as_object_mut()
        .ok_or_else(|| Error::msg(format!("{}: bad \"auths\"", file.display())))
}

/// Write atomically (temp file, fsync, rename) with mode 0600: the file
/// holds passwords, and a crash must not leave half of it.
fn write_doc(file: &Path, doc: &Value) -> Result<()> {
    let dir = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.exists() {
        fs::create_dir_all(&dir).ctx(|| format!("create {}", dir.display()))?;
        let _ = fs::set_permissions(&dir, fs::Permissions::from_mode(0o700));
    }
    let mut bytes = crate::jsonfmt::to_vec_pretty(doc).map_err(|e| Error::msg(e.to_string()))?;
    bytes.push(b'\n');
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "auth.json".into());
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let res = (|| -> Result<()> {
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .ctx(|| format!("create {}", tmp.display()))?;
        f.write_all(&bytes)
            .ctx(|| format!("write {}", tmp.display()))?;
        f.sync_all().ctx(|| format!("fsync {}", tmp.display()))?;
        fs::rename(&tmp, file).ctx(|| format!("rename to {}", file.display()))
    })();
    if res.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    res
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (RFC 4648 §4).
pub fn b64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64, padding optional, whitespace ignored; None if invalid.
pub fn b64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => break,
            b' ' | b'\n' | b'\r' | b'\t' => continue,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trip() {
        for s in [
            "",
            "f",
            "fo",
            "foo",
            "foob",
            "fooba",
            "foobar",
            "user:pa:ss",
        ] {
            let e = b64_encode(s.as_bytes());
            assert_eq!(b64_decode(&e).unwrap(), s.as_bytes(), "{s}");
        }
        assert_eq!(b64_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(b64_encode(b"fo"), "Zm8=");
        assert_eq!(b64_decode("Zm8").unwrap(), b"fo");
        assert!(b64_decode("Zm!8").is_none());
    }

    #[test]
    fn keys_normalise_like_docker() {
        assert_eq!(normalize_key(DOCKER_HUB_KEY).unwrap(), "docker.io");
        assert_eq!(normalize_key("registry-1.docker.io").unwrap(), "docker.io");
        assert_eq!(normalize_key("docker.io").unwrap(), "docker.io");
        assert_eq!(normalize_key("https://Ghcr.io").unwrap(), "ghcr.io");
        assert_eq!(normalize_key("127.0.0.1:5000").unwrap(), "127.0.0.1:5000");
        assert_eq!(
            normalize_key("http://127.0.0.1:5000/v2/").unwrap(),
            "127.0.0.1:5000"
        );
        assert!(normalize_key("quay.io/someone").is_none());
        assert_eq!(login_key("docker.io").unwrap(), DOCKER_HUB_KEY);
        assert_eq!(login_key("localhost:5000").unwrap(), "localhost:5000");
    }

    #[test]
    fn lookup_reads_auth_and_username_forms() {
        let doc = format!(
            r#"{{"auths": {{"{DOCKER_HUB_KEY}": {{"auth": "{}"}},
                "r.example:5000": {{"username": "u", "password": "p"}},
                "tok.example": {{"auth": "", "identitytoken": "rt"}}}}}}"#,
            b64_encode(b"me:se:cret")
        );
        let c = lookup_in(doc.as_bytes(), "docker.io").unwrap();
        assert_eq!(
            (c.username.as_str(), c.password.as_str()),
            ("me", "se:cret")
        );
        let c = lookup_in(doc.as_bytes(), "r.example:5000").unwrap();
        assert_eq!((c.username.as_str(), c.password.as_str()), ("u", "p"));
        assert!(lookup_in(doc.as_bytes(), "r.example").is_none());
        let c = lookup_in(doc.as_bytes(), "tok.example");
        assert_eq!(c.unwrap().identity_token.as_deref(), Some("rt"));
        assert!(lookup_in(b"not json", "docker.io").is_none());
    }

    #[test]
    fn store_and_remove_keep_other_entries() {
        let dir = std::env::temp_dir().join(format!("runway-creds-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let f = dir.join("sub/config.json");
        fs::create_dir_all(f.parent().unwrap()).unwrap();
        fs::write(
            &f,
            r#"{"auths": {"other:1": {"auth": "eDp5"}}, "psFormat": "x"}"#,
        )
        .unwrap();
        store(&f, "127.0.0.1:5000", &Credentials::new("a", "b")).unwrap();
        store(&f, "docker.io", &Credentials::new("c", "d")).unwrap();
        let mode = fs::metadata(&f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let bytes = fs::read(&f).unwrap();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["psFormat"], "x");
        assert_eq!(v["auths"]["other:1"]["auth"], "eDp5");
        assert_eq!(v["auths"][DOCKER_HUB_KEY]["auth"], b64_encode(b"c:d"));
        assert_eq!(lookup_in(&bytes, "127.0.0.1:5000").unwrap().password, "b");
        assert!(remove(&f, "127.0.0.1:5000").unwrap());
        assert!(!remove(&f, "127.0.0.1:5000").unwrap());
        let v: Value = serde_json::from_slice(&fs::read(&f).unwrap()).unwrap();
        assert!(v["auths"].get("127.0.0.1:5000").is_none());
        assert_eq!(v["auths"]["other:1"]["auth"], "eDp5");
        fs::remove_dir_all(&dir).unwrap();
    }
}
