//! The verified-token cache behind [`Verifier::cache_verified`](super::Verifier::cache_verified):
//! a signature check costs millions of Wasm instructions (ES256 ~18.7 M, EdDSA ~5.2 M), and a
//! grant or ID token is often presented many times while it lives.
//!
//! An entry holds the whole token it was verified from, signature included, and a hit needs
//! every byte to be equal: a token differing from a verified one anywhere (a forged signature
//! on a known payload) misses and is verified in full. That is as strict as a cryptographic
//! digest of the token and far cheaper (SHA-256 of a 357-byte token is ~30 K Wasm
//! instructions; the hash of its tail and a word-wise comparison ~1.5 K); the price is
//! memory, the token's own bytes per entry. The hash only picks candidates; equality decides, so a collision costs a
//! comparison, never a wrong hit. Only successes are stored. An entry belongs to one
//! [`Verifier`](super::Verifier), whose keys never change: a new key set (a JWKS refresh
//! builds a new verifier) starts empty. A plain vector: a linear scan of a few thousand
//! hashes costs far less than one signature check, and keeps a map's code out of the plugin.

use super::Claims;
use std::cell::{Cell, RefCell};
use std::rc::Rc;

struct Entry {
    hash: u64,
    token: Box<[u8]>,
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

/// `bytes` as little-endian 8-byte words and the 0–7 bytes left over (a chunked iterator
/// with a padded last word costs ~30 Wasm instructions per byte at `opt-level = "z"`; this,
/// one load per word).
fn split_words(bytes: &[u8]) -> (impl Iterator<Item = u64> + '_, &[u8]) {
    let (words, rest) = bytes.as_chunks::<8>();
    (words.iter().map(|w| u64::from_le_bytes(*w)), rest)
}

/// The last bytes of a token that [`hash`] reads: the end of a compact JWS is its signature,
/// distinct for every token signed, so they spread the entries as well as the whole would.
const HASHED_TAIL: usize = 32;

/// A fast, non-cryptographic hash (FxHash's step, a word at a time) of the length and the
/// last [`HASHED_TAIL`] bytes, that only narrows the scan: [`same_bytes`] decides a hit. Only
/// verified tokens are stored, so a token made to share a cached one's tail costs one
/// comparison, never a wrong hit.
fn hash(bytes: &[u8]) -> u64 {
    let step = |h: u64, w: u64| (h.rotate_left(5) ^ w).wrapping_mul(0x517c_c1b7_2722_0a95);
    let tail = &bytes[bytes.len().saturating_sub(HASHED_TAIL)..];
    let (words, rest) = split_words(tail);
    let last = rest.iter().fold(0u64, |t, &b| t << 8 | u64::from(b));
    step(words.fold(bytes.len() as u64, step), last)
}

/// `a == b`, a word at a time (the byte-wise `memcmp` Wasm builds link is several times slower).
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let ((a_words, a_rest), (b_words, b_rest)) = (split_words(a), split_words(b));
    a.len() == b.len() && a_rest == b_rest && a_words.zip(b_words).all(|(x, y)| x == y)
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

    /// The claims stored for exactly `token`, if any; `still_valid` re-checks them (time,
    /// policy) and an entry failing it is dropped.
    pub(super) fn get(
        &self,
        token: &str,
        still_valid: impl Fn(&Claims) -> bool,
    ) -> Option<Rc<Claims>> {
        if self.capacity == 0 {
            return None;
        }
        let token = token.as_bytes();
        let hash = hash(token);
        let mut entries = self.entries.borrow_mut();
        let at = entries
            .iter()
            .position(|e| e.hash == hash && same_bytes(&e.token, token))?;
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
        entries.push(Entry {
            hash: hash(token.as_bytes()),
            token: token.as_bytes().into(),
            claims: claims.clone(),
            used: self.clock.get(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::{hash, same_bytes};

    #[test]
    fn equality_is_byte_exact_at_every_length_and_position() {
        let base: Vec<u8> = (0..37u8).collect();
        for len in 0..base.len() {
            let a = &base[..len];
            assert!(same_bytes(a, a));
            // Another allocation of the same bytes hashes the same (no address in the hash).
            let copy = a.to_vec();
            assert_eq!(hash(a), hash(&copy));
            for at in 0..len {
                let mut b = a.to_vec();
                b[at] ^= 1;
                assert!(!same_bytes(a, &b), "len {len}, byte {at}");
            }
            // A zero byte added at the end must not look like the padding of the last word.
            let mut longer = a.to_vec();
            longer.push(0);
            assert!(!same_bytes(a, &longer));
            assert_ne!(hash(a), hash(&longer), "len {len}");
        }
    }
}
