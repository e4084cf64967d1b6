//! The module cache, keyed like istio-agent's: (URL without tag or digest, checksum), plus
//! the checksum each tagged URL last resolved to, which `IfNotPresent` reuses.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};

use crate::fsutil::write_atomic;

/// A cache directory (`--cache-dir`, default `~/.cache/weir/wasm`).
#[derive(Debug, Clone)]
pub struct ModuleCache {
    root: PathBuf,
}

/// `url` without its `:tag` or `@sha256:` suffix (for OCI references; http(s) and file
/// URLs are kept whole).
pub fn url_without_tag(url: &str) -> String {
    let Some(rest) = url.strip_prefix("oci://") else {
        return url.to_string();
    };
    let rest = rest.split_once('@').map_or(rest, |(name, _)| name);
    let last_slash = rest.rfind('/').unwrap_or(0);
    let rest = match rest[last_slash..].rfind(':') {
        Some(colon) => &rest[..last_slash + colon],
        None => rest,
    };
    format!("oci://{rest}")
}

/// `sha256:<hex>` or `<hex>` → `<hex>`, lower case.
pub fn bare_hex(checksum: &str) -> String {
    checksum
        .strip_prefix("sha256:")
        .unwrap_or(checksum)
        .to_ascii_lowercase()
}

impl ModuleCache {
    /// A cache in `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        ModuleCache { root: root.into() }
    }

    /// `$XDG_CACHE_HOME/weir/wasm` or `~/.cache/weir/wasm`.
    pub fn default_root() -> PathBuf {
        match std::env::var_os("XDG_CACHE_HOME") {
            Some(dir) => PathBuf::from(dir).join("weir/wasm"),
            None => std::env::var_os("HOME")
                .map(PathBuf::from)
                .unwrap_or_else(std::env::temp_dir)
                .join(".cache/weir/wasm"),
        }
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn entry(&self, url: &str, checksum: &str) -> PathBuf {
        let key = hex::encode(&Sha256::digest(url_without_tag(url).as_bytes())[..16]);
        self.root
            .join(key)
            .join(format!("{}.wasm", bare_hex(checksum)))
    }

    fn tags_file(&self) -> PathBuf {
        self.root.join("tags.json")
    }

    fn tags(&self) -> BTreeMap<String, String> {
        std::fs::read(self.tags_file())
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default()
    }

    /// The cached module for (`url` without tag, `checksum`), if present.
    pub fn get(&self, url: &str, checksum: &str) -> Option<PathBuf> {
        let path = self.entry(url, checksum);
        path.is_file().then_some(path)
    }

    /// The checksum `url` (with its tag) resolved to when last fetched.
    pub fn checksum_for_tag(&self, url: &str) -> Option<String> {
        self.tags().get(url).cloned()
    }

    /// Stores `module` under (`url` without tag, `checksum`) and remembers the tag.
    pub fn put(&self, url: &str, checksum: &str, module: &[u8]) -> Result<PathBuf> {
        let path = self.entry(url, checksum);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating cache directory {}", dir.display()))?;
        }
        write_atomic(&path, module)?;
        let mut tags = self.tags();
        tags.insert(url.to_string(), bare_hex(checksum));
        let text = serde_json::to_vec_pretty(&tags).context("serializing the tag index")?;
        write_atomic(&self.tags_file(), &text)?;
        Ok(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_drops_tag_and_digest_but_keeps_registry_port() {
        assert_eq!(
            url_without_tag("oci://127.0.0.1:5000/a/b:latest"),
            "oci://127.0.0.1:5000/a/b"
        );
        assert_eq!(
            url_without_tag("oci://127.0.0.1:5000/a/b@sha256:ab"),
            "oci://127.0.0.1:5000/a/b"
        );
        assert_eq!(
            url_without_tag("oci://127.0.0.1:5000/a/b"),
            "oci://127.0.0.1:5000/a/b"
        );
        assert_eq!(
            url_without_tag("https://h:443/x.wasm"),
            "https://h:443/x.wasm"
        );
    }
}
