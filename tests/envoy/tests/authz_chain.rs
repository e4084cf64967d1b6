//! Seed 000's AUTHZ chain in a real Envoy: `acl-check → check-header → upstream`, with the
//! reference policy server (`examples/policy-server`) as a child process on 127.0.0.1.
//!
//! The attack matrix runs twice: forged *user* tokens through the whole chain (the policy
//! server refuses them, acl-check relays its 401), and forged *grant* tokens sent straight
//! to check-header (what a client could try if acl-check were missing). Policy-server
//! failures fail closed. Every refusal also checks that the upstream saw nothing.

mod authz_chain {
    pub mod checks;
    pub mod filters;
    pub mod tokens;
}

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use anyhow::Result;
use authz_chain::checks::{assert_refused, spellings, SPOOFS};
use authz_chain::filters::{acl_check, check_header, get, SET_HEADER};
use authz_chain::tokens::{self, attacks, Idp, GRANT, USER};
use serde_json::{json, Value};
use weir_envoy_tests::{EchoUpstream, Envoy, HttpResponse, PolicyServer, Reply, UserKeys};
use weir_test_jwt::jwt_simple::prelude::*;

/// The chain in front of `upstream`, with the `policy` cluster at `policy`.
fn chain(
    policy: SocketAddr,
    jwks: &str,
    upstream: &EchoUpstream,
    acl_extra: Value,
) -> Result<Envoy> {
    Envoy::builder()
        .http_filter(acl_check(acl_extra))
        .http_filter(check_header(
            jwks,
            json!({ "require_request_binding": true, "single_use_grants": true }),
        ))
        .cluster("policy", policy)
        .upstream(upstream.addr())
        .start()
}

#[test]
fn the_chain_passes_granted_users_and_refuses_every_forged_user_token() -> Result<()> {
    let idp = Idp::new();
    let policy = PolicyServer::start(USER.issuer, USER.audience, UserKeys::File(&idp.jwks()))?;
    let upstream = EchoUpstream::start()?;
    let envoy = chain(policy.addr, &policy.jwks()?, &upstream, json!({}))?;
    let bearer = |token: &str| format!("Bearer {token}");

    // alice holds read_data: through, the grant stripped, her name from the grant.
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

    // A grant alice got, replayed by bob (no grants) in the header acl-check owns.
    let grant = policy_grant(&policy, &alice, ["GET", &host(&envoy), "/data/report"])?;
    let bob = bearer(&idp.token("bob", &[]));
    assert_refused(
        &get(&envoy, &[("authorization", &bob), (SET_HEADER, &grant)])?,
        403,
        "replayed grant",
        &envoy,
    );
    assert_refused(
        &get(&envoy, &[(SET_HEADER, &grant)])?,
        401,
        "forged grant, no user token",
        &envoy,
    );
    // carol writes but may not read: the policy server grants, check-header says 403.
    let carol = bearer(&idp.token("carol", &["writers"]));
    assert_refused(
        &get(&envoy, &[("authorization", &carol)])?,
        403,
        "granted without read_data",
        &envoy,
    );

    let rsa_public = idp.rsa.public_key().to_pem().expect("pem");
    let forged = attacks(USER, &json!({ "groups": [] }), &idp.ec, &rsa_public, 8192);
    for (case, token) in &forged {
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
    // Envoy names plugin-defined metrics `wasmcustom.<name>`.
    assert_eq!(
        envoy.stat("wasmcustom.acl_check.allowed")?,
        Some(2),
        "alice and carol"
    );
    assert_eq!(
        envoy.stat("wasmcustom.check_header.allowed")?,
        Some(1),
        "alice"
    );
    Ok(())
}

/// The grant the policy server issues for `authorization` and the request line
/// (`method`, `host`, `uri`), asked for directly.
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
    assert_eq!(
        upstream.requests().len(),
        1,
        "only the valid grant reached the upstream"
    );
    Ok(())
}

#[test]
fn no_decision_from_the_policy_server_fails_closed() -> Result<()> {
    // Bound, never accepting: a connection that is refused, as when the server is down.
    let closed = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    // The real server whose identity provider never answered: every check is its 500.
    let policy = PolicyServer::start(
        USER.issuer,
        USER.audience,
        UserKeys::Url(&format!("http://{closed}/jwks")),
    )?;
    let slow = EchoUpstream::with_reply(
        Reply::status(200)
            .body("a.b.c")
            .delay(Duration::from_millis(1500)),
    )?;
    let garbage = EchoUpstream::with_reply(Reply::status(200).body("<html>welcome</html>"))?;
    let cases = [
        ("down", closed),
        ("500", policy.addr),
        ("slow past the timeout", slow.addr()),
        ("garbage body", garbage.addr()),
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
        let started = std::time::Instant::now();
        let res = get(&envoy, &[("authorization", &token), (SET_HEADER, "forged")])?;
        assert_refused(&res, 503, case, &envoy);
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

#[test]
fn a_restarted_policy_server_is_the_same_server_and_the_chain_recovers() -> Result<()> {
    let idp = Idp::new();
    let mut policy = PolicyServer::start(USER.issuer, USER.audience, UserKeys::File(&idp.jwks()))?;
    let upstream = EchoUpstream::start()?;
    // check-header holds the keys from before the restart: a new signing key would fail it.
    let jwks = policy.jwks()?;
    let envoy = chain(
        policy.addr,
        &jwks,
        &upstream,
        json!({ "status_on_error": 503 }),
    )?;
    let alice = format!("Bearer {}", idp.token("alice", &[]));
    assert_eq!(
        get(&envoy, &[("authorization", &alice)])?.status,
        200,
        "{}",
        envoy.log()
    );

    let addr = policy.addr;
    policy.stop();
    assert_refused(
        &get(&envoy, &[("authorization", &alice)])?,
        503,
        "policy server down",
        &envoy,
    );
    policy.start_again()?;
    assert_eq!(policy.addr, addr);
    assert_eq!(policy.jwks()?, jwks, "the same signing key");
    let res = get(&envoy, &[("authorization", &alice)])?;
    assert_eq!(
        res.status,
        200,
        "{res:?}\npolicy server:\n{}\nEnvoy:\n{}",
        policy.log(),
        envoy.log()
    );
    assert_eq!(upstream.requests().len(), 2);
    Ok(())
}

/// The `:authority` Envoy sees from the test client (`host: 127.0.0.1:<port>`).
fn host(envoy: &Envoy) -> String {
    envoy.url().trim_start_matches("http://").to_owned()
}

#[test]
fn client_identity_headers_never_reach_the_upstream() -> Result<()> {
    let idp = Idp::new();
    let policy = PolicyServer::start(USER.issuer, USER.audience, UserKeys::File(&idp.jwks()))?;
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

    // No decision, let through by failure_mode_allow (acl-check alone): nothing spoofed survives.
    let closed = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let lenient = EchoUpstream::start()?;
    let mut cfg = owned;
    cfg["failure_mode_allow"] = json!(true);
    let envoy = Envoy::builder()
        .http_filter(acl_check(cfg))
        .cluster("policy", closed)
        .upstream(lenient.addr())
        .start()?;
    let res = get(&envoy, &headers)?;
    assert_eq!(res.status, 200, "{res:?}\n{}", envoy.log());
    let seen = &lenient.requests()[0];
    assert_eq!(spellings(seen, "x-acl-user"), [], "{seen:?}");
    assert_eq!(spellings(seen, "authz-complete"), [], "{seen:?}");
    // check-header alone refuses the forged grant: its upstream sees nothing at all.
    let refusing = EchoUpstream::start()?;
    let envoy = Envoy::builder()
        .http_filter(check_header(&policy.jwks()?, json!({})))
        .upstream(refusing.addr())
        .start()?;
    assert_refused(
        &get(&envoy, &[("x_user", "root"), (SET_HEADER, "forged")])?,
        401,
        "forged grant",
        &envoy,
    );
    assert!(refusing.requests().is_empty());
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
