//! JWT verification on `jwt-simple` (cargo feature `jwt`), as strict as Envoy's `jwt_authn`:
//! every key is bound to one algorithm (so "HS256 signed with the RSA public key" cannot
//! verify), `alg` must be in the allow-list, `kid` picks the key, `exp` is **required**
//! (jwt-simple alone accepts a token without it), `nbf`/`iat` must not be in the future, and
//! issuer/audience are checked when configured, and a token with a `crit` header is refused
//! (RFC 7515 §4.1.11: no extension is understood here, and an empty list is malformed). HMAC
//! secrets shorter than 32 bytes are refused. Clock skew defaults to 60 s.
//!
//! ```no_run
//! # fn demo(jwks: &str, token: &str) -> weir::Result<()> {
//! let verifier = weir::jwt::Verifier::new().jwks(jwks)?.issuer("weir-policy-server").audience("check-header");
//! let claims = verifier.verify(token)?;
//! let functions = claims.custom.get("functions");
//! # let _ = functions; Ok(()) }
//! ```
//!
//! A token presented many times (a grant held by a client, an ID token in a session) can
//! skip the signature check, millions of Wasm instructions for ES256 and EdDSA, with
//! [`Verifier::cache_verified`]: a bounded per-VM cache of verified tokens, hit only by a
//! token equal to a verified one in every byte and re-checked for time and issuer/audience
//! on every hit.
//! Whatever the caller decides from the claims (replay checks, permissions) still runs
//! per use. [`Verifier::verify_shared`] hands out the cached claims without copying them.

mod cache;
#[cfg(feature = "callout")]
pub mod remote;
#[cfg(feature = "callout")]
pub use remote::RemoteJwks;

use crate::{Error, Result};
use cache::VerifiedCache;
use jwt_simple::prelude::*;
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::rc::Rc;

/// The shortest HMAC secret [`Verifier::hmac`] accepts (RFC 7518 §3.2 asks for at least the
/// hash size; 32 bytes is HS256's).
pub const MIN_HMAC_SECRET_BYTES: usize = 32;

/// A verified token's claims; `custom` holds every claim jwt-simple does not model.
pub type Claims = JWTClaims<Map<String, Value>>;

/// The public-key algorithms the verifier knows, by their JOSE names. RSA (RS*, PS*) costs
/// about 250 KB of Wasm and P-384 (ES384) about 24 KB after wasm-opt, so each is a feature
/// of its own (`jwt-rsa`, `jwt-es384`).
const ASYMMETRIC: &[&str] = &[
    #[cfg(feature = "jwt-rsa")]
    "RS256",
    #[cfg(feature = "jwt-rsa")]
    "RS384",
    #[cfg(feature = "jwt-rsa")]
    "RS512",
    #[cfg(feature = "jwt-rsa")]
    "PS256",
    #[cfg(feature = "jwt-rsa")]
    "PS384",
    #[cfg(feature = "jwt-rsa")]
    "PS512",
    "ES256",
    #[cfg(feature = "jwt-es384")]
    "ES384",
    "EdDSA",
];

enum AnyKey {
    #[cfg(feature = "jwt-rsa")]
    Rs256(RS256PublicKey),
    #[cfg(feature = "jwt-rsa")]
    Rs384(RS384PublicKey),
    #[cfg(feature = "jwt-rsa")]
    Rs512(RS512PublicKey),
    #[cfg(feature = "jwt-rsa")]
    Ps256(PS256PublicKey),
    #[cfg(feature = "jwt-rsa")]
    Ps384(PS384PublicKey),
    #[cfg(feature = "jwt-rsa")]
    Ps512(PS512PublicKey),
    Es256(ES256PublicKey),
    #[cfg(feature = "jwt-es384")]
    Es384(ES384PublicKey),
    EdDsa(Ed25519PublicKey),
    Hs256(HS256Key),
    Hs384(HS384Key),
    Hs512(HS512Key),
}

struct Key {
    alg: &'static str,
    kid: Option<String>,
    key: AnyKey,
}

/// Verifies compact JWS tokens against configured keys and claim rules.
pub struct Verifier {
    keys: Vec<Key>,
    algorithms: Option<Vec<String>>,
    issuers: Option<HashSet<String>>,
    audiences: Option<HashSet<String>>,
    skew_seconds: u64,
    require_exp: bool,
    max_token_bytes: usize,
    cache: VerifiedCache,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<(&str, Option<&str>)> = self
            .keys
            .iter()
            .map(|k| (k.alg, k.kid.as_deref()))
            .collect();
        f.debug_struct("Verifier")
            .field("keys", &keys)
            .field("issuers", &self.issuers)
            .finish_non_exhaustive()
    }
}

impl Default for Verifier {
    fn default() -> Self {
        Verifier::new()
    }
}

/// The key for `alg` from a JWK document, if it is one of that algorithm's keys.
fn key_for(alg: &str, jwk: &str) -> Option<AnyKey> {
    macro_rules! load {
        ($t:ident, $v:ident) => {
            $t::from_jwk(jwk).ok().map(AnyKey::$v)
        };
    }
    match alg {
        #[cfg(feature = "jwt-rsa")]
        "RS256" => load!(RS256PublicKey, Rs256),
        #[cfg(feature = "jwt-rsa")]
        "RS384" => load!(RS384PublicKey, Rs384),
        #[cfg(feature = "jwt-rsa")]
        "RS512" => load!(RS512PublicKey, Rs512),
        #[cfg(feature = "jwt-rsa")]
        "PS256" => load!(PS256PublicKey, Ps256),
        #[cfg(feature = "jwt-rsa")]
        "PS384" => load!(PS384PublicKey, Ps384),
        #[cfg(feature = "jwt-rsa")]
        "PS512" => load!(PS512PublicKey, Ps512),
        "ES256" => load!(ES256PublicKey, Es256),
        #[cfg(feature = "jwt-es384")]
        "ES384" => load!(ES384PublicKey, Es384),
        "EdDSA" => load!(Ed25519PublicKey, EdDsa),
        _ => None,
    }
}

/// SubjectPublicKeyInfo DER for the elliptic curves is a fixed prefix (algorithm and curve
/// identifiers, bit-string header) followed by the raw public key. Matching the prefix
/// exactly keeps a general DER/PKCS#8 parser (about 36 KB of Wasm) out of the plugin.
const SPKI_PREFIXES: &[(&str, &[u8], usize)] = &[
    // id-ecPublicKey, prime256v1; uncompressed point.
    ("ES256", b"\x30\x59\x30\x13\x06\x07\x2a\x86\x48\xce\x3d\x02\x01\x06\x08\x2a\x86\x48\xce\x3d\x03\x01\x07\x03\x42\x00", 65),
    // id-Ed25519.
    ("EdDSA", b"\x30\x2a\x30\x05\x06\x03\x2b\x65\x70\x03\x21\x00", 32),
    // id-ecPublicKey, secp384r1; uncompressed point.
    #[cfg(feature = "jwt-es384")]
    ("ES384", b"\x30\x76\x30\x10\x06\x07\x2a\x86\x48\xce\x3d\x02\x01\x06\x05\x2b\x81\x04\x00\x22\x03\x62\x00", 97),
];

/// The DER inside a `-----BEGIN PUBLIC KEY-----` PEM block.
fn pem_public_key_der(pem: &str) -> Option<Vec<u8>> {
    let body = pem
        .trim()
        .strip_prefix("-----BEGIN PUBLIC KEY-----")?
        .strip_suffix("-----END PUBLIC KEY-----")?;
    Base64::decode_to_vec(body.trim(), Some(b" \t\r\n")).ok()
}

/// An elliptic-curve key from SubjectPublicKeyInfo DER (see [`SPKI_PREFIXES`]).
fn ec_key_from_spki(der: &[u8]) -> Option<(&'static str, AnyKey)> {
    let (alg, raw) = SPKI_PREFIXES.iter().find_map(|&(alg, prefix, len)| {
        der.strip_prefix(prefix)
            .filter(|raw| raw.len() == len)
            .map(|raw| (alg, raw))
    })?;
    let key = match alg {
        "ES256" => AnyKey::Es256(ES256PublicKey::from_bytes(raw).ok()?),
        #[cfg(feature = "jwt-es384")]
        "ES384" => AnyKey::Es384(ES384PublicKey::from_bytes(raw).ok()?),
        _ => AnyKey::EdDsa(Ed25519PublicKey::from_bytes(raw).ok()?),
    };
    Some((alg, key))
}

/// RSA keys from PEM, one per RS*/PS* algorithm.
#[cfg(feature = "jwt-rsa")]
fn rsa_keys_from_pem(pem: &str) -> Vec<(&'static str, AnyKey)> {
    let all = [
        (
            "RS256",
            RS256PublicKey::from_pem(pem).ok().map(AnyKey::Rs256),
        ),
        (
            "RS384",
            RS384PublicKey::from_pem(pem).ok().map(AnyKey::Rs384),
        ),
        (
            "RS512",
            RS512PublicKey::from_pem(pem).ok().map(AnyKey::Rs512),
        ),
        (
            "PS256",
            PS256PublicKey::from_pem(pem).ok().map(AnyKey::Ps256),
        ),
        (
            "PS384",
            PS384PublicKey::from_pem(pem).ok().map(AnyKey::Ps384),
        ),
        (
            "PS512",
            PS512PublicKey::from_pem(pem).ok().map(AnyKey::Ps512),
        ),
    ];
    all.into_iter()
        .filter_map(|(alg, key)| Some((alg, key?)))
        .collect()
}

impl Verifier {
    /// A verifier with no keys, no issuer/audience rule, 60 s skew and `exp` required.
    pub fn new() -> Self {
        Verifier {
            keys: Vec::new(),
            algorithms: None,
            issuers: None,
            audiences: None,
            skew_seconds: 60,
            require_exp: true,
            max_token_bytes: 8192,
            cache: VerifiedCache::new(0),
        }
    }

    /// Adds a PEM public key (P-256, Ed25519; P-384 with feature `jwt-es384`; RSA with feature
    /// `jwt-rsa`, serving RS* and PS*).
    pub fn pem(mut self, pem: &str) -> Result<Self> {
        let before = self.keys.len();
        if let Some((alg, key)) = pem_public_key_der(pem)
            .as_deref()
            .and_then(ec_key_from_spki)
        {
            self.keys.push(Key {
                alg,
                kid: None,
                key,
            });
        }
        #[cfg(feature = "jwt-rsa")]
        if self.keys.len() == before {
            for (alg, key) in rsa_keys_from_pem(pem) {
                self.keys.push(Key {
                    alg,
                    kid: None,
                    key,
                });
            }
        }
        if self.keys.len() == before {
            return Err(Error::msg("not a PEM public key of a supported type (P-256, Ed25519; P-384 needs feature jwt-es384, RSA jwt-rsa)"));
        }
        Ok(self)
    }

    /// Adds every usable key of a JWKS document (`{"keys":[…]}`). Members with `use` other
    /// than `sig` are skipped; a member's `alg`, when present, is the only algorithm it serves.
    pub fn jwks(mut self, jwks: &str) -> Result<Self> {
        let doc: Value = serde_json::from_str(jwks)?;
        let members = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| Error::msg("JWKS has no \"keys\" array"))?;
        let before = self.keys.len();
        for member in members {
            if member
                .get("use")
                .and_then(Value::as_str)
                .is_some_and(|u| u != "sig")
            {
                continue;
            }
            let declared = member.get("alg").and_then(Value::as_str);
            let kid = member
                .get("kid")
                .and_then(Value::as_str)
                .map(str::to_string);
            let text = member.to_string();
            for &alg in ASYMMETRIC
                .iter()
                .filter(|a| declared.is_none_or(|d| d == **a))
            {
                if let Some(key) = key_for(alg, &text) {
                    self.keys.push(Key {
                        alg,
                        kid: kid.clone(),
                        key,
                    });
                }
            }
        }
        if self.keys.len() == before {
            return Err(Error::msg("JWKS holds no usable signature key"));
        }
        Ok(self)
    }

    /// Adds an HMAC secret for `alg` (`HS256`, `HS384` or `HS512`). HMAC is never enabled
    /// any other way: a public key is never used as a secret. Secrets shorter than
    /// [`MIN_HMAC_SECRET_BYTES`] are refused: a short one can be guessed offline from a token.
    pub fn hmac(mut self, alg: &str, secret: &[u8]) -> Result<Self> {
        if secret.len() < MIN_HMAC_SECRET_BYTES {
            return Err(Error::msg(format!(
                "the HMAC secret has {} bytes; at least {MIN_HMAC_SECRET_BYTES} are required",
                secret.len()
            )));
        }
        let (alg, key) = match alg {
            "HS256" => ("HS256", AnyKey::Hs256(HS256Key::from_bytes(secret))),
            "HS384" => ("HS384", AnyKey::Hs384(HS384Key::from_bytes(secret))),
            "HS512" => ("HS512", AnyKey::Hs512(HS512Key::from_bytes(secret))),
            other => return Err(Error::msg(format!("'{other}' is not an HMAC algorithm"))),
        };
        self.keys.push(Key {
            alg,
            kid: None,
            key,
        });
        Ok(self)
    }

    /// Only these algorithms are accepted (default: every algorithm a key was loaded for).
    pub fn algorithms<S: Into<String>>(mut self, algs: impl IntoIterator<Item = S>) -> Self {
        self.algorithms = Some(algs.into_iter().map(Into::into).collect());
        self
    }

    /// Accepts this issuer (`iss`); once called, `iss` must be one of those given.
    pub fn issuer(mut self, iss: impl Into<String>) -> Self {
        self.issuers
            .get_or_insert_with(HashSet::new)
            .insert(iss.into());
        self
    }

    /// Accepts this audience; once called, `aud` must contain one of those given.
    pub fn audience(mut self, aud: impl Into<String>) -> Self {
        self.audiences
            .get_or_insert_with(HashSet::new)
            .insert(aud.into());
        self
    }

    /// Tolerance on `exp`, `nbf` and `iat` (default 60 s).
    pub fn clock_skew_seconds(mut self, seconds: u64) -> Self {
        self.skew_seconds = seconds;
        self
    }

    /// Accept tokens without `exp` (off by default; such tokens never expire).
    pub fn allow_missing_exp(mut self) -> Self {
        self.require_exp = false;
        self
    }

    /// The largest token accepted, in bytes (default 8 KiB).
    pub fn max_token_bytes(mut self, bytes: usize) -> Self {
        self.max_token_bytes = bytes;
        self
    }

    /// Remembers up to `entries` verified tokens (default 0: none), so a token presented
    /// again skips the signature check (millions of Wasm instructions for ES256/EdDSA). A
    /// hit needs the whole token, signature included, equal in every byte to one verified
    /// before (an entry keeps the token's bytes; a fast hash only narrows the scan), and re-checks
    /// `exp`/`nbf`/`iat` against `now` with the skew and the issuer/audience rules; failures
    /// are never stored; the least recently used entry is evicted when full. Everything
    /// after verification (replay checks, claim rules of the caller) still runs per use.
    /// The cache belongs to this verifier: one built with new keys ([`Verifier::with_jwks`],
    /// as a JWKS refresh does) starts empty. Memory: `entries` × (the token's bytes, at most
    /// [`Verifier::max_token_bytes`], + its claims).
    pub fn cache_verified(mut self, entries: usize) -> Self {
        self.cache = VerifiedCache::new(entries);
        self
    }

    /// Verifies `token` at the host's current time.
    pub fn verify(&self, token: &str) -> Result<Claims> {
        self.verify_at(token, crate::unix_time()?)
    }

    /// Verifies `token` as of `now` (seconds since the Unix epoch).
    pub fn verify_at(&self, token: &str, now: u64) -> Result<Claims> {
        self.verify_shared_at(token, now).map(Rc::unwrap_or_clone)
    }

    /// [`Verifier::verify`] without copying the claims out of the cache
    /// ([`Verifier::cache_verified`]).
    pub fn verify_shared(&self, token: &str) -> Result<Rc<Claims>> {
        self.verify_shared_at(token, crate::unix_time()?)
    }

    /// [`Verifier::verify_at`] without copying the claims out of the cache.
    pub fn verify_shared_at(&self, token: &str, now: u64) -> Result<Rc<Claims>> {
        if token.len() > self.max_token_bytes {
            return Err(Error::msg("token too large"));
        }
        if let Some(claims) = self.cache.get(token, |c| self.still_valid(c, now)) {
            return Ok(claims);
        }
        let meta =
            Token::decode_metadata(token).map_err(|_| Error::msg("malformed token header"))?;
        // jwt-simple refuses a non-empty `crit` only; refuse the header itself, whatever it holds.
        if meta.critical().is_some() {
            return Err(Error::msg("token has a crit header"));
        }
        let alg = meta.algorithm();
        if self
            .algorithms
            .as_ref()
            .is_some_and(|allowed| !allowed.iter().any(|a| a == alg))
        {
            // The token's own `alg` stays out of the message: it is the client's text.
            return Err(Error::msg("token algorithm is not allowed"));
        }
        let kid = meta.key_id();
        let candidates = self.keys.iter().filter(|k| {
            k.alg == alg && (kid.is_none() || k.kid.is_none() || k.kid.as_deref() == kid)
        });
        let options = VerificationOptions {
            allowed_issuers: self.issuers.clone(),
            allowed_audiences: self.audiences.clone(),
            time_tolerance: Some(Duration::from_secs(self.skew_seconds)),
            max_token_length: Some(self.max_token_bytes),
            artificial_time: Some(UnixTimeStamp::from_secs(now)),
            accept_future: false,
            ..VerificationOptions::default()
        };
        let mut tried = false;
        for key in candidates {
            tried = true;
            if let Ok(claims) = verify_with(&key.key, token, options.clone()) {
                if self.require_exp && claims.expires_at.is_none() {
                    return Err(Error::msg("token has no exp"));
                }
                let claims = Rc::new(claims);
                self.cache.put(token, &claims);
                return Ok(claims);
            }
        }
        Err(Error::msg(if tried {
            "token failed verification"
        } else {
            "no key for the token's alg/kid"
        }))
    }

    /// The time and issuer/audience checks of [`Verifier::verify_at`] (as jwt-simple makes
    /// them), for claims verified earlier.
    fn still_valid(&self, c: &Claims, now: u64) -> bool {
        let skew = self.skew_seconds;
        let secs = |t: Option<UnixTimeStamp>| t.map(|t| t.as_secs());
        secs(c.issued_at).is_none_or(|iat| iat <= now.saturating_add(skew))
            && secs(c.invalid_before).is_none_or(|nbf| nbf <= now.saturating_add(skew))
            && secs(c.expires_at).is_none_or(|exp| now >= skew && now - skew <= exp)
            && self.issuers.as_ref().is_none_or(|allowed| {
                c.issuer
                    .as_ref()
                    .is_some_and(|iss| allowed.iter().any(|a| a == iss))
            })
            && self.audiences.as_ref().is_none_or(|allowed| {
                // Walking the one or two allowed values costs a fraction of hashing (SipHash)
                // the token's value once, and this runs on every cache hit.
                let ok = |aud: &String| allowed.iter().any(|a| a == aud);
                match &c.audiences {
                    Some(Audiences::AsString(aud)) => ok(aud),
                    Some(Audiences::AsSet(auds)) => auds.iter().any(ok),
                    None => false,
                }
            })
    }

    /// Whether a key with this `kid` is loaded (callers refetch a JWKS on a miss).
    pub fn has_kid(&self, kid: &str) -> bool {
        self.keys.iter().any(|k| k.kid.as_deref() == Some(kid))
    }

    /// A verifier with this one's rules (algorithms, issuers, audiences, skew, `exp`, size
    /// cap) and the keys of `jwks` instead of its own: how a fetched JWKS becomes usable.
    pub fn with_jwks(&self, jwks: &str) -> Result<Verifier> {
        Verifier {
            keys: Vec::new(),
            algorithms: self.algorithms.clone(),
            issuers: self.issuers.clone(),
            audiences: self.audiences.clone(),
            skew_seconds: self.skew_seconds,
            require_exp: self.require_exp,
            max_token_bytes: self.max_token_bytes,
            cache: VerifiedCache::new(self.cache.capacity()),
        }
        .jwks(jwks)
    }
}

/// The `kid` in a token's header, read without verifying anything: only to decide whether
/// a JWKS refetch could help.
pub fn token_kid(token: &str) -> Option<String> {
    Token::decode_metadata(token)
        .ok()?
        .key_id()
        .map(str::to_string)
}

fn verify_with(
    key: &AnyKey,
    token: &str,
    o: VerificationOptions,
) -> std::result::Result<Claims, jwt_simple::Error> {
    type M = Map<String, Value>;
    match key {
        #[cfg(feature = "jwt-rsa")]
        AnyKey::Rs256(k) => k.verify_token::<M>(token, Some(o)),
        #[cfg(feature = "jwt-rsa")]
        AnyKey::Rs384(k) => k.verify_token::<M>(token, Some(o)),
        #[cfg(feature = "jwt-rsa")]
        AnyKey::Rs512(k) => k.verify_token::<M>(token, Some(o)),
        #[cfg(feature = "jwt-rsa")]
        AnyKey::Ps256(k) => k.verify_token::<M>(token, Some(o)),
        #[cfg(feature = "jwt-rsa")]
        AnyKey::Ps384(k) => k.verify_token::<M>(token, Some(o)),
        #[cfg(feature = "jwt-rsa")]
        AnyKey::Ps512(k) => k.verify_token::<M>(token, Some(o)),
        AnyKey::Es256(k) => k.verify_token::<M>(token, Some(o)),
        #[cfg(feature = "jwt-es384")]
        AnyKey::Es384(k) => k.verify_token::<M>(token, Some(o)),
        AnyKey::EdDsa(k) => k.verify_token::<M>(token, Some(o)),
        AnyKey::Hs256(k) => k.verify_token::<M>(token, Some(o)),
        AnyKey::Hs384(k) => k.verify_token::<M>(token, Some(o)),
        AnyKey::Hs512(k) => k.verify_token::<M>(token, Some(o)),
    }
}
