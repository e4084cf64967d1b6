//! gRPC calls as futures, shaped like [`Call`](crate::Call): [`Grpc::call`] builds a unary
//! call, [`GrpcCall::send`] dispatches it and returns a [`GrpcFuture`] to await inside
//! [`Flow::wait`](crate::Flow::wait) or a background job; [`Grpc::stream`] opens a
//! [`GrpcStream`] that sends and receives messages.
//!
//! ```no_run
//! use std::time::Duration;
//! use weir::prelude::*;
//! use weir::grpc::{Grpc, GrpcCode};
//!
//! struct Check;
//! impl HttpFilter for Check {
//!     fn on_request_headers(&mut self, _req: &mut RequestHeaders) -> Result<Flow> {
//!         Ok(Flow::wait(async move {
//!             let res = Grpc::call("authz", "acme.Policy", "Check")
//!                 .metadata("x-tenant", "blue")
//!                 .message(b"\x0a\x03abc".to_vec()) // a protobuf message, encoded
//!                 .timeout(Duration::from_millis(300))
//!                 .send()
//!                 .await?; // Err only when the call could not be made
//!             if res.code != GrpcCode::OK {
//!                 warn!("policy said {}: {}", res.code, res.message);
//!                 return Ok(Flow::reply(403));
//!             }
//!             Ok(Flow::Continue)
//!         }))
//!     }
//! }
//! ```
//!
//! Messages are bytes: encode and decode them with the protobuf crate of your choice
//! (`prost` with hand-derived structs for the few fields a plugin reads keeps the module
//! small; acl-check's `ext_authz_grpc` mode does that).
//!
//! # Outcomes
//!
//! - The server's status (any code, OK or not), its message, and the response message are a
//!   [`GrpcResponse`]: `Ok`, like an HTTP callout's 403 is. [`GrpcResponse::into_ok`] turns a
//!   non-OK status into an `Err` for `?`.
//! - A timeout and an unreachable cluster are `UNAVAILABLE`, as Envoy 1.40 reports them
//!   (the message says which: `upstream request timeout{response_timeout}` for a timeout).
//! - `Err` means the call was never made (unknown cluster: Envoy answers `ParseFailure`) or
//!   its answer could not be read (a message over [`GrpcCall::max_message_bytes`]).
//! - Envoy gives unary calls no trailing metadata; a [`GrpcStream`] receives both kinds.
//!
//! # When the request ends first
//!
//! Dropping a [`GrpcFuture`] or a [`GrpcStream`] (the HTTP stream ended, so its
//! [`Flow::wait`](crate::Flow::wait) future was dropped; a background run was replaced)
//! cancels the call in Envoy, and a late answer finds nothing waiting for it.
//!
//! # The cluster argument
//!
//! Envoy reads the first argument as a serialized `GrpcService` proto and, when it does not
//! parse as one, as a cluster name; the SDK passes the name. The cluster must speak HTTP/2
//! (`typed_extension_protocol_options` with `explicit_http_config: http2_protocol_options`).

pub(crate) mod stream;

pub use stream::{GrpcOpen, GrpcStream, MessageFuture};

use crate::callout::{DEFAULT_TIMEOUT, MAX_TIMEOUT};
use crate::error::{Error, HostResult, HostStatus, Result};
use crate::pending::{Slots, Table, Unary, UnaryFuture, UnarySlot};
use crate::serialized_map::SerializedMap;
use proxy_wasm::hostcalls;
use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use weir_abi::HostFunction;
use weir_abi::{BufferType, MapType};

/// The longest message a call or stream accepts unless told otherwise; a longer one is an
/// `Err` and is never copied into the plugin's memory.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 1 << 20;

/// Metadata: names lower-case, values as bytes (`-bin` names carry binary values).
pub type Metadata = Vec<(String, Vec<u8>)>;

/// A gRPC status code (`grpc-status`); [`fmt::Display`] shows its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct GrpcCode(pub u32);

const CODE_NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

#[allow(missing_docs)] // the names are gRPC's
impl GrpcCode {
    pub const OK: GrpcCode = GrpcCode(0);
    pub const CANCELLED: GrpcCode = GrpcCode(1);
    pub const UNKNOWN: GrpcCode = GrpcCode(2);
    pub const INVALID_ARGUMENT: GrpcCode = GrpcCode(3);
    pub const DEADLINE_EXCEEDED: GrpcCode = GrpcCode(4);
    pub const NOT_FOUND: GrpcCode = GrpcCode(5);
    pub const PERMISSION_DENIED: GrpcCode = GrpcCode(7);
    pub const RESOURCE_EXHAUSTED: GrpcCode = GrpcCode(8);
    pub const UNIMPLEMENTED: GrpcCode = GrpcCode(12);
    pub const INTERNAL: GrpcCode = GrpcCode(13);
    pub const UNAVAILABLE: GrpcCode = GrpcCode(14);
    pub const UNAUTHENTICATED: GrpcCode = GrpcCode(16);
}

impl fmt::Display for GrpcCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match CODE_NAMES.get(self.0 as usize) {
            Some(name) => f.write_str(name),
            None => write!(f, "code {}", self.0),
        }
    }
}

/// Constructors of gRPC calls and streams.
#[derive(Debug)]
pub struct Grpc;

impl Grpc {
    /// A unary call of `service`/`method` (`"acme.v1.Policy"`, `"Check"`) on `cluster` (the
    /// cluster's name in Envoy's configuration).
    pub fn call(
        cluster: impl Into<String>,
        service: impl Into<String>,
        method: impl Into<String>,
    ) -> GrpcCall {
        GrpcCall {
            target: Target::new(cluster, service, method),
            message: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        }
    }

    /// A stream of `service`/`method` on `cluster`, opened with [`GrpcOpen::open`].
    pub fn stream(
        cluster: impl Into<String>,
        service: impl Into<String>,
        method: impl Into<String>,
    ) -> GrpcOpen {
        GrpcOpen::new(Target::new(cluster, service, method))
    }
}

/// Where a call goes and its initial metadata.
#[derive(Debug)]
struct Target {
    cluster: String,
    service: String,
    method: String,
    metadata: Metadata,
}

impl Target {
    fn new(
        cluster: impl Into<String>,
        service: impl Into<String>,
        method: impl Into<String>,
    ) -> Target {
        Target {
            cluster: cluster.into(),
            service: service.into(),
            method: method.into(),
            metadata: Vec::new(),
        }
    }

    fn add(&mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) {
        self.metadata
            .push((name.into().to_ascii_lowercase(), value.into()));
    }

    fn pairs(&self) -> Vec<(&str, &[u8])> {
        self.metadata
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .collect()
    }

    fn refused(&self, call: HostFunction, status: HostStatus) -> Error {
        Error::host(call, status).context(format!(
            "cannot call {}/{} on gRPC cluster '{}' (is it defined in Envoy?)",
            self.service, self.method, self.cluster
        ))
    }
}

/// A unary gRPC call, sent with [`GrpcCall::send`].
#[derive(Debug)]
#[must_use = "a GrpcCall does nothing until .send() is called"]
pub struct GrpcCall {
    target: Target,
    message: Vec<u8>,
    timeout: Duration,
    max_message_bytes: usize,
}

impl GrpcCall {
    /// Adds initial metadata; the name is lower-cased.
    pub fn metadata(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.target.add(name, value);
        self
    }

    /// The request message, encoded (protobuf bytes, without gRPC's length prefix).
    pub fn message(mut self, message: impl Into<Vec<u8>>) -> Self {
        self.message = message.into();
        self
    }

    /// How long Envoy waits for the answer (default [`DEFAULT_TIMEOUT`], at most
    /// [`MAX_TIMEOUT`]); past it Envoy ends the call with `UNAVAILABLE` (message
    /// `upstream request timeout…`).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.min(MAX_TIMEOUT);
        self
    }

    /// The longest response message accepted (default [`DEFAULT_MAX_MESSAGE_BYTES`]).
    pub fn max_message_bytes(mut self, max: usize) -> Self {
        self.max_message_bytes = max;
        self
    }

    /// Dispatches the call now. A refused dispatch (unknown cluster) makes the future
    /// resolve to an `Err` on its first poll.
    pub fn send(self) -> GrpcFuture {
        let dispatched = hostcalls::dispatch_grpc_call(
            &self.target.cluster,
            &self.target.service,
            &self.target.method,
            self.target.pairs(),
            Some(&self.message),
            self.timeout,
        )
        .map_err(|status| {
            self.target
                .refused(HostFunction::GrpcCall, crate::proxy_types::status(status))
        });
        GrpcFuture {
            state: UnaryFuture::new(dispatched, self.max_message_bytes),
        }
    }
}

/// The answer to a unary call: the server's status, its message, and the response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcResponse {
    /// `grpc-status`, or what Envoy reports for a call that got none (`UNAVAILABLE` on a
    /// timeout or connection failure).
    pub code: GrpcCode,
    /// `grpc-message`, empty when there was none (always for `OK`). Envoy may add where the
    /// status came from in braces: `not you{via_upstream}`.
    pub message: String,
    /// The response message, encoded; empty unless the code is `OK`.
    pub body: Vec<u8>,
}

impl GrpcResponse {
    /// The response message if the status is `OK`, else an `Err` naming code and message.
    pub fn into_ok(self) -> Result<Vec<u8>> {
        if self.code == GrpcCode::OK {
            Ok(self.body)
        } else {
            Err(status_error(self.code, &self.message))
        }
    }
}

fn status_error(code: GrpcCode, message: &str) -> Error {
    Error::msg(format!("gRPC call failed: {code}: {message}"))
}

/// The pending answer of a dispatched [`GrpcCall`].
#[derive(Debug)]
#[must_use = "a GrpcFuture must be awaited to see the answer"]
pub struct GrpcFuture {
    state: UnaryFuture<GrpcResponse>,
}

thread_local! {
    /// Unary calls in flight in this VM.
    static CALLS: Slots<UnarySlot<GrpcResponse>> = const { RefCell::new(Vec::new()) };
}

impl Unary for GrpcResponse {
    const TABLE: Table<UnarySlot<Self>> = Table(&CALLS);
    const POLLED_AFTER_DONE: &'static str = "GrpcFuture polled after it completed";

    fn cancel(token: u32) {
        cancel(token);
    }
}

impl Future for GrpcFuture {
    type Output = Result<GrpcResponse>;

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.state.poll()
    }
}

/// Records the answer to unary call `token` (Envoy's `proxy_on_grpc_receive` with `status`
/// 0, or `proxy_on_grpc_close`). Returns whether a [`GrpcFuture`] waits for it.
pub(crate) fn deliver_call(token: u32, status: u32, size: usize) -> bool {
    crate::pending::deliver(token, |max| {
        if status == 0 {
            read_message(size, max).map(|body| GrpcResponse {
                code: GrpcCode::OK,
                message: String::new(),
                body,
            })
        } else {
            Ok(GrpcResponse {
                code: GrpcCode(status),
                message: status_message(),
                body: Vec::new(),
            })
        }
    })
}

/// Stops call or stream `token` in the host, for nobody waits for it any more; a host error
/// is ignored, as there is no one left to tell.
fn cancel(token: u32) {
    // SAFETY: a plain call with an integer argument.
    let _ = unsafe { abi::proxy_grpc_cancel(token) };
}

/// The message the host holds for the current gRPC callback, if it fits `max`.
fn read_message(size: usize, max: usize) -> Result<Vec<u8>> {
    if size > max {
        return Err(Error::msg(format!(
            "gRPC message is {size} bytes, over the {max}-byte limit (max_message_bytes)"
        )));
    }
    Ok(hostcalls::get_buffer(
        crate::proxy_types::buffer_type(BufferType::GrpcReceiveBuffer),
        0,
        size,
    )
    .host(HostFunction::GetBufferBytes)?
    .unwrap_or_default())
}

/// The metadata the host holds for the current gRPC callback; empty if it cannot be read.
fn read_metadata(map: MapType) -> Metadata {
    let Ok(map) = SerializedMap::read(map) else {
        return Vec::new();
    };
    map.pairs()
        .unwrap_or_default()
        .into_iter()
        .map(|(n, v)| (String::from_utf8_lossy(n).into_owned(), v.to_vec()))
        .collect()
}

/// `grpc-message` of the call that just closed, decoded lossily: proxy-wasm's reader panics
/// on a message that is not UTF-8, and the server chooses it.
fn status_message() -> String {
    let (mut code, mut data, mut size) = (0u32, std::ptr::null_mut::<u8>(), 0usize);
    // SAFETY: the host writes the three slots; a non-null pointer is memory it allocated
    // through this module's allocator (a `Vec<u8>` of capacity `size`), now ours to free.
    let status = unsafe { abi::proxy_get_status(&mut code, &mut data, &mut size) };
    if status != 0 || data.is_null() {
        return String::new();
    }
    let bytes = unsafe { Vec::from_raw_parts(data, size, size) };
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The gRPC calls whose statuses the SDK turns into values itself; proxy-wasm's wrappers
/// panic on statuses they do not expect. (Dispatch and open go through proxy-wasm, which
/// must record the token to route the answers to this context.)
mod abi {
    #[link(wasm_import_module = "env")]
    unsafe extern "C" {
        pub(super) fn proxy_grpc_send(token: u32, data: *const u8, len: usize, end: u32) -> u32;
        pub(super) fn proxy_grpc_cancel(token: u32) -> u32;
        pub(super) fn proxy_grpc_close(token: u32) -> u32;
        pub(super) fn proxy_get_status(code: *mut u32, data: *mut *mut u8, len: *mut usize) -> u32;
    }
}

/// A host status as an `Err` naming the call and the stream.
fn check(status: u32, call: HostFunction, what: &str) -> Result<()> {
    match HostStatus::from_u32(status) {
        Some(HostStatus::Ok) => Ok(()),
        Some(known) => Err(Error::host(call, known).context(what.to_owned())),
        None => Err(Error::msg(format!(
            "{what}: host call {} failed with status {status}",
            call.as_str()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_show_their_names_and_unknown_ones_their_number() {
        assert_eq!(GrpcCode::DEADLINE_EXCEEDED.to_string(), "DEADLINE_EXCEEDED");
        assert_eq!(GrpcCode(16).to_string(), "UNAUTHENTICATED");
        assert_eq!(GrpcCode(99).to_string(), "code 99");
    }

    #[test]
    fn a_non_ok_answer_is_an_err_only_when_asked() {
        let denied = GrpcResponse {
            code: GrpcCode::PERMISSION_DENIED,
            message: "no".into(),
            body: Vec::new(),
        };
        assert_eq!(
            denied.into_ok().unwrap_err().to_string(),
            "gRPC call failed: PERMISSION_DENIED: no"
        );
        let fine = GrpcResponse {
            code: GrpcCode::OK,
            message: String::new(),
            body: b"x".to_vec(),
        };
        assert_eq!(fine.into_ok().unwrap(), b"x");
    }

    #[test]
    fn builder_keeps_metadata_lower_case_and_cuts_huge_timeouts() {
        let call = Grpc::call("c", "s.S", "M")
            .metadata("X-Tenant", "blue")
            .timeout(Duration::MAX)
            .max_message_bytes(9);
        assert_eq!(
            call.target.metadata,
            vec![("x-tenant".into(), b"blue".to_vec())]
        );
        assert_eq!((call.timeout, call.max_message_bytes), (MAX_TIMEOUT, 9));
    }

    #[test]
    fn odd_host_statuses_become_errors_not_panics() {
        assert!(check(0, HostFunction::GrpcSend, "s").is_ok());
        assert_eq!(
            check(1, HostFunction::GrpcSend, "gRPC stream 3")
                .unwrap_err()
                .to_string(),
            "gRPC stream 3: host call proxy_grpc_send failed: NotFound"
        );
        assert_eq!(
            check(77, HostFunction::GrpcClose, "gRPC stream 3")
                .unwrap_err()
                .to_string(),
            "gRPC stream 3: host call proxy_grpc_close failed with status 77"
        );
    }
}
