//! What the embedding API offers beyond one stream: shutting a plugin down, choosing the worker a
//! stream runs on, Envoy's main-thread VMs, traps in the access-log phase, and trailers a
//! plugin adds at the end of a body. `runtime/FIDELITY.md` says which of these a fidelity
//! scenario pins on Envoy's side.

use std::time::Duration;

use weir_runtime::{Plugin, Request};

use crate::wat;

/// A guest whose callbacks log their names; `imports` and `extra` (functions, data) go
/// inside the module. The root
/// answers `proxy_on_done` with `$done` (1: finished, 0: will call `proxy_done` on its
/// next tick); each VM counts its requests in a global and logs the count.
fn lifecycle_guest(done: u32, imports: &str, extra: &str) -> Vec<u8> {
    wat(&format!(
        r#"(module
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_done" (func $done (result i32)))
  (import "env" "proxy_set_tick_period_milliseconds" (func $tick_every (param i32) (result i32)))
  {imports}
  (memory (export "memory") 1)
  (data (i32.const 0) "done")
  (data (i32.const 8) "delete")
  (data (i32.const 16) "tick")
  (global $requests (mut i32) (i32.const 0))
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 4096))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param i32 i32) (result i32) (i32.const 1))
  (func (export "proxy_on_done") (param $context i32) (result i32)
    (if (i32.eq (local.get $context) (i32.const 1))
      (then (drop (call $log (i32.const 2) (i32.const 0) (i32.const 4)))
            (drop (call $tick_every (i32.const 10)))))
    (i32.const {done}))
  (func (export "proxy_on_delete") (param $context i32)
    (if (i32.eq (local.get $context) (i32.const 1))
      (then (drop (call $log (i32.const 2) (i32.const 8) (i32.const 6))))))
  (func (export "proxy_on_tick") (param i32)
    (drop (call $log (i32.const 2) (i32.const 16) (i32.const 4)))
    (drop (call $done)))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (global.set $requests (i32.add (global.get $requests) (i32.const 1)))
    (i32.store8 (i32.const 100) (i32.add (i32.const 48) (global.get $requests)))
    (drop (call $log (i32.const 2) (i32.const 100) (i32.const 1)))
    (i32.const 0))
  {extra})"#
    ))
}

fn root_logs(plugin: &Plugin) -> Vec<String> {
    plugin.logs().into_iter().map(|l| l.message).collect()
}

#[test]
fn shutdown_gives_every_root_context_on_done_then_on_delete() {
    let plugin = Plugin::from_bytes(lifecycle_guest(1, "", ""))
        .workers(2)
        .main_thread_vms()
        .start()
        .unwrap();
    assert_eq!(plugin.vm_count(), 4);
    assert!(!plugin.is_shut_down());
    plugin.shutdown();
    assert!(plugin.is_shut_down());
    let logs = root_logs(&plugin);
    assert_eq!(logs.iter().filter(|m| *m == "done").count(), 4, "{logs:?}");
    assert_eq!(
        logs.iter().filter(|m| *m == "delete").count(),
        4,
        "{logs:?}"
    );
    // The deleted roots' timers (set in on_done) never fire.
    plugin.advance(Duration::from_millis(50));
    assert!(!root_logs(&plugin).iter().any(|m| m == "tick"));
}

#[test]
fn a_root_that_is_not_done_yet_is_deleted_once_it_calls_proxy_done() {
    let plugin = Plugin::from_bytes(lifecycle_guest(0, "", ""))
        .start()
        .unwrap();
    plugin.shutdown();
    assert!(!plugin.is_shut_down());
    assert_eq!(root_logs(&plugin), ["done"]);
    plugin.advance(Duration::from_millis(10));
    assert!(plugin.is_shut_down());
    assert_eq!(root_logs(&plugin), ["done", "tick", "delete"]);
}

#[test]
fn a_stream_runs_on_the_worker_the_test_chooses() {
    let plugin = Plugin::from_bytes(lifecycle_guest(1, "", ""))
        .workers(2)
        .start()
        .unwrap();
    let count = |out: weir_runtime::Outcome| {
        out.logs()
            .iter()
            .map(|l| l.message.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(count(plugin.http_on(1).run()), ["1"]);
    let mut stream = plugin.http_stream_on(1);
    stream.send_request_headers(&Request::get("/"), true);
    assert_eq!(count(stream.finish()), ["2"]);
    // Worker 0's VM has its own memory: its count starts over.
    assert_eq!(count(plugin.http().run()), ["1"]);
    // Streams never run on the main-thread VMs, whatever worker is asked for.
    let plugin = Plugin::from_bytes(lifecycle_guest(1, "", ""))
        .main_thread_vms()
        .start()
        .unwrap();
    assert_eq!(plugin.workers(), 1);
    assert_eq!(count(plugin.http_on(2).run()), ["1"]);
    assert_eq!(count(plugin.http_on(0).run()), ["2"]);
}

#[test]
fn a_trap_in_on_log_is_reported_by_the_outcome() {
    let plugin = Plugin::from_bytes(lifecycle_guest(
        1,
        "",
        r#"(func (export "proxy_on_log") (param i32) unreachable)"#,
    ))
    .start()
    .unwrap();
    let out = plugin.http().run();
    assert_eq!(
        out.response().map(|r| r.status_code()),
        Some(200),
        "the client had its answer"
    );
    let trap = out.trap().expect("the on_log trap is reported");
    assert_eq!(trap.callback, "proxy_on_log");
}

#[test]
fn resolving_a_queue_with_an_empty_vm_id_looks_in_the_plugin_s_own() {
    let imports = r#"
  (import "env" "proxy_register_shared_queue" (func $register (param i32 i32 i32) (result i32)))
  (import "env" "proxy_resolve_shared_queue" (func $resolve (param i32 i32 i32 i32 i32) (result i32)))"#;
    let extra = r#"
  (data (i32.const 32) "q")
  (func (export "proxy_on_response_headers") (param i32 i32 i32) (result i32)
    (drop (call $register (i32.const 32) (i32.const 1) (i32.const 200)))
    (i32.store8 (i32.const 100)
      (i32.add (i32.const 48) (call $resolve (i32.const 0) (i32.const 0) (i32.const 32) (i32.const 1) (i32.const 204))))
    (drop (call $log (i32.const 2) (i32.const 100) (i32.const 1)))
    (i32.const 0))"#;
    let plugin = Plugin::from_bytes(lifecycle_guest(1, imports, extra))
        .vm_id("my-vm")
        .start()
        .unwrap();
    let out = plugin.http().run();
    let logs: Vec<&str> = out.logs().iter().map(|l| l.message.as_str()).collect();
    // "1" from the request count, then the resolve status: 0 (Ok), not 1 (NotFound).
    assert_eq!(logs, ["1", "0"]);
}

#[test]
fn trailers_added_in_the_last_body_callback_travel_on_and_the_stream_completes() {
    // Both body callbacks add a trailer when the body ends (map 1: request trailers,
    // 3: response trailers), as a plugin signing a body would.
    let guest = wat(r#"(module
  (import "env" "proxy_add_header_map_value" (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "x-digest")
  (data (i32.const 16) "abc")
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 4096))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func $on_body (param $map i32) (param $end i32) (result i32)
    (if (local.get $end)
      (then (drop (call $add (local.get $map) (i32.const 0) (i32.const 8) (i32.const 16) (i32.const 3)))))
    (i32.const 0))
  (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32)
    (call $on_body (i32.const 1) (local.get 2)))
  (func (export "proxy_on_response_body") (param i32 i32 i32) (result i32)
    (call $on_body (i32.const 3) (local.get 2))))"#);
    let plugin = Plugin::from_bytes(guest).start().unwrap();
    let out = plugin
        .http()
        .request(Request::post("/").body("signed"))
        .response(weir_runtime::Response::status(200).body("answer"))
        .run();
    let upstream = out
        .upstream_request()
        .expect("the request completes and reaches the upstream");
    assert_eq!(upstream.text(), "signed");
    assert_eq!(upstream.trailers().get("x-digest"), Some("abc"));
    let response = out.response().expect("the response reaches the client");
    assert_eq!(response.text(), "answer");
    assert_eq!(response.trailers().get("x-digest"), Some("abc"));
}

#[test]
fn a_trailer_map_comes_to_be_only_in_the_last_body_callback_and_is_sized_as_envoy_does() {
    // On the request headers and on a body chunk before the end, writing request
    // trailers (map 1) finds no map: `BadArgument` (2), and nothing reaches the upstream
    // from there. In the last chunk sizing creates the map (`Ok`, 0 bytes); after the
    // write the size is the bytes of name and value (8 + 3), not the serialized map's.
    let guest = wat(r#"(module
  (import "env" "proxy_add_header_map_value" (func $add (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_size" (func $size (param i32 i32) (result i32)))
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "x-digest")
  (data (i32.const 16) "abc")
  (func (export "proxy_abi_version_0_2_1"))
  (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 4096))
  (func (export "proxy_on_context_create") (param i32 i32))
  ;; Logs one digit: '0' + n.
  (func $digit (param $n i32)
    (i32.store8 (i32.const 64) (i32.add (i32.const 48) (local.get $n)))
    (drop (call $log (i32.const 2) (i32.const 64) (i32.const 1))))
  (func $add_trailer (result i32)
    (call $add (i32.const 1) (i32.const 0) (i32.const 8) (i32.const 16) (i32.const 3)))
  (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
    (call $digit (call $add_trailer))
    (i32.const 0))
  (func (export "proxy_on_request_body") (param i32 i32 i32) (result i32)
    (if (i32.eqz (local.get 2))
      (then (call $digit (call $add_trailer)) (return (i32.const 0))))
    (call $digit (call $size (i32.const 1) (i32.const 80)))
    (call $digit (i32.load (i32.const 80)))
    (call $digit (call $add_trailer))
    (call $digit (call $size (i32.const 1) (i32.const 80)))
    (call $digit (i32.eq (i32.load (i32.const 80)) (i32.const 11)))
    (i32.const 0)))"#);
    let plugin = Plugin::from_bytes(guest).start().unwrap();
    let mut stream = plugin.http_stream();
    stream
        .send_request_headers(&Request::post("/"), false)
        .send_request_body(b"first ", false)
        .send_request_body(b"last", true);
    let out = stream.finish();
    let logs: Vec<&str> = out.logs().iter().map(|l| l.message.as_str()).collect();
    assert_eq!(logs, ["2", "2", "0", "0", "0", "0", "1"]);
    let upstream = out
        .upstream_request()
        .expect("the request reaches the upstream");
    assert_eq!(upstream.text(), "first last");
    assert_eq!(upstream.trailers().get("x-digest"), Some("abc"));
    assert_eq!(upstream.trailers().len(), 1);
}
