//! Reading `-f` inputs: WasmPlugin documents (validated exactly as `weir manifest validate`
//! does, before anything starts) and the `kubernetes.io/dockerconfigjson` Secrets their
//! `imagePullSecret`s name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;
use serde_yaml_ng::Value;
use sha2::{Digest, Sha256};

use super::filter::{FailurePolicy, FilterKind};
use crate::manifest::validate::{parse_documents, validate_wasmplugin, ValidationFailed};
use crate::oci::auth::{parse_pull_secret, DockerConfig};
use crate::UserError;

/// `vmConfig.env[]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvEntry {
    /// Variable name.
    pub name: String,
    /// `INLINE` (default) or `HOST`.
    #[serde(default)]
    pub value_from: Option<String>,
    /// Value for INLINE entries.
    #[serde(default)]
    pub value: Option<String>,
}

/// `match[]`.
#[derive(Debug, Clone, Deserialize)]
pub struct TrafficSelector {
    /// `CLIENT`, `SERVER` or `CLIENT_AND_SERVER`.
    #[serde(default)]
    pub mode: Option<String>,
    /// Listener ports.
    #[serde(default)]
    pub ports: Vec<PortSelector>,
}

/// `match[].ports[]`.
#[derive(Debug, Clone, Deserialize)]
pub struct PortSelector {
    /// Port number.
    pub number: u32,
}

/// The parts of `spec` that `weir run` acts on (validation has already checked the rest).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Spec {
    /// `selector.matchLabels`.
    #[serde(default)]
    pub selector: Option<Selector>,
    /// `targetRef` (single form).
    #[serde(default)]
    pub target_ref: Option<serde_json::Value>,
    /// `targetRefs`.
    #[serde(default)]
    pub target_refs: Vec<serde_json::Value>,
    /// Module URL.
    #[serde(default)]
    pub url: String,
    /// Expected checksum.
    #[serde(default)]
    pub sha256: Option<String>,
    /// `IfNotPresent` or `Always`.
    #[serde(default)]
    pub image_pull_policy: Option<String>,
    /// Name of a dockerconfigjson Secret in the plugin's namespace.
    #[serde(default)]
    pub image_pull_secret: Option<String>,
    /// Handed to the plugin as JSON.
    #[serde(default)]
    pub plugin_config: Option<serde_json::Value>,
    /// Envoy root id.
    #[serde(default)]
    pub plugin_name: Option<String>,
    /// AUTHN, AUTHZ, STATS.
    #[serde(default)]
    pub phase: Option<String>,
    /// Order within the phase, descending; unset sorts last.
    #[serde(default)]
    pub priority: Option<i32>,
    /// FAIL_CLOSE, FAIL_OPEN, FAIL_RELOAD.
    #[serde(default)]
    pub fail_strategy: Option<String>,
    /// `vmConfig`.
    #[serde(default)]
    pub vm_config: Option<VmConfig>,
    /// `match`.
    #[serde(default, rename = "match")]
    pub traffic: Vec<TrafficSelector>,
    /// HTTP or NETWORK.
    #[serde(default, rename = "type")]
    pub plugin_type: Option<String>,
}

/// `selector`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Selector {
    /// Labels the workload must carry.
    #[serde(default)]
    pub match_labels: BTreeMap<String, String>,
}

/// `vmConfig`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct VmConfig {
    /// Environment variables.
    #[serde(default)]
    pub env: Vec<EnvEntry>,
}

/// One WasmPlugin read from an input file.
#[derive(Debug, Clone)]
pub struct Plugin {
    /// `metadata.namespace` (`default` when unset, as kubectl would apply it).
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
    /// The file it came from.
    pub source: PathBuf,
    /// The spec.
    pub spec: Spec,
    /// Hash of the whole document: changes whenever the resource changes, like a
    /// Kubernetes resourceVersion (what `imagePullPolicy: Always` re-pulls on).
    pub resource_version: String,
}

impl Plugin {
    /// `<namespace>.<name>`, the filter's name in Envoy.
    pub fn full_name(&self) -> String {
        format!("{}.{}", self.namespace, self.name)
    }

    /// HTTP or network filter.
    pub fn kind(&self) -> FilterKind {
        match self.spec.plugin_type.as_deref() {
            Some("NETWORK") => FilterKind::Network,
            _ => FilterKind::Http,
        }
    }

    /// `failStrategy` as Envoy's runtime failure policy.
    pub fn failure_policy(&self) -> Option<FailurePolicy> {
        self.spec
            .fail_strategy
            .as_deref()
            .and_then(FailurePolicy::from_fail_strategy)
    }

    /// Whether a fetch failure lets traffic through (only `FAIL_OPEN`).
    pub fn fails_open(&self) -> bool {
        self.spec.fail_strategy.as_deref() == Some("FAIL_OPEN")
    }

    /// The JSON Istio hands the plugin: `pluginConfig` serialized, empty when unset.
    pub fn configuration(&self) -> String {
        match &self.spec.plugin_config {
            Some(config) => config.to_string(),
            None => String::new(),
        }
    }

    /// The module URL with Istio's default scheme applied.
    pub fn url(&self) -> String {
        crate::manifest::wasmplugin::normalize_url(&self.spec.url)
    }
}

/// Everything read from the `-f` inputs.
#[derive(Debug, Default)]
pub struct Inputs {
    /// WasmPlugins, in load order (namespace, then name: there is no creation time).
    pub plugins: Vec<Plugin>,
    /// Pull secrets by (namespace, name).
    pub secrets: BTreeMap<(String, String), DockerConfig>,
    /// Documents of other kinds that were skipped (`file: Kind/name`).
    pub skipped: Vec<String>,
    /// Every file read, for the watcher.
    pub files: Vec<PathBuf>,
}

/// The YAML files `paths` name: files as given, directories' `*.yaml`/`*.yml` sorted.
pub fn input_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("reading directory {}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.is_file()
                        && matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
                })
                .collect();
            found.sort();
            files.extend(found);
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            return Err(UserError(format!("{} does not exist", path.display())).into());
        }
    }
    Ok(files)
}

/// Reads and validates every document. Invalid WasmPlugins fail the whole read; the
/// error lists them in `weir manifest validate`'s words (`<file>: WasmPlugin/<name> is invalid: …`).
pub fn read_inputs(paths: &[PathBuf]) -> Result<Inputs> {
    let mut inputs = Inputs {
        files: input_files(paths)?,
        ..Inputs::default()
    };
    let mut failures: Vec<String> = Vec::new();
    let mut count = 0;
    for file in inputs.files.clone() {
        let text = std::fs::read_to_string(&file)
            .with_context(|| format!("reading {}", file.display()))?;
        let docs = parse_documents(&text)
            .map_err(|e| UserError(format!("{}: not YAML: {e}", file.display())))?;
        for doc in docs {
            match doc["kind"].as_str() {
                Some("Secret") => read_secret(&file, &doc, &mut inputs)?,
                Some("WasmPlugin") | None => {
                    count += 1;
                    match validate_wasmplugin(&doc) {
                        Ok(()) => inputs.plugins.push(plugin(&file, &doc)?),
                        Err(e) => failures.push(format!("{}: {e}", file.display())),
                    }
                }
                Some(kind) => inputs.skipped.push(format!(
                    "{}: {kind}/{}",
                    file.display(),
                    doc["metadata"]["name"].as_str().unwrap_or("<unnamed>")
                )),
            }
        }
    }
    if !failures.is_empty() {
        return Err(ValidationFailed {
            resource: format!("{} of {count} WasmPlugin document(s)", failures.len()),
            errors: failures,
        }
        .into());
    }
    inputs
        .plugins
        .sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    for pair in inputs.plugins.windows(2) {
        if pair[0].full_name() == pair[1].full_name() {
            return Err(UserError(format!(
                "WasmPlugin {} is defined twice ({} and {})",
                pair[0].full_name(),
                pair[0].source.display(),
                pair[1].source.display()
            ))
            .into());
        }
    }
    Ok(inputs)
}

fn plugin(file: &Path, doc: &Value) -> Result<Plugin> {
    let spec: Spec = serde_yaml_ng::from_value(doc["spec"].clone())
        .map_err(|e| UserError(format!("{}: spec: {e}", file.display())))?;
    let text = serde_yaml_ng::to_string(doc).unwrap_or_default();
    Ok(Plugin {
        namespace: doc["metadata"]["namespace"]
            .as_str()
            .unwrap_or("default")
            .to_string(),
        name: doc["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        source: file.to_path_buf(),
        spec,
        resource_version: hex::encode(&Sha256::digest(text.as_bytes())[..8]),
    })
}

fn read_secret(file: &Path, doc: &Value, inputs: &mut Inputs) -> Result<()> {
    let name = doc["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let namespace = doc["metadata"]["namespace"]
        .as_str()
        .unwrap_or("default")
        .to_string();
    let text = serde_yaml_ng::to_string(doc).unwrap_or_default();
    let config = parse_pull_secret(&text)
        .with_context(|| format!("{}: Secret {namespace}/{name}", file.display()))?;
    inputs.secrets.insert((namespace, name), config);
    Ok(())
}
