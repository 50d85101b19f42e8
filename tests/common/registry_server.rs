//! `runway registry serve` for tests: started on 127.0.0.1 with a free
//! port and its own root, killed and reaped on drop; and a tiny raw HTTP
//! client to talk the distribution protocol to it byte by byte.

// Each test uses a part of it.
#![allow(dead_code)]

use crate::common::registry::TempDir;
use crate::common::runtime;
use runway::image::digest::Digest;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct Srv {
    pub port: u16,
    pub root: PathBuf,
    pub dir: TempDir,
    pub child: Option<Child>,
    extra: Vec<String>,
}

impl Srv {
    /// Start on a fresh root with `extra` flags.
    pub fn start(extra: &[&str]) -> Srv {
        let dir = TempDir::new("rwreg");
        let root = dir.path().join("root");
        let mut s = Srv {
            port: 0,
            root,
            dir,
            child: None,
            extra: extra.iter().map(|s| s.to_string()).collect(),
        };
        s.spawn("127.0.0.1:0");
        s
    }

    /// (Re)start the process on `addr` (same root, same flags).
    pub fn spawn(&mut self, addr: &str) {
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("server.log"))
            .unwrap();
        let mut child = Command::new(runtime())
            .args(["registry", "serve", "--addr", addr, "--root"])
            .arg(&self.root)
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start runway registry serve");
        let mut line = String::new();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        out.read_line(&mut line).unwrap();
        let Some(a) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("registry did not start: {line:?}\n{}", self.log());
        };
        self.port = a.rsplit(':').next().unwrap().parse().unwrap();
        self.child = Some(child);
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// Peak RSS in KiB (VmHWM).
    pub fn vm_hwm_kib(&self) -> u64 {
        let s = fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let l = s.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
        l.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    pub fn signal(&mut self, sig: i32) -> std::process::ExitStatus {
        let mut c = self.child.take().unwrap();
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(c.id() as i32, sig) };
        c.wait().unwrap()
    }

    /// Files under blobs/sha256 (not counting staging).
    pub fn blob_files(&self) -> Vec<String> {
        crate::harness::names_in(&self.root.join("blobs/sha256"))
    }

    pub fn req(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
        req(&self.host(), method, path, headers, body)
    }

    /// Monolithic push of one blob to REPO.
    pub fn push_blob(&self, repo: &str, bytes: &[u8]) -> Digest {
        let d = Digest::of(bytes);
        let r = self.req(
            "POST",
            &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
            &[],
            bytes,
        );
        assert_eq!(r.status, 201, "{r:?}");
        d
    }

    pub fn put_manifest(&self, repo: &str, reference: &str, media: &str, body: &[u8]) -> Resp {
        self.req(
            "PUT",
            &format!("/v2/{repo}/manifests/{reference}"),
            &[("Content-Type", media)],
            body,
        )
    }
}

impl Drop for Srv {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, k: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(k))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }

    /// The first error code of a spec error body.
    pub fn code(&self) -> String {
        self.json()["errors"][0]["code"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

/// Read one response (Content-Length framed, or none for HEAD/204).
pub fn read_resp(r: &mut impl BufRead, head_req: bool) -> Resp {
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("bad status line {line:?}"))
        .parse()
        .unwrap();
    let mut headers = Vec::new();
    loop {
        let mut l = String::new();
        r.read_line(&mut l).unwrap();
        let l = l.trim_end();
        if l.is_empty() {
            break;
        }
        let (k, v) = l.split_once(':').unwrap();
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let mut resp = Resp {
        status,
        headers,
        body: Vec::new(),
    };
    let len: usize = resp
        .header("content-length")
        .map_or(0, |v| v.parse().unwrap());
    if !head_req && status != 204 {
        resp.body = vec![0; len];
        r.read_exact(&mut resp.body).unwrap();
    }
    resp
}

/// One request on a fresh connection.
pub fn req(host: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    let mut s = TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("transfer-encoding"))
    {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    read_resp(&mut BufReader::new(s), method == "HEAD")
}

/// `bytes` as chunked transfer coding, in chunks of `n`.
pub fn chunked(bytes: &[u8], n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for c in bytes.chunks(n) {
        out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// skopeo with no auth file of the user's, on `args`.
pub fn skopeo(scratch: &Path, args: &[&str]) -> std::process::Output {
    fs::create_dir_all(scratch).unwrap();
    Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .env("HOME", scratch)
        .env("XDG_RUNTIME_DIR", scratch)
        .env_remove("REGISTRY_AUTH_FILE")
        .env("NO_PROXY", "*")
        .stdin(Stdio::null())
        .output()
        .expect("run skopeo")
}

/// Whether `tool` is an executable on $PATH.
pub fn have(tool: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|d| d.join(tool).is_file())
}
