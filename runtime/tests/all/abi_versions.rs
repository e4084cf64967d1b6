//! Modules of each ABI version the host serves (0.1.0, 0.2.0, 0.2.1) and ones it refuses.
//! The fidelity suite (`tests/fidelity`, scenarios `abi_*` and `both_allocators_*`) runs the
//! same guests in Envoy 1.40 and compares the outcomes with weir-runtime's field by field.

use weir_runtime::{AbiVersion, LoadError, Plugin, PluginBuilder, Request, Response, StartError};

/// ABI 0.1.0: test-plugins/abi-0-1-0 (proxy-wasm 0.1.4 from crates.io, `_start`).
fn abi_0_1_0() -> PluginBuilder {
    Plugin::build(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/test-plugins/abi-0-1-0"
    ))
    .root_id("abi-0-1-0")
    .config(r#"{"x-from-config": "yes", "x-second": "2"}"#)
}

/// A hand-written guest under test-plugins/wat, compiled now: the WAT is the only source.
fn wat_guest(name: &str) -> Vec<u8> {
    let path = format!("{}/test-plugins/wat/{name}.wat", env!("CARGO_MANIFEST_DIR"));
    wat::parse_file(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn abi_0_1_0_module_runs_start_configuration_and_two_argument_header_callbacks() {
    let plugin = abi_0_1_0().start().unwrap();
    assert_eq!(plugin.abi_version(), AbiVersion::V0_1_0);
    assert!(
        plugin
            .logs()
            .iter()
            .any(|l| l.message == "abi-0.1.0: configured with 2 headers"),
        "{:?}",
        plugin.logs()
    );

    let out = plugin
        .http()
        .request(Request::get("/hello"))
        .response(Response::status(200))
        .run();
    let upstream = out
        .upstream_request()
        .expect("request reaches the upstream");
    assert_eq!(upstream.header_value("x-abi"), Some("0.1.0"));
    // 0.1.0: a missing header is Ok with no value, which the 0.1 SDK reads as None.
    assert_eq!(upstream.header_value("x-missing-header"), Some("None"));
    let response = out.response().unwrap();
    assert_eq!(response.header_value("x-from-config"), Some("yes"));
    assert_eq!(response.header_value("x-second"), Some("2"));
}

#[test]
fn abi_0_1_0_module_resumes_with_continue_request_and_sends_local_replies() {
    let plugin = abi_0_1_0().start().unwrap();
    let out = plugin
        .http()
        .request(Request::get("/pause"))
        .response(Response::status(200))
        .run();
    assert_eq!(out.upstream_request().map(|r| r.path()), Some("/pause"));

    let out = plugin
        .http()
        .request(Request::get("/deny"))
        .response(Response::status(200))
        .run();
    assert!(out.upstream_request().is_none());
    let reply = out.local_reply().unwrap();
    assert_eq!((reply.status(), reply.text().as_str()), (403, "denied\n"));
    assert_eq!(reply.header("x-denied-by"), Some("abi-0.1.0"));
}

#[test]
fn abi_0_2_0_module_uses_malloc_start_section_and_wasi_unstable() {
    let plugin = Plugin::from_bytes(wat_guest("abi_0_2_0"))
        .root_id("abi-0-2-0")
        .config("cfg-0.2.0");
    let plugin = plugin.start().unwrap();
    assert_eq!(plugin.abi_version(), AbiVersion::V0_2_0);
    let out = plugin
        .http()
        .request(Request::get("/x").header("user-agent", "abi-test"))
        .response(Response::status(200))
        .run();
    let upstream = out
        .upstream_request()
        .expect("request reaches the upstream");
    assert_eq!(upstream.header_value("x-abi"), Some("0.2.0"));
    assert_eq!(upstream.header_value("x-started"), Some("yes"));
    assert_eq!(upstream.header_value("x-config"), Some("cfg-0.2.0"));
    assert_eq!(
        upstream.header_value("x-missing-status"),
        Some("1"),
        "NotFound from 0.2.0 on"
    );
    // Result pointers 0 and 4 are in bounds: written there, as Envoy does.
    assert_eq!(upstream.header_value("x-user-agent-copy"), Some("abi-test"));
    assert_eq!(
        out.response().unwrap().header_value("x-resp-abi"),
        Some("0.2.0")
    );
}

#[test]
fn abi_0_2_1_module_is_detected() {
    let plugin = crate::probe().start().unwrap();
    assert_eq!(plugin.abi_version(), AbiVersion::V0_2_1);
}

#[test]
fn functions_of_another_abi_version_do_not_link() {
    // 0.2.0 has no proxy_get_log_level; 0.2.x has no proxy_continue_request (Envoy alike).
    for (abi, import) in [
        ("0_2_0", "proxy_get_log_level"),
        ("0_2_1", "proxy_continue_request"),
    ] {
        let wasm = crate::wat(&format!(
            r#"(module (import "env" "{import}" (func (param i32) (result i32)))
                 (memory (export "memory") 1)
                 (func (export "proxy_abi_version_{abi}"))
                 (func (export "proxy_on_memory_allocate") (param i32) (result i32) i32.const 8))"#
        ));
        let err = Plugin::from_bytes(wasm).start().unwrap_err();
        assert!(
            matches!(err, StartError::Load(LoadError::MissingImports(_))),
            "{abi}: {err}"
        );
    }
    let err = Plugin::from_bytes(wat_guest("abi_0_2_0_imports_get_log_level"))
        .start()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(
            "env.proxy_get_log_level (proxy-wasm ABI 0.2.1 only; the module declares ABI 0.2.0)"
        ),
        "the message names the version that has it: {err}"
    );
}

#[test]
fn malloc_is_preferred_over_proxy_on_memory_allocate_as_in_envoy() {
    let plugin = Plugin::from_bytes(wat_guest("both_allocators"))
        .start()
        .unwrap();
    let out = plugin
        .http()
        .request(Request::get("/").header("user-agent", "abi-test"))
        .response(Response::status(200))
        .run();
    let upstream = out
        .upstream_request()
        .expect("request reaches the upstream");
    assert_eq!(upstream.header_value("x-allocator"), Some("malloc"));
    assert_eq!(upstream.header_value("x-user-agent-copy"), Some("abi-test"));
}

#[test]
fn unknown_abi_version_is_refused_naming_the_supported_ones() {
    let err = Plugin::from_bytes(wat_guest("abi_9_9_9"))
        .start()
        .unwrap_err();
    let message = err.to_string();
    assert!(
        matches!(err, StartError::Load(LoadError::UnsupportedAbi { .. })),
        "{message}"
    );
    assert!(message.contains("proxy_abi_version_9_9_9"), "{message}");
    assert!(
        message.starts_with("unknown Proxy-Wasm ABI version"),
        "Envoy's words first: {message}"
    );
    assert!(message.contains("0.1.0, 0.2.0 and 0.2.1"), "{message}");
}
