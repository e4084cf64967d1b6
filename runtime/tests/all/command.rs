//! WASI commands (`WasiCommand`, the engine behind `weir-wasi-run`, cargo's target runner for
//! wasm32-wasip1): the exit code is what decides whether `cargo test --target wasm32-wasip1`
//! passes, so every way a command ends must map to the right one.

use weir_runtime::{CommandError, WasiCommand};

use crate::wat;

/// A command that exits with `argc + 10 * (length of the first environment entry)`, so one
/// number shows both what the guest was given as arguments and as environment.
const COUNTS: &str = r#"
(module
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $env_sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (drop (call $args_sizes (i32.const 0) (i32.const 4)))
    (drop (call $env_sizes (i32.const 8) (i32.const 12)))
    (call $exit (i32.add (i32.load (i32.const 0)) (i32.mul (i32.const 10) (i32.load (i32.const 12))))))
)"#;

#[test]
fn returning_from_start_is_exit_code_zero() {
    let module = wat(r#"(module (memory (export "memory") 1) (func (export "_start")))"#);
    assert_eq!(WasiCommand::new().run(&module).unwrap(), 0);
}

#[test]
fn proc_exit_code_is_the_exit_code() {
    // 101 is what libtest exits with when a test fails.
    let module = wat(r#"(module
          (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          (memory (export "memory") 1)
          (func (export "_start") (call $exit (i32.const 101))))"#);
    assert_eq!(WasiCommand::new().run(&module).unwrap(), 101);
}

#[test]
fn arguments_and_environment_reach_the_guest() {
    let module = wat(COUNTS);
    // argc 3; the environment's one entry is "K=vv" plus its NUL: 5 bytes.
    let code = WasiCommand::new()
        .arg("prog")
        .arg("--list")
        .arg("x")
        .env("K", "vv")
        .run(&module)
        .unwrap();
    assert_eq!(code, 3 + 10 * 5);
    assert_eq!(WasiCommand::new().run(&module).unwrap(), 0);
}

#[test]
fn a_trap_is_an_error_not_an_exit_code() {
    // A Rust test binary built with panic=abort ends a failed assertion this way.
    let module =
        wat(r#"(module (memory (export "memory") 1) (func (export "_start") unreachable))"#);
    match WasiCommand::new().run(&module) {
        Err(CommandError::Trap(message)) => assert!(message.contains("unreachable"), "{message}"),
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[test]
fn a_module_without_start_is_not_a_command() {
    let module = wat(
        r#"(module (memory (export "memory") 1) (func (export "proxy_on_memory_allocate") (param i32) (result i32) i32.const 0))"#,
    );
    assert!(matches!(
        WasiCommand::new().run(&module),
        Err(CommandError::NotACommand)
    ));
}

#[test]
fn garbage_is_a_load_error() {
    assert!(matches!(
        WasiCommand::new().run(b"\0asm\x01\0\0\0garbage"),
        Err(CommandError::Load(_))
    ));
}
