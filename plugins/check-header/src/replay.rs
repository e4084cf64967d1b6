//! `single_use_grants`: each grant's `jti` passes once within the grant's lifetime, across
//! every worker's VM. Envoy keeps a VM per worker, so the record lives in shared data, which
//! has no delete: the store is a fixed set of buckets (`jti` hash modulo the bucket count),
//! each holding at most [`SLOTS`] `(hash, expiry)` pairs. Expired pairs are dropped when a
//! bucket is next written, so memory stays bounded at `capacity` × 16 bytes plus the keys.
//! Writes are compare-and-swap, so two VMs racing with the same `jti` cannot both win.

use std::hash::{DefaultHasher, Hasher};
use weir::{shared_data, Error, Result};

/// Pairs per bucket: a bucket is one shared-data value, read and rewritten per grant.
const SLOTS: usize = 8;
const ENTRY: usize = 16;

/// The version passed when a bucket did not exist yet. The host creates an absent key
/// whatever the version, but compares it against a present one: a bucket another VM created
/// since our read is then not overwritten (its version would have to be exactly this value,
/// after four billion shared-data writes).
const CREATE_ONLY: u32 = u32::MAX;

/// What the cache says about a grant.
#[derive(Debug, PartialEq, Eq)]
pub enum Use {
    /// Not seen before: recorded now.
    First,
    /// Seen before and not yet expired.
    Replayed,
    /// Its bucket holds [`SLOTS`] live grants: refused, since evicting one would let it replay.
    Full,
}

/// The bucket layout of one configuration.
#[derive(Debug)]
pub struct ReplayCache {
    buckets: u64,
}

impl ReplayCache {
    /// A cache for about `capacity` grants alive at the same time.
    pub fn new(capacity: u64) -> ReplayCache {
        ReplayCache {
            buckets: capacity.div_ceil(SLOTS as u64).max(1),
        }
    }

    /// Records `jti`, remembered until `expires` (Unix seconds), as seen at `now`.
    pub fn record(&self, jti: &str, expires: u64, now: u64) -> Result<Use> {
        // SipHash with fixed keys: every VM runs this same module, so all agree on the bucket.
        let mut hasher = DefaultHasher::new();
        hasher.write(jti.as_bytes());
        let hash = hasher.finish();
        let key = format!("check-header.jti.{}", hash % self.buckets);
        // Each failed swap means another VM wrote the bucket in between; a few suffice.
        for _ in 0..16 {
            let (stored, version) = shared_data::get(&key)?.unwrap_or((Vec::new(), CREATE_ONLY));
            let mut live = Vec::with_capacity((SLOTS + 1) * ENTRY);
            for entry in stored.chunks_exact(ENTRY) {
                let (seen, until) = entry.split_at(8);
                if u64_at(until) < now {
                    continue;
                }
                if u64_at(seen) == hash {
                    return Ok(Use::Replayed);
                }
                live.extend_from_slice(entry);
            }
            if live.len() >= SLOTS * ENTRY {
                return Ok(Use::Full);
            }
            live.extend_from_slice(&hash.to_le_bytes());
            live.extend_from_slice(&expires.to_le_bytes());
            if shared_data::set(&key, &live, Some(version))? {
                return Ok(Use::First);
            }
        }
        Err(Error::msg(
            "replay cache: the bucket kept changing under us",
        ))
    }
}

fn u64_at(bytes: &[u8]) -> u64 {
    bytes.try_into().map_or(0, u64::from_le_bytes)
}
