//! `proxy_done`, `proxy_set_effective_context`, `proxy_get_status`,
//! `proxy_call_foreign_function` with Envoy's general-purpose foreign functions.

use wasmtime::{Caller, Linker};
use weir_abi::Status;

use super::{read, read_string, return_bytes, status, write_u32, HostResult};
use crate::host_state::HostState;

/// The foreign functions Envoy registers for every module that need no Envoy internals:
/// zlib `compress` / `uncompress` (a stream zlib cannot read is `SerializationFailure`) and
/// `clear_route_cache` (no route table here). Any other name is `NotFound`, as in Envoy for
/// a name it does not provide; `FIDELITY.md` lists the Envoy ones not served here.
fn foreign_function(name: &str, args: &[u8]) -> HostResult<Vec<u8>> {
    use std::io::{Read, Write};
    match name {
        "compress" => {
            let mut encoder =
                flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            encoder
                .write_all(args)
                .map_err(|_| Status::SerializationFailure)?;
            Ok(encoder.finish().map_err(|_| Status::SerializationFailure)?)
        }
        "uncompress" => {
            let mut out = Vec::new();
            let mut decoder = flate2::read::ZlibDecoder::new(args);
            decoder
                .read_to_end(&mut out)
                .map_err(|_| Status::SerializationFailure)?;
            // zlib's `uncompress` refuses a stream that does not end where the input does.
            if decoder.total_in() != args.len() as u64 {
                return Err(Status::SerializationFailure.into());
            }
            Ok(out)
        }
        "clear_route_cache" => Ok(Vec::new()),
        _ => Err(Status::NotFound.into()),
    }
}

pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap("env", "proxy_done", |mut caller: Caller<'_, HostState>| {
        let proxy = &mut caller.data_mut().proxy;
        status(
            if proxy.streams.contains_key(&proxy.active_context)
                || proxy.active_context == proxy.root_context
            {
                proxy.done_called = true;
                proxy.root_done_called |= proxy.active_context == proxy.root_context;
                Ok(())
            } else {
                Err(Status::NotFound.into())
            },
        )
    })?;
    linker.func_wrap(
        "env",
        "proxy_set_effective_context",
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
        "env",
        "proxy_get_status",
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
        "env",
        "proxy_call_foreign_function",
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
                let result = foreign_function(&name, &args)?;
                return_bytes(&mut caller, &result, results_ptr, results_size_ptr)
            })())
        },
    )?;
    Ok(())
}
