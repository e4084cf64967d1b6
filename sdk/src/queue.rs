//! Shared queues: items any VM of the plugin enqueues, delivered to the one VM that
//! registered the queue. Envoy runs one VM per worker thread; a queue is how every worker
//! hands work (events to ship, say) to a single place.
//!
//! ```no_run
//! # #[cfg(feature = "callout")] mod example {
//! use weir::prelude::*;
//! use weir::background::Background;
//! use weir::queue::Queue;
//! use weir::Call;
//!
//! #[derive(Deserialize)]
//! struct Config {}
//! impl Validate for Config {}
//!
//! // Producer side, in every worker's VM: one item per request.
//! struct Record;
//! impl HttpFilter for Record {
//!     fn on_request_headers(&mut self, req: &mut RequestHeaders) -> Result<Flow> {
//!         if let Some(events) = Queue::resolve("events")? {
//!             events.enqueue(req.path()?.unwrap_or_default().as_bytes())?;
//!         }
//!         Ok(Flow::Continue)
//!     }
//! }
//!
//! // Owner side: every VM registers when configured; the host notifies the last one to do so.
//! fn start(_cfg: &Shared<Config>, bg: &mut Background) {
//!     match Queue::register("events") {
//!         Ok(events) => {
//!             bg.on_queue(&events, |items| async move {
//!                 let body = items.join(&b'\n');
//!                 Call::post("collector", "/events").body(body).send().await?;
//!                 Ok(())
//!             });
//!         }
//!         Err(err) => error!("{err}"),
//!     }
//! }
//!
//! weir::http_plugin!(Config => |_cfg| Record, background = start);
//! # }
//! ```
//!
//! # Who receives the items
//!
//! A queue belongs to a **VM id** (every Istio WasmPlugin has the empty one) and a name.
//! [`Queue::register`] makes the calling VM's root context the one notified
//! (`proxy_on_queue_ready`) when an item arrives; registering again, from another VM, moves
//! the notifications there (Envoy keeps the last registration, and the items already queued).
//! So when every worker's VM registers at configure time, as in the example, the last VM
//! configured drains the queue and the others only produce. Any VM can [`Queue::resolve`]
//! the queue and [`Queue::enqueue`]; an item is delivered once, to whoever dequeues it.
//!
//! [`Background::on_queue`](crate::background::Background::on_queue) drains the queue on every
//! notification and hands the items to an `async` handler, which can call out as background
//! jobs do. The host's queue has no size limit: drain it promptly and bound what you keep.
//!
//! # Namespaced by plugin
//!
//! For the reason shared data is (see [`shared_data`](crate::shared_data#namespaced-by-plugin)):
//! all WasmPlugins on an Istio proxy share the empty VM id, so two plugins naming a queue
//! `events` would feed each other's. [`Queue::register`] and [`Queue::resolve`] put the
//! plugin's name and root id in front of the name, as [`shared_data::scoped`](crate::shared_data::scoped)
//! does; [`Queue::register_global`] and [`Queue::resolve_global`] use the name as it is (for
//! queues shared with other plugins, or in another VM id). This keeps plugins from colliding;
//! it is not access control: a module in the same VM id can compute the name and enqueue
//! anything. Check each item you dequeue as you would a request.
//!
//! Every call returns errors as values naming the queue; none panics on a host status (the
//! SDK calls the host directly here: the `proxy-wasm` crate panics on statuses it does not
//! expect).

use crate::error::{Error, HostStatus, Result};
use weir_abi::HostFunction;

/// A shared queue's handle: which queue (its host id) and its name, for error messages.
/// Cheap to clone; valid in every VM of the VM id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queue {
    id: u32,
    name: String,
}

impl Queue {
    /// Registers this plugin's queue `name` in this VM id and makes this VM's root context
    /// the one notified when items arrive (the last VM to register is). Registering an
    /// existing queue keeps its id and its items.
    pub fn register(name: &str) -> Result<Queue> {
        Queue::register_global(&crate::shared_data::scoped(name)?)
    }

    /// This plugin's queue `name` in this VM id, or `None` while no VM has registered it
    /// (a worker can start serving before the owner is configured).
    pub fn resolve(name: &str) -> Result<Option<Queue>> {
        Queue::resolve_global("", &crate::shared_data::scoped(name)?)
    }

    /// Like [`register`](Queue::register), with `name` as it is: visible to every plugin
    /// in the VM id.
    pub fn register_global(name: &str) -> Result<Queue> {
        let mut id = 0;
        // SAFETY: the pointers and lengths describe `name` and a live u32 for the host to write.
        let status =
            unsafe { abi::proxy_register_shared_queue(name.as_ptr(), name.len(), &mut id) };
        check(status, HostFunction::RegisterSharedQueue, name)?;
        Ok(Queue {
            id,
            name: name.to_owned(),
        })
    }

    /// The queue `name` (as it is, not namespaced) registered in VM id `vm_id`; an empty
    /// `vm_id` means this plugin's own. `None` when no VM registered it.
    pub fn resolve_global(vm_id: &str, name: &str) -> Result<Option<Queue>> {
        let mut id = 0;
        // SAFETY: the pointers and lengths describe the two strings and a live u32.
        let status = unsafe {
            abi::proxy_resolve_shared_queue(
                vm_id.as_ptr(),
                vm_id.len(),
                name.as_ptr(),
                name.len(),
                &mut id,
            )
        };
        if status == HostStatus::NotFound as u32 {
            return Ok(None);
        }
        check(status, HostFunction::ResolveSharedQueue, name)?;
        Ok(Some(Queue {
            id,
            name: name.to_owned(),
        }))
    }

    /// Appends `item`; the registering VM is notified. An `Err` when the queue is gone
    /// (every VM of its VM id was removed).
    pub fn enqueue(&self, item: &[u8]) -> Result<()> {
        // SAFETY: the pointer and length describe `item`.
        let status = unsafe { abi::proxy_enqueue_shared_queue(self.id, item.as_ptr(), item.len()) };
        check(status, HostFunction::EnqueueSharedQueue, &self.name)
    }

    /// Takes the oldest item, or `None` when the queue is empty.
    pub fn dequeue(&self) -> Result<Option<Vec<u8>>> {
        let (mut data, mut size) = (std::ptr::null_mut(), 0);
        // SAFETY: the host writes a pointer it allocated through `proxy_on_memory_allocate`
        // (the proxy-wasm crate's export) and its length.
        let status = unsafe { abi::proxy_dequeue_shared_queue(self.id, &mut data, &mut size) };
        if status == HostStatus::Empty as u32 {
            return Ok(None);
        }
        check(status, HostFunction::DequeueSharedQueue, &self.name)?;
        if data.is_null() {
            return Ok(Some(Vec::new()));
        }
        // SAFETY: `proxy_on_memory_allocate` hands out a boxed slice of exactly `size` bytes,
        // which the host filled; ownership passes to us here, once.
        Ok(Some(unsafe { Vec::from_raw_parts(data, size, size) }))
    }

    /// The host's id of the queue (what `proxy_on_queue_ready` names).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// The queue's name as the host knows it (namespaced for [`Queue::register`] and
    /// [`Queue::resolve`]).
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// `Ok` for status 0, else an error naming the call and the queue. Statuses are read as
/// plain numbers: one the SDK does not know is an error, not undefined behaviour.
fn check(status: u32, call: HostFunction, queue: &str) -> Result<()> {
    match HostStatus::from_u32(status) {
        Some(HostStatus::Ok) => Ok(()),
        Some(known) => Err(Error::host(call, known).context(format!("shared queue '{queue}'"))),
        None => Err(Error::msg(format!(
            "shared queue '{queue}': host call {} failed with status {status}",
            call.as_str()
        ))),
    }
}

/// The four queue calls, declared here with plain `u32` statuses.
mod abi {
    #[link(wasm_import_module = "env")]
    unsafe extern "C" {
        pub(super) fn proxy_register_shared_queue(
            name: *const u8,
            name_len: usize,
            id: *mut u32,
        ) -> u32;
        pub(super) fn proxy_resolve_shared_queue(
            vm_id: *const u8,
            vm_id_len: usize,
            name: *const u8,
            name_len: usize,
            id: *mut u32,
        ) -> u32;
        pub(super) fn proxy_enqueue_shared_queue(
            id: u32,
            value: *const u8,
            value_len: usize,
        ) -> u32;
        pub(super) fn proxy_dequeue_shared_queue(
            id: u32,
            value: *mut *mut u8,
            value_len: *mut usize,
        ) -> u32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_become_errors_naming_the_queue_and_unknown_ones_do_not_panic() {
        assert!(check(0, HostFunction::EnqueueSharedQueue, "q").is_ok());
        let gone = check(1, HostFunction::EnqueueSharedQueue, "events").unwrap_err();
        assert_eq!(
            gone.to_string(),
            "shared queue 'events': host call proxy_enqueue_shared_queue failed: NotFound"
        );
        let odd = check(42, HostFunction::DequeueSharedQueue, "events").unwrap_err();
        assert_eq!(
            odd.to_string(),
            "shared queue 'events': host call proxy_dequeue_shared_queue failed with status 42"
        );
    }
}
