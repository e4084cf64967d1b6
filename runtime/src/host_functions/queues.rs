//! Shared queues: registered by one VM's root context, written by any VM of the plugin.
//! Enqueuing schedules `proxy_on_queue_ready` on the owner VM's root context, delivered after the current
//! callback returns.

use wasmtime::{Caller, Linker};
use weir_abi::{HostFunction, Status, HOST_MODULE};

use super::{read, read_string, return_bytes, status, write_u32};
use crate::state::shared::queues;
use crate::state::HostState;

pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        HOST_MODULE,
        HostFunction::RegisterSharedQueue.as_str(),
        |mut caller: Caller<'_, HostState>, name_ptr: u32, name_len: u32, id_ptr: u32| {
            status((|| {
                let name = read(&mut caller, name_ptr, name_len)?;
                let proxy = &caller.data().proxy;
                // Envoy notifies the root context, whichever context registered the queue.
                let owner = (proxy.worker, proxy.root_context);
                let id = queues(&proxy.shared).register(&proxy.shared.settings.vm_id, name, owner);
                write_u32(&mut caller, id_ptr, id)
            })())
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        HostFunction::ResolveSharedQueue.as_str(),
        |mut caller: Caller<'_, HostState>,
         vm_ptr: u32,
         vm_len: u32,
         name_ptr: u32,
         name_len: u32,
         id_ptr: u32| {
            status((|| {
                let vm_id = read_string(&mut caller, vm_ptr, vm_len)?;
                let name = read(&mut caller, name_ptr, name_len)?;
                let shared = &caller.data().proxy.shared;
                // Envoy reads an empty VM id as the caller's own.
                let vm_id = if vm_id.is_empty() {
                    shared.settings.vm_id.as_str()
                } else {
                    vm_id.as_str()
                };
                let id = queues(shared)
                    .resolve(vm_id, &name)
                    .ok_or(Status::NotFound)?;
                write_u32(&mut caller, id_ptr, id)
            })())
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        HostFunction::EnqueueSharedQueue.as_str(),
        |mut caller: Caller<'_, HostState>, id: u32, value_ptr: u32, value_len: u32| {
            status((|| {
                let value = read(&mut caller, value_ptr, value_len)?;
                match queues(&caller.data().proxy.shared).enqueue(id, value) {
                    Status::Ok => Ok(()),
                    other => Err(other.into()),
                }
            })())
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        HostFunction::DequeueSharedQueue.as_str(),
        |mut caller: Caller<'_, HostState>, id: u32, value_ptr: u32, value_size_ptr: u32| {
            status((|| {
                let value = queues(&caller.data().proxy.shared).dequeue(id)?;
                return_bytes(&mut caller, &value, value_ptr, value_size_ptr)
            })())
        },
    )?;
    Ok(())
}
