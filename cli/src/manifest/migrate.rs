//! Maistra `ServiceMeshExtension` (maistra.io/v1) → Istio `WasmPlugin`, as Red Hat's
//! migration guide describes: workloadSelector.labels → selector.matchLabels, config →
//! pluginConfig, image → `oci://` url, phases mapped, priority kept.

use anyhow::{bail, Result};
use serde_yaml_ng::{Mapping, Value};

use super::validate::validate_wasmplugin;
use super::wasmplugin::normalize_url;
use super::ISTIO_API_VERSION;
use crate::UserError;

/// A converted resource and what could not be carried over.
#[derive(Debug, Clone)]
pub struct Migrated {
    /// The WasmPlugin.
    pub plugin: Value,
    /// Human-readable notes on fields dropped or changed in meaning.
    pub notes: Vec<String>,
}

/// Maps a Maistra phase to a WasmPlugin phase; `None` means "unspecified" (end of chain).
pub fn map_phase(phase: &str) -> Result<Option<&'static str>> {
    Ok(match phase {
        "PreAuthN" => Some("AUTHN"),
        "PostAuthN" | "PreAuthZ" => Some("AUTHZ"),
        "PostAuthZ" | "PreStats" => Some("STATS"),
        "PostStats" => None,
        other => bail!(UserError(format!(
            "unknown ServiceMeshExtension phase `{other}` (expected PreAuthN, PostAuthN, PreAuthZ, PostAuthZ, PreStats or PostStats)"
        ))),
    })
}

fn s(text: &str) -> Value {
    Value::String(text.to_string())
}

/// Converts one ServiceMeshExtension document.
pub fn migrate_extension(doc: &Value) -> Result<Migrated> {
    if doc["apiVersion"]
        .as_str()
        .is_none_or(|a| !a.starts_with("maistra.io/"))
        || doc["kind"] != "ServiceMeshExtension"
    {
        bail!(UserError(format!(
            "expected a maistra.io ServiceMeshExtension, got {} {}",
            doc["apiVersion"].as_str().unwrap_or("<no apiVersion>"),
            doc["kind"].as_str().unwrap_or("<no kind>")
        )));
    }
    let name = doc["metadata"]["name"].as_str().unwrap_or("<unnamed>");
    let source = doc["spec"].as_mapping().cloned().unwrap_or_default();
    let mut notes = Vec::new();
    let mut metadata = Mapping::new();
    for key in ["name", "namespace", "labels", "annotations"] {
        if let Some(v) = doc["metadata"].get(key) {
            metadata.insert(s(key), v.clone());
        }
    }
    let mut spec = Mapping::new();
    for (key, value) in &source {
        let key = key.as_str().unwrap_or_default();
        match key {
            "workloadSelector" => {
                let mut selector = Mapping::new();
                selector.insert(s("matchLabels"), value["labels"].clone());
                spec.insert(s("selector"), Value::Mapping(selector));
                if let Some(extra) = value.as_mapping().filter(|m| m.len() > 1) {
                    for k in extra.keys().filter(|k| k.as_str() != Some("labels")) {
                        notes.push(format!("{name}: workloadSelector.{} has no WasmPlugin equivalent; dropped", k.as_str().unwrap_or("?")));
                    }
                }
            }
            "image" => {
                let image = value.as_str().ok_or_else(|| UserError(format!("{name}: spec.image is not a string")))?;
                spec.insert(s("url"), s(&normalize_url(image)));
                notes.push(format!(
                    "{name}: the image must hold /plugin.wasm for WasmPlugin; convert an old extension image with `weir migrate --image {image} NEW-IMAGE`"
                ));
            }
            "phase" => {
                let phase = value.as_str().ok_or_else(|| UserError(format!("{name}: spec.phase is not a string")))?;
                match map_phase(phase)? {
                    Some(p) => {
                        spec.insert(s("phase"), s(p));
                    }
                    None => notes.push(format!(
                        "{name}: phase {phase} has no WasmPlugin equivalent; phase left unset (the plugin runs last, just before the router)"
                    )),
                }
            }
            "priority" => {
                spec.insert(s("priority"), value.clone());
            }
            "config" => match value {
                // Maistra 2.0 took the config as a string of JSON; WasmPlugin wants an object.
                Value::String(text) => match serde_yaml_ng::from_str::<Value>(text) {
                    Ok(parsed @ Value::Mapping(_)) => {
                        spec.insert(s("pluginConfig"), parsed);
                    }
                    _ => notes.push(format!(
                        "{name}: spec.config is a string that is not a JSON/YAML object; pluginConfig must be an object, so it was dropped"
                    )),
                },
                other => {
                    spec.insert(s("pluginConfig"), other.clone());
                }
            },
            other => notes.push(format!("{name}: spec.{other} has no WasmPlugin equivalent; dropped")),
        }
    }
    // Istio's docs order: selector, url, phase, priority, pluginConfig.
    let order = ["selector", "url", "phase", "priority", "pluginConfig"];
    let mut ordered = Mapping::new();
    for key in order {
        if let Some(v) = spec.remove(key) {
            ordered.insert(s(key), v);
        }
    }
    let mut plugin = Mapping::new();
    plugin.insert(s("apiVersion"), s(ISTIO_API_VERSION));
    plugin.insert(s("kind"), s("WasmPlugin"));
    plugin.insert(s("metadata"), Value::Mapping(metadata));
    plugin.insert(s("spec"), Value::Mapping(ordered));
    let plugin = Value::Mapping(plugin);
    validate_wasmplugin(&plugin)
        .map_err(|e| anyhow::Error::new(e).context(format!("migrating {name}")))?;
    Ok(Migrated { plugin, notes })
}

/// Reads `module:` from an old extension image's `manifest.yaml`.
pub fn extension_module_path(manifest_yaml: &str) -> Result<String> {
    let doc: Value = serde_yaml_ng::from_str(manifest_yaml)
        .map_err(|e| UserError(format!("manifest.yaml is not YAML: {e}")))?;
    match doc["module"].as_str() {
        Some(path) if !path.is_empty() => Ok(path.trim_start_matches('/').to_string()),
        _ => bail!(UserError("manifest.yaml has no `module:` path".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_config_from_maistra_2_0_becomes_an_object() {
        let doc: Value = serde_yaml_ng::from_str(
            "apiVersion: maistra.io/v1\nkind: ServiceMeshExtension\nmetadata: {name: a}\nspec:\n  image: r/x:1\n  phase: PreAuthN\n  config: '{\"k\": \"v\"}'\n",
        )
        .expect("yaml");
        let migrated = migrate_extension(&doc).expect("migrates");
        assert_eq!(migrated.plugin["spec"]["pluginConfig"]["k"], "v");
        let doc: Value = serde_yaml_ng::from_str(
            "apiVersion: maistra.io/v1\nkind: ServiceMeshExtension\nmetadata: {name: b}\nspec:\n  image: r/x:1\n  config: plain words\n  deploymentMode: x\n",
        )
        .expect("yaml");
        let migrated = migrate_extension(&doc).expect("migrates");
        assert!(migrated.plugin["spec"]["pluginConfig"].is_null());
        assert!(
            migrated
                .notes
                .iter()
                .any(|n| n.contains("spec.deploymentMode has no WasmPlugin equivalent")),
            "{:?}",
            migrated.notes
        );
        assert!(
            migrated
                .notes
                .iter()
                .any(|n| n.contains("not a JSON/YAML object")),
            "{:?}",
            migrated.notes
        );
    }

    #[test]
    fn wrong_kind_is_refused() {
        let doc: Value =
            serde_yaml_ng::from_str("apiVersion: v1\nkind: ConfigMap\n").expect("yaml");
        let err = migrate_extension(&doc).expect_err("not an SME");
        assert!(
            err.to_string()
                .contains("expected a maistra.io ServiceMeshExtension"),
            "{err}"
        );
    }
}
