//! The callback at `redirect_path`: the provider sends the browser back with a code, which
//! becomes a session once the login cookie, `state`, `iss`, single use of the state, the
//! code exchange and the ID token all check out.
//!
//! A refused callback never touches the session cookie: a page of another site can send a
//! browser to the callback with anything in the query, and must not sign the user out. The
//! login cookie is cleared only once its `state` matched (that login is then used up).

use crate::config::Config;
use crate::crypto;
use crate::flow::{host_not_allowed, redirect, redirect_uri, safe_return};
use crate::login_once::{self, Claim};
use crate::provider::{self, Provider};
use crate::session::{self, Session};
use crate::tokens::{self, Exchange, Expect};
use std::rc::Rc;
use weir::metrics::Counter;
use weir::{Cookies, Flow, LocalReply, RequestHeaders, Result};

static LOGIN_COMPLETED: Counter = Counter::new("openid_connect.login_completed");
static LOGIN_REFUSED: Counter = Counter::new("openid_connect.login_refused");

/// Whether a refusal also ends the login in progress.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Login {
    /// The callback did not prove it belongs to the login: the login cookie stays.
    Keep,
    /// The login's state matched and is used up: its cookie goes.
    End,
}

fn refuse(cfg: &Config, status: u16, why: &str, login: Login) -> Flow {
    log::info!("login refused: {why}");
    LOGIN_REFUSED.inc();
    let mut reply = LocalReply::new(status)
        .header("cache-control", "no-store")
        .body(match status {
            503 => "the identity provider is not reachable; try signing in again shortly\n",
            500 => "sign-in failed: the provider's tokens do not fit in a session cookie; ask the site's operator\n",
            _ => "sign-in failed; go back to the page you wanted and try again\n",
        })
        .details("openid_connect_login_refused");
    if status == 503 {
        reply = reply.header("retry-after", cfg.retry_after.to_string());
    }
    if login == Login::End {
        reply = reply.header("set-cookie", session::clear_login(cfg));
    }
    reply.into()
}

pub async fn callback(
    cfg: &Config,
    p: Rc<Provider>,
    req: &RequestHeaders,
    path: &str,
    cookies: &Cookies,
) -> Result<Flow> {
    let now = provider::now();
    let Some(login) = session::read_login(cfg, &p.doc.issuer, cookies, now) else {
        return Ok(refuse(
            cfg,
            400,
            "no valid login cookie (expired, altered or from another browser)",
            Login::Keep,
        ));
    };
    let query = weir::Query::from_path(path);
    let state = query.get("state").unwrap_or_default();
    if query.get_all("state").count() != 1
        || !crypto::same(state.as_bytes(), login.state.as_bytes())
    {
        return Ok(refuse(
            cfg,
            400,
            "state does not match the login",
            Login::Keep,
        ));
    }
    // RFC 9207: a provider that names itself must be ours (defeats IdP mix-up).
    if query.get("iss").is_some_and(|iss| iss != p.doc.issuer) {
        return Ok(refuse(
            cfg,
            400,
            "callback iss names another provider",
            Login::End,
        ));
    }
    match login_once::claim(cfg, &login.state, login.expires, now) {
        Ok(Claim::First) => {}
        Ok(Claim::Replayed) => {
            return Ok(refuse(
                cfg,
                400,
                "this login was already used (replayed callback)",
                Login::End,
            ))
        }
        Err(err) => {
            return Ok(refuse(
                cfg,
                503,
                &format!("cannot record the login as used: {err}"),
                Login::Keep,
            ))
        }
    }
    if let Some(err) = query.get("error") {
        return Ok(refuse(
            cfg,
            403,
            &format!("provider answered error={err:?}"),
            Login::End,
        ));
    }
    let Some(code) = query.get("code").filter(|c| !c.is_empty()) else {
        return Ok(refuse(cfg, 400, "callback without code", Login::End));
    };
    let Some(redirect_uri) = redirect_uri(cfg, req)? else {
        return Ok(host_not_allowed());
    };
    let grant = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri.as_str()),
        ("code_verifier", login.verifier.as_str()),
    ];
    let tokens = match tokens::request(cfg, &p, &grant).await {
        Ok(t) => t,
        Err(Exchange::Refused(error)) => {
            return Ok(refuse(
                cfg,
                401,
                &format!("token endpoint refused the code: {error:?}"),
                Login::End,
            ))
        }
        Err(Exchange::Unavailable(err)) => {
            return Ok(refuse(
                cfg,
                503,
                &format!("token endpoint unavailable: {err}"),
                Login::End,
            ))
        }
    };
    let Some(id_token) = tokens.id_token else {
        return Ok(refuse(
            cfg,
            401,
            "token response without id_token",
            Login::End,
        ));
    };
    let issuer = p.doc.issuer.clone();
    let claims = match tokens::validate(cfg, p, &id_token, Expect::Nonce(&login.nonce)).await {
        Ok((claims, _)) => claims,
        Err(err) => {
            return Ok(refuse(
                cfg,
                401,
                &format!("ID token invalid: {err}"),
                Login::End,
            ))
        }
    };
    let session = Session {
        id_token,
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
        token_expires: claims.expires_at.map_or(0, |t| t.as_secs()),
        session_expires: now.saturating_add(cfg.session_lifetime),
    };
    let Some(sealed) = session::seal_session(cfg, &issuer, &session)? else {
        return Ok(refuse(
            cfg,
            500,
            "the tokens are too large for the session cookie; ask the provider for fewer scopes or claims",
            Login::End,
        ));
    };
    LOGIN_COMPLETED.inc();
    let mut reply =
        redirect(&safe_return(cfg, &login.return_to)).details("openid_connect_signed_in");
    for c in session::session_cookies(cfg, &sealed, session.session_expires, cookies, now) {
        reply = reply.header("set-cookie", c);
    }
    Ok(reply.header("set-cookie", session::clear_login(cfg)).into())
}
