//! `runway image login` / `logout`: credentials in docker's auth file format.
//! Login checks them against the registry first (as docker does), then
//! writes `$REGISTRY_AUTH_FILE`, else `~/.docker/config.json`.

use crate::bail;
use crate::cli::args::{self, flag, val, Flag};
use crate::cli::Global;
use crate::error::{Context, Error, Result};
use crate::image::registry::{creds, Client, ClientOptions, Credentials};
use std::ffi::OsString;
use std::io::{BufRead, IsTerminal, Read, Write};

const LOGIN_FLAGS: &[Flag] = &[
    val("username", Some('u'), "USER", "user name"),
    val(
        "password",
        Some('p'),
        "PASS",
        "password (visible to other users: prefer --password-stdin)",
    ),
    flag("password-stdin", None, "read the password from stdin"),
];

const LOGIN_USAGE: &str = "usage: runway image login [flags] [REGISTRY]

Check credentials against REGISTRY (default docker.io) and save them in
$REGISTRY_AUTH_FILE, else ~/.docker/config.json (docker's format, mode 0600).
";

const LOGOUT_USAGE: &str = "usage: runway image logout [REGISTRY]

Remove the saved credentials for REGISTRY (default docker.io).
";

/// The registry as the user named it, normalised (`docker.io` for any
/// spelling of Docker Hub, `host:port` otherwise).
fn registry_arg(a: &args::Args) -> Result<String> {
    if a.positionals.len() > 1 {
        bail!(
            "image login/logout take one registry, got {:?}",
            a.positionals
        );
    }
    let raw = a
        .positionals
        .first()
        .map(String::as_str)
        .unwrap_or("docker.io");
    creds::normalize_key(raw).ok_or_else(|| Error::msg(format!("invalid registry name {raw:?}")))
}

pub fn login(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    // Flags may follow the registry (docker's grammar): no positional cap.
    let a = args::parse(argv, LOGIN_FLAGS, None)?;
    if crate::cli::help_requested(&a, LOGIN_USAGE) {
        return Ok(0);
    }
    let registry = registry_arg(&a)?;
    let stdin = std::io::stdin();
    let password_stdin = a.is_set("password-stdin");
    if password_stdin && a.get("password").is_some() {
        bail!("image login: --password and --password-stdin are mutually exclusive");
    }
    let username = match a.get("username") {
        Some(u) => u.to_string(),
        None if password_stdin => bail!("image login: --password-stdin needs --username"),
        None if stdin.is_terminal() => prompt("Username: ", true)?,
        None => bail!("image login: no --username and stdin is not a terminal"),
    };
    if username.is_empty() {
        bail!("image login: empty username");
    }
    let password = match a.get("password") {
        Some(p) => {
            eprintln!("WARNING! Using --password via the CLI is insecure. Use --password-stdin.");
            p.to_string()
        }
        None if password_stdin => {
            let mut s = String::new();
            stdin
                .lock()
                .read_to_string(&mut s)
                .ctx(|| "image login: read the password from stdin")?;
            s.trim_end_matches(['\n', '\r']).to_string()
        }
        None if stdin.is_terminal() => prompt("Password: ", false)?,
        None => bail!("image login: no password: use --password-stdin"),
    };
    if password.is_empty() {
        bail!("image login: empty password");
    }
    let creds = Credentials::new(&username, &password);
    let mut opts = ClientOptions::new(&registry, &g.data_root, &g.insecure_registries);
    opts.credentials = Some(creds.clone());
    Client::new(opts)?.check_login()?;
    let file = creds::login_file();
    creds::store(&file, &registry, &creds)?;
    println!("Login Succeeded");
    Ok(0)
}

pub fn logout(_g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = args::parse(argv, &[], None)?;
    if crate::cli::help_requested(&a, LOGOUT_USAGE) {
        return Ok(0);
    }
    let registry = registry_arg(&a)?;
    let shown = creds::login_key(&registry).unwrap_or_else(|| registry.clone());
    let mut removed = false;
    // Every file login or other tools may have written: a stale entry left
    // in one of them would keep the user logged in.
    for f in creds::search_path() {
        removed |= creds::remove(&f, &registry)?;
    }
    if removed {
        println!("Removing login credentials for {shown}");
    } else {
        println!("Not logged in to {shown}");
    }
    Ok(0)
}

/// Read one line from the terminal, without echo for passwords.
fn prompt(what: &str, echo: bool) -> Result<String> {
    let mut err = std::io::stderr();
    let _ = err.write_all(what.as_bytes());
    let _ = err.flush();
    let stdin = std::io::stdin();
    let saved = if echo {
        None
    } else {
        rustix::termios::tcgetattr(&stdin).ok().inspect(|t| {
            let mut quiet = t.clone();
            quiet.local_modes.remove(rustix::termios::LocalModes::ECHO);
            let _ =
                rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &quiet);
        })
    };
    let mut line = String::new();
    let res = stdin.lock().read_line(&mut line);
    if let Some(t) = saved {
        let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &t);
        let _ = err.write_all(b"\n");
    }
    res.ctx(|| "image login: read from the terminal")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}
