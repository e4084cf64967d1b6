//! Single use of a login's `state`, across every VM: a callback is only exchanged at the
//! token endpoint after its state was recorded here as used, so a replayed callback (the
//! same login cookie and query again, from this browser or a stolen copy) is refused
//! without calling the provider, and each login cookie costs at most one token call.
//!
//! Used states live in shared data until their login cookie would have expired, in
//! 64 keys (by the first character of the state's fingerprint) so each write copies
//! a small list. Each entry carries a random tag: two VMs claiming one state at once both
//! write, read back, and only the one whose tag is stored wins.

use crate::config::Config;
use crate::crypto;
use weir::{shared_data, Error, Result};

/// Used states kept per shard before new logins are refused (a flood of completed logins
/// then fails closed with 503 instead of forgetting states that could be replayed).
const MAX_PER_SHARD: usize = 4096;
/// Attempts at a compare-and-swap write before giving up (another VM kept winning).
const ATTEMPTS: usize = 8;

/// What [`claim`] decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Claim {
    /// First use: go on with the code exchange.
    First,
    /// This state was used before: refuse.
    Replayed,
}

fn shard_key(cfg: &Config, fingerprint: &str) -> String {
    let shard = fingerprint
        .chars()
        .next()
        .filter(|c| crypto::B64_ALPHABET.contains(*c))
        .unwrap_or('_');
    format!(
        "openid-connect/{}/{}/used-states/{shard}",
        cfg.cluster, cfg.client_id
    )
}

/// One used state: fingerprint, expiry (Unix seconds), tag of the VM that recorded it.
struct Entry {
    fingerprint: String,
    expires: u64,
    tag: String,
}

fn parse(bytes: &[u8], now: u64) -> Vec<Entry> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter_map(|line| {
            let mut parts = line.split(' ');
            let (fingerprint, expires, tag) =
                (parts.next()?, parts.next()?.parse().ok()?, parts.next()?);
            Some(Entry {
                fingerprint: fingerprint.into(),
                expires,
                tag: tag.into(),
            })
        })
        .filter(|e| e.expires > now)
        .collect()
}

fn render(entries: &[Entry]) -> String {
    entries
        .iter()
        .map(|e| format!("{} {} {}\n", e.fingerprint, e.expires, e.tag))
        .collect()
}

/// Records `state` as used until `expires`; [`Claim::Replayed`] if it already was. An
/// `Err` (shared data unusable or full) means the callback must fail closed.
pub fn claim(cfg: &Config, state: &str, expires: u64, now: u64) -> Result<Claim> {
    let fingerprint = crypto::fingerprint(state);
    let key = shard_key(cfg, &fingerprint);
    let tag = crypto::b64(&crypto::random_bytes::<9>()?);
    for _ in 0..ATTEMPTS {
        let (mut entries, version) = match shared_data::get(&key)? {
            Some((bytes, version)) => (parse(&bytes, now), Some(version)),
            None => (Vec::new(), None),
        };
        if entries.iter().any(|e| e.fingerprint == fingerprint) {
            return Ok(Claim::Replayed);
        }
        if entries.len() >= MAX_PER_SHARD {
            return Err(Error::msg(
                "too many logins completed recently to remember them all",
            ));
        }
        entries.push(Entry {
            fingerprint: fingerprint.clone(),
            expires,
            tag: tag.clone(),
        });
        if !shared_data::set(&key, render(&entries).as_bytes(), version)? {
            continue;
        }
        // Read back: a first write (no version to compare) can race with another VM's.
        let stored = shared_data::get(&key)?
            .map(|(bytes, _)| parse(&bytes, now))
            .unwrap_or_default();
        match stored.iter().find(|e| e.fingerprint == fingerprint) {
            Some(e) if e.tag == tag => return Ok(Claim::First),
            Some(_) => return Ok(Claim::Replayed),
            None => continue,
        }
    }
    Err(Error::msg(
        "could not record the login state in shared data",
    ))
}
