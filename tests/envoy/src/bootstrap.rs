//! The Envoy bootstrap: wasm filters written the way istiod writes a `WasmPlugin`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Result};
use serde_json::{json, Value};

/// Name of the HTTP listener in the bootstrap (see [`crate::Envoy::url`]).
pub(crate) const HTTP_LISTENER: &str = "http";
/// Name of the TCP proxy listener (see [`crate::Envoy::tcp_addr`]).
pub(crate) const TCP_LISTENER: &str = "tcp";
const UPSTREAM_CLUSTER: &str = "upstream";

pub use weir_cli::run::filter::FailurePolicy;
use weir_cli::run::filter::{FilterKind, WasmFilterConfig};

/// One wasm filter, as istiod would configure it for a `WasmPlugin`.
///
/// `config.name` is `<namespace>.<name>`, `root_id` is the plugin name, and the plugin
/// configuration travels as a `google.protobuf.StringValue` holding JSON.
#[derive(Debug, Clone)]
pub struct WasmFilter {
    wasm: PathBuf,
    namespace: String,
    name: String,
    root_id: String,
    configuration: String,
    key_values: Vec<(String, String)>,
    host_env_keys: Vec<String>,
    failure_policy: Option<FailurePolicy>,
}

impl WasmFilter {
    /// A filter running the module at `wasm`, named `default.<file stem>`, with an empty
    /// root id and an empty configuration (what Istio sends when `pluginConfig` is unset).
    pub fn new(wasm: impl Into<PathBuf>) -> Self {
        let wasm = wasm.into();
        let name = wasm
            .file_stem()
            .map(|stem| stem.to_string_lossy().replace('_', "-"))
            .unwrap_or_else(|| "plugin".to_owned());
        Self {
            wasm,
            namespace: "default".to_owned(),
            name,
            root_id: String::new(),
            configuration: String::new(),
            key_values: Vec::new(),
            host_env_keys: Vec::new(),
            failure_policy: None,
        }
    }

    /// The `WasmPlugin`'s namespace and name; Envoy sees `<namespace>.<name>`.
    pub fn plugin_name(mut self, namespace: &str, name: &str) -> Self {
        namespace.clone_into(&mut self.namespace);
        name.clone_into(&mut self.name);
        self
    }

    /// The root id (Istio's `pluginName`).
    pub fn root_id(mut self, root_id: &str) -> Self {
        root_id.clone_into(&mut self.root_id);
        self
    }

    /// The plugin configuration string, sent verbatim (Istio sends `pluginConfig` as JSON).
    pub fn configuration(mut self, configuration: impl Into<String>) -> Self {
        self.configuration = configuration.into();
        self
    }

    /// The plugin configuration as JSON, as Istio serializes `pluginConfig`.
    pub fn json_configuration(self, configuration: &Value) -> Self {
        self.configuration(configuration.to_string())
    }

    /// A VM environment variable with a fixed value (`vmConfig.env`, `valueFrom: INLINE`).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.key_values.push((key.to_owned(), value.to_owned()));
        self
    }

    /// A VM environment variable copied from Envoy's own environment
    /// (`vmConfig.env`, `valueFrom: HOST`); see [`crate::EnvoyBuilder::process_env`].
    pub fn host_env_key(mut self, key: &str) -> Self {
        self.host_env_keys.push(key.to_owned());
        self
    }

    /// The failure policy; unset leaves Envoy's default (fail closed).
    pub fn failure_policy(mut self, policy: FailurePolicy) -> Self {
        self.failure_policy = Some(policy);
        self
    }

    /// `<namespace>.<name>`, the filter's and the plugin's name in Envoy.
    pub fn full_name(&self) -> String {
        format!("{}.{}", self.namespace, self.name)
    }

    /// Checks the module exists, then writes the filter with the cli library's one
    /// definition of what istiod writes (`weir_cli::run::filter`).
    fn to_filter(&self, kind: FilterKind) -> Result<Value> {
        if !self.wasm.is_file() {
            bail!(
                "wasm module {} does not exist: build it first (see weir_envoy_tests::build_wasm)",
                self.wasm.display()
            );
        }
        WasmFilterConfig {
            name: self.full_name(),
            root_id: self.root_id.clone(),
            configuration: self.configuration.clone(),
            wasm_file: self.wasm.clone(),
            key_values: self.key_values.clone(),
            host_env_keys: self.host_env_keys.clone(),
            failure_policy: self.failure_policy,
        }
        .filter(kind)
    }
}

/// One HTTP filter of the chain.
#[derive(Debug, Clone)]
pub(crate) enum HttpFilter {
    /// A plugin, configured the way istiod configures a WasmPlugin.
    Wasm(WasmFilter),
    /// One of Envoy's own filters: the whole entry (`name` and `typed_config`).
    Native(Value),
}

/// Everything that goes into one bootstrap.
#[derive(Debug, Clone, Default)]
pub(crate) struct Topology {
    /// The HTTP filters before the router, in the order they were added.
    pub(crate) http_filters: Vec<HttpFilter>,
    pub(crate) network_filters: Vec<WasmFilter>,
    pub(crate) tcp_listener: bool,
    pub(crate) upstream: Option<SocketAddr>,
    /// The upstream cluster speaks HTTP/2 (prior knowledge) instead of HTTP/1.1.
    pub(crate) upstream_http2: bool,
    /// Further clusters by name, e.g. for a plugin's `proxy_http_call`s.
    pub(crate) clusters: Vec<(String, SocketAddr)>,
    /// Clusters by name that have no endpoint.
    pub(crate) empty_clusters: Vec<String>,
    /// The route's timeout (`None`: 10 s).
    pub(crate) route_timeout: Option<std::time::Duration>,
    /// The route's idle timeout (`None`: none).
    pub(crate) route_idle_timeout: Option<std::time::Duration>,
    /// Clusters that speak HTTP/2 upstream, for a plugin's gRPC calls.
    pub(crate) grpc_clusters: Vec<(String, SocketAddr)>,
    /// Static generic secrets by name, e.g. the oauth2 filter's client and HMAC secrets.
    pub(crate) secrets: Vec<(String, String)>,
}

impl Topology {
    /// The bootstrap as a JSON value. Listeners and admin bind port 0: the kernel picks
    /// free ports and the harness reads them back from the admin API, so parallel tests
    /// cannot race for a port between "found free" and "bound".
    pub(crate) fn bootstrap(&self) -> Result<Value> {
        let seconds = |t: std::time::Duration| format!("{}s", t.as_secs_f64());
        let route = match self.upstream {
            Some(_) => {
                let mut action = json!({
                    "cluster": UPSTREAM_CLUSTER,
                    "timeout": seconds(self.route_timeout.unwrap_or(std::time::Duration::from_secs(10))),
                });
                if let Some(idle) = self.route_idle_timeout {
                    action["idle_timeout"] = json!(seconds(idle));
                }
                json!({"match": {"prefix": "/"}, "route": action})
            }
            None => json!({
                "match": {"prefix": "/"},
                "direct_response": {"status": 200, "body": {"inline_string": "no upstream configured\n"}},
            }),
        };
        let mut http_filters = self
            .http_filters
            .iter()
            .map(|filter| match filter {
                HttpFilter::Wasm(wasm) => wasm.to_filter(FilterKind::Http),
                HttpFilter::Native(native) => Ok(native.clone()),
            })
            .collect::<Result<Vec<Value>>>()?;
        http_filters.push(json!({
            "name": "envoy.filters.http.router",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
        }));
        let hcm = json!({
            "name": "envoy.filters.network.http_connection_manager",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                "stat_prefix": HTTP_LISTENER,
                "codec_type": "AUTO",
                "route_config": {"name": "local", "virtual_hosts": [{
                    "name": "all", "domains": ["*"], "routes": [route],
                }]},
                "http_filters": http_filters,
            },
        });
        let mut listeners = vec![listener(HTTP_LISTENER, vec![hcm])];
        if self.tcp_listener || !self.network_filters.is_empty() {
            if self.upstream.is_none() {
                bail!("a TCP proxy listener needs an upstream: call EnvoyBuilder::upstream");
            }
            let mut filters = wasm_filters(&self.network_filters, FilterKind::Network)?;
            filters.push(json!({
                "name": "envoy.filters.network.tcp_proxy",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
                    "stat_prefix": TCP_LISTENER,
                    "cluster": UPSTREAM_CLUSTER,
                },
            }));
            listeners.push(listener(TCP_LISTENER, filters));
        }
        let clusters: Vec<Value> = self
            .upstream
            .iter()
            .map(|addr| match self.upstream_http2 {
                true => http2_cluster(UPSTREAM_CLUSTER, *addr),
                false => static_cluster(UPSTREAM_CLUSTER, *addr),
            })
            .chain(
                self.clusters
                    .iter()
                    .map(|(name, addr)| static_cluster(name, *addr)),
            )
            .chain(self.empty_clusters.iter().map(|name| {
                json!({
                    "name": name,
                    "type": "STATIC",
                    "connect_timeout": "2s",
                    "load_assignment": {"cluster_name": name, "endpoints": []},
                })
            }))
            .chain(
                self.grpc_clusters
                    .iter()
                    .map(|(name, addr)| http2_cluster(name, *addr)),
            )
            .collect();
        let mut resources = json!({"listeners": listeners, "clusters": clusters});
        if !self.secrets.is_empty() {
            resources["secrets"] = self
                .secrets
                .iter()
                .map(|(name, value)| json!({"name": name, "generic_secret": {"secret": {"inline_string": value}}}))
                .collect();
        }
        Ok(json!({
            "node": {"id": "weir-envoy-tests", "cluster": "weir-envoy-tests"},
            "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
            "static_resources": resources,
        }))
    }
}

fn wasm_filters(filters: &[WasmFilter], kind: FilterKind) -> Result<Vec<Value>> {
    filters.iter().map(|f| f.to_filter(kind)).collect()
}

fn static_cluster(name: &str, addr: SocketAddr) -> Value {
    json!({
        "name": name,
        "type": "STATIC",
        "connect_timeout": "2s",
        "load_assignment": {"cluster_name": name, "endpoints": [{
            "lb_endpoints": [{"endpoint": {"address": socket_address(addr)}}],
        }]},
    })
}

/// A static cluster whose upstream connections are HTTP/2, as gRPC (and trailers) need.
fn http2_cluster(name: &str, addr: SocketAddr) -> Value {
    let mut cluster = static_cluster(name, addr);
    cluster["typed_extension_protocol_options"] = json!({
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "explicit_http_config": {"http2_protocol_options": {}},
        },
    });
    cluster
}

fn socket_address(addr: SocketAddr) -> Value {
    json!({"socket_address": {"address": addr.ip().to_string(), "port_value": addr.port()}})
}

fn listener(name: &str, filters: Vec<Value>) -> Value {
    json!({
        "name": name,
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
        "filter_chains": [{"filters": filters}],
    })
}
