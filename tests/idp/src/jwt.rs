//! Reading and checking the provider's JWTs (ID tokens) in tests.
//!
//! Only what a test needs to tell a genuine token from a forged one: decoding, and checking
//! an ES256 or RS256 signature against a JWKS by `kid`. Claim checks are left to the test,
//! which knows what it expects.

use anyhow::{bail, Context, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::Value;

/// A decoded compact JWS: header, claims, and what the signature covers.
#[derive(Debug, Clone)]
pub struct Jwt {
    /// The protected header (`alg`, `kid`, `typ`, …).
    pub header: Value,
    /// The payload's claims.
    pub claims: Value,
    signing_input: String,
    signature: Vec<u8>,
}

impl Jwt {
    /// Decodes `token` without checking its signature.
    pub fn decode(token: &str) -> Result<Self> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            bail!("not a compact JWS (three dot-separated parts): {token:?}");
        };
        let json = |part: &str, what: &str| -> Result<Value> {
            let bytes = URL_SAFE_NO_PAD
                .decode(part)
                .with_context(|| format!("JWT {what} is not base64url"))?;
            serde_json::from_slice(&bytes).with_context(|| format!("JWT {what} is not JSON"))
        };
        Ok(Self {
            header: json(header, "header")?,
            claims: json(payload, "payload")?,
            signing_input: format!("{header}.{payload}"),
            signature: URL_SAFE_NO_PAD
                .decode(signature)
                .context("JWT signature is not base64url")?,
        })
    }

    /// The header's `kid`, if any.
    pub fn kid(&self) -> Option<&str> {
        self.header.get("kid").and_then(Value::as_str)
    }

    /// The header's `alg`, if any.
    pub fn alg(&self) -> Option<&str> {
        self.header.get("alg").and_then(Value::as_str)
    }

    /// A string claim.
    pub fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    /// A numeric claim (such as `exp` or `iat`).
    pub fn claim_i64(&self, name: &str) -> Option<i64> {
        self.claims.get(name).and_then(Value::as_i64)
    }

    /// Checks the signature with the key in `jwks` (a JWK Set document) whose `kid` matches
    /// the header's, for `ES256` (P-256) and `RS256` (RSA PKCS#1 v1.5 with SHA-256).
    pub fn verify(&self, jwks: &Value) -> Result<()> {
        let kid = self.kid().context("the JWT header has no kid")?;
        let alg = self.alg().context("the JWT header has no alg")?;
        let keys = jwks
            .get("keys")
            .and_then(Value::as_array)
            .context("the JWKS has no \"keys\" array")?;
        let known: Vec<&str> = keys
            .iter()
            .filter_map(|k| k.get("kid").and_then(Value::as_str))
            .collect();
        let key = keys
            .iter()
            .find(|k| k.get("kid").and_then(Value::as_str) == Some(kid))
            .with_context(|| format!("unknown kid {kid:?}: the JWKS has {known:?}"))?;
        if let Some(key_alg) = key.get("alg").and_then(Value::as_str) {
            if key_alg != alg {
                bail!("the JWT says alg {alg} but key {kid:?} is for {key_alg}");
            }
        }
        let member = |name: &str| -> Result<Vec<u8>> {
            let text = key
                .get(name)
                .and_then(Value::as_str)
                .with_context(|| format!("JWK {kid:?} has no {name:?}"))?;
            URL_SAFE_NO_PAD
                .decode(text)
                .with_context(|| format!("JWK {kid:?} member {name:?} is not base64url"))
        };
        let input = self.signing_input.as_bytes();
        match alg {
            "ES256" => {
                use p256::ecdsa::signature::Verifier;
                let mut sec1 = vec![0x04];
                sec1.extend(member("x")?);
                sec1.extend(member("y")?);
                let key = p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
                    .with_context(|| format!("JWK {kid:?} is not a P-256 public key"))?;
                let signature = p256::ecdsa::Signature::from_slice(&self.signature)
                    .context("ES256 signature is not 64 bytes of r||s")?;
                key.verify(input, &signature)
                    .with_context(|| format!("ES256 signature does not verify with {kid:?}"))
            }
            "RS256" => {
                use rsa::signature::Verifier;
                let public = rsa::RsaPublicKey::new(
                    rsa::BigUint::from_bytes_be(&member("n")?),
                    rsa::BigUint::from_bytes_be(&member("e")?),
                )
                .with_context(|| format!("JWK {kid:?} is not an RSA public key"))?;
                let key = rsa::pkcs1v15::VerifyingKey::<rsa::sha2::Sha256>::new(public);
                let signature = rsa::pkcs1v15::Signature::try_from(self.signature.as_slice())
                    .context("RS256 signature is malformed")?;
                key.verify(input, &signature)
                    .with_context(|| format!("RS256 signature does not verify with {kid:?}"))
            }
            other => bail!("alg {other:?} is not checked here (only ES256 and RS256)"),
        }
    }
}
