//! `proxy_get_property`, `proxy_set_property`.
//!
//! Lookup order: what the guest (or the test, per stream) set on this stream, what the
//! test set for the plugin, then values derived per stream like Envoy's (`request.*` from the request headers, `plugin_*` from the plugin settings,
//! fixed addresses for `source.*` and `destination.*`). Integers are 8-byte little-endian,
//! booleans one byte, strings raw, as Envoy serializes them.

use wasmtime::{Caller, Linker};
use weir_abi::{wire, HostFunction, Status, HOST_MODULE};

use super::{read, return_bytes, status, stream_info};
use crate::message::Fields;
use crate::state::{HostState, ProxyState, StreamState};

/// Default addresses, the shape Envoy reports (`ip:port`).
pub(crate) const SOURCE_ADDRESS: &str = "10.0.0.1";
pub(crate) const SOURCE_PORT: i64 = 50_000;
pub(crate) const DESTINATION_ADDRESS: &str = "10.0.0.2";
pub(crate) const DESTINATION_PORT: i64 = 8080;
/// The upstream host a request reached, reported once it did (Envoy: the endpoint picked).
pub(crate) const UPSTREAM_ADDRESS: &str = "10.0.0.3:8080";

fn int(value: i64) -> Vec<u8> {
    value.to_le_bytes().to_vec()
}

fn header<'a>(fields: &'a Fields, name: &[u8]) -> Option<&'a [u8]> {
    fields
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_slice())
}

fn derived(proxy: &mut ProxyState, segments: &[&[u8]]) -> Option<Vec<u8>> {
    let settings = &proxy.shared.settings;
    let text = |s: &str| Some(s.as_bytes().to_vec());
    match segments {
        [b"plugin_name"] => return text(&settings.name),
        [b"plugin_root_id"] => return text(&settings.root_id),
        [b"plugin_vm_id"] => return text(&settings.vm_id),
        [b"source", b"address"] => return text(&format!("{SOURCE_ADDRESS}:{SOURCE_PORT}")),
        [b"source", b"port"] => return Some(int(SOURCE_PORT)),
        [b"destination", b"address"] => {
            return text(&format!("{DESTINATION_ADDRESS}:{DESTINATION_PORT}"))
        }
        [b"destination", b"port"] => return Some(int(DESTINATION_PORT)),
        [b"connection", b"mtls"] => return Some(vec![0]),
        [b"connection", b"requested_server_name"] => return Some(Vec::new()),
        _ => {}
    }
    let context = proxy.active_context;
    if segments == [b"connection".as_slice(), b"id"] && proxy.streams.contains_key(&context) {
        return Some(u64::from(context).to_le_bytes().to_vec());
    }
    let now = proxy.now_ns();
    let Some(StreamState::Http(http)) = proxy.streams.get(&context) else {
        return None;
    };
    let request = http.request.headers.as_ref();
    let response = http.response.headers.as_ref();
    let req = |name: &[u8]| request.and_then(|h| header(h, name)).map(<[u8]>::to_vec);
    match segments {
        [b"request", b"path"] => req(b":path"),
        [b"request", b"url_path"] => {
            req(b":path").map(|p| p.split(|b| *b == b'?').next().unwrap_or_default().to_vec())
        }
        [b"request", b"query"] => req(b":path").map(|p| match p.iter().position(|b| *b == b'?') {
            Some(at) => p[at + 1..].to_vec(),
            None => Vec::new(),
        }),
        [b"request", b"host"] => req(b":authority"),
        [b"request", b"scheme"] => req(b":scheme"),
        [b"request", b"method"] => req(b":method"),
        [b"request", b"id"] => req(b"x-request-id"),
        [b"request", b"useragent"] => req(b"user-agent"),
        [b"request", b"referer"] => req(b"referer"),
        [b"request", b"protocol"] => Some(b"HTTP/1.1".to_vec()),
        [b"request", b"time"] => Some(int(now as i64)),
        [b"request", b"headers"] => {
            request.and_then(|h| wire::try_encode_map(h.iter().map(|(k, v)| (k, v))).ok())
        }
        [b"request", b"headers", name] => request.and_then(|h| header(h, name)).map(<[u8]>::to_vec),
        [b"response", b"headers"] => {
            response.and_then(|h| wire::try_encode_map(h.iter().map(|(k, v)| (k, v))).ok())
        }
        [b"response", b"headers", name] => {
            response.and_then(|h| header(h, name)).map(<[u8]>::to_vec)
        }
        // The code the client gets: a local reply's (also one sent from the response
        // phase, replacing the upstream's), else the response headers' (scenarios
        // `exerciser_props_*`); none when the client left before any response.
        [b"response", b"code"] => match &http.local_reply {
            Some(reply) => Some(int(i64::from(reply.status))),
            None if http.client_gone => None,
            None => response
                .and_then(|h| header(h, b":status"))
                .and_then(|s| std::str::from_utf8(s).ok()?.parse::<i64>().ok())
                .map(int),
        },
        // What Envoy recorded when it decided the end itself (router timeout or reset,
        // client gone); a local reply's details (Envoy reports none for empty ones);
        // `via_upstream` for the upstream's response; nothing before a response.
        [b"response", b"code_details"] => match (&http.details, &http.local_reply) {
            (Some(details), _) => Some(details.as_bytes().to_vec()),
            (None, Some(reply)) => {
                (!reply.details.is_empty()).then(|| reply.details.as_bytes().to_vec())
            }
            (None, None) => response.map(|_| b"via_upstream".to_vec()),
        },
        // Present once the request reached an upstream.
        [b"upstream", b"address"] => {
            stream_info::upstream_reached(http).then(|| UPSTREAM_ADDRESS.as_bytes().to_vec())
        }
        _ => stream_info::derive(http, segments, now),
    }
}

fn stream_properties(proxy: &mut ProxyState) -> &mut std::collections::HashMap<Vec<u8>, Vec<u8>> {
    let context = proxy.active_context;
    match proxy.streams.get_mut(&context) {
        Some(StreamState::Http(http)) => &mut http.properties,
        Some(StreamState::Tcp(tcp)) => &mut tcp.properties,
        None => &mut proxy.root_properties,
    }
}

/// Normal form of a path: segments joined by `\0`, no trailing `\0`.
pub(crate) fn normalize(path: &[u8]) -> Vec<u8> {
    wire::encode_path(wire::decode_path(path))
}

pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        HOST_MODULE,
        HostFunction::GetProperty.as_str(),
        |mut caller: Caller<'_, HostState>,
         path_ptr: u32,
         path_len: u32,
         value_ptr: u32,
         value_size_ptr: u32| {
            status((|| {
                let path = normalize(&read(&mut caller, path_ptr, path_len)?);
                let proxy = &mut caller.data_mut().proxy;
                let value = match stream_properties(proxy).get(&path) {
                    Some(value) => Some(value.clone()),
                    None => match proxy.shared.settings.properties.get(&path) {
                        Some(value) => Some(value.clone()),
                        None => derived(proxy, &wire::decode_path(&path)),
                    },
                };
                let value = value.ok_or(Status::NotFound)?;
                return_bytes(&mut caller, &value, value_ptr, value_size_ptr)
            })())
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        HostFunction::SetProperty.as_str(),
        |mut caller: Caller<'_, HostState>,
         path_ptr: u32,
         path_len: u32,
         value_ptr: u32,
         value_len: u32| {
            status((|| {
                let path = normalize(&read(&mut caller, path_ptr, path_len)?);
                let value = read(&mut caller, value_ptr, value_len)?;
                if path.is_empty() {
                    return Err(Status::BadArgument.into());
                }
                stream_properties(&mut caller.data_mut().proxy).insert(path, value);
                Ok(())
            })())
        },
    )?;
    Ok(())
}
