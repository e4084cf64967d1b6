//! What `weir exec` prints: one [`Report`] of a run, as JSON (`--json`) or as text.
//!
//! # JSON shape (version 1)
//!
//! Stable: fields are only ever added, and `"weir_exec"` changes if one changes meaning.
//!
//! ```text
//! {
//!   "weir_exec": 1,
//!   "plugin": { "path": "...", "root_id": "...", "abi_version": "0.1.0" | "0.2.0" | "0.2.1" },
//!   "actions": [ { "phase": "request_headers", "action": "continue" | "pause", "raw": 0 } ],
//!   "upstream_request": MESSAGE | null,     // null: the request never reached the upstream
//!   "response": MESSAGE | null,             // as the client received it
//!   "response_source": "upstream" | "local_reply" | null,
//!   "local_reply": { "status", "details", "grpc_status", "headers", "body" } | null,
//!   "callouts": [ { "cluster", "timeout_ms", "request": MESSAGE, "response": MESSAGE | null } ],
//!   "grpc_calls": [ GRPC_CALL ],            // see grpc_report.rs
//!   "logs": [ { "scope": "plugin" | "stream", "level": "info", "message": "..." } ],
//!   "metrics": [ { "name": "...", "value": 1 } ],
//!   "instructions": { "total": 1234, "callbacks": [ { "callback": "proxy_on_request_headers", "instructions": 600 } ] },
//!   "trap": { "callback", "message", "panic_message", "out_of_fuel" } | null,
//!   "reset": false
//! }
//! MESSAGE = { "headers": [["name", "value"], ...], "trailers": [[...]], "body": "text" }
//! ```
//!
//! Headers keep their order and duplicates, pseudo-headers included. A body that is not
//! UTF-8 comes as `"body_base64"` instead of `"body"`.

use std::fmt::Write as _;

use base64::Engine as _;
use serde_json::{json, Map, Value};
use weir_runtime::{
    AbiVersion, Action, Callout, Headers, LogEntry, LogLevel, Outcome, Phase, Request, Response,
};

/// Version of the JSON shape.
pub(crate) const JSON_VERSION: u64 = 1;

/// Where a log line was written: start-up and timers (root context) or the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    Plugin,
    Stream,
}

/// One run of `weir exec`, ready to print.
#[derive(Debug)]
pub(crate) struct Report {
    pub(crate) path: String,
    pub(crate) root_id: String,
    /// The proxy-wasm ABI the module declares (its `proxy_abi_version_*` export).
    pub(crate) abi_version: AbiVersion,
    pub(crate) outcome: Outcome,
    pub(crate) logs: Vec<(Scope, LogEntry)>,
}

fn level_name(level: LogLevel) -> &'static str {
    match level {
        LogLevel::Trace => "trace",
        LogLevel::Debug => "debug",
        LogLevel::Info => "info",
        LogLevel::Warn => "warn",
        LogLevel::Error => "error",
        LogLevel::Critical => "critical",
    }
}

fn phase_name(phase: Phase) -> &'static str {
    match phase {
        Phase::RequestHeaders => "request_headers",
        Phase::RequestBody => "request_body",
        Phase::RequestTrailers => "request_trailers",
        Phase::ResponseHeaders => "response_headers",
        Phase::ResponseBody => "response_body",
        Phase::ResponseTrailers => "response_trailers",
        Phase::NewConnection => "new_connection",
        Phase::DownstreamData => "downstream_data",
        Phase::UpstreamData => "upstream_data",
        _ => "other",
    }
}

fn raw_action(action: Action) -> u32 {
    match action {
        Action::Continue => 0,
        Action::Pause(raw) => raw,
    }
}

fn headers_json(headers: &Headers) -> Value {
    Value::Array(headers.iter().map(|(k, v)| json!([k, v])).collect())
}

fn body_json(object: &mut Map<String, Value>, body: &[u8]) {
    match std::str::from_utf8(body) {
        Ok(text) => object.insert("body".into(), json!(text)),
        Err(_) => object.insert(
            "body_base64".into(),
            json!(base64::engine::general_purpose::STANDARD.encode(body)),
        ),
    };
}

fn message_json(headers: &Headers, trailers: &Headers, body: &[u8]) -> Value {
    let mut object = Map::new();
    object.insert("headers".into(), headers_json(headers));
    object.insert("trailers".into(), headers_json(trailers));
    body_json(&mut object, body);
    Value::Object(object)
}

fn request_json(request: &Request) -> Value {
    message_json(request.headers(), request.trailers(), request.body_bytes())
}

fn response_json(response: &Response) -> Value {
    message_json(
        response.headers(),
        response.trailers(),
        response.body_bytes(),
    )
}

fn callout_json(callout: &Callout) -> Value {
    json!({
        "cluster": callout.cluster(),
        "timeout_ms": callout.timeout().as_millis() as u64,
        "request": request_json(callout.request()),
        "response": callout.response().map(response_json),
    })
}

impl Report {
    fn response_source(&self) -> Option<&'static str> {
        match (&self.outcome.local_reply(), &self.outcome.response()) {
            (Some(_), _) => Some("local_reply"),
            (None, Some(_)) => Some("upstream"),
            (None, None) => None,
        }
    }

    /// The documented JSON shape (see the module docs).
    pub(crate) fn to_json(&self) -> Value {
        let out = &self.outcome;
        let local_reply = out.local_reply().map(|reply| {
            let mut object = Map::new();
            object.insert("status".into(), json!(reply.status()));
            object.insert("details".into(), json!(reply.details()));
            object.insert("grpc_status".into(), json!(reply.grpc_status()));
            object.insert("headers".into(), headers_json(reply.headers()));
            body_json(&mut object, reply.body());
            Value::Object(object)
        });
        json!({
            "weir_exec": JSON_VERSION,
            "plugin": { "path": self.path, "root_id": self.root_id, "abi_version": self.abi_version.to_string() },
            "actions": out.actions().iter().map(|(phase, action)| json!({
                "phase": phase_name(*phase),
                "action": if action.is_continue() { "continue" } else { "pause" },
                "raw": raw_action(*action),
            })).collect::<Vec<_>>(),
            "upstream_request": out.upstream_request().map(request_json),
            "response": out.response().map(response_json),
            "response_source": self.response_source(),
            "local_reply": local_reply,
            "callouts": out.callouts().iter().map(callout_json).collect::<Vec<_>>(),
            "grpc_calls": out.grpc_calls().iter().map(super::grpc_report::call_json).collect::<Vec<_>>(),
            "logs": self.logs.iter().map(|(scope, entry)| json!({
                "scope": if *scope == Scope::Plugin { "plugin" } else { "stream" },
                "level": level_name(entry.level),
                "message": entry.message,
            })).collect::<Vec<_>>(),
            "metrics": out.metrics().iter().map(|(name, value)| json!({ "name": name, "value": value })).collect::<Vec<_>>(),
            "instructions": {
                "total": out.instructions(),
                "callbacks": out.costs().iter().map(|c| json!({ "callback": c.callback, "instructions": c.instructions })).collect::<Vec<_>>(),
            },
            "trap": out.trap().map(|t| json!({
                "callback": t.callback,
                "message": t.message,
                "panic_message": t.panic_message,
                "out_of_fuel": t.out_of_fuel,
            })),
            "reset": out.was_reset(),
        })
    }

    /// The human-readable report.
    pub(crate) fn to_text(&self) -> String {
        let out = &self.outcome;
        let mut text = String::new();
        let root = if self.root_id.is_empty() {
            String::new()
        } else {
            format!(" (root id {})", self.root_id)
        };
        let _ = writeln!(text, "plugin {}{root}", self.path);
        let _ = writeln!(
            text,
            "proxy-wasm ABI {} (the module's proxy_abi_version_* export)",
            self.abi_version
        );

        section(&mut text, "request, as the upstream received it");
        match out.upstream_request() {
            Some(request) => message_text(
                &mut text,
                request.headers(),
                request.trailers(),
                request.body_bytes(),
            ),
            None => text.push_str("  (never reached the upstream)\n"),
        }

        let title = match self.response_source() {
            Some("local_reply") => {
                "response, as the client received it (local reply from the plugin)"
            }
            _ => "response, as the client received it",
        };
        section(&mut text, title);
        match out.response() {
            Some(response) => message_text(
                &mut text,
                response.headers(),
                response.trailers(),
                response.body_bytes(),
            ),
            None => text.push_str("  (none)\n"),
        }
        if let Some(reply) = out.local_reply().filter(|r| !r.details().is_empty()) {
            let _ = writeln!(text, "  details: {}", reply.details());
        }

        if !out.callouts().is_empty() {
            section(&mut text, "callouts");
            for (index, callout) in out.callouts().iter().enumerate() {
                callout_text(&mut text, index + 1, callout);
            }
        }
        if !out.grpc_calls().is_empty() {
            section(&mut text, "gRPC calls");
            for (index, call) in out.grpc_calls().iter().enumerate() {
                super::grpc_report::call_text(&mut text, index + 1, call);
            }
        }

        section(&mut text, "callbacks");
        for (phase, action) in out.actions() {
            let verdict = if action.is_continue() {
                "continue".to_string()
            } else {
                format!("pause ({})", raw_action(*action))
            };
            let _ = writeln!(text, "  {:<20} {verdict}", phase_name(*phase));
        }
        if let Some(trap) = out.trap() {
            let _ = writeln!(text, "  TRAP: {trap}");
        }
        if out.was_reset() {
            text.push_str("  the plugin reset the stream\n");
        }

        section(&mut text, "logs");
        if self.logs.is_empty() {
            text.push_str("  (none)\n");
        }
        for (scope, entry) in &self.logs {
            let scope = if *scope == Scope::Plugin {
                "plugin"
            } else {
                "stream"
            };
            let _ = writeln!(
                text,
                "  {:<8} {scope:<6} {}",
                level_name(entry.level),
                entry.message
            );
        }

        if !out.metrics().is_empty() {
            section(&mut text, "metrics");
            for (name, value) in out.metrics() {
                let _ = writeln!(text, "  {name} = {value}");
            }
        }

        section(&mut text, "instructions");
        for cost in out.costs() {
            let _ = writeln!(text, "  {:<32} {:>10}", cost.callback, cost.instructions);
        }
        let _ = writeln!(text, "  {:<32} {:>10}", "total", out.instructions());
        text
    }
}

fn section(text: &mut String, title: &str) {
    let _ = writeln!(text, "\n== {title}");
}

fn message_text(text: &mut String, headers: &Headers, trailers: &Headers, body: &[u8]) {
    for (name, value) in headers.iter() {
        let _ = writeln!(text, "  {name}: {value}");
    }
    body_text(text, body);
    for (name, value) in trailers.iter() {
        let _ = writeln!(text, "  (trailer) {name}: {value}");
    }
}

fn body_text(text: &mut String, body: &[u8]) {
    if body.is_empty() {
        return;
    }
    match std::str::from_utf8(body) {
        Ok(body) => {
            let _ = writeln!(text, "  body ({} bytes):", body.len());
            for line in body.lines() {
                let _ = writeln!(text, "    {line}");
            }
        }
        Err(_) => {
            let _ = writeln!(
                text,
                "  body ({} bytes, not UTF-8; --json shows it in base64)",
                body.len()
            );
        }
    }
}

fn callout_text(text: &mut String, number: usize, callout: &Callout) {
    let request = callout.request();
    let _ = writeln!(
        text,
        "  #{number} to {}: {} {} (timeout {} ms)",
        callout.cluster(),
        request.method(),
        request.path(),
        callout.timeout().as_millis()
    );
    for (name, value) in request
        .headers()
        .iter()
        .filter(|(name, _)| !matches!(*name, ":method" | ":path"))
    {
        let _ = writeln!(text, "    {name}: {value}");
    }
    body_text(text, request.body_bytes());
    match callout.response() {
        Some(response) if response.status_code() == 0 => {
            text.push_str("    -> failed (no response: 0 headers)\n")
        }
        Some(response) => {
            let _ = writeln!(
                text,
                "    -> {} ({} body bytes)",
                response.status_code(),
                response.body_bytes().len()
            );
        }
        None => text.push_str("    -> no response delivered\n"),
    }
}
