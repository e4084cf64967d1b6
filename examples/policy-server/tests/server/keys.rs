//! The identity provider's JWKS served over HTTP: cached, re-fetched on an unknown `kid`
//! (rate-limited), and the server's behaviour when the identity provider is down. Also key
//! rotation on the issuing side (`extra_public_keys`).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use jwt_simple::prelude::*;
use serde_json::{json, Value};

use crate::support::*;

/// A tiny identity provider JWKS endpoint on 127.0.0.1 whose document can be swapped and
/// whose hits are counted. An empty document means "answer 503". While [`hold`] is on, it
/// answers only when released (a slow identity provider), and counts who is waiting.
#[derive(Clone)]
pub(crate) struct JwksEndpoint {
    document: Arc<Mutex<String>>,
    hits: Arc<AtomicUsize>,
    pending: Arc<AtomicUsize>,
    held: tokio::sync::watch::Sender<bool>,
}

impl JwksEndpoint {
    pub(crate) async fn start(document: String) -> (JwksEndpoint, String) {
        let endpoint = JwksEndpoint {
            document: Arc::new(Mutex::new(document)),
            hits: Default::default(),
            pending: Default::default(),
            held: tokio::sync::watch::Sender::new(false),
        };
        let app = axum::Router::new()
            .route("/jwks", get(serve_jwks))
            .with_state(endpoint.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (endpoint, url)
    }

    pub(crate) fn set(&self, document: String) {
        *self.document.lock().unwrap() = document;
    }

    pub(crate) fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }

    /// Requests that arrived and have not been answered yet.
    pub(crate) fn pending(&self) -> usize {
        self.pending.load(Ordering::SeqCst)
    }

    /// From now on, requests wait until [`release`](Self::release).
    pub(crate) fn hold(&self) {
        self.held.send_replace(true);
    }

    pub(crate) fn release(&self) {
        self.held.send_replace(false);
    }
}

async fn serve_jwks(State(e): State<JwksEndpoint>) -> (StatusCode, String) {
    e.hits.fetch_add(1, Ordering::SeqCst);
    e.pending.fetch_add(1, Ordering::SeqCst);
    // Bounded, so a test that fails before releasing cannot hang here.
    let mut held = e.held.subscribe();
    let _ = tokio::time::timeout(REQUEST_TIMEOUT * 3, held.wait_for(|h| !*h)).await;
    e.pending.fetch_sub(1, Ordering::SeqCst);
    let body = e.document.lock().unwrap().clone();
    if body.is_empty() {
        (StatusCode::SERVICE_UNAVAILABLE, String::new())
    } else {
        (StatusCode::OK, body)
    }
}

pub(crate) fn jwks_of(keys: &[&ES256KeyPair]) -> String {
    let keys: Vec<Value> = keys
        .iter()
        .map(|k| serde_json::from_str(&k.public_key().to_jwk()).unwrap())
        .collect();
    json!({ "keys": keys }).to_string()
}

#[tokio::test]
async fn unknown_kid_refetches_the_jwks_url() {
    let old = ES256KeyPair::generate().with_key_id("2026-old");
    let new = ES256KeyPair::generate().with_key_id("2026-new");
    let (idp_endpoint, url) = JwksEndpoint::start(jwks_of(&[&old])).await;
    let config = config_yaml(
        &format!("jwks_url: {url}"),
        "  jwks_min_refetch_seconds: 0\n",
        "",
    );
    let server = start_with(&config, |_| {}).await;
    assert_eq!(idp_endpoint.hits(), 1, "one fetch at start-up");

    assert_eq!(
        server
            .check_token(&old.sign(user_claims("alice", &[])).unwrap())
            .await
            .status,
        200
    );
    assert_eq!(
        idp_endpoint.hits(),
        1,
        "a known kid is served from the cache"
    );

    // The identity provider rotates; a token with the new kid makes the server look again.
    idp_endpoint.set(jwks_of(&[&old, &new]));
    assert_eq!(
        server
            .check_token(&new.sign(user_claims("alice", &[])).unwrap())
            .await
            .status,
        200
    );
    assert_eq!(idp_endpoint.hits(), 2, "the kid miss re-fetched the JWKS");

    // A kid the identity provider does not have: looked up once more, then refused.
    let rogue = ES256KeyPair::generate().with_key_id("rogue");
    server
        .check_token(&rogue.sign(user_claims("alice", &[])).unwrap())
        .await
        .assert_unauthorized("kid unknown even after re-fetch");
    assert_eq!(idp_endpoint.hits(), 3);
    server.stop().await;
}

#[tokio::test]
async fn kid_miss_refetches_are_rate_limited() {
    let known = ES256KeyPair::generate().with_key_id("known");
    let (idp_endpoint, url) = JwksEndpoint::start(jwks_of(&[&known])).await;
    // The default minimum interval between fetches (30 s) is far longer than this test.
    let server = start_with(&config_yaml(&format!("jwks_url: {url}"), "", ""), |_| {}).await;
    assert_eq!(idp_endpoint.hits(), 1);
    for i in 0..20 {
        let rogue = ES256KeyPair::generate().with_key_id(&format!("rogue-{i}"));
        server
            .check_token(&rogue.sign(user_claims("alice", &[])).unwrap())
            .await
            .assert_unauthorized("unknown kid");
    }
    assert_eq!(
        idp_endpoint.hits(),
        1,
        "a flood of unknown kids must not reach the identity provider"
    );
    assert_eq!(
        server
            .check_token(&known.sign(user_claims("alice", &[])).unwrap())
            .await
            .status,
        200
    );
    server.stop().await;
}

#[tokio::test]
async fn identity_provider_down_is_a_500_until_it_answers() {
    let key = ES256KeyPair::generate().with_key_id("k1");
    let (idp_endpoint, url) = JwksEndpoint::start(String::new()).await;
    let config = config_yaml(
        &format!("jwks_url: {url}"),
        "  jwks_min_refetch_seconds: 0\n",
        "",
    );
    let server = start_with(&config, |_| {}).await;
    let token = key.sign(user_claims("alice", &[])).unwrap();

    let answer = server.check_token(&token).await;
    assert_eq!(
        answer.status, 500,
        "no keys yet is the server's problem, not the user's"
    );
    assert_eq!(answer.body, "policy server error", "no details leak");

    idp_endpoint.set(jwks_of(&[&key]));
    assert_eq!(
        server.check_token(&token).await.status,
        200,
        "recovers once the JWKS is served"
    );

    // Once keys are cached, an outage keeps the old keys working.
    idp_endpoint.set(String::new());
    let other = ES256KeyPair::generate().with_key_id("k2");
    server
        .check_token(&other.sign(user_claims("alice", &[])).unwrap())
        .await
        .assert_unauthorized("unknown kid while the IdP is down");
    assert_eq!(
        server.check_token(&token).await.status,
        200,
        "cached keys still verify"
    );
    server.stop().await;
}

#[tokio::test]
async fn stale_cache_is_refreshed() {
    let first = ES256KeyPair::generate().with_key_id("first");
    let (idp_endpoint, url) = JwksEndpoint::start(jwks_of(&[&first])).await;
    let config = config_yaml(
        &format!("jwks_url: {url}"),
        "  jwks_refresh_seconds: 1\n  jwks_min_refetch_seconds: 0\n",
        "",
    );
    let server = start_with(&config, |_| {}).await;
    let token = first.sign(user_claims("alice", &[])).unwrap();
    assert_eq!(server.check_token(&token).await.status, 200);
    // The identity provider withdraws the key; after the refresh interval it is gone here too.
    let second = ES256KeyPair::generate().with_key_id("second");
    idp_endpoint.set(jwks_of(&[&second]));
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    // The request that finds the cache stale is answered from it while the refresh runs
    // behind it; a later one sees the refreshed keys. Bounded: 50 tries.
    let mut refused = None;
    for _ in 0..50 {
        let answer = server.check_token(&token).await;
        if answer.status != 200 {
            refused = Some(answer);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    refused
        .expect("the refreshed JWKS no longer has the key")
        .assert_unauthorized("key withdrawn by the identity provider");
    // At least the refresh after the interval (a slow start may have added one before).
    assert!(idp_endpoint.hits() >= 2, "hits: {}", idp_endpoint.hits());
    server.stop().await;
}

#[tokio::test]
async fn extra_public_keys_are_published_for_rotation() {
    let config = file_config("", "  extra_public_keys: [previous.pem]\n");
    let previous = ES256KeyPair::generate();
    let previous_pem = previous.public_key().to_pem().unwrap();
    let server = start_with(&config, |dir| {
        std::fs::write(dir.join("previous.pem"), &previous_pem).unwrap()
    })
    .await;
    let jwks = published_jwks(&server).await;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids.len(), 2);
    assert!(
        kids.contains(&previous.public_key().jwk_thumbprint().as_str()),
        "{kids:?}"
    );
    server.stop().await;
}
