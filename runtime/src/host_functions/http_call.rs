//! `proxy_http_call`: routed by cluster name to a handler the test registered. The response
//! is delivered through `proxy_on_http_call_response` after the current callback, when the
//! virtual clock reaches it (immediately, unless the handler asked for a delay). What the
//! cluster receives and which calls are refused follow Envoy (scenarios
//! `exerciser_callout_body`, `exerciser_callout_huge_timeout`).

use std::time::Duration;

use wasmtime::{Caller, Linker};
use weir_abi::{HostFunction, Status, HOST_MODULE};

use super::headers::deserialize;
use super::{read, read_string, status, write_u32};
use crate::message::{Response, UpstreamFailure};
use crate::outcome::Callout;
use crate::state::{callout_request, HostState, PendingCall};

pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        HOST_MODULE,
        HostFunction::HttpCall.as_str(),
        |mut caller: Caller<'_, HostState>,
         cluster_ptr: u32,
         cluster_len: u32,
         headers_ptr: u32,
         headers_len: u32,
         body_ptr: u32,
         body_len: u32,
         trailers_ptr: u32,
         trailers_len: u32,
         timeout_ms: u32,
         call_id_ptr: u32| {
            status((|| {
                let cluster = read_string(&mut caller, cluster_ptr, cluster_len)?;
                let headers = deserialize(&read(&mut caller, headers_ptr, headers_len)?)?;
                let body = read(&mut caller, body_ptr, body_len)?;
                let trailers = deserialize(&read(&mut caller, trailers_ptr, trailers_len)?)?;
                let Some(handler) = caller
                    .data()
                    .proxy
                    .shared
                    .settings
                    .upstreams
                    .get(&cluster)
                    .cloned()
                else {
                    return Err(Status::BadArgument.into());
                };
                // Envoy refuses a call without the pseudo-headers it needs to route it.
                for required in [&b":method"[..], b":path", b":authority"] {
                    if !headers.iter().any(|(k, _)| k == required) {
                        return Err(Status::BadArgument.into());
                    }
                }
                // Envoy reads the timeout as a signed 32-bit value and refuses a negative one.
                if (timeout_ms as i32) < 0 {
                    return Err(Status::BadArgument.into());
                }
                // Envoy frames a body with its length, whatever the plugin sent.
                let mut headers = headers;
                if !body.is_empty() {
                    headers.retain(|(k, _)| !k.eq_ignore_ascii_case(b"content-length"));
                    headers.push((
                        b"content-length".to_vec(),
                        body.len().to_string().into_bytes(),
                    ));
                }
                write_u32(&mut caller, call_id_ptr, 0)?;
                let request = callout_request(headers, body, trailers);
                let timeout = Duration::from_millis(u64::from(timeout_ms));
                let answer = handler(&request);
                // No host to send it to: Envoy's async client fails the call while sending,
                // so `proxy_http_call` fails and no response callback follows.
                if answer.upstream_failure == Some(UpstreamFailure::NoHealthyHost) {
                    return Err(Status::InternalFailure.into());
                }
                let (response, delay) = if answer.delay > timeout {
                    (Response::timeout(), timeout)
                } else {
                    (answer.clone().with_service_time(answer.delay), answer.delay)
                };
                let proxy = &mut caller.data_mut().proxy;
                let call_id = proxy.next_call_id;
                proxy.next_call_id = proxy.next_call_id.wrapping_add(1).max(1);
                let context = proxy.active_context;
                let due_ns = proxy
                    .now_ns()
                    .saturating_add(delay.as_nanos().min(u128::from(u64::MAX)) as u64);
                let record = Callout {
                    cluster,
                    request,
                    timeout,
                    response: Some(response.clone()),
                };
                proxy.journal.callouts.push((context, record));
                proxy.pending_calls.push(PendingCall {
                    call_id,
                    context,
                    due_ns,
                    response,
                });
                write_u32(&mut caller, call_id_ptr, call_id)
            })())
        },
    )?;
    Ok(())
}
