//! acl-check's configuration: the seed's keys plus Envoy `ext_authz`-style options.

use serde::Deserialize;
use std::time::Duration;
use weir::config::{ConfigError, Validate};
use weir::HeaderName;

/// The plugin configuration (`pluginConfig`). Only `acl_server` and `set_header` are required.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The Envoy cluster of the policy server.
    pub acl_server: String,
    /// The header that carries the grant token upstream. Any client-supplied value is removed
    /// before anything else happens.
    pub set_header: HeaderName,
    /// The policy server's check path.
    #[serde(default = "default_path")]
    pub path: String,
    /// Milliseconds to wait for the policy server; past it the call fails. Bounded: the host
    /// takes the timeout as a 32-bit count of milliseconds.
    #[serde(
        default = "default_timeout_ms",
        deserialize_with = "weir::config::bounded::<_, 1, 60000>"
    )]
    pub timeout: u64,
    /// Client request headers sent to the policy server (every value of each).
    #[serde(default = "default_request_headers")]
    pub allowed_request_headers: Vec<HeaderName>,
    /// Policy server response headers copied onto the request going upstream on a 200.
    #[serde(default)]
    pub allowed_upstream_headers: Vec<HeaderName>,
    /// Policy server response headers relayed to the client on a 401/403.
    #[serde(default = "default_client_headers")]
    pub allowed_client_headers: Vec<HeaderName>,
    /// The status the client gets when the policy server cannot give a decision.
    #[serde(default = "default_status_on_error")]
    pub status_on_error: u16,
    /// Let requests through (without `set_header`) when the policy server cannot decide.
    #[serde(default)]
    pub failure_mode_allow: bool,
    /// The largest grant token accepted from the policy server, in bytes.
    #[serde(default = "default_max_token_bytes")]
    pub max_token_bytes: usize,
    /// Seconds a grant may be reused for a request sending the policy server exactly the
    /// same attributes; 0 (the default) asks the policy server every time. Bounded: grants
    /// are short-lived, and the value is added to the clock.
    #[serde(default, deserialize_with = "weir::config::bounded::<_, 0, 3600>")]
    pub decision_cache_seconds: u64,
    /// Slots of the decision cache in shared data (one decision each): what bounds its size.
    #[serde(
        default = "default_decision_cache_entries",
        deserialize_with = "weir::config::bounded::<_, 1, 16384>"
    )]
    pub decision_cache_entries: u64,
    /// How the policy server is asked: `http` (acl-check's own protocol, the default) or
    /// `ext_authz_grpc` (Envoy's `envoy.service.auth.v3.Authorization/Check`).
    #[cfg(feature = "ext-authz-grpc")]
    #[serde(default)]
    pub protocol: Protocol,
}

/// The protocol spoken to the policy server.
#[cfg(feature = "ext-authz-grpc")]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    /// A POST to `path`; the grant token in the body of a 200.
    #[default]
    Http,
    /// Envoy's ext_authz gRPC service.
    ExtAuthzGrpc,
}

/// Options of the HTTP protocol that the gRPC one cannot honour are refused at configure
/// time, naming the field.
impl Validate for Config {
    fn validate(&mut self) -> Result<(), ConfigError> {
        #[cfg(feature = "ext-authz-grpc")]
        if self.protocol == Protocol::ExtAuthzGrpc {
            if self.decision_cache_seconds > 0 {
                return Err(ConfigError::at("decision_cache_seconds", "the decision cache needs the HTTP protocol's Cache-Control; set it to 0 with protocol: ext_authz_grpc"));
            }
            if self.path != default_path() {
                return Err(ConfigError::at("path", "the ext_authz_grpc protocol always calls envoy.service.auth.v3.Authorization/Check; remove path"));
            }
        }
        Ok(())
    }
}

impl Config {
    /// Every header acl-check may set upstream: the client's copies (and lookalikes) of
    /// these are removed on every path.
    pub fn owned_headers(&self) -> impl Iterator<Item = &str> {
        std::iter::once(&self.set_header)
            .chain(&self.allowed_upstream_headers)
            .map(HeaderName::as_str)
    }

    /// `timeout` as a duration.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout)
    }
}

fn default_path() -> String {
    "/check".into()
}
fn default_timeout_ms() -> u64 {
    200
}
fn default_request_headers() -> Vec<HeaderName> {
    vec![header("authorization")]
}
fn default_client_headers() -> Vec<HeaderName> {
    vec![header("www-authenticate")]
}
fn default_status_on_error() -> u16 {
    403
}
fn default_max_token_bytes() -> usize {
    16 * 1024
}

fn default_decision_cache_entries() -> u64 {
    1024
}

fn header(name: &str) -> HeaderName {
    // Constant, valid names: this cannot fail.
    HeaderName::new(name).unwrap_or_else(|_| unreachable!("constant header name"))
}
