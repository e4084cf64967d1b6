//! acl-check with `protocol: ext_authz_grpc` on the real `.wasm` (built with the feature
//! `ext-authz-grpc`) in weir-runtime, the policy cluster a scripted ext_authz gRPC server
//! (the reference server over the real wire is in the Envoy suite, authz_chain.rs).

#[allow(dead_code)]
#[path = "../src/ext_authz/messages.rs"]
mod messages;

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use messages::*;
use prost::Message;
use serde_json::{json, Value};
use weir_runtime::grpc::code;
use weir_runtime::{GrpcReply, GrpcRequest, Outcome, Plugin, Request};

const GRANT: &str = "eyJhbGciOiJFUzI1NiJ9.eyJmdW5jdGlvbnMiOlsicmVhZF9kYXRhIl19.c2lnbmF0dXJl";

/// acl-check built with `ext-authz-grpc`, once per process, by weir-runtime's one build,
/// in a target directory of its own so that the default build other tests load is never
/// overwritten under them.
fn wasm() -> PathBuf {
    static WASM: OnceLock<PathBuf> = OnceLock::new();
    WASM.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let target = weir_runtime::build::test_target_dir(&dir).with_extension("ext-authz-grpc");
        weir_runtime::build::WasmBuild::for_tests(&dir)
            .features(&["ext-authz-grpc"])
            .target_dir(target)
            .run()
            .expect("building acl-check with ext-authz-grpc")
    })
    .clone()
}

fn config(extra: Value) -> Value {
    let mut cfg = json!({ "acl_server": "policy", "set_header": "authz_complete",
        "protocol": "ext_authz_grpc", "allowed_upstream_headers": ["x-acl-user"] });
    if let (Some(cfg), Value::Object(extra)) = (cfg.as_object_mut(), extra) {
        cfg.extend(extra);
    }
    cfg
}

fn start(
    extra: Value,
    server: impl Fn(&GrpcRequest) -> GrpcReply + Send + Sync + 'static,
) -> Plugin {
    Plugin::load(wasm())
        .config(config(extra))
        .grpc_upstream("policy", server)
        .start()
        .expect("acl-check starts")
}

/// A client forging the identity headers acl-check owns, and one it asks to be removed.
fn forging_request() -> Request {
    Request::get("/data/x?y=1")
        .authority("app")
        .bearer("user.jwt.token")
        .header("authz_complete", "forged")
        .header("x_acl_user", "root")
        .header("x-drop", "1")
        .header("X_Drop", "2")
}

fn header(key: &str, value: &str) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderEntry {
            key: key.into(),
            value: value.into(),
            raw_value: Vec::new(),
        }),
    }
}

fn allow(headers: Vec<HeaderValueOption>, remove: &[&str]) -> GrpcReply {
    let response = CheckResponse {
        status: Some(RpcStatus { code: 0 }),
        ok_response: Some(OkHttpResponse {
            headers,
            headers_to_remove: remove.iter().map(|s| s.to_string()).collect(),
        }),
        denied_response: None,
    };
    GrpcReply::ok(response.encode_to_vec())
}

fn deny(code: i32, denied: Option<DeniedHttpResponse>) -> GrpcReply {
    let response = CheckResponse {
        status: Some(RpcStatus { code }),
        denied_response: denied,
        ok_response: None,
    };
    GrpcReply::ok(response.encode_to_vec())
}

/// A scripted ext_authz server.
type Server = fn(&GrpcRequest) -> GrpcReply;

fn assert_refused(out: &Outcome, status: u16) {
    assert!(out.trap().is_none(), "trap: {:?}", out.trap());
    assert_eq!(
        out.local_reply().map(|r| r.status()),
        Some(status),
        "{:?}",
        out.logs()
    );
    assert!(
        out.upstream_request().is_none(),
        "the upstream must not see it"
    );
}

#[test]
fn an_ok_sets_only_owned_headers_after_removing_the_clients_and_applies_removals() {
    let plugin = start(json!({}), |_| {
        allow(
            vec![
                header("authz_complete", GRANT),
                header("x-acl-user", "alice"),
                header("x-other", "evil"),
            ],
            &["x-drop", ":path", "host"],
        )
    });
    let out = plugin.http().request(forging_request()).run();
    let up = out
        .upstream_request()
        .unwrap_or_else(|| panic!("allowed: {:?}", out.logs()));
    assert_eq!(up.headers().get_all("authz_complete"), [GRANT]);
    assert_eq!(up.headers().get_all("x-acl-user"), ["alice"]);
    assert_eq!(up.headers().get_all("x_acl_user"), Vec::<&str>::new());
    assert_eq!(up.headers().get("x-other"), None, "not acl-check's to set");
    assert_eq!(up.headers().get("x-drop"), None);
    assert_eq!(up.headers().get("X_Drop"), None, "lookalikes go too");
    assert_eq!(up.headers().get(":path"), Some("/data/x?y=1"));

    let call = &out.grpc_calls()[0];
    assert_eq!(call.cluster(), "policy");
    assert_eq!(
        call.request().path(),
        "/envoy.service.auth.v3.Authorization/Check"
    );
    assert_eq!(call.request().timeout(), Some(Duration::from_millis(200)));
    let sent = CheckRequest::decode(call.request().message()).expect("a CheckRequest");
    let http = sent
        .attributes
        .and_then(|a| a.request)
        .and_then(|r| r.http)
        .expect("attributes.request.http");
    assert_eq!(
        (http.method.as_str(), http.path.as_str(), http.host.as_str()),
        ("GET", "/data/x?y=1", "app")
    );
    assert_eq!(
        http.headers.into_iter().collect::<Vec<_>>(),
        [(
            "authorization".to_owned(),
            "Bearer user.jwt.token".to_owned()
        )],
        "only allowed_request_headers; no forged header"
    );
    assert_eq!(plugin.metric("acl_check.allowed"), Some(1));
}

#[test]
fn an_ok_without_set_header_allows_without_it() {
    let plugin = start(json!({}), |_| {
        allow(vec![header("x-acl-user", "alice")], &[])
    });
    let out = plugin.http().request(forging_request()).run();
    let up = out.upstream_request().expect("allowed");
    assert_eq!(
        up.headers().get("authz_complete"),
        None,
        "the forgery is gone, no grant set"
    );
    assert_eq!(up.headers().get_all("x-acl-user"), ["alice"]);
}

#[test]
fn a_denial_keeps_its_status_body_and_allowed_headers() {
    let plugin = start(json!({}), |req| {
        let http = CheckRequest::decode(req.message())
            .ok()
            .and_then(|r| r.attributes?.request?.http)
            .unwrap_or_default();
        let denied = |status| DeniedHttpResponse {
            status: Some(HttpStatus { code: status }),
            headers: vec![
                header("www-authenticate", "Bearer x"),
                header("x-secret", "no"),
            ],
            body: "slow down".into(),
        };
        match http.path.as_str() {
            "/429" => deny(code::PERMISSION_DENIED as i32, Some(denied(429))),
            "/200" => deny(code::PERMISSION_DENIED as i32, Some(denied(200))),
            _ => deny(code::UNAUTHENTICATED as i32, None),
        }
    });
    let ask = |path: &str| {
        plugin
            .http()
            .request(Request::get(path).header("authz_complete", "f"))
            .run()
    };
    let out = ask("/429");
    assert_refused(&out, 429);
    let reply = out.local_reply().expect("a reply");
    assert_eq!(reply.text(), "slow down");
    assert_eq!(reply.header("www-authenticate"), Some("Bearer x"));
    assert_eq!(reply.header("x-secret"), None);
    assert_refused(&ask("/200"), 403);
    assert_refused(&ask("/other"), 403);
    assert_eq!(plugin.metric("acl_check.denied"), Some(3));
}

#[test]
fn no_decision_fails_closed_and_failure_mode_allow_strips_the_spoofs() {
    let answers: [(&str, Server); 5] = [
        ("UNAVAILABLE", |_| {
            GrpcReply::error(code::UNAVAILABLE, "down")
        }),
        ("garbage", |_| GrpcReply::ok(vec![0xff, 0xff, 0xff])),
        ("slow past the timeout", |_| {
            allow(vec![header("authz_complete", GRANT)], &[]).delay(Duration::from_secs(1))
        }),
        ("set_header not a JWS", |_| {
            allow(vec![header("authz_complete", "<html>")], &[])
        }),
        ("bad header value", |_| {
            allow(vec![header("x-acl-user", "a\r\nx-evil: 1")], &[])
        }),
    ];
    for (case, answer) in answers {
        let plugin = start(json!({ "status_on_error": 503 }), answer);
        assert_refused(&plugin.http().request(forging_request()).run(), 503);
        assert_eq!(plugin.metric("acl_check.errored"), Some(1), "{case}");

        let lenient = start(json!({ "failure_mode_allow": true }), answer);
        let out = lenient.http().request(forging_request()).run();
        let up = out
            .upstream_request()
            .unwrap_or_else(|| panic!("{case}: let through"));
        assert_eq!(up.headers().get("authz_complete"), None, "{case}");
        assert_eq!(up.headers().get("x_acl_user"), None, "{case}");
    }
    // No gRPC cluster called `policy`: Envoy refuses the call.
    let plugin = Plugin::load(wasm())
        .config(config(json!({ "status_on_error": 503 })))
        .start()
        .unwrap();
    assert_refused(&plugin.http().request(forging_request()).run(), 503);
}

#[test]
fn the_check_is_cancelled_when_the_request_ends_first() {
    let plugin = start(json!({ "timeout": 5000 }), |_| {
        allow(vec![header("authz_complete", GRANT)], &[]).delay(Duration::from_secs(3))
    });
    let mut stream = plugin.http_stream();
    stream.send_request(&forging_request(), None);
    assert!(stream.request_paused());
    let out = stream.finish();
    assert!(out.trap().is_none());
    assert!(out.grpc_calls()[0].cancelled());
    plugin.advance(Duration::from_secs(4));
    assert_eq!(plugin.metric("acl_check.allowed").unwrap_or(0), 0);
}

#[test]
fn options_the_grpc_protocol_cannot_honour_are_refused_naming_the_field() {
    for (extra, field) in [
        (
            json!({ "decision_cache_seconds": 30 }),
            "decision_cache_seconds",
        ),
        (json!({ "path": "/authz" }), "path"),
        (json!({ "protocol": "grpc" }), "protocol"),
    ] {
        let err = Plugin::load(wasm())
            .config(config(extra))
            .start()
            .expect_err(field);
        assert!(err.to_string().contains(field), "{field}: {err}");
    }
    // The HTTP protocol keeps them.
    let cfg = json!({ "protocol": "http", "decision_cache_seconds": 30, "path": "/authz" });
    assert!(Plugin::load(wasm()).config(config(cfg)).start().is_ok());
}
