//! `make bench` (part): check-header's grant verification in Envoy 1.40 against Envoy's own
//! `jwt_authn` verifying the same ES256 token, and check-header's Wasm instructions per
//! request in weir-runtime.
//!
//! Each Envoy (`--concurrency 1`) has one filter and answers from its route (no upstream),
//! so the difference is the verification. One client thread sends `REQUESTS` requests over
//! one keep-alive connection after a warm-up; one run, no statistics.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Instant;

use anyhow::{bail, ensure, Context, Result};
use jwt_simple::prelude::*;
use serde_json::{json, Value};
use weir_envoy_tests::{build_wasm, repo_root, Envoy, WasmFilter};

const REQUESTS: usize = 5_000;
const WARM_UP: usize = 300;
const HEADER: &str = "authz_complete";
const ISSUER: &str = "weir-policy-server";
const AUDIENCE: &str = "check-header";

fn main() -> Result<()> {
    let key = ES256KeyPair::generate().with_key_id("grant-1");
    let jwk: Value = serde_json::from_str(&key.public_key().to_jwk())?;
    let jwks = json!({ "keys": [jwk] }).to_string();
    let claims = Claims::with_custom_claims(json!({ "functions": ["read_data"] }), Duration::from_secs(3600))
        .with_issuer(ISSUER)
        .with_audience(AUDIENCE)
        .with_subject("alice");
    let token = key.sign(claims).map_err(anyhow::Error::msg)?;

    let plugin = WasmFilter::new(build_wasm("check-header")).plugin_name("istio-system", "check-header").json_configuration(&json!({
        "read_header": HEADER, "verification_key": jwks, "function": "read_data", "issuer": ISSUER, "audiences": [AUDIENCE],
    }));
    let wasm_rate = rate(Envoy::builder().http_filter(plugin).start()?, &token)?;
    let jwt_authn = json!({
        "name": "envoy.filters.http.jwt_authn",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
            "providers": { "grant": {
                "issuer": ISSUER, "audiences": [AUDIENCE], "local_jwks": { "inline_string": jwks },
                "from_headers": [{ "name": HEADER }], "forward": false,
            }},
            "rules": [{ "match": { "prefix": "/" }, "requires": { "provider_name": "grant" } }],
        },
    });
    let native_rate = rate(Envoy::builder().native_http_filter(jwt_authn).start()?, &token)?;
    // The instruction count runs the same plugin build in weir-runtime, whose clock starts at
    // 2026-01-01: it gets a token of its own, valid then.
    let (instructions, without_token) = instructions_per_request(&key)?;

    println!("check-header vs jwt_authn, ES256 grant, {REQUESTS} requests on one keep-alive connection, Envoy 1.40 --concurrency 1");
    println!("  check-header (wasm, V8)  {wasm_rate:>8.0} requests/s");
    println!("  jwt_authn (native)       {native_rate:>8.0} requests/s");
    println!("  ratio check-header / jwt_authn = {:.2}", wasm_rate / native_rate);
    println!("  check-header in weir-runtime: {instructions} Wasm instructions per allowed request ({without_token} for a request without the header)");
    Ok(())
}

/// Requests per second through `envoy` with `token`, after checking one is allowed and one
/// with a broken signature is refused (so both filters really verify).
fn rate(envoy: Envoy, token: &str) -> Result<f64> {
    let addr = envoy.url().trim_start_matches("http://").to_owned();
    let mut conn = Conn::open(&addr)?;
    // One signature character changed (not the last, whose low bits are padding).
    let at = token.len() - 20;
    let swap = if &token[at..=at] == "A" { "B" } else { "A" };
    let forged = format!("{}{swap}{}", &token[..at], &token[at + 1..]);
    ensure!(conn.get(&forged)? == 401, "a forged grant was not refused; Envoy log:\n{}", envoy.log());
    let mut conn = Conn::open(&addr)?;
    for _ in 0..WARM_UP {
        ensure!(conn.get(token)? == 200, "the grant was refused; Envoy log:\n{}", envoy.log());
    }
    let started = Instant::now();
    for _ in 0..REQUESTS {
        let status = conn.get(token)?;
        ensure!(status == 200, "status {status} during the run");
    }
    Ok(REQUESTS as f64 / started.elapsed().as_secs_f64())
}

/// Instructions for an allowed request, and for one refused before any verification.
fn instructions_per_request(key: &ES256KeyPair) -> Result<(u64, u64)> {
    let now = 1_767_225_600; // weir-runtime's clock at start
    let mut claims = Claims::with_custom_claims(json!({ "functions": ["read_data"] }), Duration::from_secs(60))
        .with_issuer(ISSUER)
        .with_audience(AUDIENCE)
        .with_subject("alice");
    claims.issued_at = Some(Duration::from_secs(now));
    claims.invalid_before = Some(Duration::from_secs(now));
    claims.expires_at = Some(Duration::from_secs(now + 60));
    let token = key.sign(claims).map_err(anyhow::Error::msg)?;
    let jwks = json!({ "keys": [serde_json::from_str::<Value>(&key.public_key().to_jwk())?] }).to_string();
    let plugin = weir_runtime::Plugin::build(repo_root().join("plugins/check-header"))
        .config(json!({ "read_header": HEADER, "verification_key": jwks, "function": "read_data", "issuer": ISSUER, "audiences": [AUDIENCE] }))
        .start()
        .context("starting check-header in weir-runtime")?;
    let out = plugin.http().request(weir_runtime::Request::get("/data").header(HEADER, &token)).run();
    ensure!(out.upstream_request().is_some(), "weir-runtime refused the grant: {:?}", out.logs());
    let refused = plugin.http().request(weir_runtime::Request::get("/data")).run();
    ensure!(refused.local_reply().is_some(), "a request without the grant was not refused");
    Ok((out.instructions(), refused.instructions()))
}

/// One keep-alive HTTP/1.1 connection; answers are read by `content-length`.
struct Conn {
    reader: BufReader<TcpStream>,
    stream: TcpStream,
}

impl Conn {
    fn open(addr: &str) -> Result<Self> {
        let stream = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(std::time::Duration::from_secs(10)))?;
        Ok(Conn { reader: BufReader::new(stream.try_clone()?), stream })
    }

    fn get(&mut self, token: &str) -> Result<u16> {
        write!(self.stream, "GET /data HTTP/1.1\r\nhost: bench\r\n{HEADER}: {token}\r\n\r\n")?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status: u16 = line.split(' ').nth(1).and_then(|s| s.parse().ok()).with_context(|| format!("bad status line {line:?}"))?;
        let mut length = 0;
        loop {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                bail!("connection closed mid-response");
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse()?;
                }
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body)?;
        Ok(status)
    }
}
