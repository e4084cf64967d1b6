//! `weir-wasi-run MODULE.wasm [ARGS...]`: runs a WASI preview1 command in weir-runtime and
//! exits with its exit code. It is cargo's target runner for wasm32-wasip1 in this
//! repository (`.cargo/config.toml`), so `cargo test -p weir-sdk --target wasm32-wasip1` runs
//! the SDK's unit tests inside Wasm, with the proxy-wasm host functions linked.
//!
//! The guest sees `argv[0]` (the module's file name) and ARGS, and the host's `RUST_*`
//! environment variables (`RUST_TEST_THREADS`, `RUST_BACKTRACE`, …); nothing else of the
//! host.

use std::path::Path;
use std::process::ExitCode;

use weir_runtime::WasiCommand;

/// What the shell reports for a process killed by SIGABRT: a trap is how a Rust guest
/// built with `panic = "abort"` (every wasm32-wasip1 test binary) ends on a panic.
const TRAP_EXIT: u8 = 134;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let Some(module) = args.next() else {
        eprintln!("usage: weir-wasi-run MODULE.wasm [ARGS...]");
        return ExitCode::from(2);
    };
    let path = Path::new(&module);
    let wasm = match std::fs::read(path) {
        Ok(wasm) => wasm,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", path.display());
            return ExitCode::from(2);
        }
    };
    let name = path.file_name().map_or_else(
        || module.to_string_lossy().into_owned(),
        |n| n.to_string_lossy().into_owned(),
    );
    let mut command = WasiCommand::new().arg(name);
    for arg in args {
        command = command.arg(arg.to_string_lossy().into_owned());
    }
    for (key, value) in std::env::vars().filter(|(key, _)| key.starts_with("RUST_")) {
        command = command.env(key, value);
    }
    match command.run(&wasm) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(u8::MAX)),
        Err(e) => {
            eprintln!("error: {}: {e}", path.display());
            ExitCode::from(TRAP_EXIT)
        }
    }
}
