//! `plugins/openid-connect` in a real Envoy against a real, certified OpenID Provider
//! (oidc-provider, started by weir-idp-tests on 127.0.0.1), driven by a browser-like client
//! that signs in through the provider's forms: login, logout and refresh.
//!
//! The provider must know the relying party's redirect URI when it starts, and Envoy must
//! know the provider's address: the provider's port is reserved first, Envoy started with a
//! cluster pointing there, then the provider started on it.

use anyhow::{Context, Result};
use serde_json::json;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;
use url::Url;
use weir_envoy_tests::{build_wasm, EchoUpstream, Envoy, RecordedRequest, WasmFilter};
use weir_idp_tests::{Browser, IdTokenTamper, Jwt, Provider, SignedOut, TamperSigning, TestClient};

const CLIENT_ID: &str = "ingress-gateway";
const CLIENT_SECRET: &str = "gateway-secret";
const SESSION_KEY: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

struct Setup {
    idp: Provider,
    envoy: Envoy,
    upstream: EchoUpstream,
}

fn free_addr() -> Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("reserve a port for the provider")?;
    Ok(listener.local_addr()?)
}

fn start(extra: serde_json::Value, id_token_ttl: Duration) -> Result<Setup> {
    let idp_addr = free_addr()?;
    let upstream = EchoUpstream::start()?;
    let mut config = json!({
        "openid_server": "authn",
        "openid_realm": "ingress",
        // The issuer as browsers see it; without it calls would carry `Host: authn`, and
        // oidc-provider builds its endpoint URLs from the Host it is called with.
        "issuer": format!("http://{idp_addr}/realms/ingress"),
        "client_id": CLIENT_ID,
        "post_logout_redirect": "http://127.0.0.1:9/bye",
    });
    if let (Some(c), Some(e)) = (config.as_object_mut(), extra.as_object()) {
        c.extend(e.clone());
    }
    let plugin = WasmFilter::new(build_wasm("openid-connect"))
        .plugin_name("istio-ingress", "openid-connect")
        .root_id("openid-connect")
        .json_configuration(&config)
        .env("OIDC_CLIENT_SECRET", CLIENT_SECRET)
        .env("OIDC_SESSION_KEY", SESSION_KEY);
    let envoy = Envoy::builder().http_filter(plugin).upstream(upstream.addr()).cluster("authn", idp_addr).start()?;
    let client = TestClient::new(CLIENT_ID, CLIENT_SECRET)
        .redirect_uri(&format!("{}/oauth2/callback", envoy.url()))
        .post_logout_redirect_uri("http://127.0.0.1:9/bye");
    let idp = Provider::builder().realm("ingress").client(client).port(idp_addr.port()).id_token_ttl(id_token_ttl).start()?;
    Ok(Setup { idp, envoy, upstream })
}

impl Setup {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.envoy.url())
    }

    /// Opens `path` in `browser`: the plugin's redirect to the provider.
    fn begin(&self, browser: &mut Browser, path: &str) -> Result<weir_idp_tests::Response> {
        // The first request of a VM discovers the provider; a concurrent one may get a 503.
        let mut first = browser.get(&self.url(path))?;
        for _ in 0..20 {
            if first.status != 503 {
                break;
            }
            assert!(first.header("retry-after").is_some());
            std::thread::sleep(Duration::from_millis(250));
            first = browser.get(&self.url(path))?;
        }
        assert_eq!(first.status, 302, "{}\n{}", first.text(), self.envoy.log());
        Ok(first)
    }

    /// Opens `path` in `browser` and signs in as `user`; returns what the upstream saw.
    fn sign_in(&self, browser: &mut Browser, path: &str, user: &str) -> Result<RecordedRequest> {
        let first = self.begin(browser, path)?;
        let callback = browser.sign_in_from(first, user, &self.url("/oauth2/callback"))?;
        let back = browser.get(callback.url.as_str())?;
        assert_eq!(back.status, 302, "callback: {}\nEnvoy log:\n{}\nprovider log:\n{}", back.text(), self.envoy.log(), self.idp.log());
        assert_eq!(back.header("location"), Some(path), "back to the original URL");
        self.fetch(browser, path)
    }

    /// One authenticated request; returns what the upstream saw.
    fn fetch(&self, browser: &mut Browser, path: &str) -> Result<RecordedRequest> {
        let before = self.upstream.requests().len();
        let res = browser.get(&self.url(path))?;
        assert_eq!(res.status, 200, "{}\n{}", res.text(), self.envoy.log());
        let requests = self.upstream.requests();
        assert_eq!(requests.len(), before + 1);
        Ok(requests[before].clone())
    }

    /// The forwarded ID token, checked against the provider's JWKS and claims.
    fn verified_token(&self, seen: &RecordedRequest) -> Result<Jwt> {
        let auth = seen.headers.get_all("authorization");
        assert_eq!(auth.len(), 1, "{auth:?}");
        let token = auth[0].strip_prefix("Bearer ").context("Bearer token")?;
        let jwt = Jwt::decode(token)?;
        jwt.verify(&self.idp.jwks()?)?;
        assert_eq!(jwt.claim_str("iss"), Some(self.idp.issuer()));
        assert_eq!(jwt.claim_str("aud"), Some(CLIENT_ID));
        for cookie in seen.headers.get_all("cookie") {
            assert!(!cookie.contains("__Host-oidc"), "plugin cookies reached the upstream: {cookie}");
        }
        Ok(jwt)
    }
}

#[test]
fn login_forwards_a_valid_id_token_and_logout_ends_both_sessions() -> Result<()> {
    let s = start(json!({}), Duration::from_secs(300))?;
    let mut browser = Browser::new();
    let started = std::time::Instant::now();
    let seen = s.sign_in(&mut browser, "/app/page?x=1", "alice")?;
    // Every hop: plugin redirect, provider forms, callback with code exchange, first request.
    eprintln!("login round trip through Envoy and oidc-provider: {:?}", started.elapsed());
    assert_eq!(seen.path, "/app/page?x=1");
    let jwt = s.verified_token(&seen)?;
    assert_eq!(jwt.claim_str("sub"), Some("alice"));
    assert!(jwt.claim_str("nonce").is_some());

    // Logout: cookies cleared, then RP-initiated logout at the provider.
    let out = browser.get(&s.url("/oauth2/logout"))?;
    assert_eq!(out.status, 302);
    assert!(browser.cookies().iter().all(|c| !c.name.starts_with("__Host-oidc")));
    let end = out.location()?.context("logout location")?;
    assert!(end.as_str().starts_with(&s.idp.endpoint("end_session_endpoint")?), "{end}");
    let hint = end.query_pairs().find(|(k, _)| k == "id_token_hint").map(|(_, v)| v.into_owned());
    assert_eq!(hint.as_deref(), seen.headers.get("authorization").and_then(|a| a.strip_prefix("Bearer ")));
    match browser.sign_out(end.as_str(), Some("http://127.0.0.1:9/bye"))? {
        SignedOut::Redirected(url) => assert_eq!(url, Url::parse("http://127.0.0.1:9/bye")?),
        SignedOut::Page(page) => panic!("provider did not redirect back: {}", page.text()),
    }
    // Signed out at the plugin and at the provider: the next visit shows the login form again.
    let again = browser.get(&s.url("/app"))?;
    assert_eq!(again.status, 302);
    let callback = browser.sign_in_from(again, "bob", &s.url("/oauth2/callback"))?;
    browser.get(callback.url.as_str())?;
    let jwt = s.verified_token(&s.fetch(&mut browser, "/app")?)?;
    assert_eq!(jwt.claim_str("sub"), Some("bob"), "a new sign-in, not the old provider session");
    Ok(())
}

#[test]
fn non_browser_requests_get_401_and_never_reach_the_upstream() -> Result<()> {
    let s = start(json!({}), Duration::from_secs(300))?;
    let res = s.envoy.get("/api")?.header("accept", "application/json").header("authorization", "Bearer forged").send()?;
    assert!(res.status == 401 || res.status == 503, "{}", res.status);
    assert!(s.upstream.requests().is_empty());
    Ok(())
}

#[test]
fn tokens_are_refreshed_with_the_refresh_token() -> Result<()> {
    // ID tokens live 8 s and are refreshed in their last 6 s.
    let s = start(json!({ "refresh_before_seconds": 6 }), Duration::from_secs(8))?;
    let mut browser = Browser::new();
    let first = s.verified_token(&s.sign_in(&mut browser, "/", "carol")?)?;
    std::thread::sleep(Duration::from_millis(2500));
    let second = s.verified_token(&s.fetch(&mut browser, "/")?)?;
    assert_eq!(second.claim_str("sub"), Some("carol"));
    assert!(second.claim_i64("iat") > first.claim_i64("iat"), "a new ID token after the refresh");
    // The refreshed session went back in the cookie: the next request needs no refresh.
    let third = s.verified_token(&s.fetch(&mut browser, "/")?)?;
    assert_eq!(third.claim_i64("iat"), second.claim_i64("iat"));
    Ok(())
}

#[test]
fn bad_id_tokens_from_the_provider_never_reach_the_upstream_and_rotated_keys_are_fetched() -> Result<()> {
    let s = start(json!({ "jwks_min_refetch_seconds": 0 }), Duration::from_secs(300))?;
    let cases = [
        ("alg none", IdTokenTamper::new().signing(TamperSigning::None)),
        ("unknown key", IdTokenTamper::new().signing(TamperSigning::UnknownKey)),
        ("wrong aud", IdTokenTamper::new().claim("aud", json!("someone-else"))),
        ("wrong nonce", IdTokenTamper::new().claim("nonce", json!("replayed-nonce"))),
        ("wrong iss", IdTokenTamper::new().claim("iss", json!("http://evil.example"))),
        ("no exp", IdTokenTamper::new().remove_claim("exp")),
        ("foreign azp", IdTokenTamper::new().claim("azp", json!("other-client"))),
    ];
    for (case, tamper) in cases {
        let mut browser = Browser::new();
        let first = s.begin(&mut browser, "/")?;
        s.idp.tamper_next_id_token(&tamper)?;
        let callback = browser.sign_in_from(first, "mallory", &s.url("/oauth2/callback"))?;
        let back = browser.get(callback.url.as_str())?;
        assert_eq!(back.status, 401, "{case}: {}", back.text());
        assert!(browser.cookies().iter().all(|c| !c.name.starts_with("__Host-oidc")), "{case}");
        let after = browser.get(&s.url("/"))?;
        assert_eq!(after.status, 302, "{case}: no session");
        assert!(s.upstream.requests().is_empty(), "{case}");
    }

    let mut browser = Browser::new();
    let before = s.verified_token(&s.sign_in(&mut browser, "/", "alice")?)?;
    let rotation = s.idp.rotate_keys()?;
    let mut browser = Browser::new();
    let after = s.verified_token(&s.sign_in(&mut browser, "/", "alice")?)?;
    assert_ne!(after.kid(), before.kid());
    assert!(rotation.signing_kids.iter().any(|k| Some(k.as_str()) == after.kid()), "signed by the new key");
    Ok(())
}
