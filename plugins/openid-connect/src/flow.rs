//! What happens to one request: pass through, start a login, finish one at the callback,
//! sign out, or forward an authenticated request (refreshing its tokens first when due).

use crate::config::{url_authority, Config, ForwardToken};
use crate::crypto;
use crate::login::callback;
use crate::provider::{self, Known, Provider};
use crate::refresh::{self, Refreshed};
use crate::session::{self, Login};
use std::cell::RefCell;
use std::rc::Rc;
use weir::http::path::normalize;
use weir::metrics::Counter;
use weir::{Cookies, Flow, LocalReply, RequestHeaders, Result, Shared};

static FORWARDED: Counter = Counter::new("openid_connect.forwarded");
static LOGIN_STARTED: Counter = Counter::new("openid_connect.login_started");
static REFRESHED: Counter = Counter::new("openid_connect.refreshed");
static UNAUTHENTICATED: Counter = Counter::new("openid_connect.unauthenticated");
static PROVIDER_UNAVAILABLE: Counter = Counter::new("openid_connect.provider_unavailable");

/// What the upstream's response needs from the plugin.
#[derive(Debug, Default)]
pub struct Upstream {
    /// `Set-Cookie` values (the session was refreshed on the way in).
    pub cookies: Vec<String>,
    /// The request went up with the session's token: the response depends on the cookie.
    pub authenticated: bool,
}

/// Shared between the request's future and the response hook.
pub type Pending = Rc<RefCell<Upstream>>;

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
    let raw = req.path()?.unwrap_or_default();
    let path = normalize(&raw);
    let cookies = req.cookies()?;
    if path.as_deref() == Some(cfg.redirect_path.as_str()) {
        return callback(&cfg, provider, &req, &raw, &cookies).await;
    }
    if path.as_deref() == Some(cfg.logout_path.as_str()) {
        return logout(&cfg, &provider, &req, &cookies);
    }
    let now = provider::now();
    let Some(mut session) = session::read_session(&cfg, &provider.doc.issuer, &cookies, now) else {
        return unauthenticated(&cfg, &provider, &req, &raw, &cookies);
    };
    if session.token_expires <= now.saturating_add(cfg.refresh_before) {
        match refresh::refresh(&cfg, provider.clone(), &session).await {
            Refreshed::Fresh(fresh, sealed) => {
                REFRESHED.inc();
                let cookies = session::session_cookies(
                    &cfg,
                    &sealed,
                    fresh.session_expires,
                    &cookies,
                    provider::now(),
                );
                pending.borrow_mut().cookies.extend(cookies);
                session = fresh;
            }
            _ if session.token_expires > now => {}
            Refreshed::InFlight => return Ok(busy(&cfg)),
            Refreshed::Failed => return unauthenticated(&cfg, &provider, &req, &raw, &cookies),
        }
    }
    let token = match cfg.forward_token {
        ForwardToken::IdToken => Some(&session.id_token),
        ForwardToken::AccessToken => session.access_token.as_ref(),
    };
    let Some(token) = token else {
        return unauthenticated(&cfg, &provider, &req, &raw, &cookies);
    };
    // The client's copies (and look-alike spellings) were removed before this future ran.
    req.set(cfg.forward_header.as_str(), format!("Bearer {token}"))?;
    strip_cookies(&cfg, &req, &cookies)?;
    pending.borrow_mut().authenticated = true;
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

/// Another request of this session is refreshing its expired tokens: try again shortly.
fn busy(cfg: &Config) -> Flow {
    LocalReply::new(503)
        .header("retry-after", cfg.retry_after.max(1).to_string())
        .header("cache-control", "no-store")
        .body("your session is being renewed; retry in a moment\n")
        .details("openid_connect_refresh_in_progress")
        .into()
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
    let xhr = req
        .get("x-requested-with")?
        .is_some_and(|v| v.eq_ignore_ascii_case("xmlhttprequest"));
    let mode = req.get("sec-fetch-mode")?;
    Ok(matches!(method.as_str(), "GET" | "HEAD")
        && accept.contains("text/html")
        && !xhr
        && mode.is_none_or(|m| m == "navigate"))
}

fn with_cookies(mut reply: LocalReply, cookies: impl IntoIterator<Item = String>) -> LocalReply {
    for c in cookies {
        reply = reply.header("set-cookie", c);
    }
    reply
}

fn unauthenticated(
    cfg: &Config,
    p: &Provider,
    req: &RequestHeaders,
    path: &str,
    cookies: &Cookies,
) -> Result<Flow> {
    // A stale session goes; a login in progress (perhaps in another tab) stays.
    let stale = session::clear_session(cfg, cookies);
    if !is_browser(req)? {
        UNAUTHENTICATED.inc();
        let reply = LocalReply::new(401)
            .header(
                "www-authenticate",
                format!("Bearer realm=\"{}\"", cfg.client_id),
            )
            .header("cache-control", "no-store")
            .details("openid_connect_unauthenticated");
        return Ok(with_cookies(reply, stale).into());
    }
    let Some(redirect_uri) = redirect_uri(cfg, req)? else {
        return Ok(host_not_allowed());
    };
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
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("scope", &cfg.scope)
        .append_pair("state", &login.state)
        .append_pair("nonce", &login.nonce)
        .append_pair("code_challenge", &crypto::s256(&login.verifier))
        .append_pair("code_challenge_method", "S256")
        .finish();
    location.push_str(&query);
    LOGIN_STARTED.inc();
    let reply = with_cookies(redirect(&location).details("openid_connect_login"), stale);
    Ok(reply
        .header(
            "set-cookie",
            session::login_cookie(cfg, &p.doc.issuer, &login)?,
        )
        .into())
}

/// The request's host is not one a redirect URI may be built for.
pub fn host_not_allowed() -> Flow {
    LocalReply::new(400)
        .header("cache-control", "no-store")
        .body("this host is not configured for sign-in\n")
        .details("openid_connect_host_not_allowed")
        .into()
}

/// Where the provider sends the browser back: `redirect_uri` when configured, else
/// `redirect_path` on this host if it is an allowed one (`None` when it is not).
pub fn redirect_uri(cfg: &Config, req: &RequestHeaders) -> Result<Option<String>> {
    if let Some(uri) = &cfg.redirect_uri {
        return Ok(Some(uri.clone()));
    }
    let host = req.authority()?.unwrap_or_default();
    if !cfg.host_allowed(&host) {
        log::info!("no redirect URI for host {host:?}: not in allowed_hosts");
        return Ok(None);
    }
    let scheme = req
        .scheme()?
        .filter(|s| s == "http" || s == "https")
        .unwrap_or_else(|| "https".into());
    Ok(Some(format!("{scheme}://{host}{}", cfg.redirect_path)))
}

/// `path` when it is a same-origin path the browser cannot read as another origin; `/`
/// otherwise. `//evil.example`, `/\evil` and absolute URLs would leave the site.
pub fn safe_return(cfg: &Config, path: &str) -> String {
    let bytes = path.as_bytes();
    let safe = bytes.first() == Some(&b'/')
        && !matches!(bytes.get(1), Some(b'/' | b'\\'))
        && !bytes.iter().any(|&b| b == b'\\' || b <= b' ' || b == 0x7f)
        && path.len() <= 2048;
    let own = normalize(path).is_some_and(|p| p == cfg.redirect_path || p == cfg.logout_path);
    if safe && !own {
        path.to_string()
    } else {
        "/".into()
    }
}

/// A 302 to `location` that no cache keeps.
pub fn redirect(location: &str) -> LocalReply {
    LocalReply::new(302)
        .header("location", location)
        .header("cache-control", "no-store")
}

/// True for a request a page of this origin made: `Sec-Fetch-Site: same-origin`, or (from
/// browsers without Fetch Metadata) an `Origin` whose host is the request's host. A page of
/// another site can make a browser send a POST, but not with these values.
fn same_origin(req: &RequestHeaders) -> Result<bool> {
    if let Some(site) = req.get("sec-fetch-site")? {
        return Ok(site == "same-origin");
    }
    let authority = req.authority()?.unwrap_or_default();
    Ok(req.get("origin")?.is_some_and(|o| {
        (o.starts_with("https://") || o.starts_with("http://"))
            && !authority.is_empty()
            && url_authority(&o).eq_ignore_ascii_case(&authority)
    }))
}

/// Signs out on a same-origin `POST` only: a link or image on another site must not be
/// able to end the user's session.
fn logout(cfg: &Config, p: &Provider, req: &RequestHeaders, cookies: &Cookies) -> Result<Flow> {
    if req.method()?.as_deref() != Some("POST") {
        let reply = LocalReply::new(405)
            .header("allow", "POST")
            .header("cache-control", "no-store");
        return Ok(reply
            .body("sign out with a POST from this site\n")
            .details("openid_connect_logout_method")
            .into());
    }
    if !same_origin(req)? {
        log::info!("logout refused: not a same-origin request");
        let reply = LocalReply::new(403)
            .header("cache-control", "no-store")
            .body("sign out from this site's own page\n");
        return Ok(reply.details("openid_connect_logout_cross_site").into());
    }
    let session = session::read_session(cfg, &p.doc.issuer, cookies, provider::now());
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
            format!(
                "{end}{}{}",
                if end.contains('?') { '&' } else { '?' },
                q.finish()
            )
        }
        None => cfg
            .post_logout_redirect
            .clone()
            .unwrap_or_else(|| "/".into()),
    };
    // 303: the browser follows a POST's redirect with a GET.
    let reply = LocalReply::new(303)
        .header("location", &location)
        .header("cache-control", "no-store");
    Ok(with_cookies(
        reply.details("openid_connect_logout"),
        session::clear_all(cfg, cookies),
    )
    .into())
}
