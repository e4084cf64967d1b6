//! The identity provider's keys: a JWKS read from a file, or fetched from a URL and cached,
//! refreshed when stale and re-fetched when a token names an unknown `kid` (rate-limited).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::{Mutex, RwLock};

use crate::algorithm::Algorithm;
use crate::verify_key::VerifyKey;

/// Largest JWKS document accepted, from a file or a URL.
const MAX_JWKS_BYTES: usize = 1 << 20;

/// One usable key: a JWKS member imported for one algorithm.
pub(crate) struct KeyEntry {
    pub(crate) kid: Option<String>,
    pub(crate) alg: Algorithm,
    pub(crate) key: VerifyKey,
}

/// The keys of one JWKS document, each imported for every allowed algorithm it fits.
pub(crate) struct KeySet {
    pub(crate) entries: Vec<KeyEntry>,
}

#[derive(Deserialize)]
struct JwksDocument {
    keys: Vec<Value>,
}

impl KeySet {
    /// Parses a JWKS. Members that are unusable (unknown `kty`, `use: enc`, an algorithm
    /// outside `allowed`, bad key material) are skipped with a warning; a document with
    /// no usable key at all is an error.
    pub(crate) fn parse(text: &[u8], allowed: &[Algorithm], origin: &str) -> Result<KeySet> {
        if text.len() > MAX_JWKS_BYTES {
            bail!("JWKS from {origin} is larger than {MAX_JWKS_BYTES} bytes");
        }
        let doc: JwksDocument = serde_json::from_slice(text).with_context(|| {
            format!("JWKS from {origin} is not a JSON object with a `keys` array")
        })?;
        let mut entries = Vec::new();
        for (index, jwk) in doc.keys.iter().enumerate() {
            let field = |name: &str| jwk.get(name).and_then(Value::as_str);
            let kid = field("kid").map(str::to_owned);
            let label = kid.clone().unwrap_or_else(|| format!("#{index}"));
            let Some(kty) = field("kty") else {
                tracing::warn!(%origin, key = %label, "JWKS member without `kty` skipped");
                continue;
            };
            if field("use").is_some_and(|u| u != "sig") {
                continue;
            }
            let declared_alg = field("alg");
            let jwk_text = without_certificates(jwk).to_string();
            for &alg in allowed {
                if !alg.fits_key(kty, field("crv")) || declared_alg.is_some_and(|d| d != alg.name())
                {
                    continue;
                }
                match VerifyKey::from_jwk(alg, &jwk_text) {
                    Ok(key) => entries.push(KeyEntry {
                        kid: kid.clone(),
                        alg,
                        key,
                    }),
                    Err(err) => {
                        tracing::warn!(%origin, key = %label, %alg, error = %err, "JWKS member skipped")
                    }
                }
            }
        }
        if entries.is_empty() {
            bail!(
                "JWKS from {origin} has no key usable with the allowed algorithms ({})",
                allowed
                    .iter()
                    .map(|a| a.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        Ok(KeySet { entries })
    }

    /// True when some key carries exactly this `kid`.
    pub(crate) fn has_kid(&self, kid: &str) -> bool {
        self.entries.iter().any(|e| e.kid.as_deref() == Some(kid))
    }
}

/// The JWK without its X.509 members. They play no part in verification (the key is `n`/`e`
/// or `x`/`y`), and a long `x5c` chain would push the JWK past jwt-simple's 8 KiB JWK limit.
fn without_certificates(jwk: &Value) -> Value {
    let mut jwk = jwk.clone();
    if let Some(members) = jwk.as_object_mut() {
        for name in ["x5c", "x5u", "x5t", "x5t#S256"] {
            members.remove(name);
        }
    }
    jwk
}

/// Settings of a remote JWKS.
#[derive(Debug, Clone)]
pub(crate) struct RemoteJwks {
    pub(crate) url: String,
    pub(crate) refresh: Duration,
    pub(crate) min_refetch: Duration,
    pub(crate) timeout: Duration,
}

/// Where verification keys come from.
pub(crate) enum KeyStore {
    /// Read once at start-up.
    Static(Arc<KeySet>),
    /// Fetched over HTTP(S) and cached.
    Remote(Box<RemoteKeyStore>),
}

/// A cached remote JWKS. One fetch at a time (the mutex makes concurrent misses wait for
/// the same fetch instead of stampeding the identity provider).
pub(crate) struct RemoteKeyStore {
    settings: RemoteJwks,
    allowed: Vec<Algorithm>,
    client: reqwest::Client,
    current: RwLock<Option<Arc<KeySet>>>,
    fetch_state: Mutex<FetchState>,
}

#[derive(Default)]
struct FetchState {
    last_success: Option<Instant>,
    last_attempt: Option<Instant>,
}

/// Why no key set is available.
#[derive(Debug)]
pub(crate) struct KeysUnavailable(pub(crate) String);

impl KeyStore {
    /// The current keys. For a remote JWKS this fetches when nothing is cached, when the
    /// cache is older than the refresh interval, or when `wanted_kid` is not in it; each
    /// only if the last attempt is older than the minimum re-fetch interval.
    pub(crate) async fn keys(
        &self,
        wanted_kid: Option<&str>,
    ) -> Result<Arc<KeySet>, KeysUnavailable> {
        match self {
            KeyStore::Static(set) => Ok(set.clone()),
            KeyStore::Remote(remote) => remote.keys(wanted_kid).await,
        }
    }
}

impl RemoteKeyStore {
    /// A store that has fetched nothing yet.
    pub(crate) fn new(settings: RemoteJwks, allowed: Vec<Algorithm>) -> Result<RemoteKeyStore> {
        // reqwest is built without a default crypto provider; pick ring explicitly. An
        // error only means a provider was installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("building the HTTP client for the JWKS URL")?;
        Ok(RemoteKeyStore {
            settings,
            allowed,
            client,
            current: RwLock::new(None),
            fetch_state: Mutex::new(FetchState::default()),
        })
    }

    async fn keys(&self, wanted_kid: Option<&str>) -> Result<Arc<KeySet>, KeysUnavailable> {
        let cached = self.current.read().await.clone();
        let mut state = self.fetch_state.lock().await;
        // Another request may have fetched while we waited for the lock.
        let cached = self.current.read().await.clone().or(cached);
        let stale = state
            .last_success
            .is_none_or(|t| t.elapsed() >= self.settings.refresh);
        let kid_missing = match (&cached, wanted_kid) {
            (Some(set), Some(kid)) => !set.has_kid(kid),
            _ => false,
        };
        let may_fetch = state
            .last_attempt
            .is_none_or(|t| t.elapsed() >= self.settings.min_refetch);
        if (cached.is_none() || stale || kid_missing) && may_fetch {
            state.last_attempt = Some(Instant::now());
            match self.fetch().await {
                Ok(set) => {
                    let set = Arc::new(set);
                    *self.current.write().await = Some(set.clone());
                    state.last_success = Some(Instant::now());
                    tracing::info!(url = %self.settings.url, keys = set.entries.len(), "JWKS fetched");
                    return Ok(set);
                }
                Err(err) => {
                    // Keep serving the old keys: an identity provider hiccup must not lock
                    // everybody out while the cached keys are still the right ones.
                    tracing::warn!(url = %self.settings.url, error = format!("{err:#}"), "JWKS fetch failed")
                }
            }
        }
        cached.ok_or_else(|| {
            KeysUnavailable(format!(
                "no JWKS could be fetched yet from {}",
                self.settings.url
            ))
        })
    }

    async fn fetch(&self) -> Result<KeySet> {
        let url = &self.settings.url;
        let mut response = self
            .client
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .with_context(|| format!("requesting {url}"))?;
        if !response.status().is_success() {
            bail!("{url} answered {}", response.status());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .with_context(|| format!("reading {url}"))?
        {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                bail!("{url} sent more than {MAX_JWKS_BYTES} bytes");
            }
            body.extend_from_slice(&chunk);
        }
        KeySet::parse(&body, &self.allowed, url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jwt_simple::prelude::*;

    fn public_jwk(pair: &ES256KeyPair) -> Value {
        serde_json::from_str(&pair.public_key().to_jwk()).unwrap()
    }

    #[test]
    fn real_world_members_are_tolerated_and_enc_keys_skipped() {
        let signing = ES256KeyPair::generate().with_key_id("sig");
        let mut with_chain = public_jwk(&signing);
        with_chain["x5c"] = serde_json::json!(["A".repeat(6000), "B".repeat(6000)]);
        with_chain["x5t"] = "abc".into();
        with_chain["key_ops"] = serde_json::json!(["verify"]);
        let mut encryption = public_jwk(&ES256KeyPair::generate().with_key_id("enc"));
        encryption["use"] = "enc".into();
        encryption.as_object_mut().unwrap().remove("alg");
        let rsa_for_ps =
            serde_json::json!({"kty": "RSA", "alg": "PS256", "n": "AQAB", "e": "AQAB"});
        let doc = serde_json::json!({"keys": [with_chain, encryption, rsa_for_ps]}).to_string();

        let set = KeySet::parse(doc.as_bytes(), &Algorithm::ASYMMETRIC, "test").unwrap();
        let loaded: Vec<_> = set
            .entries
            .iter()
            .map(|e| (e.kid.as_deref(), e.alg))
            .collect();
        assert_eq!(loaded, [(Some("sig"), Algorithm::ES256)]);
    }

    #[test]
    fn a_jwks_with_no_usable_key_is_an_error() {
        let only_ec =
            serde_json::json!({"keys": [public_jwk(&ES256KeyPair::generate())]}).to_string();
        let err = KeySet::parse(only_ec.as_bytes(), &[Algorithm::RS256], "test")
            .err()
            .unwrap();
        assert!(err.to_string().contains("no key usable"), "{err}");
        assert!(KeySet::parse(b"{\"keys\": {}}", &[Algorithm::RS256], "test").is_err());
    }
}
