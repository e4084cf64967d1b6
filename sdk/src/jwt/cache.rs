//! The verified-token cache behind [`Verifier::cache_verified`](super::Verifier::cache_verified):
//! a signature check costs millions of Wasm instructions (ES256 ~18.7 M, EdDSA ~5.2 M), and a
//! grant or ID token is often presented many times while it lives.
//!
//! Entries are keyed by the SHA-256 of the whole token, signature included, so a token that
//! differs from a verified one in any byte (a forged signature on a known payload) misses and
//! is verified in full. Only successes are stored. An entry belongs to one [`Verifier`](super::Verifier),
//! whose keys never change: a new key set (a JWKS refresh builds a new verifier) starts empty.

use super::Claims;
use std::cell::RefCell;
use std::collections::BTreeMap;

struct Entry {
    claims: Claims,
    /// The cache's clock when the entry was last used: the least recent one is evicted.
    used: u64,
}

/// At most `capacity` verified tokens, least recently used evicted first.
pub(super) struct VerifiedCache {
    capacity: usize,
    state: RefCell<(BTreeMap<[u8; 32], Entry>, u64)>,
}

impl VerifiedCache {
    pub(super) fn new(capacity: usize) -> Self {
        VerifiedCache {
            capacity,
            state: RefCell::new((BTreeMap::new(), 0)),
        }
    }

    pub(super) fn capacity(&self) -> usize {
        self.capacity
    }

    /// The claims stored for `token`, if any; `still_valid` re-checks them (time, policy) and
    /// an entry failing it is dropped.
    pub(super) fn get(&self, token: &str, still_valid: impl Fn(&Claims) -> bool) -> Option<Claims> {
        if self.capacity == 0 {
            return None;
        }
        let key = hmac_sha256::Hash::hash(token.as_bytes());
        let mut state = self.state.borrow_mut();
        let (map, clock) = &mut *state;
        *clock += 1;
        let entry = map.get_mut(&key)?;
        if !still_valid(&entry.claims) {
            map.remove(&key);
            return None;
        }
        entry.used = *clock;
        Some(entry.claims.clone())
    }

    /// Stores `token`'s verified claims, evicting the least recently used entry when full.
    pub(super) fn put(&self, token: &str, claims: &Claims) {
        if self.capacity == 0 {
            return;
        }
        let mut state = self.state.borrow_mut();
        let (map, clock) = &mut *state;
        if map.len() >= self.capacity {
            // O(capacity), only when full: far below one signature check.
            if let Some(oldest) = map.iter().min_by_key(|(_, e)| e.used).map(|(k, _)| *k) {
                map.remove(&oldest);
            }
        }
        map.insert(
            hmac_sha256::Hash::hash(token.as_bytes()),
            Entry {
                claims: claims.clone(),
                used: *clock,
            },
        );
    }
}
