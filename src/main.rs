fn main() {
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
