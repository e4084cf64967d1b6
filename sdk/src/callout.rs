//! HTTP callouts as futures: [`Call`] builds a request to an Envoy cluster, [`Call::send`]
//! dispatches it at once and returns a [`CallFuture`] that a [`Flow::wait`](crate::Flow::wait)
//! future awaits.
//!
//! ```no_run
//! use weir::prelude::*;
//! use weir::Call;
//!
//! struct Check;
//! impl HttpFilter for Check {
//!     fn on_request_headers(&mut self, req: &mut RequestHeaders) -> Result<Flow> {
//!         let req = req.handle(); // a copy the future may keep: it acts on this stream
//!         Ok(Flow::wait(async move {
//!             let res = Call::post("policy", "/check").body("{}").send().await?;
//!             if res.status != 200 {
//!                 return Ok(Flow::reply(403));
//!             }
//!             req.set("x-checked", "yes")?;
//!             Ok(Flow::Continue)
//!         }))
//!     }
//! }
//! ```
//!
//! How it works: proxy-wasm answers a call with `on_http_call_response(token)` on the context
//! that dispatched it. The SDK keeps one slot per call in flight (a thread-local list: a VM is
//! single-threaded), fills it when the response arrives and polls the waiting future again.
//! Dropping a [`CallFuture`] (the stream ended) frees its slot, so a late answer finds no slot
//! and is ignored.

use crate::error::{Error, HostResult, Result};
use crate::pending::{Slots, Table, Unary, UnaryFuture, UnarySlot};
use crate::serialized_map::SerializedMap;
use proxy_wasm::hostcalls;
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use weir_abi::HostFunction;
use weir_abi::{BufferType, MapType};

/// The timeout of a [`Call`] that sets none. Short, because a paused request holds a client.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// The longest response body a [`Call`] accepts unless [`Call::max_response_bytes`] says
/// otherwise. A longer body is an `Err`, and is never copied into the plugin's memory.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 1 << 20;

/// The longest timeout the host can be given (its unit is a 32-bit count of milliseconds);
/// longer ones are cut to this rather than wrapping around to a short one.
pub const MAX_TIMEOUT: Duration = Duration::from_millis(u32::MAX as u64);

/// An HTTP request to an Envoy cluster, sent with [`Call::send`].
#[derive(Debug)]
#[must_use = "a Call does nothing until .send() is called"]
pub struct Call {
    cluster: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    timeout: Duration,
    max_response_bytes: usize,
}

impl Call {
    /// A request with this method to `path` on `cluster` (the cluster's name in Envoy's
    /// configuration, not a host name). `:authority` is the cluster name unless set.
    pub fn new(method: &str, cluster: impl Into<String>, path: &str) -> Call {
        let headers = vec![
            (":method".into(), method.into()),
            (":path".into(), path.into()),
        ];
        Call {
            cluster: cluster.into(),
            headers,
            body: None,
            timeout: DEFAULT_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }

    /// A `GET` request.
    pub fn get(cluster: impl Into<String>, path: &str) -> Call {
        Call::new("GET", cluster, path)
    }

    /// A `POST` request.
    pub fn post(cluster: impl Into<String>, path: &str) -> Call {
        Call::new("POST", cluster, path)
    }

    /// Adds a request header; the name is lower-cased (HTTP/2 and Envoy expect that).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers
            .push((name.into().to_ascii_lowercase(), value.into()));
        self
    }

    /// Sets `:authority` (the Host header), which defaults to the cluster name.
    pub fn authority(self, host: impl Into<String>) -> Self {
        self.header(":authority", host)
    }

    /// Sets the request body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// How long Envoy waits for the whole response before failing the call
    /// (default [`DEFAULT_TIMEOUT`], at most [`MAX_TIMEOUT`]). A timed-out call resolves to
    /// an `Err`.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.min(MAX_TIMEOUT);
        self
    }

    /// The longest response body accepted (default [`DEFAULT_MAX_RESPONSE_BYTES`]). A
    /// longer one makes the call resolve to an `Err` naming both sizes; the body is left in
    /// the host, so a peer cannot make the plugin allocate what it sends.
    pub fn max_response_bytes(mut self, max: usize) -> Self {
        self.max_response_bytes = max;
        self
    }

    /// Dispatches the call now and returns the future of its response. An unknown cluster
    /// or a refused dispatch makes the future resolve to an `Err` on its first poll.
    pub fn send(mut self) -> CallFuture {
        if !self.headers.iter().any(|(n, _)| n == ":authority") {
            self.headers
                .push((":authority".into(), self.cluster.clone()));
        }
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        let dispatched = hostcalls::dispatch_http_call(
            &self.cluster,
            headers,
            self.body.as_deref(),
            Vec::new(),
            self.timeout,
        )
        .map_err(|status| {
            Error::host(HostFunction::HttpCall, crate::proxy_types::status(status)).context(
                format!(
                    "cannot call cluster '{}' (is it defined in Envoy?)",
                    self.cluster
                ),
            )
        });
        CallFuture {
            state: UnaryFuture::new(dispatched, self.max_response_bytes),
        }
    }
}

/// The response to a [`Call`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallResponse {
    /// The HTTP status (from `:status`).
    pub status: u16,
    /// Response headers, names lower-case, values decoded lossily.
    pub headers: Vec<(String, String)>,
    /// The whole response body (at most the call's [`Call::max_response_bytes`]).
    pub body: Vec<u8>,
}

impl CallResponse {
    /// The first value of header `name` (lower-case), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as UTF-8, or an `Err` naming the problem.
    pub fn text(&self) -> Result<&str> {
        std::str::from_utf8(&self.body)
            .map_err(|_| Error::msg("callout response body is not UTF-8"))
    }
}

/// The pending response of a dispatched [`Call`]. Await it inside a
/// [`Flow::wait`](crate::Flow::wait) future; it resolves when Envoy delivers the response.
#[derive(Debug)]
#[must_use = "a CallFuture must be awaited to see the response"]
pub struct CallFuture {
    state: UnaryFuture<CallResponse>,
}

thread_local! {
    /// Callouts in flight in this VM.
    static CALLS: Slots<UnarySlot<CallResponse>> = const { RefCell::new(Vec::new()) };
}

impl Unary for CallResponse {
    const TABLE: Table<UnarySlot<Self>> = Table(&CALLS);
    const POLLED_AFTER_DONE: &'static str = "CallFuture polled after it completed";
    // An HTTP callout cannot be cancelled: a dropped future only frees its slot.
}

impl Future for CallFuture {
    type Output = Result<CallResponse>;

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.state.poll()
    }
}

/// Records the response to `token` if a [`CallFuture`] still waits for it. Returns whether
/// one did, so the caller knows whether polling can make progress.
pub(crate) fn deliver(token: u32, num_headers: usize, body_size: usize) -> bool {
    crate::pending::deliver(token, |max_body| {
        read_response(num_headers, body_size, max_body)
    })
}

fn read_response(num_headers: usize, body_size: usize, max_body: usize) -> Result<CallResponse> {
    // Envoy reports a failed call (connection failure, reset, timeout) as zero headers.
    if num_headers == 0 {
        return Err(Error::msg(
            "callout failed: no response (upstream unreachable, reset or timed out)",
        ));
    }
    let map = SerializedMap::read(MapType::HttpCallResponseHeaders)?;
    let headers: Vec<(String, String)> = map
        .pairs()?
        .into_iter()
        .map(|(n, v)| {
            (
                String::from_utf8_lossy(n).into_owned(),
                String::from_utf8_lossy(v).into_owned(),
            )
        })
        .collect();
    let status = headers
        .iter()
        .find(|(n, _)| n == ":status")
        .and_then(|(_, v)| v.parse().ok())
        .ok_or_else(|| Error::msg("callout response has no valid :status"))?;
    if body_size > max_body {
        return Err(Error::msg(format!(
            "callout response body is {body_size} bytes, over the {max_body}-byte limit (Call::max_response_bytes)"
        )));
    }
    let body = hostcalls::get_buffer(
        crate::proxy_types::buffer_type(BufferType::HttpCallResponseBody),
        0,
        body_size,
    )
    .host(HostFunction::GetBufferBytes)?
    .unwrap_or_default();
    Ok(CallResponse {
        status,
        headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_timeout_is_cut_to_what_the_host_can_take_not_wrapped() {
        let call = Call::get("c", "/")
            .timeout(Duration::MAX)
            .max_response_bytes(7);
        assert_eq!((call.timeout, call.max_response_bytes), (MAX_TIMEOUT, 7));
        assert_eq!(
            Call::get("c", "/").max_response_bytes,
            DEFAULT_MAX_RESPONSE_BYTES
        );
    }
}
