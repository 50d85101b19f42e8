//! config.json bytes -> everything the parent works out before clone3:
//! parse, validate, mount options, security plan, seccomp, cgroup plan and
//! the whole `plan::prepare` against a scratch bundle. Errors are fine;
//! panics are bugs. A compiled seccomp filter must also be one the kernel
//! accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use runway::container::plan::{self, NS_ORDER};
use runway::container::security;
use runway::linux::mountopt;
use runway::seccomp::{self, interp};

fuzz_target!(|data: &[u8]| {
    let Ok(mut spec) = runway::spec::parse(data) else {
        return;
    };
    let _ = runway::spec::validate::validate(&spec);

    for m in &spec.mounts {
        let _ = mountopt::parse(m.options.as_deref().unwrap_or(&[]));
    }
    let linux = spec.linux.clone().unwrap_or_default();
    if let Some(p) = linux.rootfs_propagation.as_deref() {
        let _ = mountopt::propagation(p);
    }
    let ns_types: Vec<&'static str> = NS_ORDER
        .iter()
        .filter(|(t, _)| linux.namespaces.iter().any(|n| n.typ == *t))
        .map(|(t, _)| *t)
        .collect();
    let _ = security::prepare(&spec, &ns_types);

    if let Some(s) = &linux.seccomp {
        let compiled = seccomp::compile(s);
        let parsed = seccomp::model::Profile::parse(s);
        match (&compiled, &parsed) {
            (Ok(prog), Ok(_)) => {
                if let Err(e) = interp::validate(&prog.insns) {
                    panic!("seccomp::compile produced a program the kernel refuses: {e}");
                }
            }
            // compile refuses over-long programs the model accepts.
            (Err(_), Ok(_)) => {}
            (Err(_), Err(_)) => {}
            (Ok(_), Err(e)) => panic!("compile accepted a profile the model refuses: {e}"),
        }
    }
    let _ = runway::cgroups::plan(
        linux.cgroups_path.as_deref(),
        "fuzz",
        false,
        linux.resources.as_ref(),
    );

    runway_fuzz::defuse_namespace_paths(&mut spec);
    let _ = plan::prepare(
        &spec,
        &plan::Options {
            bundle: runway_fuzz::bundle(),
            no_pivot: false,
            no_new_keyring: false,
            preserve_fds: 0,
        },
    );
});
