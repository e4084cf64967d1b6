//! gRPC modes of the probe (`x-probe: grpc-*`): a unary call, a stream, cancel, and an
//! unknown cluster. Every answer is logged, so tests read what the plugin saw.

use std::time::Duration;

use log::{info, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use crate::Http;

/// Starts what `mode` asks for; `None` if it is not a gRPC mode.
pub(crate) fn start(http: &mut Http, mode: &str) -> Option<Action> {
    let metadata: Vec<(&str, &[u8])> = vec![("x-md", b"one")];
    Some(match mode {
        "grpc-unary" | "grpc-slow" => {
            let timeout = Duration::from_millis(if mode == "grpc-slow" { 100 } else { 500 });
            let call = http.dispatch_grpc_call(
                "echo",
                "test.Echo",
                "Say",
                metadata,
                Some(b"ping"),
                timeout,
            );
            info!("grpc call: {call:?}");
            if call.is_ok() {
                Action::Pause
            } else {
                Action::Continue
            }
        }
        "grpc-unknown" => {
            let call = http.dispatch_grpc_call(
                "nope",
                "test.Echo",
                "Say",
                metadata,
                None,
                Duration::from_secs(1),
            );
            let stream = http.open_grpc_stream("nope", "test.Echo", "Chat", vec![]);
            warn!("grpc unknown cluster: call {call:?}, stream {stream:?}");
            Action::Continue
        }
        "grpc-cancel" => {
            let Ok(token) = http.dispatch_grpc_call(
                "echo",
                "test.Echo",
                "Say",
                metadata,
                Some(b"x"),
                Duration::from_secs(1),
            ) else {
                return Some(Action::Continue);
            };
            let first = hostcalls::cancel_grpc_call(token);
            let second = hostcalls::cancel_grpc_call(token);
            let wrong = hostcalls::cancel_grpc_call(token + 1);
            let absent = hostcalls::close_grpc_stream(4 * 1000 + 2);
            info!(
                "grpc cancel: {first:?} then {second:?}; wrong kind {wrong:?}; absent {absent:?}"
            );
            Action::Continue
        }
        "grpc-stream" => match http.open_grpc_stream("echo", "test.Echo", "Chat", metadata) {
            Ok(token) => {
                let first = hostcalls::send_grpc_stream_message(token, Some(b"a"), false);
                let last = hostcalls::send_grpc_stream_message(token, Some(b"b"), true);
                info!("grpc stream {token}: sent {first:?} {last:?}");
                Action::Pause
            }
            Err(status) => {
                warn!("grpc stream refused: {status:?}");
                Action::Continue
            }
        },
        _ => return None,
    })
}

/// The `Context` callbacks of the probe's HTTP streams for gRPC.
pub(crate) fn on_call_response(http: &mut Http, token: u32, status: u32, size: usize) {
    if status == 0 {
        let body = http
            .get_grpc_call_response_body(0, size)
            .unwrap_or_default();
        info!("grpc reply {token}: {}", String::from_utf8_lossy(&body));
        http.send_http_response(200, vec![], Some(&body));
    } else {
        let (code, message) = http.get_grpc_status();
        warn!("grpc failed {token}: {status} ({code} {message:?})");
        http.send_http_response(503, vec![], Some(b"grpc failed"));
    }
}

pub(crate) fn on_initial_metadata(http: &mut Http, token: u32, count: u32) {
    let srv = http
        .get_grpc_stream_initial_metadata_value("x-srv")
        .map(|v| String::from_utf8_lossy(&v).into_owned());
    info!("grpc initial metadata {token}: {count} x-srv={srv:?}");
}

pub(crate) fn on_message(http: &mut Http, token: u32, size: usize) {
    let message = http.get_grpc_stream_message(0, size).unwrap_or_default();
    info!(
        "grpc message {token}: {}",
        String::from_utf8_lossy(&message)
    );
}

pub(crate) fn on_trailing_metadata(http: &mut Http, token: u32, count: u32) {
    let status = http
        .get_grpc_stream_trailing_metadata_value("grpc-status")
        .map(|v| String::from_utf8_lossy(&v).into_owned());
    info!("grpc trailing metadata {token}: {count} grpc-status={status:?}");
}

pub(crate) fn on_close(http: &mut Http, token: u32, status: u32) {
    let (code, message) = http.get_grpc_status();
    let again = hostcalls::close_grpc_stream(token);
    info!("grpc closed {token}: {status} ({code} {message:?}); close {again:?}");
    http.resume_http_request();
}
