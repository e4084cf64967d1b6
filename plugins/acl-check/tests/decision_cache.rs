//! acl-check's decision cache (`decision_cache_seconds`) on the real `.wasm` in weir-runtime,
//! the policy server stubbed per test. Time is the runtime's virtual clock: expiry is shown
//! by advancing it, never by waiting. A hit is a request that made no callout.

mod support;

use ct_codecs::{Base64UrlSafeNoPadding, Encoder};
use serde_json::{json, Value};
use std::time::Duration;
use weir_runtime::{Outcome, Plugin, Request, Response, CLOCK_START};

/// A compact JWS whose payload carries `exp` (seconds after the runtime clock's start) when
/// given. acl-check does not verify signatures (check-header does), so none is made.
fn grant(exp_in: Option<u64>) -> String {
    let start = CLOCK_START.as_secs();
    token_with(&match exp_in {
        Some(secs) => json!({ "exp": start + secs, "functions": ["read_data"] }),
        None => json!({ "functions": ["read_data"] }),
    })
}

/// A compact JWS with `payload`, an ES256 header and a placeholder signature.
fn token_with(payload: &Value) -> String {
    let b64 = |v: &Value| Base64UrlSafeNoPadding::encode_to_string(v.to_string()).expect("b64");
    format!(
        "{}.{}.c2lnbmF0dXJl",
        b64(&json!({ "alg": "ES256" })),
        b64(payload)
    )
}

/// A request variant, or a fixed policy-server answer, named per test case.
type MakeRequest = fn() -> Request;
use support::Answer;

fn config(extra: Value) -> Value {
    support::merged(
        json!({ "acl_server": "policy", "set_header": "authz_complete",
            "allowed_request_headers": ["authorization", "x-tenant"],
            "allowed_upstream_headers": ["x-user"], "decision_cache_seconds": 60 }),
        extra,
    )
}

fn start(extra: Value, policy: impl Fn(&Request) -> Response + Send + Sync + 'static) -> Plugin {
    support::start_with(config(extra), policy)
}

/// A policy server granting `token` with `cache_control` (if any) and naming the user.
fn granting(
    token: String,
    cache_control: Option<&'static str>,
) -> impl Fn(&Request) -> Response + Send + Sync + 'static {
    move |_| {
        let mut res = Response::status(200)
            .header("x-user", "alice")
            .body(token.clone());
        if let Some(value) = cache_control {
            res = res.header("cache-control", value);
        }
        res
    }
}

/// The request every test repeats, with client forgeries of the headers acl-check sets.
fn request() -> Request {
    Request::get("/data/x?y=1")
        .authority("app")
        .bearer("user.jwt.token")
        .header("x-tenant", "t1")
        .header("authz_complete", "forged")
        .header("x_user", "mallory")
}

fn run(plugin: &Plugin, request: Request) -> Outcome {
    let out = plugin.http().request(request).run();
    assert!(out.trap().is_none(), "trap: {:?}", out.trap());
    out
}

/// Asserts the request went upstream with the policy server's grant and user, no forgery.
#[track_caller]
fn assert_granted(out: &Outcome, token: &str) {
    let up = out
        .upstream_request()
        .unwrap_or_else(|| panic!("allowed; logs: {:?}", out.logs()));
    assert_eq!(up.headers().get_all("authz_complete"), [token]);
    assert_eq!(up.headers().get_all("x-user"), ["alice"]);
    assert_eq!(
        up.headers().get("x_user"),
        None,
        "the client's lookalike is removed"
    );
}

/// The plugin's decision slots in shared data.
fn slots(plugin: &Plugin) -> Vec<String> {
    let keys = plugin.shared_data_keys();
    keys.into_iter()
        .filter(|k| k.contains("acl-check/decision/"))
        .collect()
}

#[test]
fn an_identical_request_reuses_the_grant_without_a_callout() {
    let token = grant(Some(300));
    let plugin = start(json!({}), granting(token.clone(), None));
    let first = run(&plugin, request());
    assert_eq!(first.callouts().len(), 1);
    assert_granted(&first, &token);
    let second = run(&plugin, request());
    assert!(second.callouts().is_empty(), "served from the cache");
    assert_granted(&second, &token);
    assert_eq!(plugin.metric("acl_check.cache_hits"), Some(1));
    assert_eq!(plugin.metric("acl_check.allowed"), Some(2));
    // A header the policy server is not sent is not part of the key.
    let out = run(&plugin, request().header("cookie", "other"));
    assert!(out.callouts().is_empty());
}

#[test]
fn off_by_default() {
    let token = grant(Some(300));
    let plugin = start(
        json!({ "decision_cache_seconds": 0 }),
        granting(token, None),
    );
    run(&plugin, request());
    assert_eq!(run(&plugin, request()).callouts().len(), 1);
    assert_eq!(slots(&plugin), Vec::<String>::new());
}

#[test]
fn a_request_differing_in_any_sent_attribute_misses() {
    let token = grant(Some(300));
    let variants: [(&str, MakeRequest); 7] = [
        ("method", || {
            Request::new("POST", "/data/x?y=1")
                .authority("app")
                .bearer("user.jwt.token")
                .header("x-tenant", "t1")
        }),
        ("path", || {
            Request::get("/data/x?y=2")
                .authority("app")
                .bearer("user.jwt.token")
                .header("x-tenant", "t1")
        }),
        ("host", || request().authority("other")),
        ("authorization", || request().bearer("other.jwt.token")),
        ("a header's value", || {
            Request::get("/data/x?y=1")
                .authority("app")
                .bearer("user.jwt.token")
                .header("x-tenant", "t2")
        }),
        ("a second value", || request().header("x-tenant", "t2")),
        ("a missing header", || {
            Request::get("/data/x?y=1")
                .authority("app")
                .bearer("user.jwt.token")
        }),
    ];
    for (case, variant) in variants {
        let plugin = start(json!({}), granting(token.clone(), None));
        run(&plugin, request());
        assert!(
            run(&plugin, request()).callouts().is_empty(),
            "{case}: cached"
        );
        let out = run(&plugin, variant());
        assert_eq!(out.callouts().len(), 1, "{case}: must miss");
        assert_granted(&out, &token);
    }
}

#[test]
fn two_configurations_never_share_a_decision() {
    let token = grant(Some(300));
    let first = start(json!({}), granting(token.clone(), None));
    run(&first, request());
    // Same plugin name and root id, same VM id: one shared-data namespace.
    for (case, other) in [
        ("path", json!({ "path": "/v2/check" })),
        ("cluster", json!({ "acl_server": "policy2" })),
        (
            "upstream headers",
            json!({ "allowed_upstream_headers": [] }),
        ),
    ] {
        let second = Plugin::build(env!("CARGO_MANIFEST_DIR"))
            .same_vm_id_as(&first)
            .config(config(other))
            .upstream("policy", granting(token.clone(), None))
            .upstream("policy2", granting(token.clone(), None))
            .start()
            .expect("starts");
        assert_eq!(run(&second, request()).callouts().len(), 1, "{case}");
    }
    let same = Plugin::build(env!("CARGO_MANIFEST_DIR"))
        .same_vm_id_as(&first)
        .config(config(json!({})))
        .start()
        .expect("starts");
    assert!(
        run(&same, request()).callouts().is_empty(),
        "same configuration: shared"
    );
}

#[test]
fn entries_expire_after_decision_cache_seconds() {
    let token = grant(Some(3000));
    let plugin = start(
        json!({ "decision_cache_seconds": 10 }),
        granting(token, None),
    );
    run(&plugin, request());
    plugin.advance(Duration::from_secs(9));
    assert!(run(&plugin, request()).callouts().is_empty(), "9 s: cached");
    plugin.advance(Duration::from_secs(1));
    assert_eq!(run(&plugin, request()).callouts().len(), 1, "10 s: expired");
}

#[test]
fn entries_never_outlive_the_grant() {
    let plugin = start(
        json!({ "decision_cache_seconds": 3600 }),
        granting(grant(Some(5)), None),
    );
    run(&plugin, request());
    plugin.advance(Duration::from_secs(4));
    assert!(run(&plugin, request()).callouts().is_empty(), "4 s: cached");
    plugin.advance(Duration::from_secs(1));
    assert_eq!(
        run(&plugin, request()).callouts().len(),
        1,
        "at exp: expired"
    );

    // A grant without a readable exp is never reused.
    for token in [grant(None), format!("{}.e30.c2ln", "eyJhbGciOiJFUzI1NiJ9")] {
        let plugin = start(json!({}), granting(token, None));
        run(&plugin, request());
        assert_eq!(run(&plugin, request()).callouts().len(), 1);
    }
}

#[test]
fn the_policy_servers_max_age_is_honoured() {
    let plugin = start(
        json!({}),
        granting(grant(Some(300)), Some("private, max-age=3")),
    );
    run(&plugin, request());
    plugin.advance(Duration::from_secs(2));
    assert!(run(&plugin, request()).callouts().is_empty(), "2 s: cached");
    plugin.advance(Duration::from_secs(1));
    assert_eq!(
        run(&plugin, request()).callouts().len(),
        1,
        "3 s: past max-age"
    );
    // A longer max-age does not extend decision_cache_seconds.
    let plugin = start(
        json!({ "decision_cache_seconds": 5 }),
        granting(grant(Some(300)), Some("max-age=100")),
    );
    run(&plugin, request());
    plugin.advance(Duration::from_secs(5));
    assert_eq!(
        run(&plugin, request()).callouts().len(),
        1,
        "5 s: own limit"
    );
}

#[test]
fn no_store_no_cache_and_unreadable_max_age_forbid_reuse() {
    for value in [
        "no-store",
        "private, no-cache",
        "NO-STORE",
        "max-age=0",
        "max-age=soon",
        "max-age=30, max-age=x",
    ] {
        let plugin = start(json!({}), granting(grant(Some(300)), Some(value)));
        assert_granted(&run(&plugin, request()), &grant(Some(300)));
        assert_eq!(run(&plugin, request()).callouts().len(), 1, "{value}");
        assert_eq!(
            slots(&plugin),
            Vec::<String>::new(),
            "{value}: nothing stored"
        );
    }
}

#[test]
fn denials_and_errors_are_not_cached() {
    let cases: [(&str, Answer); 6] = [
        ("401", |_| Response::status(401)),
        ("403", |_| Response::status(403)),
        ("500", |_| Response::status(500)),
        ("down", |_| Response::failure()),
        ("slow past the timeout", |_| {
            Response::status(200)
                .body(grant(Some(300)))
                .delay(Duration::from_millis(500))
        }),
        ("garbage body", |_| Response::status(200).body("<html>")),
    ];
    for (case, policy) in cases {
        for lenient in [false, true] {
            let plugin = start(json!({ "failure_mode_allow": lenient }), policy);
            run(&plugin, request());
            assert_eq!(run(&plugin, request()).callouts().len(), 1, "{case}");
            assert_eq!(slots(&plugin), Vec::<String>::new(), "{case}");
        }
    }
}

#[test]
fn every_vm_shares_the_cache() {
    let token = grant(Some(300));
    let plugin = Plugin::build(env!("CARGO_MANIFEST_DIR"))
        .config(config(json!({})))
        .upstream("policy", granting(token.clone(), None))
        .workers(2)
        .start()
        .expect("starts");
    let first = plugin.http_on(0).request(request()).run();
    assert_eq!(first.callouts().len(), 1);
    let second = plugin.http_on(1).request(request()).run();
    assert!(second.callouts().is_empty(), "the other VM's decision");
    assert_granted(&second, &token);
}

#[test]
fn shared_data_never_holds_more_than_decision_cache_entries() {
    let token = grant(Some(300));
    let plugin = start(
        json!({ "decision_cache_entries": 4 }),
        granting(token.clone(), None),
    );
    for n in 0..64 {
        let path = format!("/data/{n}");
        let out = run(&plugin, Request::get(&path).authority("app").bearer("t"));
        assert_granted(&out, &token);
    }
    let slots = slots(&plugin);
    assert!(!slots.is_empty() && slots.len() <= 4, "{slots:?}");
    assert_eq!(
        plugin.shared_data_keys().len(),
        slots.len(),
        "nothing else kept"
    );
    // Whatever the collisions, every request still got its own request's decision.
    let out = run(
        &plugin,
        Request::get("/data/63").authority("app").bearer("t"),
    );
    assert_granted(&out, &token);
}

#[test]
fn a_decision_larger_than_an_entry_is_not_stored() {
    // A 12 KiB grant passes max_token_bytes (16 KiB) but not the 8 KiB entry bound.
    let payload = json!({ "exp": CLOCK_START.as_secs() + 300, "pad": "p".repeat(9000) });
    let big = token_with(&payload);
    assert!((8 * 1024..16 * 1024).contains(&big.len()));
    let plugin = start(json!({}), granting(big.clone(), None));
    assert_granted(&run(&plugin, request()), &big);
    assert_eq!(run(&plugin, request()).callouts().len(), 1);
    assert_eq!(slots(&plugin), Vec::<String>::new());
}

/// Stores one decision in a one-slot cache; gives the plugin, the slot and its bytes.
fn one_stored_entry() -> (Plugin, String, Vec<u8>) {
    let plugin = start(
        json!({ "decision_cache_entries": 1 }),
        granting(grant(Some(300)), None),
    );
    run(&plugin, request());
    let [slot] = <[String; 1]>::try_from(slots(&plugin)).expect("one slot");
    let valid = plugin.shared_data(&slot).expect("stored");
    (plugin, slot, valid)
}

/// Each planted value is a miss: the request calls out and gets the fresh grant (which
/// then replaces the planted value).
fn assert_each_misses(plugin: &Plugin, slot: &str, planted: Vec<(String, Vec<u8>)>) {
    for (case, bytes) in planted {
        plugin.set_shared_data(slot, &bytes);
        let out = run(plugin, request());
        assert_eq!(out.callouts().len(), 1, "{case}: a miss");
        assert_granted(&out, &grant(Some(300)));
    }
}

#[test]
fn garbage_in_a_slot_is_a_miss() {
    let (plugin, slot, valid) = one_stored_entry();
    let mut planted: Vec<(String, Vec<u8>)> = (0..valid.len())
        .map(|n| (format!("cut at {n}"), valid[..n].to_vec()))
        .collect();
    planted.push(("trailing byte".into(), [valid.as_slice(), b"x"].concat()));
    // Flips in the magic, the key, the expiry (by 2^32 s) and the token's length. (A flip in
    // the token or a header value can give another well-formed entry: entries are not
    // authenticated, see the README's security notes.)
    for at in [0, 4, 20, 40, 44] {
        let mut flipped = valid.clone();
        flipped[at] ^= 0x01;
        planted.push((format!("flip at {at}"), flipped));
    }
    planted.push(("9000 bytes of 0xff".into(), vec![0xff; 9000]));
    assert_each_misses(&plugin, &slot, planted);
    // The slot holds a good entry again: a hit.
    assert!(run(&plugin, request()).callouts().is_empty());
}

#[test]
fn planted_entries_are_checked_like_a_fresh_answer() {
    // A stored entry rewritten field by field: a token that is no JWS, a header this
    // configuration never copies, an expiry beyond decision_cache_seconds. All misses.
    let (plugin, slot, valid) = one_stored_entry();
    let at = |needle: &[u8]| {
        valid
            .windows(needle.len())
            .position(|w| w == needle)
            .expect("present")
    };
    let mut bad_token = valid.clone();
    bad_token[at(b".c2lnbmF0dXJl") + 1] = b'$';
    let mut bad_header = valid.clone();
    let name = at(b"x-user");
    bad_header[name..name + 6].copy_from_slice(b"x-role");
    let mut far = valid.clone();
    // The expiry follows the 4-byte magic and the 32-byte key.
    let until = 4 + 32;
    far[until..until + 8].copy_from_slice(&(CLOCK_START.as_secs() + 3000).to_le_bytes());
    let planted = [
        ("token", bad_token),
        ("header", bad_header),
        ("expiry", far),
    ];
    assert_each_misses(
        &plugin,
        &slot,
        planted.map(|(case, bytes)| (case.to_owned(), bytes)).into(),
    );
}

#[test]
fn bad_cache_settings_are_refused_naming_the_field() {
    for (field, bad, range) in [
        ("decision_cache_seconds", json!(3601), "between 0 and 3600"),
        (
            "decision_cache_seconds",
            json!(u64::MAX),
            "between 0 and 3600",
        ),
        ("decision_cache_seconds", json!(-1), ""),
        ("decision_cache_entries", json!(0), "between 1 and 16384"),
        (
            "decision_cache_entries",
            json!(16385),
            "between 1 and 16384",
        ),
        ("decision_cache_entries", json!("many"), ""),
    ] {
        let mut extra = json!({});
        extra[field] = bad.clone();
        let err = Plugin::build(env!("CARGO_MANIFEST_DIR"))
            .config(config(extra))
            .start()
            .expect_err("refused");
        let err = err.to_string();
        assert!(err.contains(&format!("at {field}")), "{field}={bad}: {err}");
        assert!(err.contains(range), "{field}={bad}: {err}");
    }
}
