//! `protocol: ext_authz_grpc`: the policy server is asked with Envoy's ext_authz gRPC
//! protocol (`envoy.service.auth.v3.Authorization/Check`), so any server that speaks it
//! (OPA's Envoy plugin, Authorino, the reference policy server) can decide.
//!
//! The `CheckRequest` carries what the HTTP protocol sends (the allowed request headers,
//! method, path and host) as `attributes.request.http`. The `CheckResponse`:
//! - `status.code` OK: allowed. `ok_response.headers` are applied only for headers acl-check
//!   owns (`set_header`, `allowed_upstream_headers`), whose client copies and lookalikes were
//!   already removed; a `set_header` value must be a compact JWS, as in the HTTP protocol.
//!   `ok_response.headers_to_remove` are removed with their lookalikes (pseudo-headers and
//!   `host` excepted). Each header is set, not appended (`append` and `append_action` are
//!   not read): a later entry of the same name replaces an earlier one.
//! - any other code: denied, with `denied_response`'s status (403 unless it names a 4xx or
//!   5xx), its body, and the headers `allowed_client_headers` lets through.
//! - no answer (a gRPC error status, a timeout, an unreadable message): the error path.
//!
//! The messages are hand-derived with prost for the fields read or written: encoding the
//! whole ext_authz API would cost the module its size.

mod messages;

use crate::config::Config;
use crate::{is_compact_jws, Decision, Grant};
use messages::*;
use prost::Message;
use std::collections::BTreeMap;
use weir::grpc::{Grpc, GrpcCode, GrpcFuture};
use weir::prelude::*;
use weir::{HeaderValue, LocalReply};

/// The largest `CheckResponse` read; a longer one is no decision.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// The `Check` call for the request: the allowed headers (several values joined with `,`,
/// as Envoy joins them), method, path and host.
pub fn check_call(cfg: &Config, req: &RequestHeaders) -> Result<GrpcFuture> {
    let mut headers = BTreeMap::new();
    for name in &cfg.allowed_request_headers {
        let values = req.get_all(name.as_str())?;
        if !values.is_empty() {
            headers.insert(name.as_str().to_owned(), values.join(","));
        }
    }
    let http = HttpRequest {
        method: req.method()?.unwrap_or_default(),
        headers,
        path: req.path()?.unwrap_or_default(),
        host: req.authority()?.unwrap_or_default(),
    };
    let request = CheckRequest {
        attributes: Some(AttributeContext {
            request: Some(RequestAttributes { http: Some(http) }),
        }),
    };
    Ok(Grpc::call(
        cfg.acl_server.as_str(),
        "envoy.service.auth.v3.Authorization",
        "Check",
    )
    .message(request.encode_to_vec())
    .timeout(cfg.timeout())
    .max_message_bytes(MAX_RESPONSE_BYTES)
    .send())
}

/// The server's answer as a decision, with the headers to remove on an allow; `Err` when
/// it gave none.
pub fn decide(cfg: &Config, answer: weir::grpc::GrpcResponse) -> Result<(Decision, Vec<String>)> {
    let body = answer.into_ok()?;
    let res = CheckResponse::decode(body.as_slice())
        .map_err(|_| Error::msg("policy server's CheckResponse does not decode"))?;
    let code = res.status.as_ref().map_or(0, |s| s.code);
    if code != GrpcCode::OK.0 as i32 {
        let denied = res.denied_response.unwrap_or_default();
        let status = denied
            .status
            .map(|s| s.code)
            .filter(|c| (400..=599).contains(c))
            .map_or(403, |c| c as u16);
        let mut reply = LocalReply::new(status).details("acl_check_denied");
        for (name, value) in entries(&denied.headers) {
            if cfg
                .allowed_client_headers
                .iter()
                .any(|a| a.as_str() == name)
            {
                reply = reply.header(name, value);
            }
        }
        if !denied.body.is_empty() {
            reply = reply.body(denied.body);
        }
        return Ok((Decision::Deny(reply), Vec::new()));
    }
    let ok = res.ok_response.unwrap_or_default();
    let mut token = None;
    let mut upstream_headers = Vec::new();
    for (name, value) in entries(&ok.headers) {
        if HeaderValue::new(&value).is_err() {
            return Err(Error::msg(format!(
                "policy server set header {name} to a value that is not a valid header value"
            )));
        }
        if name == cfg.set_header.as_str() {
            if !is_compact_jws(&value, cfg.max_token_bytes) {
                return Err(Error::msg(format!(
                    "policy server set {name} to something that is not a compact JWS"
                )));
            }
            token = Some(value);
        } else if cfg
            .allowed_upstream_headers
            .iter()
            .any(|a| a.as_str() == name)
        {
            upstream_headers.push((name, value));
        } else {
            debug!("ignored header {name} from the policy server: not one acl-check owns");
        }
    }
    let remove = ok
        .headers_to_remove
        .into_iter()
        .map(|n| n.to_ascii_lowercase())
        .filter(|n| !n.starts_with(':') && n != "host" && weir::HeaderName::new(n).is_ok())
        .collect();
    let grant = Grant {
        token: token.unwrap_or_default(),
        upstream_headers,
    };
    Ok((Decision::Allow(grant), remove))
}

/// (name lower-cased, value) of each header option; `raw_value` when `value` is empty.
fn entries(options: &[HeaderValueOption]) -> impl Iterator<Item = (String, String)> + '_ {
    options.iter().filter_map(|option| {
        let header = option.header.as_ref()?;
        let value = if header.value.is_empty() {
            String::from_utf8(header.raw_value.clone()).ok()?
        } else {
            header.value.clone()
        };
        Some((header.key.to_ascii_lowercase(), value))
    })
}
