//! The identity provider's keys: a JWKS read from a file, or fetched from a URL and cached,
//! refreshed when stale and re-fetched when a token names an unknown `kid` (rate-limited).

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::watch;

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
    /// How long a request whose `kid` is unknown waits for the fetch it started or joined.
    pub(crate) kid_miss_wait: Duration,
}

/// Where verification keys come from.
pub(crate) enum KeyStore {
    /// Read once at start-up.
    Static(Arc<KeySet>),
    /// Fetched over HTTP(S) and cached.
    Remote(RemoteKeyStore),
}

/// A cached remote JWKS. Fetches run in their own task, one at a time: a request whose key
/// is cached never waits for one (a stale cache is refreshed behind it), and requests
/// whose `kid` is unknown join the fetch in flight for at most `kid_miss_wait`.
pub(crate) struct RemoteKeyStore {
    shared: Arc<RemoteShared>,
}

struct RemoteShared {
    settings: RemoteJwks,
    allowed: Vec<Algorithm>,
    client: reqwest::Client,
    /// Held only to read or swap fields, never across an `.await`.
    cache: std::sync::Mutex<Cache>,
}

#[derive(Default)]
struct Cache {
    keys: Option<Arc<KeySet>>,
    fetched_at: Option<Instant>,
    last_attempt: Option<Instant>,
    /// Turns `true` when the fetch in flight has ended, successfully or not.
    in_flight: Option<watch::Receiver<bool>>,
}

/// Why no key set is available.
#[derive(Debug)]
pub(crate) struct KeysUnavailable(pub(crate) String);

impl KeyStore {
    /// The current keys. For a remote JWKS, a fetch starts (rate-limited, one at a time)
    /// when nothing is cached, when the cache is older than the refresh interval, or when
    /// `wanted_kid` is not in it. Only a request that has no key to use (nothing cached,
    /// or its `kid` unknown) waits for that fetch, and for at most `kid_miss_wait`.
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
            shared: Arc::new(RemoteShared {
                settings,
                allowed,
                client,
                cache: Default::default(),
            }),
        })
    }

    /// Fetches once and waits for the outcome (bounded by the fetch timeout), so a wrong
    /// URL shows up in the start-up log.
    pub(crate) async fn fetch_at_startup(&self) -> Result<(), KeysUnavailable> {
        let in_flight = {
            let mut cache = self.shared.lock();
            self.shared.start_fetch(&mut cache);
            cache.in_flight.clone()
        };
        if let Some(mut done) = in_flight {
            // An error means the task is gone, which also ends the fetch.
            let _ = done.wait_for(|done| *done).await;
        }
        self.shared
            .lock()
            .keys
            .clone()
            .map(drop)
            .ok_or_else(|| self.shared.unavailable())
    }

    async fn keys(&self, wanted_kid: Option<&str>) -> Result<Arc<KeySet>, KeysUnavailable> {
        let shared = &self.shared;
        let (cached, join) = {
            let mut cache = shared.lock();
            let kid_missing = match (&cache.keys, wanted_kid) {
                (None, _) => true,
                (Some(set), Some(kid)) => !set.has_kid(kid),
                (Some(_), None) => false,
            };
            let stale = cache
                .fetched_at
                .is_none_or(|t| t.elapsed() >= shared.settings.refresh);
            if kid_missing || stale {
                shared.start_fetch(&mut cache);
            }
            let join = cache.in_flight.clone().filter(|_| kid_missing);
            (cache.keys.clone(), join)
        };
        let Some(mut done) = join else {
            return cached.ok_or_else(|| shared.unavailable());
        };
        // Bounded, so a slow identity provider holds kid-miss requests (forged ones
        // included) only briefly; the fetch itself goes on and fills the cache.
        let _ = tokio::time::timeout(shared.settings.kid_miss_wait, done.wait_for(|d| *d)).await;
        let keys = shared.lock().keys.clone();
        keys.ok_or_else(|| shared.unavailable())
    }
}

impl RemoteShared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        // The fields are plain values; one left half-written by a panic is still usable.
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn unavailable(&self) -> KeysUnavailable {
        KeysUnavailable(format!(
            "no JWKS could be fetched yet from {}",
            self.settings.url
        ))
    }

    /// Starts a fetch in its own task unless one is in flight or the last one started less
    /// than `min_refetch` ago. The task, not the request that started it, owns the fetch:
    /// a client that hangs up does not cancel it.
    fn start_fetch(self: &Arc<Self>, cache: &mut Cache) {
        if cache.in_flight.is_some()
            || cache
                .last_attempt
                .is_some_and(|t| t.elapsed() < self.settings.min_refetch)
        {
            return;
        }
        cache.last_attempt = Some(Instant::now());
        let (finished, in_flight) = watch::channel(false);
        cache.in_flight = Some(in_flight);
        let shared = self.clone();
        tokio::spawn(async move {
            let outcome = shared.fetch().await;
            let mut cache = shared.lock();
            match outcome {
                Ok(set) => {
                    tracing::info!(url = %shared.settings.url, keys = set.entries.len(), "JWKS fetched");
                    cache.keys = Some(Arc::new(set));
                    cache.fetched_at = Some(Instant::now());
                }
                // Keep serving the old keys: an identity provider hiccup must not lock
                // everybody out while the cached keys are still the right ones.
                Err(err) => {
                    tracing::warn!(url = %shared.settings.url, error = format!("{err:#}"), "JWKS fetch failed")
                }
            }
            cache.in_flight = None;
            finished.send_replace(true);
        });
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
