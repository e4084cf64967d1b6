//! The one list of forged, broken and stale tokens. Each is a valid token changed in one
//! respect, so a refusal can only come from that change; each suite sends them its own way
//! and keeps its own expectation (status, log line, metric).

use jwt_simple::prelude::*;
use serde_json::{json, Value};

use crate::{b64, sign_with_header};

/// One way a token is forged, broken or stale. [`Forgery::ALL`] is the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Forgery {
    /// `alg: none` and an empty signature, under the trusted `kid`.
    AlgNone,
    /// `alg: none` and an empty signature, without a `kid`.
    AlgNoneWithoutKid,
    /// The signature removed (`header.payload.`).
    SignatureStripped,
    /// The last characters of a valid signature cut off.
    SignatureTruncated,
    /// The payload changed (`sub: root`) under the original header and signature.
    PayloadAltered,
    /// The header changed (a `jku` added) over the original payload and signature.
    HeaderAltered,
    /// Signed by another key under the trusted key's `kid` (a swapped key).
    WrongKeySameKid,
    /// Signed by another key under a `kid` no JWKS publishes.
    UnknownKid,
    /// A valid ES256 signature under a header that says RS256.
    AlgRs256OnEs256Signature,
    /// HS256 keyed with the trusted key's public PEM (algorithm confusion).
    HmacWithPublicPem,
    /// HS256 keyed with the trusted key's public JWK as published.
    HmacWithPublicJwk,
    /// HS256 keyed with what the verifier is configured with ([`Forger::hmac_secret`]).
    HmacWithVerifierSecret,
    /// A valid signature under `crit: ["exp"]` (RFC 7515 §4.1.11: an unknown extension).
    CritExp,
    /// A valid signature under `crit: []` (malformed, RFC 7515).
    CritEmpty,
    /// `exp` an hour ago (beyond any skew a verifier allows, jwt-simple's 15 minutes too).
    Expired,
    /// `nbf` an hour ahead.
    NotYetValid,
    /// `iat` an hour ahead.
    IssuedInTheFuture,
    /// No `exp` at all.
    MissingExp,
    /// Another `iss`.
    WrongIssuer,
    /// No `iss`.
    MissingIssuer,
    /// Another `aud`.
    WrongAudience,
    /// No `aud`.
    MissingAudience,
    /// A payload of more than the size limit, not even signed.
    Oversized,
    /// More than the size limit, validly signed.
    OversizedValidlySigned,
    /// Not a JWS at all.
    Garbage,
}

impl Forgery {
    /// Every case, in a fixed order.
    pub const ALL: [Forgery; 25] = [
        Forgery::AlgNone,
        Forgery::AlgNoneWithoutKid,
        Forgery::SignatureStripped,
        Forgery::SignatureTruncated,
        Forgery::PayloadAltered,
        Forgery::HeaderAltered,
        Forgery::WrongKeySameKid,
        Forgery::UnknownKid,
        Forgery::AlgRs256OnEs256Signature,
        Forgery::HmacWithPublicPem,
        Forgery::HmacWithPublicJwk,
        Forgery::HmacWithVerifierSecret,
        Forgery::CritExp,
        Forgery::CritEmpty,
        Forgery::Expired,
        Forgery::NotYetValid,
        Forgery::IssuedInTheFuture,
        Forgery::MissingExp,
        Forgery::WrongIssuer,
        Forgery::MissingIssuer,
        Forgery::WrongAudience,
        Forgery::MissingAudience,
        Forgery::Oversized,
        Forgery::OversizedValidlySigned,
        Forgery::Garbage,
    ];

    /// A short name for assertion messages.
    pub fn name(self) -> &'static str {
        match self {
            Forgery::AlgNone => "alg none",
            Forgery::AlgNoneWithoutKid => "alg none, no kid",
            Forgery::SignatureStripped => "signature stripped",
            Forgery::SignatureTruncated => "signature truncated",
            Forgery::PayloadAltered => "payload altered",
            Forgery::HeaderAltered => "header altered",
            Forgery::WrongKeySameKid => "signed by another key under the trusted kid",
            Forgery::UnknownKid => "signed by another key under an unknown kid",
            Forgery::AlgRs256OnEs256Signature => "alg RS256 on an ES256 signature",
            Forgery::HmacWithPublicPem => "HS256 keyed with the public key (PEM)",
            Forgery::HmacWithPublicJwk => "HS256 keyed with the public JWK",
            Forgery::HmacWithVerifierSecret => "HS256 keyed with the verifier's configured key",
            Forgery::CritExp => "crit: [exp], validly signed",
            Forgery::CritEmpty => "crit: [], validly signed",
            Forgery::Expired => "expired",
            Forgery::NotYetValid => "nbf in the future",
            Forgery::IssuedInTheFuture => "iat in the future",
            Forgery::MissingExp => "missing exp",
            Forgery::WrongIssuer => "wrong iss",
            Forgery::MissingIssuer => "missing iss",
            Forgery::WrongAudience => "wrong aud",
            Forgery::MissingAudience => "missing aud",
            Forgery::Oversized => "oversized",
            Forgery::OversizedValidlySigned => "oversized, validly signed",
            Forgery::Garbage => "garbage",
        }
    }
}

/// Makes the [`Forgery`] cases of one valid token: `claims`, valid at `now`, signed by the
/// trusted ES256 `key` (whose `kid` the verifier's JWKS publishes).
#[derive(Debug)]
pub struct Forger<'a> {
    key: &'a ES256KeyPair,
    claims: JWTClaims<Value>,
    now: u64,
    max_bytes: usize,
    secret: Option<Vec<u8>>,
}

impl<'a> Forger<'a> {
    /// Forgeries of `claims` signed by `key`, with times relative to `now` and a size limit
    /// of 8 KiB.
    pub fn new(key: &'a ES256KeyPair, claims: JWTClaims<Value>, now: u64) -> Self {
        Self {
            key,
            claims,
            now,
            max_bytes: 8192,
            secret: None,
        }
    }

    /// The verifier's token size limit (default 8 KiB), for the oversized cases.
    pub fn max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    /// What the verifier is configured with (JWKS text, another key's PEM…), used as an
    /// HMAC secret; without it, [`Forgery::HmacWithVerifierSecret`] is left out.
    pub fn hmac_secret(mut self, secret: &[u8]) -> Self {
        self.secret = Some(secret.to_vec());
        self
    }

    /// The valid token every forgery starts from.
    pub fn valid(&self) -> String {
        self.sign(&|_| {})
    }

    /// Every case that applies, with its token.
    pub fn all(&self) -> Vec<(Forgery, String)> {
        Forgery::ALL
            .into_iter()
            .filter_map(|case| self.forge(case).map(|token| (case, token)))
            .collect()
    }

    /// The token for `case`; `None` for [`Forgery::HmacWithVerifierSecret`] without a secret.
    pub fn forge(&self, case: Forgery) -> Option<String> {
        let kid = self.key.key_id().clone().unwrap_or_default();
        let good = self.valid();
        let parts: Vec<&str> = good.split('.').collect();
        let (header, payload, signature) = (parts[0], parts[1], parts[2]);
        let now = self.now;
        let at = UnixTimeStamp::from_secs;
        let hmac = |secret: &[u8]| {
            HS256Key::from_bytes(secret)
                .with_key_id(&kid)
                .authenticate(self.claims.clone())
                .expect("HS256 signs")
        };
        let by_other = |other_kid: &str| {
            ES256KeyPair::generate()
                .with_key_id(other_kid)
                .sign(self.claims.clone())
                .expect("signs")
        };
        let under = |header: Value| sign_with_header(self.key, &header, &self.claims);
        Some(match case {
            Forgery::AlgNone => {
                let none = json!({ "alg": "none", "typ": "JWT", "kid": kid });
                format!("{}.{payload}.", b64(none.to_string().as_bytes()))
            }
            Forgery::AlgNoneWithoutKid => {
                let none = json!({ "alg": "none", "typ": "JWT" });
                format!("{}.{payload}.", b64(none.to_string().as_bytes()))
            }
            Forgery::SignatureStripped => format!("{header}.{payload}."),
            Forgery::SignatureTruncated => {
                format!("{header}.{payload}.{}", &signature[..signature.len() - 4])
            }
            Forgery::PayloadAltered => {
                let mut escalated = self.claims.clone();
                escalated.subject = Some("root".into());
                let altered = b64(&serde_json::to_vec(&escalated).expect("claims serialize"));
                format!("{header}.{altered}.{signature}")
            }
            Forgery::HeaderAltered => {
                let jku = json!({ "alg": "ES256", "typ": "JWT", "kid": kid,
                    "jku": "https://evil.test/jwks" });
                format!("{}.{payload}.{signature}", b64(jku.to_string().as_bytes()))
            }
            Forgery::WrongKeySameKid => by_other(&kid),
            Forgery::UnknownKid => by_other("unknown-kid"),
            Forgery::AlgRs256OnEs256Signature => under(json!({ "alg": "RS256", "kid": kid })),
            Forgery::HmacWithPublicPem => {
                hmac(self.key.public_key().to_pem().expect("PEM").as_bytes())
            }
            Forgery::HmacWithPublicJwk => hmac(crate::es256_jwk(self.key).to_string().as_bytes()),
            Forgery::HmacWithVerifierSecret => hmac(self.secret.as_deref()?),
            Forgery::CritExp => {
                under(json!({ "alg": "ES256", "kid": kid, "crit": ["exp"], "exp": 1 }))
            }
            Forgery::CritEmpty => under(json!({ "alg": "ES256", "kid": kid, "crit": [] })),
            Forgery::Expired => self.sign(&|c| {
                c.issued_at = Some(at(now - 7200));
                c.invalid_before = Some(at(now - 7200));
                c.expires_at = Some(at(now - 3600));
            }),
            Forgery::NotYetValid => self.sign(&|c| c.invalid_before = Some(at(now + 3600))),
            Forgery::IssuedInTheFuture => self.sign(&|c| {
                c.issued_at = Some(at(now + 3600));
                c.expires_at = Some(at(now + 7200));
            }),
            Forgery::MissingExp => self.sign(&|c| c.expires_at = None),
            Forgery::WrongIssuer => self.sign(&|c| c.issuer = Some("https://evil.test".into())),
            Forgery::MissingIssuer => self.sign(&|c| c.issuer = None),
            Forgery::WrongAudience => self.sign(&|c| {
                c.audiences = Some(Audiences::AsString("someone-else".into()));
            }),
            Forgery::MissingAudience => self.sign(&|c| c.audiences = None),
            Forgery::Oversized => {
                format!("{header}.{}.{signature}", "A".repeat(self.max_bytes + 1))
            }
            Forgery::OversizedValidlySigned => {
                self.sign(&|c| c.custom["padding"] = json!("x".repeat(self.max_bytes)))
            }
            Forgery::Garbage => "not-a-token".to_owned(),
        })
    }

    /// The claims, changed by `edit`, signed validly by the trusted key.
    fn sign(&self, edit: &dyn Fn(&mut JWTClaims<Value>)) -> String {
        let mut claims = self.claims.clone();
        edit(&mut claims);
        self.key.sign(claims).expect("signs")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{claims, es256_jwk, es256_key, jwks};

    /// The verifier the plugins use (jwt-simple) accepts the starting token and refuses
    /// every forgery: the matrix is not broken by construction.
    #[test]
    fn jwt_simple_accepts_the_valid_token_and_refuses_every_forgery() {
        let key = es256_key("k1");
        let now = Clock::now_since_epoch().as_secs();
        let valid = claims(now, 300, "iss-a", "aud-a", "alice", json!({}));
        let secret = jwks([es256_jwk(&key)]);
        let forger = Forger::new(&key, valid, now).hmac_secret(secret.as_bytes());
        let options = || VerificationOptions {
            allowed_issuers: Some(HashSet::from_strings(&["iss-a"])),
            allowed_audiences: Some(HashSet::from_strings(&["aud-a"])),
            max_token_length: Some(8192),
            ..VerificationOptions::default()
        };
        let public = key.public_key().with_key_id("k1");
        public
            .verify_token::<Value>(&forger.valid(), Some(options()))
            .expect("the starting token is valid");
        let all = forger.all();
        assert_eq!(all.len(), Forgery::ALL.len());
        for (case, token) in all {
            let verdict = public.verify_token::<Value>(&token, Some(options()));
            // jwt-simple alone accepts a token without exp and an empty `crit`; the SDK
            // refuses both itself.
            let sdk_only = matches!(case, Forgery::MissingExp | Forgery::CritEmpty);
            assert_eq!(verdict.is_err(), !sdk_only, "{}", case.name());
        }
    }
}
