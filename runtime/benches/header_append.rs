//! Benchmarks of the runtime on the real header-append `.wasm` (`make bench`):
//!
//! - `request`: one realistic request/response through the plugin (request and response
//!   headers, a config with several operations), on one core; criterion reports it as
//!   requests per second ("elem/s").
//! - `instantiate/cold`: load a module never seen before (compile with cranelift, link,
//!   instantiate, `_initialize`, `proxy_on_vm_start`, `proxy_on_configure`).
//! - `instantiate/cached`: the same with the module already compiled, which is what every
//!   test after the first in a process pays.
//!
//! Instructions per request (wasmtime fuel) are exact, so they are printed once rather than
//! measured: they do not vary between runs. So is the SDK's overhead: header-append's
//! instructions per request against a hand-written proxy-wasm filter doing the same job
//! (`bench-plugins/baseline-header-append`), per callback and as a ratio.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::{json, Value};
use weir_runtime::Plugin;

// The benchmark's request and response, and header-append against a hand-written filter.
#[path = "../tests/all/sdk_overhead.rs"]
mod sdk_overhead;
use sdk_overhead::{request, response, Overhead};

fn module() -> Vec<u8> {
    let crate_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../plugins/header-append");
    let path =
        Plugin::wasm_path(crate_dir).unwrap_or_else(|e| panic!("building header-append: {e}"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// A configuration like a real deployment's: additions with three different actions on
/// requests and responses, and removals in both directions.
fn config() -> Value {
    let op = |name: &str, value: &str, action: &str| json!({ "name": name, "value": value, "action": action });
    json!({
        "request_headers_to_add": [
            op("x-team", "payments", "ADD_IF_ABSENT"),
            op("x-forwarded-proto", "https", "OVERWRITE_IF_EXISTS_OR_ADD"),
            op("x-trace-tag", "canary", "APPEND_IF_EXISTS_OR_ADD"),
        ],
        "request_headers_to_remove": ["x-internal-debug"],
        "response_headers_to_add": [
            op("strict-transport-security", "max-age=31536000", "OVERWRITE_IF_EXISTS_OR_ADD"),
            op("x-served-by", "weir", "ADD_IF_ABSENT"),
        ],
        "response_headers_to_remove": ["server", "x-powered-by"],
    })
}

/// The module with a custom section appended: new content for the compile cache, the same
/// code for the compiler.
fn unseen_variant(wasm: &[u8], n: u64) -> Vec<u8> {
    let name = b"weir-bench";
    let payload = n.to_le_bytes();
    let mut out = wasm.to_vec();
    out.push(0); // custom section id
    out.push((1 + name.len() + payload.len()) as u8); // size; fits one LEB128 byte
    out.push(name.len() as u8);
    out.extend_from_slice(name);
    out.extend_from_slice(&payload);
    out
}

fn benches(c: &mut Criterion) {
    let wasm = module();
    let config = config();
    let plugin = Plugin::from_bytes(wasm.clone())
        .config(config.clone())
        .start()
        .expect("header-append starts");

    // Check the exchange does what the benchmark claims, and print its exact cost.
    let out = plugin.http().request(request()).response(response()).run();
    let upstream = out
        .upstream_request()
        .expect("request reaches the upstream");
    assert_eq!(upstream.header_value("x-team"), Some("payments"));
    assert_eq!(upstream.header_value("x-internal-debug"), None);
    let client = out.response().expect("response reaches the client");
    assert_eq!(client.header_value("server"), None);
    assert_eq!(client.header_value("x-served-by"), Some("weir"));
    eprintln!(
        "header-append: {} wasm instructions per request",
        out.instructions()
    );
    for cost in out.costs() {
        eprintln!("  {:<28} {:>6}", cost.callback, cost.instructions);
    }

    eprintln!("\nheader-append (flat form, 2 headers) vs the same filter hand-written on proxy-wasm, instructions per request:");
    eprintln!("{}\n", Overhead::measure().table());

    let (request, response) = (request(), response());
    let mut group = c.benchmark_group("header-append");
    group.throughput(Throughput::Elements(1));
    group.bench_function("request", |b| {
        b.iter(|| {
            black_box(
                plugin
                    .http()
                    .request(request.clone())
                    .response(response.clone())
                    .run(),
            )
        })
    });
    group.finish();

    let mut group = c.benchmark_group("instantiate");
    // Each cold sample compiles the whole module: keep the sample count low.
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    let mut n = 0u64;
    group.bench_function("cold", |b| {
        b.iter_batched(
            || {
                n += 1;
                unseen_variant(&wasm, n)
            },
            |bytes| {
                black_box(
                    Plugin::from_bytes(bytes)
                        .config(config.clone())
                        .start()
                        .expect("starts"),
                )
            },
            criterion::BatchSize::PerIteration,
        )
    });
    group
        .sample_size(100)
        .measurement_time(Duration::from_secs(5));
    group.bench_function("cached", |b| {
        b.iter(|| {
            black_box(
                Plugin::from_bytes(wasm.clone())
                    .config(config.clone())
                    .start()
                    .expect("starts"),
            )
        })
    });
    group.finish();
}

criterion_group!(header_append, benches);
criterion_main!(header_append);
