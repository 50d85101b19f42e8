//! One line of /proc/<pid>/mountinfo, split into the fields runway reads.
//! Pure text parsing (tested and fuzzed without a host): the cgroup view
//! and the initramfs check both read mount tables through it.

/// The fields of one mountinfo line, paths unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line<'a> {
    pub id: &'a str,
    pub parent: &'a str,
    /// The path inside the filesystem that is mounted here.
    pub root: String,
    /// Where it is mounted.
    pub point: String,
    /// Per-mount options ("rw,nosuid,...").
    pub options: &'a str,
    pub fstype: &'a str,
    /// Per-superblock options (for v1 cgroups, the controllers).
    pub super_options: &'a str,
}

/// The line's fields, or None when it is not a whole mountinfo line (at
/// least six fields, then "-", fs type, source, super options).
pub fn parse_line(line: &str) -> Option<Line<'_>> {
    let f: Vec<&str> = line.split(' ').collect();
    let sep = f.iter().position(|x| *x == "-")?;
    if sep < 6 || f.len() < sep + 4 {
        return None;
    }
    Some(Line {
        id: f[0],
        parent: f[1],
        root: unescape(f[3]),
        point: unescape(f[4]),
        options: f[5],
        fstype: f[sep + 1],
        super_options: f[sep + 3],
    })
}

/// Undo the octal escapes mountinfo uses for space, tab, newline and
/// backslash (`\040`); anything else stays as it is.
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            let oct = &b[i + 1..i + 4];
            if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                let v = u32::from(oct[0] - b'0') * 64
                    + u32::from(oct[1] - b'0') * 8
                    + u32::from(oct[2] - b'0');
                if let Ok(byte) = u8::try_from(v) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_splits_into_its_fields() {
        let l = parse_line(
            "36 35 98:0 /mnt1 /mnt\\040two rw,noatime master:1 - ext3 /dev/root rw,errors=continue",
        )
        .unwrap();
        assert_eq!((l.id, l.parent), ("36", "35"));
        assert_eq!((l.root.as_str(), l.point.as_str()), ("/mnt1", "/mnt two"));
        assert_eq!((l.options, l.fstype), ("rw,noatime", "ext3"));
        assert_eq!(l.super_options, "rw,errors=continue");
        assert_eq!(parse_line("1 2 0:1 / /x rw - proc"), None);
        assert_eq!(parse_line("1 2 / /x - proc proc rw"), None);
        assert_eq!(parse_line(""), None);
    }

    #[test]
    fn escapes_are_undone_only_when_whole() {
        assert_eq!(unescape("a\\011b\\134c"), "a\tb\\c");
        assert_eq!(unescape("\\777"), "\\777");
        assert_eq!(unescape("x\\04"), "x\\04");
    }
}
