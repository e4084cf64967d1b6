//! HTTP messages as tests write and read them: requests, responses and local replies.
//!
//! Header names are kept lowercase, as Envoy keeps them; pseudo-headers (`:method`,
//! `:path`, `:authority`, `:status`, …) are ordinary entries, as the guest sees them.

use std::time::Duration;

/// Header fields as bytes, in order, duplicates allowed: the form the ABI carries.
pub(crate) type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// An ordered list of header fields (names lowercase, duplicates kept).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    /// No fields.
    pub fn new() -> Self {
        Headers(Vec::new())
    }

    /// The first value of `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `name`, in order.
    pub fn get_all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// Appends a field (the name is lowercased).
    pub fn append(&mut self, name: &str, value: &str) {
        self.0.push((name.to_ascii_lowercase(), value.to_string()));
    }

    /// Replaces all values of `name` with one.
    pub fn set(&mut self, name: &str, value: &str) {
        self.0.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.append(name, value);
    }

    /// All fields in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no fields.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn to_fields(&self) -> Fields {
        self.0
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    }

    pub(crate) fn from_fields(fields: &[(Vec<u8>, Vec<u8>)]) -> Self {
        Headers(
            fields
                .iter()
                .map(|(k, v)| {
                    (
                        String::from_utf8_lossy(k).into_owned(),
                        String::from_utf8_lossy(v).into_owned(),
                    )
                })
                .collect(),
        )
    }
}

/// An HTTP request: what the client sends, what the upstream sees, or a callout.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Request {
    headers: Headers,
    body: Vec<u8>,
    trailers: Headers,
    /// Fields whose bytes are not UTF-8 (obs-text), sent after `headers`.
    raw_headers: Fields,
}

impl Request {
    /// A request with this method and path, `:authority` `example.com` and `:scheme` `http`.
    /// The pseudo-headers come in the order Envoy's HTTP/1 codec gives a plugin
    /// (`:authority`, `:path`, `:method`, `:scheme`; scenario `exerciser_header_order`).
    pub fn new(method: &str, path: &str) -> Self {
        let mut headers = Headers::new();
        headers.append(":authority", "example.com");
        headers.append(":path", path);
        headers.append(":method", method);
        headers.append(":scheme", "http");
        Request {
            headers,
            body: Vec::new(),
            trailers: Headers::new(),
            raw_headers: Vec::new(),
        }
    }

    /// `GET path`.
    pub fn get(path: &str) -> Self {
        Request::new("GET", path)
    }

    /// `POST path`.
    pub fn post(path: &str) -> Self {
        Request::new("POST", path)
    }

    /// Appends a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Appends a header whose value is raw bytes, e.g. obs-text (0x80–0xFF) that Envoy lets
    /// through but that is not UTF-8. These fields reach the plugin after the ordinary ones.
    pub fn header_bytes(mut self, name: &str, value: &[u8]) -> Self {
        self.raw_headers
            .push((name.to_ascii_lowercase().into_bytes(), value.to_vec()));
        self
    }

    /// Every header field as the plugin receives it, raw-byte fields last.
    pub(crate) fn wire_fields(&self) -> Fields {
        let mut fields = self.headers.to_fields();
        fields.extend(self.raw_headers.iter().cloned());
        fields
    }

    /// Sets `:authority`.
    pub fn authority(mut self, host: &str) -> Self {
        self.headers.set(":authority", host);
        self
    }

    /// Adds `authorization: Bearer <token>`.
    pub fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Appends a trailer.
    pub fn trailer(mut self, name: &str, value: &str) -> Self {
        self.trailers.append(name, value);
        self
    }

    /// `:method`.
    pub fn method(&self) -> &str {
        self.headers.get(":method").unwrap_or_default()
    }

    /// `:path`.
    pub fn path(&self) -> &str {
        self.headers.get(":path").unwrap_or_default()
    }

    pub(crate) fn from_parts(headers: Fields, body: Vec<u8>, trailers: Fields) -> Self {
        Request {
            headers: Headers::from_fields(&headers),
            body,
            trailers: Headers::from_fields(&trailers),
            raw_headers: Vec::new(),
        }
    }
}

/// The body of [`Response::connection_refused`], word for word Envoy's.
const CONNECTION_REFUSED_BODY: &str =
    "upstream connect error or disconnect/reset before headers. reset reason: remote connection failure";

/// The body of [`Response::upstream_reset`], word for word Envoy's.
const UPSTREAM_RESET_BODY: &str =
    "upstream connect error or disconnect/reset before headers. reset reason: connection termination";

/// How the upstream failed, when a [`Response`] stands for Envoy's router answering in
/// its place: the details and response flags Envoy then records for the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UpstreamFailure {
    /// The route's timeout passed before the upstream answered.
    Timeout,
    /// The stream was idle for the route's idle timeout.
    IdleTimeout,
    /// The upstream closed the connection before any response.
    Reset,
    /// The cluster has no healthy host to send the request to.
    NoHealthyHost,
    /// The upstream refused the connection.
    ConnectionRefused,
}

impl UpstreamFailure {
    /// Envoy's `response.code_details`.
    pub(crate) fn details(self) -> &'static str {
        match self {
            UpstreamFailure::Timeout => "response_timeout",
            UpstreamFailure::IdleTimeout => "stream_idle_timeout",
            UpstreamFailure::Reset => {
                "upstream_reset_before_response_started{connection_termination}"
            }
            UpstreamFailure::NoHealthyHost => "no_healthy_upstream",
            UpstreamFailure::ConnectionRefused => {
                "upstream_reset_before_response_started{remote_connection_failure|delayed_connect_error:_Connection_refused}"
            }
        }
    }

    /// Envoy's legacy `response.flags` bit (`UT`, `UC`).
    pub(crate) fn flag(self) -> u64 {
        match self {
            UpstreamFailure::Timeout => response_flags::UPSTREAM_REQUEST_TIMEOUT,
            UpstreamFailure::IdleTimeout => response_flags::STREAM_IDLE_TIMEOUT,
            UpstreamFailure::Reset => response_flags::UPSTREAM_CONNECTION_TERMINATION,
            UpstreamFailure::NoHealthyHost => response_flags::NO_HEALTHY_UPSTREAM,
            UpstreamFailure::ConnectionRefused => response_flags::UPSTREAM_CONNECTION_FAILURE,
        }
    }

    /// Envoy's `upstream.transport_failure_reason`.
    pub(crate) fn transport_failure_reason(self) -> &'static str {
        match self {
            UpstreamFailure::ConnectionRefused => "delayed connect error: Connection refused",
            _ => "",
        }
    }
}

/// An HTTP response: from the upstream, from a callout handler, or as the client sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    headers: Headers,
    body: Vec<u8>,
    trailers: Headers,
    pub(crate) delay: Duration,
    pub(crate) upstream_failure: Option<UpstreamFailure>,
    /// Envoy made this response up itself (no upstream answered): its router adds no
    /// `x-envoy-upstream-service-time`.
    pub(crate) synthetic: bool,
}

impl Response {
    /// A response with this `:status`.
    pub fn status(code: u16) -> Self {
        let mut headers = Headers::new();
        headers.append(":status", &code.to_string());
        Response {
            headers,
            body: Vec::new(),
            trailers: Headers::new(),
            delay: Duration::ZERO,
            upstream_failure: None,
            synthetic: false,
        }
    }

    /// A callout that fails before any response: the guest gets 0 headers (the ABI's
    /// failure signal). Envoy itself turns most failures into a synthetic 503 or 504
    /// (see [`Response::timeout`]); use this for the ABI-level failure.
    pub fn failure() -> Self {
        Response::default()
    }

    /// The response Envoy synthesizes when a callout times out: 504 `upstream request timeout`.
    /// As the upstream's response of an HTTP exchange, the route's timeout passed first:
    /// Envoy's router answers this itself, through the plugin's response callbacks, with
    /// `response.code_details` `response_timeout` and the `UT` response flag (scenario
    /// `exerciser_props_route_timeout`).
    pub fn timeout() -> Self {
        let mut response = Response::status(504)
            .header("content-type", "text/plain")
            .body("upstream request timeout");
        response.upstream_failure = Some(UpstreamFailure::Timeout);
        response.synthetic = true;
        response
    }

    /// The stream stays idle for the route's idle timeout before the upstream answers:
    /// Envoy answers `504` `stream timeout` itself, through the plugin's response
    /// callbacks, with `response.code_details` `stream_idle_timeout` and the `SI` response
    /// flag (scenario `exerciser_props_idle_timeout`).
    pub fn idle_timeout() -> Self {
        let mut response = Response::status(504)
            .header("content-type", "text/plain")
            .body("stream timeout");
        response.upstream_failure = Some(UpstreamFailure::IdleTimeout);
        response.synthetic = true;
        response
    }

    /// The upstream closes the connection without answering: Envoy's router answers `503`
    /// with its reason as text/plain, through the plugin's response callbacks, with
    /// `response.code_details` `upstream_reset_before_response_started{connection_termination}`
    /// and the `UC` response flag (scenario `exerciser_props_upstream_reset`). As a
    /// callout's answer, the guest gets the same `503`.
    pub fn upstream_reset() -> Self {
        let mut response = Response::status(503)
            .header("content-type", "text/plain")
            .body(UPSTREAM_RESET_BODY);
        response.upstream_failure = Some(UpstreamFailure::Reset);
        response.synthetic = true;
        response
    }

    /// The response Envoy 1.40 synthesizes for a callout to a cluster whose endpoint refuses
    /// the connection (scenario `exerciser_callout_refused`): a 503 with its text/plain
    /// reason, as the guest receives it. As the upstream's response of an HTTP exchange,
    /// Envoy's router answers the same through the plugin's response callbacks, with
    /// `response.code_details`
    /// `upstream_reset_before_response_started{remote_connection_failure|delayed_connect_error:_Connection_refused}`,
    /// the `UF` response flag and no `upstream.local_address` (scenario
    /// `exerciser_props_upstream_refused`).
    pub fn connection_refused() -> Self {
        let mut response = Response::status(503)
            .body(CONNECTION_REFUSED_BODY)
            .header("content-type", "text/plain");
        response.upstream_failure = Some(UpstreamFailure::ConnectionRefused);
        response.synthetic = true;
        response
    }

    /// The cluster exists but has no healthy host (say, no endpoint at all). A callout to
    /// it fails at once: `proxy_http_call` returns `InternalFailure`, no response callback
    /// follows, and the cluster sees nothing (scenario `exerciser_callout_no_host`). As the
    /// upstream's response of an HTTP exchange it stands for Envoy's router answering `503`
    /// `no healthy upstream` with details `no_healthy_upstream` and the `UH` flag (read in
    /// Envoy's source, not compared with Envoy by a scenario).
    pub fn no_healthy_upstream() -> Self {
        let mut response = Response::status(503)
            .header("content-type", "text/plain")
            .body("no healthy upstream");
        response.upstream_failure = Some(UpstreamFailure::NoHealthyHost);
        response.synthetic = true;
        response
    }

    /// Appends a header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Sets the body (and `content-length`, as Envoy would).
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self.headers
            .set("content-length", &self.body.len().to_string());
        self
    }

    /// Sets the body without `content-length`, as a response framed by closing the
    /// connection (or chunked, with `transfer-encoding: chunked` among its headers) reaches
    /// the plugin: Envoy adds no length (scenarios `exerciser_callout_unframed`,
    /// `exerciser_callout_chunked`).
    pub fn body_without_length(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self.headers
            .0
            .retain(|(k, _)| !k.eq_ignore_ascii_case("content-length"));
        self
    }

    /// Appends a trailer.
    pub fn trailer(mut self, name: &str, value: &str) -> Self {
        self.trailers.append(name, value);
        self
    }

    /// Delays a callout response on the virtual clock; past the call's timeout the guest
    /// gets [`Response::timeout`] instead.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// The `:status` code, 0 when absent (a failed callout).
    pub fn status_code(&self) -> u16 {
        self.headers
            .get(":status")
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }

    pub(crate) fn from_parts(headers: Fields, body: Vec<u8>, trailers: Fields) -> Self {
        Response {
            headers: Headers::from_fields(&headers),
            body,
            trailers: Headers::from_fields(&trailers),
            delay: Duration::ZERO,
            upstream_failure: None,
            synthetic: false,
        }
    }

    pub(crate) fn header_fields(&self) -> Fields {
        self.headers.to_fields()
    }

    /// As a callout's answer from a cluster: Envoy's router adds the milliseconds the
    /// cluster took to the headers of every response an upstream sent.
    pub(crate) fn with_service_time(mut self, elapsed: Duration) -> Self {
        if !self.synthetic && self.status_code() != 0 {
            self.headers.append(
                "x-envoy-upstream-service-time",
                &elapsed.as_millis().to_string(),
            );
        }
        self
    }

    pub(crate) fn trailer_fields(&self) -> Fields {
        self.trailers.to_fields()
    }
}

/// Accessors shared by [`Request`] and [`Response`] (same fields, same meaning).
macro_rules! message_accessors {
    ($name:ident) => {
        impl $name {
            /// The first value of a header.
            pub fn header_value(&self, name: &str) -> Option<&str> {
                self.headers.get(name)
            }

            /// All headers, pseudo-headers included.
            pub fn headers(&self) -> &Headers {
                &self.headers
            }

            /// The body bytes.
            pub fn body_bytes(&self) -> &[u8] {
                &self.body
            }

            /// The body as text (lossy UTF-8).
            pub fn text(&self) -> String {
                String::from_utf8_lossy(&self.body).into_owned()
            }

            /// The trailers.
            pub fn trailers(&self) -> &Headers {
                &self.trailers
            }
        }
    };
}

message_accessors!(Request);
message_accessors!(Response);

/// A reply the plugin sent itself (`proxy_send_local_response`), ending the stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalReply {
    pub(crate) status: u16,
    pub(crate) details: String,
    pub(crate) headers: Headers,
    pub(crate) body: Vec<u8>,
    pub(crate) grpc_status: Option<u32>,
}

impl LocalReply {
    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        self.status
    }

    /// The status details string the plugin gave (Envoy's `response_code_details`).
    pub fn details(&self) -> &str {
        &self.details
    }

    /// The first value of a header the plugin added.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    /// Headers the plugin added.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body bytes.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The gRPC status, when the plugin passed one (anything but `u32::MAX`/-1).
    pub fn grpc_status(&self) -> Option<u32> {
        self.grpc_status
    }

    /// The reply as Envoy sends it, before any response callback: `content-length` always,
    /// and `content-type: text/plain` when there is a body and the plugin set no type.
    pub fn to_response(&self) -> Response {
        let mut response = Response::status(self.status);
        for (k, v) in self.headers.iter() {
            response = response.header(k, v);
        }
        if !self.body.is_empty() && self.headers.get("content-type").is_none() {
            response = response.header("content-type", "text/plain");
        }
        response.body(self.body.clone())
    }
}

/// Envoy's legacy `response.flags` bits (`StreamInfo::CoreResponseFlag`, in declaration
/// order), those weir-runtime sets.
pub(crate) mod response_flags {
    pub(crate) const NO_HEALTHY_UPSTREAM: u64 = 0x2;
    pub(crate) const UPSTREAM_REQUEST_TIMEOUT: u64 = 0x4;
    pub(crate) const UPSTREAM_CONNECTION_FAILURE: u64 = 0x20;
    pub(crate) const UPSTREAM_CONNECTION_TERMINATION: u64 = 0x40;
    pub(crate) const DOWNSTREAM_CONNECTION_TERMINATION: u64 = 0x4000;
    pub(crate) const STREAM_IDLE_TIMEOUT: u64 = 0x10000;
}
