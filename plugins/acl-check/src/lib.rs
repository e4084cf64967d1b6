//! acl-check: asks a policy server whether a request may pass. On 200 the server's signed
//! grant token goes upstream in `set_header` (checked later by check-header); 401/403 are
//! relayed to the client; anything else fails closed with `status_on_error`.
//!
//! The client's own `set_header` and `allowed_upstream_headers` (and every spelling an
//! upstream reads as the same, `x_user` for `x-user`) are removed first, in every case:
//! otherwise a client could forge them whenever the policy server says nothing.
//!
//! With `decision_cache_seconds`, a grant is reused for requests sending the policy server
//! the same attributes (`cache.rs`); a reused grant is applied exactly like a fresh one.

mod cache;
mod config;
#[cfg(feature = "ext-authz-grpc")]
mod ext_authz;

use config::Config;
use weir::metrics::Counter;
use weir::prelude::*;
use weir::{Call, CallResponse, LocalReply};

static ALLOWED: Counter = Counter::new("acl_check.allowed");
static DENIED: Counter = Counter::new("acl_check.denied");
static ERRORED: Counter = Counter::new("acl_check.errored");
static CACHE_HITS: Counter = Counter::new("acl_check.cache_hits");

struct AclCheck {
    cfg: Shared<Config>,
}

impl HttpFilter for AclCheck {
    fn on_request_headers(&mut self, req: &mut RequestHeaders) -> Result<Flow> {
        remove_owned(&self.cfg, req)?;
        let sent = sent_attributes(&self.cfg, req)?;
        let key = (self.cfg.decision_cache_seconds > 0).then(|| cache::Key::of(&self.cfg, &sent));
        if let Some(key) = &key {
            let now = weir::unix_time().ok();
            if let Some(grant) = now.and_then(|now| cache::lookup(&self.cfg, key, now)) {
                CACHE_HITS.inc();
                return finish(&self.cfg, req, Ok(Decision::Allow(grant)));
            }
        }
        #[cfg(feature = "ext-authz-grpc")]
        if self.cfg.protocol == config::Protocol::ExtAuthzGrpc {
            return check_grpc(&self.cfg, req);
        }
        let mut call =
            Call::post(self.cfg.acl_server.as_str(), &self.cfg.path).timeout(self.cfg.timeout());
        for (name, value) in sent {
            call = call.header(name, value);
        }
        let cfg = self.cfg.clone();
        let req = req.handle();
        Ok(Flow::wait(async move {
            let decision = match call.send().await {
                Ok(res) => decide(&cfg, res, key.as_ref()),
                Err(err) => Err(err),
            };
            finish(&cfg, &req, decision)
        }))
    }

    fn on_error(&mut self, _phase: weir::Phase, _err: &Error) -> LocalReply {
        ERRORED.inc();
        LocalReply::new(self.cfg.status_on_error).details("acl_check_error")
    }
}

/// The ext_authz gRPC check of the request (`protocol: ext_authz_grpc`).
#[cfg(feature = "ext-authz-grpc")]
fn check_grpc(cfg: &Shared<Config>, req: &RequestHeaders) -> Result<Flow> {
    let call = ext_authz::check_call(cfg, req)?;
    let cfg = cfg.clone();
    let req = req.handle();
    Ok(Flow::wait(async move {
        let decision = match call.await {
            Ok(answer) => ext_authz::decide(&cfg, answer),
            Err(err) => Err(err),
        };
        let decision = match decision {
            Ok((decision, remove)) => {
                for name in &remove {
                    req.remove_lookalikes(name)?;
                }
                Ok(decision)
            }
            Err(err) => Err(err),
        };
        finish(&cfg, &req, decision)
    }))
}

/// Everything the policy server is sent about the request, in order: the allowed request
/// headers (every value) and the request line. Also exactly the decision cache's key.
fn sent_attributes<'a>(cfg: &'a Config, req: &RequestHeaders) -> Result<Vec<(&'a str, String)>> {
    let mut sent = Vec::new();
    for name in &cfg.allowed_request_headers {
        for value in req.get_all(name.as_str())? {
            sent.push((name.as_str(), value));
        }
    }
    for (name, value) in [
        ("x-forwarded-method", req.method()?),
        ("x-forwarded-uri", req.path()?),
        ("x-forwarded-host", req.authority()?),
    ] {
        sent.push((name, value.unwrap_or_default()));
    }
    Ok(sent)
}

/// Applies a decision to the request: the same code for a fresh and a cached grant.
fn finish(cfg: &Config, req: &RequestHeaders, decision: Result<Decision>) -> Result<Flow> {
    // Removed again: another filter may have added them while we waited.
    remove_owned(cfg, req)?;
    match decision {
        Ok(Decision::Allow(grant)) => {
            // The HTTP protocol always brings a token; an ext_authz server may send none.
            if cfg!(not(feature = "ext-authz-grpc")) || !grant.token.is_empty() {
                req.set(cfg.set_header.as_str(), grant.token)?;
            }
            for (name, value) in grant.upstream_headers {
                req.set(&name, value)?;
            }
            ALLOWED.inc();
            Ok(Flow::Continue)
        }
        Ok(Decision::Deny(reply)) => {
            DENIED.inc();
            Ok(Flow::Reply(reply))
        }
        Err(err) if cfg.failure_mode_allow => {
            ERRORED.inc();
            warn!("policy server gave no decision, allowed by failure_mode_allow: {err}");
            Ok(Flow::Continue)
        }
        Err(err) => {
            ERRORED.inc();
            warn!("policy server gave no decision: {err}");
            Ok(Flow::Reply(
                LocalReply::new(cfg.status_on_error).details("acl_check_error"),
            ))
        }
    }
}

fn remove_owned(cfg: &Config, req: &RequestHeaders) -> Result<()> {
    for name in cfg.owned_headers() {
        req.remove_lookalikes(name)?;
    }
    Ok(())
}

/// What a 200 puts on the request: the grant token and the policy server's upstream headers.
struct Grant {
    token: String,
    upstream_headers: Vec<(String, String)>,
}

enum Decision {
    Allow(Grant),
    Deny(LocalReply),
}

/// The policy server's answer as a decision; `Err` when it gave none (the error path).
/// A 200 that may be reused is stored under `key`.
fn decide(cfg: &Config, res: CallResponse, key: Option<&cache::Key>) -> Result<Decision> {
    match res.status {
        200 => {
            let token = res.text()?.trim();
            if !is_compact_jws(token, cfg.max_token_bytes) {
                return Err(Error::msg(
                    "policy server answered 200 without a compact JWS body",
                ));
            }
            let grant = Grant {
                token: token.to_string(),
                upstream_headers: pick(&res, &cfg.allowed_upstream_headers),
            };
            // A clock the host cannot read only means the grant is not stored.
            if let (Some(key), Ok(now)) = (key, weir::unix_time()) {
                cache::store(cfg, key, &res, &grant, now);
            }
            Ok(Decision::Allow(grant))
        }
        status @ (401 | 403) => {
            let mut reply = LocalReply::new(status).details("acl_check_denied");
            for (name, value) in pick(&res, &cfg.allowed_client_headers) {
                reply = reply.header(name, value);
            }
            Ok(Decision::Deny(reply))
        }
        status => Err(Error::msg(format!("policy server answered {status}"))),
    }
}

fn pick(res: &CallResponse, allowed: &[HeaderName]) -> Vec<(String, String)> {
    let allowed = |n: &str| allowed.iter().any(|a| a.as_str() == n);
    res.headers
        .iter()
        .filter(|(n, _)| allowed(n))
        .cloned()
        .collect()
}

/// Three non-empty base64url segments: anything else is not a grant token, and putting it in
/// a header could smuggle characters the next filter does not expect.
fn is_compact_jws(token: &str, max: usize) -> bool {
    let b64url = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    };
    token.len() <= max && token.split('.').count() == 3 && token.split('.').all(b64url)
}

weir::http_plugin!(Config => |cfg| AclCheck { cfg });
