//! The attributes Envoy computes per request from its stream info (Envoy's
//! `filters/common/expr/context.cc`): sizes, duration, response flags, and the upstream's
//! connection. Values that depend on addresses or on time have fixed or virtual-clock
//! values here; the fidelity scenarios compare their presence and type with Envoy's.

use crate::message::{Fields, UpstreamFailure};
use crate::state::HttpState;

/// Envoy's local address on its connection to the upstream (`upstream.local_address`).
pub(crate) const UPSTREAM_LOCAL_ADDRESS: &str = "10.0.0.2:40000";
/// The port of [`super::properties::UPSTREAM_ADDRESS`].
pub(crate) const UPSTREAM_PORT: i64 = 8080;

fn int(value: i64) -> Vec<u8> {
    value.to_le_bytes().to_vec()
}

/// Envoy's `HeaderMap::byteSize`: every name and value, pseudo-headers included.
fn byte_size(fields: Option<&Fields>) -> i64 {
    fields.map_or(0, |fields| {
        fields.iter().map(|(k, v)| (k.len() + v.len()) as i64).sum()
    })
}

/// Request body bytes the proxy received from the client.
fn bytes_received(http: &HttpState) -> i64 {
    (http.request.passed.body.len() + http.request.body.len()) as i64
}

/// Response body bytes the client got.
fn bytes_sent(http: &HttpState) -> i64 {
    if http.client_gone {
        return 0;
    }
    // The reply as the plugin's response callbacks left it; a reply sent once the
    // response had started goes out as it is; else the response body that passed.
    match (&http.replied, &http.local_reply) {
        (Some(replied), _) => replied.body_bytes().len() as i64,
        (None, Some(reply)) => reply.body().len() as i64,
        (None, None) => http.response.passed.body.len() as i64,
    }
}

/// Whether the router sent the request to an upstream (Envoy then has upstream info).
pub(crate) fn upstream_reached(http: &HttpState) -> bool {
    http.request.passed.headers.is_some()
}

/// Whether the upstream's whole response reached the proxy (Envoy then knows when its
/// last byte came): not when the router answered in its place, nor when a local reply
/// replaced the response before it ended.
fn upstream_answered(http: &HttpState) -> bool {
    upstream_reached(http)
        && http.details.is_none()
        && http.replied.is_none()
        && http.response.end_received
}

/// The attribute at `segments` for an HTTP stream, if Envoy derives it from stream info.
pub(crate) fn derive(http: &HttpState, segments: &[&[u8]], now_ns: u64) -> Option<Vec<u8>> {
    let request = http.request.headers.as_ref();
    let response = http.response.headers.as_ref();
    let reached = upstream_reached(http);
    let refused = http.failure == Some(UpstreamFailure::ConnectionRefused);
    match segments {
        [b"response", b"flags"] => Some(int(http.flags as i64)),
        // The request's `content-length` when it has one, else the bytes received.
        [b"request", b"size"] => {
            let length = request.and_then(|h| {
                h.iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(b"content-length"))
                    .map(|(_, v)| v)
            });
            match length {
                Some(value) => std::str::from_utf8(value)
                    .ok()?
                    .parse::<i64>()
                    .ok()
                    .map(int),
                None => Some(int(bytes_received(http))),
            }
        }
        [b"request", b"total_size"] => Some(int(bytes_received(http) + byte_size(request))),
        [b"response", b"size"] => Some(int(bytes_sent(http))),
        [b"response", b"total_size"] => {
            let (headers, trailers) = if http.client_gone {
                (None, None)
            } else {
                (response, http.response.passed.trailers.as_ref())
            };
            Some(int(bytes_sent(http)
                + byte_size(headers)
                + byte_size(trailers)))
        }
        [b"request", b"duration"] => Some(int(now_ns.saturating_sub(http.started_ns) as i64)),
        [b"response", b"backend_latency"] => {
            upstream_answered(http).then(|| int(now_ns.saturating_sub(http.started_ns) as i64))
        }
        [b"upstream", b"port"] => reached.then(|| int(UPSTREAM_PORT)),
        // No local address without a connection.
        [b"upstream", b"local_address"] => {
            (reached && !refused).then(|| UPSTREAM_LOCAL_ADDRESS.as_bytes().to_vec())
        }
        [b"upstream", b"transport_failure_reason"] => reached.then(|| {
            http.failure
                .map_or("", UpstreamFailure::transport_failure_reason)
                .as_bytes()
                .to_vec()
        }),
        [b"upstream", b"request_attempt_count"] => Some(int(i64::from(reached))),
        _ => None,
    }
}
