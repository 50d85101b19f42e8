#[global_allocator]
static ALLOC: runway::arena::Arena = runway::arena::Arena::new();

fn main() {
    if cfg!(any(
        feature = "weaken-cve-2019-5736",
        feature = "weaken-cve-2024-21626",
        feature = "weaken-mount-symlink"
    )) && std::env::var_os("RUNWAY_WEAKENED_BUILD").is_none_or(|v| v != "1")
    {
        runway::log::error(
            "this runway build is deliberately vulnerable (a test build): refusing to run",
        );
        std::process::exit(1);
    }
    // `--init`: the binary bind-mounted as /sbin/runway-init is the
    // container's PID 1, not the CLI.
    #[cfg(feature = "full")]
    if let Some(code) = runway::engine::tini::dispatch() {
        std::process::exit(code);
    }
    let argv: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let code = match runway::cli::main(argv) {
        Ok(c) => c,
        Err(e) => {
            runway::log::error(&e.to_string());
            1
        }
    };
    std::process::exit(code);
}
