//! Typed errors of the runtime.

use crate::outcome::{LogEntry, Trap};

/// A module could not be loaded: not Wasm, not compilable, or not linkable against the host.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// Reading the module file failed.
    #[error("cannot read plugin module {path}: {source}")]
    Read {
        /// The path given.
        path: std::path::PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The bytes do not start with the Wasm magic `\0asm`.
    #[error("not a WebAssembly module (missing \\0asm header); pass the .wasm the build produced")]
    NotWasm,
    /// wasmtime rejected the module.
    #[error("invalid WebAssembly module: {0}")]
    Compile(String),
    /// The module imports functions that neither its proxy-wasm ABI version nor WASI
    /// preview1 provide (each named `module.function`, with the ABI versions that have it).
    #[error("module imports functions the host does not provide: {}", .0.join(", "))]
    MissingImports(Vec<String>),
    /// Linking failed, e.g. a host function imported with the wrong signature.
    #[error("cannot link module against the proxy-wasm host: {0}")]
    Link(String),
    /// The module declares only proxy-wasm ABI versions the host does not serve. The text
    /// starts with Envoy's own words for this refusal, so one search finds both.
    #[error("unknown Proxy-Wasm ABI version: the module exports {markers}, and weir-runtime (like Envoy 1.40) runs ABI {supported} only (export proxy_abi_version_0_1_0, proxy_abi_version_0_2_0 or proxy_abi_version_0_2_1): rebuild the plugin with a proxy-wasm SDK that targets one of them")]
    UnsupportedAbi {
        /// The `proxy_abi_version_*` exports found.
        markers: String,
        /// The versions served.
        supported: &'static str,
    },
    /// The shared engine could not be created.
    #[error("cannot create the wasmtime engine: {0}")]
    Engine(String),
    /// Building the plugin crate to `.wasm` failed.
    #[error("building the plugin failed: {0}")]
    Build(String),
}

/// A plugin could not be started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// The module could not be loaded.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The module exports no `proxy_abi_version_*` marker.
    #[error("module exports no proxy_abi_version_* function: not a proxy-wasm plugin (ABI versions served: 0.1.0, 0.2.0, 0.2.1)")]
    NotProxyWasm,
    /// Instantiation failed (e.g. the module asks for more memory than allowed).
    #[error("cannot instantiate plugin: {0}")]
    Instantiate(String),
    /// `proxy_on_vm_start` returned false.
    #[error("plugin rejected its VM configuration (proxy_on_vm_start returned false){}", logs_suffix(.logs))]
    VmStartRejected {
        /// Logs the guest wrote while starting.
        logs: Vec<LogEntry>,
    },
    /// `proxy_on_configure` returned false: Envoy rejects such a plugin configuration.
    #[error("plugin rejected its configuration (proxy_on_configure returned false){}", logs_suffix(.logs))]
    ConfigRejected {
        /// Logs the guest wrote while configuring, usually saying why.
        logs: Vec<LogEntry>,
    },
    /// The guest trapped while starting.
    #[error("plugin trapped while starting: {0}")]
    Trap(Trap),
}

fn logs_suffix(logs: &[LogEntry]) -> String {
    let errors: Vec<&str> = logs
        .iter()
        .filter(|l| l.level >= weir_abi::LogLevel::Warn)
        .map(|l| l.message.as_str())
        .collect();
    if errors.is_empty() {
        String::new()
    } else {
        format!(": {}", errors.join("; "))
    }
}
