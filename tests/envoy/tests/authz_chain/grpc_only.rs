//! The ext_authz gRPC protocol's own cases, which HTTP has no counterpart of: acl-check
//! against a scripted ext_authz server (`GrpcUpstream`) for the answers the reference
//! server never gives (headers it does not own, removals, a denial with its own status and
//! body), and the options that protocol cannot honour, refused naming the field.

use std::time::Duration;

use anyhow::Result;
use serde_json::json;
use weir_envoy_tests::{EchoUpstream, Envoy, GrpcReply, GrpcUpstream, HttpResponse};

use super::checks::spellings;
use super::ext_authz_wire::{allow, deny, sub};
use super::filters::SET_HEADER;
use super::transport::Transport;

#[test]
fn ext_authz_answers_apply_only_to_owned_headers_and_denials_keep_their_status() -> Result<()> {
    let server = GrpcUpstream::start(|call| {
        let request = &call.messages[0];
        let http = sub(&sub(&sub(request, 1)[0], 4)[0], 2)[0].clone();
        let path = String::from_utf8_lossy(&sub(&http, 4)[0]).into_owned();
        match path.as_str() {
            "/allow" => GrpcReply::ok(vec![allow(
                &[
                    (SET_HEADER, "a.b.c"),
                    ("x-acl-user", "alice"),
                    ("x-not-owned", "evil"),
                ],
                &["x-remove-me", ":path", "host"],
            )]),
            "/slow-down" => GrpcReply::ok(vec![deny(
                7,
                Some((
                    429,
                    &[("www-authenticate", "Bearer x"), ("x-secret", "no")],
                    "slow down",
                )),
            )]),
            _ => GrpcReply::ok(vec![deny(16, None)]),
        }
    })?;
    let upstream = EchoUpstream::start()?;
    let envoy = Envoy::builder()
        .http_filter(Transport::Grpc.acl_check(json!({
            "allowed_upstream_headers": ["x-acl-user"],
            "allowed_request_headers": ["authorization", "x-tenant"],
        })))
        .grpc_cluster("policy", server.addr())
        .upstream(upstream.addr())
        .start()?;
    let send = |path: &str| -> Result<HttpResponse> {
        envoy
            .get(path)?
            .timeout(Duration::from_secs(10))
            .header("authorization", "Bearer t")
            .header("x-tenant", "blue")
            .header("x-tenant", "green")
            .header("x-acl-user", "mallory")
            .header("x_acl_user", "root")
            .header("x-remove-me", "1")
            .header("x_remove_me", "2")
            .send()
    };

    let res = send("/allow")?;
    assert_eq!(res.status, 200, "{res:?}\n{}", envoy.log());
    let seen = &upstream.requests()[0];
    assert_eq!(
        spellings(seen, "authz-complete"),
        [(SET_HEADER.to_owned(), "a.b.c".to_owned())],
        "{seen:?}"
    );
    assert_eq!(
        spellings(seen, "x-acl-user"),
        [("x-acl-user".to_owned(), "alice".to_owned())],
        "{seen:?}"
    );
    assert_eq!(spellings(seen, "x-not-owned"), [], "not acl-check's to set");
    assert_eq!(
        spellings(seen, "x-remove-me"),
        [],
        "removed with its lookalikes"
    );
    assert_eq!(seen.path, "/allow", "pseudo-headers are never removed");
    assert!(
        seen.headers.get("host").is_some(),
        "host is never removed: {seen:?}"
    );

    // What the server was asked: the CheckRequest's attributes.request.http.
    let call = &server.calls()[0];
    assert_eq!(call.path, "/envoy.service.auth.v3.Authorization/Check");
    let http = sub(&sub(&sub(&call.messages[0], 1)[0], 4)[0], 2)[0].clone();
    assert_eq!(sub(&http, 4), [b"/allow".to_vec()]);
    let host = String::from_utf8(sub(&http, 5)[0].clone())?;
    assert_eq!(format!("http://{host}"), envoy.url());
    let headers: Vec<(String, String)> = sub(&http, 3)
        .iter()
        .map(|entry| {
            let text = |tag| String::from_utf8_lossy(&sub(entry, tag)[0]).into_owned();
            (text(1), text(2))
        })
        .collect();
    assert_eq!(
        headers,
        [
            ("authorization".into(), "Bearer t".into()),
            ("x-tenant".into(), "blue,green".into())
        ],
        "only the allowed request headers, several values joined"
    );

    let res = send("/slow-down")?;
    assert_eq!(res.status, 429, "{res:?}");
    assert_eq!(res.text(), "slow down");
    assert_eq!(res.headers.get("www-authenticate"), Some("Bearer x"));
    assert_eq!(
        res.headers.get("x-secret"),
        None,
        "not in allowed_client_headers"
    );
    let res = send("/other")?;
    assert_eq!(
        res.status, 403,
        "a denial without an HTTP status is a 403: {res:?}"
    );
    assert_eq!(upstream.requests().len(), 1);
    assert_eq!(envoy.stat("wasmcustom.acl_check.denied")?, Some(2));
    Ok(())
}

#[test]
fn options_the_grpc_protocol_cannot_honour_are_refused_naming_the_field() -> Result<()> {
    for (extra, field) in [
        (
            json!({ "decision_cache_seconds": 30 }),
            "decision_cache_seconds",
        ),
        (json!({ "path": "/authz" }), "path"),
        (json!({ "protocol": "grpc" }), "protocol"),
    ] {
        let refusal = Envoy::builder()
            .http_filter(Transport::Grpc.acl_check(extra))
            .start_expecting_refusal()?;
        assert!(refusal.log.contains(field), "{field}: {}", refusal.log);
    }
    Ok(())
}
