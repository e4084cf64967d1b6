//! One VM: a wasmtime store and instance of a plugin, started the way Envoy starts it, and
//! the metered, trap-catching way every callback is invoked.

use std::collections::HashMap;
use std::sync::Arc;

use wasmtime::{Extern, Func, Instance, Store, Trap as WasmTrap, Val};
use weir_abi::{Callback, LogLevel};

use crate::abi_version::Declared;
use crate::engine::CompiledModule;
use crate::error::StartError;
use crate::outcome::{LogEntry, Trap};
use crate::state::shared::PluginShared;
use crate::state::HostState;

/// A running instance of the plugin module (Envoy: one per worker thread).
pub(crate) struct Vm {
    pub(crate) store: Store<HostState>,
    instance: Instance,
    /// Exports by name, with their result count, looked up once.
    funcs: HashMap<&'static str, Option<(Func, usize)>>,
    /// Set once the guest trapped: Envoy does not call a crashed VM again.
    pub(crate) crashed: Option<Trap>,
}

impl std::fmt::Debug for Vm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vm")
            .field("worker", &self.store.data().proxy.worker)
            .finish_non_exhaustive()
    }
}

impl Vm {
    /// Instantiates the module (no guest code runs yet).
    pub(crate) fn instantiate(
        compiled: &CompiledModule,
        shared: Arc<PluginShared>,
        worker: usize,
    ) -> Result<Vm, StartError> {
        let abi = match compiled.declared {
            Declared::Known(abi) => abi,
            Declared::Unknown(_) | Declared::None => return Err(StartError::NotProxyWasm),
        };
        let mut store = Store::new(compiled.module.engine(), HostState::new(shared, worker));
        store.limiter(|state| &mut state.limits);
        // Instantiation runs the start function and data initializers: meter them too.
        store
            .set_fuel(store.data().proxy.shared.settings.fuel_limit)
            .map_err(|e| StartError::Instantiate(format!("{e:#}")))?;
        let instance = compiled
            .pre
            .instantiate(&mut store)
            .map_err(|e| StartError::Instantiate(format!("{e:#}")))?;
        let memory = match instance.get_export(&mut store, "memory") {
            Some(Extern::Memory(memory)) => Some(memory),
            _ => None,
        };
        // Envoy prefers an exported `malloc` and falls back to `proxy_on_memory_allocate`
        // (proxy-wasm-cpp-host `WasmBase::getFunctions`): a module exporting both (e.g.
        // Emscripten-built C++) gets its data from `malloc`, here as there.
        let allocator = instance
            .get_func(&mut store, "malloc")
            .or_else(|| instance.get_func(&mut store, Callback::MemoryAllocate.as_str()));
        store.data_mut().abi = abi;
        store.data_mut().memory = memory;
        store.data_mut().allocator = allocator;
        Ok(Vm {
            store,
            instance,
            funcs: HashMap::new(),
            crashed: None,
        })
    }

    /// Envoy's start-up: `_initialize` (then `main(0, 0)` or `__main_void` if exported) or
    /// else `_start`, the root context, `proxy_on_vm_start`, then `proxy_on_configure`; false
    /// from either rejects the plugin. A Wasm start section has already run on instantiation.
    pub(crate) fn start(&mut self) -> Result<(), StartError> {
        let root = self.store.data().proxy.root_context;
        if self.func("_initialize").is_some() {
            self.call_export(0, "_initialize", &[])
                .map_err(StartError::Trap)?;
            // proxy-wasm-cpp-host `WasmBase::startVm`: a reactor's `main` runs too, so that
            // SDKs set up the same way whether built as command or reactor.
            if self.func("main").is_some() {
                self.call_export(0, "main", &[0, 0])
                    .map_err(StartError::Trap)?;
            } else if self.func("__main_void").is_some() {
                self.call_export(0, "__main_void", &[])
                    .map_err(StartError::Trap)?;
            }
        } else {
            self.call_export(0, "_start", &[])
                .map_err(StartError::Trap)?;
        }
        self.call(root, Callback::ContextCreate, &[root, 0])
            .map_err(StartError::Trap)?;
        let vm_config_len = self.store.data().proxy.vm_config.len() as u32;
        if self
            .call(root, Callback::VmStart, &[root, vm_config_len])
            .map_err(StartError::Trap)?
            == Some(0)
        {
            return Err(StartError::VmStartRejected {
                logs: self.drain_logs(),
            });
        }
        let config_len = self.store.data().proxy.plugin_config.len() as u32;
        self.store.data_mut().proxy.configuring = true;
        let configured = self.call(root, Callback::Configure, &[root, config_len]);
        self.store.data_mut().proxy.configuring = false;
        if configured.map_err(StartError::Trap)? == Some(0) {
            return Err(StartError::ConfigRejected {
                logs: self.drain_logs(),
            });
        }
        Ok(())
    }

    fn drain_logs(&mut self) -> Vec<LogEntry> {
        self.store
            .data_mut()
            .proxy
            .journal
            .logs
            .drain(..)
            .map(|(_, entry)| entry)
            .collect()
    }

    fn func(&mut self, name: &'static str) -> Option<(Func, usize)> {
        if let Some(found) = self.funcs.get(name) {
            return *found;
        }
        let found = self
            .instance
            .get_func(&mut self.store, name)
            .map(|f| (f, f.ty(&self.store).results().len()));
        self.funcs.insert(name, found);
        found
    }

    /// Ends a stream context as Envoy does: `proxy_on_done`, then `proxy_on_log` and
    /// `proxy_on_delete` whatever `on_done` answered (Envoy does not wait for a stream;
    /// proxy-wasm-cpp-host skips the calls once the VM failed, as `call` does here).
    /// Returns the first trap of the three: one in the access-log phase is the stream's
    /// trap too (the client has its answer, but Envoy fails the VM and logs it).
    pub(crate) fn end_stream_context(&mut self, context: u32) -> Option<Trap> {
        let done = self.call(context, Callback::Done, &[context]);
        self.state().proxy.access_log_phase = true;
        let logged = self.call(context, Callback::Log, &[context]);
        self.state().proxy.access_log_phase = false;
        let deleted = self.call(context, Callback::Delete, &[context]);
        done.err().or(logged.err()).or(deleted.err())
    }

    /// Calls a proxy-wasm callback with the active context set to `context`, metering
    /// instructions. `Ok(None)`: the export is absent (callbacks are optional) or returns
    /// nothing.
    pub(crate) fn call(
        &mut self,
        context: u32,
        callback: Callback,
        args: &[u32],
    ) -> Result<Option<u32>, Trap> {
        // ABI 0.1.0 header callbacks are (context, headers): no `end_of_stream`.
        let args = if matches!(
            callback,
            Callback::RequestHeaders | Callback::ResponseHeaders
        ) && !self.store.data().abi.header_callbacks_take_end_of_stream()
        {
            &args[..args.len().min(2)]
        } else {
            args
        };
        self.call_export(context, callback.as_str(), args)
    }

    /// Calls any guest export (WASI's start functions, or a callback), as [`Vm::call`].
    fn call_export(
        &mut self,
        context: u32,
        name: &'static str,
        args: &[u32],
    ) -> Result<Option<u32>, Trap> {
        if let Some(trap) = &self.crashed {
            return Err(trap.clone());
        }
        let Some((func, result_count)) = self.func(name) else {
            return Ok(None);
        };
        // Callbacks take at most 5 arguments and return at most one value: no allocation.
        let mut params = [Val::I32(0); 5];
        for (slot, arg) in params.iter_mut().zip(args) {
            *slot = Val::I32(*arg as i32);
        }
        let arity = args.len().min(5);
        let params = &params[..arity];
        let mut results = [Val::I32(0); 1];
        let results = &mut results[..result_count.min(1)];
        let limit = self.store.data().proxy.shared.settings.fuel_limit;
        self.store.data_mut().proxy.active_context = context;
        let outcome = self
            .store
            .set_fuel(limit)
            .and_then(|()| func.call(&mut self.store, params, results));
        let used = limit.saturating_sub(self.store.get_fuel().unwrap_or(0));
        self.store
            .data_mut()
            .proxy
            .journal
            .costs
            .push((context, name, used));
        match outcome {
            Ok(()) => Ok(match results.first() {
                Some(Val::I32(value)) => Some(*value as u32),
                Some(Val::I64(value)) => Some(*value as u32),
                _ => None,
            }),
            Err(error) => {
                let trap = self.trap(name, &error);
                self.crashed = Some(trap.clone());
                Err(trap)
            }
        }
    }

    fn trap(&self, callback: &str, error: &wasmtime::Error) -> Trap {
        let out_of_fuel = matches!(error.downcast_ref::<WasmTrap>(), Some(WasmTrap::OutOfFuel));
        let message = if out_of_fuel {
            let limit = self.store.data().proxy.shared.settings.fuel_limit;
            format!("fuel limit of {limit} instructions exhausted (runaway guest?)")
        } else {
            format!("{error:#}")
        };
        let panic_message = self
            .store
            .data()
            .proxy
            .journal
            .logs
            .iter()
            .rev()
            .find(|(_, entry)| entry.level == LogLevel::Critical)
            .map(|(_, entry)| entry.message.clone());
        Trap {
            callback: callback.to_string(),
            message,
            panic_message,
            out_of_fuel,
        }
    }

    pub(crate) fn state(&mut self) -> &mut HostState {
        self.store.data_mut()
    }
}
