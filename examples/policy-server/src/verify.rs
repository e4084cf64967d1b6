//! Strict verification of the user's JWT: signature against the identity provider's keys,
//! algorithm allow-list, `iss`, `aud`, `exp` (required), `nbf`, `iat` and `sub` (required).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_simple::prelude::{Duration as JwtDuration, Token, VerificationOptions};
use serde_json::Value;

use crate::algorithm::Algorithm;
use crate::config::UserTokenConfig;
use crate::jwks::{KeySet, KeyStore, RemoteJwks, RemoteKeyStore};
use crate::verify_key::VerifyKey;

/// A user whose token passed every check.
#[derive(Debug, Clone)]
pub struct VerifiedUser {
    /// The `sub` claim.
    pub subject: String,
    /// Group names read from the configured groups claim (empty when absent).
    pub groups: Vec<String>,
    /// Every claim of the token, as JSON (the Rego policy's `input.claims`).
    pub claims: Value,
}

/// Why a request is refused before any grant is looked at.
#[derive(Debug)]
pub enum Rejection {
    /// No `Authorization: Bearer …` header.
    Missing,
    /// The token failed a check; the text is for the log only.
    Invalid(String),
    /// The keys needed to decide are unavailable (a server problem, not the user's).
    Unavailable(String),
}

/// Verifies user tokens; built once from [`UserTokenConfig`].
pub struct UserTokenVerifier {
    keys: KeyStore,
    hmac_keys: Vec<(Algorithm, VerifyKey)>,
    allowed: Vec<Algorithm>,
    issuers: HashSet<String>,
    audiences: HashSet<String>,
    clock_skew: Duration,
    max_token_bytes: usize,
    groups_claim: String,
}

impl UserTokenVerifier {
    /// Loads the JWKS file (or prepares the JWKS URL cache and tries a first fetch) and
    /// the HMAC secret, if configured.
    pub async fn from_config(config: &UserTokenConfig) -> Result<UserTokenVerifier> {
        let allowed = config.algorithms.clone();
        let asymmetric: Vec<Algorithm> = allowed.iter().copied().filter(|a| !a.is_hmac()).collect();
        let keys = match (&config.jwks_file, &config.jwks_url) {
            (Some(path), _) => {
                let text = std::fs::read(path)
                    .with_context(|| format!("reading user_token.jwks_file {}", path.display()))?;
                KeyStore::Static(Arc::new(KeySet::parse(
                    &text,
                    &asymmetric,
                    &path.display().to_string(),
                )?))
            }
            (None, Some(url)) => {
                if url.starts_with("http://") {
                    tracing::warn!(%url, "user_token.jwks_url is plain HTTP: use https outside local testing");
                }
                let settings = RemoteJwks {
                    url: url.clone(),
                    refresh: Duration::from_secs(config.jwks_refresh_seconds),
                    min_refetch: Duration::from_secs(config.jwks_min_refetch_seconds),
                    timeout: Duration::from_millis(config.jwks_fetch_timeout_ms),
                    kid_miss_wait: Duration::from_millis(config.jwks_kid_miss_wait_ms),
                };
                let store = RemoteKeyStore::new(settings, asymmetric)?;
                // A first fetch now, so a wrong URL shows up in the start-up log; requests
                // retry (rate-limited) if the identity provider is not up yet.
                if let Err(err) = store.fetch_at_startup().await {
                    tracing::warn!(error = %err.0, "JWKS not available at start-up; will retry on demand");
                }
                KeyStore::Remote(store)
            }
            (None, None) => anyhow::bail!("user_token: set jwks_file or jwks_url"),
        };
        let mut hmac_keys = Vec::new();
        if let Some(path) = &config.hmac_secret_file {
            let secret = std::fs::read(path).with_context(|| {
                format!("reading user_token.hmac_secret_file {}", path.display())
            })?;
            anyhow::ensure!(
                secret.len() >= 32,
                "user_token.hmac_secret_file must hold at least 32 bytes of secret"
            );
            for &alg in allowed.iter().filter(|a| a.is_hmac()) {
                hmac_keys.extend(VerifyKey::hmac(alg, &secret).map(|k| (alg, k)));
            }
        }
        Ok(UserTokenVerifier {
            keys,
            hmac_keys,
            allowed,
            issuers: config.issuers.iter().cloned().collect(),
            audiences: config.audiences.iter().cloned().collect(),
            clock_skew: Duration::from_secs(config.clock_skew_seconds),
            max_token_bytes: config.max_token_bytes,
            groups_claim: config.groups_claim.clone(),
        })
    }

    /// Reads the bearer token out of the `authorization` header values (exactly one
    /// header, scheme `Bearer`, case-insensitive) and verifies it.
    pub async fn verify_header<'a>(
        &self,
        mut authorization: impl Iterator<Item = &'a [u8]>,
    ) -> Result<VerifiedUser, Rejection> {
        let Some(value) = authorization.next() else {
            return Err(Rejection::Missing);
        };
        if authorization.next().is_some() {
            return Err(Rejection::Invalid(
                "more than one authorization header".into(),
            ));
        }
        let value = std::str::from_utf8(value)
            .map_err(|_| Rejection::Invalid("authorization header is not UTF-8".into()))?;
        let token = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => return Err(Rejection::Missing),
        };
        if token.is_empty() {
            return Err(Rejection::Missing);
        }
        self.verify(token).await
    }

    /// Verifies one compact JWS.
    pub async fn verify(&self, token: &str) -> Result<VerifiedUser, Rejection> {
        let invalid = |why: String| Rejection::Invalid(why);
        if token.len() > self.max_token_bytes {
            return Err(invalid(format!(
                "token is {} bytes, more than max_token_bytes {}",
                token.len(),
                self.max_token_bytes
            )));
        }
        let metadata =
            Token::decode_metadata(token).map_err(|e| invalid(format!("bad header: {e}")))?;
        let alg: Algorithm = metadata
            .algorithm()
            .parse()
            .map_err(|e| invalid(format!("{e}")))?;
        if !self.allowed.contains(&alg) {
            return Err(invalid(format!("algorithm {alg} is not in the allow-list")));
        }
        let kid = metadata.key_id();
        let options = self.options();

        let verified = if alg.is_hmac() {
            let key = self
                .hmac_keys
                .iter()
                .find(|(a, _)| *a == alg)
                .map(|(_, k)| k);
            let key = key.ok_or_else(|| invalid(format!("no secret for {alg}")))?;
            key.verify(token, options)
                .map_err(|e| invalid(format!("{alg}: {e}")))?
        } else {
            let set = self
                .keys
                .keys(kid)
                .await
                .map_err(|e| Rejection::Unavailable(e.0))?;
            let candidates: Vec<_> = set
                .entries
                .iter()
                .filter(|e| {
                    e.alg == alg && (kid.is_none() || e.kid.is_none() || e.kid.as_deref() == kid)
                })
                .collect();
            if candidates.is_empty() {
                return Err(invalid(match kid {
                    Some(kid) => format!("unknown kid {kid:?} for {alg}"),
                    None => format!("no key for {alg}"),
                }));
            }
            let mut last_error = None;
            let mut verified = None;
            for entry in candidates {
                match entry.key.verify(token, options.clone()) {
                    Ok(claims) => {
                        verified = Some(claims);
                        break;
                    }
                    Err(e) => last_error = Some(e),
                }
            }
            verified.ok_or_else(|| {
                invalid(format!(
                    "{alg}: {}",
                    last_error.map(|e| e.to_string()).unwrap_or_default()
                ))
            })?
        };

        // jwt-simple accepts a token without `exp`; a token that never expires is refused here.
        if verified.expires_at.is_none() {
            return Err(invalid("token has no exp claim".into()));
        }
        let subject = verified
            .subject
            .filter(|s| !s.is_empty())
            .ok_or_else(|| invalid("token has no sub claim".into()))?;
        let claims = payload_json(token).map_err(|e| invalid(format!("payload: {e:#}")))?;
        let groups = read_groups(&claims, &self.groups_claim);
        Ok(VerifiedUser {
            subject,
            groups,
            claims,
        })
    }

    fn options(&self) -> VerificationOptions {
        VerificationOptions {
            allowed_issuers: Some(self.issuers.clone()),
            allowed_audiences: Some(self.audiences.clone()),
            time_tolerance: Some(JwtDuration::from_secs(self.clock_skew.as_secs())),
            max_token_length: Some(self.max_token_bytes),
            accept_future: false,
            ..VerificationOptions::default()
        }
    }
}

/// The payload of an already-verified token, as JSON.
fn payload_json(token: &str) -> Result<Value> {
    let payload = token.split('.').nth(1).context("no payload segment")?;
    let bytes = URL_SAFE_NO_PAD
        .decode(payload)
        .context("payload is not base64url")?;
    serde_json::from_slice(&bytes).context("payload is not JSON")
}

/// Groups from `claim`: a top-level claim of that exact name, else a dotted path into
/// nested objects (`realm_access.roles`). An array of strings, or one string.
fn read_groups(claims: &Value, claim: &str) -> Vec<String> {
    let found = claims.get(claim).or_else(|| {
        claim
            .split('.')
            .try_fold(claims, |value, segment| value.get(segment))
    });
    match found {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(Value::String(one)) => vec![one.clone()],
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn groups_come_from_a_name_or_a_dotted_path() {
        let claims = json!({
            "groups": ["a", "b", 3],
            "realm_access": {"roles": ["admin"]},
            "https://example.com/groups": "ops",
        });
        assert_eq!(read_groups(&claims, "groups"), ["a", "b"]);
        assert_eq!(read_groups(&claims, "realm_access.roles"), ["admin"]);
        assert_eq!(read_groups(&claims, "https://example.com/groups"), ["ops"]);
        assert!(read_groups(&claims, "missing.path").is_empty());
    }
}
