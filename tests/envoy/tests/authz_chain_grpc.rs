//! acl-check with `protocol: ext_authz_grpc` in a real Envoy: the chain of authz_chain.rs
//! (`acl-check → check-header → upstream`) with the reference policy server answering
//! Envoy's ext_authz gRPC `Authorization/Check`, the same attack matrix and fail-closed
//! cases; then acl-check against a scripted ext_authz server (`GrpcUpstream`) for the
//! answers the reference server never gives: headers it does not own, removals, a denial
//! with its own status and body.

mod authz_chain {
    pub mod checks;
    #[allow(dead_code)]
    pub mod filters;
    #[allow(dead_code)]
    pub mod tokens;
}

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use anyhow::Result;
use authz_chain::checks::{assert_refused, spellings, SPOOFS};
use authz_chain::filters::{check_header, get, SET_HEADER};
use authz_chain::tokens::{self, attacks, Idp, USER};
use serde_json::{json, Value};
use weir_envoy_tests::{
    build_wasm_with, EchoUpstream, Envoy, GrpcReply, GrpcUpstream, HttpResponse, PolicyServer,
    Reply, UserKeys, WasmFilter,
};
use weir_test_jwt::jwt_simple::prelude::*;

/// acl-check asking the `policy` cluster over ext_authz gRPC, with `extra` settings.
fn acl_check_grpc(extra: Value) -> WasmFilter {
    let mut cfg =
        json!({ "acl_server": "policy", "set_header": SET_HEADER, "protocol": "ext_authz_grpc" });
    if let (Some(cfg), Value::Object(extra)) = (cfg.as_object_mut(), extra) {
        cfg.extend(extra);
    }
    WasmFilter::new(build_wasm_with("acl-check", &["ext-authz-grpc"]))
        .plugin_name("istio-system", "acl-check")
        .root_id("acl-check")
        .json_configuration(&cfg)
}

fn policy_server(idp_keys: UserKeys<'_>) -> Result<PolicyServer> {
    PolicyServer::builder(USER.issuer, USER.audience, idp_keys)
        .ext_authz_grpc(SET_HEADER)
        .start()
}

fn chain(
    policy: SocketAddr,
    jwks: &str,
    upstream: &EchoUpstream,
    acl_extra: Value,
) -> Result<Envoy> {
    Envoy::builder()
        .http_filter(acl_check_grpc(acl_extra))
        .http_filter(check_header(
            jwks,
            json!({ "require_request_binding": true, "single_use_grants": true }),
        ))
        .grpc_cluster("policy", policy)
        .upstream(upstream.addr())
        .start()
}

#[test]
fn the_grpc_chain_passes_granted_users_and_refuses_every_forged_user_token() -> Result<()> {
    let idp = Idp::new();
    let policy = policy_server(UserKeys::File(&idp.jwks()))?;
    let upstream = EchoUpstream::start()?;
    let envoy = chain(policy.addr, &policy.jwks()?, &upstream, json!({}))?;
    let bearer = |token: &str| format!("Bearer {token}");

    let alice = bearer(&idp.token("alice", &[]));
    let res = get(&envoy, &[("authorization", &alice), (SET_HEADER, "forged")])?;
    assert_eq!(
        res.status,
        200,
        "{res:?}\npolicy server:\n{}\nEnvoy:\n{}",
        policy.log(),
        envoy.log()
    );
    let seen = upstream.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].headers.get_all(SET_HEADER),
        Vec::<&str>::new(),
        "the grant is stripped, the forgery gone"
    );
    assert_eq!(seen[0].headers.get("x-user"), Some("alice"));

    let bob = bearer(&idp.token("bob", &[]));
    assert_refused(
        &get(&envoy, &[("authorization", &bob)])?,
        403,
        "no grants",
        &envoy,
    );
    assert_refused(
        &get(&envoy, &[(SET_HEADER, "a.b.c")])?,
        401,
        "forged grant, no user token",
        &envoy,
    );
    let carol = bearer(&idp.token("carol", &["writers"]));
    assert_refused(
        &get(&envoy, &[("authorization", &carol)])?,
        403,
        "granted without read_data",
        &envoy,
    );

    let rsa_public = idp.rsa.public_key().to_pem().expect("pem");
    for (case, token) in &attacks(USER, &json!({ "groups": [] }), &idp.ec, &rsa_public, 8192) {
        assert_refused(
            &get(&envoy, &[("authorization", &bearer(token))])?,
            401,
            case,
            &envoy,
        );
    }
    assert_eq!(
        upstream.requests().len(),
        1,
        "only alice's request reached the upstream"
    );
    assert_eq!(
        envoy.stat("wasmcustom.acl_check.allowed")?,
        Some(2),
        "alice and carol"
    );
    assert_eq!(
        envoy.stat("cluster.policy.upstream_cx_http2_total")?,
        Some(1),
        "gRPC over one HTTP/2 connection"
    );
    Ok(())
}

// A few protobuf fields by hand, for the scripted server's answers (tests only).
fn varint(mut n: u64, out: &mut Vec<u8>) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}
fn bytes_field(tag: u64, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    varint(tag << 3 | 2, &mut out);
    varint(bytes.len() as u64, &mut out);
    out.extend_from_slice(bytes);
    out
}
fn int_field(tag: u64, n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    varint(tag << 3, &mut out);
    varint(n, &mut out);
    out
}
fn header(name: &str, value: &str) -> Vec<u8> {
    bytes_field(
        1,
        &[
            bytes_field(1, name.as_bytes()),
            bytes_field(2, value.as_bytes()),
        ]
        .concat(),
    )
}
/// A `CheckResponse` allowing, with `headers` to set and `remove` to remove.
fn allow(headers: &[(&str, &str)], remove: &[&str]) -> Vec<u8> {
    let mut ok = Vec::new();
    for (name, value) in headers {
        ok.extend(bytes_field(2, &header(name, value)));
    }
    for name in remove {
        ok.extend(bytes_field(5, name.as_bytes()));
    }
    [bytes_field(1, &[]), bytes_field(3, &ok)].concat()
}
/// A `denied_response`: HTTP status, headers, body.
type Denied<'a> = (u64, &'a [(&'a str, &'a str)], &'a str);

/// A `CheckResponse` denying with gRPC `code`, and a `denied_response` when `http` is set.
fn deny(code: u64, http: Option<Denied<'_>>) -> Vec<u8> {
    let mut out = bytes_field(1, &int_field(1, code));
    if let Some((status, headers, body)) = http {
        let mut denied = bytes_field(1, &int_field(1, status));
        for (name, value) in headers {
            denied.extend(bytes_field(2, &header(name, value)));
        }
        denied.extend(bytes_field(3, body.as_bytes()));
        out.extend(bytes_field(2, &denied));
    }
    out
}

/// The length-delimited field `tag` of a protobuf message (tests only).
fn sub(message: &[u8], tag: u64) -> Vec<Vec<u8>> {
    let (mut at, mut found) = (0, Vec::new());
    let read = |at: &mut usize| {
        let (mut n, mut shift) = (0u64, 0);
        while let Some(b) = message.get(*at) {
            *at += 1;
            n |= u64::from(b & 0x7f) << shift;
            shift += 7;
            if b & 0x80 == 0 {
                break;
            }
        }
        n
    };
    while at < message.len() {
        let key = read(&mut at);
        match key & 7 {
            0 => {
                read(&mut at);
            }
            2 => {
                let len = read(&mut at) as usize;
                if key >> 3 == tag {
                    found.push(message[at..at + len].to_vec());
                }
                at += len;
            }
            _ => panic!("unexpected wire type in {message:?}"),
        }
    }
    found
}

#[test]
fn no_decision_fails_closed() -> Result<()> {
    let closed = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    // The real server whose identity provider never answers: every check is UNAVAILABLE.
    let policy = policy_server(UserKeys::Url(&format!("http://{closed}/jwks")))?;
    // Slow: a valid allow, too late. If the timeout did not cut the call, this would pass.
    let slow = GrpcUpstream::start(|_| {
        GrpcReply::ok(vec![allow(&[(SET_HEADER, "a.b.c")], &[])]).delay(Duration::from_millis(1500))
    })?;
    let garbage = GrpcUpstream::start(|_| GrpcReply::ok(vec![b"\xff\xff\xff".to_vec()]))?;
    let error = GrpcUpstream::start(|_| GrpcReply::status(13, "internal"))?;
    let not_a_grant =
        GrpcUpstream::start(|_| GrpcReply::ok(vec![allow(&[(SET_HEADER, "<html>")], &[])]))?;
    let http1 = EchoUpstream::with_reply(Reply::status(200).body("a.b.c"))?;
    let cases = [
        ("down", closed),
        ("UNAVAILABLE from the policy server", policy.addr),
        ("slow past the timeout", slow.addr()),
        ("garbage message", garbage.addr()),
        ("gRPC error status", error.addr()),
        ("set_header not a compact JWS", not_a_grant.addr()),
        ("an HTTP/1 server", http1.addr()),
    ];
    let jwks = policy.jwks()?;
    let user = ES256KeyPair::generate()
        .sign(tokens::claims(USER, "alice", json!({})))
        .map_err(anyhow::Error::msg)?;
    let token = format!("Bearer {user}");
    for (case, addr) in cases {
        let upstream = EchoUpstream::start()?;
        let envoy = chain(
            addr,
            &jwks,
            &upstream,
            json!({ "timeout": 200, "status_on_error": 503 }),
        )?;
        let res = get(&envoy, &[("authorization", &token), (SET_HEADER, "forged")])?;
        assert_refused(&res, 503, case, &envoy);
        assert!(
            upstream.requests().is_empty(),
            "{case}: the upstream must not see the request"
        );
        assert_eq!(
            envoy.stat("wasmcustom.acl_check.errored")?,
            Some(1),
            "{case}"
        );
    }
    Ok(())
}

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
        .http_filter(acl_check_grpc(json!({
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
fn client_identity_headers_never_reach_the_upstream_over_grpc() -> Result<()> {
    let idp = Idp::new();
    let policy = policy_server(UserKeys::File(&idp.jwks()))?;
    let upstream = EchoUpstream::start()?;
    let owned = json!({ "allowed_upstream_headers": ["x-acl-user"] });
    let envoy = chain(policy.addr, &policy.jwks()?, &upstream, owned.clone())?;
    let alice = format!("Bearer {}", idp.token("alice", &[]));
    let mut headers = vec![("authorization", alice.as_str())];
    headers.extend(SPOOFS);
    let res = get(&envoy, &headers)?;
    assert_eq!(res.status, 200, "{res:?}\n{}", envoy.log());
    let seen = &upstream.requests()[0];
    assert_eq!(
        spellings(seen, "x-user"),
        [("x-user".to_owned(), "alice".to_owned())],
        "{seen:?}"
    );
    assert_eq!(spellings(seen, "x-acl-user"), [], "{seen:?}");
    assert_eq!(spellings(seen, "authz-complete"), [], "{seen:?}");

    // No decision, let through by failure_mode_allow: nothing spoofed survives.
    let closed = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let lenient = EchoUpstream::start()?;
    let mut cfg = owned;
    cfg["failure_mode_allow"] = json!(true);
    let envoy = Envoy::builder()
        .http_filter(acl_check_grpc(cfg))
        .grpc_cluster("policy", closed)
        .upstream(lenient.addr())
        .start()?;
    let res = get(&envoy, &headers)?;
    assert_eq!(res.status, 200, "{res:?}\n{}", envoy.log());
    let seen = &lenient.requests()[0];
    assert_eq!(spellings(seen, "x-acl-user"), [], "{seen:?}");
    assert_eq!(spellings(seen, "authz-complete"), [], "{seen:?}");
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
            .http_filter(acl_check_grpc(extra))
            .start_expecting_refusal()?;
        assert!(refusal.log.contains(field), "{field}: {}", refusal.log);
    }
    Ok(())
}
