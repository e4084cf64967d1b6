//! check-header's configuration: the seed's keys plus Envoy `jwt_authn`-style options. The
//! verifier is built once per configure, so a bad key is a configuration error that Envoy
//! reports, not a per-request failure.

use serde::Deserialize;
use std::time::Duration;
use weir::jwt::{RemoteJwks, Verifier};
use weir::HeaderName;

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
    #[serde(default = "default_refresh")]
    jwks_refresh_seconds: u64,
    #[serde(default = "default_min_refetch")]
    jwks_min_refetch_seconds: u64,
    function: String,
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default)]
    audiences: Vec<String>,
    #[serde(default)]
    algorithms: Option<Vec<String>>,
    #[serde(default = "default_skew")]
    clock_skew_seconds: u64,
    #[serde(default)]
    claim_to_headers: Vec<ClaimToHeader>,
    #[serde(default)]
    forward: bool,
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
}

impl TryFrom<Raw> for Config {
    type Error = String;

    fn try_from(raw: Raw) -> Result<Self, String> {
        let hmac: Vec<&String> = raw.algorithms.iter().flatten().filter(|a| a.starts_with("HS")).collect();
        let remote = match (&raw.verification_key, raw.jwks_cluster, raw.jwks_path) {
            (Some(_), Some(_), _) => return Err("verification_key and jwks_cluster: set one, not both".into()),
            (None, None, _) => return Err("verification_key or jwks_cluster: one is required".into()),
            (Some(_), None, Some(_)) => return Err("jwks_path: only used with jwks_cluster".into()),
            (None, Some(cluster), path) => {
                if !hmac.is_empty() {
                    return Err("algorithms: HMAC (HS*) needs a verification_key secret, not a JWKS".into());
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
        if let Some(iss) = raw.issuer {
            verifier = verifier.issuer(iss);
        }
        for aud in raw.audiences {
            verifier = verifier.audience(aud);
        }
        Ok(Config {
            read_header: raw.read_header,
            function: raw.function,
            claim_to_headers: raw.claim_to_headers,
            forward: raw.forward,
            keys: {
                let rules = verifier.clock_skew_seconds(raw.clock_skew_seconds);
                match remote {
                    Some(jwks) => Keys::Remote { jwks, rules },
                    None => Keys::Static(rules),
                }
            },
        })
    }
}
