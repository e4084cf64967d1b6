//! One public key (or HMAC secret) bound to exactly one algorithm.
//!
//! Binding the algorithm to the key at load time is what defeats algorithm confusion: a
//! token's `alg` only selects among keys that were loaded *for* that algorithm, so an RSA
//! public key can never be used as an HMAC secret.

use jwt_simple::prelude::*;
use serde_json::{Map, Value};

use crate::algorithm::Algorithm;

/// Claims of a verified token: the registered ones plus everything else as JSON.
pub(crate) type UserClaims = JWTClaims<Map<String, Value>>;

/// A verification key for a single algorithm.
pub(crate) enum VerifyKey {
    Rs256(RS256PublicKey),
    Rs384(RS384PublicKey),
    Rs512(RS512PublicKey),
    Ps256(PS256PublicKey),
    Ps384(PS384PublicKey),
    Ps512(PS512PublicKey),
    Es256(ES256PublicKey),
    Es384(ES384PublicKey),
    EdDsa(Ed25519PublicKey),
    Hs256(HS256Key),
    Hs384(HS384Key),
    Hs512(HS512Key),
}

/// Applies the same expression to whichever key type is inside.
macro_rules! with_key {
    ($key:expr, $k:ident => $body:expr) => {
        match $key {
            VerifyKey::Rs256($k) => $body,
            VerifyKey::Rs384($k) => $body,
            VerifyKey::Rs512($k) => $body,
            VerifyKey::Ps256($k) => $body,
            VerifyKey::Ps384($k) => $body,
            VerifyKey::Ps512($k) => $body,
            VerifyKey::Es256($k) => $body,
            VerifyKey::Es384($k) => $body,
            VerifyKey::EdDsa($k) => $body,
            VerifyKey::Hs256($k) => $body,
            VerifyKey::Hs384($k) => $body,
            VerifyKey::Hs512($k) => $body,
        }
    };
}

impl VerifyKey {
    /// Imports a public JWK (one member of a JWKS) for `alg`.
    pub(crate) fn from_jwk(alg: Algorithm, jwk: &str) -> Result<VerifyKey, jwt_simple::Error> {
        Ok(match alg {
            Algorithm::RS256 => VerifyKey::Rs256(RS256PublicKey::from_jwk(jwk)?),
            Algorithm::RS384 => VerifyKey::Rs384(RS384PublicKey::from_jwk(jwk)?),
            Algorithm::RS512 => VerifyKey::Rs512(RS512PublicKey::from_jwk(jwk)?),
            Algorithm::PS256 => VerifyKey::Ps256(PS256PublicKey::from_jwk(jwk)?),
            Algorithm::PS384 => VerifyKey::Ps384(PS384PublicKey::from_jwk(jwk)?),
            Algorithm::PS512 => VerifyKey::Ps512(PS512PublicKey::from_jwk(jwk)?),
            Algorithm::ES256 => VerifyKey::Es256(ES256PublicKey::from_jwk(jwk)?),
            Algorithm::ES384 => VerifyKey::Es384(ES384PublicKey::from_jwk(jwk)?),
            Algorithm::EdDSA => VerifyKey::EdDsa(Ed25519PublicKey::from_jwk(jwk)?),
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                return Err(jwt_simple::Error::msg(
                    "HMAC secrets are never read from a JWKS; use hmac_secret_file",
                ))
            }
        })
    }

    /// An HMAC key for `alg` (which must be HS256, HS384 or HS512).
    pub(crate) fn hmac(alg: Algorithm, secret: &[u8]) -> Option<VerifyKey> {
        match alg {
            Algorithm::HS256 => Some(VerifyKey::Hs256(HS256Key::from_bytes(secret))),
            Algorithm::HS384 => Some(VerifyKey::Hs384(HS384Key::from_bytes(secret))),
            Algorithm::HS512 => Some(VerifyKey::Hs512(HS512Key::from_bytes(secret))),
            _ => None,
        }
    }

    /// Verifies signature and claims. jwt-simple also checks that the token's `alg`
    /// header names this key's algorithm.
    pub(crate) fn verify(
        &self,
        token: &str,
        options: VerificationOptions,
    ) -> Result<UserClaims, jwt_simple::Error> {
        // jwt-simple refuses a non-empty `crit` only; no extension is understood here, and an
        // empty list is malformed (RFC 7515 section 4.1.11).
        if Token::decode_metadata(token).is_ok_and(|m| m.critical().is_some()) {
            return Err(jwt_simple::Error::msg(
                "critical extension (crit) header: none is understood",
            ));
        }
        with_key!(self, k => k.verify_token::<Map<String, Value>>(token, Some(options)))
    }
}
