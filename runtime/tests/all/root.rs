//! Start-up, configuration, timers, shared data, queues and metrics across VMs.

use std::time::Duration;

use weir_runtime::{LogLevel, Request, StartError};

use crate::probe;

#[test]
fn start_up_reads_env_and_config_in_envoy_order() {
    let plugin = probe()
        .env("GREETING", "hello")
        .config("mode=plain")
        .start()
        .unwrap();
    let logs: Vec<String> = plugin.logs().into_iter().map(|l| l.message).collect();
    assert_eq!(
        logs,
        vec![
            "vm start, GREETING=hello, args=0".to_string(),
            "configured: mode=plain".to_string()
        ]
    );
}

#[test]
fn json_config_reaches_on_configure() {
    let plugin = probe()
        .config(serde_json::json!({ "k": "v" }))
        .start()
        .unwrap();
    assert!(plugin
        .logs()
        .iter()
        .any(|l| l.message == r#"configured: {"k":"v"}"#));
}

#[test]
fn rejected_config_is_an_error_carrying_the_guest_logs() {
    let err = probe().config("please reject").start().unwrap_err();
    match &err {
        StartError::ConfigRejected { logs } => {
            assert!(logs
                .iter()
                .any(|l| l.level == LogLevel::Error
                    && l.message == "bad configuration: please reject"));
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(
        err.to_string().contains("bad configuration: please reject"),
        "{err}"
    );
}

#[test]
fn rejected_vm_config_is_an_error() {
    let err = probe().vm_config("reject").start().unwrap_err();
    assert!(matches!(err, StartError::VmStartRejected { .. }), "{err:?}");
}

#[test]
fn panic_while_configuring_is_a_start_trap() {
    let err = probe().config("panic-on-configure").start().unwrap_err();
    let StartError::Trap(trap) = err else {
        panic!("expected a trap, got {err:?}")
    };
    assert_eq!(trap.callback, "proxy_on_configure");
    assert!(trap
        .panic_message
        .unwrap_or_default()
        .contains("configure exploded"));
}

#[test]
fn ticks_follow_the_virtual_clock() {
    let plugin = probe().config("tick").start().unwrap();
    assert_eq!(plugin.metric("probe_ticks"), None);
    plugin.advance(Duration::from_millis(350));
    assert_eq!(plugin.metric("probe_ticks"), Some(3));
    let ticks: Vec<String> = plugin
        .logs()
        .into_iter()
        .map(|l| l.message)
        .filter(|m| m.starts_with("tick at"))
        .collect();
    assert_eq!(ticks.len(), 3);
    // 2026-01-01T00:00:00Z + 100 ms: the clock is virtual and starts at a fixed time.
    assert_eq!(
        ticks[0],
        format!("tick at {}", weir_runtime::CLOCK_START.as_millis() + 100)
    );
    assert_eq!(plugin.now(), Duration::from_millis(350));
}

#[test]
fn shared_data_is_shared_between_vms_with_cas() {
    let plugin = probe().workers(2).start().unwrap();
    assert_eq!(plugin.workers(), 2);
    let first = plugin
        .http_on(0)
        .request(
            Request::get("/")
                .header("x-probe", "shared")
                .header("x-value", "a"),
        )
        .run();
    assert!(
        first.logged("shared old=None set=Ok(()) stale=Err(CasMismatch)"),
        "{:?}",
        first.logs()
    );
    let second = plugin
        .http_on(1)
        .request(
            Request::get("/")
                .header("x-probe", "shared")
                .header("x-value", "b"),
        )
        .run();
    assert!(
        second.logged("shared old=Some(\"a\") set=Ok(()) stale=Err(CasMismatch)"),
        "{:?}",
        second.logs()
    );
    assert_eq!(plugin.shared_data("k"), Some(b"b".to_vec()));
}

#[test]
fn queue_items_reach_the_registering_vm() {
    let plugin = probe().workers(2).start().unwrap();
    let out = plugin
        .http_on(1)
        .request(
            Request::get("/")
                .header("x-probe", "enqueue")
                .header("x-value", "job-1"),
        )
        .run();
    assert!(out.logged("enqueue Ok(())"), "{:?}", out.logs());
    assert!(
        plugin
            .logs()
            .iter()
            .any(|l| l.message == "queue item: job-1"),
        "{:?}",
        plugin.logs()
    );
}

#[test]
fn queue_registered_by_a_stream_notifies_the_root_context() {
    // Envoy calls `proxy_on_queue_ready` on the root context (id 1), whichever context
    // registered the queue; here the stream context (id 2) registers and enqueues.
    let wasm = crate::wat(
        r#"(module
      (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
      (import "env" "proxy_register_shared_queue" (func $register (param i32 i32 i32) (result i32)))
      (import "env" "proxy_enqueue_shared_queue" (func $enqueue (param i32 i32 i32) (result i32)))
      (memory (export "memory") 1)
      (data (i32.const 200) "q")
      (data (i32.const 300) "queue ready in context ?")
      (func (export "proxy_abi_version_0_2_1"))
      (func (export "proxy_on_memory_allocate") (param i32) (result i32) (i32.const 4096))
      (func (export "proxy_on_context_create") (param i32 i32))
      (func (export "proxy_on_request_headers") (param i32 i32 i32) (result i32)
        (drop (call $register (i32.const 200) (i32.const 1) (i32.const 220)))
        (drop (call $enqueue (i32.load (i32.const 220)) (i32.const 200) (i32.const 1)))
        (i32.const 0))
      (func (export "proxy_on_queue_ready") (param $context i32) (param $queue i32)
        (i32.store8 (i32.const 323) (i32.add (i32.const 48) (local.get $context)))
        (drop (call $log (i32.const 2) (i32.const 300) (i32.const 24)))))"#,
    );
    let plugin = weir_runtime::Plugin::from_bytes(wasm).start().unwrap();
    let out = plugin.http().request(Request::get("/")).run();
    assert!(out.trap().is_none(), "{:?}", out.trap());
    let ready: Vec<String> = plugin
        .logs()
        .into_iter()
        .map(|l| l.message)
        .filter(|m| m.starts_with("queue ready"))
        .collect();
    assert_eq!(ready, ["queue ready in context 1"]);
}

#[test]
fn metrics_are_shared_between_vms() {
    let plugin = probe().workers(3).start().unwrap();
    for worker in 0..3 {
        plugin.http_on(worker).request(Request::get("/")).run();
    }
    assert_eq!(plugin.metric("probe_requests"), Some(3));
}

#[test]
fn plugins_are_independent_values() {
    let a = probe().start().unwrap();
    let b = probe().start().unwrap();
    a.http()
        .request(
            Request::get("/")
                .header("x-probe", "shared")
                .header("x-value", "only-a"),
        )
        .run();
    assert_eq!(a.shared_data("k"), Some(b"only-a".to_vec()));
    assert_eq!(b.shared_data("k"), None);
}

#[test]
fn cached_load_is_cheap() {
    let path =
        weir_runtime::Plugin::wasm_path(concat!(env!("CARGO_MANIFEST_DIR"), "/test-plugins/probe"))
            .unwrap();
    weir_runtime::Plugin::load(&path).start().unwrap();
    let started = std::time::Instant::now();
    for _ in 0..10 {
        weir_runtime::Plugin::load(&path).start().unwrap();
    }
    let each = started.elapsed() / 10;
    eprintln!("cached load + instantiate + start: {each:?}");
    assert!(
        each < Duration::from_millis(200),
        "cached start took {each:?}"
    );
}
