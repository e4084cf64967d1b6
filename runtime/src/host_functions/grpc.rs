//! `proxy_grpc_call`, `proxy_grpc_stream`, `proxy_grpc_send`, `proxy_grpc_cancel`,
//! `proxy_grpc_close`: routed by cluster to the test's gRPC handlers, answered through
//! [`crate::state::grpc`]. Statuses follow Envoy 1.40 (`Context::grpcCall` and friends):
//!
//! - the service argument is a cluster name, or a serialized `GrpcService`; a name Envoy
//!   cannot parse as one and that names no cluster is `ParseFailure`;
//! - send, close and cancel on a token of the wrong kind are `BadArgument`, on one that is
//!   not (or no longer) open `NotFound`;
//! - every pointer is checked first (`InvalidMemoryAccess`).

use std::time::Duration;

use wasmtime::{Caller, Linker};
use weir_abi::{wire, HostFunction, Status, HOST_MODULE};

use super::{read, status, write_u32, HostResult};
use crate::grpc::{GrpcAnswer, GrpcCall, GrpcReply, GrpcRequest};
use crate::message::Headers;
use crate::state::grpc::token_kind;
use crate::state::HostState;

/// What the guest passed to open a call or a stream.
struct Opening {
    service_arg: Vec<u8>,
    service: Vec<u8>,
    method: Vec<u8>,
    metadata: Vec<u8>,
    message: Vec<u8>,
    timeout_ms: u32,
    streaming: bool,
}

/// Opens a call or stream; returns its token.
fn open(caller: &mut Caller<'_, HostState>, opening: Opening) -> HostResult<u32> {
    let cluster = resolve_cluster(caller, &opening.service_arg)?;
    let proxy = &mut caller.data_mut().proxy;
    let handler = proxy.shared.settings.grpc_upstreams.get(&cluster).cloned();
    // Envoy reads malformed metadata as none.
    let metadata = wire::decode_map(&opening.metadata)
        .map(|pairs| {
            let fields: Vec<(Vec<u8>, Vec<u8>)> = pairs
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.to_vec()))
                .collect();
            Headers::from_fields(&fields)
        })
        .unwrap_or_default();
    let timeout = (!opening.streaming && opening.timeout_ms > 0)
        .then(|| Duration::from_millis(u64::from(opening.timeout_ms)));
    let request = GrpcRequest {
        service: String::from_utf8_lossy(&opening.service).into_owned(),
        method: String::from_utf8_lossy(&opening.method).into_owned(),
        initial_metadata: metadata,
        message: opening.message,
        timeout,
        streaming: opening.streaming,
    };
    let answer = match handler {
        Some(handler) => handler(&request),
        // A cluster the test gave only an HTTP handler: a server that does not speak
        // gRPC answers 404, which the gRPC client reads as UNIMPLEMENTED.
        None => GrpcAnswer::Reply(GrpcReply::error(crate::grpc::code::UNIMPLEMENTED, "")),
    };
    let token = proxy.grpc.next_token(opening.streaming);
    let now = proxy.now_ns();
    let timeout_ns = timeout.map(|t| t.as_nanos() as u64);
    proxy.grpc.open(
        token,
        opening.streaming,
        answer.into_script(),
        now,
        timeout_ns,
    );
    let context = proxy.active_context;
    proxy.journal.grpc_calls.push((
        context,
        GrpcCall {
            token,
            cluster,
            request,
            sent: Vec::new(),
            client_ended: !opening.streaming,
            cancelled: false,
            received: Vec::new(),
            status: None,
        },
    ));
    Ok(token)
}

/// The cluster a call goes to: the argument as a cluster name, or the `envoy_grpc`
/// cluster of a serialized `GrpcService`. Envoy tries the protobuf first.
fn resolve_cluster(caller: &mut Caller<'_, HostState>, arg: &[u8]) -> HostResult<String> {
    let settings = &caller.data().proxy.shared.settings;
    let known = |name: &str| {
        settings.grpc_upstreams.contains_key(name) || settings.upstreams.contains_key(name)
    };
    match parse_grpc_service(arg) {
        // Not a `GrpcService`: a cluster name, and Envoy's status for an unknown one is
        // `ParseFailure` (it says why in a TODO: kept from ABI 0.1.x).
        None => match std::str::from_utf8(arg) {
            Ok(name) if known(name) => Ok(name.to_string()),
            _ => Err(Status::ParseFailure.into()),
        },
        Some(Some(name)) if known(&name) => Ok(name),
        // A `GrpcService` Envoy cannot build a client for, or one for a cluster it does
        // not have (Envoy answers the second with a failed call; the runtime refuses it).
        Some(_) => Err(Status::BadArgument.into()),
    }
}

/// Parses bytes as a protobuf `envoy.config.core.v3.GrpcService`: `None` if they are not
/// a well-formed message, else the `envoy_grpc.cluster_name`, if set.
fn parse_grpc_service(bytes: &[u8]) -> Option<Option<String>> {
    let mut cluster = None;
    for (field, value) in protobuf_fields(bytes)? {
        if let (1, Some(envoy_grpc)) = (field, value) {
            for (inner, value) in protobuf_fields(envoy_grpc)? {
                if let (1, Some(name)) = (inner, value) {
                    cluster = Some(String::from_utf8(name.to_vec()).ok()?);
                }
            }
        }
    }
    Some(cluster)
}

/// A protobuf field: its number, and its bytes if it is length-delimited.
type Field<'a> = (u64, Option<&'a [u8]>);

/// The fields of a protobuf message, or `None` if the wire format is broken.
fn protobuf_fields(mut bytes: &[u8]) -> Option<Vec<Field<'_>>> {
    let mut fields = Vec::new();
    let mut groups = 0usize;
    while !bytes.is_empty() {
        let tag = varint(&mut bytes)?;
        let (field, wire_type) = (tag >> 3, tag & 7);
        if field == 0 {
            return None;
        }
        let value = match wire_type {
            0 => varint(&mut bytes).map(|_| None)?,
            1 => take(&mut bytes, 8).map(|_| None)?,
            2 => {
                let len = usize::try_from(varint(&mut bytes)?).ok()?;
                Some(take(&mut bytes, len)?)
            }
            3 => {
                groups += 1;
                None
            }
            4 => {
                groups = groups.checked_sub(1)?;
                None
            }
            5 => take(&mut bytes, 4).map(|_| None)?,
            _ => return None,
        };
        fields.push((field, value));
    }
    (groups == 0).then_some(fields)
}

fn varint(bytes: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..70).step_by(7) {
        let (&byte, rest) = bytes.split_first()?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

fn take<'a>(bytes: &mut &'a [u8], len: usize) -> Option<&'a [u8]> {
    if bytes.len() < len {
        return None;
    }
    let (head, rest) = bytes.split_at(len);
    *bytes = rest;
    Some(head)
}

/// Checks a token of an open call or stream: `BadArgument` for one of neither kind
/// (or of a call where a stream is needed), `NotFound` for one not open.
fn open_call(caller: &Caller<'_, HostState>, token: u32, need_stream: bool) -> HostResult<bool> {
    let streaming = token_kind(token).ok_or(Status::BadArgument)?;
    if need_stream && !streaming {
        return Err(Status::BadArgument.into());
    }
    if !caller.data().proxy.grpc.calls.contains_key(&token) {
        return Err(Status::NotFound.into());
    }
    Ok(streaming)
}

fn send(caller: &mut Caller<'_, HostState>, token: u32, message: Vec<u8>, end: bool) -> HostResult {
    open_call(caller, token, true)?;
    let proxy = &mut caller.data_mut().proxy;
    crate::state::grpc::record(proxy, token, |c| {
        c.sent.push(message);
        c.client_ended |= end;
    });
    if end {
        let now = proxy.now_ns();
        proxy.grpc.client_end(token, now);
    }
    Ok(())
}

/// `proxy_grpc_cancel`, and `proxy_grpc_close` on a unary call: no callback follows.
fn cancel(caller: &mut Caller<'_, HostState>, token: u32) -> HostResult {
    open_call(caller, token, false)?;
    let proxy = &mut caller.data_mut().proxy;
    proxy.grpc.drop_call(token);
    crate::state::grpc::record(proxy, token, |c| c.cancelled = true);
    Ok(())
}

/// `proxy_grpc_close`: a unary call is cancelled, a stream half-closed (the server's
/// answers still arrive); a stream the server closed already is forgotten.
fn close(caller: &mut Caller<'_, HostState>, token: u32) -> HostResult {
    if !open_call(caller, token, false)? {
        return cancel(caller, token);
    }
    let proxy = &mut caller.data_mut().proxy;
    crate::state::grpc::record(proxy, token, |c| c.client_ended = true);
    let now = proxy.now_ns();
    let remote_closed = match proxy.grpc.calls.get_mut(&token) {
        Some(call) => {
            call.local_closed = true;
            call.remote_closed
        }
        None => false,
    };
    if remote_closed {
        proxy.grpc.drop_call(token);
    } else {
        proxy.grpc.client_end(token, now);
    }
    Ok(())
}

pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        HOST_MODULE,
        HostFunction::GrpcCall.as_str(),
        |mut caller: Caller<'_, HostState>,
         service_arg_ptr: u32,
         service_arg_len: u32,
         service_ptr: u32,
         service_len: u32,
         method_ptr: u32,
         method_len: u32,
         metadata_ptr: u32,
         metadata_len: u32,
         message_ptr: u32,
         message_len: u32,
         timeout_ms: u32,
         token_ptr: u32| {
            status((|| {
                let opening = Opening {
                    service_arg: read(&mut caller, service_arg_ptr, service_arg_len)?,
                    service: read(&mut caller, service_ptr, service_len)?,
                    method: read(&mut caller, method_ptr, method_len)?,
                    metadata: read(&mut caller, metadata_ptr, metadata_len)?,
                    message: read(&mut caller, message_ptr, message_len)?,
                    timeout_ms,
                    streaming: false,
                };
                let token = open(&mut caller, opening)?;
                write_u32(&mut caller, token_ptr, token)
            })())
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        HostFunction::GrpcStream.as_str(),
        |mut caller: Caller<'_, HostState>,
         service_arg_ptr: u32,
         service_arg_len: u32,
         service_ptr: u32,
         service_len: u32,
         method_ptr: u32,
         method_len: u32,
         metadata_ptr: u32,
         metadata_len: u32,
         token_ptr: u32| {
            status((|| {
                let opening = Opening {
                    service_arg: read(&mut caller, service_arg_ptr, service_arg_len)?,
                    service: read(&mut caller, service_ptr, service_len)?,
                    method: read(&mut caller, method_ptr, method_len)?,
                    metadata: read(&mut caller, metadata_ptr, metadata_len)?,
                    message: Vec::new(),
                    timeout_ms: 0,
                    streaming: true,
                };
                let token = open(&mut caller, opening)?;
                write_u32(&mut caller, token_ptr, token)
            })())
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        HostFunction::GrpcSend.as_str(),
        |mut caller: Caller<'_, HostState>,
         token: u32,
         message_ptr: u32,
         message_len: u32,
         end: u32| {
            status((|| {
                let message = read(&mut caller, message_ptr, message_len)?;
                send(&mut caller, token, message, end != 0)
            })())
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        HostFunction::GrpcCancel.as_str(),
        |mut caller: Caller<'_, HostState>, token: u32| status(cancel(&mut caller, token)),
    )?;
    linker.func_wrap(
        HOST_MODULE,
        HostFunction::GrpcClose.as_str(),
        |mut caller: Caller<'_, HostState>, token: u32| status(close(&mut caller, token)),
    )?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::parse_grpc_service;

    #[test]
    fn cluster_names_do_not_parse_as_grpc_service() {
        for name in [
            "grpc_cluster",
            "ext_authz",
            "policy",
            "outbound|9191||authz.svc",
        ] {
            assert_eq!(parse_grpc_service(name.as_bytes()), None, "{name}");
        }
    }

    #[test]
    fn grpc_service_names_its_envoy_grpc_cluster() {
        // envoy_grpc { cluster_name: "authz" }
        let inner = [&[0x0a, 5][..], b"authz"].concat();
        let outer = [&[0x0a, inner.len() as u8][..], &inner].concat();
        assert_eq!(parse_grpc_service(&outer), Some(Some("authz".to_string())));
        assert_eq!(parse_grpc_service(b""), Some(None));
        assert_eq!(parse_grpc_service(&outer[..outer.len() - 1]), None);
    }
}
