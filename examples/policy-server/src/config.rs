//! The server's configuration file (YAML or JSON) and its defaults.
//!
//! Relative paths in the file are resolved against the file's own directory, so a config
//! and the ACL, keys and policies next to it can be moved together.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use serde::Deserialize;

use crate::algorithm::Algorithm;

/// Everything the server reads at start-up. See the README's config reference table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Path of the check endpoint.
    #[serde(default = "default_check_path")]
    pub check_path: String,
    /// How the user's JWT is verified.
    pub user_token: UserTokenConfig,
    /// ACL file (YAML or JSON): subjects and groups to functions and files.
    #[serde(default)]
    pub acl_file: Option<PathBuf>,
    /// Rego policy evaluated with regorus (needs the `rego` cargo feature).
    #[serde(default)]
    pub rego: Option<RegoConfig>,
    /// The token this server issues.
    pub issued_token: IssuedTokenConfig,
    /// Envoy's `ext_authz` filter (HTTP service) as a second front end; off when unset.
    #[serde(default)]
    pub ext_authz: Option<crate::ext_authz::ExtAuthzConfig>,
    /// Envoy's ext_authz gRPC service (`Authorization/Check`) on the same listener; off
    /// when unset.
    #[serde(default)]
    pub ext_authz_grpc: Option<crate::ext_authz_grpc::ExtAuthzGrpcConfig>,
}

/// Verification of the incoming user JWT (from the identity provider).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserTokenConfig {
    /// Accepted `iss` values (at least one).
    pub issuers: Vec<String>,
    /// Accepted `aud` values; a token must name at least one of them.
    pub audiences: Vec<String>,
    /// JWKS file of the identity provider. Exactly one of `jwks_file` and `jwks_url`.
    #[serde(default)]
    pub jwks_file: Option<PathBuf>,
    /// JWKS URL of the identity provider, fetched and cached.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// Seconds after which cached remote keys are fetched again.
    #[serde(default = "default_jwks_refresh")]
    pub jwks_refresh_seconds: u64,
    /// Least seconds between two fetches caused by an unknown `kid` (rate limit).
    #[serde(default = "default_jwks_min_refetch")]
    pub jwks_min_refetch_seconds: u64,
    /// Timeout of one JWKS fetch, in milliseconds.
    #[serde(default = "default_jwks_timeout")]
    pub jwks_fetch_timeout_ms: u64,
    /// Longest a request with an unknown `kid` waits for the JWKS fetch, in milliseconds;
    /// the fetch goes on after that (up to `jwks_fetch_timeout_ms`) and fills the cache.
    #[serde(default = "default_jwks_kid_miss_wait")]
    pub jwks_kid_miss_wait_ms: u64,
    /// Accepted `alg` values. `none` is never accepted; HS* only with `hmac_secret_file`.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<Algorithm>,
    /// Shared secret for HS256/384/512 tokens (only read when an HS* algorithm is listed).
    #[serde(default)]
    pub hmac_secret_file: Option<PathBuf>,
    /// Clock skew allowed on `exp`, `nbf` and `iat`, in seconds.
    #[serde(default = "default_clock_skew")]
    pub clock_skew_seconds: u64,
    /// Longest accepted token, in bytes.
    #[serde(default = "default_max_token_bytes")]
    pub max_token_bytes: usize,
    /// Claim holding the user's groups: a name, or a dotted path into nested objects.
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
}

/// A Rego policy producing grants.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegoConfig {
    /// `.rego` files to load.
    pub policies: Vec<PathBuf>,
    /// Optional JSON or YAML file loaded as `data`.
    #[serde(default)]
    pub data_file: Option<PathBuf>,
    /// Rule evaluated per request; must give `{functions: [..], files: [..]}`.
    #[serde(default = "default_rego_rule")]
    pub rule: String,
    /// Longest a single evaluation may run, in milliseconds; past it the request gets 500.
    #[serde(default = "default_rego_timeout")]
    pub timeout_ms: u64,
}

/// The signed token returned on 200.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IssuedTokenConfig {
    /// Private key (PKCS#8 PEM) the server signs with; see `--generate-key`.
    pub signing_key: PathBuf,
    /// Signing algorithm: `ES256` or `EdDSA`; must match the key. Default: the key's own
    /// (`--generate-key` writes Ed25519 keys unless told otherwise: EdDSA tokens cost
    /// check-header about a quarter of what ES256 ones do to verify).
    #[serde(default)]
    pub algorithm: Option<Algorithm>,
    /// Extra public (or private) key PEMs published in the JWKS, e.g. the previous key
    /// during a rotation.
    #[serde(default)]
    pub extra_public_keys: Vec<PathBuf>,
    /// `iss` of issued tokens.
    #[serde(default = "default_issued_issuer")]
    pub issuer: String,
    /// `aud` of issued tokens.
    #[serde(default = "default_issued_audience")]
    pub audience: String,
    /// Lifetime of issued tokens, in seconds.
    #[serde(default = "default_ttl")]
    pub ttl_seconds: u64,
    /// Seconds a grant may be reused for an identical check (`Cache-Control: private,
    /// max-age=N` on the 200); 0, the default, sends `no-store`: a grant per request.
    #[serde(default)]
    pub reuse_seconds: u64,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8181))
}
fn default_check_path() -> String {
    "/check".into()
}
fn default_jwks_refresh() -> u64 {
    300
}
fn default_jwks_min_refetch() -> u64 {
    30
}
fn default_jwks_timeout() -> u64 {
    5000
}
fn default_jwks_kid_miss_wait() -> u64 {
    1000
}
fn default_algorithms() -> Vec<Algorithm> {
    Algorithm::ASYMMETRIC.to_vec()
}
fn default_clock_skew() -> u64 {
    60
}
fn default_max_token_bytes() -> usize {
    8192
}
fn default_groups_claim() -> String {
    "groups".into()
}
fn default_rego_rule() -> String {
    "data.weir.grants".into()
}
fn default_rego_timeout() -> u64 {
    100
}
fn default_issued_issuer() -> String {
    "weir-policy-server".into()
}
fn default_issued_audience() -> String {
    "check-header".into()
}
fn default_ttl() -> u64 {
    60
}

impl Config {
    /// Reads a YAML (`.yaml`/`.yml`) or JSON file, resolves relative paths against its
    /// directory and validates it.
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        let mut config: Config = parse_yaml_or_json(path, &text)
            .with_context(|| format!("parsing config file {}", path.display()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve_paths(base);
        config.validate()?;
        Ok(config)
    }

    fn resolve_paths(&mut self, base: &Path) {
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        self.acl_file.iter_mut().for_each(resolve);
        self.user_token.jwks_file.iter_mut().for_each(resolve);
        self.user_token
            .hmac_secret_file
            .iter_mut()
            .for_each(resolve);
        if let Some(rego) = &mut self.rego {
            rego.policies.iter_mut().for_each(resolve);
            rego.data_file.iter_mut().for_each(resolve);
        }
        resolve(&mut self.issued_token.signing_key);
        self.issued_token
            .extra_public_keys
            .iter_mut()
            .for_each(resolve);
    }

    /// Checks the rules the types cannot express; the errors say what to change.
    pub fn validate(&self) -> Result<()> {
        let path = &self.check_path;
        ensure!(
            path.starts_with('/') && !path.contains(['{', '}', '*', '?', '#']),
            "check_path must be a plain path starting with '/' (no {{, }}, *, ?, #), got {path:?}"
        );
        ensure!(
            path != crate::server::JWKS_PATH && path != crate::server::HEALTH_PATH,
            "check_path {path:?} collides with a built-in route"
        );
        if let Some(ext_authz) = &self.ext_authz {
            ext_authz.validate(path)?;
        }
        if let Some(grpc) = &self.ext_authz_grpc {
            grpc.validate()?;
        }
        let user = &self.user_token;
        ensure!(
            !user.issuers.is_empty(),
            "user_token.issuers: name at least one issuer"
        );
        ensure!(
            !user.audiences.is_empty(),
            "user_token.audiences: name at least one audience"
        );
        match (&user.jwks_file, &user.jwks_url) {
            (Some(_), Some(_)) => bail!("user_token: set jwks_file or jwks_url, not both"),
            (None, None) => bail!("user_token: set jwks_file or jwks_url"),
            (None, Some(url)) => ensure!(
                url.starts_with("https://") || url.starts_with("http://"),
                "user_token.jwks_url must be an http(s) URL, got {url:?}"
            ),
            (Some(_), None) => {}
        }
        ensure!(
            !user.algorithms.is_empty(),
            "user_token.algorithms: name at least one algorithm"
        );
        let wants_hmac = user.algorithms.iter().any(|a| a.is_hmac());
        ensure!(
            wants_hmac == user.hmac_secret_file.is_some(),
            "user_token: HS256/HS384/HS512 in `algorithms` and `hmac_secret_file` go together \
             (a shared secret must be configured explicitly; JWKS keys are never used as HMAC secrets)"
        );
        ensure!(
            user.max_token_bytes > 0,
            "user_token.max_token_bytes must be positive"
        );
        // Periods end up added to clock readings: a huge one would overflow (a panic) there.
        let rego_timeout = self.rego.as_ref().map_or(100, |r| r.timeout_ms);
        for (field, value, range) in [
            (
                "user_token.jwks_refresh_seconds",
                user.jwks_refresh_seconds,
                1..=86_400,
            ),
            (
                "user_token.jwks_min_refetch_seconds",
                user.jwks_min_refetch_seconds,
                0..=86_400,
            ),
            (
                "user_token.jwks_fetch_timeout_ms",
                user.jwks_fetch_timeout_ms,
                1..=60_000,
            ),
            (
                "user_token.jwks_kid_miss_wait_ms",
                user.jwks_kid_miss_wait_ms,
                1..=60_000,
            ),
            (
                "user_token.clock_skew_seconds",
                user.clock_skew_seconds,
                0..=600,
            ),
            ("rego.timeout_ms", rego_timeout, 1..=60_000),
        ] {
            ensure!(
                range.contains(&value),
                "{field} must be between {} and {}, got {value}",
                range.start(),
                range.end()
            );
        }
        ensure!(
            self.acl_file.is_some() || self.rego.is_some(),
            "set acl_file, rego, or both: without them nobody gets any grant"
        );
        if self.rego.is_some() && !cfg!(feature = "rego") {
            bail!("`rego` is configured but this build has no Rego support: rebuild with the `rego` cargo feature (on by default; was it built with --no-default-features?)");
        }
        let issued = &self.issued_token;
        if let Some(algorithm) = issued.algorithm {
            ensure!(
                matches!(algorithm, Algorithm::ES256 | Algorithm::EdDSA),
                "issued_token.algorithm must be ES256 or EdDSA, got {algorithm}"
            );
        }
        ensure!(
            (1..=3600).contains(&issued.ttl_seconds),
            "issued_token.ttl_seconds must be 1..=3600 (these tokens are meant to be short-lived)"
        );
        ensure!(
            issued.reuse_seconds <= issued.ttl_seconds,
            "issued_token.reuse_seconds must be between 0 and ttl_seconds ({}), got {}",
            issued.ttl_seconds,
            issued.reuse_seconds
        );
        Ok(())
    }
}

/// Parses `text` as JSON when the file name ends in `.json`, as YAML otherwise.
pub(crate) fn parse_yaml_or_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    text: &str,
) -> Result<T> {
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
    {
        Ok(serde_json::from_str(text)?)
    } else {
        Ok(serde_yaml_ng::from_str(text)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_check_path(path: &str) -> Result<Config> {
        let text = format!(
            "check_path: {path:?}\nacl_file: acl.yaml\n\
             user_token: {{issuers: [i], audiences: [a], jwks_file: j.json}}\n\
             issued_token: {{signing_key: k.pem}}\n"
        );
        let config: Config = serde_yaml_ng::from_str(&text)?;
        config.validate()?;
        Ok(config)
    }

    #[test]
    fn periods_are_bounded_and_the_error_names_the_field() {
        for field in [
            "jwks_refresh_seconds",
            "jwks_min_refetch_seconds",
            "jwks_fetch_timeout_ms",
            "jwks_kid_miss_wait_ms",
            "clock_skew_seconds",
        ] {
            let text = format!(
                "acl_file: acl.yaml\n\
                 user_token: {{issuers: [i], audiences: [a], jwks_file: j.json, {field}: {}}}\n\
                 issued_token: {{signing_key: k.pem}}\n",
                u64::MAX
            );
            let config: Config = serde_yaml_ng::from_str(&text).unwrap();
            let err = config.validate().unwrap_err().to_string();
            assert!(
                err.contains(&format!("user_token.{field} must be between")),
                "{err}"
            );
        }
        let text = "acl_file: acl.yaml\n\
                    user_token: {issuers: [i], audiences: [a], jwks_file: j.json}\n\
                    rego: {policies: [p.rego], timeout_ms: 0}\n\
                    issued_token: {signing_key: k.pem}\n";
        let config: Config = serde_yaml_ng::from_str(text).unwrap();
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("rego.timeout_ms must be between 1"), "{err}");
    }

    #[test]
    fn check_path_must_be_plain_and_not_shadow_built_in_routes() {
        assert!(with_check_path("/authz/check").is_ok());
        for bad in [
            "check",
            "/{id}",
            "/x/*rest",
            "/healthz",
            "/.well-known/jwks.json",
            "/a?b",
        ] {
            assert!(with_check_path(bad).is_err(), "{bad} should be refused");
        }
    }
}
