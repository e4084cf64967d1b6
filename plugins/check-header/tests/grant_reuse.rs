//! A valid grant used again: on another request (`require_request_binding`) or a second
//! time (`single_use_grants`, across worker VMs). Both are refused with 401, and the
//! upstream sees nothing.

mod grants;

use std::time::Duration;

use grants::*;
use serde_json::json;
use weir_runtime::{Plugin, Request};
use weir_test_jwt::jwt_simple::prelude::*;

fn with_grant(method: &str, host: &str, path: &str, grant: &str) -> Request {
    Request::new(method, path)
        .authority(host)
        .header("authz_complete", grant)
}

#[test]
fn a_bound_grant_passes_only_on_the_request_it_was_issued_for() {
    let k = keys();
    let plugin = start(&k, json!({ "require_request_binding": true }));
    let grant = sign(
        &k,
        bound(claims(&["read_data"]), "GET", "app.test", "/data"),
    );
    let run = |method: &str, host: &str, path: &str| {
        status(
            &plugin
                .http()
                .request(with_grant(method, host, path, &grant))
                .run(),
        )
    };
    for (method, host, path) in [
        ("GET", "app.test", "/data"),
        ("GET", "APP.test", "/data/x?y=1"),
        ("GET", "app.test", "/data?q=/other"),
    ] {
        assert_eq!(run(method, host, path), 200, "{method} {host} {path}");
    }
    for (method, host, path) in [
        ("POST", "app.test", "/data"),
        ("GET", "other.test", "/data"),
        ("GET", "app.test", "/database"),
        ("GET", "app.test", "/"),
        ("GET", "app.test", "/data/../admin"),
        ("GET", "app.test", "/data/%2E%2e/admin"),
        ("GET", "app.test", "/data/x%2Fy"),
        ("GET", "app.test", "/data/./x"),
    ] {
        assert_eq!(run(method, host, path), 401, "{method} {host} {path}");
    }
    let unbound = sign(&k, claims(&["read_data"]));
    assert_eq!(
        status(
            &plugin
                .http()
                .request(with_grant("GET", "app.test", "/data", &unbound))
                .run()
        ),
        401,
        "an unbound grant"
    );
    let out = plugin
        .http()
        .request(with_grant("GET", "app.test", "/admin", &grant))
        .run();
    assert!(
        out.logged("grant token refused: issued for another request"),
        "{:?}",
        out.logs()
    );

    // Off by default: the same grant on another path passes a plugin that does not ask.
    let lenient = start(&k, json!({}));
    assert_eq!(
        status(
            &lenient
                .http()
                .request(with_grant("POST", "other.test", "/admin", &grant))
                .run()
        ),
        200
    );
}

fn grant_with_jti(k: &Keys, jti: &str, at: u64) -> String {
    let mut c = claims(&["read_data"]);
    c.jwt_id = Some(jti.into());
    c.issued_at = Some(UnixTimeStamp::from_secs(T0 + at));
    c.invalid_before = Some(UnixTimeStamp::from_secs(T0 + at));
    c.expires_at = Some(UnixTimeStamp::from_secs(T0 + at + 60));
    sign(k, c)
}

#[test]
fn a_single_use_grant_passes_once_across_workers() {
    let k = keys();
    let mut cfg = json!({ "read_header": "authz_complete", "verification_key": jwks(&k), "function": "read_data",
        "issuer": "weir-policy-server", "audiences": ["check-header"], "single_use_grants": true });
    let plugin = Plugin::build(env!("CARGO_MANIFEST_DIR"))
        .config(cfg.clone())
        .workers(2)
        .start()
        .expect("starts");
    let send = |worker: usize, token: &str| {
        status(
            &plugin
                .http_on(worker)
                .request(Request::get("/data").header("authz_complete", token))
                .run(),
        )
    };
    let first = grant_with_jti(&k, "jti-1", 0);
    assert_eq!(send(0, &first), 200);
    assert_eq!(send(1, &first), 401, "replayed on another worker's VM");
    assert_eq!(send(0, &first), 401, "replayed on the same VM");
    assert_eq!(
        send(1, &grant_with_jti(&k, "jti-2", 0)),
        200,
        "another grant is unaffected"
    );
    assert_eq!(
        send(0, &sign(&k, claims(&["read_data"]))),
        401,
        "a grant without jti cannot be tracked: refused"
    );

    // The cache is bounded: one bucket of 8 live grants; the 9th is refused (503), not
    // recorded over a live one, until the earlier grants expire (exp + clock skew).
    cfg["replay_cache_grants"] = json!(8);
    let small = Plugin::build(env!("CARGO_MANIFEST_DIR"))
        .config(cfg)
        .start()
        .expect("starts");
    let send = |token: &str| {
        status(
            &small
                .http()
                .request(Request::get("/data").header("authz_complete", token))
                .run(),
        )
    };
    for i in 0..8 {
        assert_eq!(send(&grant_with_jti(&k, &format!("a{i}"), 0)), 200);
    }
    let out = small
        .http()
        .request(Request::get("/data").header("authz_complete", &grant_with_jti(&k, "a8", 0)))
        .run();
    assert_eq!(status(&out), 503);
    assert!(out.logged("replay cache full"), "{:?}", out.logs());
    small.advance(Duration::from_secs(121));
    assert_eq!(
        send(&grant_with_jti(&k, "b0", 121)),
        200,
        "expired entries make room"
    );
    assert_eq!(send(&grant_with_jti(&k, "b0", 121)), 401);
}
