//! HTTP/2 on both sides of Envoy, for scenarios with trailers (HTTP/1.1 drops them): a
//! client speaking h2c with prior knowledge to Envoy's listener, and an upstream that
//! records each request with its trailers and answers with a canned response, trailers
//! included (on weir-envoy-tests' `H2Server`). Both are hyper over tokio on 127.0.0.1,
//! bounded in time.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use futures_util::stream;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response};
use http_body_util::{combinators::BoxBody, BodyExt, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};

use weir_envoy_tests::{h2_runtime, H2Server};

use crate::scenario::{CannedResponse, ClientRequest, Fields};

/// A message as one side received it: request (`method`, `path`) or response (`status`).
#[derive(Debug, Clone, Default)]
pub struct H2Message {
    /// Request method; empty for a response.
    pub method: String,
    /// Request target; empty for a response.
    pub path: String,
    /// Response status; 0 for a request.
    pub status: u16,
    /// Header fields, names lowercase, pseudo-headers left out.
    pub headers: Fields,
    /// The body.
    pub body: Vec<u8>,
    /// The trailers (empty when none came).
    pub trailers: Fields,
}

type Received = Arc<Mutex<Vec<H2Message>>>;

/// A body of one data frame (when not empty) and one trailers frame (when any).
fn body_with_trailers(body: &str, trailers: &Fields) -> Result<BoxBody<Bytes, Infallible>> {
    let mut frames = Vec::new();
    if !body.is_empty() {
        frames.push(Frame::data(Bytes::from(body.to_owned())));
    }
    if !trailers.is_empty() {
        frames.push(Frame::trailers(header_map(trailers)?));
    }
    Ok(StreamBody::new(stream::iter(frames.into_iter().map(Ok))).boxed())
}

fn header_map(fields: &Fields) -> Result<HeaderMap> {
    let mut map = HeaderMap::new();
    for (name, value) in fields {
        map.append(
            HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
                .with_context(|| format!("header name {name:?}"))?,
            HeaderValue::from_str(value).with_context(|| format!("value of header {name}"))?,
        );
    }
    Ok(map)
}

fn fields(map: &HeaderMap) -> Fields {
    map.iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// Reads a whole body: its data and its trailers.
async fn collect(body: Incoming) -> Result<(Vec<u8>, Fields)> {
    let collected = body.collect().await.context("reading an HTTP/2 body")?;
    let trailers = collected.trailers().map(fields).unwrap_or_default();
    Ok((collected.to_bytes().to_vec(), trailers))
}

/// The upstream of `http2` scenarios: answers every request with the same canned response
/// and records what it received; dropping it stops it.
#[derive(Debug)]
pub struct H2Upstream {
    server: H2Server,
    received: Received,
}

impl H2Upstream {
    /// Starts serving `reply` (with `content-length` added, as the HTTP/1 upstream does).
    pub fn start(reply: CannedResponse) -> Result<Self> {
        // Checked now, so a bad scenario fails here rather than as a broken response.
        header_map(&reply.headers)?;
        header_map(&reply.trailers)?;
        let received = Received::default();
        let (reply, served) = (Arc::new(reply), received.clone());
        let server = H2Server::start("HTTP/2 upstream", move |request| {
            answer(reply.clone(), served.clone(), request)
        })?;
        Ok(H2Upstream { server, received })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The requests received so far, in order of arrival.
    pub fn requests(&self) -> Vec<H2Message> {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

async fn answer(
    reply: Arc<CannedResponse>,
    received: Received,
    request: Request<Incoming>,
) -> Result<Response<BoxBody<Bytes, Infallible>>> {
    let (parts, body) = request.into_parts();
    let (body, trailers) = collect(body).await?;
    if let Ok(mut seen) = received.lock() {
        seen.push(H2Message {
            method: parts.method.to_string(),
            path: parts
                .uri
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default(),
            headers: fields(&parts.headers),
            body,
            trailers,
            ..H2Message::default()
        });
    }
    if reply.delay_ms > 0 {
        tokio::time::sleep(Duration::from_millis(reply.delay_ms)).await;
    }
    let mut response = Response::builder().status(reply.status);
    for (name, value) in &reply.headers {
        response = response.header(name.as_str(), value.as_str());
    }
    response
        .header("content-length", reply.body.len())
        .body(body_with_trailers(&reply.body, &reply.trailers)?)
        .context("building the HTTP/2 upstream's response")
}

/// Sends `request` (with its trailers, and `content-length` as the HTTP/1 client sends it)
/// to `addr` over h2c with prior knowledge; gives up after `timeout`.
pub fn send(addr: SocketAddr, request: &ClientRequest, timeout: Duration) -> Result<H2Message> {
    let runtime = h2_runtime()?;
    runtime.block_on(async {
        tokio::time::timeout(timeout, exchange(addr, request))
            .await
            .context("no HTTP/2 response in time")?
    })
}

async fn exchange(addr: SocketAddr, request: &ClientRequest) -> Result<H2Message> {
    let io = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("connecting to {addr}"))?;
    let (mut sender, connection) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(io))
            .await
            .context("HTTP/2 handshake with Envoy")?;
    tokio::spawn(connection);
    let mut out = Request::builder()
        .method(request.method.as_str())
        .uri(format!("http://{addr}{}", request.path));
    for (name, value) in &request.headers {
        out = out.header(name.as_str(), value.as_str());
    }
    let out = out
        .header("content-length", request.body.len())
        .body(body_with_trailers(&request.body, &request.trailers)?)
        .context("building the HTTP/2 request")?;
    let response = sender
        .send_request(out)
        .await
        .context("sending the HTTP/2 request")?;
    let (parts, body) = response.into_parts();
    let (body, trailers) = collect(body).await?;
    Ok(H2Message {
        status: parts.status.as_u16(),
        headers: fields(&parts.headers),
        body,
        trailers,
        ..H2Message::default()
    })
}
