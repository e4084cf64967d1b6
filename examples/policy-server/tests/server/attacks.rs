//! Forged, broken and stale user tokens: every one must get 401 with the Bearer challenge,
//! while the honest token in the same server gets 200 (so the 401s are not an accident of
//! a broken setup).

use hmac_sha256::HMAC;
use jwt_simple::prelude::*;
use serde_json::json;

use crate::support::*;

/// `header.payload.signature` from raw parts.
fn compact(header: &serde_json::Value, payload: &serde_json::Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        b64_json(header),
        b64_json(payload),
        base64_url(signature)
    )
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn honest_payload() -> serde_json::Value {
    let now = Clock::now_since_epoch().as_secs();
    json!({
        "iss": IDP_ISSUER, "aud": IDP_AUDIENCE, "sub": "alice",
        "iat": now, "nbf": now, "exp": now + 300,
    })
}

/// The attack matrix: (case, token, a fragment of the reason the server must log).
fn attack_cases() -> Vec<(&'static str, String, &'static str)> {
    let idp = idp();
    let now = Clock::now_since_epoch();
    let mut cases: Vec<(&str, String, &str)> = Vec::new();

    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = json!({"alg": alg, "typ": "JWT", "kid": RSA_KID});
        cases.push((
            "alg=none (any case), empty signature",
            compact(&header, &honest_payload(), b""),
            "unsupported JWS algorithm",
        ));
    }

    // The classic confusion: HS256 keyed with the RSA public key the verifier knows.
    let rsa_public_pem = idp.rsa.public_key().to_pem().unwrap();
    let header = json!({"alg": "HS256", "typ": "JWT", "kid": RSA_KID});
    let signing_input = format!("{}.{}", b64_json(&header), b64_json(&honest_payload()));
    let mac = HMAC::mac(signing_input.as_bytes(), rsa_public_pem.as_bytes());
    cases.push((
        "HS256 signed with the RSA public key (PEM)",
        format!("{signing_input}.{}", base64_url(&mac)),
        "not in the allow-list",
    ));
    let rsa_jwk = idp.rsa.public_key().to_jwk();
    let mac = HMAC::mac(signing_input.as_bytes(), rsa_jwk.as_bytes());
    cases.push((
        "HS256 signed with the RSA public key (JWK)",
        format!("{signing_input}.{}", base64_url(&mac)),
        "not in the allow-list",
    ));

    let mut expired = user_claims("alice", &[]);
    expired.issued_at = Some(now - Duration::from_secs(1000));
    expired.invalid_before = expired.issued_at;
    expired.expires_at = Some(now - Duration::from_secs(120)); // beyond the 60 s skew
    cases.push((
        "expired two minutes ago",
        idp.rsa.sign(expired).unwrap(),
        "expired",
    ));

    let mut future = user_claims("alice", &[]);
    future.invalid_before = Some(now + Duration::from_secs(600));
    cases.push((
        "nbf ten minutes ahead",
        idp.rsa.sign(future).unwrap(),
        "not valid yet",
    ));

    let mut issued_ahead = user_claims("alice", &[]);
    issued_ahead.issued_at = Some(now + Duration::from_secs(600));
    cases.push((
        "iat ten minutes ahead",
        idp.rsa.sign(issued_ahead).unwrap(),
        "Clock drift",
    ));

    let wrong_iss = user_claims("alice", &[]).with_issuer("https://evil.test");
    cases.push((
        "wrong iss",
        idp.rsa.sign(wrong_iss).unwrap(),
        "issuer mismatch",
    ));
    let mut no_iss = user_claims("alice", &[]);
    no_iss.issuer = None;
    cases.push((
        "missing iss",
        idp.rsa.sign(no_iss).unwrap(),
        "issuer missing",
    ));

    let wrong_aud = user_claims("alice", &[]).with_audience("someone-else");
    cases.push((
        "wrong aud",
        idp.rsa.sign(wrong_aud).unwrap(),
        "audience mismatch",
    ));
    let mut no_aud = user_claims("alice", &[]);
    no_aud.audiences = None;
    cases.push((
        "missing aud",
        idp.rsa.sign(no_aud).unwrap(),
        "audience missing",
    ));

    let mut no_exp = user_claims("alice", &[]);
    no_exp.expires_at = None;
    cases.push((
        "missing exp (validly signed)",
        idp.rsa.sign(no_exp).unwrap(),
        "no exp claim",
    ));

    let mut no_sub = user_claims("alice", &[]);
    no_sub.subject = None;
    cases.push(("missing sub", idp.rsa.sign(no_sub).unwrap(), "no sub claim"));

    // Tampered payload: mallory's token with alice's name pasted in, signature kept.
    let mallory = idp.token("mallory", &[]);
    let mut parts: Vec<String> = mallory.split('.').map(str::to_owned).collect();
    let mut payload = payload_of(&mallory);
    payload["sub"] = json!("alice");
    parts[1] = b64_json(&payload);
    cases.push((
        "tampered payload (sub changed)",
        parts.join("."),
        "Signature tag didn't verify",
    ));
    let ec_token = idp.ec.sign(user_claims("mallory", &["readers"])).unwrap();
    let mut parts: Vec<String> = ec_token.split('.').map(str::to_owned).collect();
    let mut payload = payload_of(&ec_token);
    payload["groups"] = json!(["readers", "admins"]);
    parts[1] = b64_json(&payload);
    cases.push((
        "tampered ES256 payload (group added)",
        parts.join("."),
        "Signature tag didn't verify",
    ));

    let rogue = ES256KeyPair::generate().with_key_id("rogue-1");
    cases.push((
        "unknown kid",
        rogue.sign(user_claims("alice", &[])).unwrap(),
        "unknown kid",
    ));
    // A header pointing at the attacker's own key set is never followed.
    let mut self_hosted = ES256KeyPair::generate().with_key_id("attacker-1");
    let metadata = KeyMetadata::default()
        .with_key_set_url("https://evil.test/jwks.json")
        .with_public_key(self_hosted.public_key().to_jwk());
    self_hosted.attach_metadata(metadata).unwrap();
    let token = self_hosted.sign(user_claims("alice", &[])).unwrap();
    assert!(Token::decode_metadata(&token)
        .unwrap()
        .key_set_url()
        .is_some());
    cases.push((
        "jku/jwk headers naming the attacker's key",
        token,
        "unknown kid",
    ));
    let impostor = ES256KeyPair::generate().with_key_id(EC_KID);
    cases.push((
        "known kid, other key",
        impostor.sign(user_claims("alice", &[])).unwrap(),
        "Signature tag didn't verify",
    ));
    let no_kid = ES256KeyPair::generate();
    cases.push((
        "no kid, other key",
        no_kid.sign(user_claims("alice", &[])).unwrap(),
        "Signature tag didn't verify",
    ));

    // An honest signature on a token over the 8 KiB default limit.
    let mut oversized = user_claims("alice", &[]);
    oversized.custom.padding = Some("x".repeat(9000));
    cases.push((
        "oversized token (valid signature)",
        idp.rsa.sign(oversized).unwrap(),
        "more than max_token_bytes",
    ));

    cases.push(("not a JWT", "not-a-jwt".into(), "bad header"));
    cases.push((
        "two segments",
        format!(
            "{}.{}",
            b64_json(&json!({"alg":"RS256"})),
            b64_json(&honest_payload())
        ),
        "compact encoding",
    ));
    let honest_token = idp.token("alice", &[]);
    cases.push((
        "four segments",
        format!("{honest_token}.AAAA"),
        "compact encoding",
    ));
    let header = json!({"alg": "RS256", "kid": RSA_KID, "crit": ["exp"]});
    cases.push((
        "unknown crit header",
        compact(&header, &honest_payload(), b"sig"),
        "critical extension",
    ));
    cases
}

#[tokio::test]
async fn forged_and_stale_tokens_get_401() {
    let server = start_default().await;
    // The control: the same server accepts an honest token.
    let honest = server.check_token(&idp().token("alice", &[])).await;
    assert_eq!(honest.status, 200, "honest token: {:?}", honest.body);
    for (case, token, _) in attack_cases() {
        server.check_token(&token).await.assert_unauthorized(case);
    }
    server.stop().await;
}

/// The same matrix against the verifier itself: each token must fail for its own reason,
/// not because of some other defect in how the test built it.
#[tokio::test]
async fn each_attack_fails_for_its_own_reason() {
    let server = start_default().await;
    let config =
        policy_server::Config::load(&server.dir.path().join("policy-server.yaml")).unwrap();
    let verifier = policy_server::UserTokenVerifier::from_config(&config.user_token)
        .await
        .unwrap();
    assert!(verifier.verify(&idp().token("alice", &[])).await.is_ok());
    let mut wrong = Vec::new();
    for (case, token, reason) in attack_cases() {
        match verifier.verify(&token).await {
            Err(policy_server::Rejection::Invalid(why)) if why.contains(reason) => {}
            other => wrong.push(format!(
                "{case}: expected Invalid({reason:?}), got {other:?}"
            )),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    server.stop().await;
}

#[tokio::test]
async fn missing_or_malformed_authorization_gets_401() {
    let server = start_default().await;
    let token = idp().token("alice", &[]);
    server
        .check(None)
        .await
        .assert_unauthorized("no authorization header");
    server
        .check(Some("Bearer"))
        .await
        .assert_unauthorized("Bearer without token");
    server
        .check(Some("Bearer "))
        .await
        .assert_unauthorized("Bearer with empty token");
    server
        .check(Some("Basic YWxpY2U6cHc="))
        .await
        .assert_unauthorized("Basic credentials");
    server
        .check(Some(&token))
        .await
        .assert_unauthorized("token without a scheme");
    // The scheme is case-insensitive (RFC 7235), so this one is fine.
    assert_eq!(
        server.check(Some(&format!("bearer {token}"))).await.status,
        200
    );

    let twice = server
        .client
        .post(server.url("/check"))
        .header("authorization", format!("Bearer {token}"))
        .header(
            "authorization",
            format!("Bearer {}", idp().token("mallory", &[])),
        )
        .send()
        .await
        .unwrap();
    answer(twice)
        .await
        .assert_unauthorized("two authorization headers");
    server.stop().await;
}

#[tokio::test]
async fn hmac_is_refused_unless_configured_and_then_needs_the_secret() {
    // HS256 listed without a secret is a configuration error, not a silent fallback.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy-server.yaml");
    let hs_only = file_config("  algorithms: [RS256, HS256]\n", "");
    std::fs::write(&path, &hs_only).unwrap();
    let err = policy_server::Config::load(&path).unwrap_err();
    assert!(format!("{err:#}").contains("hmac_secret_file"), "{err:#}");

    let secret = b"0123456789abcdef0123456789abcdef-test-secret";
    let config = file_config(
        "  algorithms: [RS256, HS256]\n  hmac_secret_file: hmac.secret\n",
        "",
    );
    let server = start_with(&config, |dir| {
        std::fs::write(dir.join("hmac.secret"), secret).unwrap()
    })
    .await;
    let good = HS256Key::from_bytes(secret)
        .authenticate(user_claims("alice", &[]))
        .unwrap();
    assert_eq!(
        server.check_token(&good).await.status,
        200,
        "HS256 with the configured secret"
    );
    let rsa_public_pem = idp().rsa.public_key().to_pem().unwrap();
    let confused = HS256Key::from_bytes(rsa_public_pem.as_bytes())
        .with_key_id(RSA_KID)
        .authenticate(user_claims("alice", &[]))
        .unwrap();
    server
        .check_token(&confused)
        .await
        .assert_unauthorized("HS256 keyed with the RSA public key");
    // Validly signed, but under a crit header: refused whatever it lists (jwt-simple alone
    // lets `crit: []` through).
    for crit in [json!([]), json!(["exp"])] {
        let header = json!({"alg": "HS256", "typ": "JWT", "crit": crit});
        let input = format!("{}.{}", b64_json(&header), b64_json(&honest_payload()));
        let token = format!(
            "{input}.{}",
            base64_url(&HMAC::mac(input.as_bytes(), secret))
        );
        server
            .check_token(&token)
            .await
            .assert_unauthorized(&format!("signed, crit: {crit}"));
    }
    let hs384 = HS384Key::from_bytes(secret)
        .authenticate(user_claims("alice", &[]))
        .unwrap();
    server
        .check_token(&hs384)
        .await
        .assert_unauthorized("HS384 not in the allow-list");
    server.stop().await;
}

#[tokio::test]
async fn allow_list_and_clock_skew_are_configurable() {
    let config = file_config(
        "  algorithms: [ES256]\n  clock_skew_seconds: 0\n  max_token_bytes: 2000\n",
        "",
    );
    let server = start_with(&config, |_| {}).await;
    let idp = idp();
    server
        .check_token(&idp.token("alice", &[]))
        .await
        .assert_unauthorized("RS256 outside [ES256]");
    assert_eq!(
        server
            .check_token(&idp.ec.sign(user_claims("alice", &[])).unwrap())
            .await
            .status,
        200
    );

    let now = Clock::now_since_epoch();
    let mut just_expired = user_claims("alice", &[]);
    just_expired.expires_at = Some(now - Duration::from_secs(5));
    server
        .check_token(&idp.ec.sign(just_expired).unwrap())
        .await
        .assert_unauthorized("expired 5 s ago with zero skew");

    let mut padded = user_claims("alice", &[]);
    padded.custom.padding = Some("x".repeat(1800));
    server
        .check_token(&idp.ec.sign(padded).unwrap())
        .await
        .assert_unauthorized("over max_token_bytes 2000");
    server.stop().await;

    // The default 60 s skew lets a token that expired 5 s ago through.
    let server = start_default().await;
    let mut recently_expired = user_claims("alice", &[]);
    recently_expired.expires_at = Some(now - Duration::from_secs(5));
    assert_eq!(
        server
            .check_token(&idp.rsa.sign(recently_expired).unwrap())
            .await
            .status,
        200
    );
    server.stop().await;
}
