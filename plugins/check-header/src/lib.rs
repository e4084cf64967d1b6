//! check-header: verifies the grant token in `read_header` (put there by acl-check) and
//! requires the configured `function` in its `functions` claim. Missing or invalid token →
//! 401 with `WWW-Authenticate`; valid token without the function → 403. Like Envoy's
//! `jwt_authn`, it fails closed: any error is a 401, never a pass.
//!
//! Every `claim_to_headers` header (and each spelling an upstream reads as the same) is
//! removed from the client's request first, whatever the outcome.

mod binding;
mod config;
mod replay;

use config::{Config, Keys};
use replay::Use;
use serde_json::Value;
use std::rc::Rc;
use weir::background::Background;
use weir::jwt::{token_kid, Claims};
use weir::metrics::Counter;
use weir::prelude::*;
use weir::Phase;

static ALLOWED: Counter = Counter::new("check_header.allowed");
static DENIED: Counter = Counter::new("check_header.denied");
static ERRORED: Counter = Counter::new("check_header.errored");

struct CheckHeader {
    cfg: Shared<Config>,
}

/// The answer for a verification result: 401, 403, or the request on its way with the
/// configured claim headers.
fn decide(cfg: &Config, req: &RequestHeaders, verified: Result<Rc<Claims>>) -> Result<Flow> {
    let claims = match verified {
        Ok(claims) => claims,
        Err(err) => return Ok(unauthorized(&err.to_string())),
    };
    if cfg.require_request_binding {
        let [method, host, path] =
            [req.method()?, req.authority()?, req.path()?].map(Option::unwrap_or_default);
        if !binding::covers(claims.custom.get("request"), &method, &host, &path) {
            return Ok(unauthorized("issued for another request"));
        }
    }
    let permitted = claims
        .custom
        .get("functions")
        .and_then(Value::as_array)
        .is_some_and(|fs| fs.iter().any(|f| f.as_str() == Some(cfg.function.as_str())));
    if !permitted {
        DENIED.inc();
        return Ok(LocalReply::new(403)
            .details("check_header_function_denied")
            .into());
    }
    if let Some(replay) = &cfg.replay {
        let Some(jti) = claims.jwt_id.as_deref() else {
            return Ok(unauthorized("no jti"));
        };
        let until = claims
            .expires_at
            .map_or(0, |exp| exp.as_secs())
            .saturating_add(cfg.clock_skew_seconds);
        match replay.record(jti, until, weir::unix_time()?)? {
            Use::First => {}
            Use::Replayed => return Ok(unauthorized("jti already used")),
            Use::Full => {
                ERRORED.inc();
                warn!("replay cache full: raise replay_cache_grants");
                return Ok(LocalReply::new(503)
                    .details("check_header_replay_cache_full")
                    .into());
            }
        }
    }
    for map in &cfg.claim_to_headers {
        let value = match map.claim.as_str() {
            "sub" => claims.subject.clone(),
            "iss" => claims.issuer.clone(),
            name => claims.custom.get(name).map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            }),
        };
        if let Some(value) =
            value.filter(|v| !v.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0))
        {
            req.set(map.header.as_str(), value)?;
        }
    }
    ALLOWED.inc();
    Ok(Flow::Continue)
}

/// Fetches the JWKS when the plugin is configured and then periodically (jwks_cluster only).
fn background(cfg: &Shared<Config>, bg: &mut Background) {
    let Keys::Remote { jwks, .. } = &cfg.keys else {
        return;
    };
    let cfg = cfg.clone();
    bg.every("jwks refresh", jwks.refresh_period(), move || {
        let cfg = cfg.clone();
        async move {
            match &cfg.keys {
                Keys::Remote { jwks, .. } => jwks.refresh().await,
                Keys::Static(_) => Ok(()),
            }
        }
    });
}

/// 401; `why` (never the token itself) goes to the log.
fn unauthorized(why: &str) -> Flow {
    info!("grant token refused: {why}");
    DENIED.inc();
    LocalReply::new(401)
        .header(
            "www-authenticate",
            r#"Bearer realm="check-header", error="invalid_token""#,
        )
        .details("check_header_invalid_token")
        .into()
}

impl HttpFilter for CheckHeader {
    fn on_request_headers(&mut self, req: &mut RequestHeaders) -> Result<Flow> {
        let cfg = &self.cfg;
        // Before anything can fail: no path may leave a client's copy for the upstream.
        for map in &cfg.claim_to_headers {
            req.remove_lookalikes(map.header.as_str())?;
        }
        // Unless it is to be forwarded, the grant is taken out of the request as it is read:
        // whatever is decided, no copy of it (or a spelling an upstream reads as it) goes on.
        // Read in place: a grant is a few hundred bytes, read once per request.
        let values = if cfg.forward {
            req.get_values(cfg.read_header.as_str())?
        } else {
            req.take_values(cfg.read_header.as_str())?
        };
        // Exactly one value: two could mean a client value survived next to the real one.
        let Some(token) = values.only() else {
            return Ok(unauthorized("not exactly one grant header"));
        };
        // A grant is base64url and dots; other bytes can only fail verification.
        let Ok(token) = std::str::from_utf8(token) else {
            return Ok(unauthorized("grant header is not UTF-8"));
        };
        let token = token.trim();
        let (jwks, rules) = match &cfg.keys {
            Keys::Static(verifier) => return decide(cfg, req, verifier.verify_shared(token)),
            Keys::Remote { jwks, rules } => (jwks, rules),
        };
        if let Some(verifier) = jwks.verifier(rules)? {
            if token_kid(token).is_none_or(|kid| verifier.has_kid(&kid)) {
                return decide(cfg, req, verifier.verify_shared(token));
            }
        }
        // No keys yet, or a kid the cached JWKS lacks (the provider rotated keys): fetch
        // now, at most once per jwks_min_refetch_seconds across VMs, and decide with that.
        let (cfg, req, token) = (self.cfg.clone(), req.handle(), token.to_string());
        Ok(Flow::wait(async move {
            let Keys::Remote { jwks, rules } = &cfg.keys else {
                return Ok(unauthorized("no keys"));
            };
            if let Err(err) = jwks.refetch().await {
                warn!("{err}");
            }
            match jwks.verifier(rules)? {
                Some(verifier) => decide(&cfg, &req, verifier.verify_shared(&token)),
                None => Ok(unauthorized("no keys fetched yet")),
            }
        }))
    }

    fn on_error(&mut self, _phase: Phase, _err: &Error) -> LocalReply {
        ERRORED.inc();
        LocalReply::new(401).header("www-authenticate", r#"Bearer realm="check-header""#)
    }
}

weir::http_plugin!(Config => |cfg| CheckHeader { cfg }, background = background);
