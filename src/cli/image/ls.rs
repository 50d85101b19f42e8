//! `runway image ls` (alias `runway images`): docker's columns and words.

use crate::bail;
use crate::cli::args::{self, flag, val, Flag};
use crate::cli::Global;
use crate::error::{Error, Result};
use crate::image::reference::Reference;
use crate::image::store::{ImageRecord, Store};
use std::ffi::OsString;
use std::io::Write;

const USAGE: &str = "usage: runway image ls [flags]

List the images in the store (--data-root).
";

pub const FLAGS: &[Flag] = &[
    flag(
        "all",
        Some('a'),
        "show all images (accepted; there are no intermediate images)",
    ),
    flag("quiet", Some('q'), "print image IDs only"),
    flag("digests", None, "show repo digests"),
    flag("no-trunc", None, "do not truncate image IDs"),
    val(
        "format",
        None,
        "FORMAT",
        "table or json (one JSON object per line)",
    ),
];

/// One row: an image under one of its names.
struct Row {
    repo: String,
    tag: String,
    digest: String,
    id: String,
    created: Option<i64>,
    created_raw: String,
    size: u64,
}

/// docker's tabwriter (minwidth 10, padding 3): every column but the last
/// padded to max(10, widest + 3).
pub fn table(rows: &[Vec<String>]) -> String {
    let width = |s: &str| s.chars().count();
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; cols];
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(width(c));
        }
    }
    let mut out = String::new();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            out.push_str(c);
            if i + 1 < r.len() {
                let pad = (widths[i] + 3).max(10) - width(c);
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    }
    out
}

/// Seconds since the epoch of an RFC 3339 time ("2024-01-02T03:04:05.5Z",
/// "…+01:00").
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    crate::timefmt::parse_rfc3339(s).map(|(secs, _)| secs)
}

/// docker's units.HumanDuration.
pub fn human_duration(secs: i64) -> String {
    let s = secs.max(0);
    if s < 1 {
        return "Less than a second".into();
    }
    if s == 1 {
        return "1 second".into();
    }
    if s < 60 {
        return format!("{s} seconds");
    }
    let m = s / 60;
    if m == 1 {
        return "About a minute".into();
    }
    if m < 60 {
        return format!("{m} minutes");
    }
    let h = (s + 1800) / 3600;
    if h == 1 {
        return "About an hour".into();
    }
    if h < 48 {
        return format!("{h} hours");
    }
    if h < 24 * 7 * 2 {
        return format!("{} days", h / 24);
    }
    if h < 24 * 30 * 2 {
        return format!("{} weeks", h / 24 / 7);
    }
    if h < 24 * 365 * 2 {
        return format!("{} months", h / 24 / 30);
    }
    format!("{} years", s / 3600 / 24 / 365)
}

pub use crate::image::human_size;

/// "2024-01-02 03:04:05 +0000 UTC", as docker's CreatedAt.
fn created_at(secs: i64) -> String {
    let r = crate::timefmt::rfc3339(secs);
    format!("{} {} +0000 UTC", &r[..10], &r[11..19])
}

/// (repository, tag) of a full ref name, familiar as docker shows it.
fn repo_tag(name: &str) -> (String, String) {
    match Reference::parse(name) {
        Ok(r) => (
            r.familiar_name(),
            r.tag.clone().unwrap_or_else(|| "<none>".into()),
        ),
        Err(_) => (name.to_string(), "<none>".into()),
    }
}

fn rows(store: &Store, images: &[ImageRecord], no_trunc: bool) -> Vec<Row> {
    let mut out = Vec::new();
    for r in images {
        let cfg = store.config(r).ok();
        let created_raw = cfg
            .as_ref()
            .and_then(|c| c.created.clone())
            .unwrap_or_default();
        let created = parse_rfc3339(&created_raw);
        let size = cfg.as_ref().map_or(0, |c| store.image_size(r, c));
        let id = if no_trunc {
            r.id.to_string()
        } else {
            r.short_id().to_string()
        };
        // The repo digest for a repository, "<none>" if it has none.
        let digest_for = |repo_full: &str| -> String {
            r.repo_digests
                .iter()
                .find_map(|d| {
                    let (n, dg) = d.split_once('@')?;
                    (n == repo_full).then(|| dg.to_string())
                })
                .unwrap_or_else(|| "<none>".into())
        };
        let mut named: Vec<(String, String, String)> = Vec::new();
        for n in &r.names {
            let (repo, tag) = repo_tag(n);
            let full = Reference::parse(n).map(|x| x.name()).unwrap_or_default();
            named.push((repo, tag, digest_for(&full)));
        }
        if named.is_empty() {
            // Dangling, or known by a repo digest only.
            match r.repo_digests.first().and_then(|d| d.split_once('@')) {
                Some((n, dg)) => {
                    let repo = Reference::parse(n)
                        .map(|x| x.familiar_name())
                        .unwrap_or_else(|_| n.to_string());
                    named.push((repo, "<none>".into(), dg.to_string()));
                }
                None => named.push(("<none>".into(), "<none>".into(), "<none>".into())),
            }
        }
        for (repo, tag, digest) in named {
            out.push(Row {
                repo,
                tag,
                digest,
                id: id.clone(),
                created,
                created_raw: created_raw.clone(),
                size,
            });
        }
    }
    // docker: newest first; then by name.
    out.sort_by(|a, b| {
        b.created
            .cmp(&a.created)
            .then_with(|| a.repo.cmp(&b.repo))
            .then_with(|| a.tag.cmp(&b.tag))
    });
    out
}

pub fn main(g: &Global, argv: Vec<OsString>) -> Result<i32> {
    let a = args::parse(argv, FLAGS, None)?;
    if crate::cli::help_requested(&a, USAGE) {
        return Ok(0);
    }
    if a.positionals.len() > 1 {
        bail!(
            "image ls takes at most one argument (a repository), got {:?}",
            a.positionals
        );
    }
    let format = a.get("format").unwrap_or("table");
    if format != "table" && format != "json" {
        bail!("invalid format {format:?}: table or json");
    }
    let store = Store::open(&g.data_root)?;
    let mut images = store.images()?;
    // `image ls REPOSITORY[:TAG]`, as docker: only that repository.
    let filter = a
        .positionals
        .first()
        .map(|p| Reference::parse(p))
        .transpose()?;
    let explicit_tag = a
        .positionals
        .first()
        .is_some_and(|p| p.rsplit_once(':').is_some_and(|(_, t)| !t.contains('/')));
    if let Some(f) = &filter {
        images.retain_mut(|r| {
            r.names.retain(|n| {
                Reference::parse(n)
                    .is_ok_and(|x| x.name() == f.name() && (!explicit_tag || x.tag == f.tag))
            });
            !r.names.is_empty()
        });
    }
    let rows = rows(&store, &images, a.is_set("no-trunc"));
    let now = crate::timefmt::now().0;
    let mut out = String::new();
    if a.is_set("quiet") {
        for r in &rows {
            out.push_str(&r.id);
            out.push('\n');
        }
    } else if format == "json" {
        for r in &rows {
            let since = r.created.map_or("N/A".to_string(), |c| {
                format!("{} ago", human_duration(now - c))
            });
            let v = serde_json::json!({
                "Containers": "N/A",
                "CreatedAt": r.created.map_or(r.created_raw.clone(), created_at),
                "CreatedSince": since,
                "Digest": r.digest,
                "ID": r.id,
                "Repository": r.repo,
                "SharedSize": "N/A",
                "Size": human_size(r.size),
                "Tag": r.tag,
                "UniqueSize": "N/A",
                "VirtualSize": human_size(r.size),
            });
            let s = serde_json::to_string(&v).map_err(|e| Error::msg(format!("encode: {e}")))?;
            out.push_str(&s);
            out.push('\n');
        }
    } else {
        let mut t: Vec<Vec<String>> = Vec::new();
        let mut head = vec!["REPOSITORY".to_string(), "TAG".into()];
        if a.is_set("digests") {
            head.push("DIGEST".into());
        }
        head.extend(["IMAGE ID".into(), "CREATED".into(), "SIZE".into()]);
        t.push(head);
        for r in &rows {
            let mut row = vec![r.repo.clone(), r.tag.clone()];
            if a.is_set("digests") {
                row.push(r.digest.clone());
            }
            row.push(r.id.clone());
            row.push(r.created.map_or("N/A".to_string(), |c| {
                format!("{} ago", human_duration(now - c))
            }));
            row.push(human_size(r.size));
            t.push(row);
        }
        out = table(&t);
    }
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humanised_like_docker() {
        assert_eq!(human_size(0), "0B");
        assert_eq!(human_size(512), "512B");
        assert_eq!(human_size(4_261_550), "4.26MB");
        assert_eq!(human_size(12_300_000), "12.3MB");
        assert_eq!(human_size(1_000), "1kB");
        assert_eq!(human_size(1_500), "1.5kB");
        assert_eq!(human_size(123_456_789), "123MB");
        assert_eq!(human_duration(0), "Less than a second");
        assert_eq!(human_duration(30), "30 seconds");
        assert_eq!(human_duration(90), "About a minute");
        assert_eq!(human_duration(7200), "2 hours");
        assert_eq!(human_duration(3 * 86_400), "3 days");
        assert_eq!(human_duration(20 * 86_400), "2 weeks");
        assert_eq!(human_duration(100 * 86_400), "3 months");
        assert_eq!(human_duration(800 * 86_400), "2 years");
    }

    #[test]
    fn rfc3339_parses() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2000-02-29T00:00:00.123456789Z"),
            Some(951_782_400)
        );
        assert_eq!(
            parse_rfc3339("2000-02-29T01:00:00+01:00"),
            Some(951_782_400)
        );
        assert_eq!(parse_rfc3339("nope"), None);
    }

    #[test]
    fn table_pads_like_docker() {
        let t = table(&[
            vec!["REPOSITORY".into(), "TAG".into(), "IMAGE ID".into()],
            vec!["busybox".into(), "latest".into(), "0123456789ab".into()],
        ]);
        assert_eq!(
            t,
            "REPOSITORY   TAG       IMAGE ID\nbusybox      latest    0123456789ab\n"
        );
    }
}
