//! An embedded proxy-wasm host (ABI 0.2.1, 0.2.0 and 0.1.0: see `ABI-VERSIONS.md`) on
//! wasmtime, with an embedding API for plugin tests and tools.
//!
//! It runs the real `.wasm`, any SDK's, the way Envoy runs it: start-up order, HTTP and TCP
//! stream lifecycles, callouts to handlers you provide, timers on a virtual clock, shared
//! data and queues across several VMs, metrics, properties, logs, and an exact instruction
//! count for every callback.
//!
//! ```
//! use weir_runtime::{LogLevel, Plugin, Request, Response};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // In a plugin crate's tests, Plugin::build(env!("CARGO_MANIFEST_DIR")) builds that crate
//! // to .wasm (once per process). Here: Weir's acl-check, which asks a policy server.
//! let acl_check = concat!(env!("CARGO_MANIFEST_DIR"), "/../plugins/acl-check");
//! let plugin = Plugin::build(acl_check)
//!     .config(serde_json::json!({ "acl_server": "policy", "set_header": "authz_complete" }))
//!     .upstream("policy", |_req| Response::status(403)) // the policy server's answer
//!     .log_level(LogLevel::Debug)
//!     .start()?;                                           // on_vm_start, on_configure
//! let out = plugin
//!     .http()
//!     .request(Request::get("/data").header("authorization", "Bearer ann"))
//!     .response(Response::status(200).body("hello"))
//!     .run();
//! assert_eq!(out.local_reply().map(|r| r.status()), Some(403));
//! assert!(out.upstream_request().is_none());
//! assert_eq!(out.callouts()[0].cluster(), "policy");
//! assert_eq!(out.callouts()[0].request().headers().get("x-forwarded-uri"), Some("/data"));
//! assert_eq!(plugin.metric("acl_check.denied"), Some(1));
//! assert!(out.instructions() < 2_000_000);                 // deterministic cost
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
//! Each example builds one of the plugins in Weir's repository and runs as written
//! (`cargo test --doc -p weir-runtime`); in a plugin crate's `tests/`, the same code with
//! `Plugin::build(env!("CARGO_MANIFEST_DIR"))` tests that crate.
//!
//! **Callouts** ([`PluginBuilder::upstream`]): a handler per cluster answers the plugin's
//! `dispatch_http_call`s; [`Response::failure`] and [`Response::timeout`] stand for a cluster
//! that is down or slow, [`Response::delay`] for one that answers later,
//! [`Response::connection_refused`] and [`Response::no_healthy_upstream`] for one Envoy
//! cannot reach, and [`Outcome::callouts`] shows what the plugin sent. As the upstream's
//! response of an HTTP exchange, [`Response::timeout`], [`Response::idle_timeout`],
//! [`Response::upstream_reset`] and [`Response::connection_refused`] stand for Envoy
//! answering in its place, and [`HttpExchange::client_disconnects`] for a client that
//! leaves first: the stream then reports the `response.code_details` and
//! `response.flags` Envoy reports. [`HttpStream`] drives a request step by step, to look
//! at it while it waits.
//!
//! ```
//! # use std::time::Duration;
//! # use weir_runtime::{Plugin, Request, Response};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let acl_check = concat!(env!("CARGO_MANIFEST_DIR"), "/../plugins/acl-check");
//! let config = serde_json::json!({ "acl_server": "policy", "set_header": "authz_complete" });
//!
//! // The policy server is down: acl-check fails closed with its status_on_error.
//! let plugin = Plugin::build(acl_check)
//!     .config(config.clone())
//!     .upstream("policy", |_| Response::failure())
//!     .start()?;
//! let out = plugin.http().request(Request::get("/data")).run();
//! assert_eq!(out.local_reply().map(|r| r.status()), Some(403));
//! assert!(out.logged("policy server gave no decision"));
//!
//! // The policy server answers after 100 ms: the request waits, the upstream sees nothing.
//! let plugin = Plugin::build(acl_check)
//!     .config(config)
//!     .upstream("policy", |_| Response::status(401).delay(Duration::from_millis(100)))
//!     .start()?;
//! let mut stream = plugin.http_stream();
//! stream.send_request_headers(&Request::get("/data"), true);
//! assert!(stream.request_paused());
//! plugin.advance(Duration::from_millis(100)); // the answer falls due
//! let out = stream.finish();
//! assert_eq!(out.local_reply().map(|r| r.status()), Some(401));
//! assert!(out.upstream_request().is_none());
//! # Ok(()) }
//! ```
//!
//! **gRPC calls and streams** ([`PluginBuilder::grpc_upstream`]): a handler per cluster
//! receives the service, method, metadata, message and timeout ([`GrpcRequest`]) and
//! answers with a [`GrpcReply`] (unary) or a [`GrpcStreamScript`] (messages, waits, the
//! close); [`Outcome::grpc_calls`] shows what the plugin sent and was told. Answers arrive
//! as Envoy delivers them: at the root context, on the virtual clock.
//!
//! ```no_run
//! # use weir_runtime::{grpc::code, GrpcReply, GrpcRequest, Plugin, Request};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let plugin = Plugin::build(env!("CARGO_MANIFEST_DIR"))
//!     .grpc_upstream("authz", |req: &GrpcRequest| match req.method() {
//!         "Check" => GrpcReply::ok(vec![0x0a, 0x02, b'o', b'k']), // a serialized protobuf
//!         _ => GrpcReply::error(code::UNIMPLEMENTED, ""),
//!     })
//!     .start()?;
//! let out = plugin.http().request(Request::get("/data")).run();
//! assert_eq!(out.grpc_calls()[0].request().path(), "/envoy.service.auth.v3.Authorization/Check");
//! # Ok(()) }
//! ```
//!
//! **Timers** ([`Plugin::advance`]): the clock is virtual, so a flush every 5 s or a
//! callout that answers after 2 s takes no real time. Here examples/event-batcher queues
//! one event per request and ships what it has every `flush_interval_seconds`.
//!
//! ```
//! # use std::time::Duration;
//! # use weir_runtime::{Plugin, Request, Response};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let batcher = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/event-batcher");
//! let plugin = Plugin::build(batcher)
//!     .config(serde_json::json!({ "cluster": "collector", "flush_interval_seconds": 5 }))
//!     .upstream("collector", |_| Response::status(204).delay(Duration::from_secs(2)))
//!     .start()?;
//! plugin.http().request(Request::get("/item/1")).run();
//! plugin.advance(Duration::from_secs(4));
//! assert_eq!(plugin.metric("event_batcher.batches_shipped").unwrap_or(0), 0); // not yet
//! plugin.advance(Duration::from_secs(1)); // the flush timer fires: the batch is sent
//! plugin.advance(Duration::from_secs(2)); // and the collector's answer arrives
//! assert_eq!(plugin.metric("event_batcher.batches_shipped"), Some(1));
//! assert_eq!(plugin.now(), Duration::from_secs(7));
//! # Ok(()) }
//! ```
//!
//! **Several workers** ([`PluginBuilder::workers`], [`Plugin::http_on`]): one VM per
//! worker, sharing data, queues and metrics, as Envoy's workers do. The event-batcher's
//! filters on both workers enqueue; one VM drains the queue and ships a single batch.
//!
//! ```
//! # use std::sync::{Arc, Mutex};
//! # use std::time::Duration;
//! # use weir_runtime::{Plugin, Request, Response};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let batcher = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/event-batcher");
//! let batches = Arc::new(Mutex::new(Vec::new()));
//! let seen = batches.clone();
//! let plugin = Plugin::build(batcher)
//!     .workers(2)
//!     .config(serde_json::json!({ "cluster": "collector", "batch_size": 2 }))
//!     .upstream("collector", move |req| {
//!         seen.lock().unwrap().push(String::from_utf8_lossy(req.body_bytes()).into_owned());
//!         Response::status(204)
//!     })
//!     .start()?;
//! plugin.http_on(0).request(Request::get("/a")).run();
//! plugin.http_on(1).request(Request::get("/b")).run();
//! plugin.advance(Duration::ZERO); // deliver the collector's answer
//! let batches = batches.lock().unwrap();
//! assert_eq!(batches.len(), 1);
//! assert!(batches[0].contains("\"/a\"") && batches[0].contains("\"/b\""));
//! assert_eq!(plugin.metric("event_batcher.events_shipped"), Some(2));
//! # Ok(()) }
//! ```
//!
//! **NETWORK (L4) filters** ([`Plugin::tcp`], [`Plugin::connection`]): bytes each way, and
//! whether the plugin closed the connection. Properties such as `source.address` are what
//! the plugin reads from the host; here examples/ip-allowlist.
//!
//! ```
//! # use weir_runtime::Plugin;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let allowlist = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/ip-allowlist");
//! let from = |source: &str| {
//!     Plugin::build(allowlist)
//!         .config(serde_json::json!({ "allow": ["10.0.0.0/8"] }))
//!         .property("source.address", source)
//!         .start()
//! };
//! let out = from("192.0.2.7:40000")?.tcp().downstream("PING\r\n").run();
//! assert!(out.closed_by_plugin());
//! assert!(out.to_upstream().is_empty());
//!
//! let allowed = from("10.1.2.3:40000")?;
//! let mut conn = allowed.connection(); // step by step
//! conn.send_downstream(b"PING\r\n", false).send_upstream(b"PONG\r\n", false);
//! let out = conn.finish();
//! assert_eq!((out.to_upstream(), out.to_downstream()), (&b"PING\r\n"[..], &b"PONG\r\n"[..]));
//! # Ok(()) }
//! ```
//!
//! The plugins in Weir's repository test themselves this way, in more depth:
//! `plugins/acl-check/tests` (callouts, failures, timeouts, a decision cache shared by
//! workers), `plugins/check-header/tests` (key refresh on timers),
//! `examples/event-batcher/tests` (queues across workers), `examples/ip-allowlist/tests`
//! (NETWORK).
//!
//! # The crate's modules
//!
//! The embedding API is [`plugin`] ([`Plugin`], [`PluginBuilder`], the HTTP and TCP
//! exchanges and streams), re-exported at the crate root with the values it speaks in
//! ([`Request`], [`Response`], [`Outcome`], the [`grpc`] types, the errors). Plugin tests
//! use it, and so do `weir run` and `weir exec`. Beside it: [`build`] turns a plugin crate
//! into `.wasm`, [`WasiCommand`] runs a WASI command module, and [`fuzz`] holds test-only
//! conveniences (randomized requests).
//!
//! Inside, the layers from the bottom: `state` (what a VM's host functions read and write,
//! per VM and shared by a plugin's VMs), `host_functions` (proxy-wasm's `env` functions and
//! WASI's), `engine` (wasmtime's engine and linker, the module cache, one VM), `flows`
//! (callbacks in Envoy's order: HTTP and TCP streams, callouts, timers, queues), then
//! `plugin`. Each uses only the layers below it.
//!
//! Guarantees: host functions never panic on guest input (bad pointers, huge sizes and
//! unknown enum values give ABI status codes); a guest that traps, loops (see
//! [`PluginBuilder::fuel_limit`]) or asks for too much memory yields an error or a
//! [`Trap`], never a host crash. Every [`Plugin`] is an independent value: tests run in
//! parallel. Compiled modules are cached by content, process-wide.
#![warn(missing_docs)]

// The layers, bottom up (each uses only those above it in this list):
// the values the API speaks in,
mod abi_version;
mod error;
pub mod grpc;
mod message;
mod outcome;
mod sync;
// what a VM's host functions read and write (per VM, and shared by a plugin's VMs),
mod state;
// the proxy-wasm and WASI host functions,
mod host_functions;
// the wasmtime engine, linker, module cache and VMs,
mod engine;
// the callbacks in Envoy's order (HTTP and TCP streams, callouts, timers, queues),
mod flows;
// and the embedding API used by tests, `weir run` and `weir exec`.
pub mod build;
mod command;
pub mod plugin;
// and test-only conveniences over it.
pub mod fuzz;

pub use abi_version::AbiVersion;
pub use command::{CommandError, WasiCommand};
pub use error::{LoadError, StartError};
pub use grpc::{GrpcAnswer, GrpcCall, GrpcReply, GrpcRequest, GrpcStatus, GrpcStreamScript};
pub use message::{Headers, LocalReply, Request, Response};
pub use outcome::{Action, CallbackCost, Callout, LogEntry, Outcome, Phase, Trap};
pub use plugin::{
    Connection, HttpExchange, HttpStream, Plugin, PluginBuilder, PropertyValue, TcpExchange,
    DEFAULT_FUEL_LIMIT, DEFAULT_MEMORY_LIMIT,
};
pub use state::shared::CLOCK_START;
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
