//! The chain's filters and requests, shared by the authz_chain cases.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use serde_json::{json, Value};
use weir_envoy_tests::{build_wasm, Envoy, HttpResponse, WasmFilter};

use super::tokens::GRANT;

/// The header acl-check puts the grant in and check-header reads.
pub const SET_HEADER: &str = "authz_complete";

/// `base` with the keys of `extra` added or replaced.
pub fn merged(mut base: Value, extra: Value) -> Value {
    if let (Some(cfg), Value::Object(extra)) = (base.as_object_mut(), extra) {
        cfg.extend(extra);
    }
    base
}

/// acl-check, built as `wasm`, asking the `policy` cluster with `extra` settings (see
/// `Transport::acl_check` for the build and settings of each protocol).
pub fn acl_check(wasm: PathBuf, extra: Value) -> WasmFilter {
    let cfg = merged(
        json!({ "acl_server": "policy", "set_header": SET_HEADER }),
        extra,
    );
    WasmFilter::new(wasm)
        .plugin_name("istio-system", "acl-check")
        .root_id("acl-check")
        .json_configuration(&cfg)
}

/// check-header requiring `read_data` in a grant signed by a key of `jwks`, naming the user
/// upstream in `x-user`, with `extra` settings.
pub fn check_header(jwks: &str, extra: Value) -> WasmFilter {
    let base = json!({ "read_header": SET_HEADER, "verification_key": jwks, "function": "read_data",
        "issuer": GRANT.issuer, "audiences": [GRANT.audience],
        "claim_to_headers": [{ "claim": "sub", "header": "x-user" }] });
    WasmFilter::new(build_wasm("check-header"))
        .plugin_name("istio-system", "check-header")
        .root_id("check-header")
        .json_configuration(&merged(base, extra))
}

/// `GET /data/report` with `headers`.
pub fn get(envoy: &Envoy, headers: &[(&str, &str)]) -> Result<HttpResponse> {
    get_path(envoy, "/data/report", headers)
}

/// `GET path` with `headers`.
pub fn get_path(envoy: &Envoy, path: &str, headers: &[(&str, &str)]) -> Result<HttpResponse> {
    let mut request = envoy.get(path)?.timeout(Duration::from_secs(10));
    for (name, value) in headers {
        request = request.header(name, value);
    }
    request.send()
}
