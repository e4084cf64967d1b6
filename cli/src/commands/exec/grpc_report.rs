//! The gRPC calls of a `weir exec` run, in the report: JSON (`"grpc_calls"`) and text.
//!
//! ```text
//! "grpc_calls": [ {
//!   "cluster", "token", "service", "method", "stream": false, "timeout_ms": 500 | null,
//!   "metadata": [["name", "value"], ...], "message_base64": "...",
//!   "sent_base64": ["..."], "client_ended", "cancelled",
//!   "received_base64": ["..."], "status": { "code", "message" } | null
//! } ]
//! ```
//!
//! Messages are protobuf, so always base64. `status` is what the plugin was told, with
//! the message as it reads it (Envoy appends its response details, `{via_upstream}`).

use std::fmt::Write as _;

use base64::Engine as _;
use serde_json::{json, Value};
use weir_runtime::GrpcCall;

fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub(super) fn call_json(call: &GrpcCall) -> Value {
    let request = call.request();
    json!({
        "cluster": call.cluster(),
        "token": call.token(),
        "service": request.service(),
        "method": request.method(),
        "stream": request.is_stream(),
        "timeout_ms": request.timeout().map(|t| t.as_millis() as u64),
        "metadata": request.initial_metadata().iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
        "message_base64": base64(request.message()),
        "sent_base64": call.sent_messages().iter().map(|m| base64(m)).collect::<Vec<_>>(),
        "client_ended": call.client_ended(),
        "cancelled": call.cancelled(),
        "received_base64": call.received_messages().iter().map(|m| base64(m)).collect::<Vec<_>>(),
        "status": call.status().map(|s| json!({ "code": s.code, "message": s.message })),
    })
}

pub(super) fn call_text(text: &mut String, number: usize, call: &GrpcCall) {
    let request = call.request();
    let kind = if request.is_stream() {
        "stream"
    } else {
        "call"
    };
    let timeout = request
        .timeout()
        .map(|t| format!(" (timeout {} ms)", t.as_millis()))
        .unwrap_or_default();
    let _ = writeln!(
        text,
        "  #{number} gRPC {kind} to {}: {}{timeout}",
        call.cluster(),
        request.path()
    );
    for (name, value) in request.initial_metadata().iter() {
        let _ = writeln!(text, "    {name}: {value}");
    }
    if !request.is_stream() {
        let _ = writeln!(text, "    message: {} bytes", request.message().len());
    }
    for message in call.sent_messages() {
        let _ = writeln!(text, "    sent: {} bytes", message.len());
    }
    for message in call.received_messages() {
        let _ = writeln!(text, "    <- message: {} bytes", message.len());
    }
    match (call.cancelled(), call.status()) {
        (true, _) => text.push_str("    -> cancelled by the plugin\n"),
        (false, Some(status)) => {
            let _ = writeln!(text, "    -> status {} {}", status.code, status.message);
        }
        (false, None) => text.push_str("    -> still open\n"),
    }
}
