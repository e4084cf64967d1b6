//! Decisions from the ACL, and the issued token checked the way check-header will check it:
//! against the server's own JWKS endpoint, with a strict verifier.

use std::collections::HashSet;

use jwt_simple::prelude::*;
use serde_json::{json, Value};

use crate::support::*;

/// Verifies a grant token like check-header does: key by `kid` from the JWKS, `alg`
/// bound to the key type, `iss`, `aud`, no clock skew, and `exp` present.
pub fn strict_verify(jwks: &Value, token: &str, alg: &str) -> JWTClaims<Value> {
    let metadata = Token::decode_metadata(token).unwrap();
    assert_eq!(metadata.algorithm(), alg);
    let kid = metadata.key_id().expect("issued tokens carry a kid");
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid)
        .unwrap_or_else(|| panic!("kid {kid} is in the published JWKS {jwks}"))
        .to_string();
    let options = VerificationOptions {
        allowed_issuers: Some(HashSet::from(["weir-policy-server".to_string()])),
        allowed_audiences: Some(HashSet::from(["check-header".to_string()])),
        time_tolerance: Some(Duration::from_secs(0)),
        ..Default::default()
    };
    let claims = match alg {
        "ES256" => ES256PublicKey::from_jwk(&jwk)
            .unwrap()
            .verify_token::<Value>(token, Some(options)),
        "EdDSA" => Ed25519PublicKey::from_jwk(&jwk)
            .unwrap()
            .verify_token::<Value>(token, Some(options)),
        other => panic!("unexpected alg {other}"),
    }
    .expect("grant token verifies against the published JWKS");
    assert!(claims.expires_at.is_some(), "grant tokens carry exp");
    claims
}

#[tokio::test]
async fn acl_grants_by_subject_and_by_group() {
    let server = start_default().await;
    let idp = idp();
    let jwks = published_jwks(&server).await;

    // By subject only.
    let answer = server.check_token(&idp.token("alice", &[])).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.content_type.as_deref(), Some("application/jwt"));
    let claims = strict_verify(&jwks, &answer.body, "ES256");
    assert_eq!(claims.subject.as_deref(), Some("alice"));
    assert_eq!(
        claims.custom["functions"],
        json!(["read_data", "write_data"])
    );
    assert_eq!(claims.custom["files"], json!(["/data/alice"]));

    // By group only.
    let answer = server.check_token(&idp.token("bob", &["readers"])).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let claims = strict_verify(&jwks, &answer.body, "ES256");
    assert_eq!(claims.subject.as_deref(), Some("bob"));
    assert_eq!(claims.custom["functions"], json!(["read_data"]));
    assert_eq!(claims.custom["files"], json!(["/data/public"]));

    // Subject and groups together: the union, de-duplicated and sorted.
    let answer = server
        .check_token(&idp.token("alice", &["readers", "auditors", "unknown"]))
        .await;
    let claims = strict_verify(&jwks, &answer.body, "ES256");
    assert_eq!(
        claims.custom["functions"],
        json!(["read_data", "write_data"])
    );
    assert_eq!(
        claims.custom["files"],
        json!(["/data/alice", "/data/audit", "/data/public"])
    );

    // A group that grants files only still gets a token, with no functions.
    let answer = server.check_token(&idp.token("carol", &["auditors"])).await;
    let claims = strict_verify(&jwks, &answer.body, "ES256");
    assert_eq!(claims.custom["functions"], json!([]));

    // Valid token, nothing granted.
    for (who, groups) in [("mallory", vec![]), ("mallory", vec!["unknown"])] {
        let answer = server.check_token(&idp.token(who, &groups)).await;
        assert_eq!(answer.status, 403, "{who} {groups:?}: {}", answer.body);
        assert!(
            answer.www_authenticate.is_none(),
            "403 carries no Bearer challenge"
        );
        assert_eq!(answer.body, "no grants");
    }
    server.stop().await;
}

#[tokio::test]
async fn issued_token_has_the_protocol_claims() {
    let server = start_default().await;
    let jwks = published_jwks(&server).await;
    let first = server.check_token(&idp().token("alice", &[])).await.body;
    let second = server.check_token(&idp().token("alice", &[])).await.body;

    let header = Token::decode_metadata(&first).unwrap();
    assert_eq!(header.algorithm(), "ES256");
    let payload = payload_of(&first);
    for claim in [
        "iss",
        "sub",
        "aud",
        "iat",
        "nbf",
        "exp",
        "jti",
        "functions",
        "files",
    ] {
        assert!(payload.get(claim).is_some(), "claim {claim} in {payload}");
    }
    assert_eq!(payload["iss"], "weir-policy-server");
    assert_eq!(payload["aud"], "check-header");
    let iat = payload["iat"].as_u64().unwrap();
    assert_eq!(
        payload["exp"].as_u64().unwrap() - iat,
        60,
        "default lifetime is 60 s"
    );
    assert!(payload["nbf"].as_u64().unwrap() <= iat);
    assert_ne!(
        payload["jti"],
        payload_of(&second)["jti"],
        "jti is unique per token"
    );

    // The JWKS holds exactly the signing key, public part only, with kid and alg.
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["kid"], header.key_id().unwrap());
    assert_eq!(keys[0]["alg"], "ES256");
    assert_eq!(keys[0]["kty"], "EC");
    assert!(
        keys[0].get("d").is_none(),
        "no private key material in the JWKS"
    );
    strict_verify(&jwks, &first, "ES256");

    // A different server's key must not verify these tokens.
    let other = ES256KeyPair::generate();
    let options = VerificationOptions::default();
    assert!(other
        .public_key()
        .verify_token::<Value>(&first, Some(options))
        .is_err());
    server.stop().await;
}

/// A grant is for one request unless `issued_token.reuse_seconds` lets acl-check's decision
/// cache reuse it; the setting cannot outlive the grant.
#[tokio::test]
async fn grants_say_how_long_they_may_be_reused() {
    let alice = idp().token("alice", &[]);
    let server = start_default().await;
    let answer = server.check_token(&alice).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.cache_control.as_deref(), Some("no-store"));
    server.stop().await;

    let server = start_with(&file_config("", "  reuse_seconds: 30\n"), |_| {}).await;
    let answer = server.check_token(&alice).await;
    assert_eq!(answer.cache_control.as_deref(), Some("private, max-age=30"));
    let refused = server.check(None).await;
    assert_eq!(refused.status, 401);
    assert_eq!(refused.cache_control, None, "only grants say it");
    server.stop().await;

    let text = file_config("", "  ttl_seconds: 60\n  reuse_seconds: 61\n");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy-server.yaml");
    std::fs::write(&path, text).unwrap();
    let err = format!("{:#}", policy_server::Config::load(&path).unwrap_err());
    assert!(
        err.contains("issued_token.reuse_seconds must be between 0 and ttl_seconds (60), got 61"),
        "{err}"
    );
}

/// With no `issued_token.algorithm`, the server signs with the key's own algorithm: EdDSA
/// for the Ed25519 keys `--generate-key` writes by default, ES256 for a P-256 key.
#[tokio::test]
async fn the_signing_algorithm_follows_the_key_unless_configured() {
    for (alg, written) in [
        ("EdDSA", policy_server::Algorithm::EdDSA),
        ("ES256", policy_server::Algorithm::ES256),
    ] {
        let server = start_with(&file_config("", ""), |dir| {
            std::fs::remove_file(dir.join("signing.pem")).unwrap();
            policy_server::write_new_key(&dir.join("signing.pem"), written).unwrap();
        })
        .await;
        let answer = server.check_token(&idp().token("alice", &[])).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        strict_verify(&published_jwks(&server).await, &answer.body, alg);
        server.stop().await;
    }
}

#[tokio::test]
async fn the_grant_is_bound_to_the_request_it_was_decided_for() {
    let server = start_default().await;
    let token = idp().token("alice", &[]);
    // check() sends what acl-check sends: GET app.test /data/report?x=1.
    let bound = payload_of(&server.check_token(&token).await.body);
    assert_eq!(
        bound["request"],
        json!({ "method": "GET", "host": "app.test", "path": "/data/report" }),
        "the query is not part of the binding"
    );
    // Without the forwarded request line there is nothing to bind to: no claim, and
    // check-header's require_request_binding refuses such a grant.
    let response = server
        .client
        .post(server.url("/check"))
        .header("authorization", format!("Bearer {token}"))
        .header("x-forwarded-method", "GET")
        .send()
        .await
        .unwrap();
    let unbound = payload_of(&answer(response).await.body);
    assert!(unbound.get("request").is_none(), "{unbound}");
    assert_eq!(unbound["functions"], bound["functions"]);
    server.stop().await;
}

#[tokio::test]
async fn eddsa_signing_custom_claims_and_path() {
    let config = file_config("",
        "  algorithm: EdDSA\n  issuer: weir-policy-server\n  audience: check-header\n  ttl_seconds: 30\n\
         check_path: /authz/v1/check\n",
    );
    let server = start_with(&config, |dir| {
        // Replace the ES256 key start_with wrote by an Ed25519 one.
        std::fs::remove_file(dir.join("signing.pem")).unwrap();
        policy_server::write_new_key(&dir.join("signing.pem"), policy_server::Algorithm::EdDSA)
            .unwrap();
    })
    .await;
    let token = idp().token("alice", &[]);
    let default_path = server.check_token(&token).await;
    assert_eq!(default_path.status, 404, "the check path moved");
    let response = server
        .client
        .post(server.url("/authz/v1/check"))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    let answer = answer(response).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let claims = strict_verify(&published_jwks(&server).await, &answer.body, "EdDSA");
    assert_eq!(
        claims.expires_at.unwrap() - claims.issued_at.unwrap(),
        Duration::from_secs(30)
    );
    server.stop().await;
}

#[tokio::test]
async fn health_and_method_checks() {
    let server = start_default().await;
    let health = server
        .client
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok");
    let get_check = server
        .client
        .get(server.url("/check"))
        .send()
        .await
        .unwrap();
    assert_eq!(get_check.status(), 405, "/check is POST only");
    server.stop().await;
}
