//! `proxy_continue_stream`, `proxy_close_stream`, `proxy_send_local_response`.
//!
//! Continue and close are recorded and applied once the running callback returns, the way
//! Envoy defers filter-chain changes made from inside a filter callback.

use wasmtime::{Caller, Linker};
use weir_abi::{HostFunction, Status, StreamType, HOST_MODULE};

use super::headers::deserialize;
use super::{read, read_string, status, HostResult};
use crate::message::{Headers, LocalReply};
use crate::state::{HostState, ProxyState, Signal};

/// Envoy's `continueStream` / `closeStream` statuses: an unknown stream type is
/// `BadArgument`, continuing the upstream of a connection `Unimplemented`; anything else is
/// `Ok`, also when the context has no such stream to act on (a root context without an
/// effective stream context), where nothing happens.
pub(super) fn signal(
    proxy: &mut ProxyState,
    stream: u32,
    make: fn(StreamType) -> Signal,
) -> HostResult {
    let stream = StreamType::from_u32(stream).ok_or(Status::BadArgument)?;
    let signal = make(stream);
    match stream {
        StreamType::HttpRequest | StreamType::HttpResponse => {
            if let Some(http) = proxy.http() {
                if matches!(signal, Signal::Continue(_)) {
                    // Envoy's `continueStream` drops its pointers to the request's maps
                    // there and then, for either direction: from here on the plugin finds
                    // no request headers (`exerciser_header_maps_resumed`). The request
                    // trailers go once the resume has passed them on (`flows::http`).
                    http.request.headers_forgotten = true;
                }
                http.signals.push(signal);
            }
        }
        StreamType::Upstream if matches!(signal, Signal::Continue(_)) => {
            return Err(Status::Unimplemented.into())
        }
        StreamType::Downstream | StreamType::Upstream => {
            if let Some(tcp) = proxy.tcp() {
                tcp.signals.push(signal);
            }
        }
    }
    Ok(())
}

pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        HOST_MODULE,
        HostFunction::ContinueStream.as_str(),
        |mut caller: Caller<'_, HostState>, stream: u32| {
            status(signal(
                &mut caller.data_mut().proxy,
                stream,
                Signal::Continue,
            ))
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        HostFunction::CloseStream.as_str(),
        |mut caller: Caller<'_, HostState>, stream: u32| {
            status(signal(&mut caller.data_mut().proxy, stream, Signal::Close))
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        HostFunction::SendLocalResponse.as_str(),
        |mut caller: Caller<'_, HostState>,
         code: u32,
         details_ptr: u32,
         details_len: u32,
         body_ptr: u32,
         body_len: u32,
         headers_ptr: u32,
         headers_len: u32,
         grpc_status: i32| {
            status((|| {
                let details = read_string(&mut caller, details_ptr, details_len)?;
                let body = read(&mut caller, body_ptr, body_len)?;
                let headers = deserialize(&read(&mut caller, headers_ptr, headers_len)?)?;
                if !(100..=999).contains(&code) {
                    return Err(Status::BadArgument.into());
                }
                let http = caller.data_mut().proxy.http().ok_or(Status::BadArgument)?;
                if http.local_reply.is_none() {
                    http.local_reply = Some(LocalReply {
                        status: code as u16,
                        details,
                        headers: Headers::from_fields(&headers),
                        body,
                        grpc_status: (grpc_status >= 0).then_some(grpc_status as u32),
                    });
                }
                Ok(())
            })())
        },
    )?;
    Ok(())
}
