//! A blocking HTTP/1.1 client for tests: one request per connection, no redirects.

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::headers::Headers;
use crate::http1;

/// A request to send with [`HttpRequest::send`].
///
/// Header fields are written exactly as given, in order, so a test can send the same name
/// twice. `host`, `content-length` and `connection: close` are added by the client.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    method: String,
    addr: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    timeout: Duration,
}

/// What came back: status, every header field in wire order, and the body.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Header fields as received (repeated names kept, in order).
    pub headers: Headers,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The body as UTF-8 text (lossy), for assertions and messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl HttpRequest {
    /// A request for `url`, which must look like `http://host:port/path?query`.
    pub fn new(method: &str, url: &str) -> Result<Self> {
        let rest = url
            .strip_prefix("http://")
            .with_context(|| format!("only http:// URLs are supported, got {url:?}"))?;
        let (addr, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if addr.is_empty() {
            bail!("URL {url:?} has no host");
        }
        Ok(Self {
            method: method.to_owned(),
            addr: addr.to_owned(),
            path: path.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout: Duration::from_secs(10),
        })
    }

    /// A `GET` request for `url`.
    pub fn get(url: &str) -> Result<Self> {
        Self::new("GET", url)
    }

    /// Adds a header field; calling it twice with one name sends two field lines.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the body (sent with `content-length`).
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Limits connecting, writing and reading, each (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends the request and reads the whole response. 3xx responses are returned as-is.
    pub fn send(&self) -> Result<HttpResponse> {
        let target = self.resolve()?;
        let stream = TcpStream::connect_timeout(&target, self.timeout)
            .with_context(|| format!("connecting to {target} (is the server running?)"))?;
        stream.set_read_timeout(Some(self.timeout))?;
        stream.set_write_timeout(Some(self.timeout))?;

        let mut fields = vec![("host".to_owned(), self.addr.clone())];
        fields.extend(self.headers.iter().cloned());
        let start_line = format!("{} {} HTTP/1.1", self.method, self.path);
        (&stream)
            .write_all(&http1::encode(&start_line, &fields, &self.body))
            .with_context(|| format!("sending {} {} to {target}", self.method, self.path))?;

        let what = || {
            format!(
                "reading the response to {} {} from {target}",
                self.method, self.path
            )
        };
        let mut reader = BufReader::new(&stream);
        loop {
            let head = http1::read_head(&mut reader)
                .with_context(what)?
                .with_context(|| format!("{}: connection closed without a response", what()))?;
            let status = parse_status(&head.start_line).with_context(what)?;
            // Interim responses (100 Continue) precede the real one.
            if (100..200).contains(&status) {
                continue;
            }
            let framing =
                if self.method.eq_ignore_ascii_case("HEAD") || status == 204 || status == 304 {
                    http1::BodyFraming::None
                } else {
                    http1::framing(&head.headers, true).with_context(what)?
                };
            let body = http1::read_body(&mut reader, framing).with_context(what)?;
            return Ok(HttpResponse {
                status,
                headers: head.headers,
                body,
            });
        }
    }

    fn resolve(&self) -> Result<SocketAddr> {
        self.addr
            .to_socket_addrs()
            .with_context(|| format!("resolving {:?}", self.addr))?
            .next()
            .with_context(|| format!("{:?} resolves to no address", self.addr))
    }
}

fn parse_status(start_line: &str) -> Result<u16> {
    let mut parts = start_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        bail!("not an HTTP/1.x status line: {start_line:?}");
    }
    parts
        .next()
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("no status code in {start_line:?}"))
}
