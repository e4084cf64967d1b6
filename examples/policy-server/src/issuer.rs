//! The server's own key: signs the short-lived grant tokens and is published as a JWKS.
//!
//! Each key's `kid` is its RFC 7638 JWK thumbprint, so the same PEM always gets the same
//! `kid` and nothing has to be kept in sync by hand.

use std::path::Path;

use anyhow::{bail, Context, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_simple::prelude::*;
use serde_json::Value;

use crate::acl::Grants;
use crate::algorithm::Algorithm;
use crate::config::IssuedTokenConfig;

/// A private key the server can sign with.
enum SigningKey {
    Es256(ES256KeyPair),
    EdDsa(Ed25519KeyPair),
}

/// Signs grant tokens and serves the public keys.
pub struct TokenIssuer {
    key: SigningKey,
    kid: String,
    issuer: String,
    audience: String,
    ttl: Duration,
    jwks: String,
}

impl TokenIssuer {
    /// Loads the signing key (and any extra public keys) named in the config.
    pub fn from_config(config: &IssuedTokenConfig) -> Result<TokenIssuer> {
        let path = &config.signing_key;
        let pem = std::fs::read_to_string(path).with_context(|| {
            format!(
                "reading issued_token.signing_key {} (create one with `policy-server --generate-key {}`)",
                path.display(),
                path.display()
            )
        })?;
        let algorithm = config.algorithm.unwrap_or_else(|| key_algorithm(&pem));
        let (key, kid, public_jwk) = match algorithm {
            Algorithm::ES256 => {
                let pair = ES256KeyPair::from_pem(&pem)
                    .map_err(|e| anyhow::anyhow!("{e}"))
                    .with_context(|| {
                        format!(
                            "{} is not an ES256 (P-256) private key in PEM",
                            path.display()
                        )
                    })?;
                let kid = pair.jwk_thumbprint();
                let pair = pair.with_key_id(&kid);
                let jwk = pair.public_key().to_jwk();
                (SigningKey::Es256(pair), kid, jwk)
            }
            Algorithm::EdDSA => {
                let pair = Ed25519KeyPair::from_pem(&pem)
                    .map_err(|e| anyhow::anyhow!("{e}"))
                    .with_context(|| {
                        format!("{} is not an Ed25519 private key in PEM", path.display())
                    })?;
                let kid = pair.jwk_thumbprint();
                let pair = pair.with_key_id(&kid);
                let jwk = pair.public_key().to_jwk();
                (SigningKey::EdDsa(pair), kid, jwk)
            }
            other => bail!("issued_token.algorithm must be ES256 or EdDSA, got {other}"),
        };
        let mut keys = vec![parse_json(&public_jwk)?];
        for extra in &config.extra_public_keys {
            let pem = std::fs::read_to_string(extra).with_context(|| {
                format!(
                    "reading issued_token.extra_public_keys entry {}",
                    extra.display()
                )
            })?;
            let jwk = public_jwk_from_pem(&pem).with_context(|| {
                format!("{} is not an ES256 or Ed25519 key in PEM", extra.display())
            })?;
            keys.push(parse_json(&jwk)?);
        }
        let jwks = serde_json::json!({ "keys": keys }).to_string();
        Ok(TokenIssuer {
            key,
            kid,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            ttl: Duration::from_secs(config.ttl_seconds),
            jwks,
        })
    }

    /// Signs a token for `subject` carrying `grants`, valid from now for the configured
    /// lifetime, with a fresh random `jti`, and bound to `request` when it is known.
    pub fn issue(
        &self,
        subject: &str,
        grants: &Grants,
        request: Option<RequestBinding<'_>>,
    ) -> Result<String> {
        let mut custom = serde_json::to_value(grants).context("grants as JSON")?;
        if let (Some(request), Some(custom)) = (request, custom.as_object_mut()) {
            custom.insert("request".into(), serde_json::to_value(request)?);
        }
        let claims = Claims::with_custom_claims(custom, self.ttl)
            .with_issuer(&self.issuer)
            .with_subject(subject)
            .with_audience(&self.audience)
            .with_jwt_id(random_id()?);
        let signed = match &self.key {
            SigningKey::Es256(pair) => pair.sign(claims),
            SigningKey::EdDsa(pair) => pair.sign(claims),
        };
        signed.map_err(|e| anyhow::anyhow!("signing the grant token: {e}"))
    }

    /// The `kid` of the signing key.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public keys as a JWKS document (`{"keys":[…]}`).
    pub fn jwks_json(&self) -> &str {
        &self.jwks
    }
}

/// The request a grant was decided for, written into the grant as its `request` claim, so
/// check-header (`require_request_binding`) can refuse the grant on any other request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RequestBinding<'a> {
    /// The method, e.g. `GET`.
    pub method: &'a str,
    /// The `:authority`, as the proxy saw it.
    pub host: &'a str,
    /// The path without query or fragment: the grant covers it and the paths under it.
    pub path: &'a str,
}

impl<'a> RequestBinding<'a> {
    /// The binding for acl-check's `x-forwarded-*` values; `None` unless all three are present
    /// and the URI is a path (a grant is then unbound, and a binding check-header refuses it).
    pub fn from_forwarded(method: &'a str, uri: &'a str, host: &'a str) -> Option<Self> {
        let path = uri.split(['?', '#']).next().unwrap_or_default();
        let known = !method.is_empty() && !host.is_empty() && path.starts_with('/');
        known.then_some(RequestBinding { method, host, path })
    }
}

fn parse_json(text: &str) -> Result<Value> {
    serde_json::from_str(text).context("jwt-simple produced a JWK that is not JSON")
}

/// The public JWK (with `kid` = thumbprint) of an ES256 or Ed25519 key, public or private.
fn public_jwk_from_pem(pem: &str) -> Result<String> {
    let p256 = ES256PublicKey::from_pem(pem)
        .ok()
        .or_else(|| ES256KeyPair::from_pem(pem).ok().map(|k| k.public_key()));
    if let Some(k) = p256 {
        let kid = k.jwk_thumbprint();
        return Ok(k.with_key_id(&kid).to_jwk());
    }
    let ed25519 = Ed25519PublicKey::from_pem(pem)
        .ok()
        .or_else(|| Ed25519KeyPair::from_pem(pem).ok().map(|k| k.public_key()));
    if let Some(k) = ed25519 {
        let kid = k.jwk_thumbprint();
        return Ok(k.with_key_id(&kid).to_jwk());
    }
    bail!("not a P-256 or Ed25519 key")
}

/// 128 random bits, base64url.
fn random_id() -> Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness for jti: {e}"))?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// The algorithm a PEM private key signs with when the config names none: EdDSA for an
/// Ed25519 key, otherwise ES256 (whose loader then says what is wrong with the key).
fn key_algorithm(pem: &str) -> Algorithm {
    if Ed25519KeyPair::from_pem(pem).is_ok() {
        Algorithm::EdDSA
    } else {
        Algorithm::ES256
    }
}

/// A new private key for `alg` (ES256 or EdDSA) as PKCS#8 PEM, and its `kid`.
pub fn generate_key(alg: Algorithm) -> Result<(String, String)> {
    match alg {
        Algorithm::ES256 => {
            let pair = ES256KeyPair::generate();
            let pem = pair
                .to_pem()
                .map_err(|e| anyhow::anyhow!("encoding the key: {e}"))?;
            Ok((pem, pair.jwk_thumbprint()))
        }
        Algorithm::EdDSA => {
            let pair = Ed25519KeyPair::generate();
            Ok((pair.to_pem(), pair.jwk_thumbprint()))
        }
        other => bail!("--key-algorithm must be ES256 or EdDSA, got {other}"),
    }
}

/// Writes a new private key to `path` (owner-only permissions), refusing to overwrite.
/// Returns the key's `kid`.
pub fn write_new_key(path: &Path, alg: Algorithm) -> Result<String> {
    use std::io::Write;
    let (pem, kid) = generate_key(alg)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).with_context(|| {
        format!(
            "creating {} (an existing key is never overwritten; pick a new path)",
            path.display()
        )
    })?;
    file.write_all(pem.as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(kid)
}
