//! Runs Weir plugins in a real Envoy, configured the way istiod configures a `WasmPlugin`.
//!
//! ```
//! use weir_envoy_tests::{build_wasm, EchoUpstream, Envoy, Reply, WasmFilter};
//!
//! # fn main() -> anyhow::Result<()> {
//! let upstream = EchoUpstream::with_reply(Reply::status(200).header("x-d", "gone"))?;
//! let plugin = WasmFilter::new(build_wasm("header-append"))
//!     .plugin_name("istio-system", "header-append")
//!     .configuration(r#"{"response_headers_to_remove": ["x-d"]}"#);
//! let envoy = Envoy::builder().http_filter(plugin).upstream(upstream.addr()).start()?;
//!
//! let response = envoy.get("/hello")?.header("x-a", "1").send()?;
//! assert_eq!(response.status, 200);
//! assert!(!response.headers.contains("x-d"));
//! assert_eq!(upstream.requests()[0].headers.get_all("x-a"), ["1"]);
//! # Ok(())
//! # }
//! ```
//!
//! The pieces:
//! - [`build_wasm`] builds a plugin crate for `wasm32-wasip1` once per test process;
//!   [`compile_wat`] compiles a hand-written WAT guest to a `.wasm` file.
//! - [`Envoy::builder`] writes a bootstrap with the given [`WasmFilter`]s (HTTP, and
//!   optionally network filters on a TCP proxy listener), starts Envoy with
//!   `--concurrency 1` (or [`EnvoyBuilder::concurrency`]), and waits for the admin `/ready`.
//!   [`EnvoyBuilder::start_expecting_refusal`] is for configs the plugin must reject.
//! - [`EchoUpstream`] records what Envoy forwarded; [`HttpRequest`] sends requests and
//!   returns every response header in wire order. Neither follows redirects or merges
//!   repeated header fields. Both come from `weir-test-http`, the one test client.
//! - [`GrpcUpstream`] is a real gRPC server (tonic over hyper's HTTP/2, on [`H2Server`])
//!   answering each call as the test scripts it ([`GrpcReply`]).
//! - [`PolicyServer`] runs the reference policy server (`examples/policy-server`) as a
//!   child process, for the AUTHZ chain tests and `make demo`; it can be stopped and
//!   started again on the same address with the same signing key.
//! - [`Load`] sends a bounded, paced load from a few workers and records every answer;
//!   [`judge`] checks the answers against the [`Fault`]s caused meanwhile (`make soak`).
//!   [`Envoy::wasm_failures`] finds plugin traps and panics in Envoy's log,
//!   [`Envoy::rss_kib`] reads its memory.
//! - [`TimedRequests`] is the benchmarks' measured run: a warm-up, then timed requests on
//!   one [`KeepAlive`] connection, every answer checked for the expected status.
//!
//! Envoy is found at `$WEIR_ENVOY`, `<repo>/.venv/bin/envoy` (installed by `make envoy`),
//! or on `PATH`. Each [`Envoy`] binds kernel-chosen ports on 127.0.0.1, so tests can run in
//! parallel. When a test fails, its Envoy's `envoy.yaml` and `envoy.log` are kept in a
//! temporary directory whose path is printed.

#![warn(missing_docs)]

mod bootstrap;
mod envoy;
mod fault_verdict;
mod grpc_upstream;
mod h2_server;
mod keep_alive;
mod load;
mod locate;
mod policy_server;
mod scratch;
mod timed_requests;
mod wasm_build;
mod wat_build;
mod yaml;

pub use bootstrap::{FailurePolicy, WasmFilter};
pub use envoy::{Envoy, EnvoyBuilder, Refusal};
pub use fault_verdict::{judge, Fault, FaultOutcome, Verdict};
pub use grpc_upstream::{GrpcCall, GrpcReply, GrpcUpstream};
pub use h2_server::{h2_runtime, H2Server};
pub use keep_alive::KeepAlive;
pub use load::{Load, Sample};
pub use locate::{find_envoy, repo_root};
pub use policy_server::{PolicyServer, PolicyServerBuilder, UserKeys};
pub use timed_requests::{TimedRequests, Timing};
pub use wasm_build::{build_wasm, build_wasm_with, try_build_wasm};
pub use wat_build::compile_wat;
pub use weir_test_http::{
    EchoUpstream, Headers, HttpRequest, HttpResponse, RecordedRequest, Reply, ReplyFraming,
};
