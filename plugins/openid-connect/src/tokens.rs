//! The token endpoint (code exchange, refresh) and ID token validation.
//!
//! Validation is everything OpenID Connect Core §3.1.3.7 asks of a confidential client: the
//! signature by the key the `kid` names (an unknown `kid` refetches the JWKS once, rate
//! limited), `alg` in the allow-list (never `none` or HMAC), `iss` equal to the discovered
//! issuer, `aud` containing the client id, `azp` equal to it when present and required when
//! there are several audiences, `exp` required and in the future, `nbf` and `iat` not in the
//! future (with the configured skew), `iat` and `sub` present, and `nonce` equal to the one
//! sent (on login; a refreshed token must keep the session's `sub` instead).

use crate::config::{ClientAuth, Config};
use crate::crypto;
use crate::provider::{self, Provider};
use serde_json::Value;
use std::rc::Rc;
use weir::jwt::Claims;
use weir::{Call, Error, Result};

/// Largest token endpoint response parsed: three tokens far larger than a session cookie
/// could hold.
const MAX_TOKEN_RESPONSE_BYTES: usize = 128 * 1024;

/// A token endpoint response.
#[derive(Debug)]
pub struct Tokens {
    /// `id_token` (required on login, optional on refresh).
    pub id_token: Option<String>,
    /// `access_token`.
    pub access_token: Option<String>,
    /// `refresh_token`.
    pub refresh_token: Option<String>,
}

/// Why the token endpoint gave no tokens.
#[derive(Debug)]
pub enum Exchange {
    /// The provider answered with an OAuth error (`invalid_grant`: a used or unknown code).
    Refused(String),
    /// The provider could not be reached or answered something else.
    Unavailable(Error),
}

/// Posts `form` (a grant) to the token endpoint with the client's credentials.
pub async fn request(
    cfg: &Config,
    p: &Provider,
    grant: &[(&str, &str)],
) -> std::result::Result<Tokens, Exchange> {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.extend_pairs(grant);
    let url = &p.doc.token_endpoint;
    let mut call = Call::post(cfg.cluster.as_str(), provider::url_path_query(url))
        .authority(provider::authority(cfg, url))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json")
        .timeout(cfg.timeout);
    match cfg.client_auth {
        ClientAuth::ClientSecretBasic => {
            // RFC 6749 §2.3.1: each part form-encoded before joining and base64.
            let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let pair = format!("{}:{}", enc(&cfg.client_id), enc(&cfg.client_secret));
            call = call.header(
                "authorization",
                format!("Basic {}", base64_std(pair.as_bytes())),
            );
        }
        ClientAuth::ClientSecretPost => {
            form.append_pair("client_id", &cfg.client_id);
            form.append_pair("client_secret", &cfg.client_secret);
        }
    }
    let res = call
        .body(form.finish())
        .send()
        .await
        .map_err(Exchange::Unavailable)?;
    if res.body.len() > MAX_TOKEN_RESPONSE_BYTES {
        return Err(Exchange::Unavailable(Error::msg(format!(
            "token endpoint answered {} bytes, more than {MAX_TOKEN_RESPONSE_BYTES}",
            res.body.len()
        ))));
    }
    let body: Option<Value> = serde_json::from_slice(&res.body).ok();
    let field = |name: &str| {
        body.as_ref()
            .and_then(|b| b.get(name))
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    match res.status {
        200 => Ok(Tokens {
            id_token: field("id_token"),
            access_token: field("access_token"),
            refresh_token: field("refresh_token"),
        }),
        400 | 401 if field("error").is_some() => {
            Err(Exchange::Refused(field("error").unwrap_or_default()))
        }
        status => Err(Exchange::Unavailable(Error::msg(format!(
            "token endpoint answered {status}"
        )))),
    }
}

/// Standard base64 with padding, as HTTP Basic wants.
fn base64_std(bytes: &[u8]) -> String {
    use ct_codecs::{Base64, Encoder};
    Base64::encode_to_string(bytes).unwrap_or_default()
}

/// What the ID token must match besides the provider's keys and rules.
#[derive(Debug, Clone, Copy)]
pub enum Expect<'a> {
    /// A login: `nonce` must equal the one sent.
    Nonce(&'a str),
    /// A refresh: `sub` must stay the same.
    Subject(&'a str),
}

/// Validates `token`; on an unknown `kid` refetches the JWKS (rate-limited) and tries again.
/// Returns the claims and the provider used (newer after a refetch).
pub async fn validate(
    cfg: &Config,
    p: Rc<Provider>,
    token: &str,
    expect: Expect<'_>,
) -> Result<(Claims, Rc<Provider>)> {
    let mut p = p;
    let kid = header_kid(token);
    if let Some(kid) = &kid {
        if !p.verifier.has_kid(kid) {
            match provider::refetch_jwks(cfg, &p).await {
                Some(newer) => p = newer,
                None => {
                    return Err(Error::msg(format!(
                        "ID token signed with unknown key {kid:?}"
                    )))
                }
            }
        }
    }
    let claims = p.verifier.verify_at(token, provider::now())?;
    check_claims(cfg, &claims, expect)?;
    Ok((claims, p))
}

fn check_claims(cfg: &Config, claims: &Claims, expect: Expect<'_>) -> Result<()> {
    let azp = claims.custom.get("azp").and_then(Value::as_str);
    let audiences = claims
        .audiences
        .clone()
        .map(|a| a.into_set().len())
        .unwrap_or(0);
    match azp {
        Some(azp) if azp != cfg.client_id => {
            return Err(Error::msg("ID token azp names another client"))
        }
        None if audiences > 1 => {
            return Err(Error::msg("ID token has several audiences and no azp"))
        }
        _ => {}
    }
    if claims.issued_at.is_none() {
        return Err(Error::msg("ID token has no iat"));
    }
    let Some(sub) = claims.subject.as_deref() else {
        return Err(Error::msg("ID token has no sub"));
    };
    match expect {
        Expect::Nonce(want) => {
            let got = claims.nonce.as_deref().unwrap_or_default();
            if !crypto::same(got.as_bytes(), want.as_bytes()) {
                return Err(Error::msg("ID token nonce does not match the login"));
            }
        }
        Expect::Subject(want) if sub != want => {
            return Err(Error::msg("refreshed ID token names another subject"))
        }
        Expect::Subject(_) => {}
    }
    Ok(())
}

/// The `kid` of a compact JWS header, if it has one.
fn header_kid(token: &str) -> Option<String> {
    let header = crypto::unb64(token.split('.').next()?)?;
    let header: Value = serde_json::from_slice(&header).ok()?;
    header.get("kid")?.as_str().map(str::to_string)
}

/// The `sub` of a token already validated once (read from the session).
pub fn subject_of(token: &str) -> Option<String> {
    let payload = crypto::unb64(token.split('.').nth(1)?)?;
    let payload: Value = serde_json::from_slice(&payload).ok()?;
    payload.get("sub")?.as_str().map(str::to_string)
}
