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
//! # Testing patterns
//!
//! Each example is a test in a plugin crate's `tests/` (`Plugin::build` builds that crate).
//!
//! **Callouts** ([`PluginBuilder::upstream`]): a handler per cluster answers the plugin's
//! `dispatch_http_call`s; [`Response::failure`] and [`Response::timeout`] stand for a cluster
//! that is down or slow, and [`Outcome::callouts`] shows what the plugin sent.
//!
//! ```no_run
//! # use weir_runtime::{Plugin, Request, Response};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let plugin = Plugin::build(env!("CARGO_MANIFEST_DIR"))
//!     .config(serde_json::json!({ "cluster": "policy" }))
//!     .upstream("policy", |req| match req.path() {
//!         "/allow" => Response::status(200).body("ok"),
//!         _ => Response::failure(), // the plugin must fail closed
//!     })
//!     .start()?;
//! let out = plugin.http().request(Request::get("/data")).run();
//! assert_eq!(out.callouts()[0].cluster(), "policy");
//! assert_eq!(out.local_reply().map(|r| r.status()), Some(503));
//! # Ok(()) }
//! ```
//!
//! **Timers and delayed answers** ([`Plugin::advance`], [`Response::delay`]): the clock is
//! virtual, so a periodic refresh or a callout that answers after 2 s takes no real time.
//! [`HttpStream`] drives a request step by step, to look at it while it waits.
//!
//! ```no_run
//! # use std::time::Duration;
//! # use weir_runtime::{Plugin, Request, Response};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let plugin = Plugin::build(env!("CARGO_MANIFEST_DIR"))
//!     .upstream("policy", |_| Response::status(200).delay(Duration::from_secs(2)))
//!     .start()?;
//! let mut stream = plugin.http_stream();
//! stream.send_request(&Request::get("/"), None);
//! assert!(stream.request_paused()); // waiting for the callout
//! plugin.advance(Duration::from_secs(2)); // the answer falls due; tick timers fire too
//! assert!(stream.request_complete());
//! plugin.advance(Duration::from_secs(300)); // e.g. a key refresh every 5 minutes
//! assert!(plugin.metric("refreshes").unwrap_or(0) >= 1);
//! # Ok(()) }
//! ```
//!
//! **Several workers** ([`PluginBuilder::workers`], [`Plugin::http_on`]): one VM per
//! worker, sharing data, queues and metrics, as Envoy's workers do; a value one worker
//! stores is what another reads.
//!
//! ```no_run
//! # use weir_runtime::{Plugin, Request};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let plugin = Plugin::build(env!("CARGO_MANIFEST_DIR")).workers(2).start()?;
//! plugin.http_on(0).request(Request::post("/login")).run();
//! let second = plugin.http_on(1).request(Request::get("/profile")).run();
//! assert!(second.local_reply().is_none());
//! assert!(plugin.shared_data("session-count").is_some());
//! # Ok(()) }
//! ```
//!
//! **NETWORK (L4) filters** ([`Plugin::tcp`], [`Plugin::connection`]): bytes each way, and
//! whether the plugin closed the connection. Properties such as `source.address` are what
//! the plugin reads from the host.
//!
//! ```no_run
//! # use weir_runtime::Plugin;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let plugin = Plugin::build(env!("CARGO_MANIFEST_DIR"))
//!     .config(serde_json::json!({ "allow": ["10.0.0.0/8"] }))
//!     .property("source.address", "192.0.2.7:40000")
//!     .start()?;
//! let out = plugin.tcp().downstream("PING\r\n").run();
//! assert!(out.closed_by_plugin());
//! assert!(out.to_upstream().is_empty());
//! # Ok(()) }
//! ```
//!
//! The plugins in Weir's repository test themselves this way: `plugins/acl-check/tests`
//! (callouts, failures, timeouts), `plugins/check-header/tests` (key refresh on timers),
//! `examples/ip-allowlist/tests` (NETWORK).
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
pub mod grpc;
mod grpc_flow;
mod host_state;
mod http_flow;
mod message;
mod outcome;
mod shared;
mod tcp_flow;
pub mod testing;
mod vm;
mod wasi;

pub use abi_version::AbiVersion;
pub use command::{CommandError, WasiCommand};
pub use error::{LoadError, StartError};
pub use grpc::{GrpcAnswer, GrpcCall, GrpcReply, GrpcRequest, GrpcStatus, GrpcStreamScript};
pub use message::{Headers, LocalReply, Request, Response};
pub use outcome::{Action, CallbackCost, Callout, LogEntry, Outcome, Phase, Trap};
pub use shared::CLOCK_START;
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
