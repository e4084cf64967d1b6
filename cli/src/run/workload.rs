//! The workload `weir run` plays: what istiod knows about the proxy a WasmPlugin may select.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::UserError;

/// Which kind of proxy listener the run stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// A sidecar's inbound listener: `match.mode: SERVER` applies.
    Inbound,
    /// A sidecar's outbound listener: `match.mode: CLIENT` applies.
    Outbound,
    /// A gateway: `match.mode: CLIENT` applies (Istio treats gateways as clients).
    Gateway,
}

impl Direction {
    /// Whether a `match.mode` value selects this traffic (unset = CLIENT_AND_SERVER).
    pub fn matches_mode(self, mode: Option<&str>) -> bool {
        match mode {
            None | Some("UNDEFINED") | Some("CLIENT_AND_SERVER") => true,
            Some("SERVER") => self == Direction::Inbound,
            Some("CLIENT") => self != Direction::Inbound,
            Some(_) => false,
        }
    }

    /// Lower-case name, as written in the workload file.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inbound => "inbound",
            Self::Outbound => "outbound",
            Self::Gateway => "gateway",
        }
    }
}

/// A RequestAuthentication-like rule: becomes `jwt_authn` (tokens are optional, invalid
/// ones are rejected with 401, as with Istio's RequestAuthentication).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwtRule {
    /// Expected `iss`.
    pub issuer: String,
    /// JWKS JSON, inline.
    #[serde(default)]
    pub jwks: Option<String>,
    /// JWKS JSON in a file (relative to the workload file).
    #[serde(default, rename = "jwksFile")]
    pub jwks_file: Option<String>,
    /// Keep the token in the request for later filters (Istio's `forwardOriginalToken`).
    #[serde(default, rename = "forwardOriginalToken")]
    pub forward_original_token: bool,
}

/// An AuthorizationPolicy-like rule: becomes `rbac`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthzRule {
    /// `ALLOW` or `DENY`.
    pub action: String,
    /// Request paths the rule is about; `/x*` is a prefix. Empty = any path.
    #[serde(default)]
    pub paths: Vec<String>,
    /// Request headers that must all match exactly. Empty = any headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

/// The workload description (`--workload FILE`); every field has a default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Workload {
    /// The workload's namespace.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Pod labels WasmPlugin selectors are matched against.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Istio's config root namespace: selector-less plugins there apply everywhere.
    #[serde(default = "default_root_namespace")]
    pub root_namespace: String,
    /// Inbound (SERVER), outbound (CLIENT) or gateway.
    #[serde(default = "default_direction")]
    pub direction: Direction,
    /// The listener port `match.ports` is compared with (the service or target port);
    /// `weir run` listens on `--listen`, whatever this says.
    #[serde(default = "default_port")]
    pub port: u32,
    /// Gateway name, for plugins that select a Gateway by `targetRefs`.
    #[serde(default)]
    pub gateway_name: Option<String>,
    /// RequestAuthentication-like rule.
    #[serde(default)]
    pub jwt: Option<JwtRule>,
    /// AuthorizationPolicy-like rule.
    #[serde(default)]
    pub authorization: Option<AuthzRule>,
}

fn default_namespace() -> String {
    "default".into()
}
fn default_root_namespace() -> String {
    "istio-system".into()
}
fn default_direction() -> Direction {
    Direction::Inbound
}
fn default_port() -> u32 {
    8080
}

impl Default for Workload {
    fn default() -> Self {
        serde_yaml_ng::from_str("{}").unwrap_or_else(|_| unreachable!("every field has a default"))
    }
}

impl Workload {
    /// Reads a workload file; a missing `jwksFile` is resolved against its directory.
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading workload {}", path.display()))?;
        let mut workload: Workload = serde_yaml_ng::from_str(&text)
            .map_err(|e| UserError(format!("workload {}: {e}", path.display())))?;
        if let Some(jwt) = &mut workload.jwt {
            if let Some(file) = &jwt.jwks_file {
                let file = path.parent().unwrap_or(Path::new(".")).join(file);
                jwt.jwks = Some(
                    std::fs::read_to_string(&file)
                        .with_context(|| format!("reading JWKS {}", file.display()))?,
                );
            }
            if jwt.jwks.is_none() {
                return Err(UserError(format!(
                    "workload {}: jwt needs jwks or jwksFile",
                    path.display()
                ))
                .into());
            }
        }
        if let Some(authz) = &workload.authorization {
            if !matches!(authz.action.as_str(), "ALLOW" | "DENY") {
                return Err(UserError(format!(
                    "workload {}: authorization.action must be ALLOW or DENY",
                    path.display()
                ))
                .into());
            }
        }
        Ok(workload)
    }

    /// The `jwt_authn` HTTP filter for the RequestAuthentication-like rule, if any.
    pub fn jwt_authn_filter(&self) -> Option<Value> {
        let jwt = self.jwt.as_ref()?;
        let provider = json!({
            "issuer": jwt.issuer,
            "local_jwks": {"inline_string": jwt.jwks.clone().unwrap_or_default()},
            "forward": jwt.forward_original_token,
            "payload_in_metadata": jwt.issuer,
        });
        Some(json!({
            "name": "envoy.filters.http.jwt_authn",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
                "providers": {"origins-0": provider},
                "rules": [{"match": {"prefix": "/"}, "requires": {"requires_any": {"requirements": [
                    {"provider_name": "origins-0"}, {"allow_missing": {}},
                ]}}}],
            },
        }))
    }

    /// The HTTP `rbac` filter for the AuthorizationPolicy-like rule, if any.
    pub fn rbac_filter(&self) -> Option<Value> {
        let authz = self.authorization.as_ref()?;
        let mut conditions: Vec<Value> = Vec::new();
        if !authz.paths.is_empty() {
            let paths = authz.paths.iter().map(|p| match p.strip_suffix('*') {
                Some(prefix) => json!({"url_path": {"path": {"prefix": prefix}}}),
                None => json!({"url_path": {"path": {"exact": p}}}),
            });
            conditions.push(json!({"or_rules": {"rules": paths.collect::<Vec<_>>()}}));
        }
        for (name, value) in &authz.headers {
            conditions.push(json!({"header": {"name": name, "string_match": {"exact": value}}}));
        }
        let permission = if conditions.is_empty() {
            json!({"any": true})
        } else {
            json!({"and_rules": {"rules": conditions}})
        };
        Some(json!({
            "name": "envoy.filters.http.rbac",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC",
                "rules": {"action": authz.action, "policies": {"weir-authorization": {
                    "permissions": [permission], "principals": [{"any": true}],
                }}},
            },
        }))
    }
}
