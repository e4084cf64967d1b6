//! openid-connect's configuration: the seed's keys (`openid_server`, `openid_realm`) plus the
//! relying-party options. Secrets come from VM environment variables (`vmConfig.env`), so
//! they never sit in `pluginConfig`; a missing or malformed secret is a configuration error
//! that Envoy reports at load time, not a per-request failure.

use serde::Deserialize;
use std::time::Duration;
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    openid_server: String,
    #[serde(default)]
    openid_realm: Option<String>,
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default)]
    discovery_path: Option<String>,
    #[serde(default)]
    provider_authority: Option<String>,
    client_id: String,
    #[serde(default = "default_secret_env")]
    client_secret_env: String,
    #[serde(default = "default_client_auth")]
    client_auth: ClientAuth,
    #[serde(default = "default_scopes")]
    scopes: Vec<String>,
    #[serde(default)]
    redirect_uri: Option<String>,
    #[serde(default)]
    allowed_hosts: Vec<String>,
    #[serde(default)]
    redirect_path: Option<String>,
    #[serde(default = "default_logout_path")]
    logout_path: String,
    #[serde(default)]
    post_logout_redirect: Option<String>,
    #[serde(default)]
    pass_through_exact: Vec<String>,
    #[serde(default)]
    pass_through_prefixes: Vec<String>,
    #[serde(default = "default_cookie_prefix")]
    cookie_prefix: String,
    #[serde(default)]
    allow_insecure_cookie_prefix: bool,
    #[serde(default = "default_same_site")]
    cookie_same_site: SameSite,
    // Durations are bounded at configure (a year at most for the long ones): a huge value
    // would overflow when added to a Unix time.
    #[serde(
        default = "default_session_lifetime",
        deserialize_with = "weir::config::bounded::<_, 1, 31536000>"
    )]
    session_lifetime_seconds: u64,
    #[serde(
        default = "default_login_timeout",
        deserialize_with = "weir::config::bounded::<_, 1, 86400>"
    )]
    login_timeout_seconds: u64,
    #[serde(default = "default_key_env")]
    session_key_env: String,
    #[serde(default = "default_forward_token")]
    forward_token: ForwardToken,
    #[serde(default = "default_forward_header")]
    forward_header: HeaderName,
    #[serde(default = "default_algorithms")]
    algorithms: Vec<String>,
    #[serde(
        default = "default_skew",
        deserialize_with = "weir::config::bounded::<_, 0, 3600>"
    )]
    clock_skew_seconds: u64,
    #[serde(
        default = "default_refresh_before",
        deserialize_with = "weir::config::bounded::<_, 0, 31536000>"
    )]
    refresh_before_seconds: u64,
    #[serde(
        default = "default_provider_refresh",
        deserialize_with = "weir::config::bounded::<_, 1, 31536000>"
    )]
    provider_refresh_seconds: u64,
    #[serde(
        default = "default_jwks_min_interval",
        deserialize_with = "weir::config::bounded::<_, 0, 31536000>"
    )]
    jwks_min_refetch_seconds: u64,
    #[serde(
        default = "default_timeout_ms",
        deserialize_with = "weir::config::bounded::<_, 1, 60000>"
    )]
    timeout_ms: u64,
    #[serde(
        default = "default_retry_after",
        deserialize_with = "weir::config::bounded::<_, 0, 3600>"
    )]
    retry_after_seconds: u64,
}

/// The validated configuration.
#[derive(Debug)]
pub struct Config {
    /// Envoy cluster of the provider (the seed's `openid_server`).
    pub cluster: String,
    /// Expected issuer; `None`: taken from discovery, which must end in `/realms/<realm>`.
    pub issuer: Option<String>,
    /// Required issuer path suffix when no issuer is configured.
    pub realm_suffix: Option<String>,
    /// Path of the discovery document on `cluster`.
    pub discovery_path: String,
    /// `:authority` for calls to the provider (its issuer's host by default).
    pub provider_authority: Option<String>,
    /// The registered client id.
    pub client_id: String,
    /// The client secret, read from the environment at configure time.
    pub client_secret: String,
    /// Token endpoint authentication.
    pub client_auth: ClientAuth,
    /// Space-separated scopes, always including `openid`.
    pub scope: String,
    /// The redirect URI when configured; otherwise it is built from the request's host,
    /// which must be in `allowed_hosts`.
    pub redirect_uri: Option<String>,
    /// Hosts (`host` for any port, or `host:port`) a redirect URI may be built for.
    pub allowed_hosts: Vec<String>,
    /// Callback path registered at the provider (the path of `redirect_uri` when set).
    pub redirect_path: String,
    /// Path that signs the user out.
    pub logout_path: String,
    /// Where the provider (or the plugin) sends the browser after logout.
    pub post_logout_redirect: Option<String>,
    /// Paths served without a session.
    pub pass_through_exact: Vec<String>,
    /// Path prefixes served without a session.
    pub pass_through_prefixes: Vec<String>,
    /// Cookie name prefix (`__Host-oidc` → `__Host-oidc-session`, `__Host-oidc-login`).
    pub cookie_prefix: String,
    /// `SameSite` of the session cookie.
    pub same_site: SameSite,
    /// How long a session lasts, whatever the tokens say.
    pub session_lifetime: u64,
    /// How long a login may take (the login cookie's lifetime).
    pub login_timeout: u64,
    /// AES-256-GCM key for the cookies.
    pub session_key: [u8; 32],
    /// Token forwarded upstream.
    pub forward_token: ForwardToken,
    /// Header it goes in, as `Bearer <token>`.
    pub forward_header: HeaderName,
    /// ID token algorithm allow-list.
    pub algorithms: Vec<String>,
    /// Tolerance on `exp`, `nbf`, `iat`.
    pub clock_skew: u64,
    /// Refresh this long before the ID token expires.
    pub refresh_before: u64,
    /// Re-read discovery and JWKS after this long.
    pub provider_refresh: u64,
    /// At most one JWKS fetch for an unknown `kid` per this many seconds.
    pub jwks_min_refetch: u64,
    /// Timeout of each call to the provider.
    pub timeout: Duration,
    /// `Retry-After` while the provider is unknown.
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

impl<'de> Deserialize<'de> for Config {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Raw::deserialize(d)?;
        Config::try_from(raw).map_err(serde::de::Error::custom)
    }
}

impl TryFrom<Raw> for Config {
    type Error = String;

    fn try_from(raw: Raw) -> Result<Self, String> {
        let client_secret = weir::env_var(&raw.client_secret_env).filter(|s| !s.is_empty()).ok_or_else(|| {
            format!(
                "client secret: set the VM environment variable {} (vmConfig.env) or name another with client_secret_env",
                raw.client_secret_env
            )
        })?;
        let key_text = weir::env_var(&raw.session_key_env).ok_or_else(|| {
            format!(
                "session key: set the VM environment variable {} to 32 random bytes, hex (64 characters) or base64url",
                raw.session_key_env
            )
        })?;
        let session_key = crate::crypto::parse_key(key_text.trim()).ok_or_else(|| {
            format!(
                "session key in {}: expected 32 bytes as 64 hex characters or base64url",
                raw.session_key_env
            )
        })?;
        let realm_suffix = raw.openid_realm.as_ref().map(|r| format!("/realms/{r}"));
        let discovery_path =
            match (&raw.discovery_path, &raw.issuer, &realm_suffix) {
                (Some(p), _, _) => p.clone(),
                (None, Some(iss), _) => format!(
                    "{}/.well-known/openid-configuration",
                    url_path(iss).trim_end_matches('/')
                ),
                (None, None, Some(suffix)) => format!("{suffix}/.well-known/openid-configuration"),
                (None, None, None) => return Err(
                    "set issuer, discovery_path or openid_realm so the provider can be discovered"
                        .into(),
                ),
            };
        if !discovery_path.starts_with('/') {
            return Err(format!(
                "discovery_path must be a path starting with '/', got {discovery_path:?}"
            ));
        }
        let redirect_path = match (&raw.redirect_uri, raw.redirect_path) {
            (Some(uri), given) => {
                let scheme_ok = uri.starts_with("https://") || uri.starts_with("http://");
                if !scheme_ok || url_authority(uri).is_empty() || uri.contains(['?', '#']) {
                    return Err(format!("redirect_uri must be an absolute http(s) URL without query, got {uri:?}"));
                }
                let path = url_path(uri).to_string();
                if given.as_ref().is_some_and(|g| *g != path) {
                    return Err(format!("redirect_path {given:?} differs from the path of redirect_uri {uri:?}: set only redirect_uri"));
                }
                path
            }
            (None, _) if raw.allowed_hosts.is_empty() => {
                return Err("set redirect_uri, or allowed_hosts (the hosts a redirect URI may be built for); a client's Host header is never trusted alone".into())
            }
            (None, given) => given.unwrap_or_else(default_redirect_path),
        };
        if raw
            .allowed_hosts
            .iter()
            .any(|h| h.is_empty() || h.contains(['/', '*', ' ', '@']))
        {
            return Err("allowed_hosts holds host names or host:port pairs, without scheme, path or wildcards".into());
        }
        for (name, path) in [
            ("redirect_path", &redirect_path),
            ("logout_path", &raw.logout_path),
        ] {
            check_rule(path).map_err(|e| format!("{name}: {e}"))?;
        }
        for (name, rules) in [
            ("pass_through_exact", &raw.pass_through_exact),
            ("pass_through_prefixes", &raw.pass_through_prefixes),
        ] {
            for rule in rules {
                check_rule(rule).map_err(|e| format!("{name}: {e}"))?;
            }
        }
        if !raw
            .cookie_prefix
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            || raw.cookie_prefix.is_empty()
        {
            return Err("cookie_prefix may only hold letters, digits, '-' and '_'".into());
        }
        if !raw.cookie_prefix.starts_with("__Host-") && !raw.allow_insecure_cookie_prefix {
            return Err(format!(
                "cookie_prefix {:?} must start with __Host- (cookies a sibling domain or plain HTTP cannot set); set allow_insecure_cookie_prefix to accept it",
                raw.cookie_prefix
            ));
        }
        if raw.algorithms.is_empty()
            || raw
                .algorithms
                .iter()
                .any(|a| a.eq_ignore_ascii_case("none") || a.starts_with("HS"))
        {
            return Err("algorithms must list public-key algorithms (RS256, ES256, …); none and HS* are never accepted".into());
        }
        let mut scopes = raw.scopes;
        if !scopes.iter().any(|s| s == "openid") {
            scopes.insert(0, "openid".into());
        }
        Ok(Config {
            cluster: raw.openid_server,
            issuer: raw.issuer,
            realm_suffix,
            discovery_path,
            provider_authority: raw.provider_authority,
            client_id: raw.client_id,
            client_secret,
            client_auth: raw.client_auth,
            scope: scopes.join(" "),
            redirect_uri: raw.redirect_uri,
            allowed_hosts: raw.allowed_hosts,
            redirect_path,
            logout_path: raw.logout_path,
            post_logout_redirect: raw.post_logout_redirect,
            pass_through_exact: raw.pass_through_exact,
            pass_through_prefixes: raw.pass_through_prefixes,
            cookie_prefix: raw.cookie_prefix,
            same_site: raw.cookie_same_site,
            session_lifetime: raw.session_lifetime_seconds,
            login_timeout: raw.login_timeout_seconds,
            session_key,
            forward_token: raw.forward_token,
            forward_header: raw.forward_header,
            algorithms: raw.algorithms,
            clock_skew: raw.clock_skew_seconds,
            refresh_before: raw.refresh_before_seconds,
            provider_refresh: raw.provider_refresh_seconds,
            jwks_min_refetch: raw.jwks_min_refetch_seconds,
            timeout: Duration::from_millis(raw.timeout_ms),
            retry_after: raw.retry_after_seconds,
        })
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
fn default_timeout_ms() -> u64 {
    2000
}
fn default_retry_after() -> u64 {
    2
}
