//! Pushes and pulls plugin images with `oci-client`, verifying every digest and size itself
//! and turning registry failures into errors that say what to do.

use std::path::PathBuf;
use std::time::Duration;

use futures_util::StreamExt;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use sha2::{Digest, Sha256};
use thiserror::Error;

use super::extract::{self, ExtractError, Manifest};
use super::image::PluginImage;
use super::retry::{error_chain_text, looks_like_tls_failure, with_retry, RetryPolicy};
use super::{auth::Credentials, sha256_digest, Blob, ImageFormat, ACCEPTED_MANIFESTS};
use crate::wasm::{self, MAX_MODULE_SIZE};

/// Progress events a registry operation emits; the CLI draws them, tests may ignore them.
pub trait Reporter: Send + Sync {
    /// A blob transfer starts; returns an id for the later calls.
    fn on_blob_start(&self, digest: &str, size: u64) -> usize;
    /// `bytes` more bytes of blob `id` were transferred.
    fn on_blob_progress(&self, id: usize, bytes: u64);
    /// Blob `id` is done.
    fn on_blob_complete(&self, id: usize);
    /// A transient failure; the operation is retried after `delay`.
    fn on_retry(&self, what: &str, attempt: u32, delay: Duration, error: &str);
}

/// A [`Reporter`] that reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct SilentReporter;

impl Reporter for SilentReporter {
    fn on_blob_start(&self, _: &str, _: u64) -> usize {
        0
    }
    fn on_blob_progress(&self, _: usize, _: u64) {}
    fn on_blob_complete(&self, _: usize) {}
    fn on_retry(&self, _: &str, _: u32, _: Duration, _: &str) {}
}

/// How to reach a registry.
#[derive(Debug, Clone, Default)]
pub struct RegistryOptions {
    /// Speak plain HTTP (only for registries without TLS).
    pub insecure: bool,
    /// Extra PEM CA certificates to trust, besides the system roots.
    pub ca_certs: Vec<PathBuf>,
    /// Credentials; `None` means anonymous.
    pub credentials: Option<Credentials>,
    /// Retry behaviour.
    pub retry: RetryPolicy,
}

/// A registry failure, classified so the CLI can hint at a fix.
#[derive(Debug, Error)]
pub enum RegistryError {
    /// 401: missing or wrong credentials.
    #[error("the registry {registry} refused the credentials (401 Unauthorized)")]
    Unauthorized {
        /// Registry host.
        registry: String,
        /// Whether any credentials were sent.
        had_credentials: bool,
    },
    /// 403: authenticated but not allowed.
    #[error("access to {reference} is denied (403 Forbidden)")]
    Denied {
        /// Image reference.
        reference: String,
    },
    /// 404 on the manifest or a blob.
    #[error("{reference} was not found in the registry (404)")]
    NotFound {
        /// Image reference.
        reference: String,
    },
    /// The manifest's digest is not the one asked for.
    #[error("manifest digest mismatch: expected {expected}, the registry served {actual}")]
    DigestMismatch {
        /// Digest the user asked for.
        expected: String,
        /// Digest of the bytes received.
        actual: String,
    },
    /// A blob's content does not hash to its digest: the registry's copy was altered.
    #[error("blob {digest} is corrupt or tampered with: its content hashes to {actual}")]
    BlobCorrupt {
        /// Digest from the manifest.
        digest: String,
        /// Digest of the bytes received.
        actual: String,
    },
    /// A blob ended before its declared size.
    #[error("blob {digest} was truncated: received {received} of {expected} bytes")]
    Truncated {
        /// Digest from the manifest.
        digest: String,
        /// Declared size.
        expected: u64,
        /// Bytes received.
        received: u64,
    },
    /// A blob is larger than its descriptor says or than Istio accepts.
    #[error("blob {digest} is larger than {limit} bytes")]
    Oversize {
        /// Digest from the manifest.
        digest: String,
        /// The limit crossed.
        limit: u64,
    },
    /// The image does not hold a plugin Istio could load.
    #[error(transparent)]
    Format(#[from] ExtractError),
    /// The extracted file is not a Wasm module.
    #[error("plugin.wasm in {reference} is not a WebAssembly module: {reason}")]
    NotWasm {
        /// Image reference.
        reference: String,
        /// Why.
        reason: String,
    },
    /// TCP/TLS-level failure.
    #[error("cannot reach the registry {registry}: {detail}")]
    Connection {
        /// Registry host.
        registry: String,
        /// Error text, including the TLS cause if any.
        detail: String,
        /// Whether the failure looks like a TLS problem.
        tls: bool,
    },
    /// Anything else the client reported.
    #[error("registry operation failed: {0}")]
    Other(#[source] OciDistributionError),
}

/// A module fetched from a registry.
#[derive(Debug, Clone)]
pub struct PulledPlugin {
    /// Digest of the manifest the reference names (what Istio's `sha256` checks).
    pub manifest_digest: String,
    /// The image manifest's bytes (the child's, if the reference named an index).
    pub manifest: Vec<u8>,
    /// Which of the three shapes the image had.
    pub format: ImageFormat,
    /// The module bytes.
    pub wasm: Vec<u8>,
}

/// A connected registry client with its credentials.
pub struct Registry {
    client: Client,
    auth: RegistryAuth,
    options: RegistryOptions,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Parses `oci://host/repo:tag` or `host/repo@sha256:…` into a reference.
pub fn parse_reference(text: &str) -> anyhow::Result<Reference> {
    let bare = text.strip_prefix("oci://").unwrap_or(text);
    bare.parse::<Reference>().map_err(|e| {
        anyhow::anyhow!("`{text}` is not an image reference ({e}); expected host[:port]/repository[:tag|@sha256:digest]")
    })
}

impl Registry {
    /// Builds a client; reads the CA files now so a bad path fails before any network I/O.
    pub fn new(options: RegistryOptions) -> anyhow::Result<Self> {
        let mut extra_root_certificates = Vec::new();
        for path in &options.ca_certs {
            let data = std::fs::read(path)
                .map_err(|e| anyhow::anyhow!("reading CA certificate {}: {e}", path.display()))?;
            extra_root_certificates.push(Certificate {
                encoding: CertificateEncoding::Pem,
                data,
            });
        }
        let config = ClientConfig {
            protocol: if options.insecure {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            extra_root_certificates,
            platform_resolver: None,
            connect_timeout: Some(Duration::from_secs(15)),
            read_timeout: Some(Duration::from_secs(60)),
            ..Default::default()
        };
        let auth = match &options.credentials {
            Some(c) => RegistryAuth::Basic(c.username.clone(), c.password.clone()),
            None => RegistryAuth::Anonymous,
        };
        Ok(Registry {
            client: Client::new(config),
            auth,
            options,
        })
    }

    fn classify(&self, reference: &Reference, err: OciDistributionError) -> RegistryError {
        classify(reference, self.options.credentials.is_some(), err)
    }

    async fn retry<T, F, Fut>(
        &self,
        what: &str,
        reporter: &dyn Reporter,
        op: F,
    ) -> Result<T, OciDistributionError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, OciDistributionError>>,
    {
        with_retry(
            self.options.retry,
            |n, d, e| reporter.on_retry(what, n, d, &retry_reason(e)),
            op,
        )
        .await
    }

    /// Pushes every blob of `image`, then its manifest; returns the manifest digest the
    /// registry reports (checked against the bytes pushed).
    pub async fn push(
        &self,
        reference: &Reference,
        image: &PluginImage,
        reporter: &dyn Reporter,
    ) -> Result<String, RegistryError> {
        let blobs: Vec<Blob> = image.blobs().cloned().collect();
        self.push_raw(
            reference,
            &blobs,
            &image.manifest,
            &image.manifest_media_type,
            reporter,
        )
        .await
    }

    /// Pushes `blobs` (skipping those present), then `manifest` under `reference`.
    pub async fn push_raw(
        &self,
        reference: &Reference,
        blobs: &[Blob],
        manifest: &[u8],
        media_type: &str,
        reporter: &dyn Reporter,
    ) -> Result<String, RegistryError> {
        self.client
            .auth(reference, &self.auth, RegistryOperation::Push)
            .await
            .map_err(|e| self.classify(reference, e))?;
        let mut pushed = std::collections::HashSet::new();
        for blob in blobs {
            if !pushed.insert(blob.digest.clone()) {
                continue;
            }
            let id = reporter.on_blob_start(&blob.digest, blob.data.len() as u64);
            let exists = self
                .retry("checking blob", reporter, || {
                    self.client.blob_exists(reference, &blob.digest)
                })
                .await
                .map_err(|e| self.classify(reference, e))?;
            if !exists {
                self.retry("uploading blob", reporter, || {
                    self.client
                        .push_blob(reference, blob.data.clone(), &blob.digest)
                })
                .await
                .map_err(|e| self.classify(reference, e))?;
            }
            reporter.on_blob_progress(id, blob.data.len() as u64);
            reporter.on_blob_complete(id);
        }
        let content_type = http::HeaderValue::from_str(media_type).map_err(|_| {
            RegistryError::Other(OciDistributionError::GenericError(Some(
                "bad manifest media type".into(),
            )))
        })?;
        self.retry("pushing manifest", reporter, || {
            self.client
                .push_manifest_raw(reference, manifest.to_vec(), content_type.clone())
        })
        .await
        .map_err(|e| self.classify(reference, e))?;
        let reported = self
            .retry("reading pushed digest", reporter, || {
                self.client.fetch_manifest_digest(reference, &self.auth)
            })
            .await
            .map_err(|e| self.classify(reference, e))?;
        let expected = sha256_digest(manifest);
        if reported != expected {
            return Err(RegistryError::DigestMismatch {
                expected,
                actual: reported,
            });
        }
        Ok(reported)
    }

    /// Pulls the module `reference` names, in any of the three formats Istio reads.
    /// `expected_sha256` (hex or `sha256:hex`) must equal the manifest digest.
    pub async fn pull(
        &self,
        reference: &Reference,
        expected_sha256: Option<&str>,
        reporter: &dyn Reporter,
    ) -> Result<PulledPlugin, RegistryError> {
        let (bytes, _) = self
            .retry("fetching manifest", reporter, || {
                self.client
                    .pull_manifest_raw(reference, &self.auth, ACCEPTED_MANIFESTS)
            })
            .await
            .map_err(|e| self.classify(reference, e))?;
        let manifest_digest = sha256_digest(&bytes);
        for expected in reference.digest().into_iter().chain(expected_sha256) {
            let expected = normalize_digest(expected);
            if expected != manifest_digest {
                return Err(RegistryError::DigestMismatch {
                    expected,
                    actual: manifest_digest,
                });
            }
        }
        let manifest_bytes = self
            .resolve_index(reference, bytes.to_vec(), reporter)
            .await?;
        let manifest: Manifest = serde_json::from_slice(&manifest_bytes).map_err(|e| {
            RegistryError::Format(ExtractError::UnsupportedFormat(format!(
                "unreadable manifest: {e}"
            )))
        })?;
        let location = extract::locate_wasm(&manifest)?;
        let layer = self
            .fetch_blob(reference, &location.layer, reporter)
            .await?;
        let wasm = extract::extract_wasm(&location, &layer)?;
        wasm::inspect_module(&wasm).map_err(|e| RegistryError::NotWasm {
            reference: reference.whole(),
            reason: e.to_string(),
        })?;
        Ok(PulledPlugin {
            manifest_digest,
            manifest: manifest_bytes,
            format: location.format,
            wasm,
        })
    }

    /// If `bytes` is an index, fetches its linux/amd64 child as Istio does.
    async fn resolve_index(
        &self,
        reference: &Reference,
        bytes: Vec<u8>,
        reporter: &dyn Reporter,
    ) -> Result<Vec<u8>, RegistryError> {
        #[derive(serde::Deserialize)]
        struct Index {
            #[serde(default)]
            manifests: Option<Vec<Entry>>,
        }
        #[derive(serde::Deserialize)]
        struct Entry {
            digest: String,
            #[serde(default)]
            platform: Option<Platform>,
        }
        #[derive(serde::Deserialize)]
        struct Platform {
            os: String,
            architecture: String,
        }
        let Ok(Index {
            manifests: Some(entries),
        }) = serde_json::from_slice::<Index>(&bytes)
        else {
            return Ok(bytes);
        };
        let child = entries
            .iter()
            .find(|e| {
                e.platform
                    .as_ref()
                    .is_some_and(|p| p.os == "linux" && p.architecture == "amd64")
            })
            .ok_or_else(|| {
                ExtractError::UnsupportedFormat(
                    "an image index without a linux/amd64 manifest".into(),
                )
            })?;
        let child_ref = reference.clone_with_digest(child.digest.clone());
        let (child_bytes, _) = self
            .retry("fetching manifest", reporter, || {
                self.client
                    .pull_manifest_raw(&child_ref, &self.auth, ACCEPTED_MANIFESTS)
            })
            .await
            .map_err(|e| self.classify(reference, e))?;
        let actual = sha256_digest(&child_bytes);
        if actual != child.digest {
            return Err(RegistryError::DigestMismatch {
                expected: child.digest.clone(),
                actual,
            });
        }
        Ok(child_bytes.to_vec())
    }

    /// Streams one blob into memory, checking size limits as bytes arrive and the digest at
    /// the end.
    pub async fn fetch_blob(
        &self,
        reference: &Reference,
        descriptor: &extract::Descriptor,
        reporter: &dyn Reporter,
    ) -> Result<Vec<u8>, RegistryError> {
        let limit = descriptor.size.min(MAX_MODULE_SIZE + 64 * 1024 * 1024);
        if descriptor.size > limit {
            return Err(RegistryError::Oversize {
                digest: descriptor.digest.clone(),
                limit,
            });
        }
        let oci_descriptor = OciDescriptor {
            media_type: descriptor.media_type.clone(),
            digest: descriptor.digest.clone(),
            size: descriptor.size as i64,
            ..Default::default()
        };
        let mut stream = self
            .retry("fetching blob", reporter, || {
                self.client.pull_blob_stream(reference, &oci_descriptor)
            })
            .await
            .map_err(|e| self.classify(reference, e))?;
        let id = reporter.on_blob_start(&descriptor.digest, descriptor.size);
        // The size is the manifest's claim: reserve little up front and grow as bytes arrive.
        let mut data = Vec::with_capacity(descriptor.size.min(16 * 1024 * 1024) as usize);
        let mut hasher = Sha256::new();
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(c) => c,
                Err(e) if is_digest_error(&e) && (data.len() as u64) < descriptor.size => {
                    // The client's own digest check fires when the stream ends early.
                    return Err(RegistryError::Truncated {
                        digest: descriptor.digest.clone(),
                        expected: descriptor.size,
                        received: data.len() as u64,
                    });
                }
                Err(e) if is_digest_error(&e) => {
                    // The client's own check fired first; report what we computed instead.
                    return Err(RegistryError::BlobCorrupt {
                        digest: descriptor.digest.clone(),
                        actual: format!("sha256:{}", hex::encode(hasher.finalize())),
                    });
                }
                Err(e) => return Err(self.classify(reference, OciDistributionError::IoError(e))),
            };
            if (data.len() + chunk.len()) as u64 > limit {
                return Err(RegistryError::Oversize {
                    digest: descriptor.digest.clone(),
                    limit,
                });
            }
            hasher.update(&chunk);
            data.extend_from_slice(&chunk);
            reporter.on_blob_progress(id, chunk.len() as u64);
        }
        reporter.on_blob_complete(id);
        if (data.len() as u64) < descriptor.size {
            return Err(RegistryError::Truncated {
                digest: descriptor.digest.clone(),
                expected: descriptor.size,
                received: data.len() as u64,
            });
        }
        let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
        if actual != descriptor.digest {
            return Err(RegistryError::BlobCorrupt {
                digest: descriptor.digest.clone(),
                actual,
            });
        }
        Ok(data)
    }

    /// Fetches the raw manifest and its digest (used by signing).
    pub async fn fetch_manifest(
        &self,
        reference: &Reference,
        accepted: &[&str],
    ) -> Result<(Vec<u8>, String), RegistryError> {
        let (bytes, _) = self
            .retry("fetching manifest", &SilentReporter, || {
                self.client
                    .pull_manifest_raw(reference, &self.auth, accepted)
            })
            .await
            .map_err(|e| self.classify(reference, e))?;
        let digest = sha256_digest(&bytes);
        Ok((bytes.to_vec(), digest))
    }
}

fn is_digest_error(e: &std::io::Error) -> bool {
    e.get_ref().is_some_and(|inner| {
        inner
            .downcast_ref::<oci_client::errors::DigestError>()
            .is_some()
    })
}

/// `abc…` or `sha256:abc…` → `sha256:abc…`.
pub fn normalize_digest(text: &str) -> String {
    if text.contains(':') {
        text.to_string()
    } else {
        format!("sha256:{text}")
    }
}

fn classify(
    reference: &Reference,
    had_credentials: bool,
    err: OciDistributionError,
) -> RegistryError {
    let registry = reference.resolve_registry().to_string();
    let not_found = || RegistryError::NotFound {
        reference: reference.whole(),
    };
    match err {
        OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_) => RegistryError::Unauthorized {
            registry,
            had_credentials,
        },
        OciDistributionError::ImageManifestNotFoundError(_) => not_found(),
        OciDistributionError::ServerError { code: 401, .. } => RegistryError::Unauthorized {
            registry,
            had_credentials,
        },
        OciDistributionError::ServerError { code: 403, .. } => RegistryError::Denied {
            reference: reference.whole(),
        },
        OciDistributionError::ServerError { code: 404, .. } => not_found(),
        OciDistributionError::RegistryError { ref envelope, .. } => {
            let codes: Vec<_> = envelope.errors.iter().map(|e| &e.code).collect();
            if codes
                .iter()
                .any(|c| matches!(c, OciErrorCode::Unauthorized))
            {
                RegistryError::Unauthorized {
                    registry,
                    had_credentials,
                }
            } else if codes.iter().any(|c| matches!(c, OciErrorCode::Denied)) {
                RegistryError::Denied {
                    reference: reference.whole(),
                }
            } else if codes.iter().any(|c| {
                matches!(
                    c,
                    OciErrorCode::ManifestUnknown
                        | OciErrorCode::NameUnknown
                        | OciErrorCode::BlobUnknown
                        | OciErrorCode::NotFound
                )
            }) {
                not_found()
            } else {
                RegistryError::Other(err)
            }
        }
        OciDistributionError::RequestError(ref e)
            if e.is_connect() || e.is_timeout() || e.is_request() =>
        {
            let detail = error_chain_text(e);
            let tls = looks_like_tls_failure(&detail);
            RegistryError::Connection {
                registry,
                detail,
                tls,
            }
        }
        other => RegistryError::Other(other),
    }
}

/// The innermost useful cause of a transient failure, e.g. "Connection refused (os error 111)".
fn retry_reason(e: &OciDistributionError) -> String {
    let text = error_chain_text(e);
    text.rsplit(": ").next().unwrap_or(&text).to_string()
}
