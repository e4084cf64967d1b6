//! What istiod writes into Envoy for one `WasmPlugin`: the one definition shared by
//! `weir run` and the Envoy test harness (`weir-envoy-tests`).
//!
//! `config.name` is `<namespace>.<name>`, `root_id` is `pluginName`, the plugin
//! configuration is a `google.protobuf.StringValue` holding the JSON of `pluginConfig`,
//! the VM runs on `envoy.wasm.runtime.v8` without a `vm_id`, and `vmConfig.env` becomes
//! `environment_variables` (INLINE → `key_values`, HOST → `host_env_keys`). When the
//! module cannot be fetched, istiod swaps the filter for an RBAC filter: allow-all for
//! `FAIL_OPEN`, deny-all otherwise.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use serde_json::{json, Value};

/// `@type` of Envoy's HTTP Wasm filter.
pub const HTTP_WASM_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm";
/// `@type` of Envoy's network Wasm filter.
pub const NETWORK_WASM_TYPE: &str =
    "type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm";
/// `@type` of Envoy's HTTP RBAC filter (the fetch-failure stand-in for HTTP plugins).
pub const HTTP_RBAC_TYPE: &str = "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC";
/// `@type` of Envoy's network RBAC filter (the stand-in for NETWORK plugins).
pub const NETWORK_RBAC_TYPE: &str =
    "type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC";

/// HTTP filter or network (L4) filter: `WasmPlugin.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FilterKind {
    /// `type: HTTP` or unset: an HTTP filter in the connection manager.
    Http,
    /// `type: NETWORK`: a network filter before the TCP proxy.
    Network,
}

impl FilterKind {
    /// The Wasm filter's `@type`.
    pub fn wasm_type(self) -> &'static str {
        match self {
            Self::Http => HTTP_WASM_TYPE,
            Self::Network => NETWORK_WASM_TYPE,
        }
    }

    /// The RBAC filter's `@type`.
    pub fn rbac_type(self) -> &'static str {
        match self {
            Self::Http => HTTP_RBAC_TYPE,
            Self::Network => NETWORK_RBAC_TYPE,
        }
    }
}

/// What Envoy does when the plugin's VM fails at run time (`failure_policy`).
///
/// Istio maps `WasmPlugin.failStrategy` onto these: `FAIL_CLOSE` → [`FailClosed`],
/// `FAIL_OPEN` → [`FailOpen`], `FAIL_RELOAD` → [`FailReload`].
///
/// [`FailClosed`]: FailurePolicy::FailClosed
/// [`FailOpen`]: FailurePolicy::FailOpen
/// [`FailReload`]: FailurePolicy::FailReload
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Requests fail (503) once the VM has failed.
    FailClosed,
    /// Requests bypass the plugin once the VM has failed.
    FailOpen,
    /// The VM is re-created on the next request.
    FailReload,
}

impl FailurePolicy {
    /// Envoy's enum name.
    pub fn as_envoy(self) -> &'static str {
        match self {
            Self::FailClosed => "FAIL_CLOSED",
            Self::FailOpen => "FAIL_OPEN",
            Self::FailReload => "FAIL_RELOAD",
        }
    }

    /// The policy for a `failStrategy` value (`None` for unset or unknown).
    pub fn from_fail_strategy(strategy: &str) -> Option<Self> {
        match strategy {
            "FAIL_CLOSE" => Some(Self::FailClosed),
            "FAIL_OPEN" => Some(Self::FailOpen),
            "FAIL_RELOAD" => Some(Self::FailReload),
            _ => None,
        }
    }
}

/// One Wasm filter as istiod configures it; [`Self::typed_config`] is the Envoy config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WasmFilterConfig {
    /// `<namespace>.<name>` of the WasmPlugin.
    pub name: String,
    /// `pluginName` (empty when unset).
    pub root_id: String,
    /// JSON of `pluginConfig`, empty when unset.
    pub configuration: String,
    /// The module on local disk (istio-agent rewrites remote URLs to its cached file).
    pub wasm_file: PathBuf,
    /// `vmConfig.env` entries with `valueFrom: INLINE`.
    pub key_values: Vec<(String, String)>,
    /// `vmConfig.env` entries with `valueFrom: HOST`.
    pub host_env_keys: Vec<String>,
    /// From `failStrategy`; `None` leaves Envoy's default (fail closed).
    pub failure_policy: Option<FailurePolicy>,
}

impl WasmFilterConfig {
    /// The filter's `typed_config` (`envoy.extensions.filters.{http,network}.wasm.v3.Wasm`).
    pub fn typed_config(&self, kind: FilterKind) -> Result<Value> {
        let mut vm_config = json!({
            "runtime": "envoy.wasm.runtime.v8",
            "code": {"local": {"filename": path_text(&self.wasm_file)?}},
        });
        if !self.key_values.is_empty() || !self.host_env_keys.is_empty() {
            let key_values: serde_json::Map<String, Value> = self
                .key_values
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect();
            vm_config["environment_variables"] =
                json!({"key_values": key_values, "host_env_keys": self.host_env_keys});
        }
        let mut config = json!({
            "name": self.name,
            "root_id": self.root_id,
            "vm_config": vm_config,
            "configuration": {
                "@type": "type.googleapis.com/google.protobuf.StringValue",
                "value": self.configuration,
            },
        });
        if let Some(policy) = self.failure_policy {
            config["failure_policy"] = Value::from(policy.as_envoy());
        }
        Ok(json!({"@type": kind.wasm_type(), "config": config}))
    }

    /// The whole filter entry, `{name, typed_config}`, for a static filter chain.
    pub fn filter(&self, kind: FilterKind) -> Result<Value> {
        Ok(json!({"name": self.name, "typed_config": self.typed_config(kind)?}))
    }
}

/// The RBAC filter istiod puts in place of a plugin whose module could not be fetched:
/// allow-all (no rules) for `FAIL_OPEN`, deny-all (an ALLOW policy with no policies) otherwise.
pub fn fetch_failure_rbac(kind: FilterKind, name: &str, fail_open: bool) -> Value {
    let stat_prefix = format!("{name}.");
    let mut config = match kind {
        FilterKind::Http => json!({"@type": kind.rbac_type()}),
        FilterKind::Network => json!({"@type": kind.rbac_type(), "stat_prefix": stat_prefix}),
    };
    if !fail_open {
        config["rules"] = json!({"action": "ALLOW", "policies": {}});
    }
    config
}

/// `path` as Envoy config text.
pub fn path_text(path: &Path) -> Result<String> {
    match path.to_str() {
        Some(text) => Ok(text.to_owned()),
        None => bail!(
            "path {} is not UTF-8, which Envoy's config cannot carry",
            path.display()
        ),
    }
}
