//! How a stream ends: `proxy_done` statuses, a stream answering false to `proxy_on_done`,
//! and what `on_log` reads of header maps that do not exist. Envoy's side of the first
//! two was read in proxy-wasm-cpp-host (`WasmBase::done`, `ContextBase::onDone`) and in
//! Envoy's `Context::onDestroy`; the fidelity suite's SDK guest cannot call `proxy_done`
//! from a stream without panicking on the status, so these are runtime tests.

use weir_runtime::{Plugin, Request, Response};

use crate::wat;

/// Every stream calls `proxy_done` in its request headers and logs the status as a digit;
/// streams answer `proxy_on_done` with false; `on_log` logs "log", `on_delete` "delete".
/// The root answers false too, and calls `proxy_done` twice on its tick (two digits).
const GUEST: &str = r#"(module
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_done" (func $done (result i32)))
  (import "env" "proxy_set_tick_period_milliseconds" (func $tick_every (param i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "log")
  (data (i32.const 8) "delete")
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 4096))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
  (func $log_status (param $status i32)
    (i32.store8 (i32.const 100) (i32.add (i32.const 48) (local.get $status)))
    (drop (call $log (i32.const 2) (i32.const 100) (i32.const 1))))
  (func (export "proxy_on_done") (param $context i32) (result i32)
    (if (i32.eq (local.get $context) (i32.const 1))
      (then (drop (call $tick_every (i32.const 10)))))
    (i32.const 0))
  (func (export "proxy_on_tick") (param i32)
    (call $log_status (call $done))
    (call $log_status (call $done)))
  (func (export "proxy_on_log") (param i32)
    (drop (call $log (i32.const 2) (i32.const 0) (i32.const 3))))
  (func (export "proxy_on_delete") (param i32)
    (drop (call $log (i32.const 2) (i32.const 8) (i32.const 6))))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (call $log_status (call $done))
    (i32.const 0)))"#;

fn messages(logs: Vec<weir_runtime::LogEntry>) -> Vec<String> {
    logs.into_iter().map(|l| l.message).collect()
}

#[test]
fn proxy_done_outside_a_shutdown_is_not_found_and_a_stream_is_logged_whatever_on_done_says() {
    let plugin = Plugin::from_bytes(wat(GUEST)).start().unwrap();
    let out = plugin.http().request(Request::get("/")).run();
    // NotFound (1); on_done's false does not hold the stream back from on_log, on_delete.
    assert_eq!(messages(out.logs().to_vec()), ["1", "log", "delete"]);
}

#[test]
fn proxy_done_is_ok_once_while_the_root_finishes_its_shutdown() {
    let plugin = Plugin::from_bytes(wat(GUEST)).start().unwrap();
    plugin.shutdown();
    assert!(!plugin.is_shut_down());
    plugin.advance(std::time::Duration::from_millis(10));
    assert!(plugin.is_shut_down());
    // Ok (0) for the call that finishes the shutdown, NotFound (1) for a second one.
    assert_eq!(messages(plugin.logs()), ["0", "1", "delete"]);
}

#[test]
fn a_client_that_leaves_before_the_response_ends_the_stream_without_response_callbacks() {
    let plugin = crate::probe().start().unwrap();
    let out = plugin
        .http()
        .request(Request::get("/"))
        .response(Response::status(200).body("never sent"))
        .client_disconnects()
        .run();
    assert!(out.response().is_none());
    assert!(out.upstream_request().is_some());
    assert!(!out
        .actions()
        .iter()
        .any(|(phase, _)| *phase == weir_runtime::Phase::ResponseHeaders));
}
