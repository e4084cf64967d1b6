//! HTTP streams: a one-shot exchange ([`HttpExchange`]) and a step-by-step stream
//! ([`HttpStream`]).

use crate::engine::vm::Vm;
use crate::flows::{self, http::Dir};
use crate::message::{Headers, Request, Response};
use crate::outcome::Outcome;
use crate::plugin::handle::{Handle, StreamKind};
use crate::plugin::{Plugin, PropertyValue};
use crate::state::{Direction, HttpState, StreamState};

/// One request through the plugin, with the upstream's response, run to completion.
#[must_use = "call .run() to send the request"]
#[derive(Debug)]
pub struct HttpExchange<'p> {
    plugin: &'p Plugin,
    worker: usize,
    request: Request,
    response: Response,
    chunk_size: Option<usize>,
    held_wait: Option<std::time::Duration>,
    properties: Vec<(Vec<u8>, PropertyValue)>,
    client_disconnects: bool,
}

impl<'p> HttpExchange<'p> {
    pub(crate) fn new(plugin: &'p Plugin, worker: usize) -> Self {
        HttpExchange {
            plugin,
            worker,
            request: Request::get("/"),
            response: Response::status(200),
            chunk_size: None,
            held_wait: None,
            properties: Vec::new(),
            client_disconnects: false,
        }
    }

    /// The client closes its connection once its request was sent (and the callouts it
    /// waits for answered), before any response: the plugin gets no response callback, and
    /// `on_log` finds no response headers, `response.code_details`
    /// `downstream_remote_disconnect` and the `DC` response flag, as in Envoy (scenario
    /// `exerciser_log_client_gone`).
    pub fn client_disconnects(mut self) -> Self {
        self.client_disconnects = true;
        self
    }

    /// Sets a property for this stream only (dotted path, as [`PluginBuilder::property`]),
    /// over the plugin-wide and the derived value: e.g. `response.code_details` of an idle
    /// timeout, or the `upstream.address` of a particular endpoint.
    ///
    /// [`PluginBuilder::property`]: crate::PluginBuilder::property
    pub fn property(mut self, path: &str, value: impl Into<PropertyValue>) -> Self {
        self.properties.push((dotted(path), value.into()));
        self
    }

    /// If the plugin still holds the request once it was sent and its callouts answered,
    /// the virtual clock moves this far before the exchange goes on (ticks fire, queues
    /// deliver), as a client waits in Envoy while a root context decides (default: no wait).
    pub fn wait_while_held(mut self, wait: std::time::Duration) -> Self {
        self.held_wait = Some(wait);
        self
    }

    /// The request the client sends (default `GET /`).
    pub fn request(mut self, request: Request) -> Self {
        self.request = request;
        self
    }

    /// The response the upstream returns if the request reaches it (default 200, empty).
    pub fn response(mut self, response: Response) -> Self {
        self.response = response;
        self
    }

    /// Delivers bodies in chunks of at most `bytes` (default: one chunk).
    pub fn chunk_size(mut self, bytes: usize) -> Self {
        self.chunk_size = Some(bytes.max(1));
        self
    }

    /// Runs the exchange: request headers, body and trailers; callout responses as they are
    /// due; then, if the whole request reached the upstream, the response the same way;
    /// finally the stream's end (`on_done`, `on_log`, `on_delete`).
    pub fn run(self) -> Outcome {
        let mut stream = HttpStream::open(self.plugin, self.worker);
        for (path, value) in self.properties {
            stream.set_property(path, value);
        }
        let chunk = self.chunk_size;
        stream.send_request(&self.request, chunk);
        stream.deliver_callouts();
        if let Some(wait) = self.held_wait.filter(|_| !stream.request_complete()) {
            self.plugin.advance(wait);
            stream.deliver_callouts();
        }
        if self.client_disconnects {
            stream.disconnect_client();
        } else if stream.request_complete() {
            stream.send_response(&self.response, chunk);
            stream.deliver_callouts();
        }
        stream.finish()
    }
}

/// An HTTP stream driven step by step; dropping it ends the stream.
pub struct HttpStream<'p> {
    handle: Handle<'p, HttpKind>,
}

impl std::fmt::Debug for HttpStream<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpStream")
            .field("worker", &self.handle.worker)
            .finish_non_exhaustive()
    }
}

pub(crate) struct HttpKind;

impl StreamKind for HttpKind {
    fn create(vm: &mut Vm) -> u32 {
        flows::http::create(vm)
    }

    fn fill(state: &StreamState, outcome: &mut Outcome) {
        if let StreamState::Http(http) = state {
            fill(outcome, http);
        }
    }

    fn finish(vm: &mut Vm, context: u32) -> Option<StreamState> {
        flows::http::finish(vm, context).map(StreamState::Http)
    }
}

impl<'p> HttpStream<'p> {
    pub(crate) fn open(plugin: &'p Plugin, worker: usize) -> Self {
        HttpStream {
            handle: Handle::open(plugin, worker),
        }
    }

    fn step(&mut self, f: impl FnOnce(&mut Vm, u32)) -> &mut Self {
        self.handle.step(f);
        self
    }

    /// Sets a property for this stream only (dotted path), over the plugin-wide and the
    /// derived value; see [`HttpExchange::property`].
    pub fn property(&mut self, path: &str, value: impl Into<PropertyValue>) -> &mut Self {
        self.set_property(dotted(path), value.into())
    }

    fn set_property(&mut self, path: Vec<u8>, value: PropertyValue) -> &mut Self {
        self.step(|vm, cx| {
            if let Some(StreamState::Http(http)) = vm.state().proxy.streams.get_mut(&cx) {
                http.properties.insert(path, value.0);
            }
        })
    }

    /// Sends request headers (`:method`, `:path`, … and the others of `request`).
    pub fn send_request_headers(&mut self, request: &Request, end_of_stream: bool) -> &mut Self {
        let fields = request.wire_fields();
        self.step(|vm, cx| flows::http::headers(vm, cx, Dir::Request, fields, end_of_stream))
    }

    /// Sends a request body chunk.
    pub fn send_request_body(&mut self, chunk: &[u8], end_of_stream: bool) -> &mut Self {
        self.step(|vm, cx| flows::http::body(vm, cx, Dir::Request, chunk, end_of_stream))
    }

    /// Sends request trailers (ending the request).
    pub fn send_request_trailers(&mut self, trailers: &Headers) -> &mut Self {
        let fields = trailers.to_fields();
        self.step(|vm, cx| flows::http::trailers(vm, cx, Dir::Request, fields))
    }

    /// Sends response headers. [`Response::timeout`], [`Response::idle_timeout`],
    /// [`Response::upstream_reset`] and [`Response::connection_refused`] stand for Envoy
    /// answering in the upstream's place: the stream then records the details and response
    /// flags Envoy records.
    pub fn send_response_headers(&mut self, response: &Response, end_of_stream: bool) -> &mut Self {
        let fields = response.header_fields();
        let failure = response.upstream_failure;
        self.step(|vm, cx| {
            if let (Some(failure), Some(StreamState::Http(http))) =
                (failure, vm.state().proxy.streams.get_mut(&cx))
            {
                http.details = Some(failure.details());
                http.flags |= failure.flag();
                http.failure = Some(failure);
            }
            flows::http::headers(vm, cx, Dir::Response, fields, end_of_stream)
        })
    }

    /// The client closes its connection now: nothing more reaches the plugin but the
    /// stream's end; see [`HttpExchange::client_disconnects`].
    pub fn disconnect_client(&mut self) -> &mut Self {
        self.step(|vm, cx| {
            if let Some(StreamState::Http(http)) = vm.state().proxy.streams.get_mut(&cx) {
                // A client that already has its whole response leaves nothing behind.
                if http.response.passed.end || http.replied.is_some() {
                    return;
                }
                http.client_gone = true;
                http.details.get_or_insert(DOWNSTREAM_DISCONNECT);
                http.flags |= crate::message::response_flags::DOWNSTREAM_CONNECTION_TERMINATION;
            }
        })
    }

    /// Sends a response body chunk.
    pub fn send_response_body(&mut self, chunk: &[u8], end_of_stream: bool) -> &mut Self {
        self.step(|vm, cx| flows::http::body(vm, cx, Dir::Response, chunk, end_of_stream))
    }

    /// Sends response trailers (ending the response).
    pub fn send_response_trailers(&mut self, trailers: &Headers) -> &mut Self {
        let fields = trailers.to_fields();
        self.step(|vm, cx| flows::http::trailers(vm, cx, Dir::Response, fields))
    }

    /// Sends a whole request: headers, body (in chunks of `chunk` bytes), trailers.
    pub fn send_request(&mut self, request: &Request, chunk: Option<usize>) -> &mut Self {
        let body = request.body_bytes();
        let trailers = request.trailers();
        self.send_request_headers(request, body.is_empty() && trailers.is_empty());
        for (piece, last) in chunks(body, chunk) {
            self.send_request_body(piece, last && trailers.is_empty());
        }
        if !trailers.is_empty() {
            self.send_request_trailers(trailers);
        }
        self
    }

    /// Sends a whole response: headers, body (in chunks of `chunk` bytes), trailers.
    pub fn send_response(&mut self, response: &Response, chunk: Option<usize>) -> &mut Self {
        let body = response.body_bytes();
        let trailers = response.trailers();
        self.send_response_headers(response, body.is_empty() && trailers.is_empty());
        for (piece, last) in chunks(body, chunk) {
            self.send_response_body(piece, last && trailers.is_empty());
        }
        if !trailers.is_empty() {
            self.send_response_trailers(trailers);
        }
        self
    }

    /// Delivers every pending callout response now, moving the virtual clock to each one's
    /// due time (responses delayed past their timeout arrive as timeouts).
    pub fn deliver_callouts(&mut self) -> &mut Self {
        self.handle.deliver_callouts();
        self
    }

    /// Whether the complete request has reached the upstream.
    pub fn request_complete(&self) -> bool {
        self.with_http(|http| http.request.passed.end && !flows::http::is_over(http))
            .unwrap_or(false)
    }

    /// Whether the plugin holds the request (paused, waiting for e.g. a callout).
    pub fn request_paused(&self) -> bool {
        self.with_http(|http| http.request.paused.is_some())
            .unwrap_or(false)
    }

    fn with_http<R>(&self, f: impl FnOnce(&HttpState) -> R) -> Option<R> {
        self.handle
            .with_state(|state| match state {
                StreamState::Http(http) => Some(f(http)),
                StreamState::Tcp(_) => None,
            })
            .flatten()
    }

    /// What the stream showed so far (logs and costs collected up to now).
    pub fn outcome(&mut self) -> Outcome {
        self.handle.outcome()
    }

    /// Ends the stream (`on_done`, `on_log`, `on_delete`) and returns the full outcome.
    pub fn finish(mut self) -> Outcome {
        self.handle.end()
    }
}

/// Envoy's `response.code_details` when the client left before the response ended.
const DOWNSTREAM_DISCONNECT: &str = "downstream_remote_disconnect";

/// The stored form of a dotted property path.
fn dotted(path: &str) -> Vec<u8> {
    let segments: Vec<&str> = path.split('.').collect();
    crate::host_functions::properties::normalize(&weir_abi::wire::encode_path(&segments))
}

fn chunks(body: &[u8], size: Option<usize>) -> Vec<(&[u8], bool)> {
    if body.is_empty() {
        return Vec::new();
    }
    let pieces: Vec<&[u8]> = body.chunks(size.unwrap_or(body.len())).collect();
    let last = pieces.len() - 1;
    pieces
        .into_iter()
        .enumerate()
        .map(|(i, p)| (p, i == last))
        .collect()
}

fn passed_request(d: &Direction) -> Option<Request> {
    let headers = d.passed.headers.clone()?;
    Some(Request::from_parts(
        headers,
        d.passed.body.clone(),
        d.passed.trailers.clone().unwrap_or_default(),
    ))
}

fn passed_response(d: &Direction) -> Option<Response> {
    let headers = d.passed.headers.clone()?;
    Some(Response::from_parts(
        headers,
        d.passed.body.clone(),
        d.passed.trailers.clone().unwrap_or_default(),
    ))
}

fn fill(outcome: &mut Outcome, http: &HttpState) {
    outcome.actions = http.actions.clone();
    outcome.local_reply = http.local_reply.clone();
    outcome.upstream_request = passed_request(&http.request);
    outcome.response = match (&http.replied, &http.local_reply) {
        (Some(replied), _) => Some(replied.clone()),
        (None, Some(reply)) => Some(reply.to_response()),
        // Fail closed, as Envoy: a crash before the response started answers 503, empty.
        (None, None) if http.trap.is_some() && http.response.passed.headers.is_none() => {
            Some(Response::status(503).body(Vec::new()))
        }
        (None, None) => passed_response(&http.response),
    };
    outcome.trap = http.trap.clone();
    outcome.reset = http.reset;
}
