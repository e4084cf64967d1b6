//! hello's behaviour, checked on the real `.wasm` in weir-runtime (no proxy needed).

use serde_json::json;
use weir_runtime::{Plugin, Request, Response};

#[test]
fn sets_the_configured_greeting_on_responses() {
    let plugin = Plugin::build(env!("CARGO_MANIFEST_DIR"))
        .config(json!({ "greeting": "hi there" }))
        .start()
        .unwrap();

    let out = plugin
        .http()
        .request(Request::get("/"))
        .response(Response::status(200).header("x-hello", "upstream's"))
        .run();

    let response = out.response().expect("the response reached the client");
    assert_eq!(response.headers().get_all("x-hello"), ["hi there"]);
    assert!(out.local_reply().is_none());
}

#[test]
fn without_config_it_uses_the_default_greeting() {
    let plugin = Plugin::build(env!("CARGO_MANIFEST_DIR")).start().unwrap();

    let out = plugin
        .http()
        .request(Request::get("/"))
        .response(Response::status(200))
        .run();

    assert_eq!(
        out.response().unwrap().header_value("x-hello"),
        Some("hello from weir")
    );
}

#[test]
fn a_misspelt_field_is_rejected_at_configure_time() {
    let err = Plugin::build(env!("CARGO_MANIFEST_DIR"))
        .config(json!({ "greting": "hi" }))
        .start()
        .unwrap_err();

    assert!(err.to_string().contains("greting"), "{err}");
}
