//! `runway registry …`: serve an OCI Distribution registry, collect its garbage.

use super::args::{self, flag, val, Flag};
use super::Global;
use crate::bail;
use crate::error::Result;
use crate::registry;
use std::ffi::OsString;
use std::path::PathBuf;

const USAGE: &str = "usage: runway registry COMMAND [flags]

Commands:
  serve  serve an OCI Distribution (v1.1) registry
  gc     remove blobs that no manifest references
";

const SERVE_USAGE: &str = "usage: runway registry serve [flags]

Serve an OCI Distribution registry from --root (default DATA_ROOT/registry).
Prints \"listening on ADDR\" once ready; one line per request on stderr.
SIGTERM or SIGINT stop it once in-flight requests are done.
";

const SERVE_FLAGS: &[Flag] = &[
    val(
        "addr",
        None,
        "HOST:PORT",
        "where to listen (default 127.0.0.1:5000; port 0: any free one)",
    ),
    val("root", None, "DIR", "the registry's storage"),
    val(
        "tls-cert",
        None,
        "FILE",
        "serve HTTPS with this PEM certificate chain",
    ),
    val("tls-key", None, "FILE", "the PEM private key of --tls-cert"),
    val(
        "htpasswd",
        None,
        "FILE",
        "require basic auth by this bcrypt htpasswd file",
    ),
    flag("read-only", None, "refuse every write"),
    val(
        "max-upload",
        None,
        "SIZE",
        "largest blob accepted (e.g. 2g)",
    ),
];

const GC_USAGE: &str = "usage: runway registry gc [flags]

Remove the blobs that no manifest of any repository references (untagged
manifests are kept). Run it when no push is half-way: a blob pushed but not
yet named by a manifest counts as unreferenced.
";

const GC_FLAGS: &[Flag] = &[
    val(
        "root",
        None,
        "DIR",
        "the registry's storage (default DATA_ROOT/registry)",
    ),
    flag("dry-run", None, "only print what would be removed"),
];

pub fn main(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let mut argv = argv.into_iter();
    let cmd = argv.next().map(|c| c.to_string_lossy().into_owned());
    let rest: Vec<OsString> = argv.collect();
    let (usage, table) = match cmd.as_deref() {
        Some("serve") => (SERVE_USAGE, SERVE_FLAGS),
        Some("gc") => (GC_USAGE, GC_FLAGS),
        None | Some("--help" | "-h" | "help") => {
            print!("{USAGE}");
            return Ok(0);
        }
        Some(other) => bail!("unknown command \"registry {other}\" (see runway registry --help)"),
    };
    let a = args::parse(rest, table, None)?;
    if a.help {
        print!("{}", args::help_text(usage, &a.table));
        return Ok(0);
    }
    if let Some(p) = a.positionals.first() {
        bail!("registry: unexpected argument {p:?} (see --help)");
    }
    let root = a
        .get("root")
        .map(PathBuf::from)
        .unwrap_or_else(|| g.data_root.join("registry"));
    if cmd.as_deref() == Some("gc") {
        registry::gc(&root, a.is_set("dry-run"))?;
        return Ok(0);
    }
    let tls = match (a.get("tls-cert"), a.get("tls-key")) {
        (Some(c), Some(k)) => Some((PathBuf::from(c), PathBuf::from(k))),
        (None, None) => None,
        _ => bail!("registry serve: --tls-cert and --tls-key go together"),
    };
    let max_upload = match a.get("max-upload") {
        Some(s) => crate::engine::logs::parse_size(s)?,
        None => u64::MAX,
    };
    registry::serve(registry::Config {
        addr: a.get("addr").unwrap_or("127.0.0.1:5000").to_string(),
        root,
        tls,
        htpasswd: a.get("htpasswd").map(PathBuf::from),
        read_only: a.is_set("read-only"),
        max_upload,
    })?;
    Ok(0)
}
