//! The Envoy configuration `weir run` writes: a static bootstrap (admin, upstream cluster)
//! whose listener comes from a watched LDS file and whose plugins come from one watched
//! extension-config (ECDS) file each, so an edit swaps a filter without restarting Envoy
//! or dropping connections, as istiod's ECDS pushes do.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use serde_json::{json, Value};

use super::filter::{path_text, FilterKind};
use super::plugin::Plugin;
use super::select::{Placement, Slot};
use super::workload::Workload;

const UPSTREAM_CLUSTER: &str = "upstream";
/// Name of the listener in the LDS file and in `/config_dump`.
pub const LISTENER_NAME: &str = "weir-run";

/// Where the configuration files live (the run's state directory).
#[derive(Debug, Clone)]
pub struct ConfigFiles {
    /// The directory.
    pub dir: PathBuf,
}

impl ConfigFiles {
    /// `envoy.json`, given to `envoy -c`.
    pub fn bootstrap(&self) -> PathBuf {
        self.dir.join("envoy.json")
    }
    /// The watched listener file.
    pub fn lds(&self) -> PathBuf {
        self.dir.join("lds.json")
    }
    /// The watched extension config file of one plugin.
    pub fn ecds(&self, full_name: &str) -> PathBuf {
        self.dir.join("ecds").join(format!("{full_name}.json"))
    }
    /// Envoy's log.
    pub fn log(&self) -> PathBuf {
        self.dir.join("envoy.log")
    }
    /// Where Envoy writes its admin address.
    pub fn admin_address(&self) -> PathBuf {
        self.dir.join("admin-address")
    }
}

/// The upstream requests are routed to: `host:port` of an `http://` URL.
pub fn parse_upstream(url: &str) -> Result<(String, u16)> {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    if rest.contains("://") {
        bail!("--upstream {url}: only http:// upstreams are supported");
    }
    let authority = rest.split('/').next().unwrap_or_default();
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (
            host,
            port.parse::<u16>()
                .map_err(|_| anyhow::anyhow!("--upstream {url}: bad port"))?,
        ),
        None => (authority, 80),
    };
    if host.is_empty() {
        bail!("--upstream {url}: no host");
    }
    Ok((host.trim_matches(['[', ']']).to_string(), port))
}

/// The bootstrap: admin on 127.0.0.1 (kernel-chosen port), the upstream cluster, LDS from
/// the watched file.
pub fn bootstrap(files: &ConfigFiles, upstream: Option<&(String, u16)>) -> Result<Value> {
    let clusters: Vec<Value> = upstream
        .iter()
        .map(|(host, port)| {
            let kind = if host.parse::<std::net::IpAddr>().is_ok() { "STATIC" } else { "STRICT_DNS" };
            json!({
                "name": UPSTREAM_CLUSTER,
                "type": kind,
                "connect_timeout": "5s",
                "load_assignment": {"cluster_name": UPSTREAM_CLUSTER, "endpoints": [{"lb_endpoints": [{"endpoint": {
                    "address": {"socket_address": {"address": host, "port_value": port}},
                }}]}]},
            })
        })
        .collect();
    Ok(json!({
        "node": {"id": "weir-run", "cluster": "weir-run"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {"clusters": clusters},
        "dynamic_resources": {"lds_config": {
            "path_config_source": {"path": path_text(&files.lds())?},
            "resource_api_version": "V3",
        }},
    }))
}

fn discovered(files: &ConfigFiles, plugin: &Plugin) -> Result<Value> {
    let kind = plugin.kind();
    Ok(json!({
        "name": plugin.full_name(),
        "config_discovery": {
            "config_source": {
                "path_config_source": {"path": path_text(&files.ecds(&plugin.full_name()))?},
                "resource_api_version": "V3",
            },
            "type_urls": [kind.wasm_type(), kind.rbac_type()],
        },
    }))
}

/// The listener: network plugins, then the HTTP connection manager with the HTTP chain
/// (plugins by ECDS, `jwt_authn`, `rbac`) and the router.
pub fn listener(
    files: &ConfigFiles,
    listen: SocketAddr,
    plugins: &[Plugin],
    placement: &Placement,
    workload: &Workload,
    has_upstream: bool,
) -> Result<Value> {
    let mut http_filters = Vec::new();
    for slot in &placement.http {
        http_filters.push(match slot {
            Slot::Plugin(i) => discovered(files, &plugins[*i])?,
            Slot::JwtAuthn => workload.jwt_authn_filter().unwrap_or_default(),
            Slot::Rbac => workload.rbac_filter().unwrap_or_default(),
        });
    }
    http_filters.push(json!({
        "name": "envoy.filters.http.router",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
    }));
    let route = if has_upstream {
        json!({"match": {"prefix": "/"}, "route": {"cluster": UPSTREAM_CLUSTER, "timeout": "30s"}})
    } else {
        json!({"match": {"prefix": "/"}, "direct_response": {"status": 200, "body": {"inline_string": "weir run: no --upstream given\n"}}})
    };
    let mut filters = Vec::new();
    for slot in &placement.network {
        if let Slot::Plugin(i) = slot {
            filters.push(discovered(files, &plugins[*i])?);
        }
    }
    filters.push(json!({
        "name": "envoy.filters.network.http_connection_manager",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": LISTENER_NAME,
            "codec_type": "AUTO",
            "route_config": {"name": "local", "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [route]}]},
            "http_filters": http_filters,
        },
    }));
    Ok(json!({
        "@type": "type.googleapis.com/envoy.config.listener.v3.Listener",
        "name": LISTENER_NAME,
        "address": {"socket_address": {"address": listen.ip().to_string(), "port_value": listen.port()}},
        "filter_chains": [{"filters": filters}],
    }))
}

/// A discovery response holding `resources`, as the watched files carry them; the version
/// is a hash of the resources, so rewriting unchanged content is recognisably a no-op.
pub fn discovery_response(resources: Vec<Value>) -> Value {
    use sha2::{Digest, Sha256};
    let resources = Value::Array(resources);
    let version = hex::encode(&Sha256::digest(crate::oci::canonical_json(&resources))[..8]);
    json!({"version_info": version, "resources": resources})
}

/// One plugin's extension config (a `TypedExtensionConfig`).
pub fn extension_config(full_name: &str, typed_config: Value) -> Value {
    json!({
        "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
        "name": full_name,
        "typed_config": typed_config,
    })
}

/// Writes `value` to `path` atomically (Envoy watches for the rename), if it changed.
pub fn write_if_changed(path: &Path, value: &Value) -> Result<bool> {
    let text = serde_json::to_vec_pretty(value)?;
    if std::fs::read(path).ok().as_deref() == Some(&text[..]) {
        return Ok(false);
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    crate::fsutil::write_atomic(path, &text)?;
    Ok(true)
}

/// Kind-appropriate stand-in name for the chain listing.
pub fn kind_label(kind: FilterKind) -> &'static str {
    match kind {
        FilterKind::Http => "http",
        FilterKind::Network => "network",
    }
}
