//! WASI commands: modules with a `_start`, such as the test binaries `cargo test --target
//! wasm32-wasip1` builds. They run on the same engine, linker and WASI implementation as
//! plugins, with the proxy-wasm host functions linked too: a crate that depends on a
//! proxy-wasm SDK imports them even in its unit tests, and a test that calls one gets the
//! same answer a plugin outside any stream would.
//!
//! Unlike a plugin, a command gets arguments, writes to the host's stdout and stderr, and
//! ends with the code it passes to `proc_exit`.

use std::collections::HashMap;
use std::sync::Arc;

use wasmtime::{Extern, Store};
use weir_abi::LogLevel;

use crate::engine::compile;
use crate::error::LoadError;
use crate::host_functions::wasi::ProcExit;
use crate::state::shared::{PluginShared, Settings};
use crate::state::HostState;

/// How a command ended, other than by returning from `_start` or calling `proc_exit`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CommandError {
    /// The module could not be compiled or linked.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The module has no `_start` export (a library or a plugin, not a command).
    #[error("the module exports no _start function: it is not a WASI command (a plugin is run with `weir exec`)")]
    NotACommand,
    /// Instantiation failed.
    #[error("cannot instantiate the command: {0}")]
    Instantiate(String),
    /// The guest trapped; a Rust guest that panics with `panic = "abort"` ends here, after
    /// printing its panic message to stderr.
    #[error("the command trapped: {0}")]
    Trap(String),
}

/// A WASI command to run: module bytes, arguments, environment.
#[derive(Debug, Clone, Default)]
pub struct WasiCommand {
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl WasiCommand {
    /// A command with no arguments (not even `argv[0]`) and an empty environment.
    pub fn new() -> Self {
        WasiCommand::default()
    }

    /// Appends an argument; the first is `argv[0]`, the program name.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Runs `_start` to its end and returns the exit code: 0 when `_start` returns, the
    /// code given to `proc_exit` otherwise. There is no fuel limit: a command runs as long
    /// as it needs.
    pub fn run(&self, wasm: &[u8]) -> Result<u32, CommandError> {
        let compiled = compile(wasm)?;
        if compiled.module.get_export("_start").is_none() {
            return Err(CommandError::NotACommand);
        }
        let shared = Arc::new(PluginShared::new(settings(self.env.clone())));
        let mut state = HostState::new(shared, 0);
        state.wasi.args = self.args.clone();
        state.wasi.inherit_stdio = true;
        let mut store = Store::new(compiled.module.engine(), state);
        store.limiter(|state| &mut state.limits);
        // The engine meters every guest; a command gets all the fuel there is.
        store
            .set_fuel(u64::MAX)
            .map_err(|e| CommandError::Instantiate(format!("{e:#}")))?;
        let instance = compiled
            .pre
            .instantiate(&mut store)
            .map_err(|e| CommandError::Instantiate(format!("{e:#}")))?;
        if let Some(Extern::Memory(memory)) = instance.get_export(&mut store, "memory") {
            store.data_mut().memory = Some(memory);
        }
        store.data_mut().allocator = instance.get_func(&mut store, "malloc");
        let start = instance
            .get_typed_func::<(), ()>(&mut store, "_start")
            .map_err(|e| CommandError::Instantiate(format!("_start: {e:#}")))?;
        match start.call(&mut store, ()) {
            Ok(()) => Ok(0),
            Err(error) => match error.downcast_ref::<ProcExit>() {
                Some(ProcExit(code)) => Ok(*code),
                None => Err(CommandError::Trap(format!("{error:#}"))),
            },
        }
    }
}

/// Settings for a command's single VM: no configuration, no properties, no clusters.
pub(crate) fn settings(env: Vec<(String, String)>) -> Settings {
    Settings {
        root_id: String::new(),
        name: String::new(),
        vm_id: String::new(),
        config: Vec::new(),
        vm_config: Vec::new(),
        env,
        properties: HashMap::new(),
        fuel_limit: u64::MAX,
        // All a 32-bit guest can address: test binaries may need more than a plugin.
        memory_limit: 4 << 30,
        log_level: LogLevel::Trace,
        upstreams: HashMap::new(),
        grpc_upstreams: HashMap::new(),
        clock_start_ns: crate::state::shared::CLOCK_START.as_nanos() as u64,
    }
}
