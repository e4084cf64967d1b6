//! Finds `plugin.wasm` in a pulled manifest the way Istio's fetcher does: Docker schema2 and
//! OCI images read their last tar+gzip layer; OCI artifacts need exactly two layers, one of
//! them raw wasm.

use std::io::Read;

use flate2::read::GzDecoder;
use serde::Deserialize;
use thiserror::Error;

use super::{
    ImageFormat, DOCKER_LAYER_TAR_GZIP, DOCKER_MANIFEST, OCI_LAYER_TAR_GZIP, WASM_CONTENT_LAYER,
    WASM_TO_OCI_LAYER,
};
use crate::wasm::MAX_MODULE_SIZE;

/// The parts of an image manifest `pull` needs.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Top-level media type; empty on OCI manifests that omit it.
    #[serde(default)]
    pub media_type: String,
    /// Config descriptor.
    pub config: Descriptor,
    /// Layer descriptors in order.
    #[serde(default)]
    pub layers: Vec<Descriptor>,
}

/// A content descriptor.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// Media type of the blob.
    pub media_type: String,
    /// `sha256:<hex>`.
    pub digest: String,
    /// Size the blob must have.
    pub size: u64,
}

/// Where the module sits in an image and how it is encoded.
#[derive(Debug, Clone)]
pub struct WasmLocation {
    /// The image shape detected.
    pub format: ImageFormat,
    /// The layer holding the module.
    pub layer: Descriptor,
    /// Whether the layer is tar+gzip (else raw wasm bytes).
    pub tar_gzip: bool,
}

/// Why an image does not hold a plugin Istio could load.
#[derive(Debug, Error)]
pub enum ExtractError {
    /// The manifest's layout matches none of the three accepted forms.
    #[error("image is in none of the formats Istio reads: {0}")]
    UnsupportedFormat(String),
    /// The tar layer has no `plugin.wasm`.
    #[error("the image layer has no plugin.wasm file")]
    NoPluginFile,
    /// The layer does not decompress or untar.
    #[error("the image layer is not a valid tar+gzip archive: {0}")]
    BadArchive(String),
    /// The module exceeds Istio's size cap.
    #[error("plugin.wasm is larger than {MAX_MODULE_SIZE} bytes (256 MiB), Istio's limit")]
    TooLarge,
}

/// Picks the layer holding the module, following Istio's order of attempts.
pub fn locate_wasm(manifest: &Manifest) -> Result<WasmLocation, ExtractError> {
    let last = manifest.layers.last();
    if manifest.media_type == DOCKER_MANIFEST {
        return match last {
            Some(l) if l.media_type == DOCKER_LAYER_TAR_GZIP => Ok(WasmLocation {
                format: ImageFormat::Docker,
                layer: l.clone(),
                tar_gzip: true,
            }),
            Some(l) => Err(ExtractError::UnsupportedFormat(format!(
                "Docker image whose last layer is {} (must be {DOCKER_LAYER_TAR_GZIP})",
                l.media_type
            ))),
            None => Err(ExtractError::UnsupportedFormat(
                "Docker image without layers".into(),
            )),
        };
    }
    if let Some(l) = last.filter(|l| l.media_type == OCI_LAYER_TAR_GZIP) {
        return Ok(WasmLocation {
            format: ImageFormat::Compat,
            layer: l.clone(),
            tar_gzip: true,
        });
    }
    let wasm_layers: Vec<_> = manifest
        .layers
        .iter()
        .filter(|l| l.media_type == WASM_CONTENT_LAYER)
        .collect();
    if manifest.layers.len() == 2 && wasm_layers.len() == 1 {
        return Ok(WasmLocation {
            format: ImageFormat::Artifact,
            layer: wasm_layers[0].clone(),
            tar_gzip: false,
        });
    }
    let types: Vec<_> = manifest
        .layers
        .iter()
        .map(|l| l.media_type.as_str())
        .collect();
    let why = if types == [WASM_TO_OCI_LAYER] {
        "a wasm-to-oci single-layer artifact; repackage it with `weir package`".to_string()
    } else if !wasm_layers.is_empty() {
        format!(
            "an artifact must have exactly 2 layers, this one has {}",
            types.len()
        )
    } else {
        format!("layers [{}]", types.join(", "))
    };
    Err(ExtractError::UnsupportedFormat(why))
}

/// Returns the module bytes from the layer [`locate_wasm`] chose.
pub fn extract_wasm(location: &WasmLocation, layer: &[u8]) -> Result<Vec<u8>, ExtractError> {
    if !location.tar_gzip {
        if layer.len() as u64 > MAX_MODULE_SIZE {
            return Err(ExtractError::TooLarge);
        }
        return Ok(layer.to_vec());
    }
    let bad = |e: std::io::Error| ExtractError::BadArchive(e.to_string());
    let mut archive = tar::Archive::new(GzDecoder::new(layer));
    for entry in archive.entries().map_err(bad)? {
        let entry = entry.map_err(bad)?;
        let path = entry.path().map_err(bad)?;
        if path
            .file_name()
            .is_some_and(|n| n == super::image::PLUGIN_FILE)
        {
            let mut out = Vec::new();
            entry
                .take(MAX_MODULE_SIZE + 1)
                .read_to_end(&mut out)
                .map_err(bad)?;
            if out.len() as u64 > MAX_MODULE_SIZE {
                return Err(ExtractError::TooLarge);
            }
            return Ok(out);
        }
    }
    Err(ExtractError::NoPluginFile)
}
