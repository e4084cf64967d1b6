//! The attack matrix: each attempt is answered by the plugin and never reaches the upstream,
//! and (where it matters) a normal login still works afterwards.

use crate::idp::Tamper;
use crate::{assert_forwarded, assert_refused, location, start, Harness, Jar, LOGIN, SESSION};
use serde_json::json;
use weir_runtime::{Outcome, Request};
use weir_test_jwt::Forgery;

/// Starts a login in a fresh browser and returns the callback path the provider sends back.
fn begin(h: &mut Harness, path: &str) -> String {
    h.jar = Jar::default();
    let out = h.browse(path);
    assert_refused(&out, 302);
    h.idp.authorize(&location(&out))
}

/// A request with the jar's cookies from a non-browser client (401 instead of a redirect).
fn api(h: &Harness, jar: &Jar) -> Outcome {
    h.run(Request::get("/api").header("cookie", &jar.header()))
}

#[test]
fn state_mismatch_is_refused_before_the_code_is_used() {
    let mut h = start(json!({}));
    let callback = begin(&mut h, "/");
    let forged = callback.replace("state=", "state=x");
    assert_refused(&h.browse(&forged), 400);
    assert_eq!(h.idp.hits("token"), 0, "the code is never exchanged");
    assert!(
        h.jar.get(LOGIN).is_some(),
        "a callback that is not this login's leaves it alone"
    );
    let callback = begin(&mut h, "/");
    let doubled = format!("{callback}&state=other");
    assert_refused(&h.browse(&doubled), 400);
    assert_refused(&h.browse(&callback.replace("state=", "nostate=")), 400);
    assert_eq!(h.idp.hits("token"), 0);
    assert_refused(&h.browse(&callback), 302);
    assert!(
        h.jar.get(SESSION).is_some(),
        "the genuine callback still completes the login"
    );
}

#[test]
fn a_callback_naming_another_issuer_is_refused() {
    let mut h = start(json!({}));
    let callback = begin(&mut h, "/");
    assert_refused(
        &h.browse(&format!("{callback}&iss=https%3A%2F%2Fevil.example")),
        400,
    );
    assert_eq!(h.idp.hits("token"), 0);
    let callback = begin(&mut h, "/");
    let iss: String = url::form_urlencoded::byte_serialize(crate::idp::ISSUER.as_bytes()).collect();
    assert_refused(&h.browse(&format!("{callback}&iss={iss}")), 302);
    assert!(h.jar.get(SESSION).is_some());
}

#[test]
fn a_callback_without_the_login_cookie_is_refused() {
    let mut h = start(json!({}));
    let callback = begin(&mut h, "/");
    h.jar.clear();
    assert_refused(&h.browse(&callback), 400);
    assert_eq!(h.idp.hits("token"), 0);
}

#[test]
fn a_replayed_callback_is_refused_without_calling_the_token_endpoint() {
    let mut h = start(json!({}));
    let callback = begin(&mut h, "/");
    let login = h.jar.get(LOGIN).expect("login cookie").to_string();
    assert_refused(&h.browse(&callback), 302);
    assert_eq!(h.idp.hits("token"), 1);
    // The attacker replays the callback with the captured login cookie, again and again.
    let mut attacker = Harness {
        plugin: h.plugin,
        idp: h.idp.clone(),
        jar: Jar::default(),
    };
    for _ in 0..3 {
        attacker.jar.set(LOGIN, &login);
        let out = attacker.browse(&callback);
        assert_refused(&out, 400);
        assert!(out.logged("already used"), "{:?}", out.logs());
        assert!(attacker.jar.get(SESSION).is_none());
    }
    assert_eq!(
        attacker.idp.hits("token"),
        1,
        "one token call per login cookie, however often it is replayed"
    );
}

#[test]
fn bad_id_tokens_are_refused() {
    let cases: Vec<Tamper> = [
        Tamper::WrongNonce,
        Tamper::SecondAudNoAzp,
        Tamper::ForeignAzp,
    ]
    .into_iter()
    .chain(Forgery::ALL.into_iter().map(Tamper::Forged))
    .collect();
    let mut h = start(json!({}));
    for &tamper in &cases {
        h.jar = Jar::default();
        let callback = begin(&mut h, "/");
        h.idp.state().tamper = Some(tamper);
        let out = h.browse(&callback);
        assert_refused(&out, 401);
        assert!(
            out.logged("ID token invalid"),
            "{tamper:?}: {:?}",
            out.logs()
        );
        assert!(h.jar.get(SESSION).is_none(), "{tamper:?}");
        assert_refused(&api(&h, &h.jar), 401);
    }
    h.jar = Jar::default();
    assert_refused(&h.login("/"), 302);
    assert_forwarded(&h.browse("/"));
    assert_eq!(
        h.plugin.metric("openid_connect.login_refused"),
        Some(cases.len() as u64)
    );
}

#[test]
fn a_session_too_large_for_the_cookie_chunks_is_a_clear_refusal() {
    let mut h = start(json!({}));
    h.idp.state().access_padding = 40_000;
    let callback = begin(&mut h, "/");
    let out = h.browse(&callback);
    assert_refused(&out, 500);
    assert!(
        out.logged("too large for the session cookie"),
        "{:?}",
        out.logs()
    );
    let body = String::from_utf8_lossy(out.local_reply().expect("reply").body()).into_owned();
    assert!(body.contains("session cookie"), "{body}");
    assert!(
        h.jar.pairs().iter().all(|(n, _)| !n.starts_with(SESSION)),
        "no truncated session: {:?}",
        h.jar
    );
    assert_eq!(
        h.plugin.metric("openid_connect.errored").unwrap_or(0),
        0,
        "refused, not failed"
    );
    h.idp.state().access_padding = 0;
    assert_refused(&h.login("/"), 302);
    assert_forwarded(&h.browse("/"));
}

#[test]
fn a_very_large_cookie_header_gets_the_right_status() {
    let mut h = start(json!({}));
    h.login("/");
    let junk: String = (0..8000).map(|i| format!("c{i}=v{i}; ")).collect();
    assert!(junk.len() > 100_000);
    let out = h.run(
        Request::get("/")
            .header("accept", "text/html")
            .header("cookie", &junk),
    );
    assert_refused(&out, 302);
    assert_refused(
        &api(&h, &Jar::with(&[("c".into(), "x".repeat(200_000))])),
        401,
    );
    let with_session = format!("{junk}{}", h.jar.header());
    let out = h.run(Request::get("/").header("cookie", &with_session));
    assert_forwarded(&out);
    let up = out.upstream_request().expect("upstream");
    assert!(
        up.headers()
            .get_all("cookie")
            .concat()
            .contains("c7999=v7999"),
        "the client's own cookies go on"
    );
}

#[test]
fn an_unknown_kid_refetches_the_jwks_at_most_once_per_interval() {
    let mut h = start(json!({ "jwks_min_refetch_seconds": 30 }));
    h.login("/");
    assert_eq!(h.idp.hits("jwks"), 1);
    h.advance(31);
    for _ in 0..3 {
        let callback = begin(&mut h, "/");
        h.idp.state().tamper = Some(Tamper::Forged(Forgery::UnknownKid));
        assert_refused(&h.browse(&callback), 401);
    }
    assert_eq!(h.idp.hits("jwks"), 2, "three unknown kids, one refetch");
}

#[test]
fn after_key_rotation_login_succeeds_once_the_new_jwks_is_fetched() {
    let mut h = start(json!({ "jwks_min_refetch_seconds": 30 }));
    h.login("/");
    h.idp.rotate("k2");
    // Within the refetch interval the new kid cannot be fetched yet: refused.
    let callback = begin(&mut h, "/");
    assert_refused(&h.browse(&callback), 401);
    assert_eq!(h.idp.hits("jwks"), 1);
    h.advance(31);
    h.jar = Jar::default();
    assert_refused(&h.login("/"), 302);
    assert_eq!(h.idp.hits("jwks"), 2);
    assert_forwarded(&h.browse("/"));
}

#[test]
fn the_provider_down_during_the_callback_is_503() {
    let mut h = start(json!({}));
    let callback = begin(&mut h, "/");
    h.idp.state().down = true;
    let out = h.browse(&callback);
    assert_refused(&out, 503);
    assert!(out
        .response()
        .and_then(|r| r.header_value("retry-after"))
        .is_some());
    assert!(h.jar.get(SESSION).is_none());
}

#[test]
fn a_token_endpoint_slower_than_the_timeout_is_503() {
    let mut h = start(json!({ "timeout_ms": 100 }));
    let callback = begin(&mut h, "/");
    h.idp.state().token_delay = Some(std::time::Duration::from_millis(500));
    let out = h.browse(&callback);
    assert_refused(&out, 503);
    assert!(h.jar.get(SESSION).is_none());
}

fn session_parts(jar: &Jar) -> Vec<(String, String)> {
    jar.pairs()
        .into_iter()
        .filter(|(n, _)| n.starts_with(SESSION))
        .collect()
}

fn with_session(parts: &[(String, String)]) -> Jar {
    Jar::with(parts)
}

#[test]
fn altered_session_cookies_are_refused() {
    let mut h = start(json!({}));
    h.idp.state().padding = 9000;
    h.login("/");
    let good = session_parts(&h.jar);
    assert!(good.len() >= 3);
    h.jar = Jar::default();
    h.login("/");
    let other = session_parts(&h.jar);
    assert_eq!(other.len(), good.len());

    let mut cases: Vec<(&str, Vec<(String, String)>)> = Vec::new();
    let mut flipped = good.clone();
    let v = &mut flipped[1].1;
    let mid = v.len() / 2;
    let c = if &v[mid..mid + 1] == "A" { "B" } else { "A" };
    v.replace_range(mid..mid + 1, c);
    cases.push(("tampered", flipped));
    let mut truncated = good.clone();
    truncated.pop();
    cases.push(("missing last chunk", truncated));
    let mut cut = good.clone();
    let last = cut.len() - 1;
    let keep = cut[last].1.len() - 5;
    cut[last].1.truncate(keep);
    cases.push(("truncated value", cut));
    let mut swapped = good.clone();
    swapped[1].1 = other[1].1.clone();
    cases.push(("chunk from another session", swapped));
    let mut reordered = good.clone();
    let (a, b) = (reordered[1].1.clone(), reordered[2].1.clone());
    reordered[1].1 = b;
    reordered[2].1 = a;
    cases.push(("chunks reordered", reordered));
    let mut recounted = good.clone();
    recounted[0].1 = format!("1.{}", recounted[0].1.split_once('.').expect("count").1);
    cases.push(("count lowered", recounted));
    let mut doubled = good.clone();
    doubled.push(other[0].clone());
    cases.push(("main cookie sent twice", doubled));
    cases.push((
        "garbage",
        vec![
            (SESSION.to_string(), "3.%%%".to_string()),
            (format!("{SESSION}-1"), "\u{1}".to_string()),
        ],
    ));
    cases.push((
        "huge count",
        vec![(SESSION.to_string(), "99999999999999999999.x".to_string())],
    ));
    let mut bogus_first = good.clone();
    bogus_first[0].1 = "1.x".into();
    cases.push(("bogus first chunk", bogus_first));

    for (case, parts) in cases {
        assert_refused(&api(&h, &with_session(&parts)), 401);
        h.jar = with_session(&parts);
        let out = h.browse("/");
        assert_refused(&out, 302);
        assert!(!out.logged("panicked"), "{case}");
    }
    assert_forwarded(&h.run(Request::get("/").header("cookie", &with_session(&good).header())));
}

#[test]
fn an_expired_session_is_refused_even_with_a_refresh_token() {
    let mut h = start(json!({ "session_lifetime_seconds": 600 }));
    h.login("/");
    h.advance(250);
    assert_forwarded(&h.browse("/"));
    h.advance(400);
    let jar = h.jar.clone();
    assert_refused(&h.browse("/"), 302);
    assert_refused(&api(&h, &jar), 401);
}

#[test]
fn open_redirects_end_on_the_site_root() {
    for path in [
        "//evil.example",
        "//evil.example/x",
        "https://evil.example",
        "/\\evil",
        "/\\\\evil.example",
        "http:evil",
    ] {
        let mut h = start(json!({}));
        let callback = begin(&mut h, path);
        let out = h.browse(&callback);
        assert_refused(&out, 302);
        assert_eq!(location(&out), "/", "{path}");
    }
    let mut h = start(json!({}));
    let callback = begin(&mut h, "/ok/path?next=//evil.example");
    assert_eq!(
        location(&h.browse(&callback)),
        "/ok/path?next=//evil.example",
        "query content is not a target"
    );
}

#[test]
fn a_session_key_change_voids_old_cookies() {
    let mut h = start(json!({}));
    h.login("/");
    let other = weir_runtime::Plugin::build(env!("CARGO_MANIFEST_DIR"))
        .config(crate::config(json!({})))
        .env("OIDC_CLIENT_SECRET", crate::idp::CLIENT_SECRET)
        .env("OIDC_SESSION_KEY", &"ab".repeat(32))
        .upstream("idp", h.idp.handler())
        .start()
        .expect("starts");
    let out = other
        .http()
        .request(Request::get("/api").header("cookie", &h.jar.header()))
        .run();
    assert_refused(&out, 401);
}

#[test]
fn randomized_requests_never_trap_or_leak_upstream() {
    let mut h = start(json!({}));
    h.login("/");
    let good = h.jar.header();
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let alphabet: Vec<char> = "abcAZ09-_.=;/\\%?&:# \"'\u{7f}\u{e9}".chars().collect();
    let junk = |n: usize, next: &mut dyn FnMut() -> u64| -> String {
        (0..n)
            .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
            .collect()
    };
    // 3,000 by default; the issue's 1,000,000: OIDC_RANDOM_REQUESTS=1000000 cargo test … randomized
    let count: u64 = std::env::var("OIDC_RANDOM_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    for i in 0..count {
        let path = match next() % 4 {
            0 => format!("/oauth2/callback?{}", junk(30, &mut next)),
            1 => format!("/{}", junk(20, &mut next)),
            2 => "/oauth2/logout".to_string(),
            _ => format!("/x?{}", junk(10, &mut next)),
        };
        let mut cookie = good.clone();
        let len = cookie.len();
        for _ in 0..(next() % 4) {
            let at = (next() as usize) % len;
            let ch = alphabet[(next() % alphabet.len() as u64) as usize];
            let mut chars: Vec<char> = cookie.chars().collect();
            if at < chars.len() {
                chars[at] = ch;
            }
            cookie = chars.into_iter().collect();
        }
        if next() % 5 == 0 {
            cookie = junk(200, &mut next);
        }
        let out = h.run(
            Request::get(&path)
                .header("accept", "text/html")
                .header("cookie", &cookie),
        );
        assert!(
            out.trap().is_none(),
            "request {i}: {path} {cookie}: {:?}",
            out.trap()
        );
        if let Some(up) = out.upstream_request() {
            assert_forwarded(&out);
            assert!(up.headers().get("authorization").is_some());
        }
    }
}
