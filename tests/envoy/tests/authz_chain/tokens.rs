//! Tokens for the chain: an identity provider's user tokens (RS256 and ES256) and, for
//! the attack matrix, weir-test-jwt's forgeries of a valid one.

use serde_json::{json, Value};
use weir_test_jwt::jwt_simple::prelude::*;
use weir_test_jwt::{es256_jwk, es256_key, rs256_jwk, rs256_key, Forger};

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
            rsa: rs256_key("idp-rsa-1"),
            ec: es256_key("idp-ec-1"),
        }
    }

    pub fn jwks(&self) -> String {
        weir_test_jwt::jwks([rs256_jwk(&self.rsa), es256_jwk(&self.ec)])
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

/// Every forgery of a token that `key` would sign validly for `rules`, by name: the one
/// matrix of weir-test-jwt. `hmac_with` is what the verifier is configured with, tried as an
/// HMAC secret (the algorithm-confusion attack).
pub fn attacks(
    rules: Rules<'_>,
    custom: &Value,
    key: &ES256KeyPair,
    hmac_with: &str,
    max_bytes: usize,
) -> Vec<(&'static str, String)> {
    let now = Clock::now_since_epoch().as_secs();
    Forger::new(key, claims(rules, "alice", custom.clone()), now)
        .max_bytes(max_bytes)
        .hmac_secret(hmac_with.as_bytes())
        .all()
        .into_iter()
        .map(|(forgery, token)| (forgery.name(), token))
        .collect()
}
