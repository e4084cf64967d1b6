//! `proxy_get_buffer_bytes`, `proxy_set_buffer_bytes`, `proxy_get_buffer_status`.

use wasmtime::{Caller, Linker};
use weir_abi::{BufferType, HostFunction, Status, HOST_MODULE};

use super::{read, return_bytes, status, write_u32};
use crate::state::{HostState, ProxyState};

/// A copy of the buffer the guest names.
fn buffer(proxy: &mut ProxyState, kind: u32) -> Result<Vec<u8>, Status> {
    let kind = BufferType::from_u32(kind).ok_or(Status::BadArgument)?;
    match kind {
        BufferType::VmConfiguration => Ok(proxy.vm_config.clone()),
        BufferType::PluginConfiguration => Ok(proxy.plugin_config.clone()),
        BufferType::HttpCallResponseBody => proxy
            .call_response
            .as_ref()
            .map(|r| r.body_bytes().to_vec())
            .ok_or(Status::NotFound),
        // Envoy hands out the root context's gRPC buffer: empty outside a receive.
        BufferType::GrpcReceiveBuffer => Ok(proxy.grpc.receive_buffer.clone().unwrap_or_default()),
        BufferType::CallData => Err(Status::NotFound),
        _ => buffer_mut(proxy, kind as u32).map(|b| b.clone()),
    }
}

/// The writable data buffer of the active stream.
fn buffer_mut(proxy: &mut ProxyState, kind: u32) -> Result<&mut Vec<u8>, Status> {
    match BufferType::from_u32(kind).ok_or(Status::BadArgument)? {
        BufferType::HttpRequestBody => Ok(&mut proxy.http().ok_or(Status::NotFound)?.request.body),
        BufferType::HttpResponseBody => {
            Ok(&mut proxy.http().ok_or(Status::NotFound)?.response.body)
        }
        BufferType::DownstreamData => Ok(&mut proxy.tcp().ok_or(Status::NotFound)?.downstream),
        BufferType::UpstreamData => Ok(&mut proxy.tcp().ok_or(Status::NotFound)?.upstream),
        _ => Err(Status::BadArgument),
    }
}

/// Envoy's rules: from `start == 0`, drain `size` bytes (all of them when `size` is the
/// length or more), then prepend the data, which covers prepending (`size == 0`), replacing
/// a prefix and replacing everything; at or past the end, append; any other splice (in the
/// middle) is `BadArgument`. Scenario `exerciser_body_splice` pins each case in Envoy 1.40.
fn splice(buffer: &mut Vec<u8>, start: usize, size: usize, data: Vec<u8>) -> Result<(), Status> {
    if start == 0 {
        let drained = size.min(buffer.len());
        buffer.splice(0..drained, data);
    } else if start >= buffer.len() {
        buffer.extend_from_slice(&data);
    } else {
        return Err(Status::BadArgument);
    }
    Ok(())
}

pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        HOST_MODULE,
        HostFunction::GetBufferBytes.as_str(),
        |mut caller: Caller<'_, HostState>,
         kind: u32,
         start: u32,
         max_size: u32,
         ptr_ptr: u32,
         size_ptr: u32| {
            status((|| {
                let bytes = buffer(&mut caller.data_mut().proxy, kind)?;
                let start = start as usize;
                if start > bytes.len() {
                    return Err(Status::BadArgument.into());
                }
                // SDKs pass usize::MAX as max_size: clamp to what is there.
                let end = start.saturating_add(max_size as usize).min(bytes.len());
                return_bytes(&mut caller, &bytes[start..end], ptr_ptr, size_ptr)
            })())
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        HostFunction::SetBufferBytes.as_str(),
        |mut caller: Caller<'_, HostState>,
         kind: u32,
         start: u32,
         size: u32,
         data_ptr: u32,
         data_len: u32| {
            status((|| {
                let data = read(&mut caller, data_ptr, data_len)?;
                let buffer = buffer_mut(&mut caller.data_mut().proxy, kind)?;
                Ok(splice(buffer, start as usize, size as usize, data)?)
            })())
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        HostFunction::GetBufferStatus.as_str(),
        |mut caller: Caller<'_, HostState>, kind: u32, size_ptr: u32, flags_ptr: u32| {
            status((|| {
                let len = buffer(&mut caller.data_mut().proxy, kind)?.len();
                write_u32(&mut caller, size_ptr, len as u32)?;
                write_u32(&mut caller, flags_ptr, 0)
            })())
        },
    )?;
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::splice;
    use weir_abi::Status;

    #[test]
    fn splice_follows_envoy_rules() {
        let mut b = b"body".to_vec();
        splice(&mut b, 0, 0, b">".to_vec()).unwrap();
        assert_eq!(b, b">body");
        splice(&mut b, 5, 0, b"<".to_vec()).unwrap();
        assert_eq!(b, b">body<");
        splice(&mut b, 0, usize::MAX, b"new".to_vec()).unwrap();
        assert_eq!(b, b"new");
        splice(&mut b, 0, 2, b"NE".to_vec()).unwrap();
        assert_eq!(b, b"NEw");
        splice(&mut b, 0, 1, b"".to_vec()).unwrap();
        assert_eq!(b, b"Ew");
        assert_eq!(
            splice(&mut b, 1, 1, b"x".to_vec()),
            Err(Status::BadArgument)
        );
    }
}
