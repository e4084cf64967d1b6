//! One HTTP/1.1 exchange at a time, with no redirects followed and no cookies kept.
//!
//! [`Http`] is what a relying party uses for back-channel calls (token endpoint, JWKS);
//! [`crate::Browser`] adds a cookie jar on top of it.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use url::Url;

/// Largest response body read; provider pages and token responses are a few KiB.
const MAX_BODY_BYTES: u64 = 4 * 1024 * 1024;

/// A request to send: method, absolute `http://` URL, header fields in order, body.
#[derive(Debug, Clone)]
pub struct Request {
    /// The method, such as `GET` or `POST`.
    pub method: String,
    /// The absolute URL (`http://` only: everything here runs on loopback).
    pub url: Url,
    /// Header fields sent as given, in order.
    pub headers: Vec<(String, String)>,
    /// The body; sent with `content-length` when not empty.
    pub body: Vec<u8>,
}

impl Request {
    /// A `GET` for `url`.
    pub fn get(url: &str) -> Result<Self> {
        Ok(Self::new("GET", parse_http_url(url)?))
    }

    /// A `POST` of `fields` as `application/x-www-form-urlencoded` to `url`.
    pub fn post_form<K, V>(url: &str, fields: &[(K, V)]) -> Result<Self>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields.iter().map(|(k, v)| (k.as_ref(), v.as_ref())))
            .finish();
        Ok(Self::new("POST", parse_http_url(url)?)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body))
    }

    /// A request with any method for an already parsed URL.
    pub fn new(method: &str, url: Url) -> Self {
        Self {
            method: method.to_owned(),
            url,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Adds a header field (a name given twice is sent twice).
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }
}

/// What came back, with the URL it came from so relative `Location`s and form actions can be
/// resolved.
#[derive(Debug, Clone)]
pub struct Response {
    /// The URL that was requested.
    pub url: Url,
    /// The status code.
    pub status: u16,
    /// Header fields in the order received (repeated names kept).
    pub headers: Vec<(String, String)>,
    /// The whole body.
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.header_all(name).into_iter().next()
    }

    /// Every value of header `name`, in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The body as text (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_slice(&self.body).with_context(|| {
            format!(
                "{} answered {} with a body that is not JSON: {}",
                self.url,
                self.status,
                snippet(&self.text())
            )
        })
    }

    /// Whether this is a redirect that carries a `Location`.
    pub fn is_redirect(&self) -> bool {
        matches!(self.status, 301 | 302 | 303 | 307 | 308) && self.header("location").is_some()
    }

    /// The `Location` header resolved against the request URL, if any.
    pub fn location(&self) -> Result<Option<Url>> {
        let Some(location) = self.header("location") else {
            return Ok(None);
        };
        self.url
            .join(location)
            .map(Some)
            .with_context(|| format!("{} sent an unusable Location {location:?}", self.url))
    }
}

/// Sends [`Request`]s over plain HTTP with a per-exchange time limit.
#[derive(Debug, Clone)]
pub struct Http {
    agent: ureq::Agent,
}

impl Default for Http {
    fn default() -> Self {
        Self::new(Duration::from_secs(10))
    }
}

impl Http {
    /// A client whose every exchange (connect, send, receive) ends within `timeout`.
    pub fn new(timeout: Duration) -> Self {
        let agent = ureq::Agent::config_builder()
            .max_redirects(0)
            .http_status_as_error(false)
            .timeout_global(Some(timeout))
            .build()
            .into();
        Self { agent }
    }

    /// Sends `request` and reads the whole response. Redirects are returned, not followed.
    pub fn send(&self, request: &Request) -> Result<Response> {
        let what = || format!("{} {}", request.method, request.url);
        let mut builder = ureq::http::Request::builder()
            .method(request.method.as_str())
            .uri(request.url.as_str());
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        // Like a browser, a request without a body sends no content-length at all.
        let sent = if request.body.is_empty() && matches!(request.method.as_str(), "GET" | "HEAD") {
            builder.body(()).map(|r| self.agent.run(r))
        } else {
            builder
                .body(request.body.clone())
                .map(|r| self.agent.run(r))
        };
        let mut response = sent
            .with_context(|| format!("building {}", what()))?
            .with_context(|| format!("{} failed (is the server running?)", what()))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_BODY_BYTES)
            .read_to_vec()
            .with_context(|| format!("reading the response to {}", what()))?;
        Ok(Response {
            url: request.url.clone(),
            status,
            headers,
            body,
        })
    }
}

/// Parses an absolute `http://` URL.
pub(crate) fn parse_http_url(url: &str) -> Result<Url> {
    let parsed = Url::parse(url).with_context(|| format!("{url:?} is not an absolute URL"))?;
    if parsed.scheme() != "http" {
        bail!("only http:// URLs are used here (everything runs on 127.0.0.1), got {url:?}");
    }
    Ok(parsed)
}

/// The start of a long text, for error messages.
pub(crate) fn snippet(text: &str) -> String {
    const MAX: usize = 400;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}
