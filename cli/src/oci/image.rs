//! Builds the bytes of a plugin image reproducibly: same module and options, same manifest
//! digest (fixed timestamps, owners, modes, entry order and JSON key order).

use std::io::Write;

use anyhow::{Context, Result};
use flate2::{Compression, GzBuilder};
use serde::{Deserialize, Serialize};

use super::{
    Blob, ImageFormat, DOCKER_CONFIG, DOCKER_LAYER_TAR_GZIP, DOCKER_MANIFEST, OCI_CONFIG,
    OCI_LAYER_TAR_GZIP, OCI_MANIFEST, WASM_CONFIG, WASM_CONTENT_LAYER,
};
use crate::wasm::ModuleInfo;

/// File name Istio looks for inside a tar layer.
pub const PLUGIN_FILE: &str = "plugin.wasm";
/// Optional runtime metadata next to `plugin.wasm` (Red Hat's image format).
pub const RUNTIME_CONFIG_FILE: &str = "runtime-config.json";
/// Annotation the compat variant of the Wasm image spec puts on OCI manifests.
pub const VARIANT_ANNOTATION: &str = "module.wasm.image/variant";

/// Metadata stored as `runtime-config.json` (compat) or the config layer (artifact).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeConfig {
    /// Always `envoy_proxy`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The module's `proxy_abi_version_*` exports.
    pub abi_versions: Vec<String>,
    /// Root ids the module serves, for `pluginName`.
    pub config: RootIds,
}

/// The `config` member of [`RuntimeConfig`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RootIds {
    /// Root ids, in the order given.
    pub root_ids: Vec<String>,
}

impl RuntimeConfig {
    /// Runtime metadata for a module with the given root ids.
    pub fn new(info: &ModuleInfo, root_ids: &[String]) -> Self {
        RuntimeConfig {
            kind: "envoy_proxy".into(),
            abi_versions: info.abi_versions.clone(),
            config: RootIds {
                root_ids: root_ids.to_vec(),
            },
        }
    }
}

/// A complete image, ready to push or to write as an OCI layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginImage {
    /// Which of the three shapes this is.
    pub format: ImageFormat,
    /// Media type of the manifest (`Content-Type` when pushing).
    pub manifest_media_type: String,
    /// The manifest bytes exactly as pushed; its digest is what Istio's `sha256` checks.
    pub manifest: Vec<u8>,
    /// The config blob.
    pub config: Blob,
    /// Layers in manifest order.
    pub layers: Vec<Blob>,
}

impl PluginImage {
    /// `sha256:<hex>` of the manifest bytes.
    pub fn digest(&self) -> String {
        super::sha256_digest(&self.manifest)
    }

    /// Every blob the registry must hold before the manifest is pushed (config first).
    pub fn blobs(&self) -> impl Iterator<Item = &Blob> {
        std::iter::once(&self.config).chain(self.layers.iter())
    }
}

/// Builds the image of `wasm` (already checked with [`crate::wasm::inspect_module`]).
pub fn build_image(
    wasm: &[u8],
    info: &ModuleInfo,
    format: ImageFormat,
    root_ids: &[String],
) -> Result<PluginImage> {
    let runtime_config =
        super::canonical_json(&serde_json::to_value(RuntimeConfig::new(info, root_ids))?);
    match format {
        ImageFormat::Compat | ImageFormat::Docker => {
            let tar = plugin_tar(wasm, &runtime_config).context("building the plugin layer")?;
            let diff_id = super::sha256_digest(&tar);
            let layer_gz = gzip(&tar).context("compressing the plugin layer")?;
            let (manifest_type, config_type, layer_type) = if format == ImageFormat::Docker {
                (DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER_TAR_GZIP)
            } else {
                (OCI_MANIFEST, OCI_CONFIG, OCI_LAYER_TAR_GZIP)
            };
            let config = Blob::new(config_type, super::canonical_json(&image_config(&diff_id)));
            let layer = Blob::new(layer_type, layer_gz);
            let mut manifest = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": manifest_type,
                "config": config.descriptor(),
                "layers": [layer.descriptor()],
            });
            if format == ImageFormat::Compat {
                manifest["annotations"] = serde_json::json!({ VARIANT_ANNOTATION: "compat" });
            }
            Ok(PluginImage {
                format,
                manifest_media_type: manifest_type.into(),
                manifest: super::canonical_json(&manifest),
                config,
                layers: vec![layer],
            })
        }
        ImageFormat::Artifact => {
            let config = Blob::new(WASM_CONFIG, runtime_config);
            let content = Blob::new(WASM_CONTENT_LAYER, wasm.to_vec());
            let manifest = serde_json::json!({
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": config.descriptor(),
                "layers": [config.descriptor(), content.descriptor()],
            });
            Ok(PluginImage {
                format,
                manifest_media_type: OCI_MANIFEST.into(),
                manifest: super::canonical_json(&manifest),
                layers: vec![config.clone(), content],
                config,
            })
        }
    }
}

/// Image config with a fixed creation time, so rebuilding does not change the digest.
fn image_config(diff_id: &str) -> serde_json::Value {
    serde_json::json!({
        "architecture": "wasm",
        "os": "wasip1",
        "created": "1970-01-01T00:00:00Z",
        "config": {},
        "rootfs": { "type": "layers", "diff_ids": [diff_id] },
    })
}

/// A tar holding `plugin.wasm` and `runtime-config.json` at the root, with fixed metadata.
fn plugin_tar(wasm: &[u8], runtime_config: &[u8]) -> Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in [(PLUGIN_FILE, wasm), (RUNTIME_CONFIG_FILE, runtime_config)] {
        let mut header = tar::Header::new_ustar();
        header.set_path(name)?;
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        header.set_cksum();
        builder.append(&header, data)?;
    }
    Ok(builder.into_inner()?)
}

/// Gzip with mtime 0 and no file name in the header.
fn gzip(data: &[u8]) -> Result<Vec<u8>> {
    let mut encoder = GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), Compression::best());
    encoder.write_all(data)?;
    Ok(encoder.finish()?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wasm::inspect_module;

    /// `(module (memory (export "memory") 1) (func (export "proxy_abi_version_0_2_1"))
    /// (func (export "proxy_on_memory_allocate") (param i32) (result i32) i32.const 1024))`
    const MODULE: &[u8] = &[
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x09, 0x02, 0x60, 0x00, 0x00, 0x60,
        0x01, 0x7f, 0x01, 0x7f, 0x03, 0x03, 0x02, 0x00, 0x01, 0x05, 0x03, 0x01, 0x00, 0x01, 0x07,
        0x3f, 0x03, 0x06, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 0x02, 0x00, 0x17, 0x70, 0x72, 0x6f,
        0x78, 0x79, 0x5f, 0x61, 0x62, 0x69, 0x5f, 0x76, 0x65, 0x72, 0x73, 0x69, 0x6f, 0x6e, 0x5f,
        0x30, 0x5f, 0x32, 0x5f, 0x31, 0x00, 0x00, 0x18, 0x70, 0x72, 0x6f, 0x78, 0x79, 0x5f, 0x6f,
        0x6e, 0x5f, 0x6d, 0x65, 0x6d, 0x6f, 0x72, 0x79, 0x5f, 0x61, 0x6c, 0x6c, 0x6f, 0x63, 0x61,
        0x74, 0x65, 0x00, 0x01, 0x0a, 0x0a, 0x02, 0x02, 0x00, 0x0b, 0x05, 0x00, 0x41, 0x80, 0x08,
        0x0b,
    ];

    /// Digests pinned across builds and releases: a change here means users' image digests
    /// (and the `sha256` in their WasmPlugins) change for the same module. Update them only
    /// on purpose, and say so in the changelog.
    #[test]
    fn image_digests_are_pinned() {
        let info = inspect_module(MODULE).expect("module");
        let root_ids = ["r".to_string()];
        let digest = |format| {
            build_image(MODULE, &info, format, &root_ids)
                .expect("image")
                .digest()
        };
        let all = [
            digest(ImageFormat::Compat),
            digest(ImageFormat::Docker),
            digest(ImageFormat::Artifact),
        ];
        assert_eq!(
            all,
            [
                "sha256:1a4102d358be78a39a9caf7d81642039db07ceaf1dff5d793503b11e5e2f88d7",
                "sha256:2900e21e32d457da94fc8061c3b097847f528570848eb97ccdcd2b0242dcce23",
                "sha256:62ff6eef68fa851118525c5f5329b119c43c5cb36a513fc24c7c3c339d39b195",
            ],
            "pinned image digests"
        );
    }
}
