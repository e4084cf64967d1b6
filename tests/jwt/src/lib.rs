//! The JWT/JWKS test toolkit every Weir suite uses: signing keys with `kid`s, claims valid
//! at a given time, JWKS documents, tokens signed under any header, and [`Forgery`], the one
//! list of forged, broken and stale tokens that every verifier must refuse.
//!
//! ```
//! use serde_json::json;
//! use weir_test_jwt::{claims, es256_jwk, es256_key, jwks, Forger, Forgery};
//!
//! let key = es256_key("grant-1");
//! let now = 1_000_000;
//! let valid = claims(now, 60, "weir-policy-server", "check-header", "alice", json!({}));
//! let jwks = jwks([es256_jwk(&key)]);
//! let forger = Forger::new(&key, valid, now).hmac_secret(jwks.as_bytes());
//! for (forgery, token) in forger.all() {
//!     // Each suite sends `token` its own way and expects its own refusal.
//!     assert!(!token.is_empty(), "{}", forgery.name());
//! }
//! assert_eq!(forger.all().len(), Forgery::ALL.len());
//! ```
//!
//! Times are whole seconds since the Unix epoch and always given by the caller: suites that
//! run plugins in weir-runtime pass `weir_runtime::CLOCK_START`, suites against real
//! servers pass the wall clock.

#![warn(missing_docs)]

mod forgery;

use jwt_simple::prelude::*;
use serde::Serialize;
use serde_json::{json, Value};

pub use forgery::{Forger, Forgery};
/// The signing library, so suites name the same key and claim types as this crate.
pub use jwt_simple;

/// Base64url without padding, as JWS and JWK use it.
pub fn b64(bytes: &[u8]) -> String {
    Base64UrlSafeNoPadding::encode_to_string(bytes).expect("base64url of a byte slice")
}

/// A new P-256 key for ES256, with `kid`.
pub fn es256_key(kid: &str) -> ES256KeyPair {
    ES256KeyPair::generate().with_key_id(kid)
}

/// A new 2048-bit RSA key for RS256, with `kid` (slow in unoptimised builds: make one per test).
pub fn rs256_key(kid: &str) -> RS256KeyPair {
    RS256KeyPair::generate(2048)
        .expect("RSA key generation")
        .with_key_id(kid)
}

/// The public JWK of an ES256 key: `kty`, `crv`, `alg`, `use`, `kid`, `x`, `y`.
pub fn es256_jwk(key: &ES256KeyPair) -> Value {
    let point = key.public_key().public_key().to_bytes_uncompressed();
    json!({ "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig",
        "kid": key.key_id().clone().unwrap_or_default(),
        "x": b64(&point[1..33]), "y": b64(&point[33..65]) })
}

/// The public JWK of an RS256 key, as jwt-simple writes it.
pub fn rs256_jwk(key: &RS256KeyPair) -> Value {
    serde_json::from_str(&key.public_key().to_jwk()).expect("jwt-simple writes a JSON JWK")
}

/// A new Ed25519 key for EdDSA, with `kid`.
pub fn ed25519_key(kid: &str) -> Ed25519KeyPair {
    Ed25519KeyPair::generate().with_key_id(kid)
}

/// The public JWK of an EdDSA key: `kty`, `crv`, `alg`, `kid`, `x`.
pub fn ed25519_jwk(key: &Ed25519KeyPair) -> Value {
    json!({ "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA",
        "kid": key.key_id().clone().unwrap_or_default(),
        "x": b64(&key.public_key().to_bytes()) })
}

/// A JWKS document (`{"keys": [...]}`) holding `keys`.
pub fn jwks(keys: impl IntoIterator<Item = Value>) -> String {
    json!({ "keys": keys.into_iter().collect::<Vec<_>>() }).to_string()
}

/// Claims issued at `now` (also `nbf`), expiring `lifetime` seconds later, with `iss`, one
/// `aud`, `sub` and the `custom` claims.
pub fn claims(
    now: u64,
    lifetime: u64,
    issuer: &str,
    audience: &str,
    subject: &str,
    custom: Value,
) -> JWTClaims<Value> {
    JWTClaims {
        issued_at: Some(UnixTimeStamp::from_secs(now)),
        expires_at: Some(UnixTimeStamp::from_secs(now + lifetime)),
        invalid_before: Some(UnixTimeStamp::from_secs(now)),
        issuer: Some(issuer.to_owned()),
        subject: Some(subject.to_owned()),
        audiences: Some(Audiences::AsString(audience.to_owned())),
        jwt_id: None,
        nonce: None,
        custom,
    }
}

/// `claims` signed validly by `key` under `header`, which jwt-simple would not write: `crit`,
/// or an `alg` the signature does not match.
pub fn sign_with_header(key: &ES256KeyPair, header: &Value, claims: &impl Serialize) -> String {
    use p256::ecdsa::signature::Signer;
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(&serde_json::to_vec(claims).expect("claims serialize"))
    );
    let signature: p256::ecdsa::Signature = key.key_pair().as_ref().sign(input.as_bytes());
    format!("{input}.{}", b64(&signature.to_bytes()))
}
