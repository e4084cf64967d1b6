//! gRPC calls. The test API routes HTTP callouts only: a gRPC call to an unknown cluster is
//! `BadArgument` (as in Envoy), to a known one `Unimplemented`; streams and their
//! operations on ids that never existed are `NotFound`.

use wasmtime::{Caller, Linker};
use weir_abi::Status;

use super::{read, read_string, status, HostResult};
use crate::host_state::HostState;

/// Validates every (pointer, length) argument, then answers by cluster.
fn call(
    caller: &mut Caller<'_, HostState>,
    cluster_ptr: u32,
    cluster_len: u32,
    args: &[(u32, u32)],
) -> HostResult {
    for (ptr, len) in args {
        read(caller, *ptr, *len)?;
    }
    let cluster = read_string(caller, cluster_ptr, cluster_len)?;
    if caller
        .data()
        .proxy
        .shared
        .settings
        .upstreams
        .contains_key(&cluster)
    {
        Err(Status::Unimplemented.into())
    } else {
        Err(Status::BadArgument.into())
    }
}

pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_grpc_call",
        |mut caller: Caller<'_, HostState>,
         cluster_ptr: u32,
         cluster_len: u32,
         service_ptr: u32,
         service_len: u32,
         method_ptr: u32,
         method_len: u32,
         metadata_ptr: u32,
         metadata_len: u32,
         message_ptr: u32,
         message_len: u32,
         _timeout: u32,
         _id_ptr: u32| {
            let args = [
                (service_ptr, service_len),
                (method_ptr, method_len),
                (metadata_ptr, metadata_len),
                (message_ptr, message_len),
            ];
            status(call(&mut caller, cluster_ptr, cluster_len, &args))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_stream",
        |mut caller: Caller<'_, HostState>,
         cluster_ptr: u32,
         cluster_len: u32,
         service_ptr: u32,
         service_len: u32,
         method_ptr: u32,
         method_len: u32,
         metadata_ptr: u32,
         metadata_len: u32,
         _id_ptr: u32| {
            let args = [
                (service_ptr, service_len),
                (method_ptr, method_len),
                (metadata_ptr, metadata_len),
            ];
            status(call(&mut caller, cluster_ptr, cluster_len, &args))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_send",
        |mut caller: Caller<'_, HostState>,
         _id: u32,
         message_ptr: u32,
         message_len: u32,
         _end: u32| {
            status(
                read(&mut caller, message_ptr, message_len)
                    .and_then(|_| Err(Status::NotFound.into())),
            )
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_cancel",
        |_caller: Caller<'_, HostState>, _id: u32| status(Err(Status::NotFound.into())),
    )?;
    linker.func_wrap(
        "env",
        "proxy_grpc_close",
        |_caller: Caller<'_, HostState>, _id: u32| status(Err(Status::NotFound.into())),
    )?;
    Ok(())
}
