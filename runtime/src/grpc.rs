//! gRPC calls as tests write and read them: what a gRPC cluster receives ([`GrpcRequest`]),
//! what it answers ([`GrpcReply`] for a unary call, [`GrpcStreamScript`] for a stream), and
//! what the plugin did with a call ([`GrpcCall`], in [`Outcome::grpc_calls`]).
//!
//! [`Outcome::grpc_calls`]: crate::Outcome::grpc_calls

use std::time::Duration;

use crate::message::Headers;

/// gRPC status codes the tests and the runtime name (`google.rpc.Code`).
pub mod code {
    /// Not an error.
    pub const OK: u32 = 0;
    /// The operation was cancelled.
    pub const CANCELLED: u32 = 1;
    /// Unknown error (also: a response without `grpc-status`).
    pub const UNKNOWN: u32 = 2;
    /// The client gave an invalid argument.
    pub const INVALID_ARGUMENT: u32 = 3;
    /// The deadline expired before the operation could complete.
    pub const DEADLINE_EXCEEDED: u32 = 4;
    /// Some requested entity was not found.
    pub const NOT_FOUND: u32 = 5;
    /// The caller may not do this.
    pub const PERMISSION_DENIED: u32 = 7;
    /// A resource ran out (e.g. a rate limit).
    pub const RESOURCE_EXHAUSTED: u32 = 8;
    /// The service does not implement the method.
    pub const UNIMPLEMENTED: u32 = 12;
    /// Internal error (also: a unary call answered OK without a message).
    pub const INTERNAL: u32 = 13;
    /// The service is unavailable (also: a cluster Envoy cannot reach, a timeout).
    pub const UNAVAILABLE: u32 = 14;
    /// The request has no valid authentication credentials.
    pub const UNAUTHENTICATED: u32 = 16;
}

/// A gRPC call as its cluster receives it: for a unary call the one request message, for a
/// stream the opening (its messages are in [`GrpcCall::sent_messages`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrpcRequest {
    pub(crate) service: String,
    pub(crate) method: String,
    pub(crate) initial_metadata: Headers,
    pub(crate) message: Vec<u8>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) streaming: bool,
}

impl GrpcRequest {
    /// The fully qualified service name, e.g. `envoy.service.auth.v3.Authorization`.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// The method name, e.g. `Check`.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The `:path` Envoy sends: `/<service>/<method>`.
    pub fn path(&self) -> String {
        format!("/{}/{}", self.service, self.method)
    }

    /// The initial metadata the plugin passed (names lowercase, in order).
    pub fn initial_metadata(&self) -> &Headers {
        &self.initial_metadata
    }

    /// The first value of one metadata entry.
    pub fn metadata(&self, name: &str) -> Option<&str> {
        self.initial_metadata.get(name)
    }

    /// The request message (serialized protobuf) of a unary call; empty for a stream.
    pub fn message(&self) -> &[u8] {
        &self.message
    }

    /// The timeout the plugin asked for; `None` for 0 (no timeout) and for streams, which
    /// take none in the ABI.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// Whether this is a stream (`proxy_grpc_stream`) rather than a unary call.
    pub fn is_stream(&self) -> bool {
        self.streaming
    }
}

/// A gRPC status: a code (see [`code`]) and a message.
///
/// In a handler's answer the message is the `grpc-message` as the server puts it on the
/// wire: servers percent-encode it, each its own way (tonic writes a space as `%20`), and
/// Envoy passes it on undecoded. What the plugin reads with `proxy_get_status` is that
/// text with Envoy's response details appended, `message{via_upstream}`, or the details
/// alone when there is no message ([`GrpcCall::status`] shows it so).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrpcStatus {
    /// The code, `0` for OK.
    pub code: u32,
    /// The message (empty when none).
    pub message: String,
}

impl GrpcStatus {
    /// A status with this code and message.
    pub fn new(code: u32, message: &str) -> Self {
        GrpcStatus {
            code,
            message: message.to_string(),
        }
    }

    /// Whether the code is OK.
    pub fn is_ok(&self) -> bool {
        self.code == code::OK
    }
}

/// What a gRPC cluster answers to a unary call: a status, the response message, initial
/// and trailing metadata, after an optional delay on the virtual clock.
///
/// As in Envoy, the plugin sees only the message (`proxy_on_grpc_receive`) of a successful
/// call and only the status (`proxy_on_grpc_close`) of a failed one; an OK answer without
/// a message reaches it as `INTERNAL`. A delay past the call's timeout answers as Envoy's
/// timeout does ([`GrpcReply::timeout`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrpcReply {
    pub(crate) status: GrpcStatus,
    pub(crate) message: Option<Vec<u8>>,
    pub(crate) initial_metadata: Headers,
    pub(crate) trailing_metadata: Headers,
    pub(crate) delay: Duration,
    /// Envoy's response details for this status: the server's, or Envoy's own timeout.
    pub(crate) details: &'static str,
}

impl GrpcReply {
    /// Status OK with this response message (serialized protobuf).
    pub fn ok(message: impl Into<Vec<u8>>) -> Self {
        GrpcReply {
            status: GrpcStatus::new(code::OK, ""),
            message: Some(message.into()),
            initial_metadata: Headers::new(),
            trailing_metadata: Headers::new(),
            delay: Duration::ZERO,
            details: VIA_UPSTREAM,
        }
    }

    /// An error status (see [`code`]) and its message, no response message.
    pub fn error(code: u32, message: &str) -> Self {
        GrpcReply {
            status: GrpcStatus::new(code, message),
            message: None,
            initial_metadata: Headers::new(),
            trailing_metadata: Headers::new(),
            delay: Duration::ZERO,
            details: VIA_UPSTREAM,
        }
    }

    /// What Envoy 1.40 reports for a call that outlives its timeout: `UNAVAILABLE`,
    /// `upstream request timeout` (its router's local 504, as gRPC), read by the plugin as
    /// `upstream request timeout{response_timeout}` (scenario `exerciser_grpc_timeout`).
    pub fn timeout() -> Self {
        GrpcReply {
            details: TIMEOUT_DETAILS,
            ..GrpcReply::error(code::UNAVAILABLE, TIMEOUT_MESSAGE)
        }
    }

    /// Appends initial metadata (sent with the response headers).
    pub fn initial_metadata(mut self, name: &str, value: &str) -> Self {
        self.initial_metadata.append(name, value);
        self
    }

    /// Appends trailing metadata (sent with the status).
    pub fn trailing_metadata(mut self, name: &str, value: &str) -> Self {
        self.trailing_metadata.append(name, value);
        self
    }

    /// Answers this long after the call (virtual time).
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// The status.
    pub fn status(&self) -> &GrpcStatus {
        &self.status
    }

    /// The response message, if any.
    pub fn message(&self) -> Option<&[u8]> {
        self.message.as_deref()
    }
}

/// The `grpc-message` of a call Envoy ended for its timeout, and the response details
/// Envoy appends to it.
pub(crate) const TIMEOUT_MESSAGE: &str = "upstream request timeout";
pub(crate) const TIMEOUT_DETAILS: &str = "response_timeout";
/// The response details of a status the server sent.
pub(crate) const VIA_UPSTREAM: &str = "via_upstream";

/// The status message as the plugin reads it: the wire message with Envoy's details.
pub(crate) fn delivered_message(message: &str, details: &str) -> String {
    match (message.is_empty(), details.is_empty()) {
        (_, true) => message.to_string(),
        (true, false) => details.to_string(),
        (false, false) => format!("{message}{{{details}}}"),
    }
}

/// One step of a [`GrpcStreamScript`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ScriptStep {
    Message(Vec<u8>),
    Wait(Duration),
    AwaitClientEnd,
    /// The status, and Envoy's response details for it.
    Close(GrpcStatus, &'static str),
}

/// What a gRPC cluster does on a stream (`proxy_grpc_stream`): the messages it sends, in
/// order, with waits between them on the virtual clock, then its close status. Initial
/// metadata goes out before the first message (or with the close, as a trailers-only
/// response); trailing metadata with the close. Without [`close`](Self::close) the server
/// keeps the stream open. Whatever the plugin sends meanwhile is recorded
/// ([`GrpcCall::sent_messages`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GrpcStreamScript {
    pub(crate) initial_metadata: Headers,
    pub(crate) trailing_metadata: Headers,
    pub(crate) steps: Vec<ScriptStep>,
}

impl GrpcStreamScript {
    /// A server that sends nothing and keeps the stream open.
    pub fn new() -> Self {
        GrpcStreamScript::default()
    }

    /// Appends initial metadata.
    pub fn initial_metadata(mut self, name: &str, value: &str) -> Self {
        self.initial_metadata.append(name, value);
        self
    }

    /// Appends trailing metadata.
    pub fn trailing_metadata(mut self, name: &str, value: &str) -> Self {
        self.trailing_metadata.append(name, value);
        self
    }

    /// The server sends a message (serialized protobuf).
    pub fn message(mut self, message: impl Into<Vec<u8>>) -> Self {
        self.steps.push(ScriptStep::Message(message.into()));
        self
    }

    /// The server waits this long (virtual time) before its next step.
    pub fn wait(mut self, delay: Duration) -> Self {
        self.steps.push(ScriptStep::Wait(delay));
        self
    }

    /// The server waits until the plugin ends its side (`proxy_grpc_send` with
    /// `end_of_stream`, or `proxy_grpc_close`) before its next step.
    pub fn await_client_end(mut self) -> Self {
        self.steps.push(ScriptStep::AwaitClientEnd);
        self
    }

    /// The server closes the stream with this status; later steps never run.
    pub fn close(mut self, code: u32, message: &str) -> Self {
        self.steps.push(ScriptStep::Close(
            GrpcStatus::new(code, message),
            VIA_UPSTREAM,
        ));
        self
    }
}

/// What a gRPC cluster handler answers: a unary reply or a stream script. A unary call
/// answered with a script takes its last message and its status; a stream answered with a
/// reply gets its metadata, message and status, then the close.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GrpcAnswer {
    /// A unary answer.
    Reply(GrpcReply),
    /// A stream script.
    Stream(GrpcStreamScript),
}

impl From<GrpcReply> for GrpcAnswer {
    fn from(reply: GrpcReply) -> Self {
        GrpcAnswer::Reply(reply)
    }
}

impl From<GrpcStreamScript> for GrpcAnswer {
    fn from(script: GrpcStreamScript) -> Self {
        GrpcAnswer::Stream(script)
    }
}

impl GrpcAnswer {
    /// The answer as one script: every answer runs the same way.
    pub(crate) fn into_script(self) -> GrpcStreamScript {
        match self {
            GrpcAnswer::Stream(script) => script,
            GrpcAnswer::Reply(reply) => {
                let mut steps = Vec::new();
                if !reply.delay.is_zero() {
                    steps.push(ScriptStep::Wait(reply.delay));
                }
                if let Some(message) = reply.message {
                    steps.push(ScriptStep::Message(message));
                }
                steps.push(ScriptStep::Close(reply.status, reply.details));
                GrpcStreamScript {
                    initial_metadata: reply.initial_metadata,
                    trailing_metadata: reply.trailing_metadata,
                    steps,
                }
            }
        }
    }
}

/// A gRPC call or stream the plugin opened, and what became of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrpcCall {
    pub(crate) token: u32,
    pub(crate) cluster: String,
    pub(crate) request: GrpcRequest,
    pub(crate) sent: Vec<Vec<u8>>,
    pub(crate) client_ended: bool,
    pub(crate) cancelled: bool,
    pub(crate) received: Vec<Vec<u8>>,
    pub(crate) status: Option<GrpcStatus>,
}

impl GrpcCall {
    /// The token the plugin got (Envoy's: unary calls `1 mod 4`, streams `2 mod 4`).
    pub fn token(&self) -> u32 {
        self.token
    }

    /// The cluster called.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// What the cluster received when the call opened.
    pub fn request(&self) -> &GrpcRequest {
        &self.request
    }

    /// Messages the plugin sent on a stream (`proxy_grpc_send`), in order.
    pub fn sent_messages(&self) -> &[Vec<u8>] {
        &self.sent
    }

    /// Whether the plugin ended its side of a stream (`end_of_stream` or
    /// `proxy_grpc_close`).
    pub fn client_ended(&self) -> bool {
        self.client_ended
    }

    /// Whether the plugin cancelled the call (`proxy_grpc_cancel`, or `proxy_grpc_close`
    /// on a unary call).
    pub fn cancelled(&self) -> bool {
        self.cancelled
    }

    /// Messages delivered to the plugin (`proxy_on_grpc_receive`), in order.
    pub fn received_messages(&self) -> &[Vec<u8>] {
        &self.received
    }

    /// The status delivered to the plugin (`proxy_on_grpc_close`; OK for a unary call
    /// whose message was delivered), once delivered, with the message as the plugin
    /// reads it (see [`GrpcStatus`]).
    pub fn status(&self) -> Option<&GrpcStatus> {
        self.status.as_ref()
    }
}
