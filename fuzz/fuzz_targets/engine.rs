//! The container porcelain's parsers, one input each: the first byte
//! picks the parser, the rest is its input. `-v` specs, `-p` ports,
//! `--add-host`, restart policies, `import --change` lines, log options and records, names,
//! the on-disk record and state (read back after any crash or edit), and
//! docker's Entrypoint/Cmd rules on a fuzzed image config: none may
//! panic, and what parses must make sense.
#![no_main]

use libfuzzer_sys::fuzz_target;
use runway::engine::{create, logs, names, record, spec, volumes};

fn volume(s: &str) {
    if let Ok(v) = volumes::parse_spec(s) {
        let d = v.destination();
        assert!(d.starts_with('/') && d != "/", "{s:?} gave destination {d:?}");
    }
}

fn restart(s: &str) {
    if let Ok(p) = create::parse_restart(s) {
        assert!(["no", "on-failure", "always", "unless-stopped"].contains(&p.name.as_str()));
        assert!(p.maximum_retry_count == 0 || p.name == "on-failure");
    }
}

fn change(s: &str) {
    let mut cfg = serde_json::json!({});
    if runway::image::import::apply_change(&mut cfg, s).is_ok() {
        // What --change wrote must be a config the image parser reads.
        let c = serde_json::json!({"config": cfg, "rootfs": {"type": "layers", "diff_ids": []}});
        let bytes = serde_json::to_vec(&c).expect("encode");
        runway::image::types::parse_config(&bytes).expect("a changed config parses");
    }
}

fn log_opts(s: &str) {
    let opts: Vec<&str> = s.split(',').collect();
    let _ = logs::parse_log_opts(&opts);
    let _ = logs::parse_size(s);
    let _ = logs::parse_tail(s);
}

fn on_disk(data: &[u8]) {
    let _ = serde_json::from_slice::<record::Record>(data);
    let _ = serde_json::from_slice::<record::State>(data);
    let _ = serde_json::from_slice::<record::Brief>(data);
    let _ = logs::parse_line(data);
}

fn name(s: &str) {
    // docker accepts a leading '/'; what comes back is a plain file name.
    if let Ok(n) = names::validate(s) {
        assert!(!n.is_empty() && !n.contains('/') && n != "." && n != "..");
    }
}

fn command(data: &[u8]) {
    // The input: an image's `config` object, then after a NUL the words
    // after the image, then the entrypoint override.
    let mut parts = data.splitn(3, |b| *b == 0);
    let cfg = parts.next().unwrap_or(&[]);
    let args = String::from_utf8_lossy(parts.next().unwrap_or(&[])).into_owned();
    let ep = parts.next().map(|e| String::from_utf8_lossy(e).into_owned());
    let Ok(image) = serde_json::from_slice::<runway::image::types::ContainerConfig>(cfg) else {
        return;
    };
    let opts = spec::RunOpts {
        args: args.split_whitespace().map(str::to_string).collect(),
        entrypoint: ep,
        ..Default::default()
    };
    if let Ok(argv) = spec::command(&image, &opts) {
        assert!(!argv.is_empty(), "an empty command was accepted");
    }
}

fn port(s: &str) {
    if let Ok(p) = runway::net::ports::Spec::parse(s) {
        assert!(p.ctr_port > 0, "port 0 accepted from {s:?}");
        assert!(p.host_port != Some(0), "host port 0 accepted from {s:?}");
    }
}

fn add_host(s: &str) {
    if let Ok((h, ip)) = runway::engine::network::parse_add_host(s) {
        assert!(!h.is_empty() && !h.contains(char::is_whitespace), "{s:?}");
        assert!(ip == "host-gateway" || ip.parse::<std::net::IpAddr>().is_ok());
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else { return };
    let s = String::from_utf8_lossy(rest);
    match which % 9 {
        0 => volume(&s),
        1 => restart(&s),
        2 => change(&s),
        3 => log_opts(&s),
        4 => on_disk(rest),
        5 => name(&s),
        6 => port(&s),
        7 => add_host(&s),
        _ => command(rest),
    }
});
