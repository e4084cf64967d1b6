//! Weir: write Envoy and Istio proxy-wasm plugins in Rust.
//!
//! A whole plugin — it sets the response header `x-hello` to a configured greeting:
//!
//! ```
//! use weir::prelude::*;
//!
//! #[derive(Deserialize)]
//! #[serde(deny_unknown_fields)]
//! struct Config {
//!     #[serde(default)]
//!     greeting: Option<HeaderValue>, // CR, LF and NUL are refused at configure time
//! }
//! impl Validate for Config {} // checks across fields, env reads: see weir::config::Validate
//!
//! struct Hello {
//!     cfg: Shared<Config>, // parsed once per configure, shared by every request
//! }
//!
//! impl HttpFilter for Hello {
//!     fn on_response_headers(&mut self, res: &mut ResponseHeaders) -> Result<Flow> {
//!         let greeting = self.cfg.greeting.as_deref().unwrap_or("hello from weir");
//!         res.set("x-hello", greeting)?;
//!         Ok(Flow::Continue)
//!     }
//! }
//!
//! weir::http_plugin!(Config => |cfg| Hello { cfg });
//! ```
//!
//! What the plugin did not have to write: root contexts, context ids, configuration byte
//! juggling, JSON error reporting, log set-up. This is `examples/hello` in Weir's
//! repository, and the crate `weir new` writes.
//!
//! # From the first line to production
//!
//! **1. Write.** `weir new my-plugin` (the `weir` command, crate `weir-cli`) writes the
//! crate above: `crate-type = ["cdylib"]`, `weir-sdk` as a dependency (its library is
//! `weir`), `weir-runtime` as a dev-dependency, a test, a README, `wasmplugin.yaml` and
//! `envoy.yaml`. `--network` starts from a NETWORK (L4) filter instead.
//!
//! ```sh
//! cargo install --profile host --path cli    # in a Weir checkout: the weir command (once)
//! rustup target add wasm32-wasip1
//! weir new my-plugin && cd my-plugin         # --weir-path DIR: depend on a checkout by path
//! ```
//!
//! **2. Test** on the real `.wasm`, on the host, with `cargo test`: weir-runtime builds the
//! crate for `wasm32-wasip1` and runs it the way Envoy does. In the crate's `tests/`,
//! `Plugin::build(env!("CARGO_MANIFEST_DIR"))` builds that crate; this page's copy builds
//! `examples/hello` and runs (`cargo test --doc -p weir-sdk`):
//!
//! ```
//! # #[cfg(not(target_family = "wasm"))]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use weir_runtime::{Plugin, Request, Response};
//!
//! let hello = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/hello"); // your crate's dir
//! let plugin = Plugin::build(hello) // built to .wasm once per test process
//!     .config(serde_json::json!({ "greeting": "hi there" }))
//!     .start()?; // on_vm_start and on_configure, as Envoy calls them
//! let out = plugin.http().request(Request::get("/")).response(Response::status(200)).run();
//! assert_eq!(out.response().unwrap().header_value("x-hello"), Some("hi there"));
//!
//! // Bad configuration fails at configure time, naming the field.
//! let err = Plugin::build(hello).config(serde_json::json!({ "greting": "hi" })).start();
//! assert!(err.unwrap_err().to_string().contains("greting"));
//! # Ok(()) }
//! # #[cfg(target_family = "wasm")]
//! # fn main() {}
//! ```
//!
//! The runtime's documentation shows the other patterns, each as a test that runs: callouts,
//! timers, several workers, NETWORK filters.
//!
//! **3. Run locally.** `weir exec` sends one request through the plugin with no proxy;
//! `weir run` starts a real Envoy wired exactly as istiod wires a WasmPlugin, and reloads the
//! module when `cargo wasm` rebuilds it (point the WasmPlugin's `url` at it with
//! `file://`); `envoy.yaml` is the plain-Envoy form.
//!
//! ```sh
//! cargo wasm                                  # = cargo build --release --target wasm32-wasip1
//! weir exec . -H 'host: example.com' --request 'GET /'
//! weir run -f wasmplugin.yaml --upstream http://127.0.0.1:8000
//! ```
//!
//! **4. Ship.** `weir push` builds, packages and pushes the OCI image Istio's fetcher reads
//! and prints its digest; `weir manifest` writes the WasmPlugin that deploys it (with that
//! digest in `sha256`), and `weir manifest validate` checks it against Istio's CRD schema.
//!
//! ```sh
//! weir push . oci://registry.example:5000/weir/my-plugin:0.1.0
//! weir manifest --name my-plugin -n istio-system --url registry.example:5000/weir/my-plugin:0.1.0 \
//!     --resolve --phase STATS --selector app=httpbin --plugin-config config.yaml > wasmplugin.yaml
//! weir manifest validate wasmplugin.yaml && kubectl apply -f wasmplugin.yaml
//! ```
//!
//! # How it fits together
//!
//! - **Configuration.** `pluginConfig` arrives as JSON. Once per configure it is read into
//!   your `#[derive(Deserialize)]` type, then your [`config::Validate`] impl checks what spans
//!   fields and resolves what the JSON only names (a secret in `vmConfig.env`); the result is
//!   shared with every request as [`Shared<Config>`](Shared), without copying. Bad
//!   configuration is rejected at either step: Envoy refuses the plugin and its log names the
//!   field, e.g. `invalid plugin configuration at rules[1].name: 'X-Bad' contains an
//!   upper-case letter; header names are lower-case tokens`. An empty configuration reads as
//!   `{}`, so a type with defaults needs none. [`config::Validate`] shows the whole pattern.
//! - **Filters.** One [`HttpFilter`] value per request; each hook receives only what its
//!   phase has ([`RequestHeaders`], [`RequestBody`], …) and returns a [`Flow`]: continue,
//!   pause (buffer a body), or a [`LocalReply`].
//! - **Errors are values.** Host calls return [`Result`]; an `Err` from a hook is logged and
//!   answered with [`HttpFilter::on_error`]'s reply (a bare 500 by default: fail closed).
//! - **Logging.** The [`log`] crate's macros write to Envoy's log at the host's level.
//!   Control characters in a message (CR, LF, ESC, …) and the Unicode line separators and
//!   direction overrides are written as escapes (`\n`, `\x1b`, `\u{2028}`), so a value a
//!   client sent cannot end the line and forge another.
//! - **Several plugins in one module** are selected by root id (`pluginName`): see
//!   [`plugins!`].
//! - **NETWORK (L4) plugins** implement [`NetworkFilter`] and register with
//!   [`network_plugin!`]: see [`network`].
//! - **Environment and properties.** [`env_var`] reads `vmConfig.env`; [`property`] reads
//!   host attributes such as `source.address`.
//!
//! # Features at a glance
//!
//! | need | use |
//! |---|---|
//! | typed, validated config | `#[derive(Deserialize)]`, [`HeaderName`], [`HeaderValue`], [`config::bounded`], then [`config::Validate`] (checks across fields, secrets from `vmConfig.env`), [`Shared`] |
//! | read/modify headers | [`Headers::get`], [`Headers::get_all`], [`Headers::set`], [`Headers::add`], [`Headers::remove`] |
//! | consume a credential header: its values, then it and every spelling an upstream reads as it gone, in one read of the map | [`Headers::take_all`] ([`Headers::remove_lookalikes`] without the values) |
//! | match a configured path rule the way the upstream will serve the path | [`http::path::normalize`], [`http::path::under`] |
//! | write configured headers without a per-request scan | [`Headers::set_value`], [`Headers::add_value`] (take [`HeaderName`], [`HeaderValue`]) |
//! | pseudo-headers, query, cookies, bearer token | [`RequestHeaders::path`](Headers::path), [`Headers::query`], [`Headers::cookies`], [`Headers::bearer_token`] |
//! | whole body | return [`Flow::Pause`] until [`Body::end_of_stream`], then [`Body::bytes`] |
//! | answer without the upstream | [`Flow::reply`], [`LocalReply`] |
//! | TCP connections | [`NetworkFilter`], [`network::Connection`], [`DownstreamData`] |
//! | call another service, pause until it answers | `Flow::wait(async move { Call::post(cluster, path).send().await })` (feature `callout`, see `weir::callout`); response bodies over 1 MiB are an `Err` unless `Call::max_response_bytes` allows more |
//! | call a gRPC service (unary or streaming), pause until it answers | `Flow::wait(async move { Grpc::call(cluster, service, method).message(bytes).send().await })` (feature `grpc`, see `weir::grpc`): the status, its message and the response as a value; `Grpc::stream` for streams |
//! | fetch or refresh something on a timer, outside requests | `http_plugin!(Config => make, background = start)` (feature `callout`, see `weir::background`) |
//! | verify JWTs (ES256, EdDSA; ES384 with `jwt-es384`, RS*/PS* with `jwt-rsa`) | `weir::jwt::Verifier` (feature `jwt`) |
//! | skip the signature check for a token seen again (per VM, bounded, re-checks time and issuer/audience) | `Verifier::cache_verified(entries)`, then `Verifier::verify_shared` (feature `jwt`) |
//! | the host's clock (virtual in weir-runtime tests) | [`now`], [`unix_time`] |
//! | state every worker's VM sees, with compare-and-swap | [`shared_data::get`], [`shared_data::set`] (keys namespaced by plugin name and root id; no access control, see [`shared_data`]) |
//! | hand items from every worker's VM to one VM, which drains them with `async` work (batch and ship events) | `weir::queue::Queue` (`register`, `resolve`, `enqueue`, `dequeue`; names namespaced like shared data), `Background::on_queue` (feature `callout`); template: `examples/event-batcher` |
//! | counters, gauges, histograms | [`metrics::Counter`], [`metrics::Gauge`], [`metrics::Histogram`] |

#![warn(missing_docs)]

#[cfg(feature = "callout")]
pub mod background;
#[cfg(feature = "callout")]
pub mod callout;
pub mod config;
mod error;
mod flow;
#[cfg(feature = "grpc")]
pub mod grpc;
mod host;
pub mod http;
#[cfg(feature = "jwt")]
pub mod jwt;
mod logger;
pub mod metrics;
pub mod network;
#[cfg(feature = "callout")]
mod pending;
mod plugin;
mod proxy_types;
pub mod queue;
mod reply;
mod serialized_map;
pub mod shared_data;
#[cfg(feature = "callout")]
mod task;

#[cfg(feature = "callout")]
pub use callout::{Call, CallFuture, CallResponse};
pub use config::{parse_config, ConfigError, HeaderName, HeaderValue, Shared};
pub use error::{Error, HostStatus, Result};
pub use flow::{Flow, LocalReply};
pub use host::{env_var, now, property, property_i64, property_string, unix_time};
pub use http::{
    same_header_upstream, Body, Cookies, DownstreamData, HeaderValues, Headers, HttpFilter, Phase,
    Query, RequestBody, RequestHeaders, RequestTrailers, ResponseBody, ResponseHeaders,
    ResponseTrailers, UpstreamData,
};
pub use network::{ConnectionFlow, NetworkFilter};
pub use plugin::PluginDef;
#[cfg(feature = "callout")]
pub use task::Waiting;
pub use weir_abi::HostFunction;

/// Re-exports for `use weir::prelude::*;`.
pub mod prelude {
    pub use crate::config::Validate;
    pub use crate::{
        ConfigError, Error, Flow, HeaderName, HeaderValue, HttpFilter, LocalReply, RequestBody,
        RequestHeaders, RequestTrailers, ResponseBody, ResponseHeaders, ResponseTrailers, Result,
        Shared,
    };
    pub use log::{debug, error, info, trace, warn};
    pub use serde::Deserialize;
}

/// Used by the macros; not part of the API.
#[doc(hidden)]
pub mod __private {
    #[cfg(feature = "callout")]
    pub use crate::plugin::with_background;
    pub use crate::plugin::{
        http_root as http, network_root as network, new_root, no_background, register, PluginDef,
    };
}

#[cfg(test)]
mod crate_docs_tests {
    /// The code lines of `text`: comments (whole-line and trailing `// …`) and blank lines
    /// dropped, so the docs may explain more briefly than the example does.
    fn code_lines(text: &str) -> Vec<&str> {
        text.lines()
            .map(|line| line.split(" // ").next().unwrap_or(line).trim_end())
            .filter(|line| !line.is_empty() && !line.trim_start().starts_with("//"))
            .collect()
    }

    /// The crate docs open with `examples/hello` (the crate `weir new` writes, and the one the
    /// testing step builds and runs), so that code must be the example's, line for line.
    #[test]
    fn the_opening_example_is_examples_hello() {
        let docs: String = include_str!("lib.rs")
            .lines()
            .map_while(|line| line.strip_prefix("//!"))
            .map(|line| line.strip_prefix(' ').unwrap_or(line))
            .skip_while(|line| *line != "```")
            .skip(1)
            .take_while(|line| *line != "```")
            .map(|line| format!("{line}\n"))
            .collect();
        let hello = include_str!("../../examples/hello/src/lib.rs");
        assert_eq!(code_lines(&docs), code_lines(hello));
        assert!(
            code_lines(hello).len() > 15,
            "examples/hello/src/lib.rs was read"
        );
    }
}
