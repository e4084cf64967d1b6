//! What a run observed: the result types tests assert on.

use std::fmt;
use std::time::Duration;

use weir_abi::LogLevel;

use crate::message::{LocalReply, Request, Response};

/// One log line the guest wrote (`proxy_log`, or stdout/stderr through WASI).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    /// Level; stdout is `Info` and stderr `Error`, as Envoy logs them.
    pub level: LogLevel,
    /// The message.
    pub message: String,
}

/// A guest trap: the VM crashed inside a callback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trap {
    /// The callback that trapped, e.g. `proxy_on_request_headers`.
    pub callback: String,
    /// wasmtime's description (e.g. `wasm trap: wasm 'unreachable' instruction executed`).
    pub message: String,
    /// The guest's last critical log: Rust guests log their panic message there before
    /// aborting.
    pub panic_message: Option<String>,
    /// Whether the trap is the fuel limit running out.
    pub out_of_fuel: bool,
}

impl fmt::Display for Trap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} trapped: {}", self.callback, self.message)?;
        if let Some(panic) = &self.panic_message {
            write!(f, " (guest said: {panic})")?;
        }
        Ok(())
    }
}

impl std::error::Error for Trap {}

/// A `proxy_http_call` the plugin made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Callout {
    pub(crate) cluster: String,
    pub(crate) request: Request,
    pub(crate) timeout: Duration,
    pub(crate) response: Option<Response>,
}

impl Callout {
    /// The cluster (upstream name) called.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// The request as the plugin built it (pseudo-headers included).
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// The timeout the plugin asked for.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The response delivered to the plugin, once delivered.
    pub fn response(&self) -> Option<&Response> {
        self.response.as_ref()
    }
}

/// What a callback returned, raw: Envoy accepts 0–4 from header callbacks.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// 0: go on.
    Continue,
    /// Anything else: the stream waits (the raw value is kept).
    Pause(u32),
}

impl Action {
    pub(crate) fn from_raw(raw: u32) -> Self {
        if raw == weir_abi::Action::Continue as u32 {
            Action::Continue
        } else {
            Action::Pause(raw)
        }
    }

    /// Whether this is [`Action::Continue`].
    pub fn is_continue(self) -> bool {
        self == Action::Continue
    }
}

/// A stream callback, for [`Outcome::action`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Phase {
    /// `proxy_on_request_headers`.
    RequestHeaders,
    /// `proxy_on_request_body` (the last call).
    RequestBody,
    /// `proxy_on_request_trailers`.
    RequestTrailers,
    /// `proxy_on_response_headers`.
    ResponseHeaders,
    /// `proxy_on_response_body` (the last call).
    ResponseBody,
    /// `proxy_on_response_trailers`.
    ResponseTrailers,
    /// `proxy_on_new_connection`.
    NewConnection,
    /// `proxy_on_downstream_data` (the last call).
    DownstreamData,
    /// `proxy_on_upstream_data` (the last call).
    UpstreamData,
}

/// Instructions one callback executed (wasmtime fuel).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallbackCost {
    /// The callback, e.g. `proxy_on_request_headers`.
    pub callback: &'static str,
    /// Wasm instructions executed, host calls excluded.
    pub instructions: u64,
}

/// Everything one HTTP stream or connection showed.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    pub(crate) actions: Vec<(Phase, Action)>,
    pub(crate) local_reply: Option<LocalReply>,
    pub(crate) upstream_request: Option<Request>,
    pub(crate) response: Option<Response>,
    pub(crate) callouts: Vec<Callout>,
    pub(crate) grpc_calls: Vec<crate::grpc::GrpcCall>,
    pub(crate) logs: Vec<LogEntry>,
    pub(crate) costs: Vec<CallbackCost>,
    pub(crate) metrics: Vec<(String, u64)>,
    pub(crate) trap: Option<Trap>,
    pub(crate) reset: bool,
    pub(crate) to_upstream: Vec<u8>,
    pub(crate) to_downstream: Vec<u8>,
    pub(crate) closed_by_plugin: bool,
}

impl Outcome {
    /// What the last call of `phase` returned; `None` if it was not called.
    pub fn action(&self, phase: Phase) -> Option<Action> {
        self.actions
            .iter()
            .rev()
            .find(|(p, _)| *p == phase)
            .map(|(_, a)| *a)
    }

    /// Every callback result in order.
    pub fn actions(&self) -> &[(Phase, Action)] {
        &self.actions
    }

    /// The local reply the plugin sent, if any.
    pub fn local_reply(&self) -> Option<&LocalReply> {
        self.local_reply.as_ref()
    }

    /// The request as the upstream received it, `None` if its headers never got past the
    /// plugin (paused, replied locally, trapped).
    pub fn upstream_request(&self) -> Option<&Request> {
        self.upstream_request.as_ref()
    }

    /// The response as the client received it: the local reply, or the upstream response
    /// as the plugin passed it on.
    pub fn response(&self) -> Option<&Response> {
        self.response.as_ref()
    }

    /// Callouts made, in order.
    pub fn callouts(&self) -> &[Callout] {
        &self.callouts
    }

    /// gRPC calls and streams this stream opened, in order, as far as they got by the
    /// time the outcome was taken (Envoy delivers their answers to the root context).
    pub fn grpc_calls(&self) -> &[crate::grpc::GrpcCall] {
        &self.grpc_calls
    }

    /// Log lines of this stream, in order.
    pub fn logs(&self) -> &[LogEntry] {
        &self.logs
    }

    /// Messages logged at exactly `level`.
    pub fn logs_at(&self, level: LogLevel) -> Vec<&str> {
        self.logs
            .iter()
            .filter(|l| l.level == level)
            .map(|l| l.message.as_str())
            .collect()
    }

    /// Whether any log message contains `needle`.
    pub fn logged(&self, needle: &str) -> bool {
        self.logs.iter().any(|l| l.message.contains(needle))
    }

    /// A counter or gauge value after the run (histograms: number of samples).
    pub fn metric(&self, name: &str) -> Option<u64> {
        self.metrics
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| *v)
    }

    /// Every metric the plugin defined, in definition order, with its value after the run
    /// (histograms: number of samples).
    pub fn metrics(&self) -> &[(String, u64)] {
        &self.metrics
    }

    /// Instructions executed by every callback of the stream, in order.
    pub fn costs(&self) -> &[CallbackCost] {
        &self.costs
    }

    /// Instructions executed by the named callback (summed over its calls).
    pub fn instructions_in(&self, callback: &str) -> u64 {
        self.costs
            .iter()
            .filter(|c| c.callback == callback)
            .map(|c| c.instructions)
            .sum()
    }

    /// Total instructions executed for this stream: deterministic, so tests can bound it.
    pub fn instructions(&self) -> u64 {
        self.costs.iter().map(|c| c.instructions).sum()
    }

    /// The trap, if the guest crashed.
    pub fn trap(&self) -> Option<&Trap> {
        self.trap.as_ref()
    }

    /// Whether the plugin reset the stream (`proxy_close_stream`).
    pub fn was_reset(&self) -> bool {
        self.reset
    }

    /// L4: bytes the plugin passed to the upstream.
    pub fn to_upstream(&self) -> &[u8] {
        &self.to_upstream
    }

    /// L4: bytes the plugin passed to the downstream (client).
    pub fn to_downstream(&self) -> &[u8] {
        &self.to_downstream
    }

    /// L4: whether the plugin closed the connection.
    pub fn closed_by_plugin(&self) -> bool {
        self.closed_by_plugin
    }
}
