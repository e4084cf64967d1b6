//! The `env` host functions of proxy-wasm ABI 0.2.1, one file per area, plus the few only
//! ABI 0.1.0 has (`v0_1_0`).
//!
//! Every function validates what the guest passes: pointers outside memory give
//! `InvalidMemoryAccess`, unknown enum values `BadArgument`, and so on. Only a failing guest
//! allocator (called to return data) turns into a trap, because the guest itself failed.

use wasmtime::{Caller, Extern, Linker, Memory, Val};
use weir_abi::Status;

use crate::state::HostState;

mod buffers;
mod context;
mod foreign;
mod grpc;
mod headers;
mod http_call;
mod log;
mod metrics;
pub(crate) mod properties;
mod queues;
mod shared_data;
pub(crate) mod stream_info;
mod streams;
mod timers;
mod v0_1_0;
pub(crate) mod wasi;

/// Registers every `env` function on the linker.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    buffers::add_to_linker(linker)?;
    context::add_to_linker(linker)?;
    grpc::add_to_linker(linker)?;
    headers::add_to_linker(linker)?;
    http_call::add_to_linker(linker)?;
    log::add_to_linker(linker)?;
    metrics::add_to_linker(linker)?;
    properties::add_to_linker(linker)?;
    queues::add_to_linker(linker)?;
    shared_data::add_to_linker(linker)?;
    streams::add_to_linker(linker)?;
    timers::add_to_linker(linker)?;
    v0_1_0::add_to_linker(linker)?;
    Ok(())
}

/// Why a host function did not succeed.
pub(crate) enum Fault {
    /// Return this status to the guest.
    Status(Status),
    /// The guest failed while the host called back into it: trap.
    Trap(wasmtime::Error),
}

impl From<Status> for Fault {
    fn from(status: Status) -> Self {
        Fault::Status(status)
    }
}

pub(crate) type HostResult<T = ()> = Result<T, Fault>;

/// Converts a host function's result into the status the guest receives.
pub(crate) fn status(result: HostResult) -> wasmtime::Result<u32> {
    match result {
        Ok(()) => Ok(Status::Ok as u32),
        Err(Fault::Status(status)) => Ok(status as u32),
        Err(Fault::Trap(error)) => Err(error),
    }
}

fn memory(caller: &mut Caller<'_, HostState>) -> HostResult<Memory> {
    if let Some(memory) = caller.data().memory {
        return Ok(memory);
    }
    match caller.get_export("memory") {
        Some(Extern::Memory(memory)) => Ok(memory),
        _ => Err(Status::InvalidMemoryAccess.into()),
    }
}

/// Copies `len` bytes at `ptr` out of guest memory.
pub(crate) fn read(caller: &mut Caller<'_, HostState>, ptr: u32, len: u32) -> HostResult<Vec<u8>> {
    let memory = memory(caller)?;
    let start = ptr as usize;
    let end = start
        .checked_add(len as usize)
        .ok_or(Status::InvalidMemoryAccess)?;
    memory
        .data(&*caller)
        .get(start..end)
        .map(<[u8]>::to_vec)
        .ok_or(Fault::Status(Status::InvalidMemoryAccess))
}

/// Writes bytes into guest memory at `ptr`.
pub(crate) fn write(caller: &mut Caller<'_, HostState>, ptr: u32, bytes: &[u8]) -> HostResult {
    let memory = memory(caller)?;
    let start = ptr as usize;
    let end = start
        .checked_add(bytes.len())
        .ok_or(Status::InvalidMemoryAccess)?;
    let target = memory
        .data_mut(&mut *caller)
        .get_mut(start..end)
        .ok_or(Status::InvalidMemoryAccess)?;
    target.copy_from_slice(bytes);
    Ok(())
}

/// Writes a little-endian `u32` at `ptr`.
pub(crate) fn write_u32(caller: &mut Caller<'_, HostState>, ptr: u32, value: u32) -> HostResult {
    write(caller, ptr, &value.to_le_bytes())
}

/// Writes a little-endian `u64` at `ptr`.
pub(crate) fn write_u64(caller: &mut Caller<'_, HostState>, ptr: u32, value: u64) -> HostResult {
    write(caller, ptr, &value.to_le_bytes())
}

/// Checks that both return slots are writable before the guest allocator runs, so a bad
/// pointer never leaks a guest allocation.
fn check_slots(caller: &mut Caller<'_, HostState>, ptrs: &[u32]) -> HostResult {
    for ptr in ptrs {
        write_u32(caller, *ptr, 0)?;
    }
    Ok(())
}

/// Hands `data` to the guest: allocated with the guest's allocator, exactly `data.len()`
/// bytes, address and size written to `ptr_ptr` and `size_ptr`. Empty data is a null pointer,
/// as Envoy does it.
pub(crate) fn return_bytes(
    caller: &mut Caller<'_, HostState>,
    data: &[u8],
    ptr_ptr: u32,
    size_ptr: u32,
) -> HostResult {
    check_slots(caller, &[ptr_ptr, size_ptr])?;
    if data.is_empty() {
        // proxy-wasm-cpp-host writes a null pointer and a zero size for no data.
        write_u32(caller, ptr_ptr, 0)?;
        return write_u32(caller, size_ptr, 0);
    }
    let size = u32::try_from(data.len()).map_err(|_| Status::InvalidMemoryAccess)?;
    let address = allocate(caller, size)?;
    write(caller, address, data)?;
    write_u32(caller, ptr_ptr, address)?;
    write_u32(caller, size_ptr, size)
}

/// Calls the guest's allocator.
pub(crate) fn allocate(caller: &mut Caller<'_, HostState>, size: u32) -> HostResult<u32> {
    let Some(allocator) = caller.data().allocator else {
        return Err(Status::InvalidMemoryAccess.into());
    };
    let mut results = [Val::I32(0)];
    allocator
        .call(&mut *caller, &[Val::I32(size as i32)], &mut results)
        .map_err(Fault::Trap)?;
    match results[0] {
        Val::I32(0) => Err(Status::InvalidMemoryAccess.into()),
        Val::I32(address) => Ok(address as u32),
        _ => Err(Status::InvalidMemoryAccess.into()),
    }
}

/// Reads a UTF-8 string argument; invalid UTF-8 is a `BadArgument`.
pub(crate) fn read_string(
    caller: &mut Caller<'_, HostState>,
    ptr: u32,
    len: u32,
) -> HostResult<String> {
    String::from_utf8(read(caller, ptr, len)?).map_err(|_| Status::BadArgument.into())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use wasmtime::{Engine, Linker, Store};
    use weir_abi::{HostFunction, HOST_MODULE};

    use crate::state::shared::PluginShared;
    use crate::state::HostState;

    /// weir-abi is the one list: a host function linked here but missing there, or listed
    /// there but not linked here, fails this test.
    #[test]
    fn the_linker_defines_exactly_the_host_functions_weir_abi_lists() {
        let engine = Engine::default();
        let mut linker = Linker::new(&engine);
        super::add_to_linker(&mut linker).unwrap();
        let shared = Arc::new(PluginShared::new(crate::command::settings(Vec::new())));
        let mut store = Store::new(&engine, HostState::new(shared, 0));
        let linked: BTreeSet<&str> = linker
            .iter(&mut store)
            .filter(|(module, _, _)| *module == HOST_MODULE)
            .map(|(_, name, _)| name)
            .collect();
        let listed: BTreeSet<&str> = HostFunction::ALL.iter().map(|f| f.as_str()).collect();
        assert_eq!(linked, listed);
    }
}
