//! `make bench` (part): what each proxy-wasm host call costs a request in Envoy 1.40 (V8),
//! against the same filter doing nothing, so check-header's per-request cost can be read as
//! a sum of host calls and Wasm work.
//!
//! One Envoy (`--concurrency 1`) per configuration of `runtime/bench-plugins/host-call-probe`
//! (a plain proxy-wasm filter that, on every request's headers, does only what its
//! configuration names), plus check-header on a repeated grant for comparison. Every request
//! carries a 357-byte header, the size of the benchmarks' grants. `ROUNDS` interleaved rounds
//! of `REQUESTS` requests on one keep-alive connection; each configuration's extra time per
//! request against the empty one is the median over rounds of the difference of the two
//! runs' mean request times. `spin:N` prices plain Wasm work: its Wasm instruction count per
//! request, measured in weir-runtime, is printed beside it.

use anyhow::{Context, Result};
use serde_json::{json, Value};
use weir_envoy_tests::{build_wasm, Envoy, TimedRequests, WasmFilter};
use weir_test_jwt::jwt_simple::prelude::*;

const REQUESTS: usize = 4_000;
const WARM_UP: usize = 300;
const ROUNDS: usize = 7;
const HEADER: &str = "authz_complete";

/// The probe's configurations: a label and the operations done on every request.
const PROBES: &[(&str, &str)] = &[
    ("nothing", ""),
    ("read the header map (pairs)", "pairs"),
    ("read one header", "get:authz_complete"),
    ("remove one header", "remove:authz_complete"),
    ("replace one header", "set:x-probe"),
    ("read the clock", "time"),
    ("increment a counter", "counter"),
    (
        "pairs + remove + clock + counter",
        "pairs remove:authz_complete time counter",
    ),
    ("Wasm work: spin:2000", "spin:2000"),
    ("Wasm work: spin:8000", "spin:8000"),
];

fn main() -> Result<()> {
    let probe = build_wasm("runtime/bench-plugins/host-call-probe");
    // An ES256 grant for check-header; the other filters only carry it.
    let key = ES256KeyPair::generate().with_key_id("grant-1");
    let jwks = json!({ "keys": [serde_json::from_str::<Value>(&key.public_key().to_jwk())?] });
    let claims = Claims::with_custom_claims(
        json!({ "functions": ["read_data"] }),
        Duration::from_hours(1),
    )
    .with_issuer("weir-policy-server")
    .with_audience("check-header");
    let value = key.sign(claims).map_err(anyhow::Error::msg)?;
    let mut envoys = Vec::new();
    for (label, ops) in PROBES {
        let filter = WasmFilter::new(&probe)
            .plugin_name("istio-system", "probe")
            .configuration(*ops);
        let envoy = Envoy::builder()
            .http_filter(filter)
            .start()
            .with_context(|| format!("starting Envoy with the probe doing {label:?}"))?;
        envoys.push((label.to_string(), envoy));
    }
    let check_header = WasmFilter::new(build_wasm("check-header"))
        .plugin_name("istio-system", "check-header")
        .json_configuration(&json!({
            "read_header": HEADER, "verification_key": jwks.to_string(), "function": "read_data",
            "issuer": "weir-policy-server", "audiences": ["check-header"], "verified_cache_entries": 100,
        }));
    envoys.push((
        "check-header, repeated grant".into(),
        Envoy::builder().http_filter(check_header).start()?,
    ));
    let idle = WasmFilter::new(build_wasm("header-append"))
        .plugin_name("istio-system", "header-append")
        .json_configuration(&json!({}));
    envoys.push((
        "header-append, empty config".into(),
        Envoy::builder().http_filter(idle).start()?,
    ));
    let header_sets = [vec![(HEADER, value.as_str())]];
    let run = TimedRequests::new("/data", &header_sets, WARM_UP, REQUESTS);
    let mut micros: Vec<Vec<f64>> = vec![Vec::new(); envoys.len()];
    for _ in 0..ROUNDS {
        for (at, (label, envoy)) in envoys.iter().enumerate() {
            let timing = run
                .run(envoy)
                .with_context(|| format!("timing {label:?}"))?;
            micros[at].push(timing.micros_per_request());
        }
    }
    let instructions = spin_instructions(&probe, &value)?;
    println!("Host calls in Envoy 1.40 (V8, --concurrency 1), {REQUESTS} requests on one keep-alive connection per run, {ROUNDS} interleaved rounds, medians:");
    let nothing = median(micros[0].clone());
    println!(
        "  {:<36} {nothing:>6.2} µs per request",
        "the probe doing nothing"
    );
    for (at, (label, _)) in envoys.iter().enumerate().skip(1) {
        let extra = median(
            micros[at]
                .iter()
                .zip(&micros[0])
                .map(|(m, n)| m - n)
                .collect(),
        );
        let note = instructions
            .iter()
            .find(|(ops, _)| PROBES.get(at).is_some_and(|p| p.1 == ops))
            .map(|(_, n)| format!("   ({n} Wasm instructions per request more than nothing)"))
            .unwrap_or_default();
        println!("  {label:<36} {extra:>+6.2} µs{note}");
    }
    Ok(())
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The Wasm instructions each `spin:N` probe adds to a request, counted in weir-runtime.
fn spin_instructions(probe: &std::path::Path, value: &str) -> Result<Vec<(String, u64)>> {
    let count = |ops: &str| -> Result<u64> {
        let plugin = weir_runtime::Plugin::load(probe).config(ops).start()?;
        let out = plugin
            .http()
            .request(weir_runtime::Request::get("/data").header(HEADER, value))
            .run();
        Ok(out.instructions())
    };
    let base = count("")?;
    PROBES
        .iter()
        .filter(|(_, ops)| ops.starts_with("spin"))
        .map(|(_, ops)| Ok((ops.to_string(), count(ops)? - base)))
        .collect()
}
