//! JWS algorithm names the server accepts (for user tokens) or signs with.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

/// A JWS `alg` this server knows. `none` is deliberately not representable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)] // the variants are the JWS names themselves
pub enum Algorithm {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
    HS256,
    HS384,
    HS512,
}

impl Algorithm {
    /// The default allow-list for user tokens: every asymmetric algorithm.
    pub const ASYMMETRIC: [Algorithm; 9] = [
        Algorithm::RS256,
        Algorithm::RS384,
        Algorithm::RS512,
        Algorithm::PS256,
        Algorithm::PS384,
        Algorithm::PS512,
        Algorithm::ES256,
        Algorithm::ES384,
        Algorithm::EdDSA,
    ];

    /// The name used in a JWS header and in a JWK's `alg`.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::RS256 => "RS256",
            Algorithm::RS384 => "RS384",
            Algorithm::RS512 => "RS512",
            Algorithm::PS256 => "PS256",
            Algorithm::PS384 => "PS384",
            Algorithm::PS512 => "PS512",
            Algorithm::ES256 => "ES256",
            Algorithm::ES384 => "ES384",
            Algorithm::EdDSA => "EdDSA",
            Algorithm::HS256 => "HS256",
            Algorithm::HS384 => "HS384",
            Algorithm::HS512 => "HS512",
        }
    }

    /// True for the shared-secret algorithms.
    pub fn is_hmac(self) -> bool {
        matches!(self, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)
    }

    /// Whether a JWK with this `kty` (and `crv`, for EC and OKP keys) can verify this
    /// algorithm. `oct` keys never match: HMAC secrets come only from `hmac_secret_file`.
    pub fn fits_key(self, kty: &str, crv: Option<&str>) -> bool {
        match self {
            Algorithm::RS256
            | Algorithm::RS384
            | Algorithm::RS512
            | Algorithm::PS256
            | Algorithm::PS384
            | Algorithm::PS512 => kty == "RSA",
            Algorithm::ES256 => kty == "EC" && crv == Some("P-256"),
            Algorithm::ES384 => kty == "EC" && crv == Some("P-384"),
            Algorithm::EdDSA => kty == "OKP" && crv == Some("Ed25519"),
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => false,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Error for an `alg` this server does not accept (including `none`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownAlgorithm(pub String);

impl fmt::Display for UnknownAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unsupported JWS algorithm {:?} (known: RS256/384/512, PS256/384/512, ES256, ES384, EdDSA, HS256/384/512; `none` is never accepted)",
            self.0
        )
    }
}

impl std::error::Error for UnknownAlgorithm {}

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    /// Exact, case-sensitive names as in RFC 7518; `Ed25519` (RFC 9864) is read as EdDSA.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let all = Algorithm::ASYMMETRIC.iter().chain(&[
            Algorithm::HS256,
            Algorithm::HS384,
            Algorithm::HS512,
        ]);
        if s == "Ed25519" {
            return Ok(Algorithm::EdDSA);
        }
        all.copied()
            .find(|a| a.name() == s)
            .ok_or_else(|| UnknownAlgorithm(s.to_string()))
    }
}

impl<'de> Deserialize<'de> for Algorithm {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_and_lowercase_names_are_rejected() {
        assert!("none".parse::<Algorithm>().is_err());
        assert!("None".parse::<Algorithm>().is_err());
        assert!("rs256".parse::<Algorithm>().is_err());
        assert_eq!("Ed25519".parse::<Algorithm>(), Ok(Algorithm::EdDSA));
        assert_eq!("PS384".parse::<Algorithm>(), Ok(Algorithm::PS384));
    }

    #[test]
    fn rsa_keys_never_fit_hmac() {
        assert!(!Algorithm::HS256.fits_key("RSA", None));
        assert!(!Algorithm::HS256.fits_key("oct", None));
        assert!(Algorithm::PS256.fits_key("RSA", None));
        assert!(!Algorithm::ES256.fits_key("EC", Some("P-384")));
    }
}
