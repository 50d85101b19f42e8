//! Seccomp compile time (issue 3's benchmark figure): podman's default
//! profile (../shared/configs/podman-run.json, or the path given) compiled
//! to BPF, median of many runs. Not a test; run with
//! `cargo bench --bench seccomp_compile [-- CONFIG]`.

use std::time::Instant;

fn main() {
    let path = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_else(|| {
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../shared/configs/podman-run.json"
            )
            .into()
        });
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("seccomp_compile: {path}: {e}");
            std::process::exit(1);
        }
    };
    let spec = match runway::spec::parse(&bytes) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("seccomp_compile: {path}: {e}");
            std::process::exit(1);
        }
    };
    let Some(profile) = spec.linux.as_ref().and_then(|l| l.seccomp.as_ref()) else {
        eprintln!("seccomp_compile: {path}: no linux.seccomp");
        std::process::exit(1);
    };
    let names: usize = profile.syscalls.iter().map(|r| r.names.len()).sum();
    let mut times = Vec::new();
    let mut insns = 0;
    for _ in 0..2000 {
        let t = Instant::now();
        let prog = match runway::seccomp::compile(profile) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("seccomp_compile: {e}");
                std::process::exit(1);
            }
        };
        times.push(t.elapsed().as_nanos());
        insns = prog.insns.len();
    }
    times.sort_unstable();
    let med = times[times.len() / 2];
    let p90 = times[times.len() * 9 / 10];
    println!(
        "seccomp compile: {} rules, {names} syscall names -> {insns} BPF instructions; median {:.1} us, p90 {:.1} us ({} runs)",
        profile.syscalls.len(),
        med as f64 / 1000.0,
        p90 as f64 / 1000.0,
        times.len()
    );
}
