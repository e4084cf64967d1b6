//! What happens to one request: pass through, start a login, finish one at the callback,
//! sign out, or forward an authenticated request (refreshing its tokens first when due).

use crate::config::{Config, ForwardToken};
use crate::crypto;
use crate::provider::{self, Known, Provider};
use crate::session::{self, Login, Session};
use crate::tokens::{self, Exchange, Expect};
use std::cell::RefCell;
use std::rc::Rc;
use weir::metrics::Counter;
use weir::{Cookies, Flow, LocalReply, RequestHeaders, Result, Shared};

static FORWARDED: Counter = Counter::new("openid_connect.forwarded");
static LOGIN_STARTED: Counter = Counter::new("openid_connect.login_started");
static LOGIN_COMPLETED: Counter = Counter::new("openid_connect.login_completed");
static LOGIN_REFUSED: Counter = Counter::new("openid_connect.login_refused");
static REFRESHED: Counter = Counter::new("openid_connect.refreshed");
static UNAUTHENTICATED: Counter = Counter::new("openid_connect.unauthenticated");
static PROVIDER_UNAVAILABLE: Counter = Counter::new("openid_connect.provider_unavailable");

/// `Set-Cookie` values to add to the upstream's response (after a refresh).
pub type Pending = Rc<RefCell<Vec<String>>>;

/// Handles a request that is not on a pass-through path.
pub async fn handle(cfg: Shared<Config>, req: RequestHeaders, pending: Pending) -> Result<Flow> {
    let provider = match provider::ensure(&cfg).await {
        Ok(Known::Ready(p)) => p,
        Ok(Known::Pending) => return Ok(not_ready(&cfg, "provider discovery in progress")),
        Err(err) => {
            log::warn!("{err}");
            return Ok(not_ready(&cfg, "provider unavailable"));
        }
    };
    let path = req.path()?.unwrap_or_default();
    let bare = path.split(['?', '#']).next().unwrap_or_default();
    let cookies = req.cookies()?;
    if bare == cfg.redirect_path {
        return callback(&cfg, provider, &req, &path, &cookies).await;
    }
    if bare == cfg.logout_path {
        return logout(&cfg, &provider, &cookies);
    }
    let now = provider::now();
    let Some(mut session) = session::read_session(&cfg, &cookies, now) else {
        return unauthenticated(&cfg, &provider, &req, &path, &cookies);
    };
    if session.token_expires <= now.saturating_add(cfg.refresh_before) {
        match refresh(&cfg, provider.clone(), &session).await {
            Some(fresh) => {
                REFRESHED.inc();
                pending.borrow_mut().extend(session::session_cookies(&cfg, &fresh, &cookies, now)?);
                session = fresh;
            }
            None if session.token_expires > now => {}
            None => return unauthenticated(&cfg, &provider, &req, &path, &cookies),
        }
    }
    let token = match cfg.forward_token {
        ForwardToken::IdToken => Some(&session.id_token),
        ForwardToken::AccessToken => session.access_token.as_ref(),
    };
    let Some(token) = token else { return unauthenticated(&cfg, &provider, &req, &path, &cookies) };
    // Removed first: a client must never choose the forwarded identity.
    req.remove(cfg.forward_header.as_str())?;
    req.set(cfg.forward_header.as_str(), format!("Bearer {token}"))?;
    strip_cookies(&cfg, &req, &cookies)?;
    FORWARDED.inc();
    Ok(Flow::Continue)
}

/// Removes the plugin's cookies from the request going upstream.
pub fn strip_cookies(cfg: &Config, req: &RequestHeaders, cookies: &Cookies) -> Result<()> {
    if cookies.iter().any(|(n, _)| session::is_ours(cfg, n)) {
        req.remove("cookie")?;
        if let Some(rest) = session::without_ours(cfg, cookies) {
            req.set("cookie", rest)?;
        }
    }
    Ok(())
}

fn not_ready(cfg: &Config, why: &str) -> Flow {
    PROVIDER_UNAVAILABLE.inc();
    LocalReply::new(503)
        .header("retry-after", cfg.retry_after.to_string())
        .header("cache-control", "no-store")
        .body("the identity provider is not reachable yet; retry shortly\n")
        .details(format!("openid_connect_{}", why.replace(' ', "_")))
        .into()
}

/// A browser navigation (sent to login) rather than an API call or XHR (answered 401).
fn is_browser(req: &RequestHeaders) -> Result<bool> {
    let method = req.method()?.unwrap_or_default();
    let accept = req.get("accept")?.unwrap_or_default();
    let xhr = req.get("x-requested-with")?.is_some_and(|v| v.eq_ignore_ascii_case("xmlhttprequest"));
    let mode = req.get("sec-fetch-mode")?;
    Ok(matches!(method.as_str(), "GET" | "HEAD") && accept.contains("text/html") && !xhr && mode.is_none_or(|m| m == "navigate"))
}

fn unauthenticated(cfg: &Config, p: &Provider, req: &RequestHeaders, path: &str, cookies: &Cookies) -> Result<Flow> {
    let stale = session::clear_all(cfg, cookies);
    if !is_browser(req)? {
        UNAUTHENTICATED.inc();
        let mut reply = LocalReply::new(401)
            .header("www-authenticate", format!("Bearer realm=\"{}\"", cfg.client_id))
            .details("openid_connect_unauthenticated");
        for c in stale {
            reply = reply.header("set-cookie", c);
        }
        return Ok(reply.into());
    }
    let login = Login {
        state: crypto::random_token()?,
        nonce: crypto::random_token()?,
        verifier: crypto::random_token()?,
        return_to: safe_return(cfg, path),
        expires: provider::now().saturating_add(cfg.login_timeout),
    };
    let mut location = p.doc.authorization_endpoint.clone();
    location.push(if location.contains('?') { '&' } else { '?' });
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", &cfg.client_id)
        .append_pair("redirect_uri", &redirect_uri(cfg, req)?)
        .append_pair("scope", &cfg.scope)
        .append_pair("state", &login.state)
        .append_pair("nonce", &login.nonce)
        .append_pair("code_challenge", &crypto::s256(&login.verifier))
        .append_pair("code_challenge_method", "S256")
        .finish();
    location.push_str(&query);
    LOGIN_STARTED.inc();
    let mut reply = redirect(&location).details("openid_connect_login");
    let login_name = cfg.login_cookie();
    for c in stale.into_iter().filter(|c| !c.starts_with(&format!("{login_name}="))) {
        reply = reply.header("set-cookie", c);
    }
    Ok(reply.header("set-cookie", session::login_cookie(cfg, &login)?).into())
}

/// Where the provider sends the browser back: this host, `redirect_path`.
fn redirect_uri(cfg: &Config, req: &RequestHeaders) -> Result<String> {
    let scheme = req.scheme()?.filter(|s| s == "http" || s == "https").unwrap_or_else(|| "https".into());
    let host = req.authority()?.unwrap_or_default();
    Ok(format!("{scheme}://{host}{}", cfg.redirect_path))
}

/// `path` when it is a same-origin path the browser cannot read as another origin; `/`
/// otherwise. `//evil.example`, `/\evil` and absolute URLs would leave the site.
pub fn safe_return(cfg: &Config, path: &str) -> String {
    let bytes = path.as_bytes();
    let safe = bytes.first() == Some(&b'/')
        && !matches!(bytes.get(1), Some(b'/' | b'\\'))
        && !bytes.iter().any(|&b| b == b'\\' || b <= b' ' || b == 0x7f)
        && path.len() <= 2048;
    let bare = path.split(['?', '#']).next().unwrap_or_default();
    if safe && bare != cfg.redirect_path && bare != cfg.logout_path {
        path.to_string()
    } else {
        "/".into()
    }
}

fn redirect(location: &str) -> LocalReply {
    LocalReply::new(302).header("location", location).header("cache-control", "no-store")
}

fn refuse(cfg: &Config, status: u16, why: &str, cookies: &Cookies) -> Flow {
    log::info!("login refused: {why}");
    LOGIN_REFUSED.inc();
    let mut reply = LocalReply::new(status)
        .header("cache-control", "no-store")
        .body(match status {
            503 => "the identity provider is not reachable; try signing in again shortly\n",
            _ => "sign-in failed; go back to the page you wanted and try again\n",
        })
        .details("openid_connect_login_refused");
    if status == 503 {
        reply = reply.header("retry-after", cfg.retry_after.to_string());
    }
    for c in session::clear_all(cfg, cookies) {
        reply = reply.header("set-cookie", c);
    }
    reply.into()
}

async fn callback(cfg: &Config, p: Rc<Provider>, req: &RequestHeaders, path: &str, cookies: &Cookies) -> Result<Flow> {
    let now = provider::now();
    let Some(login) = session::read_login(cfg, cookies, now) else {
        return Ok(refuse(cfg, 400, "no valid login cookie (expired, altered or from another browser)", cookies));
    };
    let query = weir::Query::from_path(path);
    // RFC 9207: a provider that names itself must be ours (defeats IdP mix-up).
    if query.get("iss").is_some_and(|iss| iss != p.doc.issuer) {
        return Ok(refuse(cfg, 400, "callback iss names another provider", cookies));
    }
    if let Some(err) = query.get("error") {
        return Ok(refuse(cfg, 403, &format!("provider answered error={err}"), cookies));
    }
    let state = query.get("state").unwrap_or_default();
    if query.get_all("state").count() != 1 || !crypto::same(state.as_bytes(), login.state.as_bytes()) {
        return Ok(refuse(cfg, 400, "state does not match the login", cookies));
    }
    let Some(code) = query.get("code").filter(|c| !c.is_empty()) else {
        return Ok(refuse(cfg, 400, "callback without code", cookies));
    };
    let redirect_uri = redirect_uri(cfg, req)?;
    let grant = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri.as_str()),
        ("code_verifier", login.verifier.as_str()),
    ];
    let tokens = match tokens::request(cfg, &p, &grant).await {
        Ok(t) => t,
        Err(Exchange::Refused(error)) => return Ok(refuse(cfg, 401, &format!("token endpoint refused the code: {error}"), cookies)),
        Err(Exchange::Unavailable(err)) => return Ok(refuse(cfg, 503, &format!("token endpoint unavailable: {err}"), cookies)),
    };
    let Some(id_token) = tokens.id_token else {
        return Ok(refuse(cfg, 401, "token response without id_token", cookies));
    };
    let claims = match tokens::validate(cfg, p, &id_token, Expect::Nonce(&login.nonce)).await {
        Ok((claims, _)) => claims,
        Err(err) => return Ok(refuse(cfg, 401, &format!("ID token invalid: {err}"), cookies)),
    };
    let token_expires = claims.expires_at.map_or(0, |t| t.as_secs());
    let session = Session {
        id_token,
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token,
        token_expires,
        session_expires: now.saturating_add(cfg.session_lifetime),
    };
    LOGIN_COMPLETED.inc();
    let mut reply = redirect(&safe_return(cfg, &login.return_to)).details("openid_connect_signed_in");
    for c in session::session_cookies(cfg, &session, cookies, now)? {
        reply = reply.header("set-cookie", c);
    }
    let login_name = cfg.login_cookie();
    Ok(reply.header("set-cookie", format!("{login_name}=; Path=/; Secure; HttpOnly; SameSite=Lax; Max-Age=0")).into())
}

/// New tokens from the refresh token, validated; `None` when there is none or it failed.
async fn refresh(cfg: &Config, p: Rc<Provider>, session: &Session) -> Option<Session> {
    let refresh_token = session.refresh_token.as_deref()?;
    let sub = tokens::subject_of(&session.id_token)?;
    let grant = [("grant_type", "refresh_token"), ("refresh_token", refresh_token)];
    let tokens = match tokens::request(cfg, &p, &grant).await {
        Ok(t) => t,
        Err(Exchange::Refused(e)) => {
            log::info!("refresh refused: {e}");
            return None;
        }
        Err(Exchange::Unavailable(e)) => {
            log::warn!("refresh failed: {e}");
            return None;
        }
    };
    // Without a new ID token the old one cannot be extended.
    let id_token = tokens.id_token?;
    let (claims, _) = match tokens::validate(cfg, p, &id_token, Expect::Subject(&sub)).await {
        Ok(v) => v,
        Err(e) => {
            log::warn!("refreshed ID token invalid: {e}");
            return None;
        }
    };
    Some(Session {
        id_token,
        access_token: tokens.access_token.or_else(|| session.access_token.clone()),
        refresh_token: tokens.refresh_token.or_else(|| session.refresh_token.clone()),
        token_expires: claims.expires_at.map_or(0, |t| t.as_secs()),
        session_expires: session.session_expires,
    })
}

fn logout(cfg: &Config, p: &Provider, cookies: &Cookies) -> Result<Flow> {
    let session = session::read_session(cfg, cookies, provider::now());
    let location = match &p.doc.end_session_endpoint {
        Some(end) => {
            let mut q = form_urlencoded::Serializer::new(String::new());
            q.append_pair("client_id", &cfg.client_id);
            if let Some(s) = &session {
                q.append_pair("id_token_hint", &s.id_token);
            }
            if let Some(after) = &cfg.post_logout_redirect {
                q.append_pair("post_logout_redirect_uri", after);
            }
            format!("{end}{}{}", if end.contains('?') { '&' } else { '?' }, q.finish())
        }
        None => cfg.post_logout_redirect.clone().unwrap_or_else(|| "/".into()),
    };
    let mut reply = redirect(&location).details("openid_connect_logout");
    for c in session::clear_all(cfg, cookies) {
        reply = reply.header("set-cookie", c);
    }
    Ok(reply.into())
}
