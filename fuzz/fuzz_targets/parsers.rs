//! The small parsers, one input each: the first byte picks the parser,
//! the rest is its input. Not covered: Go durations (no parser in runway
//! yet).
#![no_main]

use libfuzzer_sys::fuzz_target;
use runway::cli::list;
use runway::container::limits;
use runway::container::state::validate_id;
use runway::error::{errno_text, Error};
use runway::linux::{caps, mountinfo, mountopt, rlimit, sched, signal, sync, sysctl};
use runway::spec::{IdMapping, IoPriority, Personality, Resources, Rlimit, Scheduler};
use std::collections::BTreeMap;

fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

fn pieces(s: &str, sep: char) -> Vec<String> {
    s.split(sep).map(str::to_string).collect()
}

fn mount_options(s: &str) {
    let opts = pieces(s, ',');
    let m = mountopt::parse(&opts);
    let _ = m.is_bind();
    for o in &opts {
        let _ = mountopt::propagation(o);
    }
}

fn signal(s: &str) {
    // The real-time forms take a number after the name: reach them
    // directly instead of waiting for the fuzzer to spell the prefixes.
    for v in [s.to_string(), format!("RTMIN+{s}"), format!("SIGRTMAX-{s}")] {
        if let Ok(n) = signal::parse(&v) {
            assert!((1..=64).contains(&n), "signal {v:?} parsed to {n}");
        }
    }
}

fn capabilities(s: &str) {
    if let Some(c) = caps::cap_from_name(s) {
        let name = caps::cap_name(c).expect("a parsed cap has a name");
        assert!(name.eq_ignore_ascii_case(s));
    }
    let _ = caps::parse_set("bounding", &pieces(s, ','));
}

fn rlimits(data: &[u8]) {
    let s = text(data);
    if let Some(r) = rlimit::rlimit_from_name(&s) {
        assert_eq!(rlimit::rlimit_name(r), Some(s.as_str()));
    }
    if let Ok(v) = serde_json::from_slice::<Vec<Rlimit>>(data) {
        if let Ok(limits) = limits::rlimits(&v) {
            assert!(limits.iter().all(|l| l.soft <= l.hard));
        }
    }
}

fn id_mappings(data: &[u8]) {
    let Ok(v) = serde_json::from_slice::<Vec<IdMapping>>(data) else {
        return;
    };
    // What plan::prepare writes to /proc/PID/uid_map.
    let map: String = v
        .iter()
        .map(|e| format!("{} {} {}\n", e.container_id, e.host_id, e.size))
        .collect();
    assert_eq!(map.lines().count(), v.len());
    let again: Vec<IdMapping> =
        serde_json::from_slice(&serde_json::to_vec(&v).expect("encodes")).expect("decodes");
    assert_eq!(v, again);
}

fn resources(data: &[u8]) {
    let Ok(r) = serde_json::from_slice::<Resources>(data) else {
        return;
    };
    let _ = runway::cgroups::plan(Some("/fuzz"), "fuzz", false, Some(&r));
    let _ = runway::cgroups::plan(None, "fuzz", true, Some(&r));
    let again: Resources =
        serde_json::from_slice(&serde_json::to_vec(&r).expect("encodes")).expect("decodes");
    assert_eq!(r, again, "resources change across encode/decode");
}

fn process_knobs(data: &[u8]) {
    let s = text(data);
    let _ = sysctl::classify(&s);
    let _ = sched::policy_from_name(&s);
    let _ = sched::sched_flag_from_name(&s);
    let _ = sched::ioprio_class_from_name(&s);
    if let Ok(v) = serde_json::from_slice::<Scheduler>(data) {
        let _ = limits::scheduler(&v);
    }
    if let Ok(v) = serde_json::from_slice::<IoPriority>(data) {
        let _ = limits::ioprio(&v);
    }
    if let Ok(v) = serde_json::from_slice::<Personality>(data) {
        let _ = limits::personality(&v);
    }
    if let Ok(v) = serde_json::from_slice::<BTreeMap<String, String>>(data) {
        let _ = sysctl::prepare(&v, |k| k.len() % 2 == 0, || Ok(false));
    }
}

fn timestamps(data: &[u8]) {
    let mut b = [0u8; 12];
    for (d, s) in b.iter_mut().zip(data) {
        *d = *s;
    }
    let secs = i64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
    let nanos = u32::from_le_bytes([b[8], b[9], b[10], b[11]]) % 1_000_000_000;
    let a = runway::timefmt::rfc3339(secs);
    let n = runway::timefmt::rfc3339_nano(secs, nanos);
    assert!(a.ends_with('Z') && n.ends_with('Z'));
}

fn list_table(s: &str) {
    let rows: Vec<Vec<String>> = s.lines().map(|l| pieces(l, '\t')).collect();
    let out = list::table(&rows);
    assert_eq!(out.lines().count(), rows.len());
}

fn child_error(data: &[u8]) {
    let _ = sync::decode_error(data);
    let e = Error::msg(text(data));
    let back = sync::decode_error(&sync::encode_error(&e));
    if e.ctx.len() <= 3000 {
        assert_eq!(back.ctx, e.ctx);
    }
    if data.len() >= 4 {
        let _ = errno_text(i32::from_le_bytes([data[0], data[1], data[2], data[3]]));
    }
}

/// Go durations (`events --interval`): never a panic (from_secs_f64 panics
/// on negative or huge values), and what parses is within Go's range and
/// stays the same with an explicit '+'.
fn durations(s: &str) {
    if let Ok(d) = runway::cli::duration::parse(s) {
        assert!(d.as_secs() <= 9_200_000_000, "{s:?} -> {d:?}");
        if !s.starts_with('+') && s != "0" {
            let plus = runway::cli::duration::parse(&format!("+{s}"));
            assert_eq!(plus.ok(), Some(d), "{s:?}");
        }
    }
}

/// A mount table: the line parser (the cgroup view reads through it), the
/// initramfs check and the host pseudo mounts --no-pivot detaches.
fn mount_table(data: &[u8]) {
    let text = text(data);
    for l in text.lines().filter_map(mountinfo::parse_line) {
        assert!(!l.fstype.contains(' ') && !l.id.contains(' '));
    }
    let _ = runway::container::plan::is_initramfs_root(data);
    for p in runway::container::plan::pseudo_mounts_outside(data, std::path::Path::new("/r")) {
        let p = p.to_string_lossy();
        assert!(p != "/r" && !p.starts_with("/r/"), "{p}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    match which % 14 {
        0 => mount_options(&text(rest)),
        1 => signal(&text(rest)),
        2 => capabilities(&text(rest)),
        3 => rlimits(rest),
        4 => id_mappings(rest),
        5 => resources(rest),
        6 => process_knobs(rest),
        7 => timestamps(rest),
        8 => list_table(&text(rest)),
        9 => {
            let _ = validate_id(&text(rest));
        }
        10 => child_error(rest),
        11 => runway::container::list_cache::fuzz_decode(rest),
        12 => mount_table(rest),
        _ => durations(&text(rest)),
    }
});
