//! Every ABI 0.2.1 host function is linked, with the specification's signature.

use std::collections::BTreeSet;

use weir_runtime::{linked_imports, Plugin, Request};

use crate::wat;

/// Parameter types per the ABI 0.2.1 specification (every function returns an i32 status).
fn params(name: &str) -> &'static str {
    match name {
        "proxy_done" => "",
        "proxy_record_metric" | "proxy_increment_metric" => "i32 i64",
        "proxy_set_effective_context"
        | "proxy_get_log_level"
        | "proxy_get_current_time_nanoseconds"
        | "proxy_set_tick_period_milliseconds"
        | "proxy_continue_stream"
        | "proxy_close_stream"
        | "proxy_grpc_cancel"
        | "proxy_grpc_close" => "i32",
        "proxy_get_header_map_size" | "proxy_get_metric" => "i32 i32",
        "proxy_log"
        | "proxy_get_buffer_status"
        | "proxy_get_header_map_pairs"
        | "proxy_set_header_map_pairs"
        | "proxy_remove_header_map_value"
        | "proxy_get_status"
        | "proxy_register_shared_queue"
        | "proxy_enqueue_shared_queue"
        | "proxy_dequeue_shared_queue" => "i32 i32 i32",
        "proxy_define_metric" | "proxy_get_property" | "proxy_set_property" | "proxy_grpc_send" => {
            "i32 i32 i32 i32"
        }
        "proxy_set_buffer_bytes"
        | "proxy_get_buffer_bytes"
        | "proxy_get_header_map_value"
        | "proxy_add_header_map_value"
        | "proxy_replace_header_map_value"
        | "proxy_set_shared_data"
        | "proxy_get_shared_data"
        | "proxy_resolve_shared_queue" => "i32 i32 i32 i32 i32",
        "proxy_call_foreign_function" => "i32 i32 i32 i32 i32 i32",
        "proxy_send_local_response" => "i32 i32 i32 i32 i32 i32 i32 i32",
        "proxy_grpc_stream" => "i32 i32 i32 i32 i32 i32 i32 i32 i32",
        "proxy_http_call" => "i32 i32 i32 i32 i32 i32 i32 i32 i32 i32",
        "proxy_grpc_call" => "i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32",
        other => panic!("no signature known for {other}"),
    }
}

#[test]
fn every_abi_0_2_1_host_function_is_linked() {
    let imports: String = weir_abi::HOST_FUNCTIONS_0_2_1
        .iter()
        .map(|function| {
            let name = function.as_str();
            format!(
                "(import \"env\" \"{name}\" (func (param {}) (result i32)))\n",
                params(name)
            )
        })
        .collect();
    let wasm = wat(&format!("(module {imports} (memory (export \"memory\") 1) (func (export \"proxy_abi_version_0_2_1\")))"));
    let linked =
        linked_imports(&wasm).expect("all 39 host functions link with the spec's signatures");
    let names: BTreeSet<&str> = linked
        .iter()
        .filter(|(m, _)| m == "env")
        .map(|(_, n)| n.as_str())
        .collect();
    let spec: BTreeSet<&str> = weir_abi::HOST_FUNCTIONS_0_2_1
        .iter()
        .map(|f| f.as_str())
        .collect();
    assert_eq!(names, spec);
    assert_eq!(names.len(), 39);
    // And the module instantiates and starts.
    Plugin::from_bytes(wasm).start().unwrap();
}

#[test]
fn a_proxy_wasm_crate_guest_links_completely() {
    let path =
        Plugin::wasm_path(concat!(env!("CARGO_MANIFEST_DIR"), "/test-plugins/probe")).unwrap();
    let wasm = std::fs::read(path).unwrap();
    let linked = linked_imports(&wasm).unwrap();
    let env: Vec<&str> = linked
        .iter()
        .filter(|(m, _)| m == "env")
        .map(|(_, n)| n.as_str())
        .collect();
    for name in &env {
        assert!(
            weir_abi::HostFunction::from_name(name)
                .is_some_and(|f| weir_abi::HOST_FUNCTIONS_0_2_1.contains(&f)),
            "{name} is not an ABI 0.2.1 function"
        );
    }
    assert!(
        env.contains(&"proxy_http_call") && env.contains(&"proxy_get_property"),
        "{env:?}"
    );
    assert!(
        linked
            .iter()
            .any(|(m, n)| m == "wasi_snapshot_preview1" && n == "environ_get"),
        "{linked:?}"
    );
    let plugin = Plugin::from_bytes(wasm).start().unwrap();
    assert!(plugin
        .http()
        .request(Request::get("/"))
        .run()
        .trap()
        .is_none());
}

/// weir-abi names every callback a proxy-wasm crate guest exports, so the runtime calls
/// each by weir-abi's name; the one it does not name is `proxy_on_foreign_function`, a
/// callback Envoy makes only for its own foreign functions, which weir-runtime never calls.
#[test]
fn weir_abi_names_every_callback_a_proxy_wasm_crate_guest_exports() {
    let path =
        Plugin::wasm_path(concat!(env!("CARGO_MANIFEST_DIR"), "/test-plugins/probe")).unwrap();
    let wasm = std::fs::read(path).unwrap();
    let module = wasmtime::Module::new(&wasmtime::Engine::default(), &wasm).unwrap();
    let exported: BTreeSet<&str> = module
        .exports()
        .map(|e| e.name())
        .filter(|n| n.starts_with("proxy_on_") && *n != "proxy_on_foreign_function")
        .collect();
    for name in &exported {
        assert!(
            weir_abi::Callback::from_name(name).is_some(),
            "{name} is missing from weir_abi::Callback"
        );
    }
    let named: BTreeSet<&str> = weir_abi::Callback::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(exported, named);
}
