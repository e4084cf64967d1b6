//! `weir::grpc` in a real Envoy (guest: runtime/test-plugins/sdk-grpc-guest) against a real
//! gRPC server on 127.0.0.1 (`GrpcUpstream`, HTTP/2): unary calls with metadata, error
//! statuses, a timeout, an unknown cluster, a server stream with trailing metadata, calls
//! cancelled when the client goes away, and calls from a background job.

use std::time::{Duration, Instant};

use anyhow::Result;
use serde_json::json;
use weir_envoy_tests::{build_wasm_with, Envoy, GrpcReply, GrpcUpstream, HttpResponse, WasmFilter};

const GUEST: &str = "runtime/test-plugins/sdk-grpc-guest";

fn envoy(server: &GrpcUpstream, config: serde_json::Value) -> Result<Envoy> {
    let plugin = WasmFilter::new(build_wasm_with(GUEST, &[]))
        .plugin_name("default", "grpc-guest")
        .json_configuration(&config);
    Envoy::builder()
        .http_filter(plugin)
        .grpc_cluster("grpc", server.addr())
        .start()
}

/// The scripted server: `Unary` echoes `echo:<message>` (or fails, or is slow, as the message
/// says), `Watch` streams three messages and a trailer, `Hold*` and anything else wait for a
/// cancel, `Tick` answers `tock`.
fn server() -> Result<GrpcUpstream> {
    GrpcUpstream::start(|call| {
        let message = call.messages.first().cloned().unwrap_or_default();
        match (call.path.as_str(), message.as_slice()) {
            ("/test.Echo/Unary", b"fail") => GrpcReply::status(7, "not you"),
            ("/test.Echo/Unary", b"slow") => {
                GrpcReply::ok(vec![b"late".to_vec()]).delay(Duration::from_millis(1500))
            }
            ("/test.Echo/Unary", m) => GrpcReply::ok(vec![[b"echo:".as_slice(), m].concat()]),
            ("/test.Echo/Watch", m) => {
                let m = String::from_utf8_lossy(m);
                GrpcReply::ok((1..=3).map(|n| format!("{m}{n}").into_bytes()).collect())
                    .trailer("x-t", "done")
            }
            ("/test.Echo/Tick", _) => GrpcReply::ok(vec![b"tock".to_vec()]),
            _ => GrpcReply::ok(Vec::new()).hold(),
        }
    })
}

fn ask(envoy: &Envoy, query: &str) -> Result<HttpResponse> {
    envoy
        .get(&format!("/?{query}"))?
        .timeout(Duration::from_secs(10))
        .send()
}

#[test]
fn unary_calls_return_status_message_and_body_as_values() -> Result<()> {
    let server = server()?;
    let envoy = envoy(&server, json!({}))?;

    let res = ask(&envoy, "unary=hello")?;
    assert_eq!(res.status, 200, "{res:?}\n{}", envoy.log());
    assert_eq!(res.headers.get("x-grpc-code"), Some("OK"));
    assert_eq!(res.text(), "echo:hello");
    let call = &server.calls()[0];
    assert_eq!(call.path, "/test.Echo/Unary");
    assert_eq!(call.messages, vec![b"hello".to_vec()]);
    assert_eq!(call.metadata("x-probe"), Some("hello"));
    assert_eq!(call.metadata("content-type"), Some("application/grpc"));

    let res = ask(&envoy, "unary=fail")?;
    assert_eq!(res.status, 200, "an error status is a value: {res:?}");
    assert_eq!(res.headers.get("x-grpc-code"), Some("PERMISSION_DENIED"));
    // The server (tonic) percent-encodes `grpc-message`, the space too; Envoy passes it on
    // undecoded and adds where the status came from: `not%20you{via_upstream}`.
    let message = res.headers.get("x-grpc-message").unwrap_or_default();
    assert!(message.starts_with("not%20you"), "{message}");
    assert_eq!(res.text(), "");

    let res = ask(&envoy, "unary=slow&timeout=200")?;
    assert_eq!(res.status, 200, "{res:?}");
    // Envoy 1.40 reports its own timeout as UNAVAILABLE, not DEADLINE_EXCEEDED.
    assert_eq!(
        res.headers.get("x-grpc-code"),
        Some("UNAVAILABLE"),
        "{res:?}"
    );
    let message = res.headers.get("x-grpc-message").unwrap_or_default();
    assert!(message.starts_with("upstream request timeout"), "{message}");

    let res = ask(&envoy, "unary=x&cluster=nowhere")?;
    assert_eq!(res.status, 502, "{res:?}");
    assert!(
        res.text()
            .contains("cannot call test.Echo/Unary on gRPC cluster 'nowhere'"),
        "{}",
        res.text()
    );
    assert!(envoy.wasm_failures().is_empty(), "{}", envoy.log());
    Ok(())
}

#[test]
fn a_server_stream_delivers_every_message_then_status_and_trailers() -> Result<()> {
    let server = server()?;
    let envoy = envoy(&server, json!({}))?;
    let res = ask(&envoy, "stream=m")?;
    assert_eq!(res.status, 200, "{res:?}\n{}", envoy.log());
    assert_eq!(res.text(), "m1,m2,m3");
    assert_eq!(res.headers.get("x-grpc-count"), Some("3"));
    assert_eq!(res.headers.get("x-grpc-code"), Some("OK"));
    assert_eq!(res.headers.get("x-trailer"), Some("done"));
    assert_eq!(server.calls()[0].path, "/test.Echo/Watch");
    assert_eq!(server.calls()[0].messages, vec![b"m".to_vec()]);
    Ok(())
}

/// Waits (bounded) until the server saw `path` cancelled.
fn wait_cancelled(server: &GrpcUpstream, path: &str, envoy: &Envoy) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.cancelled().iter().any(|p| p == path) {
        assert!(
            Instant::now() < deadline,
            "{path} was never cancelled: {:?}\n{}",
            server.cancelled(),
            envoy.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn calls_in_flight_are_cancelled_when_the_client_goes_away() -> Result<()> {
    let server = server()?;
    let envoy = envoy(&server, json!({}))?;
    for (query, path) in [
        ("hold", "/test.Echo/Hold"),
        ("hold_stream", "/test.Echo/HoldStream"),
    ] {
        let gone = envoy
            .get(&format!("/?{query}"))?
            .timeout(Duration::from_millis(300))
            .send();
        assert!(gone.is_err(), "{query}: the call never answers: {gone:?}");
        wait_cancelled(&server, path, &envoy);
    }
    // The VM goes on serving.
    assert_eq!(ask(&envoy, "unary=after")?.text(), "echo:after");
    assert!(envoy.wasm_failures().is_empty(), "{}", envoy.log());
    Ok(())
}

#[test]
fn a_background_job_calls_and_awaits_grpc() -> Result<()> {
    let server = server()?;
    let envoy = envoy(&server, json!({ "tick": true }))?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !envoy.log().contains("tick: OK 4") {
        assert!(
            Instant::now() < deadline,
            "no tick answered:\n{}",
            envoy.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(server.calls().iter().any(|c| c.path == "/test.Echo/Tick"));
    Ok(())
}
