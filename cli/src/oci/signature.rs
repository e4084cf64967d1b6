//! Signatures in cosign's layout (sigstore/cosign `specs/SIGNATURE_SPEC.md`): a manifest
//! tagged `sha256-<hex>.sig` next to the image, each layer a "simple signing" JSON payload
//! naming the image's manifest digest, with the base64 ECDSA-P256/SHA-256 DER signature
//! in the `dev.cosignproject.cosign/signature` annotation.

use std::path::Path;

use anyhow::{Context, Result};
use base64::Engine;
use oci_client::Reference;
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{DerSignature, Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey, LineEnding,
};
use serde::Deserialize;

use super::registry::{Registry, RegistryError, SilentReporter};
use super::{extract, Blob, ACCEPTED_MANIFESTS, OCI_CONFIG, OCI_MANIFEST};
use crate::UserError;

/// Layer media type of a cosign payload.
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// Annotation holding the base64 signature.
pub const SIGNATURE_ANNOTATION: &str = "dev.cosignproject.cosign/signature";

/// `sha256:abc…` → `sha256-abc….sig`.
pub fn signature_tag(digest: &str) -> String {
    format!("{}.sig", digest.replacen(':', "-", 1))
}

/// The simple-signing payload for `digest` of the image in `reference`'s repository.
pub fn payload(reference: &Reference, digest: &str) -> Vec<u8> {
    let identity = format!(
        "{}/{}",
        reference.resolve_registry(),
        reference.repository()
    );
    let doc = serde_json::json!({
        "critical": {
            "identity": { "docker-reference": identity },
            "image": { "docker-manifest-digest": digest },
            "type": "cosign container image signature",
        },
        "optional": null,
    });
    super::canonical_json(&doc)
}

/// A new P-256 key pair as (PKCS#8 private PEM, SPKI public PEM).
pub fn generate_key_pair() -> Result<(String, String)> {
    let key = SigningKey::random(&mut rand_core::OsRng);
    let private = key
        .to_pkcs8_pem(LineEnding::LF)
        .context("encoding the private key")?;
    let public = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .context("encoding the public key")?;
    Ok((private.to_string(), public))
}

/// Reads a PKCS#8 or SEC1 P-256 private key.
pub fn read_private_key(path: &Path) -> Result<SigningKey> {
    let pem =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    if pem.contains("ENCRYPTED") {
        return Err(UserError(format!(
            "{} is encrypted; weir reads unencrypted PKCS#8 or SEC1 P-256 keys (create one with `weir sign --generate-key`)",
            path.display()
        ))
        .into());
    }
    SigningKey::from_pkcs8_pem(&pem)
        .or_else(|_| p256::SecretKey::from_sec1_pem(&pem).map(SigningKey::from))
        .map_err(|_| UserError(format!("{} is not a PEM P-256 private key", path.display())).into())
}

/// Reads a PEM public key (`-----BEGIN PUBLIC KEY-----`), as in `verificationKey`.
pub fn read_public_key(path: &Path) -> Result<VerifyingKey> {
    let pem =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    VerifyingKey::from_public_key_pem(&pem)
        .map_err(|_| UserError(format!("{} is not a PEM P-256 public key", path.display())).into())
}

/// Signs the manifest `reference` names; returns (signed digest, signature reference).
pub async fn sign(
    registry: &Registry,
    reference: &Reference,
    key: &SigningKey,
) -> Result<(String, Reference)> {
    let (_, digest) = registry
        .fetch_manifest(reference, ACCEPTED_MANIFESTS)
        .await?;
    let payload = payload(reference, &digest);
    let signature: Signature = key.sign(&payload);
    let encoded = base64::engine::general_purpose::STANDARD.encode(signature.to_der().as_bytes());
    let layer = Blob::new(SIMPLE_SIGNING, payload);
    let mut descriptor = layer.descriptor();
    descriptor["annotations"] = serde_json::json!({ SIGNATURE_ANNOTATION: encoded });
    let sig_ref = Reference::with_tag(
        reference.registry().to_string(),
        reference.repository().to_string(),
        signature_tag(&digest),
    );
    // Keep signatures made earlier (other keys), as cosign does.
    let mut layers = match registry.fetch_manifest(&sig_ref, &[OCI_MANIFEST]).await {
        Ok((bytes, _)) => serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|m| m["layers"].as_array().cloned())
            .unwrap_or_default(),
        Err(RegistryError::NotFound { .. }) => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    layers.retain(|l| {
        l["digest"] != descriptor["digest"] || l["annotations"] != descriptor["annotations"]
    });
    layers.push(descriptor);
    let diff_ids: Vec<_> = layers.iter().map(|l| l["digest"].clone()).collect();
    let config = Blob::new(
        OCI_CONFIG,
        super::canonical_json(&serde_json::json!({
            "architecture": "", "os": "", "config": {},
            "created": "0001-01-01T00:00:00Z",
            "rootfs": { "type": "layers", "diff_ids": diff_ids },
        })),
    );
    let manifest = super::canonical_json(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": layers,
    }));
    registry
        .push_raw(
            &sig_ref,
            &[config, layer],
            &manifest,
            OCI_MANIFEST,
            &SilentReporter,
        )
        .await?;
    Ok((digest, sig_ref))
}

#[derive(Deserialize)]
struct SigManifest {
    #[serde(default)]
    layers: Vec<SigLayer>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SigLayer {
    media_type: String,
    digest: String,
    size: u64,
    #[serde(default)]
    annotations: std::collections::BTreeMap<String, String>,
}

/// Succeeds if a signature by `key` over `digest` is stored next to `reference`.
pub async fn verify(
    registry: &Registry,
    reference: &Reference,
    digest: &str,
    key: &VerifyingKey,
) -> Result<()> {
    let sig_ref = Reference::with_tag(
        reference.registry().to_string(),
        reference.repository().to_string(),
        signature_tag(digest),
    );
    let bytes = match registry.fetch_manifest(&sig_ref, &[OCI_MANIFEST]).await {
        Ok((bytes, _)) => bytes,
        Err(RegistryError::NotFound { .. }) => {
            return Err(UserError(format!(
                "the image {digest} is not signed: {} does not exist; refusing it",
                sig_ref.whole()
            ))
            .into())
        }
        Err(e) => return Err(e.into()),
    };
    let manifest: SigManifest =
        serde_json::from_slice(&bytes).context("unreadable signature manifest")?;
    let mut problems = Vec::new();
    for layer in manifest
        .layers
        .iter()
        .filter(|l| l.media_type == SIMPLE_SIGNING)
    {
        let Some(encoded) = layer.annotations.get(SIGNATURE_ANNOTATION) else {
            continue;
        };
        let descriptor = extract::Descriptor {
            media_type: layer.media_type.clone(),
            digest: layer.digest.clone(),
            size: layer.size,
        };
        let payload = registry
            .fetch_blob(&sig_ref, &descriptor, &SilentReporter)
            .await?;
        match check_one(&payload, encoded, digest, key) {
            Ok(()) => return Ok(()),
            Err(problem) => problems.push(problem),
        }
    }
    Err(UserError(format!(
        "no valid signature by this key for {digest}; refusing the image ({})",
        if problems.is_empty() {
            "no signature layers".to_string()
        } else {
            problems.join("; ")
        }
    ))
    .into())
}

fn check_one(
    payload: &[u8],
    encoded: &str,
    digest: &str,
    key: &VerifyingKey,
) -> Result<(), String> {
    let der = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| "signature is not base64")?;
    let signature =
        DerSignature::try_from(der.as_slice()).map_err(|_| "signature is not DER ECDSA")?;
    key.verify(payload, &signature)
        .map_err(|_| "signature does not match the key and payload")?;
    let doc: serde_json::Value =
        serde_json::from_slice(payload).map_err(|_| "payload is not JSON")?;
    let signed = doc["critical"]["image"]["docker-manifest-digest"]
        .as_str()
        .unwrap_or_default();
    if signed != digest {
        return Err(format!("signature is for {signed}, not for {digest}"));
    }
    Ok(())
}
