//! Seed 000's chain, started for `make demo` and `make bench`: the OpenID Provider, the
//! policy server, an upstream and Envoy with openid-connect → jwt_authn → acl-check →
//! check-header, all on 127.0.0.1. [`native::NativeChain`] is the same job done with
//! Envoy's own filters, for `make bench`.

pub mod native;

use std::net::{SocketAddr, TcpListener};

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};
use weir_envoy_tests::{
    repo_root, EchoUpstream, Envoy, HttpResponse, PolicyServer, Reply, UserKeys, WasmFilter,
};
use weir_idp_tests::{Browser, Provider, TestClient};

pub const CLIENT_ID: &str = "ingress-gateway";
const CLIENT_SECRET: &str = "gateway-secret";
/// The demo's session key; a real deployment takes its own from a Secret (`OIDC_SESSION_KEY`).
const SESSION_KEY: &str = "49d0d4bb3e2116a781fc011a6080e5bfb585044db456168afa55437606b6e1de";

/// What acl-check answers when the policy server gives no decision (down, timed out):
/// its `status_on_error`, set here explicitly so `make soak` knows what to expect.
pub const ACL_STATUS_ON_ERROR: u16 = 403;
/// The page behind the whole chain (alice may read it).
pub const PAGE: &str = "/reports/q3";

/// Everything running; stopped on drop.
pub struct SeedChain {
    pub idp: Provider,
    pub policy: PolicyServer,
    pub upstream: EchoUpstream,
    pub envoy: Envoy,
}

/// Which build of the policy server a chain runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyBuild {
    /// The dev profile: quick to build, for the demo and the tests.
    Dev,
    /// As deployed: `--release` and the server's default EdDSA grants, for the benchmarks
    /// (the dev build would be the bottleneck of the chain).
    Release,
}

/// The upstream behind the chain, serving the report.
fn report_upstream() -> Result<EchoUpstream> {
    EchoUpstream::with_reply(
        Reply::status(200)
            .header("content-type", "text/plain")
            .body("the quarterly report\n"),
    )
}

/// The policy server on `addr`, trusting the provider `issuer`'s ID tokens for
/// [`CLIENT_ID`]; with its ext_authz adapter under `ext_authz_prefix` if given.
fn start_policy_server(
    issuer: &str,
    addr: SocketAddr,
    build: PolicyBuild,
    ext_authz_prefix: Option<&'static str>,
) -> Result<PolicyServer> {
    let jwks_url = format!("{issuer}/jwks");
    let mut policy = PolicyServer::builder(issuer, CLIENT_ID, UserKeys::Url(&jwks_url))
        .listen(addr)
        .release(build == PolicyBuild::Release);
    if build == PolicyBuild::Release {
        policy = policy.key_algorithm("EdDSA");
    }
    if let Some(prefix) = ext_authz_prefix {
        policy = policy.ext_authz(prefix);
    }
    policy.start()
}

/// A free port on 127.0.0.1, for a server Envoy must know before it starts.
pub(crate) fn free_port() -> Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// Whether acl-check asks the policy server on every request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decisions {
    /// Every request asks and carries a fresh grant, which check-header takes once
    /// (`single_use_grants`): the demo's set-up.
    AskEveryTime,
    /// acl-check reuses a grant for [`DECISION_CACHE_SECONDS`] (`decision_cache_seconds`,
    /// the policy server's `reuse_seconds`), so check-header lets a grant pass more than
    /// once (`single_use_grants` off); it still verifies each, from its verified cache.
    Cached,
}

/// How long acl-check may reuse a decision in [`Decisions::Cached`].
pub const DECISION_CACHE_SECONDS: u64 = 30;

impl SeedChain {
    pub fn start() -> Result<SeedChain> {
        Self::start_with(PolicyBuild::Dev, Decisions::AskEveryTime)
    }

    pub fn start_with(build: PolicyBuild, decisions: Decisions) -> Result<SeedChain> {
        let cached = decisions == Decisions::Cached;
        let wasm = |name: &str| -> Result<std::path::PathBuf> {
            let path = repo_root().join(format!("target/plugins/{name}.wasm"));
            ensure!(
                path.exists(),
                "{} is missing: run `make build` (or `make demo`)",
                path.display()
            );
            Ok(path)
        };
        // Envoy must know where the provider and the policy server are before they start (the
        // provider must know Envoy's callback URL, the policy server the provider's keys).
        let (idp_addr, policy_addr) = (free_port()?, free_port()?);
        let issuer = format!("http://{idp_addr}/realms/ingress");
        let upstream = report_upstream()?;

        let openid = WasmFilter::new(wasm("openid-connect")?)
            .plugin_name("istio-ingress", "openid-connect")
            // Envoy's port is picked when it starts, so the redirect URI is built from the request's
            // host, which must be this one.
            .json_configuration(&json!({
                "openid_server": "authn", "openid_realm": "ingress", "issuer": issuer, "client_id": CLIENT_ID,
                "allowed_hosts": ["127.0.0.1"],
            }))
            .env("OIDC_CLIENT_SECRET", CLIENT_SECRET)
            .env("OIDC_SESSION_KEY", SESSION_KEY);
        let acl = WasmFilter::new(wasm("acl-check")?)
            .plugin_name("istio-ingress", "acl-check")
            .json_configuration(
                &json!({ "acl_server": "policy", "set_header": "authz_complete", "timeout": 2000,
                         "decision_cache_seconds": if cached { DECISION_CACHE_SECONDS } else { 0 },
                                  "status_on_error": ACL_STATUS_ON_ERROR }),
            );
        let check = WasmFilter::new(wasm("check-header")?)
            .plugin_name("istio-ingress", "check-header")
            .json_configuration(&json!({
                "read_header": "authz_complete", "function": "read_data", "jwks_cluster": "policy",
                "issuer": "weir-policy-server", "audiences": ["check-header"],
                "require_request_binding": true, "single_use_grants": !cached,
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
        let client = TestClient::new(CLIENT_ID, CLIENT_SECRET)
            .redirect_uri(&format!("{}/oauth2/callback", envoy.url()));
        let idp = Provider::builder()
            .realm("ingress")
            .client(client)
            .port(idp_addr.port())
            .start()?;
        let mut policy = start_policy_server(&issuer, policy_addr, build, None)?;
        if cached {
            policy.reuse_grants_for(DECISION_CACHE_SECONDS)?;
        }
        Ok(SeedChain {
            idp,
            policy,
            upstream,
            envoy,
        })
    }

    /// The URL of [`PAGE`] on Envoy.
    pub fn page_url(&self) -> String {
        page_url(&self.envoy)
    }

    /// The callback URL registered at the provider.
    pub fn callback_url(&self) -> String {
        callback_url(&self.envoy)
    }

    /// See [`first_visit`].
    pub fn first_visit(&self, browser: &mut Browser) -> Result<HttpResponse> {
        first_visit(&self.envoy, browser)
    }

    /// A new browser signed in as `user` through the provider's forms, once its session
    /// cookie has fetched the page (200).
    pub fn signed_in_browser(&self, user: &str) -> Result<Browser> {
        signed_in_browser(&self.envoy, user)
    }
}

/// The URL of [`PAGE`] on `envoy`.
pub fn page_url(envoy: &Envoy) -> String {
    format!("{}{PAGE}", envoy.url())
}

/// The callback URL registered at the provider for `envoy` (openid-connect's and the
/// oauth2 filter's `/oauth2/callback`).
pub fn callback_url(envoy: &Envoy) -> String {
    format!("{}/oauth2/callback", envoy.url())
}

/// A browser's first request for the page. openid-connect learns the provider on its first
/// request, and a request racing that gets 503: asked again a few times.
pub fn first_visit(envoy: &Envoy, browser: &mut Browser) -> Result<HttpResponse> {
    let mut first = browser.get(&page_url(envoy))?;
    for _ in 0..20 {
        if first.status != 503 {
            break;
        }
        std::thread::sleep(Duration::from_millis(250));
        first = browser.get(&page_url(envoy))?;
    }
    Ok(first)
}

/// A new browser that asked `envoy` for the page, was sent to the provider, signed in as
/// `user` there and came back through the callback, which answered 302 (to the page) with
/// the session cookies. Whether the page itself is allowed is the caller's question.
pub fn browser_back_from_sign_in(envoy: &Envoy, user: &str) -> Result<Browser> {
    let mut browser = Browser::with_timeout(Duration::from_secs(5));
    let first = first_visit(envoy, &mut browser)?;
    ensure!(
        first.status == 302,
        "expected the redirect to the provider, got {}",
        first.status
    );
    let back = browser.sign_in_from(first, user, &callback_url(envoy))?;
    let session = browser.get(back.url.as_str())?;
    ensure!(
        session.status == 302,
        "the callback answered {}: {}",
        session.status,
        session.text()
    );
    Ok(browser)
}

/// [`browser_back_from_sign_in`], once the session has fetched the page (200).
pub fn signed_in_browser(envoy: &Envoy, user: &str) -> Result<Browser> {
    let mut browser = browser_back_from_sign_in(envoy, user)?;
    let page = browser.get(&page_url(envoy))?;
    ensure!(
        page.status == 200,
        "the signed-in request answered {}: {}",
        page.status,
        page.text()
    );
    Ok(browser)
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
