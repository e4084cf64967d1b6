//! check-header's configuration: the seed's keys plus Envoy `jwt_authn`-style options. The
//! verifier is built once per configure, so a bad key is a configuration error that Envoy
//! reports, not a per-request failure.

use serde::Deserialize;
use weir::jwt::Verifier;
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
    verification_key: String,
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
    pub verifier: Verifier,
}

impl TryFrom<Raw> for Config {
    type Error = String;

    fn try_from(raw: Raw) -> Result<Self, String> {
        let key = raw.verification_key.trim();
        let hmac: Vec<&String> = raw.algorithms.iter().flatten().filter(|a| a.starts_with("HS")).collect();
        let mut verifier = if key.starts_with('{') {
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
            verifier: verifier.clock_skew_seconds(raw.clock_skew_seconds),
        })
    }
}
