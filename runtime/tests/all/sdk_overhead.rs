//! What the Weir SDK costs per request: header-append (plugins/header-append, on the SDK)
//! against `bench-plugins/baseline-header-append`, the same job written by hand on the plain
//! `proxy-wasm` crate (configuration parsed once, a pointer to it per stream), both built
//! with the workspace's release profile. The job is header-append's flat form: two headers
//! appended to every response. Instruction counts are exact, so the test holds the ratio
//! to its target, and `make bench` (runtime/benches/header_append.rs) prints it.

use serde_json::{json, Value};
use weir_runtime::{Outcome, Plugin, Request, Response};

/// Header-append's instructions per request may be at most this many times the baseline's.
pub const TARGET_RATIO: f64 = 1.10;

/// header-append's flat form, which the baseline implements.
pub fn flat_config() -> Value {
    json!({ "x-served-by": "weir", "x-frame-options": "DENY" })
}

/// The benchmark's request: six headers, as a browser or API client sends.
pub fn request() -> Request {
    Request::get("/api/v1/orders?limit=20")
        .authority("shop.example.com")
        .header("user-agent", "curl/8.5.0")
        .header("accept", "application/json")
        .header("x-request-id", "6f1c9b1e-0c47-4d7e-9f0a-7d6c1f0e2b11")
        .header("x-internal-debug", "1")
        .header("x-trace-tag", "client")
}

/// The benchmark's response: four headers and a small body.
pub fn response() -> Response {
    Response::status(200)
        .header("content-type", "application/json")
        .header("server", "envoy")
        .header("x-powered-by", "express")
        .header("cache-control", "no-store")
        .body(r#"{"orders":[]}"#)
}

/// One request through each filter.
#[derive(Debug)]
pub struct Overhead {
    /// header-append, on the SDK.
    pub sdk: Outcome,
    /// The hand-written filter.
    pub baseline: Outcome,
}

impl Overhead {
    /// Builds both plugins (once per process) and runs the benchmark's request through each.
    pub fn measure() -> Overhead {
        let run = |crate_dir: &str| {
            let plugin = Plugin::build(crate_dir)
                .config(flat_config())
                .start()
                .unwrap_or_else(|e| panic!("starting {crate_dir}: {e}"));
            plugin.http().request(request()).response(response()).run()
        };
        Overhead {
            sdk: run(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../plugins/header-append"
            )),
            baseline: run(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/bench-plugins/baseline-header-append"
            )),
        }
    }

    /// header-append's instructions per request ÷ the baseline's.
    pub fn ratio(&self) -> f64 {
        self.sdk.instructions() as f64 / self.baseline.instructions() as f64
    }

    /// Instructions per callback, side by side, with the totals and the ratio.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<28} {:>13} {:>9}\n",
            "callback", "header-append", "baseline"
        );
        for cost in self.sdk.costs() {
            let baseline = self.baseline.instructions_in(cost.callback);
            out += &format!(
                "{:<28} {:>13} {:>9}\n",
                cost.callback,
                self.sdk.instructions_in(cost.callback),
                baseline
            );
        }
        out += &format!(
            "{:<28} {:>13} {:>9}\n",
            "total",
            self.sdk.instructions(),
            self.baseline.instructions()
        );
        out += &format!(
            "SDK overhead: header-append / baseline = {:.3} (target ≤ {TARGET_RATIO})",
            self.ratio()
        );
        out
    }
}

#[test]
fn header_append_and_the_hand_written_baseline_do_the_same_job() {
    let Overhead { sdk, baseline } = Overhead::measure();
    for outcome in [&sdk, &baseline] {
        assert!(outcome.trap().is_none(), "{:?}", outcome.trap());
        let client = outcome.response().expect("the response reaches the client");
        assert_eq!(client.header_value("x-served-by"), Some("weir"));
        assert_eq!(client.header_value("x-frame-options"), Some("DENY"));
    }
    assert_eq!(sdk.response(), baseline.response());
    assert_eq!(sdk.upstream_request(), baseline.upstream_request());
    // Each callback the host made to one was made to the other: the totals compare like with like.
    let callbacks = |o: &Outcome| o.costs().iter().map(|c| c.callback).collect::<Vec<_>>();
    assert_eq!(callbacks(&sdk), callbacks(&baseline));
}

#[test]
fn the_sdk_costs_at_most_ten_percent_more_than_hand_written_proxy_wasm() {
    let overhead = Overhead::measure();
    let table = overhead.table();
    eprintln!("{table}");
    assert!(overhead.ratio() <= TARGET_RATIO, "{table}");
}
