//! `proxy_get_shared_data`, `proxy_set_shared_data`: one store for all VMs of the plugin.

use wasmtime::{Caller, Linker};
use weir_abi::{HostFunction, Status, HOST_MODULE};

use super::{read, return_bytes, status, write_u32};
use crate::state::HostState;
use crate::sync::lock;

pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        HOST_MODULE,
        HostFunction::GetSharedData.as_str(),
        |mut caller: Caller<'_, HostState>,
         key_ptr: u32,
         key_len: u32,
         value_ptr: u32,
         value_size_ptr: u32,
         cas_ptr: u32| {
            status((|| {
                let key = read(&mut caller, key_ptr, key_len)?;
                let found = lock(&caller.data().proxy.shared.data).get(&key);
                let (value, cas) = found.ok_or(Status::NotFound)?;
                write_u32(&mut caller, cas_ptr, cas)?;
                return_bytes(&mut caller, &value, value_ptr, value_size_ptr)
            })())
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        HostFunction::SetSharedData.as_str(),
        |mut caller: Caller<'_, HostState>,
         key_ptr: u32,
         key_len: u32,
         value_ptr: u32,
         value_len: u32,
         cas: u32| {
            status((|| {
                let key = read(&mut caller, key_ptr, key_len)?;
                let value = read(&mut caller, value_ptr, value_len)?;
                match lock(&caller.data().proxy.shared.data).set(key, value, cas) {
                    Status::Ok => Ok(()),
                    other => Err(other.into()),
                }
            })())
        },
    )?;
    Ok(())
}
