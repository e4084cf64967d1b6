//! `make demo`: header-append in a real Envoy (1.40, V8), configured the way istiod
//! configures a WasmPlugin, with one request shown hop by hop.
//!
//! Run with `make demo` (it builds `target/plugins/header-append.wasm` first).

use anyhow::{Context, Result};
use weir_envoy_tests::{repo_root, EchoUpstream, Envoy, Headers, Reply, WasmFilter};

const CONFIG: &str = r#"{
  "request_headers_to_add": [
    {"name": "x-request-team", "value": "payments", "action": "ADD_IF_ABSENT"},
    {"name": "x-forwarded-by", "value": "weir"}
  ],
  "request_headers_to_remove": ["x-debug"],
  "response_headers_to_add": [
    {"name": "x-frame-options", "value": "DENY", "action": "OVERWRITE_IF_EXISTS_OR_ADD"}
  ],
  "response_headers_to_remove": ["x-powered-by"],
  "first-header": "some-value"
}"#;

fn main() -> Result<()> {
    let wasm = repo_root().join("target/plugins/header-append.wasm");
    anyhow::ensure!(wasm.exists(), "{} is missing: run `make build` (or `make demo`)", wasm.display());

    let upstream = EchoUpstream::with_reply(
        Reply::status(200).header("x-powered-by", "php/8.3").header("x-frame-options", "SAMEORIGIN").body("hello from the upstream\n"),
    )?;
    let plugin = WasmFilter::new(&wasm).plugin_name("istio-system", "header-append").configuration(CONFIG);
    let envoy = Envoy::builder().http_filter(plugin).upstream(upstream.addr()).start().context("starting Envoy")?;

    println!("Envoy {} is listening on {} (admin {})", "1.40 (V8)", envoy.url(), envoy.admin_url());
    println!("plugin {} with pluginConfig:\n{CONFIG}\n", wasm.display());

    let response = envoy
        .get("/orders?id=42")?
        .header("x-debug", "1")
        .header("x-forwarded-by", "client")
        .send()
        .context("sending the demo request")?;

    println!("client  -> envoy    : GET /orders?id=42  x-debug: 1  x-forwarded-by: client");
    let seen = upstream.requests();
    let request = seen.first().context("the upstream saw no request")?;
    println!("envoy   -> upstream : {} {}", request.method, request.path);
    print_headers(&request.headers, &["x-debug", "x-request-team", "x-forwarded-by"]);
    println!("upstream -> envoy   : 200  x-powered-by: php/8.3  x-frame-options: SAMEORIGIN");
    println!("envoy   -> client   : {}", response.status);
    print_headers(&response.headers, &["x-powered-by", "x-frame-options", "first-header"]);
    println!("\n(Envoy wrote {} log lines; `make test` runs the full header-append suite.)", envoy.log().lines().count());
    Ok(())
}

fn print_headers(headers: &Headers, names: &[&str]) {
    for name in names {
        let values = headers.get_all(name);
        if values.is_empty() {
            println!("                      {name}: (absent)");
        }
        for value in values {
            println!("                      {name}: {value}");
        }
    }
}
