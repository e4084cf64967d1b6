//! Issue #12's hardening: identity headers, path rules, single-use logins, cross-site
//! sign-out, the redirect URI's host, caching, single-flight refresh, cookie binding, the
//! shared provider copy and configuration bounds. Each test fails on the code before it.

use crate::idp::{CLIENT_SECRET, ISSUER};
use crate::{
    assert_forwarded, assert_refused, location, set_cookies, start, Jar, LOGIN, SESSION,
    SESSION_KEY,
};
use serde_json::{json, Value};
use weir_runtime::{Outcome, Plugin, Request, Response};

fn api(path: &str) -> Request {
    Request::get(path).header("accept", "application/json")
}

fn query(loc: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(loc)
        .expect("url")
        .query_pairs()
        .into_owned()
        .collect()
}

#[test]
fn client_identity_headers_never_reach_the_upstream_on_any_path() {
    let mut h =
        start(json!({ "forward_header": "x-auth-token", "pass_through_exact": ["/healthz"] }));
    h.login("/");
    let forged = |req: Request| {
        req.header("x-auth-token", "Bearer forged")
            .header("x_auth_token", "Bearer forged")
            .header("x_auth-token", "forged")
    };
    let up = h.run(forged(Request::get("/healthz")));
    let seen = up
        .upstream_request()
        .expect("pass-through reaches the upstream");
    for name in ["x-auth-token", "x_auth_token", "x_auth-token"] {
        assert!(
            seen.headers().get(name).is_none(),
            "pass-through: {name} reached the upstream"
        );
    }
    let out = h.run(forged(
        Request::get("/app").header("cookie", &h.jar.header()),
    ));
    let seen = out
        .upstream_request()
        .expect("authenticated request reaches the upstream");
    assert_eq!(seen.headers().get_all("x-auth-token").len(), 1);
    assert!(seen
        .headers()
        .get("x-auth-token")
        .is_some_and(|v| v.starts_with("Bearer ey")));
    assert!(
        seen.headers().get("x_auth_token").is_none()
            && seen.headers().get("x_auth-token").is_none()
    );
    // The default forwarded header, Authorization, is removed on pass-through paths too.
    let h = start(json!({}));
    let out = h.run(Request::get("/public/x").header("authorization", "Bearer forged"));
    assert!(out
        .upstream_request()
        .expect("passes")
        .headers()
        .get("authorization")
        .is_none());
}

#[test]
fn path_rules_match_the_path_the_upstream_serves() {
    let h =
        start(json!({ "pass_through_prefixes": ["/healthz"], "pass_through_exact": ["/status"] }));
    for path in [
        "/healthz",
        "/healthz/live",
        "/healthz?x=/../private",
        "/%68ealthz",
        "/healthz/./live",
        "/status",
        "/x/../status",
    ] {
        let out = h.run(api(path));
        assert!(
            out.upstream_request().is_some(),
            "{path} passes through; {:?}",
            out.local_reply().map(|r| r.status())
        );
    }
    for path in [
        "/healthz/../private",
        "/healthz/%2e%2e/private",
        "/healthz%2F..%2Fprivate",
        "/healthz%2f..",
        "/healthz/..%5Cprivate",
        "/healthz\\..\\private",
        "/healthz/..;/private",
        "/healthz//../private",
        "/healthzadmin",
        "/status/x",
        "/statusx",
    ] {
        assert_refused(&h.run(api(path)), 401);
    }
}

#[test]
fn callback_and_logout_paths_are_matched_normalized() {
    let mut h = start(json!({}));
    let out = h.browse("/");
    let callback = h.idp.authorize(&location(&out));
    let dotted = callback.replacen("/oauth2/callback", "/oauth2/x/../%63allback", 1);
    assert_refused(&h.browse(&dotted), 302);
    assert!(
        h.jar.get(SESSION).is_some(),
        "the dotted spelling is the callback"
    );
}

#[test]
fn a_failed_or_parameterless_callback_never_clears_a_session() {
    let mut h = start(json!({}));
    h.login("/");
    for path in [
        "/oauth2/callback",
        "/oauth2/callback?error=access_denied",
        "/oauth2/callback?code=x&state=y",
        "/oauth2/callback?state=a&state=b",
    ] {
        let out = h.browse(path);
        assert_refused(&out, 400);
        let cleared = set_cookies(&out);
        assert!(
            cleared.iter().all(|c| !c.starts_with(SESSION)),
            "{path}: {cleared:?}"
        );
    }
    assert!(h.jar.get(SESSION).is_some());
    assert_forwarded(&h.browse("/"));
}

#[test]
fn logout_needs_a_same_origin_post() {
    let mut h = start(json!({}));
    h.login("/");
    let jar = h.jar.header();
    let attempts = [
        (Request::get("/oauth2/logout"), 405),
        (Request::post("/oauth2/logout"), 403),
        (
            Request::post("/oauth2/logout").header("sec-fetch-site", "cross-site"),
            403,
        ),
        (
            Request::post("/oauth2/logout").header("sec-fetch-site", "same-site"),
            403,
        ),
        (
            Request::post("/oauth2/logout").header("origin", "https://evil.example"),
            403,
        ),
        (
            Request::post("/oauth2/logout").header("origin", "null"),
            403,
        ),
    ];
    for (req, status) in attempts {
        let out = h.run(req.header("cookie", &jar));
        assert_refused(&out, status);
        assert!(set_cookies(&out).is_empty());
    }
    assert_forwarded(&h.browse("/"));
    // A browser without Fetch Metadata: its Origin names this host.
    let out = h.run(
        Request::post("/oauth2/logout")
            .header("origin", "https://example.com")
            .header("cookie", &jar),
    );
    assert_refused(&out, 303);
    h.jar.apply(&out);
    assert!(h.jar.get(SESSION).is_none());
}

#[test]
fn the_redirect_uri_never_comes_from_an_arbitrary_host_header() {
    let mut h = start(json!({ "allowed_hosts": ["example.com", "app.example:8443"] }));
    let evil = Request::get("/")
        .authority("evil.example")
        .header("accept", "text/html");
    let out = h.run(evil);
    assert_refused(&out, 400);
    assert!(set_cookies(&out).is_empty());
    for (host, uri) in [
        (
            "example.com:8080",
            "http://example.com:8080/oauth2/callback",
        ),
        (
            "APP.example:8443",
            "http://APP.example:8443/oauth2/callback",
        ),
    ] {
        let out = h.run(
            Request::get("/")
                .authority(host)
                .header("accept", "text/html"),
        );
        assert_eq!(query(&location(&out))["redirect_uri"], uri);
    }
    let other_port = Request::get("/")
        .authority("app.example:9000")
        .header("accept", "text/html");
    assert_refused(&h.run(other_port), 400);

    h = start(json!({ "redirect_uri": "https://app.example/sso/cb", "allowed_hosts": [] }));
    let out = h.run(
        Request::get("/x")
            .authority("evil.example")
            .header("accept", "text/html"),
    );
    let loc = location(&out);
    assert_eq!(query(&loc)["redirect_uri"], "https://app.example/sso/cb");
    h.jar.apply(&out);
    let callback = h.idp.authorize(&loc);
    assert!(callback.starts_with("/sso/cb?"));
    assert_refused(&h.browse(&callback), 302);
    assert_forwarded(&h.browse("/x"));
}

fn config_error(extra: Value) -> String {
    let err = Plugin::build(env!("CARGO_MANIFEST_DIR"))
        .config(crate::config(extra))
        .env("OIDC_CLIENT_SECRET", CLIENT_SECRET)
        .env("OIDC_SESSION_KEY", SESSION_KEY)
        .start()
        .expect_err("configuration refused");
    err.to_string()
}

#[test]
fn configuration_bounds_and_cookie_prefix_are_checked_at_configure_time() {
    assert!(config_error(json!({ "allowed_hosts": [] })).contains("redirect_uri"));
    for field in [
        "session_lifetime_seconds",
        "login_timeout_seconds",
        "clock_skew_seconds",
        "refresh_before_seconds",
        "provider_refresh_seconds",
        "jwks_min_refetch_seconds",
        "timeout_ms",
        "retry_after_seconds",
    ] {
        let err = config_error(json!({ field: u64::MAX }));
        assert!(err.contains(field), "{field}: {err}");
    }
    assert!(config_error(json!({ "cookie_prefix": "oidc" })).contains("__Host-"));
    assert!(
        config_error(json!({ "pass_through_prefixes": ["/a/../b"] }))
            .contains("pass_through_prefixes")
    );
    assert!(config_error(
        json!({ "redirect_uri": "https://app.example/cb", "redirect_path": "/other" })
    )
    .contains("redirect_path"));
    let mut h = start(json!({ "cookie_prefix": "oidc", "allow_insecure_cookie_prefix": true }));
    h.jar = Jar::default();
    let out = h.run(Request::get("/").header("accept", "text/html"));
    assert!(set_cookies(&out)
        .iter()
        .any(|c| c.starts_with("oidc-login=")));
}

/// A plugin on the same provider with `extra` configuration and the same session key.
fn sibling(h: &crate::Harness, extra: Value) -> Plugin {
    Plugin::build(env!("CARGO_MANIFEST_DIR"))
        .config(crate::config(extra))
        .env("OIDC_CLIENT_SECRET", CLIENT_SECRET)
        .env("OIDC_SESSION_KEY", SESSION_KEY)
        .upstream("idp", h.idp.handler())
        .start()
        .expect("starts")
}

#[test]
fn session_cookies_are_bound_to_their_name_and_client() {
    let mut h = start(json!({}));
    h.login("/");
    let other_client = sibling(&h, json!({ "client_id": "other-app" }));
    assert_refused(
        &other_client
            .http()
            .request(api("/").header("cookie", &h.jar.header()))
            .run(),
        401,
    );
    let renamed = h.jar.header().replace("__Host-oidc-", "__Host-app-");
    let other_name = sibling(&h, json!({ "cookie_prefix": "__Host-app" }));
    assert_refused(
        &other_name
            .http()
            .request(api("/").header("cookie", &renamed))
            .run(),
        401,
    );
    assert_forwarded(&h.run(api("/").header("cookie", &h.jar.header())));
}

#[test]
fn a_provider_copy_in_shared_data_naming_another_issuer_is_not_used() {
    let mut h = start(json!({}));
    h.login("/");
    // weir::shared_data namespaces keys by plugin name and root id (both empty here).
    let key =
        "weir:0::0::openid-connect/idp/weir-app//realms/ingress/.well-known/openid-configuration";
    let mut doc: Value =
        serde_json::from_slice(&h.plugin.shared_data(key).expect("the provider copy"))
            .expect("json");
    doc["issuer"] = json!("https://evil.example/other");
    doc["authorization_endpoint"] = json!("https://evil.example/auth");
    h.plugin.set_shared_data(key, doc.to_string().as_bytes());
    h.jar = Jar::default();
    let out = h.browse("/");
    assert!(location(&out).starts_with(ISSUER), "{}", location(&out));
    assert!(out.logged("ignoring the provider copy"), "{:?}", out.logs());
    assert_eq!(h.idp.hits("discovery"), 2, "discovered again");
}

fn cache_control(out: &Outcome) -> Option<String> {
    out.response()
        .and_then(|r| r.header_value("cache-control"))
        .map(str::to_string)
}

#[test]
fn responses_that_set_plugin_cookies_are_not_stored_and_vary_on_cookie() {
    let mut h = start(json!({ "refresh_before_seconds": 60 }));
    let out = h.browse("/");
    assert_eq!(cache_control(&out).as_deref(), Some("no-store"));
    h.login("/");
    let cacheable = || {
        Response::status(200)
            .header("cache-control", "public, max-age=600")
            .header("vary", "Accept-Encoding")
    };
    let authenticated = |h: &crate::Harness| {
        let req = api("/").header("cookie", &h.jar.header());
        let out = h.plugin.http().request(req).response(cacheable()).run();
        assert_forwarded(&out);
        out
    };
    let out = authenticated(&h);
    let vary = out.response().expect("response").headers().get_all("vary");
    assert!(
        vary.iter().any(|v| v.eq_ignore_ascii_case("cookie")),
        "{vary:?}"
    );
    h.advance(250);
    let out = authenticated(&h);
    assert!(
        set_cookies(&out).iter().any(|c| c.starts_with(SESSION)),
        "refreshed"
    );
    assert_eq!(
        cache_control(&out).as_deref(),
        Some("no-store"),
        "a refreshed session is never cached"
    );
    let stale = h.run(api("/").header("cookie", &format!("{SESSION}=1.garbage")));
    assert_refused(&stale, 401);
    assert_eq!(cache_control(&stale).as_deref(), Some("no-store"));
    assert!(!set_cookies(&stale).is_empty());
}

#[test]
fn concurrent_refreshes_of_one_session_are_single_flight() {
    let mut h = start(json!({ "refresh_before_seconds": 60 }));
    h.login("/");
    let old = h.jar.header();
    let request = |cookie: &str| api("/").header("cookie", cookie);
    // The ID token has expired: every request needs the refresh.
    h.advance(310);
    let mut first = h.plugin.http_stream();
    first.send_request_headers(&request(&old), true);
    assert!(first.request_paused(), "the first request refreshes");
    // A second request of the same browser meanwhile: the refresh token is being used.
    let second = h.run(request(&old));
    assert_refused(&second, 503);
    assert!(second
        .response()
        .and_then(|r| r.header_value("retry-after"))
        .is_some());
    first.deliver_callouts();
    let done = first.finish();
    let fresh = assert_forwarded(&done);
    // A request still carrying the old cookie adopts the refreshed session, no new call.
    let late = h.run(request(&old));
    assert_eq!(assert_forwarded(&late), fresh);
    assert!(set_cookies(&late).iter().any(|c| c.starts_with(SESSION)));
    assert_eq!(
        h.idp.hits("token"),
        2,
        "login and one refresh, though the provider rotates refresh tokens"
    );
    assert_eq!(h.jar.get(LOGIN), None);
}

#[test]
fn while_another_request_refreshes_a_still_valid_token_is_forwarded() {
    let mut h = start(json!({ "refresh_before_seconds": 60 }));
    h.login("/");
    let before = assert_forwarded(&h.browse("/"));
    h.advance(250);
    let old = h.jar.header();
    let mut first = h.plugin.http_stream();
    first.send_request_headers(&api("/").header("cookie", &old), true);
    assert!(first.request_paused());
    let second = h.run(api("/").header("cookie", &old));
    assert_eq!(
        assert_forwarded(&second),
        before,
        "the current token, no second refresh"
    );
    first.deliver_callouts();
    assert_ne!(assert_forwarded(&first.finish()), before);
    assert_eq!(h.idp.hits("token"), 2);
}

/// Secrets are read from the VM environment by the configuration's validation step, after
/// the JSON: from the variables the configuration names, and a missing or malformed one is
/// refused at configure time naming the field that names it.
#[test]
fn secrets_come_from_the_vm_environment_the_configuration_names() {
    let start = |extra: Value, env: &[(&str, &str)]| {
        let mut plugin = Plugin::build(env!("CARGO_MANIFEST_DIR")).config(crate::config(extra));
        for (name, value) in env {
            plugin = plugin.env(name, value);
        }
        plugin.start().map(|_| ()).map_err(|e| e.to_string())
    };
    let defaults = [
        ("OIDC_CLIENT_SECRET", CLIENT_SECRET),
        ("OIDC_SESSION_KEY", SESSION_KEY),
    ];
    assert_eq!(start(json!({}), &defaults), Ok(()));
    let renamed =
        json!({ "client_secret_env": "MY_CLIENT_SECRET", "session_key_env": "MY_SESSION_KEY" });
    let mine = [
        ("MY_CLIENT_SECRET", "s3cret"),
        ("MY_SESSION_KEY", SESSION_KEY),
    ];
    assert_eq!(start(renamed.clone(), &mine), Ok(()));
    // The default variables are not consulted once others are named.
    let err = start(renamed.clone(), &defaults).unwrap_err();
    assert!(
        err.contains("invalid plugin configuration at client_secret_env: set the VM environment variable MY_CLIENT_SECRET"),
        "{err}"
    );
    let short = [
        ("MY_CLIENT_SECRET", "s3cret"),
        ("MY_SESSION_KEY", "too short"),
    ];
    let err = start(renamed, &short).unwrap_err();
    assert!(
        err.contains(
            "invalid plugin configuration at session_key_env: the session key in MY_SESSION_KEY"
        ),
        "{err}"
    );
    // Checks across a list name the element.
    let err = config_error(json!({ "pass_through_prefixes": ["/ok/", "/a/../b"] }));
    assert!(
        err.contains("invalid plugin configuration at pass_through_prefixes[1]: "),
        "{err}"
    );
}
