//! Pretty JSON as serde_json's PrettyFormatter writes it, made from the
//! compact form. Every type the binary prints pretty is also serialized
//! compactly somewhere; re-indenting the bytes saves a second (pretty)
//! copy of each type's serializer, tens of KiB of the static binary.

/// Re-indent compact JSON (serde_json's `to_vec` output: no whitespace
/// outside strings) with `indent` per level, byte for byte what
/// `PrettyFormatter::with_indent(indent)` produces.
pub fn pretty(compact: &[u8], indent: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(compact.len() * 2);
    let mut level = 0usize;
    let mut in_str = false;
    let mut escaped = false;
    let newline = |out: &mut Vec<u8>, level: usize| {
        out.push(b'\n');
        for _ in 0..level {
            out.extend_from_slice(indent);
        }
    };
    let mut i = 0;
    while let Some(&c) = compact.get(i) {
        i += 1;
        if in_str {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == b'\\' {
                escaped = true;
            } else if c == b'"' {
                in_str = false;
            }
            continue;
        }
        match c {
            b'"' => {
                in_str = true;
                out.push(c);
            }
            b'{' | b'[' => {
                out.push(c);
                // Empty containers stay on one line: `{}`, `[]`.
                match compact.get(i) {
                    Some(b'}' | b']') => {}
                    _ => {
                        level += 1;
                        newline(&mut out, level);
                    }
                }
            }
            b'}' | b']' => {
                if !matches!(out.last(), Some(b'{' | b'[')) {
                    level = level.saturating_sub(1);
                    newline(&mut out, level);
                }
                out.push(c);
            }
            b',' => {
                out.push(c);
                newline(&mut out, level);
            }
            b':' => out.extend_from_slice(b": "),
            _ => out.push(c),
        }
    }
    out
}

/// `serde_json::to_vec_pretty` without its code: compact, then re-indented.
pub fn to_vec_pretty<T: serde::Serialize + ?Sized>(v: &T) -> serde_json::Result<Vec<u8>> {
    Ok(pretty(&serde_json::to_vec(v)?, b"  "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_as_serde_pretty() {
        let v = serde_json::json!({
            "a": [], "b": {}, "c": [1, {"d": "x,y:{}[]\"\\"}, [[]], [{}]],
            "e": null, "f": -1.5e10, "g": {"h": {"i": [true, false]}}, "u": "é\u{1}"
        });
        for ind in [&b"  "[..], b"\t", b""] {
            let mut want = Vec::new();
            let fmt = serde_json::ser::PrettyFormatter::with_indent(ind);
            let mut ser = serde_json::Serializer::with_formatter(&mut want, fmt);
            serde::Serialize::serialize(&v, &mut ser).unwrap();
            let got = pretty(&serde_json::to_vec(&v).unwrap(), ind);
            assert_eq!(
                String::from_utf8(got).unwrap(),
                String::from_utf8(want).unwrap()
            );
        }
        assert_eq!(pretty(b"[]", b"  "), b"[]");
        assert_eq!(pretty(b"\"a\"", b"  "), b"\"a\"");
    }
}
