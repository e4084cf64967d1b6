//! check-header on the real `.wasm` in weir-runtime, with grant tokens signed here by
//! weir-test-jwt. The runtime's clock starts at `weir_runtime::CLOCK_START` (`T0`), so token
//! times are written relative to it. Every refusal also checks that the upstream never saw the request.

mod grants;

use grants::*;
use serde_json::{json, Value};
use weir_runtime::{Outcome, Plugin, Request};
use weir_test_jwt::jwt_simple::prelude::*;
use weir_test_jwt::{Forger, Forgery};

fn send(plugin: &Plugin, token: &str) -> Outcome {
    plugin
        .http()
        .request(Request::get("/data").header("authz_complete", token))
        .run()
}

fn assert_refused(out: &Outcome, status: u16, case: &str) {
    assert!(out.trap().is_none(), "{case}: trap {:?}", out.trap());
    assert_eq!(
        out.local_reply().map(|r| r.status()),
        Some(status),
        "{case}: {:?}",
        out.logs()
    );
    assert!(
        out.upstream_request().is_none(),
        "{case}: the upstream must not see it"
    );
    if status == 401 {
        let res = out.response().expect("reply");
        assert!(
            res.headers()
                .get("www-authenticate")
                .is_some_and(|v| v.starts_with("Bearer")),
            "{case}"
        );
    }
}

#[test]
fn a_valid_grant_passes_and_is_stripped() {
    let k = keys();
    let plugin = start(
        &k,
        json!({ "claim_to_headers": [{ "claim": "sub", "header": "x-user" }] }),
    );
    let out = send(&plugin, &sign(&k, claims(&["read_data", "write_data"])));
    let up = out.upstream_request().expect("allowed");
    assert_eq!(
        up.headers().get("authz_complete"),
        None,
        "forward defaults to false"
    );
    assert_eq!(up.headers().get("x-user"), Some("alice"));
    let plugin = start(&k, json!({ "forward": true }));
    let token = sign(&k, claims(&["read_data"]));
    let out = send(&plugin, &token);
    assert_eq!(
        out.upstream_request()
            .expect("allowed")
            .headers()
            .get("authz_complete"),
        Some(token.as_str())
    );
}

#[test]
fn a_valid_grant_without_the_function_gets_403() {
    let k = keys();
    let out = send(&start(&k, json!({})), &sign(&k, claims(&["write_data"])));
    assert_refused(&out, 403, "no function");
}

/// The one forgery matrix (weir-test-jwt), every case refused with 401; the configured JWKS
/// text itself is tried as an HMAC secret.
#[test]
fn the_attack_matrix_gets_401() {
    let k = keys();
    let plugin = start(&k, json!({}));
    let control = sign_with_header(
        &k,
        json!({ "alg": "ES256", "kid": "grant-1", "typ": "JWT" }),
        &claims(&["read_data"]),
    );
    assert!(
        send(&plugin, &control).upstream_request().is_some(),
        "sign_with_header signs validly"
    );
    let cases = Forger::new(&k.pair, claims(&["read_data"]), T0)
        .hmac_secret(jwks(&k).as_bytes())
        .all();
    assert_eq!(cases.len(), Forgery::ALL.len(), "every case applies");
    for (case, token) in &cases {
        assert_refused(&send(&plugin, token), 401, case.name());
    }
    assert_eq!(
        plugin.metric("check_header.denied"),
        Some(cases.len() as u64)
    );
    assert_eq!(
        plugin.metric("check_header.allowed"),
        Some(1),
        "only the control"
    );
}

#[test]
fn a_missing_or_doubled_header_gets_401() {
    let k = keys();
    let plugin = start(&k, json!({}));
    assert_refused(
        &plugin.http().request(Request::get("/data")).run(),
        401,
        "missing",
    );
    let good = sign(&k, claims(&["read_data"]));
    let out = plugin
        .http()
        .request(
            Request::get("/data")
                .header("authz_complete", &good)
                .header("authz_complete", "x"),
        )
        .run();
    assert_refused(&out, 401, "doubled");
}

#[test]
fn a_pem_key_works_and_bad_keys_are_config_errors() {
    let k = keys();
    let pem = k.pair.public_key().to_pem().expect("pem");
    let plugin = start(&k, json!({ "verification_key": pem }));
    assert!(send(&plugin, &sign(&k, claims(&["read_data"])))
        .upstream_request()
        .is_some());
    // The policy server's other algorithm: an Ed25519 PEM verifies EdDSA grants.
    let ed = Ed25519KeyPair::generate();
    let plugin = start(&k, json!({ "verification_key": ed.public_key().to_pem() }));
    assert!(
        send(&plugin, &ed.sign(claims(&["read_data"])).expect("signs"))
            .upstream_request()
            .is_some()
    );
    assert_refused(
        &send(&plugin, &sign(&k, claims(&["read_data"]))),
        401,
        "ES256 grant against an Ed25519 key",
    );
    // A PEM whose key bytes were cut short, and a private key instead of a public one.
    let pem = k.pair.public_key().to_pem().expect("pem");
    let cut: String = pem
        .lines()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    let private = k.pair.to_pem().expect("pem");
    for bad in [cut, private] {
        let cfg = json!({ "read_header": "authz_complete", "verification_key": bad, "function": "read_data" });
        let err = Plugin::build(env!("CARGO_MANIFEST_DIR"))
            .config(cfg)
            .start()
            .expect_err("a bad PEM is a configuration error");
        assert!(err.to_string().contains("not a PEM public key"), "{err}");
    }
    let cfg = json!({ "read_header": "authz_complete", "verification_key": "a89gAzxvls0JKAKIJSBnnvvvkIO", "function": "read_data" });
    let err = Plugin::build(env!("CARGO_MANIFEST_DIR"))
        .config(cfg)
        .start()
        .expect_err("a bare secret without algorithms is a configuration error");
    assert!(err.to_string().contains("verification_key"), "{err}");
}

/// Every spelling of `name` an upstream reads as the same header (`x_user` for `x-user`).
fn spellings<'a>(headers: &'a weir_runtime::Headers, name: &str) -> Vec<(&'a str, &'a str)> {
    headers
        .iter()
        .filter(|(k, _)| k.replace('_', "-") == name)
        .collect()
}

#[test]
fn client_copies_of_claim_headers_never_reach_the_upstream() {
    let k = keys();
    let plugin = start(
        &k,
        json!({ "claim_to_headers": [{ "claim": "sub", "header": "x-user" }, { "claim": "tenant", "header": "x-tenant" }] }),
    );
    let spoofed = |token: &str| {
        Request::get("/data")
            .header("authz_complete", token)
            .header("x-user", "mallory")
            .header("x_user", "mallory")
            .header("X_User", "root")
            .header("x_tenant", "evil")
    };
    // A grant with `sub` but no `tenant`: x-user is the grant's, x-tenant absent in every spelling.
    let out = plugin
        .http()
        .request(spoofed(&sign(&k, claims(&["read_data"]))))
        .run();
    let up = out.upstream_request().expect("allowed");
    assert_eq!(spellings(up.headers(), "x-user"), [("x-user", "alice")]);
    assert_eq!(spellings(up.headers(), "x-tenant"), []);
    assert_eq!(
        spellings(up.headers(), "authz-complete"),
        [],
        "the grant and its lookalikes are stripped"
    );
    // Refusals reach no upstream at all.
    let refused = plugin.http().request(spoofed("not-a-token")).run();
    assert_refused(&refused, 401, "spoofed headers, invalid grant");
}

#[test]
fn huge_headers_and_cookies_never_trap() {
    let k = keys();
    let plugin = start(
        &k,
        json!({ "claim_to_headers": [{ "claim": "sub", "header": "x-user" }] }),
    );
    let grant = sign(&k, claims(&["read_data"]));
    let cookie = format!("session={}", "c".repeat(256 * 1024));
    let out = plugin
        .http()
        .request(
            Request::get("/data")
                .header("authz_complete", &grant)
                .header("cookie", &cookie),
        )
        .run();
    assert!(out.trap().is_none(), "{:?}", out.trap());
    assert!(
        out.upstream_request().is_some(),
        "an unrelated large cookie does not change the decision"
    );
    let huge = format!("{grant}{}", "A".repeat(256 * 1024));
    assert_refused(&send(&plugin, &huge), 401, "a 256 KiB grant header");
    let many = (0..2000).fold(
        Request::get("/data").header("authz_complete", &grant),
        |r, i| r.header("x_user", &i.to_string()),
    );
    let out = plugin.http().request(many).run();
    assert!(out.trap().is_none(), "{:?}", out.trap());
    assert_eq!(
        spellings(out.upstream_request().expect("allowed").headers(), "x-user"),
        [("x-user", "alice")]
    );
}

#[test]
fn configuration_is_strict_and_names_the_field() {
    let k = keys();
    let refused = |extra: Value, remove: &[&str]| {
        let mut cfg = json!({ "read_header": "authz_complete", "verification_key": jwks(&k), "function": "read_data",
            "issuer": "weir-policy-server", "audiences": ["check-header"] });
        for key in remove {
            cfg.as_object_mut().expect("object").remove(*key);
        }
        cfg.as_object_mut()
            .expect("object")
            .extend(extra.as_object().expect("object").clone());
        Plugin::build(env!("CARGO_MANIFEST_DIR"))
            .config(cfg)
            .start()
            .map(|_| ())
            .expect_err("refused")
            .to_string()
    };
    assert!(refused(json!({}), &["issuer"]).contains("issuer: required"));
    assert!(refused(json!({}), &["audiences"]).contains("audiences: required"));
    assert!(refused(json!({ "audiences": [] }), &[]).contains("audiences: required"));
    assert!(
        refused(json!({ "allow_any_issuer": true }), &[]).contains("issuer and allow_any_issuer")
    );
    // Waived by name, both start.
    let cfg = json!({ "read_header": "authz_complete", "verification_key": jwks(&k), "function": "read_data",
        "allow_any_issuer": true, "allow_any_audience": true });
    let plugin = Plugin::build(env!("CARGO_MANIFEST_DIR"))
        .config(cfg)
        .start()
        .expect("waived");
    let mut c = claims(&["read_data"]);
    c.issuer = Some("anyone".into());
    assert!(send(&plugin, &sign(&k, c)).upstream_request().is_some());

    // A short HMAC secret can be brute-forced from one token: 31 bytes refused, 32 accepted.
    let hmac = |secret: &str| json!({ "verification_key": secret, "algorithms": ["HS256"] });
    assert!(refused(hmac(&"s".repeat(31)), &[]).contains("at least 32"));
    let mut cfg = json!({ "read_header": "authz_complete", "function": "read_data", "issuer": "weir-policy-server", "audiences": ["check-header"] });
    cfg.as_object_mut()
        .expect("object")
        .extend(hmac(&"s".repeat(32)).as_object().expect("object").clone());
    Plugin::build(env!("CARGO_MANIFEST_DIR"))
        .config(cfg)
        .start()
        .expect("a 32-byte secret");

    for field in [
        "jwks_refresh_seconds",
        "jwks_min_refetch_seconds",
        "clock_skew_seconds",
        "replay_cache_grants",
        "verified_cache_entries",
    ] {
        let err = refused(json!({ field: u64::MAX }), &[]);
        assert!(
            err.contains(field) && err.contains("must be between"),
            "{field}: {err}"
        );
    }
}
