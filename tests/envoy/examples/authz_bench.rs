//! `make bench` (part): check-header's grant verification in Envoy 1.40 against Envoy's own
//! `jwt_authn` verifying the same ES256 tokens, and check-header's Wasm instructions per
//! request in weir-runtime.
//!
//! Each Envoy (`--concurrency 1`) has one filter and answers from its route (no upstream),
//! so the difference is the verification. jwt_authn runs with its JWT cache on
//! (`jwt_cache_config`), as a deployment would. Two loads: every request carrying the same
//! token (what a signed-in client sends until its grant expires), and fresh tokens (a pool
//! of `FRESH_POOL` distinct tokens used in turn, more than either cache holds: check-header's
//! `verified_cache_entries` is set to jwt_authn's `JWT_CACHE`, so every one is verified). One client thread sends `REQUESTS` requests over one keep-alive
//! connection after a warm-up; `ROUNDS` interleaved rounds, medians printed (the ratio is the
//! median of the rounds' ratios).

use std::time::Instant;

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};
use weir_envoy_tests::{build_wasm, repo_root, Envoy, KeepAlive, WasmFilter};
use weir_test_jwt::jwt_simple::prelude::*;

const REQUESTS: usize = 5_000;
const WARM_UP: usize = 300;
const ROUNDS: usize = 5;
/// Distinct tokens for the fresh-token load; each filter caches `JWT_CACHE` of them.
const FRESH_POOL: usize = 400;
const JWT_CACHE: usize = 100;
const HEADER: &str = "authz_complete";
const ISSUER: &str = "weir-policy-server";
const AUDIENCE: &str = "check-header";

fn main() -> Result<()> {
    // ES256: what the Envoy suites use; EdDSA: what the policy server signs with by default.
    let es256 = ES256KeyPair::generate().with_key_id("grant-1");
    compare("ES256", &es256.public_key().to_jwk(), |claims| {
        es256.sign(claims).map_err(anyhow::Error::msg)
    })?;
    let eddsa = Ed25519KeyPair::generate().with_key_id("grant-2");
    compare("EdDSA", &eddsa.public_key().to_jwk(), |claims| {
        eddsa.sign(claims).map_err(anyhow::Error::msg)
    })
}

/// Signs grants with `sign` (public key `jwk`), runs the interleaved rounds and prints them.
fn compare(alg: &str, jwk: &str, sign: impl Fn(JWTClaims<Value>) -> Result<String>) -> Result<()> {
    let jwks = json!({ "keys": [serde_json::from_str::<Value>(jwk)?] }).to_string();
    let grant = |n: usize| {
        sign(
            Claims::with_custom_claims(
                json!({ "functions": ["read_data"], "n": n }),
                Duration::from_secs(3600),
            )
            .with_issuer(ISSUER)
            .with_audience(AUDIENCE)
            .with_subject("alice"),
        )
    };
    let token = grant(0)?;
    let fresh: Vec<String> = (1..=FRESH_POOL).map(grant).collect::<Result<_>>()?;

    let plugin = WasmFilter::new(build_wasm("check-header")).plugin_name("istio-system", "check-header").json_configuration(&json!({
        "read_header": HEADER, "verification_key": jwks, "function": "read_data", "issuer": ISSUER, "audiences": [AUDIENCE],
        "verified_cache_entries": JWT_CACHE,
    }));
    let wasm = Envoy::builder().http_filter(plugin).start()?;
    let jwt_authn = json!({
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": { "grant": {
                "issuer": ISSUER, "audiences": [AUDIENCE], "local_jwks": { "inline_string": jwks },
                "from_headers": [{ "name": HEADER }], "forward": false,
                "jwt_cache_config": { "jwt_cache_size": JWT_CACHE },
            }},
            "rules": [{ "match": { "prefix": "/" }, "requires": { "provider_name": "grant" } }],
        },
    });
    let native = Envoy::builder().native_http_filter(jwt_authn).start()?;
    // The floor: a Wasm filter on the same SDK doing nothing per request (header-append with
    // an empty configuration). Its ratio bounds what any Wasm filter reaches in this set-up.
    let idle = WasmFilter::new(build_wasm("header-append"))
        .plugin_name("istio-system", "header-append")
        .json_configuration(&json!({}));
    let idle = Envoy::builder().http_filter(idle).start()?;
    // The least a Wasm filter consuming a credential pays: the host calls check-header makes
    // on a cache hit (read the header map, remove the grant, read the clock, count) and no
    // Wasm work, done by a plain proxy-wasm filter (`host_call_bench` prices each call).
    let calls_only = WasmFilter::new(build_wasm("runtime/bench-plugins/host-call-probe"))
        .plugin_name("istio-system", "probe")
        .configuration(format!("pairs remove:{HEADER} time counter"));
    let calls_only = Envoy::builder().http_filter(calls_only).start()?;
    let repeated = std::slice::from_ref(&token);
    let mut rates: [Vec<f64>; 6] = Default::default();
    for _ in 0..ROUNDS {
        rates[0].push(rate(&wasm, repeated, true)?);
        rates[1].push(rate(&native, repeated, true)?);
        rates[2].push(rate(&wasm, &fresh, true)?);
        rates[3].push(rate(&native, &fresh, true)?);
        rates[4].push(rate(&idle, repeated, false)?);
        rates[5].push(rate(&calls_only, repeated, false)?);
    }
    // Each round's ratio compares two runs seconds apart, so load from elsewhere on the
    // machine shifts both; the median of those is steadier than a ratio of medians.
    let ratios = |wasm: &[f64], native: &[f64]| {
        median(wasm.iter().zip(native).map(|(w, n)| w / n).collect())
    };
    let (ratio_same, ratio_fresh) = (ratios(&rates[0], &rates[1]), ratios(&rates[2], &rates[3]));
    let ratio_idle = ratios(&rates[4], &rates[1]);
    let ratio_calls = ratios(&rates[5], &rates[1]);
    let [wasm_same, native_same, wasm_fresh, native_fresh, idle_same, calls_same] =
        rates.map(median);
    let (first, hit, without_token) = instructions_per_request(&jwks, &sign)?;

    println!("check-header vs jwt_authn (JWT cache on), {alg} grants, Envoy 1.40 --concurrency 1");
    println!("{REQUESTS} requests on one keep-alive connection per run, {ROUNDS} interleaved rounds, medians (ratio: of each round's):");
    let line = |what: &str, wasm: f64, native: f64, ratio: f64| {
        println!("  {what:<27} check-header {wasm:>7.0} req/s   jwt_authn {native:>7.0} req/s   ratio {ratio:.2}")
    };
    line(
        "same token every request:",
        wasm_same,
        native_same,
        ratio_same,
    );
    line(
        &format!("fresh tokens ({FRESH_POOL} in turn):"),
        wasm_fresh,
        native_fresh,
        ratio_fresh,
    );
    println!("  floor, a Wasm filter doing nothing (header-append, empty config), same token: {idle_same:.0} req/s, ratio {ratio_idle:.2}");
    println!("  floor for a credential filter, its host calls alone (host-call-probe: pairs, remove, clock, counter): {calls_same:.0} req/s, ratio {ratio_calls:.2}");
    println!("  check-header in weir-runtime, Wasm instructions per allowed request: {first} verifying, {hit} on a cache hit ({without_token} for a request without the header)\n");
    Ok(())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Requests per second through `envoy`, sending `tokens` in turn, after checking (when
/// `verifies`) a forged one is refused and the first is allowed (so both filters really verify).
fn rate(envoy: &Envoy, tokens: &[String], verifies: bool) -> Result<f64> {
    let addr = envoy.url().trim_start_matches("http://").to_owned();
    let token = &tokens[0];
    if verifies {
        let mut conn = KeepAlive::open(&addr)?;
        // One signature character changed (not the last, whose low bits are padding).
        let at = token.len() - 20;
        let swap = if &token[at..=at] == "A" { "B" } else { "A" };
        let forged = format!("{}{swap}{}", &token[..at], &token[at + 1..]);
        ensure!(
            conn.get("/data", &[(HEADER, &forged)])? == 401,
            "a forged grant was not refused; Envoy log:\n{}",
            envoy.log()
        );
    }
    let mut conn = KeepAlive::open(&addr)?;
    for token in tokens.iter().cycle().take(WARM_UP) {
        ensure!(
            conn.get("/data", &[(HEADER, token)])? == 200,
            "the grant was refused; Envoy log:\n{}",
            envoy.log()
        );
    }
    let started = Instant::now();
    for token in tokens.iter().cycle().take(REQUESTS) {
        let status = conn.get("/data", &[(HEADER, token)])?;
        ensure!(status == 200, "status {status} during the run");
    }
    Ok(REQUESTS as f64 / started.elapsed().as_secs_f64())
}

/// Instructions for an allowed request (verified, then again from the cache), and for one
/// refused before any verification. The plugin runs in weir-runtime, whose clock starts at
/// [`weir_runtime::CLOCK_START`]: the grant is valid then.
fn instructions_per_request(
    jwks: &str,
    sign: impl Fn(JWTClaims<Value>) -> Result<String>,
) -> Result<(u64, u64, u64)> {
    let now = weir_runtime::CLOCK_START.as_secs();
    let mut claims = Claims::with_custom_claims(
        json!({ "functions": ["read_data"] }),
        Duration::from_secs(60),
    )
    .with_issuer(ISSUER)
    .with_audience(AUDIENCE)
    .with_subject("alice");
    claims.issued_at = Some(Duration::from_secs(now));
    claims.invalid_before = Some(Duration::from_secs(now));
    claims.expires_at = Some(Duration::from_secs(now + 60));
    let token = sign(claims)?;
    let plugin = weir_runtime::Plugin::build(repo_root().join("plugins/check-header"))
        .config(json!({ "read_header": HEADER, "verification_key": jwks, "function": "read_data", "issuer": ISSUER, "audiences": [AUDIENCE] }))
        .start()
        .context("starting check-header in weir-runtime")?;
    let send = || {
        plugin
            .http()
            .request(weir_runtime::Request::get("/data").header(HEADER, &token))
            .run()
    };
    let (out, again) = (send(), send());
    ensure!(
        out.upstream_request().is_some() && again.upstream_request().is_some(),
        "weir-runtime refused the grant: {:?}",
        out.logs()
    );
    let refused = plugin
        .http()
        .request(weir_runtime::Request::get("/data"))
        .run();
    ensure!(
        refused.local_reply().is_some(),
        "a request without the grant was not refused"
    );
    Ok((
        out.instructions(),
        again.instructions(),
        refused.instructions(),
    ))
}
