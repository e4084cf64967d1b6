//! `plugins/header-append` in a real Envoy, configured as istiod would configure it.
//!
//! Request-side effects are read from what the echo upstream received; response-side
//! effects from what the client received, with the upstream sending headers that already
//! exist (several values for one name). Each test starts its own Envoy.

use anyhow::Result;
use serde_json::{json, Value};
use weir_envoy_tests::{
    build_wasm, EchoUpstream, Envoy, Headers, HttpResponse, RecordedRequest, Reply, WasmFilter,
};

fn plugin(config: &Value) -> WasmFilter {
    WasmFilter::new(build_wasm("header-append"))
        .plugin_name("istio-system", "header-append")
        .root_id("header-append")
        .json_configuration(config)
}

/// What one request through Envoy with the plugin looked like on both sides.
struct Exchange {
    /// The request as the upstream received it.
    upstream_saw: RecordedRequest,
    /// The response as the client received it.
    client_got: HttpResponse,
}

/// Sends one `GET /` with `request_headers` through Envoy running the plugin with
/// `config`, to an upstream that answers with `reply`.
fn exchange(config: Value, request_headers: &[(&str, &str)], reply: Reply) -> Result<Exchange> {
    let upstream = EchoUpstream::with_reply(reply)?;
    let envoy = Envoy::builder()
        .http_filter(plugin(&config))
        .upstream(upstream.addr())
        .start()?;
    let mut request = envoy.get("/")?;
    for (name, value) in request_headers {
        request = request.header(name, value);
    }
    let client_got = request.send()?;
    assert_eq!(
        client_got.status,
        200,
        "{client_got:?}\nEnvoy log:\n{}",
        envoy.log()
    );
    let mut requests = upstream.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    Ok(Exchange {
        upstream_saw: requests.remove(0),
        client_got,
    })
}

/// The same operation on both sides: `request_headers_to_add` and
/// `response_headers_to_add` each get `ops`.
fn both_sides(ops: Value) -> Value {
    json!({"request_headers_to_add": ops, "response_headers_to_add": ops})
}

/// One side's view of `x-present` (sent twice, by the client or by the upstream) and
/// `x-absent` after the plugin applied an action to both.
#[derive(Debug, PartialEq)]
struct Values {
    present: Vec<String>,
    absent: Vec<String>,
}

fn values(present: &[&str], absent: &[&str]) -> Values {
    let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
    Values {
        present: owned(present),
        absent: owned(absent),
    }
}

/// Runs `action` (value `plugin`) on `x-present` and `x-absent` in both directions and
/// returns what the upstream saw and what the client got.
fn apply_action(action: &str) -> Result<(Values, Values)> {
    let out = exchange(
        both_sides(json!([
            {"name": "x-present", "value": "plugin", "action": action},
            {"name": "x-absent", "value": "plugin", "action": action},
        ])),
        &[("x-present", "client-1"), ("x-present", "client-2")],
        Reply::status(200)
            .header("x-present", "up-1")
            .header("x-present", "up-2"),
    )?;
    let read = |h: &Headers| values(&h.get_all("x-present"), &h.get_all("x-absent"));
    Ok((
        read(&out.upstream_saw.headers),
        read(&out.client_got.headers),
    ))
}

#[test]
fn append_if_exists_or_add_adds_another_value() -> Result<()> {
    let (upstream_saw, client_got) = apply_action("APPEND_IF_EXISTS_OR_ADD")?;
    assert_eq!(
        upstream_saw,
        values(&["client-1", "client-2", "plugin"], &["plugin"])
    );
    assert_eq!(client_got, values(&["up-1", "up-2", "plugin"], &["plugin"]));
    Ok(())
}

#[test]
fn add_if_absent_leaves_present_headers_alone() -> Result<()> {
    let (upstream_saw, client_got) = apply_action("ADD_IF_ABSENT")?;
    assert_eq!(upstream_saw, values(&["client-1", "client-2"], &["plugin"]));
    assert_eq!(client_got, values(&["up-1", "up-2"], &["plugin"]));
    Ok(())
}

#[test]
fn overwrite_if_exists_or_add_replaces_every_value_or_adds() -> Result<()> {
    let (upstream_saw, client_got) = apply_action("OVERWRITE_IF_EXISTS_OR_ADD")?;
    assert_eq!(upstream_saw, values(&["plugin"], &["plugin"]));
    assert_eq!(client_got, values(&["plugin"], &["plugin"]));
    Ok(())
}

#[test]
fn overwrite_if_exists_never_adds_a_missing_header() -> Result<()> {
    let (upstream_saw, client_got) = apply_action("OVERWRITE_IF_EXISTS")?;
    assert_eq!(upstream_saw, values(&["plugin"], &[]));
    assert_eq!(client_got, values(&["plugin"], &[]));
    Ok(())
}

#[test]
fn appending_to_headers_envoy_stores_inline_joins_values_with_commas() -> Result<()> {
    // Envoy keeps some well-known headers (accept, user-agent, cache-control, vary, ...) in
    // fixed slots: repeated fields and appended values become one comma-joined field, on
    // the way in from the codec and when the plugin appends. Custom names stay separate.
    let out = exchange(
        both_sides(json!([
            {"name": "accept", "value": "plugin"},
            {"name": "cache-control", "value": "plugin"},
        ])),
        &[("accept", "client-1"), ("accept", "client-2")],
        Reply::status(200)
            .header("cache-control", "up-1")
            .header("cache-control", "up-2"),
    )?;

    let seen = &out.upstream_saw.headers;
    assert_eq!(
        seen.get_all("accept"),
        ["client-1,client-2,plugin"],
        "{seen:?}"
    );
    let got = &out.client_got.headers;
    assert_eq!(
        got.get_all("cache-control"),
        ["up-1,up-2,plugin"],
        "{got:?}"
    );
    Ok(())
}

#[test]
fn removal_drops_every_value_and_runs_before_additions() -> Result<()> {
    let out = exchange(
        json!({
            "request_headers_to_remove": ["x-b", "x-r"],
            "request_headers_to_add": [{"name": "x-r", "value": "added", "action": "ADD_IF_ABSENT"}],
            "response_headers_to_remove": ["x-d", "x-r"],
            "response_headers_to_add": [{"name": "x-r", "value": "added", "action": "ADD_IF_ABSENT"}],
        }),
        &[("x-b", "1"), ("x-b", "2"), ("x-r", "old"), ("x-keep", "k")],
        Reply::status(200)
            .header("x-d", "1")
            .header("x-d", "2")
            .header("x-r", "old")
            .header("x-keep", "k"),
    )?;

    let seen = &out.upstream_saw.headers;
    assert!(!seen.contains("x-b"), "{seen:?}");
    // ADD_IF_ABSENT only adds if the removal already happened.
    assert_eq!(seen.get_all("x-r"), ["added"], "{seen:?}");
    assert_eq!(seen.get_all("x-keep"), ["k"], "{seen:?}");
    let got = &out.client_got.headers;
    assert!(!got.contains("x-d"), "{got:?}");
    assert_eq!(got.get_all("x-r"), ["added"], "{got:?}");
    assert_eq!(got.get_all("x-keep"), ["k"], "{got:?}");
    Ok(())
}

#[test]
fn additions_apply_in_the_order_listed_and_default_to_append() -> Result<()> {
    // With any other default action than APPEND_IF_EXISTS_OR_ADD, "2" or "4" would be
    // dropped and the result would differ.
    let out = exchange(
        both_sides(json!([
            {"name": "x-seq", "value": "1"},
            {"name": "x-seq", "value": "2"},
            {"name": "x-seq", "value": "3", "action": "OVERWRITE_IF_EXISTS"},
            {"name": "x-seq", "value": "4"},
            {"name": "x-seq", "value": "5", "action": "ADD_IF_ABSENT"},
        ])),
        &[],
        Reply::status(200),
    )?;

    assert_eq!(out.upstream_saw.headers.get_all("x-seq"), ["3", "4"]);
    assert_eq!(out.client_got.headers.get_all("x-seq"), ["3", "4"]);
    Ok(())
}

#[test]
fn flat_form_appends_to_responses_only() -> Result<()> {
    let out = exchange(
        json!({
            "first-header": "some-value",
            "x-d": "flat",
            "response_headers_to_add": [{"name": "x-c", "value": "w"}],
        }),
        &[("x-d", "client")],
        Reply::status(200).header("x-d", "up"),
    )?;

    let got = &out.client_got.headers;
    assert_eq!(got.get_all("first-header"), ["some-value"], "{got:?}");
    assert_eq!(got.get_all("x-d"), ["up", "flat"], "{got:?}");
    assert_eq!(got.get_all("x-c"), ["w"], "{got:?}");
    let seen = &out.upstream_saw.headers;
    assert!(!seen.contains("first-header"), "{seen:?}");
    assert_eq!(seen.get_all("x-d"), ["client"], "{seen:?}");
    Ok(())
}

#[test]
fn unset_plugin_config_changes_nothing() -> Result<()> {
    // Istio sends an empty configuration when the WasmPlugin has no pluginConfig.
    let upstream = EchoUpstream::with_reply(Reply::status(200).header("x-d", "up"))?;
    let envoy = Envoy::builder()
        .http_filter(plugin(&json!({})).configuration(""))
        .upstream(upstream.addr())
        .start()?;
    let got = envoy.get("/")?.header("x-b", "client").send()?;

    assert_eq!(got.headers.get_all("x-d"), ["up"], "{got:?}");
    assert_eq!(upstream.requests()[0].headers.get_all("x-b"), ["client"]);
    Ok(())
}

/// Starts Envoy with `config` and checks that it refuses the plugin, logging the contract's
/// error line for `field_path` at error level.
fn assert_refused(config: Value, field_path: &str) -> Result<()> {
    assert_refused_with(
        config,
        &[&format!("invalid plugin configuration at {field_path}: ")],
    )
}

/// Like [`assert_refused`], for an error line that contains every one of `fragments`.
fn assert_refused_with(config: Value, fragments: &[&str]) -> Result<()> {
    let refusal = Envoy::builder()
        .http_filter(plugin(&config))
        .start_expecting_refusal()?;
    let logged = refusal
        .error_lines()
        .into_iter()
        .any(|line| line.contains("][error][wasm]") && fragments.iter().all(|f| line.contains(f)));
    assert!(
        logged,
        "no error line containing {fragments:?} for {config}; Envoy log:\n{}",
        refusal.log
    );
    assert!(
        refusal
            .log
            .contains("Unable to create Wasm plugin istio-system.header-append"),
        "{}",
        refusal.log
    );
    Ok(())
}

#[test]
fn refuses_a_field_of_the_wrong_type() -> Result<()> {
    assert_refused(
        json!({"request_headers_to_add": 5}),
        "request_headers_to_add",
    )
}

#[test]
fn refuses_an_unknown_action() -> Result<()> {
    assert_refused(
        json!({"response_headers_to_add": [{"name": "x-c", "value": "w", "action": "PREPEND"}]}),
        "response_headers_to_add[0].action",
    )
}

#[test]
fn refuses_a_header_name_that_is_not_a_token() -> Result<()> {
    assert_refused(
        json!({"request_headers_to_add": [
            {"name": "x-ok", "value": "v"},
            {"name": "Bad Name", "value": "v"},
        ]}),
        "request_headers_to_add[1].name",
    )
}

#[test]
fn refuses_upper_case_header_names() -> Result<()> {
    assert_refused(
        json!({"response_headers_to_add": [{"name": "X-Upper", "value": "v"}]}),
        "response_headers_to_add[0].name",
    )
}

#[test]
fn refuses_flat_form_keys_that_are_not_header_names() -> Result<()> {
    // The plugin reports these at the document (`.`), not at the key: the line is matched on
    // the offending key instead of a path.
    assert_refused_with(
        json!({"First-Header": "some-value"}),
        &["invalid plugin configuration at ", "First-Header"],
    )
}

#[test]
fn refuses_pseudo_headers() -> Result<()> {
    assert_refused(
        json!({"request_headers_to_add": [{"name": ":path", "value": "/admin"}]}),
        "request_headers_to_add[0].name",
    )
}

#[test]
fn refuses_pseudo_headers_in_removals() -> Result<()> {
    assert_refused(
        json!({"request_headers_to_remove": [":authority"]}),
        "request_headers_to_remove[0]",
    )
}

#[test]
fn refuses_cr_lf_in_values() -> Result<()> {
    assert_refused(
        json!({"response_headers_to_add": [{"name": "x-c", "value": "a\r\nset-cookie: evil=1"}]}),
        "response_headers_to_add[0].value",
    )
}

#[test]
fn refuses_line_breaks_in_flat_values() -> Result<()> {
    assert_refused(json!({"x-flat": "a\nb"}), "x-flat")
}
