//! openid-connect: an OpenID Connect relying party (authorization code flow with PKCE S256,
//! `state` and `nonce`) for seed 000's AUTHN step. Browsers without a session are sent to
//! the provider; the callback validates the ID token fully and sets an encrypted session
//! cookie; authenticated requests go upstream with `Authorization: Bearer <id_token>` and
//! without the plugin's cookies. See README.md for the configuration and security notes.

mod config;
mod crypto;
mod flow;
mod login;
mod login_once;
mod opened;
mod provider;
mod refresh;
mod session;
mod tokens;

use config::Config;
use flow::Pending;
use std::time::Duration;
use weir::background::Background;
use weir::http::path::normalize;
use weir::metrics::Counter;
use weir::prelude::*;
use weir::Phase;

static ERRORED: Counter = Counter::new("openid_connect.errored");

struct OpenIdConnect {
    cfg: Shared<Config>,
    /// Cookies to set on the upstream's response (a refresh happened on the way in).
    pending: Pending,
}

impl HttpFilter for OpenIdConnect {
    fn on_request_headers(&mut self, req: &mut RequestHeaders) -> Result<Flow> {
        // First, on every path (pass-through, login, callback, errors): a client must never
        // choose the forwarded identity, under any spelling an upstream reads as the same.
        req.remove_lookalikes(self.cfg.forward_header.as_str())?;
        let path = req.path()?.unwrap_or_default();
        if self.cfg.passes_through(normalize(&path).as_deref()) {
            flow::strip_cookies(&self.cfg, req, &req.cookies()?)?;
            return Ok(Flow::Continue);
        }
        let (cfg, req, pending) = (self.cfg.clone(), req.handle(), self.pending.clone());
        Ok(Flow::wait(flow::handle(cfg, req, pending)))
    }

    fn on_response_headers(&mut self, res: &mut ResponseHeaders) -> Result<Flow> {
        let upstream = std::mem::take(&mut *self.pending.borrow_mut());
        if !upstream.cookies.is_empty() {
            // A response carrying a session must never be stored and served to others.
            res.set("cache-control", "no-store")?;
        }
        for cookie in upstream.cookies {
            res.add("set-cookie", cookie)?;
        }
        if upstream.authenticated {
            // The upstream saw a token, not the cookie it came from: caches in front of
            // the proxy must key this response on the cookie.
            let vary = res.get_all("vary")?;
            if !vary
                .iter()
                .flat_map(|v| v.split(','))
                .any(|v| v.trim() == "*" || v.trim().eq_ignore_ascii_case("cookie"))
            {
                res.add("vary", "Cookie")?;
            }
        }
        Ok(Flow::Continue)
    }

    fn on_error(&mut self, _phase: Phase, _err: &Error) -> LocalReply {
        // Fail closed: nothing reaches the upstream when the plugin cannot decide.
        ERRORED.inc();
        LocalReply::new(500)
            .header("cache-control", "no-store")
            .details("openid_connect_error")
    }
}

/// Keeps the provider copy fresh from the root context: checked four times per
/// `provider_refresh_seconds`, refreshed once it is that old.
fn background(cfg: &Shared<Config>, bg: &mut Background) {
    let period = Duration::from_secs((cfg.provider_refresh / 4).max(1));
    let cfg = cfg.clone();
    bg.every("provider refresh", period, move || {
        let cfg = cfg.clone();
        async move { provider::refresh_if_stale(&cfg).await }
    });
}

weir::http_plugin!(Config => |cfg| OpenIdConnect { cfg, pending: Default::default() }, background = background);
