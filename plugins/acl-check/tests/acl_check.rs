//! acl-check on the real `.wasm` in weir-runtime, with the policy server's answers stubbed per
//! test (the real server is exercised by the Envoy suite). Every denial case also checks that
//! the upstream never saw the request.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use weir_runtime::{Outcome, Plugin, Request, Response};

const GRANT: &str = "eyJhbGciOiJFUzI1NiJ9.eyJmdW5jdGlvbnMiOlsicmVhZF9kYXRhIl19.c2lnbmF0dXJl";

fn config(extra: Value) -> Value {
    support::merged(
        json!({ "acl_server": "policy", "set_header": "authz_complete" }),
        extra,
    )
}

fn start(extra: Value, policy: impl Fn(&Request) -> Response + Send + Sync + 'static) -> Plugin {
    support::start_with(config(extra), policy)
}

/// A client that tries to forge the grant header.
fn forging_request() -> Request {
    Request::get("/data/x?y=1")
        .authority("app")
        .bearer("user.jwt.token")
        .header("authz_complete", "forged")
}

fn run(plugin: &Plugin) -> Outcome {
    plugin.http().request(forging_request()).run()
}

fn assert_denied(out: &Outcome, status: u16) {
    assert!(out.trap().is_none(), "trap: {:?}", out.trap());
    assert_eq!(
        out.local_reply().map(|r| r.status()),
        Some(status),
        "logs: {:?}",
        out.logs()
    );
    assert!(
        out.upstream_request().is_none(),
        "the upstream must not see a denied request"
    );
}

#[test]
fn a_grant_replaces_the_forged_header_and_goes_upstream() {
    let plugin = start(json!({}), |_| {
        Response::status(200)
            .header("content-type", "application/jwt")
            .body(GRANT)
    });
    let out = run(&plugin);
    let up = out
        .upstream_request()
        .expect("allowed request reaches the upstream");
    assert_eq!(up.headers().get_all("authz_complete"), [GRANT]);
    let call = out.callouts()[0].request();
    assert_eq!(out.callouts()[0].cluster(), "policy");
    assert_eq!(call.method(), "POST");
    assert_eq!(call.path(), "/check");
    assert_eq!(
        call.headers().get("authorization"),
        Some("Bearer user.jwt.token")
    );
    assert_eq!(call.headers().get("x-forwarded-method"), Some("GET"));
    assert_eq!(call.headers().get("x-forwarded-uri"), Some("/data/x?y=1"));
    assert_eq!(call.headers().get("x-forwarded-host"), Some("app"));
    assert_eq!(
        call.headers().get("authz_complete"),
        None,
        "the forged header is not even sent to the policy server"
    );
    assert_eq!(out.callouts()[0].timeout(), Duration::from_millis(200));
    assert_eq!(plugin.metric("acl_check.allowed"), Some(1));
    assert_eq!(plugin.metric("acl_check.denied").unwrap_or(0), 0);
}

#[test]
fn only_configured_headers_go_to_the_policy_server_and_come_back() {
    let plugin = start(
        json!({ "allowed_request_headers": ["authorization", "x-tenant"], "allowed_upstream_headers": ["x-user"], "path": "/v1/check", "timeout": 50 }),
        |_| {
            Response::status(200)
                .header("x-user", "alice")
                .header("x-internal", "no")
                .body(GRANT)
        },
    );
    let out = plugin
        .http()
        .request(
            forging_request()
                .header("x-tenant", "t1")
                .header("cookie", "secret"),
        )
        .run();
    let call = out.callouts()[0].request();
    assert_eq!(call.path(), "/v1/check");
    assert_eq!(call.headers().get("x-tenant"), Some("t1"));
    assert_eq!(call.headers().get("cookie"), None);
    assert_eq!(out.callouts()[0].timeout(), Duration::from_millis(50));
    let up = out.upstream_request().expect("allowed");
    assert_eq!(up.headers().get("x-user"), Some("alice"));
    assert_eq!(up.headers().get("x-internal"), None);
}

#[test]
fn forged_header_with_a_denying_server_gets_403() {
    let plugin = start(json!({}), |_| {
        Response::status(403)
            .header("x-reason", "internal")
            .body("no grants")
    });
    let out = run(&plugin);
    assert_denied(&out, 403);
    assert_eq!(plugin.metric("acl_check.denied"), Some(1));
    assert_eq!(plugin.metric("acl_check.allowed").unwrap_or(0), 0);
}

#[test]
fn a_401_is_relayed_with_only_the_allowed_headers() {
    let plugin = start(json!({}), |_| {
        Response::status(401)
            .header("www-authenticate", r#"Bearer error="invalid_token""#)
            .header("x-debug", "secret")
    });
    let out = run(&plugin);
    assert_denied(&out, 401);
    let reply = out.response().expect("client got the reply");
    assert_eq!(
        reply.headers().get("www-authenticate"),
        Some(r#"Bearer error="invalid_token""#)
    );
    assert_eq!(reply.headers().get("x-debug"), None);
}

#[test]
fn no_decision_fails_closed_with_status_on_error() {
    let cases: [(&str, support::Answer); 5] = [
        ("server down", |_| Response::failure()),
        ("slow past the timeout", |_| {
            Response::status(200)
                .body(GRANT)
                .delay(Duration::from_millis(500))
        }),
        ("500", |_| Response::status(500).body("policy server error")),
        ("garbage body", |_| {
            Response::status(200).body("<html>hello</html>")
        }),
        ("unsigned token", |_| {
            Response::status(200).body("eyJhbGciOiJub25lIn0.eyJmdW5jdGlvbnMiOltdfQ.")
        }),
    ];
    for (case, policy) in cases {
        let plugin = start(json!({}), policy);
        let out = run(&plugin);
        assert_denied(&out, 403);
        assert_eq!(plugin.metric("acl_check.errored"), Some(1), "{case}");
        assert!(
            out.logged("policy server gave no decision"),
            "{case}: {:?}",
            out.logs()
        );
        let out = run(&start(json!({ "status_on_error": 503 }), policy));
        assert_denied(&out, 503);
    }
}

#[test]
fn an_oversized_grant_is_refused() {
    let big = format!(
        "{}.{}.{}",
        "a".repeat(10),
        "b".repeat(20_000),
        "c".repeat(10)
    );
    let out = run(&start(json!({}), move |_| {
        Response::status(200).body(big.clone())
    }));
    assert_denied(&out, 403);
}

#[test]
fn an_unknown_cluster_fails_closed() {
    let plugin = Plugin::build(env!("CARGO_MANIFEST_DIR"))
        .config(config(json!({})))
        .start()
        .expect("starts");
    let out = run(&plugin);
    assert_denied(&out, 403);
    assert!(out.logged("is it defined in Envoy?"), "{:?}", out.logs());
}

#[test]
fn failure_mode_allow_lets_the_request_through_without_the_grant() {
    let out = run(&start(json!({ "failure_mode_allow": true }), |_| {
        Response::status(500)
    }));
    let up = out
        .upstream_request()
        .expect("failure_mode_allow continues");
    assert_eq!(
        up.headers().get("authz_complete"),
        None,
        "the forged header is removed even then"
    );
}

#[test]
fn the_stream_ending_during_the_call_is_clean() {
    let plugin = start(json!({}), |_| {
        Response::status(200)
            .body(GRANT)
            .delay(Duration::from_millis(100))
    });
    let mut stream = plugin.http_stream();
    stream.send_request_headers(&forging_request(), true);
    assert!(
        stream.request_paused(),
        "the request waits for the policy server"
    );
    let out = stream.finish();
    assert!(out.trap().is_none(), "{:?}", out.trap());
    assert!(out.upstream_request().is_none());
    // The late answer reaches a VM whose stream is gone; the next request still works.
    plugin.advance(Duration::from_millis(200));
    let out = run(&plugin);
    assert!(out.trap().is_none(), "{:?}", out.trap());
    assert!(out.upstream_request().is_some());
}

#[test]
fn configuration_errors_are_reported() {
    let err = Plugin::build(env!("CARGO_MANIFEST_DIR"))
        .config(json!({ "acl_server": "policy" }))
        .start()
        .expect_err("set_header is required");
    assert!(err.to_string().contains("set_header"), "{err}");
    let err = Plugin::build(env!("CARGO_MANIFEST_DIR"))
        .config(config(json!({ "timout": 5 })))
        .start()
        .expect_err("unknown keys are refused");
    assert!(err.to_string().contains("timout"), "{err}");
    // The host takes the timeout as 32-bit milliseconds: 2^32 + 5 would wrap to 5 ms.
    for bad in [0, (1u64 << 32) + 5, u64::MAX] {
        let err = Plugin::build(env!("CARGO_MANIFEST_DIR"))
            .config(config(json!({ "timeout": bad })))
            .start()
            .expect_err("an out-of-range timeout is refused");
        assert!(
            err.to_string()
                .contains("at timeout: must be between 1 and 60000"),
            "{bad}: {err}"
        );
    }
}

/// Every spelling of `name` an upstream reads as the same header (`x_user` for `x-user`).
fn spellings<'a>(headers: &'a weir_runtime::Headers, name: &str) -> Vec<(&'a str, &'a str)> {
    headers
        .iter()
        .filter(|(k, _)| k.replace('_', "-") == name)
        .collect()
}

#[test]
fn client_copies_of_every_header_acl_check_sets_never_reach_the_upstream() {
    let spoofing = || {
        forging_request()
            .header("authz-complete", "forged")
            .header("AUTHZ_COMPLETE", "forged")
            .header("x-user", "mallory")
            .header("x_user", "mallory")
            .header("X_User", "root")
    };
    let owned = json!({ "allowed_upstream_headers": ["x-user"] });
    // Granted, the policy server naming no user: only its token, no x-user in any spelling.
    let plugin = start(owned.clone(), |_| Response::status(200).body(GRANT));
    let out = plugin.http().request(spoofing()).run();
    let up = out.upstream_request().expect("granted");
    assert_eq!(
        spellings(up.headers(), "authz-complete"),
        [("authz_complete", GRANT)]
    );
    assert_eq!(spellings(up.headers(), "x-user"), []);
    // Granted with a user: the policy server's value only.
    let plugin = start(owned.clone(), |_| {
        Response::status(200).header("x-user", "alice").body(GRANT)
    });
    let out = plugin.http().request(spoofing()).run();
    assert_eq!(
        spellings(out.upstream_request().expect("granted").headers(), "x-user"),
        [("x-user", "alice")]
    );
    // No decision, let through by failure_mode_allow: nothing the client sent survives.
    let mut lenient = owned;
    lenient["failure_mode_allow"] = json!(true);
    let out = start(lenient, |_| Response::status(500))
        .http()
        .request(spoofing())
        .run();
    let up = out
        .upstream_request()
        .expect("failure_mode_allow continues");
    assert_eq!(spellings(up.headers(), "authz-complete"), []);
    assert_eq!(spellings(up.headers(), "x-user"), []);
    // Nor do the spoofs go to the policy server.
    assert_eq!(
        spellings(out.callouts()[0].request().headers(), "x-user"),
        []
    );
}

#[test]
fn huge_headers_and_cookies_never_trap() {
    let plugin = start(
        json!({ "allowed_request_headers": ["authorization", "cookie"] }),
        |_| Response::status(401),
    );
    let cookie = format!("session={}", "c".repeat(256 * 1024));
    let out = plugin
        .http()
        .request(
            forging_request()
                .header("cookie", &cookie)
                .header("x-big", &"b".repeat(256 * 1024)),
        )
        .run();
    assert_denied(&out, 401);
    let bearer = format!("Bearer {}", "t".repeat(256 * 1024));
    let out = plugin
        .http()
        .request(Request::get("/data").header("authorization", &bearer))
        .run();
    assert_denied(&out, 401);
}
