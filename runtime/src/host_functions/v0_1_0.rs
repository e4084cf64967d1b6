//! The host functions only ABI 0.1.0 has, each a thin layer over the shared implementation
//! (the linker offers them to 0.1.0 modules only, see [`crate::abi_version`]).

use wasmtime::{Caller, Linker};
use weir_abi::{HostFunction, StreamType, HOST_MODULE};

use super::streams::signal;
use super::{return_bytes, status};
use crate::state::{HostState, Signal};

pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    // 0.2.0 split it into `proxy_get_buffer_bytes(VM_CONFIGURATION | PLUGIN_CONFIGURATION)`.
    // Envoy's `Context::getConfiguration` serves the plugin configuration while
    // `proxy_on_configure` runs and the VM configuration at any other time.
    linker.func_wrap(
        HOST_MODULE,
        HostFunction::GetConfiguration.as_str(),
        |mut caller: Caller<'_, HostState>, ptr_ptr: u32, size_ptr: u32| {
            let proxy = &caller.data().proxy;
            let value = if proxy.configuring {
                proxy.plugin_config.clone()
            } else {
                proxy.vm_config.clone()
            };
            status(return_bytes(&mut caller, &value, ptr_ptr, size_ptr))
        },
    )?;
    // `proxy_continue_stream(HTTP_REQUEST | HTTP_RESPONSE)` from 0.2.0 on.
    linker.func_wrap(
        HOST_MODULE,
        HostFunction::ContinueRequest.as_str(),
        |mut caller: Caller<'_, HostState>| {
            status(signal(
                &mut caller.data_mut().proxy,
                StreamType::HttpRequest as u32,
                Signal::Continue,
            ))
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        HostFunction::ContinueResponse.as_str(),
        |mut caller: Caller<'_, HostState>| {
            status(signal(
                &mut caller.data_mut().proxy,
                StreamType::HttpResponse as u32,
                Signal::Continue,
            ))
        },
    )?;
    // Envoy re-resolves the route; weir-runtime has no routing table, so there is nothing to
    // clear. Envoy returns `Ok` unconditionally (proxy-wasm-cpp-host `exports::clear_route_cache`).
    linker.func_wrap(
        HOST_MODULE,
        HostFunction::ClearRouteCache.as_str(),
        |_caller: Caller<'_, HostState>| -> u32 { weir_abi::Status::Ok as u32 },
    )?;
    Ok(())
}
