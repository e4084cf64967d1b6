//! Refreshing a session's tokens, once per session across every VM.
//!
//! Providers that rotate refresh tokens accept each one once: when two requests of one
//! browser (two tabs, a page and its XHRs, on any worker) both refresh, the second is
//! refused and, without coordination, signs the user out. So a refresh is claimed in
//! shared data first, under a slot named by the refresh token's fingerprint: a request
//! finding the claim in flight keeps the current ID token while it is valid (or gets 503
//! and retries), and one arriving after the refresh adopts its result, which stays in the
//! slot, sealed like the session cookie, for [`RESULT_TTL`] seconds.
//!
//! Slots are a fixed set ([`SLOTS`] keys), so shared data does not grow with sessions. A
//! slot held by another session's refresh in flight is not taken: that (rare) refresh then
//! goes ahead uncoordinated, as it would without this module.

use crate::config::Config;
use crate::crypto;
use crate::provider::{self, Provider};
use crate::session::{self, Session};
use crate::tokens::{self, Exchange, Expect};
use serde::{Deserialize, Serialize};
use std::rc::Rc;
use weir::shared_data;

/// Number of shared-data slots (base64url characters of the fingerprint: 64 × 4).
const SLOTS: u32 = 256;
/// Seconds a finished refresh stays adoptable by requests still carrying the old cookie.
const RESULT_TTL: u64 = 30;
/// Largest sealed session kept in a slot (bounds shared data to `SLOTS` × this).
const MAX_STORED: usize = 8 * 1024;
/// Compare-and-swap attempts before refreshing uncoordinated.
const ATTEMPTS: usize = 4;

/// What a refresh gave.
pub enum Refreshed {
    /// New tokens: the session and its sealed cookie value.
    Fresh(Session, String),
    /// Another request is refreshing this session right now.
    InFlight,
    /// No refresh token, or the provider refused or failed.
    Failed,
}

#[derive(Serialize, Deserialize)]
struct Slot {
    /// Fingerprint of the refresh token being (or having been) used.
    id: String,
    /// Random tag of the claiming request.
    tag: String,
    /// Unix time until which the claim (or its result) holds.
    until: u64,
    /// The refreshed session, sealed; `None` while in flight.
    sealed: Option<String>,
}

fn slot_key(cfg: &Config, id: &str) -> String {
    let digit = |c: Option<char>| {
        c.and_then(|c| crate::crypto::B64_ALPHABET.find(c))
            .unwrap_or(0) as u32
    };
    let mut chars = id.chars();
    let n = (digit(chars.next()) * 4 + digit(chars.next()) % 4) % SLOTS;
    format!(
        "openid-connect/{}/{}/refresh/{n}",
        cfg.cluster, cfg.client_id
    )
}

fn read(key: &str) -> Option<(Option<Slot>, u32)> {
    match shared_data::get(key) {
        Ok(Some((bytes, version))) => Some((serde_json::from_slice(&bytes).ok(), version)),
        Ok(None) => Some((None, 0)),
        Err(_) => None,
    }
}

fn write(key: &str, slot: &Slot, version: u32) -> bool {
    let Ok(bytes) = serde_json::to_vec(slot) else {
        return false;
    };
    shared_data::set(key, &bytes, (version != 0).then_some(version)).unwrap_or(false)
}

/// Refreshes `session` unless another request is doing it or has just done it.
pub async fn refresh(cfg: &Config, p: Rc<Provider>, session: &Session) -> Refreshed {
    let Some(refresh_token) = session.refresh_token.as_deref() else {
        return Refreshed::Failed;
    };
    let id = crypto::fingerprint(refresh_token);
    let key = slot_key(cfg, &id);
    let Ok(tag) = crypto::random_bytes::<9>().map(|b| crypto::b64(&b)) else {
        return Refreshed::Failed;
    };
    let now = provider::now();
    let in_flight_until = now.saturating_add(2 * cfg.timeout.as_secs() + 2);
    let mut claimed = false;
    for _ in 0..ATTEMPTS {
        let Some((slot, version)) = read(&key) else {
            break;
        };
        match slot {
            Some(s) if s.id == id && s.until > now => {
                return match s.sealed.and_then(|sealed| {
                    Some((session::open_session(cfg, &p.doc.issuer, &sealed)?, sealed))
                }) {
                    Some((fresh, sealed)) => Refreshed::Fresh(fresh, sealed),
                    None => Refreshed::InFlight,
                };
            }
            Some(s) if s.until > now && s.sealed.is_none() => break,
            _ => {}
        }
        let claim = Slot {
            id: id.clone(),
            tag: tag.clone(),
            until: in_flight_until,
            sealed: None,
        };
        if !write(&key, &claim, version) {
            continue;
        }
        match read(&key) {
            Some((Some(s), _)) if s.tag == tag => {
                claimed = true;
                break;
            }
            _ => continue,
        }
    }
    let result = exchange(cfg, p, session).await;
    if claimed {
        let now = provider::now();
        let stored = match &result {
            Refreshed::Fresh(_, sealed) if sealed.len() <= MAX_STORED => Slot {
                id,
                tag: tag.clone(),
                until: now + RESULT_TTL,
                sealed: Some(sealed.clone()),
            },
            // Released: a later request may try again.
            _ => Slot {
                id,
                tag: tag.clone(),
                until: 0,
                sealed: None,
            },
        };
        if let Some((Some(s), version)) = read(&key) {
            if s.tag == tag {
                write(&key, &stored, version);
            }
        }
    }
    result
}

/// The refresh grant itself: new tokens, validated, keeping the session's `sub`.
async fn exchange(cfg: &Config, p: Rc<Provider>, session: &Session) -> Refreshed {
    let (Some(refresh_token), Some(sub)) = (
        session.refresh_token.as_deref(),
        tokens::subject_of(&session.id_token),
    ) else {
        return Refreshed::Failed;
    };
    let grant = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    let tokens = match tokens::request(cfg, &p, &grant).await {
        Ok(t) => t,
        Err(Exchange::Refused(e)) => {
            log::info!("refresh refused: {e:?}");
            return Refreshed::Failed;
        }
        Err(Exchange::Unavailable(e)) => {
            log::warn!("refresh failed: {e}");
            return Refreshed::Failed;
        }
    };
    // Without a new ID token the old one cannot be extended.
    let Some(id_token) = tokens.id_token else {
        return Refreshed::Failed;
    };
    let issuer = p.doc.issuer.clone();
    let claims = match tokens::validate(cfg, p, &id_token, Expect::Subject(&sub)).await {
        Ok((claims, _)) => claims,
        Err(e) => {
            log::warn!("refreshed ID token invalid: {e}");
            return Refreshed::Failed;
        }
    };
    let fresh = Session {
        id_token,
        access_token: tokens.access_token.or_else(|| session.access_token.clone()),
        refresh_token: tokens
            .refresh_token
            .or_else(|| session.refresh_token.clone()),
        token_expires: claims.expires_at.map_or(0, |t| t.as_secs()),
        session_expires: session.session_expires,
    };
    match session::seal_session(cfg, &issuer, &fresh) {
        Ok(Some(sealed)) => Refreshed::Fresh(fresh, sealed),
        Ok(None) => {
            log::warn!("refreshed tokens are too large for the session cookie");
            Refreshed::Failed
        }
        Err(e) => {
            log::warn!("cannot seal the refreshed session: {e}");
            Refreshed::Failed
        }
    }
}
