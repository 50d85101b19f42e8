//! Table-driven flag parsing on top of lexopt, with runc's (urfave/cli)
//! habits: `--flag value`, `--flag=value`, single-dash long flags
//! (`-bundle`), bool flags with `=false`, flags after positionals.

use crate::bail;
use crate::error::{Error, Result};
use std::ffi::OsString;

#[derive(Debug, Clone, Copy)]
pub struct Flag {
    pub long: &'static str,
    pub short: Option<char>,
    pub takes_value: bool,
    /// What the value is, for `--help` ("DIR", "N"); empty for bool flags.
    pub arg: &'static str,
    /// One line for `--help`.
    pub help: &'static str,
}

/// A flag that takes a value, shown in `--help` as `--long ARG  help`.
pub const fn val(
    long: &'static str,
    short: Option<char>,
    arg: &'static str,
    help: &'static str,
) -> Flag {
    Flag {
        long,
        short,
        takes_value: true,
        arg,
        help,
    }
}

/// A bool flag (`--long`, `--long=false`).
pub const fn flag(long: &'static str, short: Option<char>, help: &'static str) -> Flag {
    Flag {
        long,
        short,
        takes_value: false,
        arg: "",
        help,
    }
}

/// `usage`, then one line per flag of `table` (and -h), aligned: what
/// every `--help` prints.
pub fn help_text(usage: &str, table: &[Flag]) -> String {
    let left = |f: &Flag| {
        let short = match f.short {
            Some(c) => format!("-{c}, "),
            None => "    ".to_string(),
        };
        if f.takes_value {
            format!("{short}--{} {}", f.long, f.arg)
        } else {
            format!("{short}--{}", f.long)
        }
    };
    const HELP: Flag = flag("help", Some('h'), "show this help");
    let rows: Vec<(String, &str)> = table
        .iter()
        .chain(std::iter::once(&HELP))
        .map(|f| (left(f), f.help))
        .collect();
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let mut out = String::from(usage.trim_end());
    out.push_str("\n\nFlags:\n");
    for (l, h) in rows {
        out.push_str(&format!("  {l:width$}  {h}\n"));
    }
    out
}

#[derive(Debug, Default, Clone)]
pub struct Args {
    /// (flag long name, value); bool flags carry "true"/"false".
    pub values: Vec<(&'static str, String)>,
    pub positionals: Vec<String>,
    /// Everything after the positional limit (exec's command, ps's args).
    pub rest: Vec<String>,
    pub help: bool,
    /// The flag table parsed against, kept when `help` is set so the help
    /// text lists exactly the flags the command accepts.
    pub table: Vec<Flag>,
}

impl Args {
    pub fn get(&self, long: &str) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(k, _)| *k == long)
            .map(|(_, v)| v.as_str())
    }

    pub fn all(&self, long: &str) -> Vec<&str> {
        self.values
            .iter()
            .filter(|(k, _)| *k == long)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn is_set(&self, long: &str) -> bool {
        self.get(long) == Some("true")
    }

    pub fn get_num<T: std::str::FromStr>(&self, long: &str) -> Result<Option<T>> {
        match self.get(long) {
            None => Ok(None),
            Some(v) => v
                .parse::<T>()
                .map(Some)
                .map_err(|_| Error::msg(format!("invalid value {v:?} for flag --{long}"))),
        }
    }
}

fn parse_bool(name: &str, v: &str) -> Result<&'static str> {
    match v {
        "true" | "1" | "t" | "T" | "TRUE" | "True" => Ok("true"),
        "false" | "0" | "f" | "F" | "FALSE" | "False" => Ok("false"),
        _ => bail!("invalid boolean value {v:?} for flag --{name}"),
    }
}

fn to_string(s: OsString) -> Result<String> {
    s.into_string()
        .map_err(|s| Error::msg(format!("argument {:?} is not valid UTF-8", s)))
}

/// Parse `argv` (without the program/command name) against `table`.
/// `max_positionals`: after that many positionals, the rest is taken raw.
pub fn parse(argv: Vec<OsString>, table: &[Flag], max_positionals: Option<usize>) -> Result<Args> {
    parse_with(argv, table, max_positionals, true)
}

/// docker's habits (the porcelain): `-abc` is always a cluster of short
/// flags, so a container's command after the image (`ls -name`) is never
/// rewritten.
pub fn parse_docker(
    argv: Vec<OsString>,
    table: &[Flag],
    max_positionals: Option<usize>,
) -> Result<Args> {
    parse_with(argv, table, max_positionals, false)
}

fn parse_with(
    argv: Vec<OsString>,
    table: &[Flag],
    max_positionals: Option<usize>,
    single_dash_long: bool,
) -> Result<Args> {
    // urfave/cli accepts `-bundle` for `--bundle`; lexopt would read that
    // as a cluster of short flags, so rewrite known long names first.
    let mut norm: Vec<OsString> = Vec::with_capacity(argv.len());
    let mut seen_dashdash = false;
    for a in argv {
        if seen_dashdash || !single_dash_long {
            norm.push(a);
            continue;
        }
        if let Some(s) = a.to_str() {
            if s == "--" {
                seen_dashdash = true;
            } else if s.len() > 2 && s.starts_with('-') && !s.starts_with("--") {
                let name = s[1..].split('=').next().unwrap_or("");
                if name.len() > 1 && (table.iter().any(|f| f.long == name) || name == "help") {
                    norm.push(OsString::from(format!("-{s}")));
                    continue;
                }
            }
        }
        norm.push(a);
    }

    let mut out = Args::default();
    let mut p = lexopt::Parser::from_args(norm);
    loop {
        if let Some(max) = max_positionals {
            if out.positionals.len() >= max {
                // The command to run starts here: nothing after is ours.
                let mut raw: Vec<String> = Vec::new();
                if let Ok(r) = p.raw_args() {
                    for a in r {
                        raw.push(to_string(a)?);
                    }
                }
                if raw.first().map(String::as_str) == Some("--") {
                    raw.remove(0);
                }
                out.rest = raw;
                break;
            }
        }
        let arg = match p.next() {
            Ok(Some(a)) => a,
            Ok(None) => break,
            Err(e) => bail!("{e}"),
        };
        use lexopt::Arg;
        let (found, shown) = match &arg {
            Arg::Long(name) => {
                if *name == "help" {
                    out.help = true;
                    continue;
                }
                (table.iter().find(|f| f.long == *name), format!("-{name}"))
            }
            Arg::Short(c) => {
                if *c == 'h' && !table.iter().any(|f| f.short == Some('h')) {
                    out.help = true;
                    continue;
                }
                (table.iter().find(|f| f.short == Some(*c)), format!("{c}"))
            }
            Arg::Value(v) => {
                out.positionals.push(to_string(v.clone())?);
                continue;
            }
        };
        let Some(f) = found else {
            bail!("flag provided but not defined: -{shown}");
        };
        if f.takes_value {
            let v = match p.value() {
                Ok(v) => to_string(v)?,
                Err(_) => bail!("flag needs an argument: --{}", f.long),
            };
            out.values.push((f.long, v));
        } else {
            // docker: `-it` is -i and -t, never -i=t.
            let clustered = !single_dash_long && matches!(arg, Arg::Short(_));
            let v = match if clustered { None } else { p.optional_value() } {
                Some(v) => parse_bool(f.long, &to_string(v)?)?,
                None => "true",
            };
            out.values.push((f.long, v.to_string()));
        }
    }
    if out.help {
        out.table = table.to_vec();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &[Flag] = &[
        val("bundle", Some('b'), "DIR", "the bundle"),
        val("pid-file", None, "FILE", "write the pid here"),
        flag("detach", Some('d'), "detach"),
        val("env", Some('e'), "K=V", "set a variable"),
    ];

    fn a(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn runc_habits() {
        let r = parse(a(&["id", "-bundle", "/b", "--pid-file=/p", "-d"]), T, None).unwrap();
        assert_eq!(r.positionals, vec!["id"]);
        assert_eq!(r.get("bundle"), Some("/b"));
        assert_eq!(r.get("pid-file"), Some("/p"));
        assert!(r.is_set("detach"));
        let r = parse(a(&["--detach=false", "-b", "x", "id"]), T, None).unwrap();
        assert!(!r.is_set("detach"));
        assert_eq!(r.get("bundle"), Some("x"));
        let r = parse(a(&["-e", "A=1", "--env", "B=2", "id"]), T, None).unwrap();
        assert_eq!(r.all("env"), vec!["A=1", "B=2"]);
    }

    #[test]
    fn rest_after_id() {
        let r = parse(a(&["-d", "id", "--", "sh", "-c", "x"]), T, Some(1)).unwrap();
        assert_eq!(r.rest, vec!["sh", "-c", "x"]);
        let r = parse(a(&["id", "ls", "-l"]), T, Some(1)).unwrap();
        assert_eq!(r.rest, vec!["ls", "-l"]);
    }

    #[test]
    fn help_lists_every_flag_on_one_line() {
        let r = parse(a(&["--help"]), T, None).unwrap();
        let h = help_text("usage: x [flags] <id>\n", &r.table);
        let want = [
            "usage: x [flags] <id>",
            "",
            "Flags:",
            "  -b, --bundle DIR     the bundle",
            "      --pid-file FILE  write the pid here",
            "  -d, --detach         detach",
            "  -e, --env K=V        set a variable",
            "  -h, --help           show this help",
            "",
        ];
        assert_eq!(h, want.join("\n"));
    }

    #[test]
    fn docker_style_leaves_the_command_alone() {
        let t: &[Flag] = &[
            val("name", None, "N", "name"),
            flag("tty", Some('t'), "tty"),
        ];
        let r = parse_docker(a(&["-t", "img", "ls", "-name"]), t, Some(1)).unwrap();
        assert!(r.is_set("tty"));
        assert_eq!(r.rest, vec!["ls", "-name"]);
        let t2: &[Flag] = &[
            flag("interactive", Some('i'), "i"),
            flag("tty", Some('t'), "t"),
        ];
        let r = parse_docker(a(&["-it", "img"]), t2, Some(1)).unwrap();
        assert!(r.is_set("interactive") && r.is_set("tty"));
        assert_eq!(r.positionals, vec!["img"]);
    }

    #[test]
    fn errors() {
        assert!(parse(a(&["--nope"]), T, None).is_err());
        assert!(parse(a(&["--bundle"]), T, None).is_err());
        assert!(parse(a(&["--detach=maybe"]), T, None).is_err());
    }
}
