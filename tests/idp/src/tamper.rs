//! Making the provider hand out a bad ID token once, for relying-party attack tests.
//!
//! The rewrite happens inside the provider, on its real token response, so the relying
//! party receives it over the same back channel as a genuine one.

use serde_json::{json, Map, Value};

/// How the rewritten ID token is signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TamperSigning {
    /// Re-signed with the provider's current key for the token's algorithm: the signature
    /// is valid, so only claim checks can catch the change.
    CurrentKey,
    /// `alg: none` and an empty signature.
    None,
    /// Signed with a fresh key the JWKS never publishes, under a `kid` starting `unknown-`.
    UnknownKey,
}

/// A one-shot rewrite of the next ID token the token endpoint returns (code or refresh
/// grant), armed with [`crate::Provider::tamper_next_id_token`].
#[derive(Debug, Clone, PartialEq)]
pub struct IdTokenTamper {
    set: Map<String, Value>,
    remove: Vec<String>,
    header: Map<String, Value>,
    signing: TamperSigning,
}

impl Default for IdTokenTamper {
    fn default() -> Self {
        Self::new()
    }
}

impl IdTokenTamper {
    /// No change yet, re-signed with the current key.
    pub fn new() -> Self {
        Self {
            set: Map::new(),
            remove: Vec::new(),
            header: Map::new(),
            signing: TamperSigning::CurrentKey,
        }
    }

    /// Sets (or replaces) a claim, such as `aud`, `nonce`, `iss` or `exp`.
    pub fn claim(mut self, name: &str, value: Value) -> Self {
        self.set.insert(name.to_owned(), value);
        self
    }

    /// Removes a claim, such as `exp`.
    pub fn remove_claim(mut self, name: &str) -> Self {
        self.remove.push(name.to_owned());
        self
    }

    /// Sets a header field, such as `alg` or `kid` (the signature still follows
    /// [`IdTokenTamper::signing`], so this makes header and signature disagree).
    pub fn header(mut self, name: &str, value: Value) -> Self {
        self.header.insert(name.to_owned(), value);
        self
    }

    /// Chooses how the result is signed.
    pub fn signing(mut self, signing: TamperSigning) -> Self {
        self.signing = signing;
        self
    }

    /// The request body for the provider's admin endpoint.
    pub(crate) fn to_json(&self) -> Value {
        json!({
            "set": self.set,
            "remove": self.remove,
            "header": self.header,
            "sign": match self.signing {
                TamperSigning::CurrentKey => "current-key",
                TamperSigning::None => "none",
                TamperSigning::UnknownKey => "unknown-key",
            },
        })
    }
}
