//! check-header on the real `.wasm` in weir-runtime, with grant tokens signed here by
//! jwt-simple. The runtime's clock starts at 2026-01-01T00:00:00Z (`T0`), so token times are
//! written relative to it. Every refusal also checks that the upstream never saw the request.

mod grants;

use grants::*;
use jwt_simple::prelude::*;
use serde_json::json;
use weir_runtime::{Outcome, Plugin, Request};

fn send(plugin: &Plugin, token: &str) -> Outcome {
    plugin.http().request(Request::get("/data").header("authz_complete", token)).run()
}

fn assert_refused(out: &Outcome, status: u16, case: &str) {
    assert!(out.trap().is_none(), "{case}: trap {:?}", out.trap());
    assert_eq!(out.local_reply().map(|r| r.status()), Some(status), "{case}: {:?}", out.logs());
    assert!(out.upstream_request().is_none(), "{case}: the upstream must not see it");
    if status == 401 {
        let res = out.response().expect("reply");
        assert!(res.headers().get("www-authenticate").is_some_and(|v| v.starts_with("Bearer")), "{case}");
    }
}

fn b64(s: &str) -> String {
    Base64UrlSafeNoPadding::encode_to_string(s).expect("b64")
}

#[test]
fn a_valid_grant_passes_and_is_stripped() {
    let k = keys();
    let plugin = start(&k, json!({ "claim_to_headers": [{ "claim": "sub", "header": "x-user" }] }));
    let out = send(&plugin, &sign(&k, claims(&["read_data", "write_data"])));
    let up = out.upstream_request().expect("allowed");
    assert_eq!(up.headers().get("authz_complete"), None, "forward defaults to false");
    assert_eq!(up.headers().get("x-user"), Some("alice"));
    let plugin = start(&k, json!({ "forward": true }));
    let token = sign(&k, claims(&["read_data"]));
    let out = send(&plugin, &token);
    assert_eq!(out.upstream_request().expect("allowed").headers().get("authz_complete"), Some(token.as_str()));
}

#[test]
fn a_valid_grant_without_the_function_gets_403() {
    let k = keys();
    let out = send(&start(&k, json!({})), &sign(&k, claims(&["write_data"])));
    assert_refused(&out, 403, "no function");
}

#[test]
fn the_attack_matrix_gets_401() {
    let k = keys();
    let plugin = start(&k, json!({}));
    let good = sign(&k, claims(&["read_data"]));
    let parts: Vec<&str> = good.split('.').collect();
    let other = keys();
    let mut cases: Vec<(&str, String)> = vec![
        ("alg none", format!("{}.{}.", b64(r#"{"alg":"none","typ":"JWT"}"#), parts[1])),
        ("tampered payload", format!("{}.{}.{}", parts[0], b64(&claims(&["read_data", "admin"]).custom.to_string()), parts[2])),
        ("signed by another key, same kid", sign(&other, claims(&["read_data"]))),
        ("garbage", "not-a-token".into()),
        ("oversized", format!("{}.{}.{}", parts[0], "A".repeat(20_000), parts[2])),
    ];
    let pem = k.pair.public_key().to_pem().expect("pem");
    let hs = HS256Key::from_bytes(pem.as_bytes()).with_key_id("grant-1");
    cases.push(("HS256 signed with the public key", hs.authenticate(claims(&["read_data"])).expect("hs")));
    let mut c = claims(&["read_data"]);
    c.expires_at = Some(UnixTimeStamp::from_secs(T0 - 120));
    cases.push(("expired", sign(&k, c)));
    let mut c = claims(&["read_data"]);
    c.invalid_before = Some(UnixTimeStamp::from_secs(T0 + 600));
    cases.push(("nbf in the future", sign(&k, c)));
    let mut c = claims(&["read_data"]);
    c.issuer = Some("evil".into());
    cases.push(("wrong iss", sign(&k, c)));
    let mut c = claims(&["read_data"]);
    c.audiences = Some(Audiences::AsString("someone-else".into()));
    cases.push(("wrong aud", sign(&k, c)));
    let mut c = claims(&["read_data"]);
    c.expires_at = None;
    cases.push(("missing exp", sign(&k, c)));
    let unknown = ES256KeyPair::generate().with_key_id("grant-9");
    cases.push(("unknown kid", unknown.sign(claims(&["read_data"])).expect("signs")));
    for (case, token) in &cases {
        assert_refused(&send(&plugin, token), 401, case);
    }
    assert_eq!(plugin.metric("check_header.denied"), Some(cases.len() as u64));
    assert_eq!(plugin.metric("check_header.allowed").unwrap_or(0), 0);
}

#[test]
fn a_missing_or_doubled_header_gets_401() {
    let k = keys();
    let plugin = start(&k, json!({}));
    assert_refused(&plugin.http().request(Request::get("/data")).run(), 401, "missing");
    let good = sign(&k, claims(&["read_data"]));
    let out = plugin.http().request(Request::get("/data").header("authz_complete", &good).header("authz_complete", "x")).run();
    assert_refused(&out, 401, "doubled");
}

#[test]
fn a_pem_key_works_and_bad_keys_are_config_errors() {
    let k = keys();
    let pem = k.pair.public_key().to_pem().expect("pem");
    let plugin = start(&k, json!({ "verification_key": pem }));
    assert!(send(&plugin, &sign(&k, claims(&["read_data"]))).upstream_request().is_some());
    // The policy server's other algorithm: an Ed25519 PEM verifies EdDSA grants.
    let ed = Ed25519KeyPair::generate();
    let plugin = start(&k, json!({ "verification_key": ed.public_key().to_pem() }));
    assert!(send(&plugin, &ed.sign(claims(&["read_data"])).expect("signs")).upstream_request().is_some());
    assert_refused(&send(&plugin, &sign(&k, claims(&["read_data"]))), 401, "ES256 grant against an Ed25519 key");
    // A PEM whose key bytes were cut short, and a private key instead of a public one.
    let pem = k.pair.public_key().to_pem().expect("pem");
    let cut: String = pem.lines().enumerate().filter(|(i, _)| *i != 1).map(|(_, l)| format!("{l}\n")).collect();
    let private = k.pair.to_pem().expect("pem");
    for bad in [cut, private] {
        let cfg = json!({ "read_header": "authz_complete", "verification_key": bad, "function": "read_data" });
        let err = Plugin::build(env!("CARGO_MANIFEST_DIR")).config(cfg).start().expect_err("a bad PEM is a configuration error");
        assert!(err.to_string().contains("not a PEM public key"), "{err}");
    }
    let cfg = json!({ "read_header": "authz_complete", "verification_key": "a89gAzxvls0JKAKIJSBnnvvvkIO", "function": "read_data" });
    let err = Plugin::build(env!("CARGO_MANIFEST_DIR")).config(cfg).start().expect_err("a bare secret without algorithms is a configuration error");
    assert!(err.to_string().contains("verification_key"), "{err}");
}
