//! The plugin's two cookies, both AES-256-GCM sealed (see [`crate::crypto`]):
//!
//! - the **login** cookie carries a login in progress (state, nonce, PKCE verifier, the URL
//!   to return to) for `login_timeout_seconds`, so the plugin keeps no per-login state;
//! - the **session** cookie carries the tokens. Sealed as one value, then split into chunks
//!   of [`CHUNK`] characters: `<name>=<count>.<part 0>`, `<name>-1=<part 1>`, … A missing,
//!   reordered or altered chunk makes the whole value fail authentication.
//!
//! Both are `Path=/; Secure; HttpOnly; SameSite=…`, which the `__Host-` prefix requires.

use crate::config::{Config, SameSite};
use crate::crypto;
use serde::{Deserialize, Serialize};
use weir::{Cookies, Result};

/// Characters of sealed value per session cookie: with the name and attributes each
/// `Set-Cookie` stays under the 4096 bytes browsers keep.
pub const CHUNK: usize = 3800;
/// At most this many session chunks (~38 KB), far above what ID plus refresh tokens need.
pub const MAX_CHUNKS: usize = 10;

/// What a sealed login cookie is (version 2: bound to cookie name, client and issuer).
const LOGIN_V2: &str = "openid-connect login v2";
/// What a sealed session is.
const SESSION_V2: &str = "openid-connect session v2";

/// A login in progress.
#[derive(Debug, Serialize, Deserialize)]
pub struct Login {
    /// The `state` sent to the provider.
    pub state: String,
    /// The ID token's expected `nonce`.
    pub nonce: String,
    /// PKCE `code_verifier`.
    pub verifier: String,
    /// Same-origin path (with query) to return to.
    pub return_to: String,
    /// Unix time after which the login is void.
    pub expires: u64,
}

/// A signed-in user's tokens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    /// The validated ID token.
    pub id_token: String,
    /// The access token, when the provider issued one.
    #[serde(default)]
    pub access_token: Option<String>,
    /// The refresh token, when the provider issued one.
    #[serde(default)]
    pub refresh_token: Option<String>,
    /// The ID token's `exp`.
    pub token_expires: u64,
    /// Unix time the session ends, refresh or not.
    pub session_expires: u64,
}

/// Associated data of a cookie's AES-GCM seal: what the cookie is, its name, the client and
/// the issuer. A value sealed for another purpose, cookie, client or provider (the same key
/// configured twice) fails to open.
fn bound_to(cfg: &Config, issuer: &str, purpose: &str, name: &str) -> Vec<u8> {
    [purpose, name, cfg.client_id.as_str(), issuer]
        .join("\n")
        .into_bytes()
}

/// The one value of cookie `name`; `None` when absent or sent more than once (a second
/// copy could be a planted cookie from a sibling domain).
fn only(cookies: &Cookies, name: &str) -> Option<String> {
    let mut values = cookies.iter().filter(|(n, _)| *n == name).map(|(_, v)| v);
    let first = values.next()?;
    values.next().is_none().then(|| first.to_string())
}

/// The login cookie's content, if it opens and has not expired.
pub fn read_login(cfg: &Config, issuer: &str, cookies: &Cookies, now: u64) -> Option<Login> {
    let name = cfg.login_cookie();
    let sealed = only(cookies, &name)?;
    let plain = crypto::open(
        &cfg.session_key,
        &bound_to(cfg, issuer, LOGIN_V2, &name),
        &sealed,
    )?;
    let login: Login = serde_json::from_slice(&plain).ok()?;
    (login.expires > now).then_some(login)
}

/// The `Set-Cookie` value that stores `login`.
pub fn login_cookie(cfg: &Config, issuer: &str, login: &Login) -> Result<String> {
    let name = cfg.login_cookie();
    let sealed = crypto::seal(
        &cfg.session_key,
        &bound_to(cfg, issuer, LOGIN_V2, &name),
        &serde_json::to_vec(login)?,
    )?;
    // Always Lax: the provider's redirect back is a cross-site top-level navigation.
    Ok(cookie(&name, &sealed, cfg.login_timeout, SameSite::Lax))
}

/// The session, if every chunk is present, it opens and has not ended.
pub fn read_session(cfg: &Config, issuer: &str, cookies: &Cookies, now: u64) -> Option<Session> {
    let name = cfg.session_cookie();
    let first = only(cookies, &name)?;
    let (count, part) = first.split_once('.')?;
    let count: usize = count
        .parse()
        .ok()
        .filter(|c| (1..=MAX_CHUNKS).contains(c))?;
    let mut sealed = part.to_string();
    for i in 1..count {
        sealed.push_str(&only(cookies, &format!("{name}-{i}"))?);
    }
    let aad = bound_to(cfg, issuer, SESSION_V2, &name);
    let session = crate::opened::get_or_open(&cfg.session_key, &aad, &sealed, now, || {
        serde_json::from_slice(&crypto::open(&cfg.session_key, &aad, &sealed)?).ok()
    })?;
    (session.session_expires > now).then_some(session)
}

/// The session sealed as the session cookie's value (before splitting into chunks); `None`
/// when it would need more than [`MAX_CHUNKS`] cookies.
pub fn seal_session(cfg: &Config, issuer: &str, session: &Session) -> Result<Option<String>> {
    let name = cfg.session_cookie();
    let sealed = crypto::seal(
        &cfg.session_key,
        &bound_to(cfg, issuer, SESSION_V2, &name),
        &serde_json::to_vec(session)?,
    )?;
    Ok((sealed.len().div_ceil(CHUNK) <= MAX_CHUNKS).then_some(sealed))
}

/// Opens what [`seal_session`] made.
pub fn open_session(cfg: &Config, issuer: &str, sealed: &str) -> Option<Session> {
    let plain = crypto::open(
        &cfg.session_key,
        &bound_to(cfg, issuer, SESSION_V2, &cfg.session_cookie()),
        sealed,
    )?;
    serde_json::from_slice(&plain).ok()
}

/// `Set-Cookie` values that store a sealed session (from [`seal_session`]), plus deletions
/// of chunks the client holds beyond the new count (left over from a larger session).
pub fn session_cookies(
    cfg: &Config,
    sealed: &str,
    session_expires: u64,
    cookies: &Cookies,
    now: u64,
) -> Vec<String> {
    let parts: Vec<&str> = sealed
        .as_bytes()
        .chunks(CHUNK)
        .map(|c| std::str::from_utf8(c).unwrap_or_default())
        .collect();
    let name = cfg.session_cookie();
    let max_age = session_expires.saturating_sub(now);
    let mut out = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            out.push(cookie(
                &name,
                &format!("{}.{part}", parts.len()),
                max_age,
                cfg.same_site,
            ));
        } else {
            out.push(cookie(&format!("{name}-{i}"), part, max_age, cfg.same_site));
        }
    }
    for i in parts.len()..=MAX_CHUNKS {
        let chunk = format!("{name}-{i}");
        if cookies.get(&chunk).is_some() {
            out.push(clear(&chunk));
        }
    }
    out
}

/// `Set-Cookie` values that delete every plugin cookie the client sent.
pub fn clear_all(cfg: &Config, cookies: &Cookies) -> Vec<String> {
    let mut names: Vec<&str> = cookies
        .iter()
        .map(|(n, _)| n)
        .filter(|n| is_ours(cfg, n))
        .collect();
    names.sort_unstable();
    names.dedup();
    names.into_iter().map(clear).collect()
}

/// `Set-Cookie` values that delete the session cookies the client sent, keeping a login
/// in progress.
pub fn clear_session(cfg: &Config, cookies: &Cookies) -> Vec<String> {
    let login = cfg.login_cookie();
    let mut names: Vec<&str> = cookies
        .iter()
        .map(|(n, _)| n)
        .filter(|n| is_ours(cfg, n) && *n != login)
        .collect();
    names.sort_unstable();
    names.dedup();
    names.into_iter().map(clear).collect()
}

/// The `Set-Cookie` value that deletes the login cookie.
pub fn clear_login(cfg: &Config) -> String {
    clear(&cfg.login_cookie())
}

/// Whether cookie `name` belongs to the plugin (and must never reach the upstream).
pub fn is_ours(cfg: &Config, name: &str) -> bool {
    name.strip_prefix(cfg.cookie_prefix.as_str())
        .is_some_and(|rest| rest.starts_with('-'))
}

/// The `cookie` header without the plugin's cookies; `None` when nothing is left.
pub fn without_ours(cfg: &Config, cookies: &Cookies) -> Option<String> {
    let kept: Vec<String> = cookies
        .iter()
        .filter(|(n, _)| !is_ours(cfg, n))
        .map(|(n, v)| format!("{n}={v}"))
        .collect();
    (!kept.is_empty()).then(|| kept.join("; "))
}

fn cookie(name: &str, value: &str, max_age: u64, same_site: SameSite) -> String {
    let same_site = match same_site {
        SameSite::Lax => "Lax",
        SameSite::Strict => "Strict",
    };
    format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite={same_site}; Max-Age={max_age}")
}

fn clear(name: &str) -> String {
    format!("{name}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0")
}
