//! Seed 000's job done with Envoy's own filters, the chain `make bench` measures Weir's
//! against: `oauth2` keeps the login session (the same oidc-provider, the same client),
//! `jwt_authn` verifies the ID token from the oauth2 filter's `IdToken` cookie, `ext_authz`
//! (HTTP service) asks the same policy server (its ext_authz adapter, the same decision
//! code as acl-check's `/check`) and copies the grant it answers onto the request, and a
//! second `jwt_authn` verifies that grant. Both `jwt_authn`s cache verified tokens
//! (`jwt_cache_config`).
//!
//! What it does not do that check-header does: hold the grant to the request it was issued
//! for (`require_request_binding`), refuse a grant seen before (`single_use_grants`) and
//! check the `functions` claim; here ext_authz's own 200 is the decision.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};
use weir_envoy_tests::{EchoUpstream, Envoy, PolicyServer};
use weir_idp_tests::{Provider, TestClient};

use super::{
    free_port, report_upstream, start_policy_server, PolicyBuild, CLIENT_ID, CLIENT_SECRET,
};

/// The header the grant travels in, as in Weir's chain.
pub const GRANT_HEADER: &str = "authz_complete";
/// The header the grant's subject is copied to for the upstream, as check-header does.
pub const USER_HEADER: &str = "x-user";
/// Where the policy server's ext_authz adapter listens (Envoy's `path_prefix`).
const EXT_AUTHZ_PREFIX: &str = "/ext-authz";
/// The oauth2 filter's session cookies (its default names); the provider's own cookies on
/// the same host stay out of the benchmark's requests.
pub const SESSION_COOKIES: [&str; 5] = [
    "OauthHMAC",
    "OauthExpires",
    "BearerToken",
    "IdToken",
    "RefreshToken",
];
/// Signs the oauth2 filter's cookies; a deployment takes its own from a Secret.
const HMAC_SECRET: &str = "bench-hmac-secret-0123456789abcdef";
/// Verified tokens each `jwt_authn` keeps (as the authz bench's).
const JWT_CACHE: usize = 100;

/// Everything running; stopped on drop.
pub struct NativeChain {
    pub idp: Provider,
    pub policy: PolicyServer,
    pub upstream: EchoUpstream,
    pub envoy: Envoy,
}

impl NativeChain {
    pub fn start(build: PolicyBuild) -> Result<NativeChain> {
        let (idp_addr, policy_addr) = (free_port()?, free_port()?);
        let issuer = format!("http://{idp_addr}/realms/ingress");
        let upstream = report_upstream()?;
        let envoy = Envoy::builder()
            .native_http_filter(oauth2(&issuer))
            .native_http_filter(id_token_jwt_authn(&issuer))
            .native_http_filter(ext_authz())
            .native_http_filter(grant_jwt_authn())
            .generic_secret("oauth2-token", CLIENT_SECRET)
            .generic_secret("oauth2-hmac", HMAC_SECRET)
            .cluster("authn", idp_addr)
            .cluster("policy", policy_addr)
            .upstream(upstream.addr())
            .start()
            .context("starting Envoy with the native chain")?;
        // The oauth2 filter sends its client secret with HTTP Basic (client_secret_basic,
        // the test client's default) and a PKCE challenge, which the provider requires.
        let client =
            TestClient::new(CLIENT_ID, CLIENT_SECRET).redirect_uri(&super::callback_url(&envoy));
        // The oauth2 filter keeps no refresh logic in the steady state: tokens that outlive
        // a benchmark run (the provider's default is 5 minutes).
        let hour = Duration::from_secs(3600);
        let idp = Provider::builder()
            .realm("ingress")
            .client(client)
            .port(idp_addr.port())
            .id_token_ttl(hour)
            .access_token_ttl(hour)
            .start()?;
        for (endpoint, configured) in [
            ("authorization_endpoint", "auth"),
            ("token_endpoint", "token"),
        ] {
            let actual = idp.endpoint(endpoint)?;
            ensure!(
                actual == format!("{issuer}/{configured}"),
                "the provider's {endpoint} is {actual}"
            );
        }
        let policy = start_policy_server(&issuer, policy_addr, build, Some(EXT_AUTHZ_PREFIX))?;
        Ok(NativeChain {
            idp,
            policy,
            upstream,
            envoy,
        })
    }
}

/// The login session: the code flow against the provider, its tokens in HMAC-signed
/// cookies (the tokens themselves encrypted, Envoy's default).
fn oauth2(issuer: &str) -> Value {
    json!({
        "name": "envoy.filters.http.oauth2",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.oauth2.v3.OAuth2",
            "config": {
                "token_endpoint": { "uri": format!("{issuer}/token"), "cluster": "authn", "timeout": "5s" },
                "authorization_endpoint": format!("{issuer}/auth"),
                "redirect_uri": "http://%REQ(:authority)%/oauth2/callback",
                "redirect_path_matcher": { "path": { "exact": "/oauth2/callback" } },
                "signout_path": { "path": { "exact": "/oauth2/signout" } },
                "credentials": {
                    "client_id": CLIENT_ID,
                    "token_secret": { "name": "oauth2-token" },
                    "hmac_secret": { "name": "oauth2-hmac" },
                },
                "auth_scopes": ["openid", "profile", "email"],
                "auth_type": "BASIC_AUTH",
                "forward_bearer_token": true,
            },
        },
    })
}

/// The ID token, from the oauth2 filter's `IdToken` cookie, verified against the provider's
/// keys; required on every request past the oauth2 filter.
fn id_token_jwt_authn(issuer: &str) -> Value {
    json!({
        "name": "jwt_authn_id_token",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": { "idp": {
                "issuer": issuer,
                "audiences": [CLIENT_ID],
                "from_cookies": ["IdToken"],
                "forward": true,
                "remote_jwks": { "http_uri": { "uri": format!("{issuer}/jwks"), "cluster": "authn", "timeout": "5s" },
                                 "cache_duration": "300s" },
                "jwt_cache_config": { "jwt_cache_size": JWT_CACHE },
            }},
            "rules": [{ "match": { "prefix": "/" }, "requires": { "provider_name": "idp" } }],
        },
    })
}

/// The policy server's decision on every request: the request line, the host and the
/// cookies (for the ID token) go to its ext_authz adapter; a 200's grant header replaces
/// whatever the client sent under that name; its refusals (401, 403) go to the client, and
/// an unreachable server fails closed (403).
fn ext_authz() -> Value {
    json!({
        "name": "envoy.filters.http.ext_authz",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
            "transport_api_version": "V3",
            "failure_mode_allow": false,
            "allowed_headers": { "patterns": [{ "exact": "cookie" }] },
            "http_service": {
                "server_uri": { "uri": "http://policy", "cluster": "policy", "timeout": "2s" },
                "path_prefix": EXT_AUTHZ_PREFIX,
                "authorization_response": { "allowed_upstream_headers": { "patterns": [{ "exact": GRANT_HEADER }] } },
            },
        },
    })
}

/// The grant, verified against the policy server's published keys; its subject goes to the
/// upstream in `x-user`.
fn grant_jwt_authn() -> Value {
    json!({
        "name": "jwt_authn_grant",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": { "grant": {
                "issuer": "weir-policy-server",
                "audiences": ["check-header"],
                "from_headers": [{ "name": GRANT_HEADER }],
                "forward": true,
                "remote_jwks": { "http_uri": { "uri": "http://policy/.well-known/jwks.json", "cluster": "policy", "timeout": "5s" },
                                 "cache_duration": "300s" },
                "jwt_cache_config": { "jwt_cache_size": JWT_CACHE },
                "claim_to_headers": [{ "header_name": USER_HEADER, "claim_name": "sub" }],
            }},
            "rules": [{ "match": { "prefix": "/" }, "requires": { "provider_name": "grant" } }],
        },
    })
}
