//! check-header's configuration: the seed's keys plus Envoy `jwt_authn`-style options. The
//! verifier is built once per configure, so a bad key is a configuration error that Envoy
//! reports, not a per-request failure.

use serde::Deserialize;
use std::time::Duration;
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    read_header: HeaderName,
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
    function: String,
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
    #[serde(
        default = "default_skew",
        deserialize_with = "weir::config::bounded::<_, 0, 600>"
    )]
    clock_skew_seconds: u64,
    #[serde(default)]
    claim_to_headers: Vec<ClaimToHeader>,
    #[serde(default)]
    forward: bool,
    #[serde(default)]
    require_request_binding: bool,
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

/// The validated configuration.
#[derive(Debug, Deserialize)]
#[serde(try_from = "Raw")]
pub struct Config {
    /// Header holding the grant token.
    pub read_header: HeaderName,
    /// The function this route requires in the token's `functions` claim.
    pub function: String,
    /// Copies of claims to headers.
    pub claim_to_headers: Vec<ClaimToHeader>,
    /// Keep `read_header` on the request going upstream (default: strip it).
    pub forward: bool,
    /// Keys and claim rules.
    pub keys: Keys,
    /// Refuse a grant whose `request` claim does not match this request.
    pub require_request_binding: bool,
    /// Let each grant (`jti`) pass once: the shared replay cache, when `single_use_grants`.
    pub replay: Option<ReplayCache>,
    /// The tolerance on `exp`: a used `jti` is remembered until `exp` plus this.
    pub clock_skew_seconds: u64,
}

impl TryFrom<Raw> for Config {
    type Error = String;

    fn try_from(raw: Raw) -> Result<Self, String> {
        let hmac: Vec<&String> = raw
            .algorithms
            .iter()
            .flatten()
            .filter(|a| a.starts_with("HS"))
            .collect();
        let remote = match (&raw.verification_key, raw.jwks_cluster, raw.jwks_path) {
            (Some(_), Some(_), _) => {
                return Err("verification_key and jwks_cluster: set one, not both".into())
            }
            (None, None, _) => {
                return Err("verification_key or jwks_cluster: one is required".into())
            }
            (Some(_), None, Some(_)) => return Err("jwks_path: only used with jwks_cluster".into()),
            (None, Some(cluster), path) => {
                if !hmac.is_empty() {
                    return Err(
                        "algorithms: HMAC (HS*) needs a verification_key secret, not a JWKS".into(),
                    );
                }
                if raw.jwks_refresh_seconds == 0 {
                    return Err("jwks_refresh_seconds: must be at least 1".into());
                }
                let path = path.unwrap_or_else(|| "/.well-known/jwks.json".to_string());
                if !path.starts_with('/') {
                    return Err(format!("jwks_path: '{path}' must start with '/'"));
                }
                Some(
                    RemoteJwks::new(cluster, path)
                        .refresh_every(Duration::from_secs(raw.jwks_refresh_seconds))
                        .min_refetch(Duration::from_secs(raw.jwks_min_refetch_seconds)),
                )
            }
            (Some(_), None, None) => None,
        };
        let key = raw.verification_key.as_deref().unwrap_or_default().trim();
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
            Err(weir::Error::msg("verification_key is neither a PEM public key nor a JWKS; an HMAC secret needs algorithms: [\"HS256\"]"))
        }
        .map_err(|e| format!("verification_key: {e}"))?;
        if let Some(algs) = raw.algorithms {
            verifier = verifier.algorithms(algs);
        }
        // Any holder of a key trusted here could otherwise mint grants for this route: the
        // grant's issuer and audience are required unless waived by name.
        match (raw.issuer, raw.allow_any_issuer) {
            (Some(iss), false) => verifier = verifier.issuer(iss),
            (None, true) => {}
            (Some(_), true) => return Err("issuer and allow_any_issuer: set one, not both".into()),
            (None, false) => return Err("issuer: required (the policy server's is weir-policy-server); allow_any_issuer: true waives it".into()),
        }
        match (raw.audiences.is_empty(), raw.allow_any_audience) {
            (false, true) => return Err("audiences and allow_any_audience: set one, not both".into()),
            (true, false) => return Err("audiences: required (the policy server's is check-header); allow_any_audience: true waives it".into()),
            _ => {}
        }
        for aud in raw.audiences {
            verifier = verifier.audience(aud);
        }
        Ok(Config {
            read_header: raw.read_header,
            function: raw.function,
            claim_to_headers: raw.claim_to_headers,
            forward: raw.forward,
            require_request_binding: raw.require_request_binding,
            replay: raw
                .single_use_grants
                .then(|| ReplayCache::new(raw.replay_cache_grants)),
            clock_skew_seconds: raw.clock_skew_seconds,
            keys: {
                let rules = verifier
                    .clock_skew_seconds(raw.clock_skew_seconds)
                    .cache_verified(raw.verified_cache_entries as usize);
                match remote {
                    Some(jwks) => Keys::Remote { jwks, rules },
                    None => Keys::Static(rules),
                }
            },
        })
    }
}
