//! The cryptography the flow needs: WASI randomness, AES-256-GCM sealing of cookie values,
//! PKCE's S256 challenge, base64url and constant-time comparison.
//!
//! A sealed value is `base64url(iv ‖ ciphertext ‖ tag)` with a fresh 96-bit IV each time and
//! associated data naming what the value is for (see `session.rs`), so a login cookie never
//! opens as a session, nor a cookie of one client or provider for another.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use ct_codecs::{Base64UrlSafeNoPadding, Decoder, Encoder};
use weir::{Error, Result};

const IV_LEN: usize = 12;

/// The base64url alphabet, in value order.
pub const B64_ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// `n` random bytes from the host (WASI `random_get`).
pub fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut buf = [0u8; N];
    getrandom::getrandom(&mut buf)
        .map_err(|e| Error::msg(format!("the host gave no randomness: {e}")))?;
    Ok(buf)
}

/// 32 random bytes as base64url: state, nonce and PKCE verifier (43 characters, 256 bits).
pub fn random_token() -> Result<String> {
    Ok(b64(&random_bytes::<32>()?))
}

/// base64url without padding.
pub fn b64(bytes: &[u8]) -> String {
    Base64UrlSafeNoPadding::encode_to_string(bytes).unwrap_or_default()
}

/// Decodes base64url without padding; `None` on anything else.
pub fn unb64(text: &str) -> Option<Vec<u8>> {
    Base64UrlSafeNoPadding::decode_to_vec(text, None).ok()
}

/// PKCE `code_challenge` for `verifier` (method S256, RFC 7636 §4.2).
pub fn s256(verifier: &str) -> String {
    b64(&hmac_sha256::Hash::hash(verifier.as_bytes()))
}

/// Equality that takes the same time wherever the inputs differ (lengths are not secret).
pub fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A 32-byte key from 64 hex characters or base64url (padding allowed).
pub fn parse_key(text: &str) -> Option<[u8; 32]> {
    let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        (0..32)
            .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok())
            .collect::<Option<Vec<u8>>>()?
    } else {
        let text = text
            .trim_end_matches('=')
            .replace('+', "-")
            .replace('/', "_");
        unb64(&text)?
    };
    bytes.try_into().ok()
}

/// Encrypts and authenticates `plain`, bound to `aad`.
pub fn seal(key: &[u8; 32], aad: &[u8], plain: &[u8]) -> Result<String> {
    let cipher =
        Aes256Gcm::new_from_slice(key).map_err(|_| Error::msg("bad AES-256 key length"))?;
    let iv = random_bytes::<IV_LEN>()?;
    let nonce = Nonce::try_from(&iv[..]).map_err(|_| Error::msg("bad GCM nonce length"))?;
    let sealed = cipher
        .encrypt(&nonce, Payload { msg: plain, aad })
        .map_err(|_| Error::msg("AES-GCM encryption failed"))?;
    let mut out = iv.to_vec();
    out.extend_from_slice(&sealed);
    Ok(b64(&out))
}

/// Opens a value [`seal`] made with `aad`; `None` when it was altered, truncated, made
/// with another key or other associated data.
pub fn open(key: &[u8; 32], aad: &[u8], sealed: &str) -> Option<Vec<u8>> {
    let bytes = unb64(sealed)?;
    if bytes.len() < IV_LEN + 16 {
        return None;
    }
    let (iv, body) = bytes.split_at(IV_LEN);
    let cipher = Aes256Gcm::new_from_slice(key).ok()?;
    let nonce = Nonce::try_from(iv).ok()?;
    cipher.decrypt(&nonce, Payload { msg: body, aad }).ok()
}

/// A short, non-reversible name for a secret (a login `state`, a refresh token) to use as a
/// shared-data key: base64url of the first 16 bytes of its SHA-256.
pub fn fingerprint(secret: &str) -> String {
    b64(&hmac_sha256::Hash::hash(secret.as_bytes())[..16])
}
