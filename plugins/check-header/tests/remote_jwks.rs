//! check-header with `jwks_cluster`: the JWKS is fetched by a background job when the plugin
//! is configured, shared by every VM, refreshed on its period, refetched (rate-limited) when
//! a token names an unknown `kid`, and never replaced by a broken document. The provider is
//! a handler on the runtime's cluster; it counts the fetches.

mod grants;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use grants::status;
use serde_json::{json, Value};
use weir_runtime::{Outcome, Plugin, Request, Response};
use weir_test_jwt::jwt_simple::prelude::*;

/// The runtime's clock start: token times are relative to it.
const T0: u64 = weir_runtime::CLOCK_START.as_secs();

fn key(kid: &str) -> ES256KeyPair {
    weir_test_jwt::es256_key(kid)
}

fn jwks(keys: &[&ES256KeyPair]) -> String {
    weir_test_jwt::jwks(keys.iter().map(|k| weir_test_jwt::es256_jwk(k)))
}

/// A grant for `read_data`, valid for an hour from `at` seconds after T0.
fn grant(k: &ES256KeyPair, at: u64) -> String {
    let claims = Claims::with_custom_claims(
        json!({ "functions": ["read_data"] }),
        Duration::from_secs(3600).into(),
    )
    .with_issuer("weir-policy-server")
    .with_audience("check-header");
    let mut claims = claims;
    claims.issued_at = Some(UnixTimeStamp::from_secs(T0 + at));
    claims.invalid_before = Some(UnixTimeStamp::from_secs(T0 + at));
    claims.expires_at = Some(UnixTimeStamp::from_secs(T0 + at + 3600));
    k.sign(claims).expect("signs")
}

/// The identity provider's JWKS endpoint: serves `doc` (or the status in `status`), counts calls.
#[derive(Clone)]
struct Provider {
    doc: Arc<Mutex<(u16, String)>>,
    fetches: Arc<AtomicUsize>,
}

impl Provider {
    fn new(doc: String) -> Provider {
        Provider {
            doc: Arc::new(Mutex::new((200, doc))),
            fetches: Arc::new(AtomicUsize::new(0)),
        }
    }

    fn serve(&self, status: u16, doc: String) {
        *self.doc.lock().expect("lock") = (status, doc);
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    fn start(&self, workers: usize) -> Plugin {
        let this = self.clone();
        let config = json!({ "read_header": "authz_complete", "jwks_cluster": "idp", "jwks_path": "/keys",
            "function": "read_data", "issuer": "weir-policy-server", "audiences": ["check-header"] });
        Plugin::build(env!("CARGO_MANIFEST_DIR"))
            .config(config)
            .workers(workers)
            .upstream("idp", move |req: &Request| {
                assert_eq!(req.path(), "/keys");
                this.fetches.fetch_add(1, Ordering::SeqCst);
                let (status, doc) = this.doc.lock().expect("lock").clone();
                Response::status(status)
                    .header("content-type", "application/json")
                    .body(doc)
            })
            .start()
            .expect("check-header starts")
    }
}

fn send(plugin: &Plugin, token: &str) -> Outcome {
    plugin
        .http()
        .request(Request::get("/data").header("authz_complete", token))
        .run()
}

#[test]
fn fetched_once_at_start_for_all_workers_then_refreshed_on_its_period() {
    let k1 = key("k1");
    let idp = Provider::new(jwks(&[&k1]));
    let plugin = idp.start(2);
    // Before a copy exists each VM fetches (in Envoy a VM can go away mid-fetch: the main
    // thread's); afterwards one fetch per period serves every VM.
    assert_eq!(idp.fetches(), 2, "each VM fetched at start-up");
    for _ in 0..4 {
        assert_eq!(status(&send(&plugin, &grant(&k1, 0))), 200);
    }
    assert_eq!(idp.fetches(), 2, "requests use the shared copy");

    plugin.advance(Duration::from_secs(301));
    assert_eq!(
        idp.fetches(),
        3,
        "refreshed once after jwks_refresh_seconds (300), not once per VM"
    );
    plugin.advance(Duration::from_secs(300));
    assert_eq!(idp.fetches(), 4, "and once again a period later");
    assert_eq!(status(&send(&plugin, &grant(&k1, 601))), 200);
}

#[test]
fn a_new_key_set_empties_the_verified_cache() {
    let (k1, k2) = (key("k1"), key("k2"));
    let idp = Provider::new(jwks(&[&k1, &k2]));
    let plugin = idp.start(1);
    let (by_k1, by_k2) = (grant(&k1, 0), grant(&k2, 0));
    for token in [&by_k1, &by_k1, &by_k2, &by_k2] {
        assert_eq!(
            status(&send(&plugin, token)),
            200,
            "verified, then a cache hit"
        );
    }
    // k1 removed and k2's kid now names another key: neither cached grant may pass.
    idp.serve(200, jwks(&[&key("k2")]));
    plugin.advance(Duration::from_secs(301));
    assert_eq!(idp.fetches(), 2, "refreshed");
    assert_eq!(
        status(&send(&plugin, &by_k1)),
        401,
        "signed by a removed key"
    );
    assert_eq!(
        status(&send(&plugin, &by_k2)),
        401,
        "signed by a replaced key"
    );
}

#[test]
fn an_unknown_kid_refetches_once_then_is_rate_limited() {
    let (k1, k2) = (key("k1"), key("k2"));
    let idp = Provider::new(jwks(&[&k1]));
    let plugin = idp.start(1);
    // The provider rotates to k2: the first k2 token makes the plugin fetch, and passes.
    idp.serve(200, jwks(&[&k2]));
    assert_eq!(status(&send(&plugin, &grant(&k2, 0))), 200);
    assert_eq!(idp.fetches(), 2);
    assert_eq!(
        status(&send(&plugin, &grant(&k1, 0))),
        401,
        "k1 was rotated out"
    );

    // Made-up kids: one fetch per jwks_min_refetch_seconds (30), however many tokens.
    let forged = key("made-up");
    for _ in 0..5 {
        assert_eq!(status(&send(&plugin, &grant(&forged, 0))), 401);
    }
    assert_eq!(
        idp.fetches(),
        2,
        "k1 and the made-up kids came within 30 s of the k2 refetch: no fetch"
    );
    plugin.advance(Duration::from_secs(31));
    assert_eq!(status(&send(&plugin, &grant(&forged, 31))), 401);
    assert_eq!(status(&send(&plugin, &grant(&forged, 31))), 401);
    assert_eq!(
        idp.fetches(),
        3,
        "30 s later one more fetch is allowed, and only one"
    );
}

#[test]
fn provider_down_at_start_fails_closed_until_a_retry_succeeds() {
    let k1 = key("k1");
    let idp = Provider::new(String::new());
    idp.serve(503, "unavailable".into());
    let plugin = idp.start(1);
    assert_eq!(idp.fetches(), 1);
    let logs = plugin.logs();
    assert!(
        logs.iter().any(
            |l| l.message.contains("background job 'jwks refresh' failed")
                && l.message.contains("status 503")
        ),
        "{logs:?}"
    );
    assert_eq!(
        status(&send(&plugin, &grant(&k1, 0))),
        401,
        "no keys: fail closed"
    );

    idp.serve(200, jwks(&[&k1]));
    plugin.advance(Duration::from_secs(10));
    assert!(idp.fetches() >= 3, "the background job retried after 10 s");
    assert_eq!(status(&send(&plugin, &grant(&k1, 10))), 200);
}

#[test]
fn a_broken_document_never_replaces_a_working_one() {
    let k1 = key("k1");
    let idp = Provider::new(jwks(&[&k1]));
    let plugin = idp.start(1);
    for broken in [
        r#"{"keys": []}"#,
        "<html>oops</html>",
        r#"{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}"#,
    ] {
        idp.serve(200, broken.to_string());
        plugin.advance(Duration::from_secs(301));
        assert_eq!(
            status(&send(&plugin, &grant(&k1, 0))),
            200,
            "after serving {broken}"
        );
    }
    assert!(idp.fetches() >= 4);
}

#[test]
fn key_source_is_checked_at_configure_time() {
    let start = |cfg: Value| {
        Plugin::build(env!("CARGO_MANIFEST_DIR"))
            .config(cfg)
            .start()
            .map(|_| ())
            .expect_err("the configuration is refused")
            .to_string()
    };
    let both = start(
        json!({ "read_header": "a", "function": "f", "verification_key": "x", "jwks_cluster": "idp" }),
    );
    assert!(both.contains("verification_key and jwks_cluster"), "{both}");
    let neither = start(json!({ "read_header": "a", "function": "f" }));
    assert!(
        neither.contains("verification_key or jwks_cluster"),
        "{neither}"
    );
    let path = start(
        json!({ "read_header": "a", "function": "f", "jwks_cluster": "idp", "jwks_path": "keys" }),
    );
    assert!(path.contains("jwks_path"), "{path}");
    let hmac = start(
        json!({ "read_header": "a", "function": "f", "jwks_cluster": "idp", "algorithms": ["HS256"] }),
    );
    assert!(hmac.contains("algorithms"), "{hmac}");
}
