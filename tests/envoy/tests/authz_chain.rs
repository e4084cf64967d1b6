//! Seed 000's AUTHZ chain in a real Envoy: `acl-check → check-header → upstream`, with the
//! reference policy server (`examples/policy-server`) as a child process on 127.0.0.1.
//!
//! One matrix, each case written once and run for both ways acl-check asks the server
//! ([`Transport`]): HTTP (`POST /check`) and ext_authz gRPC (`protocol: ext_authz_grpc`), as
//! the tests `over_http::<case>` and `over_grpc::<case>`, each failure message naming the
//! transport. The cases: forged *user* tokens through the whole chain (the policy server
//! refuses them, acl-check relays its 401), a policy server giving no decision (fail
//! closed), spoofed identity headers, and a restarted server. Every refusal also checks
//! that the upstream saw nothing.
//!
//! Cases where acl-check's transport plays no part run once: forged *grant* tokens sent
//! straight to check-header (what a client could try if acl-check were missing) and a
//! grant's binding to its request. The gRPC protocol's own cases (a scripted ext_authz
//! server, options it refuses) are in `authz_chain/grpc_only.rs`, the decision cache (HTTP
//! only) in `authz_chain/cache.rs`: one test binary for the whole chain.

mod authz_chain {
    pub mod cache;
    pub mod checks;
    pub mod ext_authz_wire;
    pub mod filters;
    pub mod grpc_only;
    pub mod tokens;
    pub mod transport;
}

use std::net::TcpListener;
use std::time::{Duration, Instant};

use anyhow::Result;
use authz_chain::checks::{assert_refused, spellings, SPOOFS};
use authz_chain::filters::{check_header, get, SET_HEADER};
use authz_chain::tokens::{self, attacks, Idp, GRANT, USER};
use authz_chain::transport::Transport;
use serde_json::{json, Value};
use weir_envoy_tests::{EchoUpstream, Envoy, HttpResponse, PolicyServer, UserKeys};
use weir_test_jwt::jwt_simple::prelude::*;

/// Runs each named case (a `fn(Transport) -> Result<()>` below) once per transport, as the
/// tests `over_http::<case>` and `over_grpc::<case>`: in parallel, as separate tests.
macro_rules! matrix {
    ($($case:ident),+ $(,)?) => {
        mod over_http {
            $(#[test]
            fn $case() -> anyhow::Result<()> {
                super::$case(super::Transport::Http)
            })+
        }
        mod over_grpc {
            $(#[test]
            fn $case() -> anyhow::Result<()> {
                super::$case(super::Transport::Grpc)
            })+
        }
    };
}

matrix!(
    the_chain_passes_granted_users_and_refuses_every_forged_user_token,
    no_decision_from_the_policy_server_fails_closed,
    client_identity_headers_never_reach_the_upstream,
    a_restarted_policy_server_is_the_same_server_and_the_chain_recovers,
);

fn the_chain_passes_granted_users_and_refuses_every_forged_user_token(t: Transport) -> Result<()> {
    let idp = Idp::new();
    let policy = t.policy_server(UserKeys::File(&idp.jwks()))?;
    let upstream = EchoUpstream::start()?;
    let envoy = t.chain(policy.addr, &policy.jwks()?, &upstream, json!({}))?;
    let bearer = |token: &str| format!("Bearer {token}");
    let refused = |res: HttpResponse, status: u16, case: &str| {
        assert_refused(&res, status, &format!("{t}: {case}"), &envoy);
    };

    // alice holds read_data: through, the grant stripped, her name from the grant.
    let alice = bearer(&idp.token("alice", &[]));
    let res = get(&envoy, &[("authorization", &alice), (SET_HEADER, "forged")])?;
    assert_eq!(
        res.status,
        200,
        "{t}: {res:?}\npolicy server:\n{}\nEnvoy:\n{}",
        policy.log(),
        envoy.log()
    );
    let seen = upstream.requests();
    assert_eq!(seen.len(), 1, "{t}");
    assert_eq!(
        seen[0].headers.get_all(SET_HEADER),
        Vec::<&str>::new(),
        "{t}: the grant is stripped, the forgery gone"
    );
    assert_eq!(seen[0].headers.get("x-user"), Some("alice"), "{t}");

    // bob has no grants; nor does a grant alice got help him in the header acl-check owns.
    let grant = policy_grant(&policy, &alice, ["GET", &host(&envoy), "/data/report"])?;
    let bob = bearer(&idp.token("bob", &[]));
    refused(get(&envoy, &[("authorization", &bob)])?, 403, "no grants");
    refused(
        get(&envoy, &[("authorization", &bob), (SET_HEADER, &grant)])?,
        403,
        "replayed grant",
    );
    refused(
        get(&envoy, &[(SET_HEADER, &grant)])?,
        401,
        "alice's grant, no user token",
    );
    refused(
        get(&envoy, &[(SET_HEADER, "a.b.c")])?,
        401,
        "forged grant, no user token",
    );
    // carol writes but may not read: the policy server grants, check-header says 403.
    let carol = bearer(&idp.token("carol", &["writers"]));
    refused(
        get(&envoy, &[("authorization", &carol)])?,
        403,
        "granted without read_data",
    );

    let rsa_public = idp.rsa.public_key().to_pem().expect("pem");
    for (case, token) in &attacks(USER, &json!({ "groups": [] }), &idp.ec, &rsa_public, 8192) {
        refused(
            get(&envoy, &[("authorization", &bearer(token))])?,
            401,
            case,
        );
    }
    assert_eq!(
        upstream.requests().len(),
        1,
        "{t}: only alice's request reached the upstream"
    );
    // Envoy names plugin-defined metrics `wasmcustom.<name>`.
    assert_eq!(
        envoy.stat("wasmcustom.acl_check.allowed")?,
        Some(2),
        "{t}: alice and carol"
    );
    assert_eq!(
        envoy.stat("wasmcustom.check_header.allowed")?,
        Some(1),
        "{t}: alice"
    );
    if t == Transport::Grpc {
        assert_eq!(
            envoy.stat("cluster.policy.upstream_cx_http2_total")?,
            Some(1),
            "{t}: gRPC over one HTTP/2 connection"
        );
    }
    Ok(())
}

/// The grant the policy server issues for `authorization` and the request line
/// (`method`, `host`, `uri`), asked for directly over HTTP (which it serves with gRPC too).
fn policy_grant(
    policy: &PolicyServer,
    authorization: &str,
    [method, host, uri]: [&str; 3],
) -> Result<String> {
    let res = weir_envoy_tests::HttpRequest::new("POST", &format!("http://{}/check", policy.addr))?
        .header("authorization", authorization)
        .header("x-forwarded-method", method)
        .header("x-forwarded-host", host)
        .header("x-forwarded-uri", uri)
        .send()?;
    anyhow::ensure!(res.status == 200, "policy server refused alice: {res:?}");
    Ok(res.text())
}

/// The `:authority` Envoy sees from the test client (`host: 127.0.0.1:<port>`).
fn host(envoy: &Envoy) -> String {
    envoy.url().trim_start_matches("http://").to_owned()
}

fn no_decision_from_the_policy_server_fails_closed(t: Transport) -> Result<()> {
    // Bound, never accepting: a connection that is refused, as when the server is down.
    let closed = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    // The real server whose identity provider never answered: every check is its 500 over
    // HTTP, UNAVAILABLE over gRPC.
    let policy = t.policy_server(UserKeys::Url(&format!("http://{closed}/jwks")))?;
    let undecided = t.undecided(closed, policy.addr)?;
    let jwks = policy.jwks()?;
    let user = ES256KeyPair::generate()
        .sign(tokens::claims(USER, "alice", json!({})))
        .map_err(anyhow::Error::msg)?;
    let token = format!("Bearer {user}");
    for (case, addr) in &undecided.cases {
        let case = format!("{t}: {case}");
        let upstream = EchoUpstream::start()?;
        let envoy = t.chain(
            *addr,
            &jwks,
            &upstream,
            json!({ "timeout": 200, "status_on_error": 503 }),
        )?;
        let started = Instant::now();
        let res = get(&envoy, &[("authorization", &token), (SET_HEADER, "forged")])?;
        assert_refused(&res, 503, &case, &envoy);
        assert!(
            started.elapsed() < Duration::from_millis(1200),
            "{case}: the 200 ms timeout did not cut the call"
        );
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

fn a_restarted_policy_server_is_the_same_server_and_the_chain_recovers(t: Transport) -> Result<()> {
    let idp = Idp::new();
    let mut policy = t.policy_server(UserKeys::File(&idp.jwks()))?;
    let upstream = EchoUpstream::start()?;
    // check-header holds the keys from before the restart: a new signing key would fail it.
    let jwks = policy.jwks()?;
    let envoy = t.chain(
        policy.addr,
        &jwks,
        &upstream,
        json!({ "status_on_error": 503 }),
    )?;
    let alice = format!("Bearer {}", idp.token("alice", &[]));
    let res = get(&envoy, &[("authorization", &alice)])?;
    assert_eq!(res.status, 200, "{t}: {res:?}\n{}", envoy.log());

    let addr = policy.addr;
    policy.stop();
    assert_refused(
        &get(&envoy, &[("authorization", &alice)])?,
        503,
        &format!("{t}: policy server down"),
        &envoy,
    );
    policy.start_again()?;
    assert_eq!(policy.addr, addr, "{t}");
    assert_eq!(policy.jwks()?, jwks, "{t}: the same signing key");
    let res = get(&envoy, &[("authorization", &alice)])?;
    assert_eq!(
        res.status,
        200,
        "{t}: {res:?}\npolicy server:\n{}\nEnvoy:\n{}",
        policy.log(),
        envoy.log()
    );
    assert_eq!(upstream.requests().len(), 2, "{t}");
    Ok(())
}

fn client_identity_headers_never_reach_the_upstream(t: Transport) -> Result<()> {
    let idp = Idp::new();
    let policy = t.policy_server(UserKeys::File(&idp.jwks()))?;
    let upstream = EchoUpstream::start()?;
    let owned = json!({ "allowed_upstream_headers": ["x-acl-user"] });
    let envoy = t.chain(policy.addr, &policy.jwks()?, &upstream, owned.clone())?;
    let alice = format!("Bearer {}", idp.token("alice", &[]));
    let mut headers = vec![("authorization", alice.as_str())];
    headers.extend(SPOOFS);
    let res = get(&envoy, &headers)?;
    assert_eq!(res.status, 200, "{t}: {res:?}\n{}", envoy.log());
    let seen = &upstream.requests()[0];
    assert_eq!(
        spellings(seen, "x-user"),
        [("x-user".to_owned(), "alice".to_owned())],
        "{t}: {seen:?}"
    );
    assert_eq!(spellings(seen, "x-acl-user"), [], "{t}: {seen:?}");
    assert_eq!(spellings(seen, "authz-complete"), [], "{t}: {seen:?}");

    // No decision, let through by failure_mode_allow (acl-check alone): nothing spoofed survives.
    let closed = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let lenient = EchoUpstream::start()?;
    let mut cfg = owned;
    cfg["failure_mode_allow"] = json!(true);
    let envoy = t
        .policy_cluster(Envoy::builder().http_filter(t.acl_check(cfg)), closed)
        .upstream(lenient.addr())
        .start()?;
    let res = get(&envoy, &headers)?;
    assert_eq!(res.status, 200, "{t}: {res:?}\n{}", envoy.log());
    let seen = &lenient.requests()[0];
    assert_eq!(spellings(seen, "x-acl-user"), [], "{t}: {seen:?}");
    assert_eq!(spellings(seen, "authz-complete"), [], "{t}: {seen:?}");
    Ok(())
}

#[test]
fn check_header_refuses_every_forged_grant() -> Result<()> {
    // Only its signing key and JWKS are used here; the identity provider key is a formality.
    let idp_key = ES256KeyPair::generate().public_key().to_jwk();
    let idp_jwks = format!(r#"{{"keys":[{idp_key}]}}"#);
    let policy = PolicyServer::start(USER.issuer, USER.audience, UserKeys::File(&idp_jwks))?;
    let jwks = policy.jwks()?;
    let kid = serde_json::from_str::<Value>(&jwks)?["keys"][0]["kid"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let key = ES256KeyPair::from_pem(&policy.signing_key_pem()?)
        .map_err(anyhow::Error::msg)?
        .with_key_id(&kid);
    let upstream = EchoUpstream::start()?;
    let envoy = Envoy::builder()
        .http_filter(check_header(&jwks, json!({})))
        .upstream(upstream.addr())
        .start()?;
    let functions = json!({ "functions": ["read_data"] });

    let valid = key
        .sign(tokens::claims(GRANT, "alice", functions.clone()))
        .map_err(anyhow::Error::msg)?;
    assert_eq!(
        get(&envoy, &[(SET_HEADER, &valid)])?.status,
        200,
        "the forgeries below start from a valid grant"
    );
    let public = key.public_key().to_pem().map_err(anyhow::Error::msg)?;
    for (case, token) in attacks(GRANT, &functions, &key, &public, 8192) {
        assert_refused(&get(&envoy, &[(SET_HEADER, &token)])?, 401, case, &envoy);
    }
    // A spoofed identity header does not help a forged grant.
    assert_refused(
        &get(&envoy, &[("x_user", "root"), (SET_HEADER, "forged")])?,
        401,
        "forged grant",
        &envoy,
    );
    assert_eq!(
        upstream.requests().len(),
        1,
        "only the valid grant reached the upstream"
    );
    Ok(())
}

#[test]
fn a_grant_passes_check_header_once_and_only_for_its_request() -> Result<()> {
    let idp = Idp::new();
    let policy = PolicyServer::start(USER.issuer, USER.audience, UserKeys::File(&idp.jwks()))?;
    let upstream = EchoUpstream::start()?;
    // check-header alone: what a client could try where acl-check does not run first.
    let strict = json!({ "require_request_binding": true, "single_use_grants": true });
    let envoy = Envoy::builder()
        .http_filter(check_header(&policy.jwks()?, strict))
        .upstream(upstream.addr())
        .start()?;
    let alice = format!("Bearer {}", idp.token("alice", &[]));
    let send = |path: &str, grant: &str| -> Result<HttpResponse> {
        envoy
            .get(path)?
            .timeout(Duration::from_secs(10))
            .header(SET_HEADER, grant)
            .send()
    };
    let grant = policy_grant(&policy, &alice, ["GET", &host(&envoy), "/data/report?x=1"])?;
    assert_eq!(
        send("/data/report?y=2", &grant)?.status,
        200,
        "the query is not bound: {}",
        envoy.log()
    );
    assert_refused(
        &send("/data/report", &grant)?,
        401,
        "the same grant again",
        &envoy,
    );
    for path in ["/admin", "/data/report/../../admin", "/data/reports"] {
        let fresh = policy_grant(&policy, &alice, ["GET", &host(&envoy), "/data/report"])?;
        assert_refused(&send(path, &fresh)?, 401, path, &envoy);
    }
    let other_host = policy_grant(&policy, &alice, ["GET", "elsewhere.test", "/data/report"])?;
    assert_refused(
        &send("/data/report", &other_host)?,
        401,
        "issued for another host",
        &envoy,
    );
    assert_eq!(upstream.requests().len(), 1);
    Ok(())
}
