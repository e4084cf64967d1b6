//! Fetching modules as istio-agent does: `file://` read (and snapshotted into the cache), `http(s)://` downloaded
//! with retries and unpacked (gzip, tar), `oci://` pulled in any of the three image forms;
//! checksums verified, a size cap, the cache consulted according to the pull policy.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use super::cache::{bare_hex, ModuleCache};
use super::plugin::Plugin;
use crate::oci::auth::DockerConfig;
use crate::oci::registry::{
    normalize_digest, parse_reference, Registry, RegistryOptions, SilentReporter,
};
use crate::oci::retry::RetryPolicy;
use crate::wasm::MAX_MODULE_SIZE;

/// How modules are fetched.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    /// Where fetched modules are kept.
    pub cache: ModuleCache,
    /// Extra CA certificates (PEM) for https:// and registries.
    pub ca_certs: Vec<PathBuf>,
    /// `host:port`s of plain-HTTP registries (Istio's `WASM_INSECURE_REGISTRIES`).
    pub insecure_registries: Vec<String>,
    /// Time per HTTP attempt (Istio: 15 s).
    pub http_timeout: Duration,
    /// HTTP attempts (Istio: 5).
    pub http_attempts: u32,
    /// First retry delay, doubled each time (Istio: 500 ms).
    pub http_backoff: Duration,
}

impl FetchOptions {
    /// Istio's defaults with the given cache.
    pub fn new(cache: ModuleCache) -> Self {
        FetchOptions {
            cache,
            ca_certs: Vec::new(),
            insecure_registries: Vec::new(),
            http_timeout: Duration::from_secs(15),
            http_attempts: 5,
            http_backoff: Duration::from_millis(500),
        }
    }
}

/// A module ready for Envoy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fetched {
    /// The module file (in the cache, or the `file://` path's content copied there).
    pub path: PathBuf,
    /// The checksum Istio compares `sha256` with (`sha256:<hex>`): the manifest digest for
    /// OCI, the module's hash otherwise.
    pub checksum: String,
    /// Whether the cache answered without any network access.
    pub cache_hit: bool,
}

/// `Always` or `IfNotPresent` after Istio's defaulting: unset is `IfNotPresent`, except an
/// OCI URL tagged `:latest`, which is `Always`.
pub fn effective_pull_policy(plugin: &Plugin) -> &'static str {
    match plugin.spec.image_pull_policy.as_deref() {
        Some("Always") => "Always",
        Some("IfNotPresent") => "IfNotPresent",
        _ => {
            let url = plugin.url();
            if url.starts_with("oci://") && url.ends_with(":latest") {
                "Always"
            } else {
                "IfNotPresent"
            }
        }
    }
}

/// The checksum the plugin pins: `sha256`, else an `@sha256:` digest in the URL. Both set
/// must agree.
pub fn expected_checksum(plugin: &Plugin) -> Result<Option<String>> {
    let url = plugin.url();
    let from_url = url
        .split_once("@sha256:")
        .map(|(_, hex)| hex.to_ascii_lowercase());
    let from_field = plugin
        .spec
        .sha256
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(bare_hex);
    match (from_field, from_url) {
        (Some(a), Some(b)) if a != b => {
            bail!("sha256 {a} disagrees with the digest in the url ({b})")
        }
        (a, b) => Ok(a.or(b)),
    }
}

/// Fetches `plugin`'s module. `pull` says the pull policy asks for a fresh pull now
/// (`Always` and the resource changed); a pinned checksum in the cache still wins.
pub async fn fetch(
    plugin: &Plugin,
    secrets: &BTreeMap<(String, String), DockerConfig>,
    options: &FetchOptions,
    pull: bool,
) -> Result<Fetched> {
    let url = plugin.url();
    let expected = expected_checksum(plugin)?;
    if let Some(path) = url.strip_prefix("file://") {
        let bytes = std::fs::read(path).with_context(|| format!("reading {path}"))?;
        return store(
            options,
            &url,
            &bytes,
            hex::encode(Sha256::digest(&bytes)),
            expected,
        );
    }
    if let Some(sum) = &expected {
        if let Some(path) = options.cache.get(&url, sum) {
            return Ok(Fetched {
                path,
                checksum: format!("sha256:{sum}"),
                cache_hit: true,
            });
        }
    } else if !pull {
        if let Some(sum) = options.cache.checksum_for_tag(&url) {
            if let Some(path) = options.cache.get(&url, &sum) {
                return Ok(Fetched {
                    path,
                    checksum: format!("sha256:{sum}"),
                    cache_hit: true,
                });
            }
        }
    }
    if url.starts_with("http://") || url.starts_with("https://") {
        let body = download(&url, options).await?;
        let module = unpack(body)?;
        let sum = hex::encode(Sha256::digest(&module));
        store(options, &url, &module, sum, expected)
    } else if url.starts_with("oci://") {
        let reference = parse_reference(&url)?;
        let host = reference.resolve_registry().to_string();
        let credentials = match &plugin.spec.image_pull_secret {
            Some(name) => match secrets.get(&(plugin.namespace.clone(), name.clone())) {
                Some(config) => config.lookup(&host)?,
                None => bail!(
                    "imagePullSecret {name} is not among the inputs: add a kubernetes.io/dockerconfigjson Secret named {name} in namespace {} to the -f files",
                    plugin.namespace
                ),
            },
            None => None,
        };
        let registry = Registry::new(RegistryOptions {
            insecure: options.insecure_registries.iter().any(|h| h == &host),
            ca_certs: options.ca_certs.clone(),
            credentials,
            retry: RetryPolicy {
                attempts: options.http_attempts.max(1),
                ..RetryPolicy::default()
            },
        })?;
        let pulled = registry
            .pull(&reference, expected.as_deref(), &SilentReporter)
            .await
            .with_context(|| format!("pulling {url}"))?;
        let sum = bare_hex(&normalize_digest(&pulled.manifest_digest));
        check_module(&pulled.wasm)?;
        let path = options.cache.put(&url, &sum, &pulled.wasm)?;
        Ok(Fetched {
            path,
            checksum: format!("sha256:{sum}"),
            cache_hit: false,
        })
    } else {
        bail!("unsupported url scheme in {url}: use file://, http://, https:// or oci://")
    }
}

/// Checks and caches a module fetched from a file or over HTTP. File modules are copied
/// too: Envoy then loads a snapshot whose name changes with its content.
fn store(
    options: &FetchOptions,
    url: &str,
    module: &[u8],
    sum: String,
    expected: Option<String>,
) -> Result<Fetched> {
    if let Some(expected) = expected {
        if expected != sum {
            bail!("module checksum mismatch: sha256 is {expected}, the module from {url} hashes to {sum}");
        }
    }
    check_module(module)?;
    let path = options.cache.put(url, &sum, module)?;
    Ok(Fetched {
        path,
        checksum: format!("sha256:{sum}"),
        cache_hit: false,
    })
}

fn check_module(module: &[u8]) -> Result<()> {
    if module.len() as u64 > MAX_MODULE_SIZE {
        bail!(
            "module is {} bytes; Istio refuses modules above {MAX_MODULE_SIZE} bytes (256 MiB)",
            module.len()
        );
    }
    if !module.starts_with(b"\0asm") {
        bail!("the fetched file is not a Wasm module (it does not start with \\0asm)");
    }
    Ok(())
}

/// Whether an HTTP status is worth another try (5xx, except the ones retrying cannot fix).
fn retryable(status: u16) -> bool {
    (500..600).contains(&status) && !matches!(status, 501 | 505 | 511)
}

async fn download(url: &str, options: &FetchOptions) -> Result<Vec<u8>> {
    let mut builder = reqwest::Client::builder().timeout(options.http_timeout);
    for path in &options.ca_certs {
        let pem = std::fs::read(path)
            .with_context(|| format!("reading CA certificate {}", path.display()))?;
        let cert = reqwest::Certificate::from_pem(&pem)
            .with_context(|| format!("{} is not a PEM certificate", path.display()))?;
        builder = builder.add_root_certificate(cert);
    }
    let client = builder.build().context("building the HTTP client")?;
    let mut delay = options.http_backoff;
    let mut last = anyhow!("no attempt made");
    for attempt in 1..=options.http_attempts.max(1) {
        match attempt_download(&client, url).await {
            Ok(body) => return Ok(body),
            Err((retry, err)) => {
                last = err;
                if !retry || attempt == options.http_attempts {
                    break;
                }
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
    }
    Err(last.context(format!("downloading {url}")))
}

/// One try; the flag says whether another try could help.
async fn attempt_download(
    client: &reqwest::Client,
    url: &str,
) -> Result<Vec<u8>, (bool, anyhow::Error)> {
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|e| (true, anyhow!(crate::oci::retry::error_chain_text(&e))))?;
    let status = response.status().as_u16();
    if status != 200 {
        return Err((retryable(status), anyhow!("the server answered {status}")));
    }
    if response
        .content_length()
        .is_some_and(|n| n > MAX_MODULE_SIZE)
    {
        return Err((
            false,
            anyhow!("the body is larger than {MAX_MODULE_SIZE} bytes (256 MiB)"),
        ));
    }
    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| (true, anyhow!(crate::oci::retry::error_chain_text(&e))))?;
        if (body.len() + chunk.len()) as u64 > MAX_MODULE_SIZE {
            return Err((
                false,
                anyhow!("the body is larger than {MAX_MODULE_SIZE} bytes (256 MiB)"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// gzip and tar unpacking, as istio-agent does for http(s) bodies: a tar yields its
/// `plugin.wasm` entry (or its only `.wasm` file).
pub fn unpack(body: Vec<u8>) -> Result<Vec<u8>> {
    let body = if body.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&body[..])
            .take(MAX_MODULE_SIZE + 1)
            .read_to_end(&mut out)
            .context("the body looks gzip-compressed but does not decompress")?;
        out
    } else {
        body
    };
    if body.len() > 262 && &body[257..262] == b"ustar" {
        let mut archive = tar::Archive::new(&body[..]);
        let mut wasm_files = Vec::new();
        for entry in archive.entries().context("reading the tar archive")? {
            let mut entry = entry.context("reading a tar entry")?;
            let path = entry.path().context("a tar entry's path")?.into_owned();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            if name == "plugin.wasm" || name.ends_with(".wasm") {
                let mut data = Vec::new();
                (&mut entry)
                    .take(MAX_MODULE_SIZE + 1)
                    .read_to_end(&mut data)
                    .context("reading a tar entry")?;
                if name == "plugin.wasm" {
                    return Ok(data);
                }
                wasm_files.push(data);
            }
        }
        return match wasm_files.len() {
            1 => Ok(wasm_files.remove(0)),
            n => bail!("the tar archive has no plugin.wasm and {n} other .wasm files"),
        };
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_classes_follow_istio() {
        assert!(retryable(500) && retryable(503) && retryable(504));
        assert!(!retryable(501) && !retryable(505) && !retryable(511) && !retryable(404));
    }

    #[test]
    fn gzip_and_tar_bodies_unpack_to_plugin_wasm() {
        let module = b"\0asm\x01\0\0\0".to_vec();
        let mut tar = tar::Builder::new(Vec::new());
        let mut header = tar::Header::new_ustar();
        header.set_size(module.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, "x/plugin.wasm", &module[..])
            .expect("tar entry");
        let tarball = tar.into_inner().expect("tar");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &tarball).expect("gzip");
        assert_eq!(unpack(gz.finish().expect("gzip")).expect("unpacks"), module);
        assert_eq!(unpack(module.clone()).expect("raw"), module);
    }
}
