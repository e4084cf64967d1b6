//! The verified-token cache behind [`Verifier::cache_verified`](super::Verifier::cache_verified):
//! a signature check costs millions of Wasm instructions (ES256 ~18.7 M, EdDSA ~5.2 M), and a
//! grant or ID token is often presented many times while it lives.
//!
//! Entries are keyed by the SHA-256 of the whole token, signature included, so a token that
//! differs from a verified one in any byte (a forged signature on a known payload) misses and
//! is verified in full. Only successes are stored. An entry belongs to one [`Verifier`](super::Verifier),
//! whose keys never change: a new key set (a JWKS refresh builds a new verifier) starts empty.
//! A plain vector: a linear scan of a few thousand digests costs far less than one signature
//! check, and keeps a map's code out of the plugin.

use super::Claims;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

struct Entry {
    key: [u8; 32],
    claims: Rc<Claims>,
    /// The cache's clock when the entry was last used: the least recent one is evicted.
    used: u64,
}

/// At most `capacity` verified tokens, least recently used evicted first.
pub(super) struct VerifiedCache {
    capacity: usize,
    entries: RefCell<Vec<Entry>>,
    clock: Cell<u64>,
}

impl VerifiedCache {
    pub(super) fn new(capacity: usize) -> Self {
        VerifiedCache {
            capacity,
            entries: RefCell::new(Vec::new()),
            clock: Cell::new(0),
        }
    }

    pub(super) fn capacity(&self) -> usize {
        self.capacity
    }

    /// The claims stored for `token`, if any; `still_valid` re-checks them (time, policy) and
    /// an entry failing it is dropped.
    pub(super) fn get(
        &self,
        token: &str,
        still_valid: impl Fn(&Claims) -> bool,
    ) -> Option<Rc<Claims>> {
        if self.capacity == 0 {
            return None;
        }
        let key = hmac_sha256::Hash::hash(token.as_bytes());
        let mut entries = self.entries.borrow_mut();
        let at = entries.iter().position(|e| e.key == key)?;
        if !still_valid(&entries[at].claims) {
            entries.swap_remove(at);
            return None;
        }
        self.clock.set(self.clock.get() + 1);
        entries[at].used = self.clock.get();
        Some(entries[at].claims.clone())
    }

    /// Stores `token`'s verified claims, evicting the least recently used entry when full.
    pub(super) fn put(&self, token: &str, claims: &Rc<Claims>) {
        if self.capacity == 0 {
            return;
        }
        let mut entries = self.entries.borrow_mut();
        if entries.len() >= self.capacity {
            if let Some(oldest) = entries
                .iter()
                .enumerate()
                .min_by_key(|(_, e)| e.used)
                .map(|(at, _)| at)
            {
                entries.swap_remove(oldest);
            }
        }
        self.clock.set(self.clock.get() + 1);
        let key = hmac_sha256::Hash::hash(token.as_bytes());
        entries.push(Entry {
            key,
            claims: claims.clone(),
            used: self.clock.get(),
        });
    }
}
