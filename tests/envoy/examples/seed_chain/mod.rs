//! Seed 000's chain, started for `make demo` and `make bench`: the OpenID Provider, the
//! policy server, an upstream and Envoy with openid-connect → jwt_authn → acl-check →
//! check-header, all on 127.0.0.1.

use std::net::{SocketAddr, TcpListener};

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};
use weir_envoy_tests::{repo_root, EchoUpstream, Envoy, PolicyServer, Reply, UserKeys, WasmFilter};
use weir_idp_tests::{Browser, Provider, Response, TestClient};

pub const CLIENT_ID: &str = "ingress-gateway";
const CLIENT_SECRET: &str = "gateway-secret";
/// The demo's session key; a real deployment takes its own from a Secret (`OIDC_SESSION_KEY`).
const SESSION_KEY: &str = "49d0d4bb3e2116a781fc011a6080e5bfb585044db456168afa55437606b6e1de";

/// Everything running; stopped on drop.
pub struct SeedChain {
    pub idp: Provider,
    pub policy: PolicyServer,
    pub upstream: EchoUpstream,
    pub envoy: Envoy,
}

impl SeedChain {
    pub fn start() -> Result<SeedChain> {
        let wasm = |name: &str| -> Result<std::path::PathBuf> {
            let path = repo_root().join(format!("target/plugins/{name}.wasm"));
            ensure!(path.exists(), "{} is missing: run `make build` (or `make demo`)", path.display());
            Ok(path)
        };
        // Envoy must know where the provider and the policy server are before they start (the
        // provider must know Envoy's callback URL, the policy server the provider's keys).
        let free = || -> Result<SocketAddr> { Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?) };
        let (idp_addr, policy_addr) = (free()?, free()?);
        let issuer = format!("http://{idp_addr}/realms/ingress");
        let upstream = EchoUpstream::with_reply(Reply::status(200).header("content-type", "text/plain").body("the quarterly report\n"))?;

        let openid = WasmFilter::new(wasm("openid-connect")?)
            .plugin_name("istio-ingress", "openid-connect")
            .json_configuration(&json!({ "openid_server": "authn", "openid_realm": "ingress", "issuer": issuer, "client_id": CLIENT_ID }))
            .env("OIDC_CLIENT_SECRET", CLIENT_SECRET)
            .env("OIDC_SESSION_KEY", SESSION_KEY);
        let acl = WasmFilter::new(wasm("acl-check")?)
            .plugin_name("istio-ingress", "acl-check")
            .json_configuration(&json!({ "acl_server": "policy", "set_header": "authz_complete", "timeout": 2000 }));
        let check = WasmFilter::new(wasm("check-header")?).plugin_name("istio-ingress", "check-header").json_configuration(&json!({
            "read_header": "authz_complete", "function": "read_data", "jwks_cluster": "policy",
            "issuer": "weir-policy-server", "audiences": ["check-header"],
            "claim_to_headers": [{ "claim": "sub", "header": "x-user" }],
        }));
        let envoy = Envoy::builder()
            .http_filter(openid)
            .native_http_filter(jwt_authn(&issuer))
            .http_filter(acl)
            .http_filter(check)
            .cluster("authn", idp_addr)
            .cluster("policy", policy_addr)
            .upstream(upstream.addr())
            .start()
            .context("starting Envoy")?;
        let client = TestClient::new(CLIENT_ID, CLIENT_SECRET).redirect_uri(&format!("{}/oauth2/callback", envoy.url()));
        let idp = Provider::builder().realm("ingress").client(client).port(idp_addr.port()).start()?;
        let policy = PolicyServer::start_on(policy_addr, &issuer, CLIENT_ID, UserKeys::Url(&format!("{issuer}/jwks")))?;
        Ok(SeedChain { idp, policy, upstream, envoy })
    }
}

impl SeedChain {
    /// A browser's first request to `url`. openid-connect learns the provider on its first
    /// request, and a request racing that gets 503: retried for up to 5 s.
    pub fn first_visit(&self, browser: &mut Browser, url: &str) -> Result<Response> {
        let mut first = browser.get(url)?;
        for _ in 0..20 {
            if first.status != 503 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(250));
            first = browser.get(url)?;
        }
        Ok(first)
    }
}

/// Envoy's jwt_authn checking the forwarded ID token as Istio's authn would for a
/// RequestAuthentication: a missing token passes (openid-connect's own pages), an invalid one
/// is refused.
fn jwt_authn(issuer: &str) -> Value {
    json!({
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": { "idp": {
                "issuer": issuer,
                "audiences": [CLIENT_ID],
                "forward": true,
                "remote_jwks": { "http_uri": { "uri": format!("{issuer}/jwks"), "cluster": "authn", "timeout": "5s" },
                                 "cache_duration": "300s" },
            }},
            "rules": [{ "match": { "prefix": "/" }, "requires": { "requires_any": { "requirements": [
                { "provider_name": "idp" }, { "allow_missing": {} },
            ]}}}],
        },
    })
}

