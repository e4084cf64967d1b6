//! `proxy_done`, `proxy_set_effective_context`, `proxy_get_status`,
//! `proxy_call_foreign_function`.

use wasmtime::{Caller, Linker};
use weir_abi::Status;

use super::{read_string, return_bytes, status, write_u32};
use crate::host_state::HostState;

pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap("env", "proxy_done", |mut caller: Caller<'_, HostState>| {
        let proxy = &mut caller.data_mut().proxy;
        status(if proxy.streams.contains_key(&proxy.active_context) || proxy.active_context == proxy.root_context {
            proxy.done_called = true;
            Ok(())
        } else {
            Err(Status::NotFound.into())
        })
    })?;
    linker.func_wrap("env", "proxy_set_effective_context", |mut caller: Caller<'_, HostState>, context: u32| {
        let proxy = &mut caller.data_mut().proxy;
        status(if context == proxy.root_context || proxy.streams.contains_key(&context) {
            proxy.active_context = context;
            Ok(())
        } else {
            Err(Status::BadArgument.into())
        })
    })?;
    linker.func_wrap(
        "env",
        "proxy_get_status",
        |mut caller: Caller<'_, HostState>, code_ptr: u32, message_ptr: u32, message_size_ptr: u32| {
            // Only meaningful while a callout response is delivered: 0 (OK) for a response,
            // 14 (UNAVAILABLE) for a failed call, as gRPC status codes.
            let code = match &caller.data().proxy.call_response {
                Some(response) if response.headers().is_empty() => 14,
                Some(_) => 0,
                None => return status(Err(Status::NotFound.into())),
            };
            status((|| {
                write_u32(&mut caller, code_ptr, code)?;
                return_bytes(&mut caller, b"", message_ptr, message_size_ptr)
            })())
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_call_foreign_function",
        |mut caller: Caller<'_, HostState>,
         name_ptr: u32,
         name_len: u32,
         _args_ptr: u32,
         _args_len: u32,
         _results_ptr: u32,
         _results_size_ptr: u32| {
            // Envoy's foreign functions (compression, filter state, …) are host extensions;
            // an unknown name is NotFound there too.
            status(read_string(&mut caller, name_ptr, name_len).and_then(|_| Err(Status::NotFound.into())))
        },
    )?;
    Ok(())
}
