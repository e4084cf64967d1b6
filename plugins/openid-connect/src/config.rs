//! openid-connect's configuration: the seed's keys (`openid_server`, `openid_realm`) plus the
//! relying-party options. Secrets come from VM environment variables (`vmConfig.env`), read
//! in [`Validate::validate`] (never while the JSON is read), so they never sit in
//! `pluginConfig`; a missing or malformed secret is a configuration error that Envoy reports
//! at load time, naming the `*_env` field, not a per-request failure.

use serde::{Deserialize, Deserializer};
use std::time::Duration;
use weir::config::{ConfigError, Validate};
use weir::http::path::{check_rule, under};
use weir::HeaderName;

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// HTTP Basic with the form-encoded client id and secret (RFC 6749 §2.3.1).
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
}

/// Which token goes upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ForwardToken {
    /// The validated ID token (what the seed's Istio authn step verifies).
    IdToken,
    /// The access token, as the provider issued it (opaque to the plugin).
    AccessToken,
}

/// `SameSite` attribute of the plugin's cookies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SameSite {
    /// Sent on top-level navigations from other sites: needed for the provider's redirect back.
    Lax,
    /// Never sent cross-site. The login cookie stays `Lax` regardless, or the callback breaks.
    Strict,
}

/// The plugin configuration (`pluginConfig`). Fields without a JSON key (`#[serde(skip)]`)
/// are resolved by [`Validate::validate`] at configure time: the secrets from the VM
/// environment, the discovery and callback paths, the scope.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Envoy cluster of the provider (the seed's `openid_server`).
    #[serde(rename = "openid_server")]
    pub cluster: String,
    #[serde(default)]
    openid_realm: Option<String>,
    /// Expected issuer; `None`: taken from discovery, which must end in `/realms/<realm>`.
    #[serde(default)]
    pub issuer: Option<String>,
    /// Required issuer path suffix when no issuer is configured.
    #[serde(skip)]
    pub realm_suffix: Option<String>,
    #[serde(rename = "discovery_path", default)]
    discovery_path_setting: Option<String>,
    /// Path of the discovery document on `cluster`.
    #[serde(skip)]
    pub discovery_path: String,
    /// `:authority` for calls to the provider (its issuer's host by default).
    #[serde(default)]
    pub provider_authority: Option<String>,
    /// The registered client id.
    pub client_id: String,
    #[serde(default = "default_secret_env")]
    client_secret_env: String,
    /// The client secret, read from the environment at configure time.
    #[serde(skip)]
    pub client_secret: String,
    /// Token endpoint authentication.
    #[serde(default = "default_client_auth")]
    pub client_auth: ClientAuth,
    #[serde(default = "default_scopes")]
    scopes: Vec<String>,
    /// Space-separated scopes, always including `openid`.
    #[serde(skip)]
    pub scope: String,
    /// The redirect URI when configured; otherwise it is built from the request's host,
    /// which must be in `allowed_hosts`.
    #[serde(default)]
    pub redirect_uri: Option<String>,
    /// Hosts (`host` for any port, or `host:port`) a redirect URI may be built for.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    #[serde(rename = "redirect_path", default)]
    redirect_path_setting: Option<String>,
    /// Callback path registered at the provider (the path of `redirect_uri` when set).
    #[serde(skip)]
    pub redirect_path: String,
    /// Path that signs the user out.
    #[serde(default = "default_logout_path")]
    pub logout_path: String,
    /// Where the provider (or the plugin) sends the browser after logout.
    #[serde(default)]
    pub post_logout_redirect: Option<String>,
    /// Paths served without a session.
    #[serde(default)]
    pub pass_through_exact: Vec<String>,
    /// Path prefixes served without a session.
    #[serde(default)]
    pub pass_through_prefixes: Vec<String>,
    /// Cookie name prefix (`__Host-oidc` → `__Host-oidc-session`, `__Host-oidc-login`).
    #[serde(default = "default_cookie_prefix")]
    pub cookie_prefix: String,
    #[serde(default)]
    allow_insecure_cookie_prefix: bool,
    /// `SameSite` of the session cookie.
    #[serde(rename = "cookie_same_site", default = "default_same_site")]
    pub same_site: SameSite,
    // Durations are bounded at configure (a year at most for the long ones): a huge value
    // would overflow when added to a Unix time.
    /// How long a session lasts, whatever the tokens say.
    #[serde(
        rename = "session_lifetime_seconds",
        default = "default_session_lifetime",
        deserialize_with = "weir::config::bounded::<_, 1, 31536000>"
    )]
    pub session_lifetime: u64,
    /// How long a login may take (the login cookie's lifetime).
    #[serde(
        rename = "login_timeout_seconds",
        default = "default_login_timeout",
        deserialize_with = "weir::config::bounded::<_, 1, 86400>"
    )]
    pub login_timeout: u64,
    #[serde(default = "default_key_env")]
    session_key_env: String,
    /// AES-256-GCM key for the cookies, read from the environment at configure time.
    #[serde(skip)]
    pub session_key: [u8; 32],
    /// Token forwarded upstream.
    #[serde(default = "default_forward_token")]
    pub forward_token: ForwardToken,
    /// Header it goes in, as `Bearer <token>`.
    #[serde(default = "default_forward_header")]
    pub forward_header: HeaderName,
    /// ID token algorithm allow-list.
    #[serde(default = "default_algorithms")]
    pub algorithms: Vec<String>,
    /// Tolerance on `exp`, `nbf`, `iat`.
    #[serde(
        rename = "clock_skew_seconds",
        default = "default_skew",
        deserialize_with = "weir::config::bounded::<_, 0, 3600>"
    )]
    pub clock_skew: u64,
    /// Refresh this long before the ID token expires.
    #[serde(
        rename = "refresh_before_seconds",
        default = "default_refresh_before",
        deserialize_with = "weir::config::bounded::<_, 0, 31536000>"
    )]
    pub refresh_before: u64,
    /// Re-read discovery and JWKS after this long.
    #[serde(
        rename = "provider_refresh_seconds",
        default = "default_provider_refresh",
        deserialize_with = "weir::config::bounded::<_, 1, 31536000>"
    )]
    pub provider_refresh: u64,
    /// At most one JWKS fetch for an unknown `kid` per this many seconds.
    #[serde(
        rename = "jwks_min_refetch_seconds",
        default = "default_jwks_min_interval",
        deserialize_with = "weir::config::bounded::<_, 0, 31536000>"
    )]
    pub jwks_min_refetch: u64,
    /// Timeout of each call to the provider.
    #[serde(
        rename = "timeout_ms",
        default = "default_timeout",
        deserialize_with = "timeout_ms"
    )]
    pub timeout: Duration,
    /// `Retry-After` while the provider is unknown.
    #[serde(
        rename = "retry_after_seconds",
        default = "default_retry_after",
        deserialize_with = "weir::config::bounded::<_, 0, 3600>"
    )]
    pub retry_after: u64,
}

impl Config {
    /// Name of the cookie holding the session (chunk 0; further chunks get `-1`, `-2`, …).
    pub fn session_cookie(&self) -> String {
        format!("{}-session", self.cookie_prefix)
    }

    /// Name of the short-lived cookie holding a login in progress.
    pub fn login_cookie(&self) -> String {
        format!("{}-login", self.cookie_prefix)
    }

    /// Whether requests to `path` (normalized with [`weir::http::path::normalize`]) skip
    /// authentication. A path that does not normalize never does.
    pub fn passes_through(&self, path: Option<&str>) -> bool {
        path.is_some_and(|path| {
            self.pass_through_exact.iter().any(|p| p == path)
                || self.pass_through_prefixes.iter().any(|p| under(path, p))
        })
    }

    /// Whether `authority` (a request's `:authority`) may have a redirect URI built for it:
    /// an `allowed_hosts` entry with a port must match exactly, one without matches the
    /// host with any port. Case-insensitive.
    pub fn host_allowed(&self, authority: &str) -> bool {
        let host = host_of(authority);
        let any_port = |allowed: &str| host_of(allowed) == allowed;
        self.allowed_hosts.iter().any(|a| {
            a.eq_ignore_ascii_case(authority) || any_port(a) && a.eq_ignore_ascii_case(host)
        })
    }
}

impl Validate for Config {
    /// Reads the secrets from the VM environment and resolves the paths and the scope; the
    /// checks that span fields or look inside a value.
    fn validate(&mut self) -> Result<(), ConfigError> {
        self.client_secret = weir::env_var(&self.client_secret_env)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                ConfigError::at(
                    "client_secret_env",
                    format!("set the VM environment variable {} (vmConfig.env) to the client secret, or name another here", self.client_secret_env),
                )
            })?;
        let key_text = weir::env_var(&self.session_key_env).ok_or_else(|| {
            ConfigError::at(
                "session_key_env",
                format!("set the VM environment variable {} to the session key: 32 random bytes, hex (64 characters) or base64url", self.session_key_env),
            )
        })?;
        self.session_key = crate::crypto::parse_key(key_text.trim()).ok_or_else(|| {
            ConfigError::at(
                "session_key_env",
                format!(
                    "the session key in {}: expected 32 bytes as 64 hex characters or base64url",
                    self.session_key_env
                ),
            )
        })?;
        self.realm_suffix = self.openid_realm.as_ref().map(|r| format!("/realms/{r}"));
        self.discovery_path =
            match (
                &self.discovery_path_setting,
                &self.issuer,
                &self.realm_suffix,
            ) {
                (Some(p), _, _) => p.clone(),
                (None, Some(iss), _) => format!(
                    "{}/.well-known/openid-configuration",
                    url_path(iss).trim_end_matches('/')
                ),
                (None, None, Some(suffix)) => format!("{suffix}/.well-known/openid-configuration"),
                (None, None, None) => return Err(ConfigError::at(
                    ".",
                    "set issuer, discovery_path or openid_realm so the provider can be discovered",
                )),
            };
        if !self.discovery_path.starts_with('/') {
            return Err(ConfigError::at(
                "discovery_path",
                format!(
                    "must be a path starting with '/', got {:?}",
                    self.discovery_path
                ),
            ));
        }
        self.redirect_path = match (&self.redirect_uri, self.redirect_path_setting.take()) {
            (Some(uri), given) => {
                let scheme_ok = uri.starts_with("https://") || uri.starts_with("http://");
                if !scheme_ok || url_authority(uri).is_empty() || uri.contains(['?', '#']) {
                    return Err(ConfigError::at("redirect_uri", format!("must be an absolute http(s) URL without query, got {uri:?}")));
                }
                let path = url_path(uri).to_string();
                if given.as_ref().is_some_and(|g| *g != path) {
                    return Err(ConfigError::at("redirect_path", format!("{given:?} differs from the path of redirect_uri {uri:?}: set only redirect_uri")));
                }
                path
            }
            (None, _) if self.allowed_hosts.is_empty() => {
                return Err(ConfigError::at("allowed_hosts", "set redirect_uri, or allowed_hosts (the hosts a redirect URI may be built for); a client's Host header is never trusted alone"))
            }
            (None, given) => given.unwrap_or_else(default_redirect_path),
        };
        if let Some(i) = self
            .allowed_hosts
            .iter()
            .position(|h| h.is_empty() || h.contains(['/', '*', ' ', '@']))
        {
            return Err(ConfigError::at(
                format!("allowed_hosts[{i}]"),
                "must be a host name or a host:port pair, without scheme, path or wildcards",
            ));
        }
        for (name, path) in [
            ("redirect_path", &self.redirect_path),
            ("logout_path", &self.logout_path),
        ] {
            check_rule(path).map_err(|e| ConfigError::at(name, e))?;
        }
        for (name, rules) in [
            ("pass_through_exact", &self.pass_through_exact),
            ("pass_through_prefixes", &self.pass_through_prefixes),
        ] {
            for (i, rule) in rules.iter().enumerate() {
                check_rule(rule).map_err(|e| ConfigError::at(format!("{name}[{i}]"), e))?;
            }
        }
        if !self
            .cookie_prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            || self.cookie_prefix.is_empty()
        {
            return Err(ConfigError::at(
                "cookie_prefix",
                "may only hold letters, digits, '-' and '_'",
            ));
        }
        if !self.cookie_prefix.starts_with("__Host-") && !self.allow_insecure_cookie_prefix {
            return Err(ConfigError::at("cookie_prefix", format!(
                "{:?} must start with __Host- (cookies a sibling domain or plain HTTP cannot set); set allow_insecure_cookie_prefix to accept it",
                self.cookie_prefix
            )));
        }
        if self.algorithms.is_empty()
            || self
                .algorithms
                .iter()
                .any(|a| a.eq_ignore_ascii_case("none") || a.starts_with("HS"))
        {
            return Err(ConfigError::at("algorithms", "must list public-key algorithms (RS256, ES256, …); none and HS* are never accepted"));
        }
        if !self.scopes.iter().any(|s| s == "openid") {
            self.scopes.insert(0, "openid".into());
        }
        self.scope = self.scopes.join(" ");
        Ok(())
    }
}

/// The path part of an absolute URL (`https://h:1/a/b?q` → `/a/b`); `/` when it has none.
pub fn url_path(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest.find('/').map_or("/", |i| &rest[i..]);
    path.split(['?', '#']).next().unwrap_or("/")
}

/// The host of an authority (`h:1` → `h`, `[::1]:8` → `[::1]`).
pub fn host_of(authority: &str) -> &str {
    match authority.rfind(':') {
        Some(i) if !authority[i..].contains(']') => &authority[..i],
        _ => authority,
    }
}

/// The authority part of an absolute URL (`https://h:1/a` → `h:1`).
pub fn url_authority(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.split(['/', '?', '#']).next().unwrap_or("")
}

fn default_secret_env() -> String {
    "OIDC_CLIENT_SECRET".into()
}
fn default_key_env() -> String {
    "OIDC_SESSION_KEY".into()
}
fn default_client_auth() -> ClientAuth {
    ClientAuth::ClientSecretBasic
}
fn default_scopes() -> Vec<String> {
    vec!["openid".into(), "profile".into(), "email".into()]
}
fn default_redirect_path() -> String {
    "/oauth2/callback".into()
}
fn default_logout_path() -> String {
    "/oauth2/logout".into()
}
fn default_cookie_prefix() -> String {
    "__Host-oidc".into()
}
fn default_same_site() -> SameSite {
    SameSite::Lax
}
fn default_session_lifetime() -> u64 {
    8 * 3600
}
fn default_login_timeout() -> u64 {
    300
}
fn default_forward_token() -> ForwardToken {
    ForwardToken::IdToken
}
fn default_forward_header() -> HeaderName {
    HeaderName::new("authorization").unwrap_or_else(|_| unreachable!("constant header name"))
}
fn default_algorithms() -> Vec<String> {
    ["RS256", "PS256", "ES256", "ES384", "EdDSA"]
        .map(String::from)
        .to_vec()
}
fn default_skew() -> u64 {
    60
}
fn default_refresh_before() -> u64 {
    60
}
fn default_provider_refresh() -> u64 {
    3600
}
fn default_jwks_min_interval() -> u64 {
    30
}
fn default_timeout() -> Duration {
    Duration::from_millis(2000)
}
fn timeout_ms<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    weir::config::bounded::<_, 1, 60000>(d).map(Duration::from_millis)
}
fn default_retry_after() -> u64 {
    2
}
