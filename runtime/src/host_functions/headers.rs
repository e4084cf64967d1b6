//! Header and trailer maps: `proxy_{get,set}_header_map_pairs`, `proxy_get_header_map_size`,
//! `proxy_{get,add,replace,remove}_header_map_value`.
//!
//! Names are lowercased on write and matched case-insensitively, as Envoy's header maps do.

use wasmtime::{Caller, Linker};
use weir_abi::{wire, HostFunction, MapType, Status, HOST_MODULE};

use super::{read, return_bytes, status, write_u32, HostResult};
use crate::abi_version::AbiVersion;
use crate::message::Fields;
use crate::state::{HostState, ProxyState};

/// The gRPC metadata maps, readable only while their callback runs (Envoy's root context
/// holds them); `None` for any other map.
fn grpc_metadata(proxy: &ProxyState, map: u32) -> Option<Option<&Fields>> {
    match MapType::from_u32(map)? {
        MapType::GrpcReceiveInitialMetadata => Some(proxy.grpc.initial_metadata.as_ref()),
        MapType::GrpcReceiveTrailingMetadata => Some(proxy.grpc.trailing_metadata.as_ref()),
        _ => None,
    }
}

/// A copy of the map the guest names, in the active context; `None` when the stream has
/// no such map (yet, or any more).
fn fields(proxy: &mut ProxyState, map: u32) -> Result<Option<Fields>, Status> {
    if let Some(metadata) = grpc_metadata(proxy, map) {
        return metadata.cloned().map(Some).ok_or(Status::BadArgument);
    }
    let map = MapType::from_u32(map).ok_or(Status::BadArgument)?;
    match map {
        MapType::HttpCallResponseHeaders => proxy
            .call_response
            .as_ref()
            .map(|r| Some(r.header_fields()))
            .ok_or(Status::BadArgument),
        MapType::HttpCallResponseTrailers => proxy
            .call_response
            .as_ref()
            .map(|r| Some(r.trailer_fields()))
            .ok_or(Status::BadArgument),
        _ => {
            let logging = proxy.access_log_phase;
            let http = proxy.http().ok_or(Status::BadArgument)?;
            Ok(match map {
                // Access loggers get the stream's header maps; elsewhere a header map whose
                // callback continued is forgotten (`exerciser_header_maps_*`).
                MapType::HttpRequestHeaders if http.request.headers_forgotten && !logging => None,
                MapType::HttpRequestHeaders => http.request.headers.clone(),
                // Envoy hands its access loggers no request trailers.
                MapType::HttpRequestTrailers if logging => None,
                MapType::HttpRequestTrailers => http.request.trailers.clone(),
                MapType::HttpResponseHeaders if http.response.headers_forgotten && !logging => None,
                MapType::HttpResponseHeaders => http.response.headers.clone(),
                // The trailers as they went on: Envoy forgets the map it handed a trailer
                // callback that continued, and gives its access loggers the sent ones.
                MapType::HttpResponseTrailers if logging => http.response.passed.trailers.clone(),
                MapType::HttpResponseTrailers => http.response.trailers.clone(),
                _ => return Err(Status::BadArgument),
            })
        }
    }
}

/// The writable map the guest names: request/response headers and trailers of the stream.
fn fields_mut(proxy: &mut ProxyState, map: u32) -> Result<&mut Fields, Status> {
    let map = MapType::from_u32(map).ok_or(Status::BadArgument)?;
    let http = proxy.http().ok_or(Status::BadArgument)?;
    let (direction, trailers) = match map {
        MapType::HttpRequestHeaders => (&mut http.request, false),
        MapType::HttpRequestTrailers => (&mut http.request, true),
        MapType::HttpResponseHeaders => (&mut http.response, false),
        MapType::HttpResponseTrailers => (&mut http.response, true),
        _ => return Err(Status::BadArgument),
    };
    if !trailers {
        // Once its callback continued Envoy has no header map to write or size, not even
        // in `on_log` (`exerciser_header_maps_*`).
        if direction.headers_forgotten {
            return Err(Status::BadArgument);
        }
        return direction.headers.as_mut().ok_or(Status::BadArgument);
    }
    // Missing trailers come to be in the direction's last body callback (Envoy's
    // addDecodedTrailers / addEncodedTrailers; scenario `exerciser_trailers_add`); elsewhere
    // there is no map to write (`exerciser_trailers_pass`).
    match direction.trailers {
        Some(ref mut fields) => Ok(fields),
        None if direction.trailers_creatable => Ok(direction.trailers.insert(Vec::new())),
        None => Err(Status::BadArgument),
    }
}

/// Adds a field where Envoy's header map puts it: a pseudo-header after the last
/// pseudo-header (they stay in front), anything else at the end. A replaced header is
/// removed and added this way too, so it moves (scenario `exerciser_header_order`).
fn insert(fields: &mut Fields, key: Vec<u8>, value: Vec<u8>) {
    let at = if key.starts_with(b":") {
        fields
            .iter()
            .rposition(|(k, _)| k.starts_with(b":"))
            .map_or(0, |last| last + 1)
    } else {
        fields.len()
    };
    fields.insert(at, (key, value));
}

fn key_matches(stored: &[u8], key: &[u8]) -> bool {
    stored.eq_ignore_ascii_case(key)
}

fn serialize(fields: &Fields) -> HostResult<Vec<u8>> {
    wire::try_encode_map(fields.iter().map(|(k, v)| (k, v)))
        .map_err(|_| Status::SerializationFailure.into())
}

pub(crate) fn deserialize(bytes: &[u8]) -> HostResult<Fields> {
    let pairs = wire::decode_map(bytes).map_err(|_| Status::BadArgument)?;
    Ok(pairs
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.to_vec()))
        .collect())
}

pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        HOST_MODULE,
        HostFunction::GetHeaderMapPairs.as_str(),
        |mut caller: Caller<'_, HostState>, map: u32, ptr_ptr: u32, size_ptr: u32| {
            status((|| {
                let proxy = &mut caller.data_mut().proxy;
                // A map the stream does not have reads as empty (Envoy `getHeaderMapPairs`),
                // and so does an absent gRPC metadata map; an empty map comes back as no
                // data at all, as from proxy-wasm-cpp-host.
                let fields = match grpc_metadata(proxy, map) {
                    Some(metadata) => metadata.cloned().unwrap_or_default(),
                    None => fields(proxy, map)?.unwrap_or_default(),
                };
                if fields.is_empty() {
                    return return_bytes(&mut caller, &[], ptr_ptr, size_ptr);
                }
                let bytes = serialize(&fields)?;
                return_bytes(&mut caller, &bytes, ptr_ptr, size_ptr)
            })())
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        HostFunction::GetHeaderMapSize.as_str(),
        |mut caller: Caller<'_, HostState>, map: u32, size_ptr: u32| {
            status((|| {
                let proxy = &mut caller.data_mut().proxy;
                // Envoy sizes only the maps a plugin may change (`Context::getMap`): not gRPC
                // metadata, not a callout's response (`exerciser_callout_allows`).
                if !matches!(
                    MapType::from_u32(map),
                    Some(
                        MapType::HttpRequestHeaders
                            | MapType::HttpRequestTrailers
                            | MapType::HttpResponseHeaders
                            | MapType::HttpResponseTrailers
                    )
                ) {
                    return Err(Status::BadArgument.into());
                }
                // Envoy sizes the writable map, which creates missing trailers in the last
                // body callback as a write does (`exerciser_trailers_add`).
                let headers = matches!(
                    MapType::from_u32(map),
                    Some(MapType::HttpRequestHeaders | MapType::HttpResponseHeaders)
                );
                let fields = match fields(proxy, map)? {
                    Some(fields) if !headers => fields,
                    _ => fields_mut(proxy, map)?.clone(),
                };
                // Envoy's `HeaderMap::byteSize`: the bytes of every name and value, not the
                // length of the serialized map (scenario `exerciser_trailers_pass`).
                let size: usize = fields.iter().map(|(k, v)| k.len() + v.len()).sum();
                write_u32(&mut caller, size_ptr, size as u32)
            })())
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        HostFunction::SetHeaderMapPairs.as_str(),
        |mut caller: Caller<'_, HostState>, map: u32, ptr: u32, len: u32| {
            status((|| {
                let new = deserialize(&read(&mut caller, ptr, len)?)?;
                *fields_mut(&mut caller.data_mut().proxy, map)? = new;
                Ok(())
            })())
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        HostFunction::GetHeaderMapValue.as_str(),
        |mut caller: Caller<'_, HostState>,
         map: u32,
         key_ptr: u32,
         key_len: u32,
         value_ptr: u32,
         value_size_ptr: u32| {
            status((|| {
                let key = read(&mut caller, key_ptr, key_len)?;
                let v0_1_0 = caller.data().abi == AbiVersion::V0_1_0;
                let proxy = &mut caller.data_mut().proxy;
                let logging = proxy.access_log_phase;
                // A map the stream does not have: `BadArgument`, but in `on_log` (say, the
                // response headers of a client that left first) like a missing header
                // (Envoy `Context::getHeaderMapValue`; scenario `exerciser_log_client_gone`).
                let fields = match fields(proxy, map)? {
                    Some(fields) => fields,
                    None if logging => Vec::new(),
                    None => return Err(Status::BadArgument.into()),
                };
                let value = fields
                    .iter()
                    .find(|(k, _)| key_matches(k, &key))
                    .map(|(_, v)| v.clone());
                // A missing header: `NotFound` from ABI 0.2.0 on, `Ok` with an empty value
                // for 0.1.0 modules (Envoy `Context::getHeaderMapValue` checks the ABI).
                let value = match value {
                    Some(value) => value,
                    None if v0_1_0 => Vec::new(),
                    None => return Err(Status::NotFound.into()),
                };
                return_bytes(&mut caller, &value, value_ptr, value_size_ptr)
            })())
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        HostFunction::AddHeaderMapValue.as_str(),
        |mut caller: Caller<'_, HostState>,
         map: u32,
         key_ptr: u32,
         key_len: u32,
         value_ptr: u32,
         value_len: u32| {
            status((|| {
                let key = read(&mut caller, key_ptr, key_len)?.to_ascii_lowercase();
                let value = read(&mut caller, value_ptr, value_len)?;
                insert(fields_mut(&mut caller.data_mut().proxy, map)?, key, value);
                Ok(())
            })())
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        HostFunction::ReplaceHeaderMapValue.as_str(),
        |mut caller: Caller<'_, HostState>,
         map: u32,
         key_ptr: u32,
         key_len: u32,
         value_ptr: u32,
         value_len: u32| {
            status((|| {
                let key = read(&mut caller, key_ptr, key_len)?.to_ascii_lowercase();
                let value = read(&mut caller, value_ptr, value_len)?;
                let fields = fields_mut(&mut caller.data_mut().proxy, map)?;
                // Envoy's `setCopy`: every value goes, the new one is added as if new.
                fields.retain(|(k, _)| !key_matches(k, &key));
                insert(fields, key, value);
                Ok(())
            })())
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        HostFunction::RemoveHeaderMapValue.as_str(),
        |mut caller: Caller<'_, HostState>, map: u32, key_ptr: u32, key_len: u32| {
            status((|| {
                let key = read(&mut caller, key_ptr, key_len)?;
                fields_mut(&mut caller.data_mut().proxy, map)?
                    .retain(|(k, _)| !key_matches(k, &key));
                Ok(())
            })())
        },
    )?;
    Ok(())
}
