//! check-header's configuration: the seed's keys plus Envoy `jwt_authn`-style options. The
//! verifier is built once per configure, so a bad key is a configuration error that Envoy
//! reports, not a per-request failure.

use serde::Deserialize;
use std::time::Duration;
use weir::config::{ConfigError, Validate};
use weir::jwt::{RemoteJwks, Verifier};
use weir::HeaderName;

use crate::replay::ReplayCache;

/// One claim copied to a request header on success.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClaimToHeader {
    /// Top-level claim name (`sub`, `functions`, …).
    pub claim: String,
    /// Header to set (any client value is replaced).
    pub header: HeaderName,
}

/// The plugin configuration (`pluginConfig`). The keys and claim rules it names are built
/// into [`Config::keys`] by [`Validate::validate`], once per configure.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Header holding the grant token.
    pub read_header: HeaderName,
    #[serde(default)]
    verification_key: Option<String>,
    #[serde(default)]
    jwks_cluster: Option<String>,
    #[serde(default)]
    jwks_path: Option<String>,
    #[serde(
        default = "default_refresh",
        deserialize_with = "weir::config::bounded::<_, 1, 86400>"
    )]
    jwks_refresh_seconds: u64,
    #[serde(
        default = "default_min_refetch",
        deserialize_with = "weir::config::bounded::<_, 0, 86400>"
    )]
    jwks_min_refetch_seconds: u64,
    /// The function this route requires in the token's `functions` claim.
    pub function: String,
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default)]
    allow_any_issuer: bool,
    #[serde(default)]
    audiences: Vec<String>,
    #[serde(default)]
    allow_any_audience: bool,
    #[serde(default)]
    algorithms: Option<Vec<String>>,
    /// The tolerance on `exp`: a used `jti` is remembered until `exp` plus this.
    #[serde(
        default = "default_skew",
        deserialize_with = "weir::config::bounded::<_, 0, 600>"
    )]
    pub clock_skew_seconds: u64,
    /// Copies of claims to headers.
    #[serde(default)]
    pub claim_to_headers: Vec<ClaimToHeader>,
    /// Keep `read_header` on the request going upstream (default: strip it).
    #[serde(default)]
    pub forward: bool,
    /// Refuse a grant whose `request` claim does not match this request.
    #[serde(default)]
    pub require_request_binding: bool,
    #[serde(default)]
    single_use_grants: bool,
    #[serde(
        default = "default_replay_capacity",
        deserialize_with = "weir::config::bounded::<_, 8, 1048576>"
    )]
    replay_cache_grants: u64,
    #[serde(
        default = "default_verified_cache",
        deserialize_with = "weir::config::bounded::<_, 0, 65536>"
    )]
    verified_cache_entries: u64,
    /// Keys and claim rules, built by `validate`.
    #[serde(skip)]
    pub keys: Keys,
    /// Let each grant (`jti`) pass once: the shared replay cache, when `single_use_grants`.
    #[serde(skip)]
    pub replay: Option<ReplayCache>,
}

fn default_skew() -> u64 {
    60
}

fn default_refresh() -> u64 {
    300
}

fn default_min_refetch() -> u64 {
    30
}

fn default_replay_capacity() -> u64 {
    65536
}

fn default_verified_cache() -> u64 {
    1024
}

/// Where the verification keys come from.
#[derive(Debug)]
pub enum Keys {
    /// `verification_key`: fixed at configure time.
    Static(Verifier),
    /// `jwks_cluster` + `jwks_path`: fetched, shared between VMs, refreshed.
    Remote {
        /// The cached document.
        jwks: RemoteJwks,
        /// Claim rules, applied with whatever keys the current document has.
        rules: Verifier,
    },
}

/// Before `validate`: no key, so nothing verifies.
impl Default for Keys {
    fn default() -> Self {
        Keys::Static(Verifier::new())
    }
}

impl Validate for Config {
    /// Builds the verifier: the key source, the algorithms and the issuer and audience rules
    /// must agree. The key material is moved into [`Config::keys`], not kept as text.
    fn validate(&mut self) -> Result<(), ConfigError> {
        let algorithms = self.algorithms.take();
        let hmac: Vec<&String> = algorithms
            .iter()
            .flatten()
            .filter(|a| a.starts_with("HS"))
            .collect();
        let key = self.verification_key.take();
        let remote = match (&key, self.jwks_cluster.take(), self.jwks_path.take()) {
            (Some(_), Some(_), _) => {
                return Err(ConfigError::at(
                    "jwks_cluster",
                    "verification_key and jwks_cluster: set one, not both",
                ))
            }
            (None, None, _) => {
                return Err(ConfigError::at(
                    ".",
                    "verification_key or jwks_cluster: one is required",
                ))
            }
            (Some(_), None, Some(_)) => {
                return Err(ConfigError::at("jwks_path", "only used with jwks_cluster"))
            }
            (None, Some(cluster), path) => {
                if !hmac.is_empty() {
                    return Err(ConfigError::at(
                        "algorithms",
                        "HMAC (HS*) needs a verification_key secret, not a JWKS",
                    ));
                }
                let path = path.unwrap_or_else(|| "/.well-known/jwks.json".to_string());
                if !path.starts_with('/') {
                    return Err(ConfigError::at(
                        "jwks_path",
                        format!("'{path}' must start with '/'"),
                    ));
                }
                Some(
                    RemoteJwks::new(cluster, path)
                        .refresh_every(Duration::from_secs(self.jwks_refresh_seconds))
                        .min_refetch(Duration::from_secs(self.jwks_min_refetch_seconds)),
                )
            }
            (Some(_), None, None) => None,
        };
        let key = key.as_deref().unwrap_or_default().trim();
        let mut verifier = if remote.is_some() {
            Ok(Verifier::new())
        } else if key.starts_with('{') {
            Verifier::new().jwks(key)
        } else if key.starts_with("-----BEGIN") {
            Verifier::new().pem(key)
        } else if let [alg] = hmac.as_slice() {
            // A bare secret is only ever HMAC, and only when `algorithms` names one HS* alg.
            Verifier::new().hmac(alg, key.as_bytes())
        } else {
            Err(weir::Error::msg(
                "neither a PEM public key nor a JWKS; an HMAC secret needs algorithms: [\"HS256\"]",
            ))
        }
        .map_err(|e| ConfigError::at("verification_key", e.to_string()))?;
        if let Some(algs) = algorithms {
            verifier = verifier.algorithms(algs);
        }
        // Any holder of a key trusted here could otherwise mint grants for this route: the
        // grant's issuer and audience are required unless waived by name.
        match (self.issuer.take(), self.allow_any_issuer) {
            (Some(iss), false) => verifier = verifier.issuer(iss),
            (None, true) => {}
            (Some(_), true) => return Err(ConfigError::at("allow_any_issuer", "issuer and allow_any_issuer: set one, not both")),
            (None, false) => return Err(ConfigError::at("issuer", "required (the policy server's is weir-policy-server); allow_any_issuer: true waives it")),
        }
        match (self.audiences.is_empty(), self.allow_any_audience) {
            (false, true) => return Err(ConfigError::at("allow_any_audience", "audiences and allow_any_audience: set one, not both")),
            (true, false) => return Err(ConfigError::at("audiences", "required (the policy server's is check-header); allow_any_audience: true waives it")),
            _ => {}
        }
        for aud in std::mem::take(&mut self.audiences) {
            verifier = verifier.audience(aud);
        }
        self.replay = self
            .single_use_grants
            .then(|| ReplayCache::new(self.replay_cache_grants));
        let rules = verifier
            .clock_skew_seconds(self.clock_skew_seconds)
            .cache_verified(self.verified_cache_entries as usize);
        self.keys = match remote {
            Some(jwks) => Keys::Remote { jwks, rules },
            None => Keys::Static(rules),
        };
        Ok(())
    }
}
