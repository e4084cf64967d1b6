//! The scenario format: one JSON file per case under `scenarios/`, read with
//! [`Scenario::load`]. Field names are camelCase, as in Istio's `WasmPlugin`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use serde_json::Value;

use crate::observed::Observed;

/// The plugins scenarios can run, each built (or compiled from WAT) once per test process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PluginKind {
    /// `plugins/header-append` (HTTP, Weir SDK).
    HeaderAppend,
    /// `examples/ip-allowlist` (NETWORK, Weir SDK).
    IpAllowlist,
    /// `tests/fidelity/guests/exerciser` (HTTP, plain `proxy-wasm` 0.2.5).
    Exerciser,
    /// `runtime/test-plugins/abi-0-1-0`: ABI 0.1.0 (`proxy-wasm` 0.1.4, set-up in `_start`).
    #[serde(rename = "abi-0.1.0")]
    Abi010,
    /// `runtime/test-plugins/wat/abi_0_2_0.wat`: ABI 0.2.0 shaped like AssemblyScript output.
    #[serde(rename = "abi-0.2.0")]
    Abi020,
    /// `runtime/test-plugins/wat/abi_9_9_9.wat`: an ABI version nobody serves.
    #[serde(rename = "abi-9.9.9")]
    Abi999,
    /// `runtime/test-plugins/wat/abi_0_2_0_imports_get_log_level.wat`: imports a function
    /// of another ABI version than it declares.
    AbiMismatchedImport,
    /// `runtime/test-plugins/wat/both_allocators.wat`: exports `malloc` and
    /// `proxy_on_memory_allocate`, and shows which one the host used.
    BothAllocators,
}

/// Where a plugin's `.wasm` comes from.
enum Source {
    /// A crate built for `wasm32-wasip1`.
    Crate(PathBuf),
    /// A hand-written WAT file.
    Wat(PathBuf),
}

impl PluginKind {
    fn source(self) -> Source {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let wat = |name: &str| Source::Wat(repo.join("runtime/test-plugins/wat").join(name));
        match self {
            PluginKind::HeaderAppend => Source::Crate(repo.join("plugins/header-append")),
            PluginKind::IpAllowlist => Source::Crate(repo.join("examples/ip-allowlist")),
            PluginKind::Exerciser => Source::Crate(repo.join("tests/fidelity/guests/exerciser")),
            PluginKind::Abi010 => Source::Crate(repo.join("runtime/test-plugins/abi-0-1-0")),
            PluginKind::Abi020 => wat("abi_0_2_0.wat"),
            PluginKind::Abi999 => wat("abi_9_9_9.wat"),
            PluginKind::AbiMismatchedImport => wat("abi_0_2_0_imports_get_log_level.wat"),
            PluginKind::BothAllocators => wat("both_allocators.wat"),
        }
    }

    /// The `.wasm` file both engines load: a crate's release build for `wasm32-wasip1`
    /// (once per process), or a WAT guest compiled now.
    pub fn wasm(self) -> Result<PathBuf> {
        match self.source() {
            Source::Crate(dir) => weir_runtime::Plugin::wasm_path(&dir)
                .with_context(|| format!("building {} to .wasm", dir.display())),
            Source::Wat(path) => weir_envoy_tests::compile_wat(path),
        }
    }

    /// The `WasmPlugin` name: Envoy knows the plugin as `default.<name>`.
    pub fn name(self) -> &'static str {
        match self {
            PluginKind::HeaderAppend => "header-append",
            PluginKind::IpAllowlist => "ip-allowlist",
            PluginKind::Exerciser => "exerciser",
            PluginKind::Abi010 => "abi-0-1-0",
            PluginKind::Abi020 => "abi-0-2-0",
            PluginKind::Abi999 => "abi-9-9-9",
            PluginKind::AbiMismatchedImport => "abi-mismatched-import",
            PluginKind::BothAllocators => "both-allocators",
        }
    }
}

/// Header fields as `[name, value]` pairs: order and repeated names are kept.
pub type Fields = Vec<(String, String)>;

/// A canned HTTP response (from the upstream, or from a callout cluster).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CannedResponse {
    /// The status code.
    pub status: u16,
    /// Header fields (`content-length` is added by the server, as on the wire).
    #[serde(default)]
    pub headers: Fields,
    /// The body, as text.
    #[serde(default)]
    pub body: String,
    /// How the server frames it (default: `content-length`).
    #[serde(default)]
    pub framing: Framing,
    /// How long the server waits before answering.
    #[serde(default)]
    pub delay_ms: u64,
    /// Trailer fields after the body (the upstream of an `http2` scenario only).
    #[serde(default)]
    pub trailers: Fields,
}

/// How a canned response travels on the wire.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Framing {
    /// With `content-length`.
    #[default]
    ContentLength,
    /// With `transfer-encoding: chunked`.
    Chunked,
    /// Without a length: the body ends when the server closes the connection.
    Close,
    /// No response: the server closes the connection once it read the request.
    Reset,
    /// No server: connecting is refused (the main upstream only).
    Refuse,
}

/// The request the client sends.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientRequest {
    /// The method, e.g. `GET`.
    pub method: String,
    /// The request target, e.g. `/a?b=c`.
    pub path: String,
    /// Header fields besides `host` (and `content-length`, sent when there is a body).
    #[serde(default)]
    pub headers: Fields,
    /// The body, as text.
    #[serde(default)]
    pub body: String,
    /// Trailer fields after the body (`http2` scenarios only).
    #[serde(default)]
    pub trailers: Fields,
}

/// A TCP exchange: the client sends `send`, the upstream answers `reply` once it got
/// everything.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TcpExchange {
    /// Bytes from the client, as text.
    pub send: String,
    /// Bytes from the upstream, as text.
    pub reply: String,
}

/// One scenario file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Scenario {
    /// What the scenario shows, for people reading it.
    pub description: String,
    /// The plugin under test.
    pub plugin: PluginKind,
    /// The root id (Istio's `pluginName`); default empty.
    #[serde(default)]
    pub root_id: String,
    /// The `pluginConfig`, sent to both engines as its JSON text; absent sends "".
    #[serde(default)]
    pub plugin_config: Option<Value>,
    /// `vmConfig.env` (inline values).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Properties for weir-runtime only, set to what Envoy reports for its real
    /// 127.0.0.1 connection (Envoy's own values cannot be set).
    #[serde(default)]
    pub runtime_properties: BTreeMap<String, String>,
    /// Wait before the request: the virtual clock advances this far in weir-runtime,
    /// real time passes in Envoy (timers fire in both).
    #[serde(default)]
    pub advance_ms: u64,
    /// How long the client waits while the plugin holds its request (e.g. for a root
    /// context's tick to resume it): weir-runtime advances its virtual clock this far,
    /// Envoy's timers run on the wall clock while the client waits.
    #[serde(default)]
    pub held_ms: u64,
    /// Callout clusters whose only endpoint refuses connections: Envoy gets a cluster on a
    /// closed 127.0.0.1 port, weir-runtime answers with `Response::connection_refused()`.
    #[serde(default)]
    pub refusing_clusters: Vec<String>,
    /// Callout clusters that exist without any endpoint (no healthy host).
    #[serde(default)]
    pub empty_clusters: Vec<String>,
    /// The route's timeout for the upstream's response (default: 10 s).
    #[serde(default)]
    pub route_timeout_ms: Option<u64>,
    /// The route's idle timeout (default: none).
    #[serde(default)]
    pub route_idle_timeout_ms: Option<u64>,
    /// The client closes its connection this long after sending the request, before any
    /// response (weir-runtime: `HttpExchange::client_disconnects`).
    #[serde(default)]
    pub client_gives_up_ms: Option<u64>,
    /// Canned responses of callout clusters, by cluster name.
    #[serde(default)]
    pub callouts: BTreeMap<String, CannedResponse>,
    /// The HTTP request (HTTP plugins).
    #[serde(default)]
    pub request: Option<ClientRequest>,
    /// The client speaks HTTP/2 (h2c, prior knowledge) to Envoy and Envoy speaks HTTP/2 to
    /// the upstream, so trailers travel both ways (HTTP/1.1 drops them). Needs an upstream
    /// response framed with `content-length`.
    #[serde(default)]
    pub http2: bool,
    /// The upstream's response (HTTP plugins).
    #[serde(default)]
    pub upstream_response: Option<CannedResponse>,
    /// The TCP exchange (NETWORK plugins).
    #[serde(default)]
    pub tcp: Option<TcpExchange>,
    /// gRPC clusters by name and how their server behaves: Envoy gets an HTTP/2 cluster
    /// served by a real gRPC server (tonic) on 127.0.0.1, weir-runtime the same behaviour
    /// as a gRPC handler.
    #[serde(default)]
    pub grpc_clusters: BTreeMap<String, crate::grpc::GrpcBehaviour>,
    /// Known weir-runtime differences from Envoy: field path (as the diff names it, e.g.
    /// `client.headers`) → why. Diff lines of weir-runtime at these paths are reported,
    /// not failed; Envoy must still match the expectation, and a gap that no longer shows
    /// fails the scenario so it gets removed.
    #[serde(default)]
    pub runtime_gaps: BTreeMap<String, String>,
    /// The expected observable outcome, compared field by field with each engine's.
    pub expect: Observed,
}

impl Scenario {
    /// Reads and checks a scenario file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading scenario {}", path.display()))?;
        let scenario: Scenario = serde_json::from_str(&text).with_context(|| {
            format!(
                "scenario {} does not match the format in the README",
                path.display()
            )
        })?;
        let rejected = scenario.expect.rejected;
        match (&scenario.request, &scenario.tcp) {
            (Some(_), Some(_)) => bail!(
                "{}: give either `request` or `tcp`, not both",
                path.display()
            ),
            (None, None) if !rejected => {
                bail!("{}: give a `request` or a `tcp` exchange", path.display())
            }
            _ => {}
        }
        scenario.check_http2(path)?;
        crate::grpc::validate(&scenario)?;
        Ok(scenario)
    }

    fn check_http2(&self, path: &Path) -> Result<()> {
        let response = self.upstream_response();
        let trailers = !response.trailers.is_empty()
            || self
                .request
                .as_ref()
                .is_some_and(|r| !r.trailers.is_empty());
        if trailers && !self.http2 {
            bail!(
                "{}: trailers need `\"http2\": true` (HTTP/1.1 drops them)",
                path.display()
            );
        }
        if self.http2
            && (response.framing != Framing::ContentLength || self.client_gives_up_ms.is_some())
        {
            bail!(
                "{}: an `http2` scenario needs an upstream response framed with content-length and a client that waits for it",
                path.display()
            );
        }
        if self.callouts.values().any(|c| !c.trailers.is_empty()) {
            bail!("{}: callout responses carry no trailers", path.display());
        }
        Ok(())
    }

    /// The configuration text both engines get.
    pub fn config_text(&self) -> String {
        self.plugin_config
            .as_ref()
            .map(Value::to_string)
            .unwrap_or_default()
    }

    /// The upstream response, or an empty `200`.
    pub fn upstream_response(&self) -> CannedResponse {
        self.upstream_response.clone().unwrap_or(CannedResponse {
            status: 200,
            headers: Vec::new(),
            body: String::new(),
            framing: Framing::ContentLength,
            delay_ms: 0,
            trailers: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(name: &str, text: &str) -> Result<Scenario> {
        let path =
            std::env::temp_dir().join(format!("weir-fidelity-{}-{name}.json", std::process::id()));
        std::fs::write(&path, text)?;
        let loaded = Scenario::load(&path);
        let _ = std::fs::remove_file(&path);
        loaded
    }

    #[test]
    fn trailers_need_http2_and_http2_needs_a_framed_response() -> Result<()> {
        let trailers = r#"{"description": "d", "plugin": "exerciser",
            "request": {"method": "POST", "path": "/", "body": "x", "trailers": [["a", "b"]]}"#;
        let err = load_text("no-http2", &format!("{trailers}, \"expect\": {{}}}}"))
            .expect_err("trailers over HTTP/1.1 are refused");
        assert!(err.to_string().contains("trailers need"), "{err}");
        let chunked = format!(
            "{trailers}, \"http2\": true, \"upstreamResponse\": {{\"status\": 200, \"framing\": \"chunked\"}}, \"expect\": {{}}}}"
        );
        let err = load_text("chunked", &chunked).expect_err("chunked over HTTP/2 is refused");
        assert!(
            err.to_string().contains("framed with content-length"),
            "{err}"
        );
        let fine = format!("{trailers}, \"http2\": true, \"expect\": {{}}}}");
        assert!(load_text("fine", &fine)?.http2);
        Ok(())
    }
}
