//! A blocking HTTP/1.1 client for tests: one request per connection, no redirects followed
//! (a redirect is returned, with [`HttpResponse::location`] resolved for the caller).

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use url::Url;

use crate::headers::Headers;
use crate::http1;

/// A request to send with [`HttpRequest::send`].
///
/// Header fields are written exactly as given, in order, so a test can send the same name
/// twice. `host`, `content-length` and `connection: close` are added by the client.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    method: String,
    url: String,
    addr: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    timeout: Duration,
}

/// What came back: status, every header field in wire order, and the body.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// The URL that was requested, as given to [`HttpRequest::new`].
    pub url: String,
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
        matches!(self.status, 301 | 302 | 303 | 307 | 308) && self.headers.contains("location")
    }

    /// The `Location` header resolved against the request URL, if there is one.
    pub fn location(&self) -> Result<Option<Url>> {
        let Some(location) = self.headers.get("location") else {
            return Ok(None);
        };
        let base = Url::parse(&self.url)
            .with_context(|| format!("the request URL {:?} is not a URL", self.url))?;
        base.join(location)
            .map(Some)
            .with_context(|| format!("{} sent an unusable Location {location:?}", self.url))
    }
}

/// The start of a long text, for error messages.
pub fn snippet(text: &str) -> String {
    const MAX: usize = 400;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
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
            url: url.to_owned(),
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

    /// A `POST` of `fields` as `application/x-www-form-urlencoded` to `url`, as a browser
    /// submits a form.
    pub fn post_form<K, V>(url: &str, fields: &[(K, V)]) -> Result<Self>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields.iter().map(|(k, v)| (k.as_ref(), v.as_ref())))
            .finish();
        Ok(Self::new("POST", url)?
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body))
    }

    /// The method.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The URL, as given.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether a header field called `name` (ASCII case-insensitive) has been added.
    pub fn has_header(&self, name: &str) -> bool {
        self.headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
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
                url: self.url.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EchoUpstream, Reply};

    #[test]
    fn a_form_post_is_sent_encoded_and_a_redirect_is_returned_resolved() -> Result<()> {
        let upstream =
            EchoUpstream::with_reply(Reply::status(303).header("location", "../next?x=1#frag"))?;
        let url = format!("http://{}/a/b/form", upstream.addr());
        let request = HttpRequest::post_form(&url, &[("user", "al ice"), ("p", "a&b")])?;
        assert!(request.has_header("Content-Type"));
        assert_eq!((request.method(), request.url()), ("POST", url.as_str()));
        let response = request.send()?;
        assert!(response.is_redirect());
        assert_eq!(response.url, url);
        assert_eq!(
            response.location()?.map(String::from),
            Some(format!("http://{}/a/next?x=1#frag", upstream.addr()))
        );
        let seen = &upstream.requests()[0];
        assert_eq!(seen.method, "POST");
        assert_eq!(
            seen.headers.get("content-type"),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(seen.body, b"user=al+ice&p=a%26b");
        Ok(())
    }

    #[test]
    fn json_bodies_parse_and_other_bodies_are_a_clear_error() -> Result<()> {
        let upstream = EchoUpstream::with_reply(Reply::status(200).body(r#"{"a":1}"#))?;
        let url = format!("http://{}/", upstream.addr());
        assert_eq!(HttpRequest::get(&url)?.send()?.json()?["a"], 1);
        upstream.set_reply(Reply::status(500).body("<html>oops</html>"));
        let response = HttpRequest::get(&url)?.send()?;
        assert!(!response.is_redirect());
        assert_eq!(response.location()?, None);
        let error = format!("{:#}", response.json().expect_err("not JSON"));
        assert!(error.contains("500") && error.contains("oops"), "{error}");
        Ok(())
    }
}
