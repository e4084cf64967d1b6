//! Tokens for the chain: an identity provider's user tokens (RS256 and ES256) and, for
//! the attack matrix, tokens that differ from a valid one in exactly one respect.

use jwt_simple::prelude::*;
use serde_json::{json, Value};

pub const IDP_ISSUER: &str = "https://idp.test";
pub const IDP_AUDIENCE: &str = "weir-demo";

/// One set of claim rules: the user token's (`IDP_*`) or the grant's (the policy server's).
#[derive(Clone, Copy)]
pub struct Rules<'a> {
    pub issuer: &'a str,
    pub audience: &'a str,
}

pub const USER: Rules<'static> = Rules {
    issuer: IDP_ISSUER,
    audience: IDP_AUDIENCE,
};
pub const GRANT: Rules<'static> = Rules {
    issuer: "weir-policy-server",
    audience: "check-header",
};

/// The identity provider: one RSA and one EC key, both in its JWKS.
pub struct Idp {
    pub rsa: RS256KeyPair,
    pub ec: ES256KeyPair,
}

impl Idp {
    pub fn new() -> Self {
        Self {
            rsa: RS256KeyPair::generate(2048)
                .expect("RSA key generation")
                .with_key_id("idp-rsa-1"),
            ec: ES256KeyPair::generate().with_key_id("idp-ec-1"),
        }
    }

    pub fn jwks(&self) -> String {
        let jwk = |s: String| serde_json::from_str::<Value>(&s).expect("jwt-simple writes JSON");
        json!({ "keys": [jwk(self.rsa.public_key().to_jwk()), jwk(self.ec.public_key().to_jwk())] })
            .to_string()
    }

    /// An honest RS256 token for `subject` in `groups`.
    pub fn token(&self, subject: &str, groups: &[&str]) -> String {
        self.rsa
            .sign(claims(USER, subject, json!({ "groups": groups })))
            .expect("signs")
    }
}

/// Claims valid for five minutes from now.
pub fn claims(rules: Rules<'_>, subject: &str, custom: Value) -> JWTClaims<Value> {
    Claims::with_custom_claims(custom, Duration::from_secs(300))
        .with_issuer(rules.issuer)
        .with_audience(rules.audience)
        .with_subject(subject)
}

fn b64(bytes: &[u8]) -> String {
    Base64UrlSafeNoPadding::encode_to_string(bytes).expect("base64")
}

/// `claims` signed validly by `key` under a header of the caller's choosing (jwt-simple
/// writes only its own headers): `crit`, or an `alg` the signature does not match.
pub fn sign_with_header(key: &ES256KeyPair, header: Value, claims: &JWTClaims<Value>) -> String {
    use p256::ecdsa::signature::Signer;
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(&serde_json::to_vec(claims).expect("claims serialize"))
    );
    let signature: p256::ecdsa::Signature = key.key_pair().as_ref().sign(input.as_bytes());
    format!("{input}.{}", b64(&signature.to_bytes()))
}

/// Every forgery of a token that `key` would sign validly for `rules`, by name. `hmac_with`
/// is the verifier's public key, used as an HMAC secret (the algorithm-confusion attack).
pub fn attacks(
    rules: Rules<'_>,
    custom: &Value,
    key: &ES256KeyPair,
    hmac_with: &str,
    max_bytes: usize,
) -> Vec<(&'static str, String)> {
    let kid = key.key_id().clone().unwrap_or_default();
    let sign = |edit: &dyn Fn(&mut JWTClaims<Value>)| {
        let mut c = claims(rules, "alice", custom.clone());
        edit(&mut c);
        key.sign(c).expect("signs")
    };
    let now = Clock::now_since_epoch().as_secs();
    let good = sign(&|_| {});
    let parts: Vec<&str> = good.split('.').collect();
    let mut escalated = claims(rules, "alice", custom.clone());
    escalated.subject = Some("root".into());
    let tampered = b64(&serde_json::to_vec(&escalated).expect("claims serialize"));
    let none_header = b64(json!({ "alg": "none", "typ": "JWT", "kid": kid })
        .to_string()
        .as_bytes());
    let hs = HS256Key::from_bytes(hmac_with.as_bytes()).with_key_id(&kid);
    let stranger = ES256KeyPair::generate().with_key_id("unknown-kid");
    vec![
        ("alg none", format!("{none_header}.{}.", parts[1])),
        (
            "HS256 signed with the public key",
            hs.authenticate(claims(rules, "alice", custom.clone()))
                .expect("hs"),
        ),
        (
            "expired",
            sign(&|c| c.expires_at = Some(Duration::from_secs(now - 600))),
        ),
        (
            "nbf in the future",
            sign(&|c| c.invalid_before = Some(Duration::from_secs(now + 600))),
        ),
        (
            "wrong iss",
            sign(&|c| c.issuer = Some("https://evil.test".into())),
        ),
        (
            "wrong aud",
            sign(&|c| c.audiences = Some(Audiences::AsString("someone-else".into()))),
        ),
        ("missing exp", sign(&|c| c.expires_at = None)),
        (
            "tampered payload",
            format!("{}.{tampered}.{}", parts[0], parts[2]),
        ),
        (
            "unknown kid",
            stranger
                .sign(claims(rules, "alice", custom.clone()))
                .expect("signs"),
        ),
        (
            "oversized",
            format!("{}.{}.{}", parts[0], "A".repeat(max_bytes + 1), parts[2]),
        ),
        (
            "oversized, validly signed",
            sign(&|c| c.custom["padding"] = json!("x".repeat(max_bytes))),
        ),
        (
            "crit: [exp], validly signed",
            sign_with_header(
                key,
                json!({ "alg": "ES256", "kid": kid, "crit": ["exp"], "exp": 1 }),
                &claims(rules, "alice", custom.clone()),
            ),
        ),
        (
            "crit: [], validly signed",
            sign_with_header(
                key,
                json!({ "alg": "ES256", "kid": kid, "crit": [] }),
                &claims(rules, "alice", custom.clone()),
            ),
        ),
        (
            "alg RS256 on an ES256 signature",
            sign_with_header(
                key,
                json!({ "alg": "RS256", "kid": kid }),
                &claims(rules, "alice", custom.clone()),
            ),
        ),
    ]
}
