//! `weir run`: WasmPlugin resources in a real Envoy, wired the way istiod and istio-agent
//! wire them.
//!
//! - [`plugin`] reads the `-f` inputs and validates each WasmPlugin as `weir manifest
//!   validate` does; [`workload`] is what istiod knows about the proxy.
//! - [`select`] decides which plugins apply and orders them (phase around `jwt_authn` and
//!   `rbac`, priority descending, unset last); [`filter`] is the one definition of the
//!   Wasm filter istiod writes (shared with the Envoy test harness).
//! - [`fetch`] and [`cache`] get modules as istio-agent does; a failed fetch becomes an
//!   allow-all (FAIL_OPEN) or deny-all RBAC filter.
//! - [`bootstrap`] writes Envoy's files: each plugin is an extension config (ECDS) in a
//!   watched file, the listener a watched LDS file; [`Session::refresh`] rewrites them when
//!   inputs or `file://` modules change, and [`process`] runs Envoy.

pub mod bootstrap;
pub mod cache;
pub mod fetch;
pub mod filter;
pub mod plugin;
pub mod process;
pub mod select;
pub mod workload;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::SystemTime;

use anyhow::Result;
use serde_json::Value;
use weir_runtime::StartError;

use bootstrap::{ConfigFiles, LISTENER_NAME};
use fetch::{effective_pull_policy, FetchOptions};
use filter::{fetch_failure_rbac, WasmFilterConfig};
use plugin::{read_inputs, Inputs, Plugin};
use select::{place, Placement, Slot};
use workload::Workload;

/// What `weir run` was asked to do.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// `-f` files and directories.
    pub inputs: Vec<PathBuf>,
    /// `--workload` file; defaults apply without it.
    pub workload: Option<PathBuf>,
    /// `--upstream` as (host, port).
    pub upstream: Option<(String, u16)>,
    /// The listener address (a concrete port: LDS updates must keep it).
    pub listen: SocketAddr,
    /// Module fetching.
    pub fetch: FetchOptions,
}

/// How one plugin ended up in Envoy.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginState {
    /// The resource version it was resolved for.
    pub resource_version: String,
    /// For `file://` modules: (mtime, length) of the file when read.
    pub module_stamp: Option<(SystemTime, u64)>,
    /// The ECDS `typed_config`: the Wasm filter, or the RBAC stand-in.
    pub typed_config: Value,
    /// One line for the chain listing: the module and checksum, or why it failed.
    pub summary: String,
    /// The fetch failure, if any.
    pub failure: Option<String>,
    /// Why the module refuses its `pluginConfig` or VM env, found by starting it in
    /// weir-runtime before Envoy does: Envoy would only log it.
    pub rejection: Option<String>,
}

/// A resolved configuration: what the chain is and what each filter holds.
#[derive(Debug)]
pub struct Resolved {
    /// Inputs read.
    pub inputs: Inputs,
    /// The workload.
    pub workload: Workload,
    /// Chain order.
    pub placement: Placement,
    /// By `namespace.name`.
    pub states: BTreeMap<String, PluginState>,
}

/// One `weir run`: resolves inputs into Envoy files and keeps them current.
#[derive(Debug)]
pub struct Session {
    /// Options.
    pub options: RunOptions,
    /// Envoy's files.
    pub files: ConfigFiles,
    current: Option<Resolved>,
}

fn file_stamp(path: &std::path::Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

impl Session {
    /// A session writing into `state_dir`.
    pub fn new(options: RunOptions, state_dir: PathBuf) -> Self {
        Session {
            options,
            files: ConfigFiles { dir: state_dir },
            current: None,
        }
    }

    /// The configuration last written.
    pub fn current(&self) -> Option<&Resolved> {
        self.current.as_ref()
    }

    /// Everything whose change means a refresh: input files (and directory listings),
    /// the workload file, and `file://` modules.
    pub fn watch_stamp(&self) -> Vec<(PathBuf, Option<(SystemTime, u64)>)> {
        let mut paths: Vec<PathBuf> = plugin::input_files(&self.options.inputs).unwrap_or_default();
        paths.extend(self.options.workload.iter().cloned());
        if let Some(current) = &self.current {
            for p in &current.inputs.plugins {
                if let Some(path) = p.url().strip_prefix("file://") {
                    paths.push(PathBuf::from(path));
                }
            }
        }
        paths
            .into_iter()
            .map(|p| {
                let stamp = file_stamp(&p);
                (p, stamp)
            })
            .collect()
    }

    /// Reads the inputs (validation first: an invalid input is an error and nothing is
    /// written), fetches what changed, and writes Envoy's files. Returns the names of the
    /// plugins whose filters were (re)written.
    pub async fn refresh(&mut self) -> Result<Vec<String>> {
        let inputs = read_inputs(&self.options.inputs)?;
        let workload = match &self.options.workload {
            Some(path) => Workload::read(path)?,
            None => Workload::default(),
        };
        let placement = place(&inputs.plugins, &workload);
        let mut states = BTreeMap::new();
        let mut changed = Vec::new();
        for slot in placement.http.iter().chain(&placement.network) {
            let Slot::Plugin(i) = slot else { continue };
            let plugin = &inputs.plugins[*i];
            let name = plugin.full_name();
            let stamp = plugin
                .url()
                .strip_prefix("file://")
                .and_then(|p| file_stamp(std::path::Path::new(p)));
            let previous = self.current.as_ref().and_then(|c| c.states.get(&name));
            let state = match previous {
                Some(prev)
                    if prev.resource_version == plugin.resource_version
                        && prev.module_stamp == stamp =>
                {
                    prev.clone()
                }
                _ => {
                    let pull = effective_pull_policy(plugin) == "Always";
                    resolve_plugin(plugin, &inputs, &self.options.fetch, pull, stamp).await
                }
            };
            let ecds = bootstrap::discovery_response(vec![bootstrap::extension_config(
                &name,
                state.typed_config.clone(),
            )]);
            if bootstrap::write_if_changed(&self.files.ecds(&name), &ecds)? {
                changed.push(name.clone());
            }
            states.insert(name, state);
        }
        let listener = bootstrap::listener(
            &self.files,
            self.options.listen,
            &inputs.plugins,
            &placement,
            &workload,
            self.options.upstream.is_some(),
        )?;
        bootstrap::write_if_changed(
            &self.files.lds(),
            &bootstrap::discovery_response(vec![listener]),
        )?;
        bootstrap::write_if_changed(
            &self.files.bootstrap(),
            &bootstrap::bootstrap(&self.files, self.options.upstream.as_ref())?,
        )?;
        self.current = Some(Resolved {
            inputs,
            workload,
            placement,
            states,
        });
        Ok(changed)
    }

    /// The filter chain, one line per filter, in order.
    pub fn chain_lines(&self) -> Vec<String> {
        let Some(current) = &self.current else {
            return Vec::new();
        };
        let mut lines = Vec::new();
        let describe = |slot: &Slot| match slot {
            Slot::Plugin(i) => {
                let p = &current.inputs.plugins[*i];
                let phase = p.spec.phase.as_deref().unwrap_or("-");
                let priority = p
                    .spec
                    .priority
                    .map_or("unset".to_string(), |n| n.to_string());
                let summary = current
                    .states
                    .get(&p.full_name())
                    .map_or("", |s| s.summary.as_str());
                format!("{} [{phase}, priority {priority}] {summary}", p.full_name())
            }
            Slot::JwtAuthn => "envoy.filters.http.jwt_authn (workload jwt rule)".to_string(),
            Slot::Rbac => "envoy.filters.http.rbac (workload authorization rule)".to_string(),
        };
        for slot in &current.placement.network {
            lines.push(format!("network  {}", describe(slot)));
        }
        lines.push("network  envoy.filters.network.http_connection_manager".to_string());
        for slot in &current.placement.http {
            lines.push(format!("http     {}", describe(slot)));
        }
        let target = match &self.options.upstream {
            Some((host, port)) => format!("→ http://{host}:{port}"),
            None => "→ direct 200 (no --upstream)".to_string(),
        };
        lines.push(format!("http     envoy.filters.http.router {target}"));
        lines
    }

    /// The listener's name in `/config_dump`.
    pub fn listener_name(&self) -> &'static str {
        LISTENER_NAME
    }
}

/// Fetches one plugin's module and builds its filter, or the RBAC stand-in on failure.
async fn resolve_plugin(
    plugin: &Plugin,
    inputs: &Inputs,
    options: &FetchOptions,
    pull: bool,
    module_stamp: Option<(SystemTime, u64)>,
) -> PluginState {
    let kind = plugin.kind();
    match fetch::fetch(plugin, &inputs.secrets, options, pull).await {
        Ok(fetched) => {
            let mut key_values = Vec::new();
            let mut host_env_keys = Vec::new();
            for env in plugin.spec.vm_config.iter().flat_map(|v| &v.env) {
                if env.value_from.as_deref() == Some("HOST") {
                    host_env_keys.push(env.name.clone());
                } else {
                    key_values.push((env.name.clone(), env.value.clone().unwrap_or_default()));
                }
            }
            let config = WasmFilterConfig {
                name: plugin.full_name(),
                root_id: plugin.spec.plugin_name.clone().unwrap_or_default(),
                configuration: plugin.configuration(),
                wasm_file: fetched.path.clone(),
                key_values,
                host_env_keys,
                failure_policy: plugin.failure_policy(),
            };
            let rejection = preflight(&config);
            match config.typed_config(kind) {
                Ok(typed_config) => PluginState {
                    resource_version: plugin.resource_version.clone(),
                    module_stamp,
                    typed_config,
                    summary: format!(
                        "{} {} ({})",
                        plugin.url(),
                        fetched.checksum,
                        if fetched.cache_hit {
                            "cached"
                        } else {
                            "fetched"
                        }
                    ),
                    failure: None,
                    rejection,
                },
                Err(e) => failed(plugin, module_stamp, format!("{e:#}")),
            }
        }
        Err(e) => failed(plugin, module_stamp, format!("{e:#}")),
    }
}

fn failed(plugin: &Plugin, module_stamp: Option<(SystemTime, u64)>, reason: String) -> PluginState {
    let open = plugin.fails_open();
    PluginState {
        resource_version: plugin.resource_version.clone(),
        module_stamp,
        typed_config: fetch_failure_rbac(plugin.kind(), &plugin.full_name(), open),
        summary: format!(
            "FETCH FAILED → {} ({})",
            if open {
                "allow-all RBAC (FAIL_OPEN)"
            } else {
                "deny-all RBAC, requests get 403"
            },
            reason
        ),
        failure: Some(reason),
        rejection: None,
    }
}

/// Starts the module in weir-runtime with the filter's root id, configuration and env, as
/// Envoy will: a module that rejects them is reported by name and reason here, while Envoy
/// only logs it (at a level `weir run` hides) and answers the filter's requests 500.
fn preflight(config: &WasmFilterConfig) -> Option<String> {
    let wasm = match std::fs::read(&config.wasm_file) {
        Ok(wasm) => wasm,
        Err(e) => return Some(format!("cannot read {}: {e}", config.wasm_file.display())),
    };
    let mut builder = weir_runtime::Plugin::from_bytes(wasm)
        .root_id(&config.root_id)
        .config(config.configuration.as_bytes().to_vec());
    for (key, value) in &config.key_values {
        builder = builder.env(key, value);
    }
    for key in &config.host_env_keys {
        if let Ok(value) = std::env::var(key) {
            builder = builder.env(key, &value);
        }
    }
    match builder.start() {
        Err(
            e @ (StartError::ConfigRejected { .. }
            | StartError::VmStartRejected { .. }
            | StartError::Trap(_)),
        ) => Some(e.to_string()),
        // Loading problems are Envoy's to report: its loader, not ours, decides what runs.
        Ok(_) | Err(_) => None,
    }
}
