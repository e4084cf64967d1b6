//! `proxy_done`, `proxy_set_effective_context`, `proxy_get_status`,
//! `proxy_call_foreign_function` (the functions themselves are in `foreign.rs`).

use wasmtime::{Caller, Linker};
use weir_abi::{HostFunction, Status, HOST_MODULE};

use super::{read, read_string, return_bytes, status, write_u32};
use crate::state::HostState;

pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    // `Ok` only while the plugin is shutting down and its root context answered
    // `proxy_on_done` with false (from any of its contexts); `NotFound` otherwise
    // (proxy-wasm-cpp-host `WasmBase::done`; test `lifecycle::proxy_done_*`).
    linker.func_wrap(
        HOST_MODULE,
        HostFunction::Done.as_str(),
        |mut caller: Caller<'_, HostState>| {
            let proxy = &mut caller.data_mut().proxy;
            status(if proxy.root_awaiting_done && !proxy.root_done_called {
                proxy.root_done_called = true;
                Ok(())
            } else {
                Err(Status::NotFound.into())
            })
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        HostFunction::SetEffectiveContext.as_str(),
        |mut caller: Caller<'_, HostState>, context: u32| {
            let proxy = &mut caller.data_mut().proxy;
            status(
                if context == proxy.root_context || proxy.streams.contains_key(&context) {
                    proxy.active_context = context;
                    Ok(())
                } else {
                    Err(Status::BadArgument.into())
                },
            )
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        HostFunction::GetStatus.as_str(),
        |mut caller: Caller<'_, HostState>,
         code_ptr: u32,
         message_ptr: u32,
         message_size_ptr: u32| {
            // Only meaningful while a callout response is delivered: 0 (OK) for a response,
            // 14 (UNAVAILABLE) for a failed call, as gRPC status codes.
            // While a gRPC close is delivered: its status and message.
            let proxy = &caller.data().proxy;
            let (code, message) = match (&proxy.grpc.status, &proxy.call_response) {
                (Some(grpc), _) => (grpc.code, grpc.message.clone().into_bytes()),
                (None, Some(response)) if response.headers().is_empty() => (14, Vec::new()),
                (None, Some(_)) => (0, Vec::new()),
                (None, None) => return status(Err(Status::NotFound.into())),
            };
            status((|| {
                write_u32(&mut caller, code_ptr, code)?;
                return_bytes(&mut caller, &message, message_ptr, message_size_ptr)
            })())
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        HostFunction::CallForeignFunction.as_str(),
        |mut caller: Caller<'_, HostState>,
         name_ptr: u32,
         name_len: u32,
         args_ptr: u32,
         args_len: u32,
         results_ptr: u32,
         results_size_ptr: u32| {
            status((|| {
                let name = read_string(&mut caller, name_ptr, name_len)?;
                let args = read(&mut caller, args_ptr, args_len)?;
                let result = super::foreign::call(&mut caller.data_mut().proxy, &name, &args)?;
                return_bytes(&mut caller, &result, results_ptr, results_size_ptr)
            })())
        },
    )?;
    Ok(())
}
