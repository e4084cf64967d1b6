//! `/grpc/…` paths: gRPC calls to cluster `grpc` (service `weir.test.Echo`), their answers
//! written into request headers before the request goes on, so the upstream shows them.
//!
//! - `/grpc/unary` (timeout 2 s) and `/grpc/timeout` (200 ms): method `Say`, message
//!   `Text{text: "ping"}`, metadata `x-exerciser-md: m1`; `x-grpc` says `ok <text>` or
//!   `status <code> <message>`.
//! - `/grpc/stream`: method `Chat`, sends `a` then `b` (ending its side); `x-grpc-stream`
//!   lists what arrived: initial metadata `x-srv`, messages, trailing `grpc-status` and
//!   `grpc-message`, the close.
//! - `/grpc/cancel`: opens a call and a stream and cancels both, twice: `x-grpc`.
//! - `/grpc/edges`: every refusal at the ABI's edges: `x-grpc-edges`.

use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use crate::Stream;

const CLUSTER: &str = "grpc";
const SERVICE: &str = "weir.test.Echo";

/// `Text { string text = 1; }`, encoded by hand: the guest carries no protobuf library.
pub(crate) fn text(value: &str) -> Vec<u8> {
    let mut out = vec![0x0a, value.len() as u8];
    out.extend_from_slice(value.as_bytes());
    out
}

/// The `text` field of a `Text` message, or the bytes as they are.
fn read_text(bytes: &[u8]) -> String {
    match bytes {
        [0x0a, len, rest @ ..] if usize::from(*len) == rest.len() => {
            String::from_utf8_lossy(rest).into_owned()
        }
        other => format!("{other:?}"),
    }
}

fn metadata() -> Vec<(&'static str, &'static [u8])> {
    vec![("x-exerciser-md", b"m1")]
}

#[allow(clashing_extern_declarations)]
mod raw {
    // The SDK panics on statuses it does not expect; the edges need the raw answers.
    #[link(wasm_import_module = "env")]
    extern "C" {
        pub fn proxy_grpc_send(token: u32, ptr: *const u8, len: usize, end: u32) -> u32;
        pub fn proxy_grpc_cancel(token: u32) -> u32;
        pub fn proxy_grpc_close(token: u32) -> u32;
    }
}

/// Starts the path's gRPC step.
pub(crate) fn start(stream: &mut Stream) -> Action {
    match stream.path.as_str() {
        "/grpc/unary" | "/grpc/timeout" => {
            let timeout = if stream.path.ends_with("timeout") {
                200
            } else {
                2000
            };
            let call = stream.dispatch_grpc_call(
                CLUSTER,
                SERVICE,
                "Say",
                metadata(),
                Some(&text("ping")),
                Duration::from_millis(timeout),
            );
            match call {
                Ok(_) => Action::Pause,
                Err(status) => {
                    stream.add_http_request_header("x-grpc", &format!("refused {status:?}"));
                    Action::Continue
                }
            }
        }
        "/grpc/stream" => match stream.open_grpc_stream(CLUSTER, SERVICE, "Chat", metadata()) {
            Ok(token) => {
                let a = hostcalls::send_grpc_stream_message(token, Some(&text("a")), false);
                let b = hostcalls::send_grpc_stream_message(token, Some(&text("b")), true);
                stream.grpc_events.push(format!("sent {a:?} {b:?}"));
                Action::Pause
            }
            Err(status) => {
                stream.add_http_request_header("x-grpc-stream", &format!("refused {status:?}"));
                Action::Continue
            }
        },
        "/grpc/cancel" => {
            let call = stream.dispatch_grpc_call(
                CLUSTER,
                SERVICE,
                "Say",
                metadata(),
                Some(&text("never")),
                Duration::from_secs(2),
            );
            let opened = stream.open_grpc_stream(CLUSTER, SERVICE, "Chat", metadata());
            let (call, opened) = (call.unwrap_or(0), opened.unwrap_or(0));
            // SAFETY: plain host calls with integer arguments.
            let statuses = unsafe {
                [
                    raw::proxy_grpc_cancel(call),
                    raw::proxy_grpc_cancel(call),
                    raw::proxy_grpc_close(call),
                    raw::proxy_grpc_cancel(opened),
                    raw::proxy_grpc_close(opened),
                ]
            };
            stream.add_http_request_header(
                "x-grpc",
                &format!("tokens {call} {opened} cancel {statuses:?}"),
            );
            Action::Continue
        }
        "/grpc/edges" => {
            let call = stream.dispatch_grpc_call(
                "no-such-cluster",
                SERVICE,
                "Say",
                vec![],
                None,
                Duration::from_secs(1),
            );
            let opened = stream.open_grpc_stream("no-such-cluster", SERVICE, "Chat", vec![]);
            let message = text("x");
            // SAFETY: plain host calls; the message outlives them.
            let statuses = unsafe {
                [
                    // A call token where a stream is needed, never opened.
                    raw::proxy_grpc_send(5, message.as_ptr(), message.len(), 0),
                    // A stream token never opened.
                    raw::proxy_grpc_send(6, message.as_ptr(), message.len(), 1),
                    raw::proxy_grpc_cancel(4001),
                    raw::proxy_grpc_close(4002),
                    // An HTTP callout's token kind.
                    raw::proxy_grpc_cancel(8),
                    raw::proxy_grpc_close(8),
                ]
            };
            stream.add_http_request_header(
                "x-grpc-edges",
                &format!("call {call:?} stream {opened:?} then {statuses:?}"),
            );
            Action::Continue
        }
        _ => Action::Continue,
    }
}

/// A unary call's answer: into `x-grpc`, then the request goes on.
pub(crate) fn on_call_response(stream: &mut Stream, status: u32, size: usize) {
    let seen = if status == 0 {
        let body = stream
            .get_grpc_call_response_body(0, size)
            .unwrap_or_default();
        format!("ok {}", read_text(&body))
    } else {
        let (code, message) = stream.get_grpc_status();
        format!("status {status} ({code} {})", message.unwrap_or_default())
    };
    stream.add_http_request_header("x-grpc", &seen);
    stream.resume_http_request();
}

pub(crate) fn on_initial_metadata(stream: &mut Stream) {
    let srv = stream
        .get_grpc_stream_initial_metadata_value("x-srv")
        .map(|v| String::from_utf8_lossy(&v).into_owned());
    stream.grpc_events.push(format!("initial x-srv={srv:?}"));
}

pub(crate) fn on_message(stream: &mut Stream, size: usize) {
    let message = stream.get_grpc_stream_message(0, size).unwrap_or_default();
    stream
        .grpc_events
        .push(format!("message {}", read_text(&message)));
}

pub(crate) fn on_trailing_metadata(stream: &mut Stream) {
    let value = |name: &str| {
        stream
            .get_grpc_stream_trailing_metadata_value(name)
            .map(|v| String::from_utf8_lossy(&v).into_owned())
    };
    let seen = format!(
        "trailing grpc-status={:?} grpc-message={:?} x-trailer={:?}",
        value("grpc-status"),
        value("grpc-message"),
        value("x-trailer")
    );
    stream.grpc_events.push(seen);
}

pub(crate) fn on_close(stream: &mut Stream, token: u32, status: u32) {
    let (code, message) = stream.get_grpc_status();
    // SAFETY: a plain host call with an integer argument.
    let close = unsafe { raw::proxy_grpc_close(token) };
    stream.grpc_events.push(format!(
        "close {status} ({code} {}) then close {close}",
        message.unwrap_or_default()
    ));
    let events = stream.grpc_events.join("; ");
    stream.add_http_request_header("x-grpc-stream", &events);
    stream.resume_http_request();
}
