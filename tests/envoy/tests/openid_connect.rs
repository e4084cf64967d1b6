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
use weir_envoy_tests::{
    build_wasm, EchoUpstream, Envoy, HttpRequest, HttpResponse, RecordedRequest, WasmFilter,
};
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
        // Envoy's port is picked when it starts: the redirect URI is built from the
        // request's host, which must be this one.
        "allowed_hosts": ["127.0.0.1"],
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
    let envoy = Envoy::builder()
        .http_filter(plugin)
        .upstream(upstream.addr())
        .cluster("authn", idp_addr)
        .start()?;
    let client = TestClient::new(CLIENT_ID, CLIENT_SECRET)
        .redirect_uri(&format!("{}/oauth2/callback", envoy.url()))
        .post_logout_redirect_uri("http://127.0.0.1:9/bye");
    let idp = Provider::builder()
        .realm("ingress")
        .client(client)
        .port(idp_addr.port())
        .id_token_ttl(id_token_ttl)
        .start()?;
    Ok(Setup {
        idp,
        envoy,
        upstream,
    })
}

impl Setup {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.envoy.url())
    }

    /// Opens `path` in `browser`: the plugin's redirect to the provider.
    fn begin(&self, browser: &mut Browser, path: &str) -> Result<HttpResponse> {
        // The first request of a VM discovers the provider; a concurrent one may get a 503.
        let mut first = browser.get(&self.url(path))?;
        for _ in 0..20 {
            if first.status != 503 {
                break;
            }
            assert!(first.headers.get("retry-after").is_some());
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
        assert_eq!(
            back.status,
            302,
            "callback: {}\nEnvoy log:\n{}\nprovider log:\n{}",
            back.text(),
            self.envoy.log(),
            self.idp.log()
        );
        assert_eq!(
            back.headers.get("location"),
            Some(path),
            "back to the original URL"
        );
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

    /// Submits the site's sign-out form: a POST whose `Origin` is this site.
    fn logout(&self, browser: &mut Browser, origin: &str) -> Result<HttpResponse> {
        browser
            .send(HttpRequest::new("POST", &self.url("/oauth2/logout"))?.header("origin", origin))
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
            assert!(
                !cookie.contains("__Host-oidc"),
                "plugin cookies reached the upstream: {cookie}"
            );
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
    eprintln!(
        "login round trip through Envoy and oidc-provider: {:?}",
        started.elapsed()
    );
    assert_eq!(seen.path, "/app/page?x=1");
    let jwt = s.verified_token(&seen)?;
    assert_eq!(jwt.claim_str("sub"), Some("alice"));
    assert!(jwt.claim_str("nonce").is_some());

    // A link or a form on another site cannot sign the user out.
    assert_eq!(browser.get(&s.url("/oauth2/logout"))?.status, 405);
    assert_eq!(s.logout(&mut browser, "http://evil.example")?.status, 403);
    assert!(browser
        .cookies()
        .iter()
        .any(|c| c.name.starts_with("__Host-oidc")));
    // Logout: cookies cleared, then RP-initiated logout at the provider.
    let out = s.logout(&mut browser, &s.envoy.url())?;
    assert_eq!(out.status, 303, "{}", out.text());
    assert!(browser
        .cookies()
        .iter()
        .all(|c| !c.name.starts_with("__Host-oidc")));
    let end = out.location()?.context("logout location")?;
    assert!(
        end.as_str()
            .starts_with(&s.idp.endpoint("end_session_endpoint")?),
        "{end}"
    );
    let hint = end
        .query_pairs()
        .find(|(k, _)| k == "id_token_hint")
        .map(|(_, v)| v.into_owned());
    assert_eq!(
        hint.as_deref(),
        seen.headers
            .get("authorization")
            .and_then(|a| a.strip_prefix("Bearer "))
    );
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
    assert_eq!(
        jwt.claim_str("sub"),
        Some("bob"),
        "a new sign-in, not the old provider session"
    );
    Ok(())
}

#[test]
fn non_browser_requests_get_401_and_never_reach_the_upstream() -> Result<()> {
    let s = start(json!({}), Duration::from_secs(300))?;
    let res = s
        .envoy
        .get("/api")?
        .header("accept", "application/json")
        .header("authorization", "Bearer forged")
        .send()?;
    assert!(res.status == 401 || res.status == 503, "{}", res.status);
    assert!(s.upstream.requests().is_empty());
    Ok(())
}

#[test]
fn tokens_are_refreshed_with_the_refresh_token() -> Result<()> {
    // ID tokens live 8 s and are refreshed in their last 6 s.
    let s = start(
        json!({ "refresh_before_seconds": 6 }),
        Duration::from_secs(8),
    )?;
    let mut browser = Browser::new();
    let first = s.verified_token(&s.sign_in(&mut browser, "/", "carol")?)?;
    std::thread::sleep(Duration::from_millis(2500));
    let second = s.verified_token(&s.fetch(&mut browser, "/")?)?;
    assert_eq!(second.claim_str("sub"), Some("carol"));
    assert!(
        second.claim_i64("iat") > first.claim_i64("iat"),
        "a new ID token after the refresh"
    );
    // The refreshed session went back in the cookie: the next request needs no refresh.
    let third = s.verified_token(&s.fetch(&mut browser, "/")?)?;
    assert_eq!(third.claim_i64("iat"), second.claim_i64("iat"));
    Ok(())
}

#[test]
fn bad_id_tokens_from_the_provider_never_reach_the_upstream_and_rotated_keys_are_fetched(
) -> Result<()> {
    let s = start(
        json!({ "jwks_min_refetch_seconds": 0 }),
        Duration::from_secs(300),
    )?;
    let cases = [
        (
            "alg none",
            IdTokenTamper::new().signing(TamperSigning::None),
        ),
        (
            "unknown key",
            IdTokenTamper::new().signing(TamperSigning::UnknownKey),
        ),
        (
            "wrong aud",
            IdTokenTamper::new().claim("aud", json!("someone-else")),
        ),
        (
            "wrong nonce",
            IdTokenTamper::new().claim("nonce", json!("replayed-nonce")),
        ),
        (
            "wrong iss",
            IdTokenTamper::new().claim("iss", json!("http://evil.example")),
        ),
        ("no exp", IdTokenTamper::new().remove_claim("exp")),
        (
            "foreign azp",
            IdTokenTamper::new().claim("azp", json!("other-client")),
        ),
    ];
    for (case, tamper) in cases {
        let mut browser = Browser::new();
        let first = s.begin(&mut browser, "/")?;
        s.idp.tamper_next_id_token(&tamper)?;
        let callback = browser.sign_in_from(first, "mallory", &s.url("/oauth2/callback"))?;
        let back = browser.get(callback.url.as_str())?;
        assert_eq!(back.status, 401, "{case}: {}", back.text());
        assert!(
            browser
                .cookies()
                .iter()
                .all(|c| !c.name.starts_with("__Host-oidc")),
            "{case}"
        );
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
    assert!(
        rotation
            .signing_kids
            .iter()
            .any(|k| Some(k.as_str()) == after.kid()),
        "signed by the new key"
    );
    Ok(())
}

/// What the upstream got for a raw path, or the status the client got instead.
fn passes(s: &Setup, path: &str) -> Result<std::result::Result<String, u16>> {
    let before = s.upstream.requests().len();
    let res = s
        .envoy
        .get(path)?
        .header("accept", "application/json")
        .send()?;
    let requests = s.upstream.requests();
    Ok(match requests.get(before) {
        Some(seen) => {
            assert_eq!(res.status, 200);
            Ok(seen.path.clone())
        }
        None => Err(res.status),
    })
}

#[test]
fn pass_through_rules_match_what_the_upstream_serves_without_envoy_normalizing() -> Result<()> {
    // The harness's bootstrap leaves normalize_path and merge_slashes off (Istio turns them
    // on): the plugin alone must keep these from skipping the login.
    let s = start(
        json!({ "pass_through_prefixes": ["/healthz"] }),
        Duration::from_secs(300),
    )?;
    s.begin(&mut Browser::new(), "/")?; // the provider is discovered: no 503 from here on
    for path in [
        "/healthz",
        "/healthz/live",
        "/%68ealthz",
        "/healthz?next=/../private",
    ] {
        assert_eq!(
            passes(&s, path)?,
            Ok(path.to_string()),
            "{path} passes through, unchanged"
        );
    }
    for path in [
        "/healthz/../private",
        "/healthz/%2e%2e/private",
        "/healthz%2F..%2Fprivate",
        "/healthz/..%5Cprivate",
        "/healthz/..;/private",
        "/healthzadmin",
    ] {
        let got = passes(&s, path)?;
        assert_eq!(got, Err(401), "{path} needs a session\n{}", s.envoy.log());
    }
    Ok(())
}

#[test]
fn client_identity_headers_and_their_underscore_spellings_never_reach_the_upstream() -> Result<()> {
    let s = start(
        json!({ "forward_header": "x-auth-token", "pass_through_exact": ["/healthz"] }),
        Duration::from_secs(300),
    )?;
    let forged = |req: weir_envoy_tests::HttpRequest| {
        req.header("x-auth-token", "Bearer forged")
            .header("x_auth_token", "Bearer forged")
    };
    let res = forged(s.envoy.get("/healthz")?).send()?;
    assert_eq!(res.status, 200);
    let seen = s
        .upstream
        .requests()
        .last()
        .cloned()
        .context("pass-through reached the upstream")?;
    assert!(
        seen.headers.get("x-auth-token").is_none() && seen.headers.get("x_auth_token").is_none(),
        "{:?}",
        seen.headers
    );

    let mut browser = Browser::new();
    let first = s.begin(&mut browser, "/")?;
    let callback = browser.sign_in_from(first, "alice", &s.url("/oauth2/callback"))?;
    let back = browser.get(callback.url.as_str())?;
    assert_eq!(
        back.headers.get("cache-control"),
        Some("no-store"),
        "the response setting the session is never cached"
    );
    let req = HttpRequest::get(&s.url("/app"))?
        .header("x-auth-token", "Bearer forged")
        .header("x_auth_token", "Bearer forged");
    let res = browser.send(req)?;
    assert_eq!(res.status, 200, "{}", res.text());
    assert!(
        res.headers
            .get_all("vary")
            .iter()
            .any(|v| v.to_ascii_lowercase().contains("cookie")),
        "Vary: Cookie on an authenticated response"
    );
    let seen = s
        .upstream
        .requests()
        .last()
        .cloned()
        .context("authenticated request reached the upstream")?;
    let tokens = seen.headers.get_all("x-auth-token");
    assert_eq!(tokens.len(), 1, "{tokens:?}");
    assert!(tokens[0].starts_with("Bearer ey"), "{tokens:?}");
    assert!(
        seen.headers.get("x_auth_token").is_none(),
        "{:?}",
        seen.headers
    );
    Ok(())
}
