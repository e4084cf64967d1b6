//! The verified-token cache (`verified_cache_entries`): a grant presented again skips the
//! signature check, but everything else is decided per request: time, single use, and a
//! token differing in any byte (a forged signature on a known payload) is verified in full.
//! Costs are the runtime's instruction counts: deterministic, not timed.

mod grants;

use std::time::Duration;

use grants::*;
use serde_json::{json, Value};
use weir_runtime::{Outcome, Plugin, Request};
use weir_test_jwt::jwt_simple::prelude::*;

fn send(plugin: &Plugin, token: &str) -> Outcome {
    let out = plugin
        .http()
        .request(Request::get("/data").header("authz_complete", token))
        .run();
    assert!(out.trap().is_none(), "trap: {:?}", out.trap());
    out
}

/// Sends `token` twice; both must pass. Returns the instructions of each request.
fn first_and_again(plugin: &Plugin, token: &str) -> (u64, u64) {
    let first = send(plugin, token);
    let again = send(plugin, token);
    assert_eq!((status(&first), status(&again)), (200, 200));
    (first.instructions(), again.instructions())
}

/// An EdDSA signer and the JWKS that verifies it.
fn eddsa() -> (Ed25519KeyPair, String) {
    let pair = weir_test_jwt::ed25519_key("grant-ed");
    let doc = weir_test_jwt::jwks([weir_test_jwt::ed25519_jwk(&pair)]);
    (pair, doc)
}

#[test]
fn a_token_seen_again_costs_a_hundredth_of_the_first_for_es256_and_eddsa() {
    let k = keys();
    let token = sign(&k, claims(&["read_data"]));
    let (first, again) = first_and_again(&start(&k, json!({})), &token);
    println!("ES256: first {first}, cached {again} instructions");
    assert!(again * 100 < first, "ES256: first {first}, cached {again}");

    let (pair, doc) = eddsa();
    let token = pair.sign(claims(&["read_data"])).expect("signs");
    let (first, again) = first_and_again(&start(&k, json!({ "verification_key": doc })), &token);
    println!("EdDSA: first {first}, cached {again} instructions");
    assert!(again * 100 < first, "EdDSA: first {first}, cached {again}");
}

#[test]
fn size_zero_disables_the_cache() {
    let k = keys();
    let token = sign(&k, claims(&["read_data"]));
    let (first, again) =
        first_and_again(&start(&k, json!({ "verified_cache_entries": 0 })), &token);
    assert!(
        again * 2 > first,
        "no cache: every request verifies ({first}, then {again})"
    );
}

#[test]
fn a_cached_token_expires_at_exp_plus_skew() {
    let k = keys();
    let plugin = start(&k, json!({}));
    let token = sign(&k, claims(&["read_data"])); // exp T0 + 60, skew 60
    assert_eq!(status(&send(&plugin, &token)), 200);
    plugin.advance(Duration::from_secs(120));
    let out = send(&plugin, &token);
    assert_eq!(status(&out), 200, "within the skew");
    plugin.advance(Duration::from_secs(1));
    assert_eq!(status(&send(&plugin, &token)), 401, "past exp + skew");
}

#[test]
fn a_forged_signature_on_a_cached_payload_is_refused() {
    let k = keys();
    let plugin = start(&k, json!({}));
    let c = claims(&["read_data"]);
    let token = sign(&k, c.clone());
    assert_eq!(status(&send(&plugin, &token)), 200);
    // The attacker's key, with the same kid: the same header and payload, its own signature.
    let attacker = Keys {
        pair: ES256KeyPair::generate().with_key_id("grant-1"),
    };
    let forged_by = sign(&attacker, c);
    let (signed, _) = token.rsplit_once('.').expect("jws");
    let (forged_signed, signature) = forged_by.rsplit_once('.').expect("jws");
    assert_eq!(
        signed, forged_signed,
        "header and payload are the cached token's"
    );
    let forged = format!("{signed}.{signature}");
    assert_ne!(forged, token);
    assert_eq!(status(&send(&plugin, &forged)), 401);
    assert_eq!(
        status(&send(&plugin, &token)),
        200,
        "the genuine token still passes"
    );
}

/// `token` with the base64url character at `at` replaced by another.
fn one_char_off(token: &str, at: usize) -> String {
    let swap = if &token[at..=at] == "A" { "B" } else { "A" };
    format!("{}{swap}{}", &token[..at], &token[at + 1..])
}

#[test]
fn a_token_one_byte_off_a_cached_one_is_refused() {
    let k = keys();
    let plugin = start(&k, json!({}));
    let token = sign(&k, claims(&["read_data"]));
    let (header_end, signature_start) = (
        token.find('.').expect("jws"),
        token.rfind('.').expect("jws") + 1,
    );
    assert_eq!(status(&send(&plugin, &token)), 200);
    // The cached header and payload under an altered signature, then the cached signature
    // under an altered header or payload (one character each; never a last character,
    // whose low bits may be padding).
    let altered = [
        ("signature", signature_start + 10),
        ("payload", header_end + 10),
        ("header", 5),
    ];
    for (part, at) in altered {
        let forged = one_char_off(&token, at);
        assert_eq!(forged.len(), token.len());
        let out = send(&plugin, &forged);
        assert_eq!(status(&out), 401, "{part} altered at {at}");
    }
    let longer = format!("{token}A");
    assert_eq!(status(&send(&plugin, &longer)), 401, "a byte appended");
    assert_eq!(
        status(&send(&plugin, &token)),
        200,
        "the genuine token still passes"
    );
}

#[test]
fn a_cached_single_use_grant_is_still_refused_the_second_time() {
    let k = keys();
    let plugin = start(&k, json!({ "single_use_grants": true }));
    let mut c = claims(&["read_data"]);
    c.jwt_id = Some("once".into());
    let token = sign(&k, c);
    let first = send(&plugin, &token);
    assert_eq!(status(&first), 200);
    let again = send(&plugin, &token);
    assert_eq!(status(&again), 401, "replayed");
    assert!(
        again.instructions() * 10 < first.instructions(),
        "the replay was a cache hit"
    );
}

#[test]
fn the_function_and_request_binding_are_checked_on_every_hit() {
    let k = keys();
    let plugin = start(&k, json!({ "require_request_binding": true }));
    let token = sign(
        &k,
        bound(claims(&["read_data"]), "GET", "app.test", "/data"),
    );
    let at = |path: &str| {
        let req = Request::get(path)
            .authority("app.test")
            .header("authz_complete", &token);
        status(&plugin.http().request(req).run())
    };
    assert_eq!(at("/data"), 200);
    assert_eq!(at("/other"), 401, "another request, same cached token");
    let other: Value = json!({ "function": "write_data" });
    let writer = start(&k, other);
    let token = sign(&k, claims(&["read_data"]));
    assert_eq!(status(&send(&writer, &token)), 403);
    assert_eq!(status(&send(&writer, &token)), 403);
}
