//! header-append on the real `.wasm`, in weir-runtime. The same behaviour is checked in a
//! real Envoy by tests/envoy/tests/header_append.rs; these run in milliseconds, in parallel.

use serde_json::{json, Value};
use weir_runtime::{Outcome, Plugin, Request, Response};

fn start(config: Value) -> Plugin {
    Plugin::build(env!("CARGO_MANIFEST_DIR"))
        .config(config)
        .start()
        .expect("header-append starts")
}

/// One request whose client sends `x-a` twice and whose upstream answers with `x-b` twice.
fn exchange(plugin: &Plugin) -> Outcome {
    plugin
        .http()
        .request(
            Request::get("/")
                .header("x-a", "client-1")
                .header("x-a", "client-2")
                .header("x-keep", "k"),
        )
        .response(
            Response::status(200)
                .header("x-b", "up-1")
                .header("x-b", "up-2")
                .header("x-keep", "k"),
        )
        .run()
}

fn upstream_saw(out: &Outcome, name: &str) -> Vec<String> {
    out.upstream_request()
        .expect("request reached the upstream")
        .headers()
        .get_all(name)
        .into_iter()
        .map(str::to_string)
        .collect()
}

fn client_saw(out: &Outcome, name: &str) -> Vec<String> {
    out.response()
        .expect("response reached the client")
        .headers()
        .get_all(name)
        .into_iter()
        .map(str::to_string)
        .collect()
}

fn op(name: &str, value: &str, action: &str) -> Value {
    json!({ "name": name, "value": value, "action": action })
}

#[test]
fn append_if_exists_or_add_keeps_every_existing_value() {
    let out = exchange(&start(json!({
        "request_headers_to_add": [op("x-a", "plugin", "APPEND_IF_EXISTS_OR_ADD"), op("x-new", "n", "APPEND_IF_EXISTS_OR_ADD")],
        "response_headers_to_add": [op("x-b", "plugin", "APPEND_IF_EXISTS_OR_ADD")],
    })));
    assert_eq!(
        upstream_saw(&out, "x-a"),
        ["client-1", "client-2", "plugin"]
    );
    assert_eq!(upstream_saw(&out, "x-new"), ["n"]);
    assert_eq!(client_saw(&out, "x-b"), ["up-1", "up-2", "plugin"]);
}

#[test]
fn add_if_absent_never_touches_a_present_header() {
    let out = exchange(&start(json!({
        "request_headers_to_add": [op("x-a", "plugin", "ADD_IF_ABSENT"), op("x-new", "n", "ADD_IF_ABSENT")],
        "response_headers_to_add": [op("x-b", "plugin", "ADD_IF_ABSENT"), op("x-fresh", "f", "ADD_IF_ABSENT")],
    })));
    assert_eq!(upstream_saw(&out, "x-a"), ["client-1", "client-2"]);
    assert_eq!(upstream_saw(&out, "x-new"), ["n"]);
    assert_eq!(client_saw(&out, "x-b"), ["up-1", "up-2"]);
    assert_eq!(client_saw(&out, "x-fresh"), ["f"]);
}

#[test]
fn overwrite_if_exists_or_add_replaces_all_values() {
    let out = exchange(&start(json!({
        "request_headers_to_add": [op("x-a", "plugin", "OVERWRITE_IF_EXISTS_OR_ADD"), op("x-new", "n", "OVERWRITE_IF_EXISTS_OR_ADD")],
        "response_headers_to_add": [op("x-b", "plugin", "OVERWRITE_IF_EXISTS_OR_ADD")],
    })));
    assert_eq!(upstream_saw(&out, "x-a"), ["plugin"]);
    assert_eq!(upstream_saw(&out, "x-new"), ["n"]);
    assert_eq!(client_saw(&out, "x-b"), ["plugin"]);
}

#[test]
fn overwrite_if_exists_does_nothing_when_absent() {
    let out = exchange(&start(json!({
        "request_headers_to_add": [op("x-a", "plugin", "OVERWRITE_IF_EXISTS"), op("x-new", "n", "OVERWRITE_IF_EXISTS")],
        "response_headers_to_add": [op("x-b", "plugin", "OVERWRITE_IF_EXISTS"), op("x-fresh", "f", "OVERWRITE_IF_EXISTS")],
    })));
    assert_eq!(upstream_saw(&out, "x-a"), ["plugin"]);
    assert!(upstream_saw(&out, "x-new").is_empty());
    assert_eq!(client_saw(&out, "x-b"), ["plugin"]);
    assert!(client_saw(&out, "x-fresh").is_empty());
}

#[test]
fn removals_run_before_additions_and_touch_only_named_headers() {
    let out = exchange(&start(json!({
        "request_headers_to_remove": ["x-a"],
        "request_headers_to_add": [op("x-a", "fresh", "ADD_IF_ABSENT")],
        "response_headers_to_remove": ["x-b", "x-not-there"],
    })));
    assert_eq!(upstream_saw(&out, "x-a"), ["fresh"]);
    assert_eq!(upstream_saw(&out, "x-keep"), ["k"]);
    assert!(client_saw(&out, "x-b").is_empty());
    assert_eq!(client_saw(&out, "x-keep"), ["k"]);
}

#[test]
fn red_hat_flat_form_appends_to_responses_only() {
    let out = exchange(&start(
        json!({ "first-header": "some-value", "x-b": "flat" }),
    ));
    assert_eq!(client_saw(&out, "first-header"), ["some-value"]);
    assert_eq!(client_saw(&out, "x-b"), ["up-1", "up-2", "flat"]);
    assert!(upstream_saw(&out, "first-header").is_empty());
}

#[test]
fn an_empty_config_changes_nothing() {
    let out = exchange(&start(json!({})));
    assert_eq!(upstream_saw(&out, "x-a"), ["client-1", "client-2"]);
    assert_eq!(client_saw(&out, "x-b"), ["up-1", "up-2"]);
    assert!(out.local_reply().is_none());
}

#[test]
fn bad_configs_are_refused_naming_the_field() {
    let cases = [
        (
            json!({ "request_headers_to_add": 5 }),
            "request_headers_to_add",
        ),
        (
            json!({ "response_headers_to_add": [op("x", "y", "PREPEND")] }),
            "response_headers_to_add[0].action",
        ),
        (
            json!({ "request_headers_to_add": [op("x", "y", "ADD_IF_ABSENT"), op("Bad Name", "y", "ADD_IF_ABSENT")] }),
            "request_headers_to_add[1].name",
        ),
        (
            json!({ "request_headers_to_add": [op(":path", "/", "ADD_IF_ABSENT")] }),
            "request_headers_to_add[0].name",
        ),
        (
            json!({ "response_headers_to_add": [op("x", "a\r\nset-cookie: evil", "ADD_IF_ABSENT")] }),
            "response_headers_to_add[0].value",
        ),
        (
            json!({ "request_headers_to_remove": [":authority"] }),
            "request_headers_to_remove[0]",
        ),
    ];
    for (config, path) in cases {
        let err = Plugin::build(env!("CARGO_MANIFEST_DIR"))
            .config(config.clone())
            .start()
            .expect_err(&config.to_string());
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("invalid plugin configuration at {path}:")),
            "{config}: {msg}"
        );
    }
}

#[test]
fn cost_per_request_is_small_and_deterministic() {
    let config = json!({
        "request_headers_to_add": [op("x-a", "1", "ADD_IF_ABSENT"), op("x-c", "2", "OVERWRITE_IF_EXISTS_OR_ADD")],
        "response_headers_to_add": [op("x-b", "3", "APPEND_IF_EXISTS_OR_ADD")],
        "response_headers_to_remove": ["server"],
    });
    // The first request on a VM also pays for the allocator growing its heap, so compare
    // the same sequence on two fresh plugins rather than two requests on one.
    let costs = |plugin: &Plugin| {
        [
            exchange(plugin).instructions(),
            exchange(plugin).instructions(),
        ]
    };
    let a = costs(&start(config.clone()));
    let b = costs(&start(config));
    assert_eq!(
        a, b,
        "the same requests on a fresh plugin must cost the same"
    );
    assert!(
        a[1] > 0 && a[1] < 200_000,
        "instructions per request: {a:?}"
    );
}
