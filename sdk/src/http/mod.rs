//! HTTP filters: one [`HttpFilter`] value per request, hooks per phase.

mod body;
mod headers;
mod parse;
pub mod path;
pub(crate) mod stream;

pub use body::{
    kind as body_kind, Body, BodyKind, DownstreamData, RequestBody, ResponseBody, UpstreamData,
};
pub use headers::{
    kind as map_kind, same_header_upstream, HeaderValues, Headers, MapKind, RequestHeaders,
    RequestTrailers, ResponseHeaders, ResponseTrailers,
};
pub use parse::{bearer_token, Cookies, Query};

use crate::{Error, Flow, LocalReply, Result};
use std::fmt;

/// A phase of an HTTP stream, as passed to [`HttpFilter::on_error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// [`HttpFilter::on_request_headers`].
    RequestHeaders,
    /// [`HttpFilter::on_request_body`].
    RequestBody,
    /// [`HttpFilter::on_request_trailers`].
    RequestTrailers,
    /// [`HttpFilter::on_response_headers`].
    ResponseHeaders,
    /// [`HttpFilter::on_response_body`].
    ResponseBody,
    /// [`HttpFilter::on_response_trailers`].
    ResponseTrailers,
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Phase::RequestHeaders => "request headers",
            Phase::RequestBody => "request body",
            Phase::RequestTrailers => "request trailers",
            Phase::ResponseHeaders => "response headers",
            Phase::ResponseBody => "response body",
            Phase::ResponseTrailers => "response trailers",
        })
    }
}

/// The per-request part of an HTTP plugin. Envoy creates one value per stream through the
/// closure given to [`http_plugin!`](crate::http_plugin); every hook has a default that
/// continues, so implement only the phases you need.
///
/// Each phase gets its own type: headers in header hooks, a body handle in body hooks, so
/// reading a body in a header hook does not compile.
///
/// Every hook returns [`Result<Flow>`]: `?` works on host calls and parsing, and an `Err`
/// becomes the reply of [`on_error`](HttpFilter::on_error) (500 unless overridden) plus an
/// error log line. A plugin never traps because a call failed.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an HTTP filter",
    note = "implement `weir::HttpFilter` for `{Self}`; every hook has a default, so `impl HttpFilter for {Self} {{}}` compiles"
)]
pub trait HttpFilter: 'static {
    /// The request's headers arrived. `req.end_of_stream()` is true for a request without body.
    fn on_request_headers(&mut self, req: &mut RequestHeaders) -> Result<Flow> {
        let _ = req;
        Ok(Flow::Continue)
    }

    /// A chunk of the request body arrived. Return [`Flow::Pause`] until
    /// `body.end_of_stream()` to receive the whole body at once.
    fn on_request_body(&mut self, body: &mut RequestBody) -> Result<Flow> {
        let _ = body;
        Ok(Flow::Continue)
    }

    /// The request's trailers arrived (gRPC and some HTTP/2 clients send them).
    fn on_request_trailers(&mut self, trailers: &mut RequestTrailers) -> Result<Flow> {
        let _ = trailers;
        Ok(Flow::Continue)
    }

    /// The response's headers arrived, from the upstream or from a local reply.
    fn on_response_headers(&mut self, res: &mut ResponseHeaders) -> Result<Flow> {
        let _ = res;
        Ok(Flow::Continue)
    }

    /// A chunk of the response body arrived. [`Flow::Pause`] buffers, as for requests.
    fn on_response_body(&mut self, body: &mut ResponseBody) -> Result<Flow> {
        let _ = body;
        Ok(Flow::Continue)
    }

    /// The response's trailers arrived.
    fn on_response_trailers(&mut self, trailers: &mut ResponseTrailers) -> Result<Flow> {
        let _ = trailers;
        Ok(Flow::Continue)
    }

    /// The stream is over (completed or reset): the place for accounting. Called once.
    fn on_stream_end(&mut self) {}

    /// Turns an `Err` from a hook into the reply the client gets. The error itself has been
    /// logged at error level; keep details out of the reply body. The default fails closed
    /// with a bare 500.
    fn on_error(&mut self, phase: Phase, err: &Error) -> LocalReply {
        let _ = (phase, err);
        LocalReply::new(500).body("internal error in a proxy plugin\n")
    }
}
