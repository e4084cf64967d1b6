//! An embedded proxy-wasm host (ABI 0.2.1, 0.2.0 and 0.1.0: see `ABI-VERSIONS.md`) on
//! wasmtime, with a test API for plugins.
//!
//! It runs the real `.wasm`, any SDK's, the way Envoy runs it: start-up order, HTTP and TCP
//! stream lifecycles, callouts to handlers you provide, timers on a virtual clock, shared
//! data and queues across several VMs, metrics, properties, logs, and an exact instruction
//! count for every callback.
//!
//! ```no_run
//! use weir_runtime::{LogLevel, Plugin, Request, Response};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // In a plugin crate's tests: build this crate to .wasm (once per process) and start it.
//! let plugin = Plugin::build(env!("CARGO_MANIFEST_DIR"))
//!     .root_id("acl")
//!     .config(serde_json::json!({ "cluster": "policy" }))
//!     .env("REGION", "eu-1")
//!     .upstream("policy", |_req| Response::status(403))
//!     .start()?;                                              // on_vm_start, on_configure
//! let out = plugin
//!     .http()
//!     .request(Request::get("/data").header("x-user", "ann"))
//!     .response(Response::status(200).body("hello"))
//!     .run();
//! assert_eq!(out.local_reply().map(|r| r.status()), Some(403));
//! assert!(out.upstream_request().is_none());
//! assert_eq!(out.callouts()[0].cluster(), "policy");
//! assert!(out.logs_at(LogLevel::Info).iter().any(|m| m.contains("denied")));
//! assert!(out.instructions() < 2_000_000);                    // deterministic cost
//! # Ok(()) }
//! ```
//!
//! For finer control, [`Plugin::http_stream`] sends headers, body chunks and trailers one
//! at a time, [`HttpStream::deliver_callouts`] answers pending callouts (the test decides
//! when, so it can order them against body chunks) and [`Plugin::advance`] moves the
//! virtual clock (timers, delayed callouts). Callouts a root context makes while starting
//! (a plugin fetching keys when configured) are answered before [`PluginBuilder::start`]
//! returns when their handler adds no delay. [`PluginBuilder::workers`] starts several VMs
//! that share data, queues and metrics, as Envoy's workers do.
//! [`Plugin::tcp`] and [`Plugin::connection`] drive NETWORK (L4) filters.
//!
//! Guarantees: host functions never panic on guest input (bad pointers, huge sizes and
//! unknown enum values give ABI status codes); a guest that traps, loops (see
//! [`PluginBuilder::fuel_limit`]) or asks for too much memory yields an error or a
//! [`Trap`], never a host crash. Every [`Plugin`] is an independent value: tests run in
//! parallel. Compiled modules are cached by content, process-wide.
#![warn(missing_docs)]

mod abi;
mod abi_version;
mod command;
mod engine;
mod error;
mod events;
mod host_state;
mod http_flow;
mod message;
mod outcome;
mod shared;
mod tcp_flow;
pub mod testing;
mod vm;
mod wasi;

pub use command::{CommandError, WasiCommand};
pub use shared::CLOCK_START;
pub use abi_version::AbiVersion;
pub use error::{LoadError, StartError};
pub use message::{Headers, LocalReply, Request, Response};
pub use outcome::{Action, CallbackCost, Callout, LogEntry, Outcome, Phase, Trap};
pub use testing::{
    Connection, HttpExchange, HttpStream, Plugin, PluginBuilder, PropertyValue, TcpExchange,
    DEFAULT_FUEL_LIMIT, DEFAULT_MEMORY_LIMIT,
};
pub use weir_abi::LogLevel;

/// One import of a module: `(module, name)`.
pub type Import = (String, String);

/// Lists a module's function imports, compiling it (cached) against the host: `Ok` means
/// every import is linked, with the signature the host provides.
pub fn linked_imports(wasm: &[u8]) -> Result<Vec<Import>, LoadError> {
    let compiled = engine::compile(wasm)?;
    let mut imports: Vec<Import> = Vec::new();
    for module in [weir_abi::HOST_MODULE, weir_abi::WASI_MODULE] {
        for name in engine::imports_of(&compiled.module, module) {
            imports.push((module.to_string(), name));
        }
    }
    Ok(imports)
}
