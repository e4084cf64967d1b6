//! check-header with `jwks_cluster` in a real Envoy: the plugin's root context fetches the
//! JWKS from a cluster when Envoy configures it (a background job, not a request), and a
//! key rotation is picked up by the first token that names the new `kid`. The JWKS server
//! is a local upstream whose answer the test changes.

use std::time::{Duration, Instant};

use serde_json::json;
use weir_envoy_tests::{build_wasm, EchoUpstream, Envoy, Reply, WasmFilter};
use weir_test_jwt::jwt_simple::prelude::*;

fn jwks(key: &ES256KeyPair) -> String {
    weir_test_jwt::jwks([weir_test_jwt::es256_jwk(key)])
}

fn grant(key: &ES256KeyPair) -> String {
    let claims = Claims::with_custom_claims(
        json!({ "functions": ["read_data"] }),
        Duration::from_secs(300).into(),
    )
    .with_issuer("weir-policy-server")
    .with_audience("check-header");
    key.sign(claims).expect("signs")
}

fn serve(key: &ES256KeyPair) -> Reply {
    Reply::status(200)
        .header("content-type", "application/json")
        .body(jwks(key))
}

#[test]
fn jwks_fetched_at_configure_and_rotation_followed() -> anyhow::Result<()> {
    let (k1, k2) = (
        ES256KeyPair::generate().with_key_id("k1"),
        ES256KeyPair::generate().with_key_id("k2"),
    );
    let idp = EchoUpstream::with_reply(serve(&k1))?;
    let upstream = EchoUpstream::start()?;
    let cfg = json!({ "read_header": "authz_complete", "jwks_cluster": "idp", "jwks_path": "/keys",
        "function": "read_data", "issuer": "weir-policy-server", "audiences": ["check-header"] });
    let plugin = WasmFilter::new(build_wasm("check-header"))
        .plugin_name("istio-system", "check-header")
        .json_configuration(&cfg);
    let envoy = Envoy::builder()
        .http_filter(plugin)
        .cluster("idp", idp.addr())
        .upstream(upstream.addr())
        .start()?;

    // The fetch happens without any request: the root context's background job.
    let deadline = Instant::now() + Duration::from_secs(10);
    while idp.requests().is_empty() {
        if Instant::now() >= deadline {
            let stats: Vec<String> = envoy
                .stats()?
                .lines()
                .filter(|l| l.contains("idp") || l.contains("wasm"))
                .map(str::to_string)
                .collect();
            anyhow::bail!(
                "no JWKS fetch within 10 s of start-up; idp errors {:?}; stats:\n{}",
                idp.errors(),
                stats.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let fetch = &idp.requests()[0];
    assert_eq!(
        (fetch.method.as_str(), fetch.path.as_str()),
        ("GET", "/keys")
    );
    // Until a copy is shared, every VM fetches (RemoteJwks::refresh): Envoy starts more than
    // one, and their fetches can arrive some milliseconds apart. Count them once none has
    // arrived for 500 ms (bounded by the same 10 s).
    let mut at_start = idp.requests().len();
    let mut quiet_since = Instant::now();
    while quiet_since.elapsed() < Duration::from_millis(500) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        let now = idp.requests().len();
        if now != at_start {
            at_start = now;
            quiet_since = Instant::now();
        }
    }

    let ok = envoy
        .get("/data")?
        .header("authz_complete", &grant(&k1))
        .send()?;
    assert_eq!(ok.status, 200, "{}", envoy.log());
    assert_eq!(upstream.requests().len(), 1);
    assert_eq!(idp.requests().len(), at_start, "a known kid needs no fetch");

    // The provider rotates: the first k2 token triggers one refetch and passes.
    idp.set_reply(serve(&k2));
    let rotated = envoy
        .get("/data")?
        .header("authz_complete", &grant(&k2))
        .send()?;
    assert_eq!(rotated.status, 200, "{}", envoy.log());
    assert_eq!(idp.requests().len(), at_start + 1);

    // A made-up kid right after: refused without another fetch (rate limit), upstream untouched.
    let forged = ES256KeyPair::generate().with_key_id("made-up");
    let refused = envoy
        .get("/data")?
        .header("authz_complete", &grant(&forged))
        .send()?;
    assert_eq!(refused.status, 401);
    assert_eq!(
        idp.requests().len(),
        at_start + 1,
        "unknown kids are rate-limited"
    );
    assert_eq!(upstream.requests().len(), 2);
    Ok(())
}
