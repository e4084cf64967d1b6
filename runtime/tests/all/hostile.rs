//! Malformed modules and hostile guests: errors and status codes, never a host crash.

use weir_runtime::{LoadError, Plugin, Request, StartError};

use crate::wat;

/// A minimal proxy-wasm guest: `body` runs in `proxy_on_request_headers`. Helpers: `$log`
/// logs memory[ptr..ptr+len]; `$report` logs one status digit ('0' + status).
fn guest(extra_imports: &str, body: &str) -> Vec<u8> {
    wat(&format!(
        r#"(module
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  {extra_imports}
  (memory (export "memory") 1)
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 4096))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func $report (param $status i32)
    (i32.store8 (i32.const 100) (i32.add (i32.const 48) (local.get $status)))
    (drop (call $log (i32.const 2) (i32.const 100) (i32.const 1))))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    {body}
    (i32.const 0)))"#
    ))
}

fn reports(wasm: Vec<u8>) -> Vec<String> {
    let plugin = Plugin::from_bytes(wasm).start().unwrap();
    let out = plugin.http().request(Request::get("/")).run();
    assert!(out.trap().is_none(), "{:?}", out.trap());
    out.logs().iter().map(|l| l.message.clone()).collect()
}

#[test]
fn out_of_bounds_pointers_and_sizes_are_invalid_memory_access() {
    let imports = r#"
      (import "env" "proxy_get_header_map_value" (func $get (param i32 i32 i32 i32 i32) (result i32)))
      (import "env" "proxy_set_buffer_bytes" (func $set_buf (param i32 i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
      (data (i32.const 200) ":path")"#;
    let body = r#"
      (call $report (call $log (i32.const 2) (i32.const 0xfffffff0) (i32.const 100)))
      (call $report (call $log (i32.const 2) (i32.const 0) (i32.const 0xffffffff)))
      (call $report (call $get (i32.const 0) (i32.const 0xffffff00) (i32.const 5) (i32.const 300) (i32.const 304)))
      (call $report (call $get (i32.const 0) (i32.const 200) (i32.const 5) (i32.const 0xfffffffe) (i32.const 304)))
      (call $report (call $set_buf (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 65530) (i32.const 100)))
      ;; iovec pointing outside memory: WASI EFAULT (21) as two digits is not a digit, so
      ;; subtract 15 to report it as '6'.
      (i32.store (i32.const 400) (i32.const 0xfffffff0))
      (i32.store (i32.const 404) (i32.const 64))
      (call $report (i32.sub (call $fd_write (i32.const 1) (i32.const 400) (i32.const 1) (i32.const 408)) (i32.const 15)))"#;
    assert_eq!(reports(guest(imports, body)), vec!["6"; 6]);
}

#[test]
fn unknown_enum_values_are_bad_argument() {
    let imports = r#"
      (import "env" "proxy_get_header_map_pairs" (func $pairs (param i32 i32 i32) (result i32)))
      (import "env" "proxy_get_buffer_bytes" (func $buf (param i32 i32 i32 i32 i32) (result i32)))
      (import "env" "proxy_continue_stream" (func $cont (param i32) (result i32)))
      (import "env" "proxy_define_metric" (func $metric (param i32 i32 i32 i32) (result i32)))"#;
    let body = r#"
      (call $report (call $log (i32.const 42) (i32.const 0) (i32.const 1)))
      (call $report (call $pairs (i32.const 99) (i32.const 300) (i32.const 304)))
      (call $report (call $buf (i32.const 77) (i32.const 0) (i32.const 10) (i32.const 300) (i32.const 304)))
      (call $report (call $cont (i32.const 9)))
      (call $report (call $metric (i32.const 5) (i32.const 0) (i32.const 1) (i32.const 300)))"#;
    assert_eq!(reports(guest(imports, body)), vec!["2"; 5]);
}

#[test]
fn allocator_returning_a_wild_pointer_is_invalid_memory_access() {
    let wasm = wat(r#"(module
      (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
      (import "env" "proxy_get_header_map_pairs" (func $pairs (param i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (func (export "proxy_abi_version_0_2_1"))
      (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 0xffffff00))
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
        (i32.store8 (i32.const 100) (i32.add (i32.const 48) (call $pairs (i32.const 0) (i32.const 300) (i32.const 304))))
        (drop (call $log (i32.const 2) (i32.const 100) (i32.const 1)))
        (i32.const 0)))"#);
    assert_eq!(reports(wasm), vec!["6"]);
}

#[test]
fn trapping_allocator_is_a_trap_not_a_host_crash() {
    let wasm = wat(r#"(module
      (import "env" "proxy_get_header_map_pairs" (func $pairs (param i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (func (export "proxy_abi_version_0_2_1"))
      (func (export "proxy_on_memory_allocate") (param i32) (result i32) unreachable)
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
        (drop (call $pairs (i32.const 0) (i32.const 300) (i32.const 304)))
        (i32.const 0)))"#);
    let plugin = Plugin::from_bytes(wasm).start().unwrap();
    let out = plugin.http().request(Request::get("/")).run();
    let trap = out.trap().expect("trap");
    assert!(trap.message.contains("unreachable"), "{trap}");
    assert!(out.upstream_request().is_none());
}

#[test]
fn guest_asking_for_4_gib_is_refused() {
    // memory.grow to the 4 GiB maximum fails (returns -1) under the memory limit.
    let body = r#"
      (call $report (i32.add (i32.const 1) (memory.grow (i32.const 65535))))"#;
    assert_eq!(reports(guest("", body)), vec!["0"]);
    // A module whose memory starts at 4 GiB cannot be instantiated.
    let huge = wat(
        r#"(module (memory (export "memory") 65536) (func (export "proxy_abi_version_0_2_1")))"#,
    );
    let err = Plugin::from_bytes(huge).start().unwrap_err();
    assert!(matches!(err, StartError::Instantiate(_)), "{err:?}");
}

#[test]
fn infinite_loop_in_start_up_ends_with_an_error() {
    let wasm = wat(r#"(module
      (memory (export "memory") 1)
      (func (export "proxy_abi_version_0_2_1"))
      (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (loop $l (br $l)) (i32.const 1)))"#);
    let err = Plugin::from_bytes(wasm)
        .fuel_limit(10_000_000)
        .start()
        .unwrap_err();
    let StartError::Trap(trap) = err else {
        panic!("expected trap, got {err:?}")
    };
    assert!(trap.out_of_fuel);
    assert_eq!(trap.callback, "proxy_on_vm_start");
}

#[test]
fn malformed_modules_are_load_errors() {
    let err = Plugin::from_bytes(b"not wasm at all".to_vec())
        .start()
        .unwrap_err();
    assert!(
        matches!(err, StartError::Load(LoadError::NotWasm)),
        "{err:?}"
    );

    let mut truncated = wat(r#"(module (func (export "proxy_abi_version_0_2_1")))"#);
    truncated.truncate(truncated.len() - 3);
    let err = Plugin::from_bytes(truncated).start().unwrap_err();
    assert!(
        matches!(err, StartError::Load(LoadError::Compile(_))),
        "{err:?}"
    );

    let garbage = b"\0asm\x01\0\0\0\x01\xff\xff\xff\xff\x0fjunk".to_vec();
    assert!(matches!(
        Plugin::from_bytes(garbage).start(),
        Err(StartError::Load(LoadError::Compile(_)))
    ));

    let err = Plugin::load("/nonexistent/plugin.wasm")
        .start()
        .unwrap_err();
    assert!(
        matches!(err, StartError::Load(LoadError::Read { .. })),
        "{err:?}"
    );
}

#[test]
fn unknown_and_mistyped_imports_are_link_errors() {
    let unknown = wat(
        r#"(module (import "env" "proxy_teleport" (func (param i32) (result i32)))
      (func (export "proxy_abi_version_0_2_1")))"#,
    );
    let err = Plugin::from_bytes(unknown).start().unwrap_err();
    assert!(err.to_string().contains("env.proxy_teleport"), "{err}");

    let mistyped = wat(
        r#"(module (import "env" "proxy_log" (func (param i32) (result i32)))
      (func (export "proxy_abi_version_0_2_1")))"#,
    );
    let err = Plugin::from_bytes(mistyped).start().unwrap_err();
    assert!(
        matches!(err, StartError::Load(LoadError::Link(_))),
        "{err:?}"
    );
}

#[test]
fn module_without_abi_marker_is_rejected() {
    let err = Plugin::from_bytes(wat("(module)")).start().unwrap_err();
    assert!(matches!(err, StartError::NotProxyWasm), "{err:?}");
}

#[test]
fn unimplemented_wasi_imports_link_and_return_enosys() {
    let imports = r#"(import "wasi_snapshot_preview1" "fd_readdir" (func $readdir (param i32 i32 i32 i64 i32) (result i32)))"#;
    // ENOSYS is 52: report 52 - 46 = 6.
    let body = r#"(call $report (i32.sub (call $readdir (i32.const 3) (i32.const 0) (i32.const 0) (i64.const 0) (i32.const 0)) (i32.const 46)))"#;
    assert_eq!(reports(guest(imports, body)), vec!["6"]);
}

#[test]
fn proc_exit_is_a_trap() {
    let imports = r#"(import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))"#;
    let plugin = Plugin::from_bytes(guest(imports, "(call $exit (i32.const 3))"))
        .start()
        .unwrap();
    let out = plugin.http().request(Request::get("/")).run();
    assert!(
        out.trap().unwrap().message.contains("proc_exit(3)"),
        "{:?}",
        out.trap()
    );
}

#[test]
fn log_flood_is_capped_and_stopped_by_fuel() {
    let body = r#"(loop $l (drop (call $log (i32.const 2) (i32.const 0) (i32.const 8))) (br $l))"#;
    let plugin = Plugin::from_bytes(guest("", body))
        .fuel_limit(2_000_000)
        .start()
        .unwrap();
    let out = plugin.http().request(Request::get("/")).run();
    assert!(out.trap().is_some_and(|t| t.out_of_fuel));
    assert_eq!(out.logs().len(), 100_000, "logs kept per VM are capped");
}
