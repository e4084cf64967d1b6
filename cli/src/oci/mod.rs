//! OCI images of `plugin.wasm` in the three shapes Istio's fetcher reads, and the registry
//! client that pushes and pulls them.

pub mod auth;
pub mod extract;
pub mod image;
pub mod layout;
pub mod legacy;
pub mod registry;
pub mod retry;
pub mod signature;

use sha2::{Digest, Sha256};

/// OCI image manifest.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
/// OCI image index (Istio resolves it to its linux/amd64 child).
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
/// OCI image config.
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
/// OCI gzip-compressed tar layer (the only OCI tar layer Istio reads).
pub const OCI_LAYER_TAR_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// Docker schema2 manifest.
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
/// Docker manifest list.
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
/// Docker image config.
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
/// Docker gzip-compressed tar layer.
pub const DOCKER_LAYER_TAR_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
/// Raw wasm bytes in an artifact image.
pub const WASM_CONTENT_LAYER: &str = "application/vnd.module.wasm.content.layer.v1+wasm";
/// Runtime configuration of an artifact image.
pub const WASM_CONFIG: &str = "application/vnd.module.wasm.config.v1+json";
/// wasm-to-oci's single-layer type, which Istio rejects; named only to explain that.
pub const WASM_TO_OCI_LAYER: &str = "application/vnd.wasm.content.layer.v1+wasm";

/// Every manifest type `pull` asks the registry for.
pub const ACCEPTED_MANIFESTS: &[&str] = &[
    OCI_MANIFEST,
    DOCKER_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST_LIST,
];

/// Image shape written by `weir package` and read by `weir pull`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageFormat {
    /// OCI image, last layer tar+gzip with `/plugin.wasm`.
    Compat,
    /// Docker schema2 image, last layer tar+gzip with `/plugin.wasm`.
    Docker,
    /// OCI artifact with exactly two layers: wasm config and raw wasm content.
    Artifact,
}

impl std::fmt::Display for ImageFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ImageFormat::Compat => "compat (OCI image, tar+gzip layer)",
            ImageFormat::Docker => "compat (Docker schema2 image)",
            ImageFormat::Artifact => "artifact (OCI, raw wasm layer)",
        })
    }
}

/// `sha256:<hex>` of `bytes`, the digest form registries use.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// JSON with object keys sorted at every level and no whitespace. Digests of manifests and
/// configs must not depend on whether some crate in the build turns on serde_json's
/// `preserve_order` feature.
pub fn canonical_json(value: &serde_json::Value) -> Vec<u8> {
    fn write(value: &serde_json::Value, out: &mut Vec<u8>) {
        match value {
            serde_json::Value::Object(map) => {
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                out.push(b'{');
                for (i, (key, v)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(
                        serde_json::Value::String(key.clone())
                            .to_string()
                            .as_bytes(),
                    );
                    out.push(b':');
                    write(v, out);
                }
                out.push(b'}');
            }
            serde_json::Value::Array(items) => {
                out.push(b'[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write(v, out);
                }
                out.push(b']');
            }
            scalar => out.extend_from_slice(scalar.to_string().as_bytes()),
        }
    }
    let mut out = Vec::new();
    write(value, &mut out);
    out
}

/// A content-addressed blob together with how the manifest describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// Media type in the manifest descriptor.
    pub media_type: String,
    /// `sha256:<hex>`.
    pub digest: String,
    /// The bytes.
    pub data: Vec<u8>,
}

impl Blob {
    /// Wraps `data`, computing its digest.
    pub fn new(media_type: &str, data: Vec<u8>) -> Self {
        Blob {
            media_type: media_type.to_string(),
            digest: sha256_digest(&data),
            data,
        }
    }

    /// The descriptor JSON the manifest uses for this blob.
    pub fn descriptor(&self) -> serde_json::Value {
        serde_json::json!({
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.data.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let value = serde_json::json!({"b": [{"z": 1, "a": "x\"y"}], "a": null});
        assert_eq!(
            canonical_json(&value),
            br#"{"a":null,"b":[{"a":"x\"y","z":1}]}"#.to_vec()
        );
    }
}
