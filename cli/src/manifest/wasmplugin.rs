//! Builds WasmPlugin (and Tetrate WasmExtension) documents from flags, in the key order
//! Istio's docs use, and checks them before anyone applies them.

use anyhow::{bail, Result};
use serde_yaml_ng::{Mapping, Value};

use super::validate::{validate_wasmplugin, ValidationFailed};
use super::ISTIO_API_VERSION;
use crate::UserError;

/// A `targetRefs` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetRef {
    /// API group; empty for the core group.
    pub group: String,
    /// Kind, e.g. `Gateway`.
    pub kind: String,
    /// Name.
    pub name: String,
}

impl std::str::FromStr for TargetRef {
    type Err = UserError;

    /// `[GROUP/]KIND/NAME`.
    fn from_str(s: &str) -> Result<Self, UserError> {
        let parts: Vec<&str> = s.split('/').collect();
        match parts.as_slice() {
            [kind, name] => Ok(TargetRef {
                group: String::new(),
                kind: kind.to_string(),
                name: name.to_string(),
            }),
            [group, kind, name] => Ok(TargetRef {
                group: group.to_string(),
                kind: kind.to_string(),
                name: name.to_string(),
            }),
            _ => Err(UserError(format!(
                "target ref `{s}` is not [GROUP/]KIND/NAME"
            ))),
        }
    }
}

/// A VM environment variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvVar {
    /// `valueFrom: INLINE` (written without valueFrom, its default).
    Inline {
        /// Name.
        name: String,
        /// Value.
        value: String,
    },
    /// `valueFrom: HOST`: the proxy's own variable.
    Host {
        /// Name.
        name: String,
    },
}

/// Everything a WasmPlugin can say, as given on the command line.
#[derive(Debug, Clone, Default)]
pub struct PluginSpec {
    /// metadata.name.
    pub name: String,
    /// metadata.namespace.
    pub namespace: Option<String>,
    /// Module URL; a bare reference gets `oci://`.
    pub url: String,
    /// Manifest digest, hex or `sha256:hex`.
    pub sha256: Option<String>,
    /// selector.matchLabels, in order.
    pub selector: Vec<(String, String)>,
    /// targetRefs.
    pub target_refs: Vec<TargetRef>,
    /// AUTHN, AUTHZ or STATS.
    pub phase: Option<String>,
    /// Priority within the phase.
    pub priority: Option<i32>,
    /// pluginConfig.
    pub plugin_config: Option<Value>,
    /// pluginName (Envoy root id).
    pub plugin_name: Option<String>,
    /// failStrategy.
    pub fail_strategy: Option<String>,
    /// imagePullPolicy.
    pub image_pull_policy: Option<String>,
    /// imagePullSecret.
    pub image_pull_secret: Option<String>,
    /// vmConfig.env.
    pub env: Vec<EnvVar>,
    /// `match[0].mode`.
    pub match_mode: Option<String>,
    /// `match[0].ports`.
    pub match_ports: Vec<u32>,
    /// type: HTTP or NETWORK.
    pub plugin_type: Option<String>,
}

/// `host/repo:tag` → `oci://host/repo:tag`. Anything with `://` is kept as written, so an
/// unsupported scheme is reported by validation rather than hidden behind `oci://`.
/// (Istio itself would read `host:5000/x` as scheme `host`, hence the explicit prefix.)
pub fn normalize_url(url: &str) -> String {
    if url.contains("://") {
        url.to_string()
    } else {
        format!("oci://{url}")
    }
}

fn s(text: &str) -> Value {
    Value::String(text.to_string())
}

fn upper(v: &Option<String>) -> Option<Value> {
    v.as_ref().map(|x| s(&x.to_ascii_uppercase()))
}

/// The WasmPlugin document for `spec`, validated against Istio's CRD.
pub fn wasm_plugin(spec: &PluginSpec) -> Result<Value> {
    let mut metadata = Mapping::new();
    metadata.insert(s("name"), s(&spec.name));
    if let Some(ns) = &spec.namespace {
        metadata.insert(s("namespace"), s(ns));
    }
    let mut body = Mapping::new();
    if !spec.selector.is_empty() {
        let labels: Mapping = spec.selector.iter().map(|(k, v)| (s(k), s(v))).collect();
        let mut selector = Mapping::new();
        selector.insert(s("matchLabels"), Value::Mapping(labels));
        body.insert(s("selector"), Value::Mapping(selector));
    }
    if !spec.target_refs.is_empty() {
        let refs = spec.target_refs.iter().map(|r| {
            let mut m = Mapping::new();
            if !r.group.is_empty() {
                m.insert(s("group"), s(&r.group));
            }
            m.insert(s("kind"), s(&r.kind));
            m.insert(s("name"), s(&r.name));
            Value::Mapping(m)
        });
        body.insert(s("targetRefs"), Value::Sequence(refs.collect()));
    }
    body.insert(s("url"), s(&normalize_url(&spec.url)));
    if let Some(d) = &spec.sha256 {
        body.insert(s("sha256"), s(d.strip_prefix("sha256:").unwrap_or(d)));
    }
    if let Some(p) = &spec.image_pull_policy {
        let canonical = match p.to_ascii_lowercase().as_str() {
            "ifnotpresent" => "IfNotPresent",
            "always" => "Always",
            _ => p.as_str(),
        };
        body.insert(s("imagePullPolicy"), s(canonical));
    }
    if let Some(v) = &spec.image_pull_secret {
        body.insert(s("imagePullSecret"), s(v));
    }
    if let Some(v) = upper(&spec.phase) {
        body.insert(s("phase"), v);
    }
    if let Some(p) = spec.priority {
        body.insert(s("priority"), Value::Number(p.into()));
    }
    if let Some(v) = &spec.plugin_name {
        body.insert(s("pluginName"), s(v));
    }
    if let Some(v) = upper(&spec.fail_strategy) {
        body.insert(s("failStrategy"), v);
    }
    if let Some(v) = upper(&spec.plugin_type) {
        body.insert(s("type"), v);
    }
    if !spec.match_ports.is_empty() || spec.match_mode.is_some() {
        let mut m = Mapping::new();
        if let Some(v) = upper(&spec.match_mode) {
            m.insert(s("mode"), v);
        }
        if !spec.match_ports.is_empty() {
            let ports = spec.match_ports.iter().map(|p| {
                let mut port = Mapping::new();
                port.insert(s("number"), Value::Number((*p).into()));
                Value::Mapping(port)
            });
            m.insert(s("ports"), Value::Sequence(ports.collect()));
        }
        body.insert(s("match"), Value::Sequence(vec![Value::Mapping(m)]));
    }
    if let Some(c) = &spec.plugin_config {
        if !c.is_mapping() {
            bail!(UserError(
                "pluginConfig must be an object (a JSON object or YAML mapping)".into()
            ));
        }
        body.insert(s("pluginConfig"), c.clone());
    }
    if !spec.env.is_empty() {
        let env = spec.env.iter().map(|e| {
            let mut m = Mapping::new();
            match e {
                EnvVar::Inline { name, value } => {
                    m.insert(s("name"), s(name));
                    m.insert(s("value"), s(value));
                }
                EnvVar::Host { name } => {
                    m.insert(s("name"), s(name));
                    m.insert(s("valueFrom"), s("HOST"));
                }
            }
            Value::Mapping(m)
        });
        let mut vm = Mapping::new();
        vm.insert(s("env"), Value::Sequence(env.collect()));
        body.insert(s("vmConfig"), Value::Mapping(vm));
    }
    let mut doc = Mapping::new();
    doc.insert(s("apiVersion"), s(ISTIO_API_VERSION));
    doc.insert(s("kind"), s("WasmPlugin"));
    doc.insert(s("metadata"), Value::Mapping(metadata));
    doc.insert(s("spec"), Value::Mapping(body));
    let doc = Value::Mapping(doc);
    validate_wasmplugin(&doc).map_err(|e: ValidationFailed| {
        anyhow::Error::new(e).context("the generated WasmPlugin is not valid")
    })?;
    Ok(doc)
}

/// The Tetrate `WasmExtension` for the same inputs, and the inputs it cannot express.
pub fn tetrate_extension(spec: &PluginSpec) -> Result<(Value, Vec<String>)> {
    // Validate the Istio form first: TSE renders a WasmPlugin from this resource.
    let istio = wasm_plugin(spec)?;
    let istio_spec = &istio["spec"];
    let mut dropped = Vec::new();
    let mut body = Mapping::new();
    for key in ["url", "phase", "priority"] {
        if !istio_spec[key].is_null() {
            body.insert(s(key), istio_spec[key].clone());
        }
    }
    if !istio_spec["pluginConfig"].is_null() {
        body.insert(s("config"), istio_spec["pluginConfig"].clone());
    }
    for key in ["imagePullPolicy", "imagePullSecret", "vmConfig"] {
        if !istio_spec[key].is_null() {
            body.insert(s(key), istio_spec[key].clone());
        }
    }
    if let Some(mode) = upper(&spec.match_mode) {
        let mut m = Mapping::new();
        m.insert(s("mode"), mode);
        body.insert(s("match"), Value::Mapping(m));
    }
    let unmapped = [
        ("sha256", "sha256 (TSE has no checksum field: pin the image by @sha256: digest in the url instead)"),
        ("selector", "selector (attach the extension in an Ingress/Egress Gateway or Security Group)"),
        ("targetRefs", "targetRefs"),
        ("pluginName", "pluginName"),
        ("failStrategy", "failStrategy"),
        ("type", "type"),
    ];
    for (key, text) in unmapped {
        if !istio_spec[key].is_null() {
            dropped.push(text.to_string());
        }
    }
    if !spec.match_ports.is_empty() {
        dropped.push("match ports (TSE's GlobalTrafficSelector has only mode)".into());
    }
    let mut metadata = Mapping::new();
    metadata.insert(s("name"), s(&spec.name));
    let mut doc = Mapping::new();
    doc.insert(s("apiVersion"), s("extension.tsb.tetrate.io/v2"));
    doc.insert(s("kind"), s("WasmExtension"));
    doc.insert(s("metadata"), Value::Mapping(metadata));
    doc.insert(s("spec"), Value::Mapping(body));
    Ok((Value::Mapping(doc), dropped))
}

/// Serializes documents as one YAML stream.
pub fn to_yaml(docs: &[Value]) -> Result<String> {
    let mut out = String::new();
    for (i, doc) in docs.iter().enumerate() {
        if i > 0 {
            out.push_str("---\n");
        }
        out.push_str(&super::yaml_out::to_yaml_string(doc));
    }
    Ok(out)
}
