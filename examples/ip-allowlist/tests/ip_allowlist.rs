//! ip-allowlist's behaviour, checked on the real `.wasm` in weir-runtime.

use serde_json::json;
use weir_runtime::Plugin;

fn plugin(allow: serde_json::Value, source: &str) -> Plugin {
    Plugin::build(env!("CARGO_MANIFEST_DIR"))
        .config(json!({ "allow": allow }))
        .property("source.address", source)
        .start()
        .unwrap()
}

#[test]
fn clients_inside_a_range_get_through() {
    let out = plugin(json!(["10.0.0.0/8"]), "10.1.2.3:40000")
        .tcp()
        .downstream("PING\r\n")
        .run();

    assert!(!out.closed_by_plugin());
    assert_eq!(out.to_upstream(), b"PING\r\n");
}

#[test]
fn clients_outside_every_range_are_closed_before_any_byte_passes() {
    let out = plugin(json!(["10.0.0.0/8", "2001:db8::/32"]), "192.0.2.7:40000")
        .tcp()
        .downstream("PING\r\n")
        .run();

    assert!(out.closed_by_plugin());
    assert!(out.to_upstream().is_empty());
    assert!(out.logged("not in the allow-list"));
}

#[test]
fn an_empty_allow_list_closes_everything() {
    let out = plugin(json!([]), "127.0.0.1:40000")
        .tcp()
        .downstream("x")
        .run();
    assert!(out.closed_by_plugin());
}

#[test]
fn host_bits_in_a_range_are_a_configuration_error() {
    let err = Plugin::build(env!("CARGO_MANIFEST_DIR"))
        .config(json!({ "allow": ["10.0.0.1/8"] }))
        .start()
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("allow[0]") && msg.contains("did you mean 10.0.0.0/8"),
        "{msg}"
    );
}
