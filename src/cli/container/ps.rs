//! `container ps` (also `runway ps` with no id): docker's columns, its
//! human durations, `-a`, `-q`, `--no-trunc` and `--format json`.

use crate::cli::args::{self, flag, val, Flag};
use crate::cli::Global;
use crate::engine::{names, record};
use crate::error::Result;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::Write as _;

pub const FLAGS: &[Flag] = &[
    flag("all", Some('a'), "also stopped and created containers"),
    flag("quiet", Some('q'), "only ids"),
    flag("no-trunc", None, "do not truncate ids and commands"),
    val("format", None, "FORMAT", "table (default) or json"),
    flag("latest", Some('l'), "only the latest created container"),
];

const USAGE: &str = "usage: runway container ps [flags]\n";

/// docker's units.HumanDuration.
pub fn human_duration(secs: i64) -> String {
    let secs = secs.max(0);
    if secs < 1 {
        return "Less than a second".into();
    }
    if secs == 1 {
        return "1 second".into();
    }
    if secs < 60 {
        return format!("{secs} seconds");
    }
    let minutes = secs / 60;
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (secs + 1800) / 3600;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", hours / 24 / 365)
}

fn secs_since(t: &str, now: i64) -> i64 {
    crate::timefmt::parse_rfc3339(t)
        .map(|(s, _)| now - s)
        .unwrap_or(0)
}

/// "Up 3 seconds", "Exited (0) 5 seconds ago", …
pub fn status_text(s: &record::State, now: i64) -> String {
    match s.status {
        record::Status::Created => "Created".into(),
        record::Status::Running => {
            format!("Up {}", human_duration(secs_since(&s.started_at, now)))
        }
        record::Status::Restarting => format!(
            "Restarting ({}) {} ago",
            s.exit_code,
            human_duration(secs_since(&s.finished_at, now))
        ),
        record::Status::Exited => format!(
            "Exited ({}) {} ago",
            s.exit_code,
            human_duration(secs_since(&s.finished_at, now))
        ),
        record::Status::Dead => "Dead".into(),
    }
}

struct Row {
    id: String,
    image: String,
    command: String,
    created_secs: i64,
    created: String,
    status: String,
    state: &'static str,
    name: String,
    labels: String,
    ports: String,
}

fn command_of(r: &record::Brief, no_trunc: bool) -> String {
    let mut c = r.path.clone();
    for a in &r.args {
        c.push(' ');
        c.push_str(a);
    }
    if !no_trunc && c.chars().count() > 20 {
        c = c.chars().take(19).collect::<String>() + "…";
    }
    format!("\"{c}\"")
}

pub fn main(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = args::parse_docker(argv, FLAGS, None)?;
    if crate::cli::help_requested(&a, USAGE) {
        return Ok(0);
    }
    let all = a.is_set("all") || a.is_set("latest");
    let no_trunc = a.is_set("no-trunc");
    let now = crate::timefmt::now().0;
    let mut rows: Vec<Row> = Vec::new();
    let mut buf = Vec::with_capacity(4096);
    let base = crate::engine::names::containers_dir(&g.data_root);
    for id in record::list_ids(&g.data_root) {
        let dir = base.join(&id);
        let s = record::effective_state_with(&dir, &mut buf);
        if !all
            && !matches!(
                s.status,
                record::Status::Running | record::Status::Restarting
            )
        {
            continue;
        }
        let r = if s.brief.name.is_empty() {
            match record::load_brief(&dir, &mut buf) {
                Some(b) => b,
                None => continue,
            }
        } else {
            s.brief.clone()
        };
        let created_secs = crate::timefmt::parse_rfc3339(&r.created)
            .map(|(s, _)| s)
            .unwrap_or(0);
        rows.push(Row {
            id: if no_trunc {
                id.clone()
            } else {
                names::short_id(&id).to_string()
            },
            image: if r.config.image.is_empty() {
                r.rootfs.clone().unwrap_or_default()
            } else {
                r.config.image.clone()
            },
            ports: r
                .ports
                .iter()
                .map(|p| p.display())
                .collect::<Vec<_>>()
                .join(", "),
            command: command_of(&r, no_trunc),
            created_secs,
            created: r.created.clone(),
            status: status_text(&s, now),
            state: s.status.as_str(),
            name: r.name.clone(),
            labels: r
                .config
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(","),
        });
    }
    // Newest first, as docker.
    rows.sort_by(|x, y| y.created.cmp(&x.created));
    if a.is_set("latest") {
        rows.truncate(1);
    }
    let mut out = String::new();
    if a.is_set("quiet") {
        for r in &rows {
            let _ = writeln!(out, "{}", r.id);
        }
    } else if a
        .get("format")
        .is_some_and(|f| f == "json" || f == "{{json .}}")
    {
        for r in &rows {
            let v = serde_json::json!({
                "Command": r.command,
                "CreatedAt": crate::timefmt::rfc3339(r.created_secs),
                "ID": r.id,
                "Image": r.image,
                "Labels": r.labels,
                "Names": r.name,
                "Ports": r.ports,
                "RunningFor": format!("{} ago", human_duration(now - r.created_secs)),
                "State": r.state,
                "Status": r.status,
            });
            let _ = writeln!(out, "{v}");
        }
    } else if let Some(f) = a.get("format").filter(|f| *f != "table") {
        crate::bail!("unsupported --format {f:?}: table or json");
    } else {
        let table: Vec<[String; 7]> = rows
            .iter()
            .map(|r| {
                [
                    r.id.clone(),
                    r.image.clone(),
                    r.command.clone(),
                    format!("{} ago", human_duration(now - r.created_secs)),
                    r.status.clone(),
                    r.ports.clone(),
                    r.name.clone(),
                ]
            })
            .collect();
        let head = [
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "PORTS",
            "NAMES",
        ];
        let mut w = [0usize; 7];
        for (i, h) in head.iter().enumerate() {
            w[i] = h.chars().count();
        }
        for row in &table {
            for (i, c) in row.iter().enumerate() {
                w[i] = w[i].max(c.chars().count());
            }
        }
        let line = |cells: [&str; 7], out: &mut String| {
            for (i, c) in cells.iter().enumerate() {
                if i == 6 {
                    out.push_str(c);
                } else {
                    out.push_str(c);
                    let pad = w[i] + 3 - c.chars().count();
                    out.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push('\n');
        };
        line(head, &mut out);
        for row in &table {
            let cells: [&str; 7] = [
                &row[0], &row[1], &row[2], &row[3], &row[4], &row[5], &row[6],
            ];
            line(cells, &mut out);
        }
    }
    let _ = std::io::stdout().write_all(out.as_bytes());
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_docker_writes_them() {
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(1), "1 second");
        assert_eq!(human_duration(59), "59 seconds");
        assert_eq!(human_duration(60), "About a minute");
        assert_eq!(human_duration(125), "2 minutes");
        assert_eq!(human_duration(3600), "About an hour");
        assert_eq!(human_duration(5 * 3600), "5 hours");
        assert_eq!(human_duration(3 * 86400), "3 days");
        assert_eq!(human_duration(20 * 86400), "2 weeks");
        assert_eq!(human_duration(90 * 86400), "3 months");
        assert_eq!(human_duration(800 * 86400), "2 years");
    }

    #[test]
    fn status_lines() {
        let s = record::State {
            status: record::Status::Exited,
            exit_code: 3,
            finished_at: crate::timefmt::rfc3339(100),
            ..Default::default()
        };
        assert_eq!(status_text(&s, 105), "Exited (3) 5 seconds ago");
        let c = record::State::default();
        assert_eq!(status_text(&c, 0), "Created");
    }
}
