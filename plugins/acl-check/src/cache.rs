//! The decision cache (`decision_cache_seconds`): a grant reused for requests that send the
//! policy server exactly the same attributes, shared by every VM through shared data.
//!
//! The key is the SHA-256 of everything the policy server would see (each sent header name
//! and value, in order) and of this configuration's identity (cluster, path, the upstream
//! headers it copies), every field length-prefixed so no two inputs serialise alike. Shared
//! data holds a fixed number of slots (`decision_cache_entries`) picked by the key: a slot
//! keeps the latest decision stored in it, with its full key, so two keys sharing a slot
//! miss each other instead of swapping grants. What a slot holds is read as untrusted input
//! (any module of the VM id can write it): anything malformed, expired, longer-lived than
//! this configuration allows, or not a grant this configuration could have stored is a miss.

use crate::config::Config;
use crate::{is_compact_jws, Grant};
use weir::{shared_data, CallResponse, HeaderValue};

/// Leads every stored entry; a format change bumps it, so old entries read as misses.
const MAGIC: &[u8; 4] = b"acd1";
/// The largest entry stored: bounds shared data to `decision_cache_entries` times this.
pub const MAX_ENTRY_BYTES: usize = 8 * 1024;

/// A request's cache key: SHA-256 over the configuration identity and the sent attributes.
pub struct Key([u8; 32]);

impl Key {
    pub fn of(cfg: &Config, sent: &[(&str, String)]) -> Key {
        let mut hash = hmac_sha256::Hash::new();
        let mut field = |bytes: &[u8]| {
            hash.update((bytes.len() as u64).to_le_bytes());
            hash.update(bytes);
        };
        field(b"acl-check decision v1");
        field(cfg.acl_server.as_bytes());
        field(cfg.path.as_bytes());
        field(&(cfg.allowed_upstream_headers.len() as u64).to_le_bytes());
        for name in &cfg.allowed_upstream_headers {
            field(name.as_str().as_bytes());
        }
        field(&(sent.len() as u64).to_le_bytes());
        for (name, value) in sent {
            field(name.as_bytes());
            field(value.as_bytes());
        }
        Key(hash.finalize())
    }

    /// The shared-data key of this key's slot (in the plugin's namespace).
    fn slot(&self, cfg: &Config) -> String {
        let mut first = [0u8; 8];
        first.copy_from_slice(&self.0[..8]);
        let slots = cfg.decision_cache_entries.max(1);
        format!("acl-check/decision/{}", u64::from_le_bytes(first) % slots)
    }
}

/// The grant stored under `key`, if one is there and may still be used at `now`.
pub fn lookup(cfg: &Config, key: &Key, now: u64) -> Option<Grant> {
    let (bytes, _) = shared_data::get(&key.slot(cfg)).ok()??;
    let (stored_key, until, grant) = decode(&bytes)?;
    let fresh = until > now && until <= now.saturating_add(cfg.decision_cache_seconds);
    let valid = is_compact_jws(&grant.token, cfg.max_token_bytes)
        && grant.upstream_headers.iter().all(|(name, value)| {
            cfg.allowed_upstream_headers
                .iter()
                .any(|a| a.as_str() == name)
                && HeaderValue::new(value.as_str()).is_ok()
        });
    (stored_key == key.0 && fresh && valid).then_some(grant)
}

/// Stores `grant` under `key` when the policy server's answer may be reused: for the
/// shortest of `decision_cache_seconds`, the answer's `max-age` and the grant's `exp`.
pub fn store(cfg: &Config, key: &Key, res: &CallResponse, grant: &Grant, now: u64) {
    let Some(until) = reusable_until(cfg, res, &grant.token, now) else {
        return;
    };
    let Some(entry) = encode(key, until, grant) else {
        return;
    };
    if let Err(err) = shared_data::set(&key.slot(cfg), &entry, None) {
        log::warn!("decision not cached: {err}");
    }
}

/// Until when (Unix seconds) the grant may be reused; `None`: not at all.
fn reusable_until(cfg: &Config, res: &CallResponse, token: &str, now: u64) -> Option<u64> {
    let seconds = match server_max_age(res) {
        Reuse::Never => return None,
        Reuse::UpTo(max_age) => max_age.min(cfg.decision_cache_seconds),
        Reuse::Unlimited => cfg.decision_cache_seconds,
    };
    // Strict: a grant whose expiry cannot be read is never reused.
    let until = now.saturating_add(seconds).min(grant_exp(token)?);
    (until > now).then_some(until)
}

enum Reuse {
    Unlimited,
    UpTo(u64),
    Never,
}

/// The policy server's `Cache-Control` on its 200: `no-store` and `no-cache` forbid reuse,
/// `max-age=N` limits it (the smallest when repeated; an unreadable one forbids it, as
/// RFC 9111 treats it as stale). `private`, `public` and the rest change nothing: every
/// entry only ever serves requests the policy server could not tell apart.
fn server_max_age(res: &CallResponse) -> Reuse {
    let mut reuse = Reuse::Unlimited;
    let values = res
        .headers
        .iter()
        .filter(|(name, _)| name.eq_ignore_ascii_case("cache-control"));
    for directive in values.flat_map(|(_, value)| value.split(',')) {
        let (name, arg) = directive.split_once('=').unwrap_or((directive, ""));
        let name = name.trim();
        if name.eq_ignore_ascii_case("no-store") || name.eq_ignore_ascii_case("no-cache") {
            return Reuse::Never;
        }
        if name.eq_ignore_ascii_case("max-age") {
            let Ok(seconds) = arg.trim().trim_matches('"').parse::<u64>() else {
                return Reuse::Never;
            };
            reuse = match reuse {
                Reuse::UpTo(shorter) if shorter < seconds => Reuse::UpTo(shorter),
                _ => Reuse::UpTo(seconds),
            };
        }
    }
    reuse
}

/// The grant's `exp` (integer seconds), read without verifying it: the value only shortens
/// the reuse, and check-header verifies the grant on every request anyway.
fn grant_exp(token: &str) -> Option<u64> {
    use ct_codecs::{Base64UrlSafeNoPadding, Decoder};
    #[derive(serde::Deserialize)]
    struct Expiry {
        exp: Option<u64>,
    }
    impl weir::config::Validate for Expiry {}
    let payload = token.split('.').nth(1)?;
    let json = Base64UrlSafeNoPadding::decode_to_vec(payload, None).ok()?;
    weir::parse_config::<Expiry>(&json).ok()?.exp
}

/// `MAGIC`, key, until (u64 LE), token (u16 LE length), header count (u8), then each
/// header's name (u8 length) and value (u16 length). `None` when it would not fit.
fn encode(key: &Key, until: u64, grant: &Grant) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(64 + grant.token.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&key.0);
    out.extend_from_slice(&until.to_le_bytes());
    out.extend_from_slice(&u16::try_from(grant.token.len()).ok()?.to_le_bytes());
    out.extend_from_slice(grant.token.as_bytes());
    out.push(u8::try_from(grant.upstream_headers.len()).ok()?);
    for (name, value) in &grant.upstream_headers {
        out.push(u8::try_from(name.len()).ok()?);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&u16::try_from(value.len()).ok()?.to_le_bytes());
        out.extend_from_slice(value.as_bytes());
    }
    (out.len() <= MAX_ENTRY_BYTES).then_some(out)
}

/// The inverse of [`encode`]; `None` on anything else, including trailing bytes.
fn decode(bytes: &[u8]) -> Option<([u8; 32], u64, Grant)> {
    let mut input = Reader(bytes);
    if input.take(4)? != MAGIC {
        return None;
    }
    let key: [u8; 32] = input.take(32)?.try_into().ok()?;
    let until = u64::from_le_bytes(input.take(8)?.try_into().ok()?);
    let token = input.text(2)?;
    let count = input.take(1)?[0];
    let mut upstream_headers = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        upstream_headers.push((input.text(1)?, input.text(2)?));
    }
    input.0.is_empty().then_some((
        key,
        until,
        Grant {
            token,
            upstream_headers,
        },
    ))
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }

    /// UTF-8 text after a little-endian length of `width` bytes (1 or 2).
    fn text(&mut self, width: usize) -> Option<String> {
        let len = match self.take(width)? {
            [n] => usize::from(*n),
            [lo, hi] => usize::from(u16::from_le_bytes([*lo, *hi])),
            _ => return None,
        };
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }
}
