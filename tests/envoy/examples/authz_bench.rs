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

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};
use weir_envoy_tests::{
    build_wasm, repo_root, Envoy, EnvoyBuilder, KeepAlive, TimedRequests, WasmFilter,
};
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

    let check_header = WasmFilter::new(build_wasm("check-header")).plugin_name("istio-system", "check-header").json_configuration(&json!({
        "read_header": HEADER, "verification_key": jwks, "function": "read_data", "issuer": ISSUER, "audiences": [AUDIENCE],
        "verified_cache_entries": JWT_CACHE,
    }));
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
    // The floor: a Wasm filter on the same SDK doing nothing per request (header-append with
    // an empty configuration). Its ratio bounds what any Wasm filter reaches in this set-up.
    let idle = WasmFilter::new(build_wasm("header-append"))
        .plugin_name("istio-system", "header-append")
        .json_configuration(&json!({}));
    // The least a Wasm filter consuming a credential pays: the host calls check-header makes
    // on a cache hit (read the header map, remove the grant, read the clock, count) and no
    // Wasm work, done by a plain proxy-wasm filter (`host_call_bench` prices each call).
    let calls_only = WasmFilter::new(build_wasm("runtime/bench-plugins/host-call-probe"))
        .plugin_name("istio-system", "probe")
        .configuration(format!("pairs remove:{HEADER} time counter"));
    // check-header first, then the one all are compared with, then the floors.
    let setups = [
        Setup::verifying("check-header", Envoy::builder().http_filter(check_header)),
        Setup::verifying("jwt_authn", Envoy::builder().native_http_filter(jwt_authn)),
        Setup::floor(
            "floor, a Wasm filter doing nothing (header-append, empty config)",
            Envoy::builder().http_filter(idle),
        ),
        Setup::floor(
            "floor for a credential filter, its host calls alone (host-call-probe: pairs, remove, clock, counter)",
            Envoy::builder().http_filter(calls_only),
        ),
    ];
    // Where the compared pair stands in `setups`.
    let (check_header_at, jwt_authn_at) = (0, 1);
    let envoys = setups
        .iter()
        .map(|setup| {
            let starting = || format!("starting Envoy with {}", setup.name);
            setup.envoy.clone().start().with_context(starting)
        })
        .collect::<Result<Vec<_>>>()?;
    let tokens = |load: Load| match load {
        Load::Same => std::slice::from_ref(&token),
        Load::Fresh => fresh.as_slice(),
    };
    // rates[setup][load]: one figure per round.
    let mut rates = vec![[Vec::new(), Vec::new()]; setups.len()];
    for _ in 0..ROUNDS {
        for load in LOADS {
            for (at, (setup, envoy)) in setups.iter().zip(&envoys).enumerate() {
                if setup.verifies || load == Load::Same {
                    let figure = rate(envoy, tokens(load), setup.verifies)
                        .with_context(|| format!("{}, {}", setup.name, load.label()))?;
                    rates[at][load as usize].push(figure);
                }
            }
        }
    }
    let median_rate = |at: usize, load: Load| median(rates[at][load as usize].clone());
    // Each round's ratio compares two runs seconds apart, so load from elsewhere on the
    // machine shifts both; the median of those is steadier than a ratio of medians.
    let ratio = |at: usize, load: Load| {
        let (these, baseline) = (
            &rates[at][load as usize],
            &rates[jwt_authn_at][load as usize],
        );
        median(these.iter().zip(baseline).map(|(r, b)| r / b).collect())
    };
    let (first, hit, without_token) = instructions_per_request(&jwks, &sign)?;

    println!("check-header vs jwt_authn (JWT cache on), {alg} grants, Envoy 1.40 --concurrency 1");
    println!("{REQUESTS} requests on one keep-alive connection per run, {ROUNDS} interleaved rounds, medians (ratio: of each round's):");
    for load in LOADS {
        println!(
            "  {:<27} {} {:>7.0} req/s   {} {:>7.0} req/s   ratio {:.2}",
            load.label(),
            setups[check_header_at].name,
            median_rate(check_header_at, load),
            setups[jwt_authn_at].name,
            median_rate(jwt_authn_at, load),
            ratio(check_header_at, load)
        );
    }
    for (at, floor) in setups.iter().enumerate().filter(|(_, s)| !s.verifies) {
        println!(
            "  {}, same token: {:.0} req/s, ratio {:.2}",
            floor.name,
            median_rate(at, Load::Same),
            ratio(at, Load::Same)
        );
    }
    println!("  check-header in weir-runtime, Wasm instructions per allowed request: {first} verifying, {hit} on a cache hit ({without_token} for a request without the header)\n");
    Ok(())
}

/// A filter under test, in an Envoy of its own that answers from its route (no upstream).
struct Setup {
    /// As the printed lines name it.
    name: &'static str,
    /// Whether it verifies grants: then it is timed under both loads, and a forged grant
    /// must be refused before each run.
    verifies: bool,
    envoy: EnvoyBuilder,
}

impl Setup {
    fn verifying(name: &'static str, envoy: EnvoyBuilder) -> Self {
        Setup {
            name,
            verifies: true,
            envoy,
        }
    }

    /// A floor verifies nothing: fresh tokens would time the same as one.
    fn floor(name: &'static str, envoy: EnvoyBuilder) -> Self {
        Setup {
            name,
            verifies: false,
            envoy,
        }
    }
}

/// The tokens the requests carry.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Load {
    /// The same token on every request.
    Same,
    /// `FRESH_POOL` distinct tokens in turn.
    Fresh,
}

/// In the order each round times them.
const LOADS: [Load; 2] = [Load::Same, Load::Fresh];

impl Load {
    fn label(self) -> String {
        match self {
            Load::Same => "same token every request:".into(),
            Load::Fresh => format!("fresh tokens ({FRESH_POOL} in turn):"),
        }
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Requests per second through `envoy`, sending `tokens` in turn (every answer must be 200),
/// after checking (when `verifies`) a forged one is refused (so the filter really verifies).
fn rate(envoy: &Envoy, tokens: &[String], verifies: bool) -> Result<f64> {
    let token = &tokens[0];
    if verifies {
        let mut conn = KeepAlive::open(envoy.url().trim_start_matches("http://"))?;
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
    let header_sets: Vec<Vec<(&str, &str)>> =
        tokens.iter().map(|t| vec![(HEADER, t.as_str())]).collect();
    let run = TimedRequests::new("/data", &header_sets, WARM_UP, REQUESTS);
    Ok(run.run(envoy)?.per_second())
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
