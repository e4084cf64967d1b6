//! Registry credentials: explicit user/password, a docker config file, or the
//! `kubernetes.io/dockerconfigjson` Secret a WasmPlugin's `imagePullSecret` names.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use base64::Engine;
use serde::Deserialize;

/// Username and password for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// User name.
    pub username: String,
    /// Password or token.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The `config.json` format shared by docker, podman and Kubernetes pull secrets.
#[derive(Debug, Default, Deserialize)]
pub struct DockerConfig {
    /// Registry host (sometimes a URL) → entry.
    #[serde(default)]
    pub auths: BTreeMap<String, DockerAuthEntry>,
}

/// One entry of [`DockerConfig::auths`].
#[derive(Debug, Default, Deserialize)]
pub struct DockerAuthEntry {
    /// base64 of `user:password`.
    #[serde(default)]
    pub auth: Option<String>,
    /// Plain user name, used when `auth` is absent.
    #[serde(default)]
    pub username: Option<String>,
    /// Plain password, used when `auth` is absent.
    #[serde(default)]
    pub password: Option<String>,
}

impl DockerConfig {
    /// Parses `config.json` text.
    pub fn parse(text: &str) -> Result<Self> {
        serde_json::from_str(text).context("not a docker config.json (expected {\"auths\": {…}})")
    }

    /// Credentials for `registry` (`host[:port]`), trying the URL forms docker writes too.
    pub fn lookup(&self, registry: &str) -> Result<Option<Credentials>> {
        let entry = self
            .auths
            .iter()
            .find(|(key, _)| normalize_host(key) == registry);
        let Some((key, entry)) = entry else {
            return Ok(None);
        };
        if let Some(auth) = &entry.auth {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .with_context(|| format!("the `auth` of {key} is not base64"))?;
            let text = String::from_utf8(decoded)
                .with_context(|| format!("the `auth` of {key} is not UTF-8"))?;
            let Some((user, pass)) = text.split_once(':') else {
                bail!("the `auth` of {key} does not decode to user:password");
            };
            return Ok(Some(Credentials {
                username: user.into(),
                password: pass.into(),
            }));
        }
        match (&entry.username, &entry.password) {
            (Some(u), Some(p)) => Ok(Some(Credentials {
                username: u.clone(),
                password: p.clone(),
            })),
            _ => Ok(None),
        }
    }
}

/// `https://host:5000/v1/` → `host:5000`.
fn normalize_host(key: &str) -> &str {
    let rest = key.split_once("://").map_or(key, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}

/// The default docker config path: `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub fn default_docker_config_path() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("DOCKER_CONFIG") {
        return Some(PathBuf::from(dir).join("config.json"));
    }
    std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker").join("config.json"))
}

/// Reads a docker config file; a missing file means no stored credentials.
pub fn read_docker_config(path: &Path) -> Result<Option<DockerConfig>> {
    match std::fs::read_to_string(path) {
        Ok(text) => DockerConfig::parse(&text)
            .with_context(|| format!("reading docker config {}", path.display()))
            .map(Some),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading docker config {}", path.display())),
    }
}

#[derive(Debug, Deserialize)]
struct SecretDoc {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    data: BTreeMap<String, String>,
    #[serde(default, rename = "stringData")]
    string_data: BTreeMap<String, String>,
}

/// Reads the docker config inside a `kubernetes.io/dockerconfigjson` Secret (YAML or JSON).
pub fn read_pull_secret(path: &Path) -> Result<DockerConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading pull secret {}", path.display()))?;
    parse_pull_secret(&text).with_context(|| format!("reading pull secret {}", path.display()))
}

/// Parses a `kubernetes.io/dockerconfigjson` Secret document.
pub fn parse_pull_secret(text: &str) -> Result<DockerConfig> {
    let doc: SecretDoc = serde_yaml_ng::from_str(text).context("not a Kubernetes Secret")?;
    if let Some(kind) = &doc.kind {
        if kind != "kubernetes.io/dockerconfigjson" {
            bail!("Secret type is {kind}; Istio's imagePullSecret needs kubernetes.io/dockerconfigjson");
        }
    }
    let json = if let Some(encoded) = doc.data.get(".dockerconfigjson") {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .context("data[.dockerconfigjson] is not base64")?;
        String::from_utf8(bytes).context("data[.dockerconfigjson] is not UTF-8")?
    } else if let Some(plain) = doc.string_data.get(".dockerconfigjson") {
        plain.clone()
    } else {
        bail!("the Secret has no .dockerconfigjson key in data or stringData");
    };
    DockerConfig::parse(&json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_lookup_by_host_ignores_scheme_and_path() {
        let config = r#"{"auths":{"https://reg.example:5000/v1/":{"auth":"dXNlcjpwYXNz"}}}"#;
        let b64 = base64::engine::general_purpose::STANDARD.encode(config);
        let secret = format!(
            "apiVersion: v1\nkind: Secret\ntype: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: {b64}\n"
        );
        let parsed = parse_pull_secret(&secret).expect("secret parses");
        let creds = parsed
            .lookup("reg.example:5000")
            .expect("lookup")
            .expect("found");
        assert_eq!(
            (creds.username.as_str(), creds.password.as_str()),
            ("user", "pass")
        );
        assert!(parsed.lookup("other:5000").expect("lookup").is_none());
    }

    #[test]
    fn opaque_secret_is_refused() {
        let err = parse_pull_secret("type: Opaque\ndata: {}\n").expect_err("must fail");
        assert!(
            err.to_string().contains("kubernetes.io/dockerconfigjson"),
            "{err}"
        );
    }
}
