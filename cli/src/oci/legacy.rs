//! Reads old Maistra extension images: `manifest.yaml` at the root names the module, which
//! may sit at any path in any layer.

use std::collections::BTreeMap;
use std::io::Read;

use anyhow::{Context, Result};
use flate2::read::GzDecoder;
use oci_client::Reference;

use super::extract::Manifest;
use super::registry::{Registry, Reporter};
use super::ACCEPTED_MANIFESTS;
use crate::manifest::migrate::extension_module_path;
use crate::wasm::MAX_MODULE_SIZE;
use crate::UserError;

/// Files of all tar layers, later layers overriding earlier ones (whiteouts ignored).
async fn image_files(
    registry: &Registry,
    reference: &Reference,
    reporter: &dyn Reporter,
) -> Result<BTreeMap<String, Vec<u8>>> {
    let (bytes, _) = registry
        .fetch_manifest(reference, ACCEPTED_MANIFESTS)
        .await?;
    let manifest: Manifest = serde_json::from_slice(&bytes).context("unreadable image manifest")?;
    let mut files = BTreeMap::new();
    for layer in &manifest.layers {
        let data = registry.fetch_blob(reference, layer, reporter).await?;
        let gz = data.starts_with(&[0x1f, 0x8b]);
        let reader: Box<dyn Read> = if gz {
            Box::new(GzDecoder::new(data.as_slice()))
        } else {
            Box::new(data.as_slice())
        };
        let mut archive = tar::Archive::new(reader);
        let entries = archive
            .entries()
            .with_context(|| format!("layer {} is not a tar archive", layer.digest))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("reading layer {}", layer.digest))?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let path = entry
                .path()?
                .to_string_lossy()
                .trim_start_matches("./")
                .trim_start_matches('/')
                .to_string();
            let mut content = Vec::new();
            entry.take(MAX_MODULE_SIZE + 1).read_to_end(&mut content)?;
            files.insert(path, content);
        }
    }
    Ok(files)
}

/// The module of an old extension image (`manifest.yaml` + module at any path).
pub async fn pull_extension_module(
    registry: &Registry,
    reference: &Reference,
    reporter: &dyn Reporter,
) -> Result<Vec<u8>> {
    let mut files = image_files(registry, reference, reporter).await?;
    let manifest = files.get("manifest.yaml").ok_or_else(|| {
        UserError(format!(
            "{} has no /manifest.yaml, so it is not a ServiceMeshExtension image",
            reference.whole()
        ))
    })?;
    let module_path = extension_module_path(&String::from_utf8_lossy(manifest))?;
    files.remove(&module_path).ok_or_else(|| {
        UserError(format!(
            "manifest.yaml names module {module_path}, which is not in the image"
        ))
        .into()
    })
}
