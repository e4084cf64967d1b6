//! HTTP/2 on both sides of Envoy, for scenarios with trailers (HTTP/1.1 drops them): a
//! client speaking h2c with prior knowledge to Envoy's listener, and an upstream that
//! records each request with its trailers and answers with a canned response, trailers
//! included. Both are hyper over tokio on 127.0.0.1, bounded in time.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};
use futures_util::stream;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response};
use http_body_util::{combinators::BoxBody, BodyExt, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};

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

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting a tokio runtime for HTTP/2")
}

/// An HTTP/2 server (no TLS) on 127.0.0.1, on its own thread, each request answered by
/// `handler`; dropping it stops it. Also serves the gRPC clusters (`grpc_server.rs`).
#[derive(Debug)]
pub struct H2Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl H2Server {
    /// Starts serving; `name` names the thread and the errors.
    pub fn start<H, F, B, E>(name: &str, handler: H) -> Result<Self>
    where
        H: Fn(Request<Incoming>) -> F + Clone + Send + 'static,
        F: Future<Output = Result<Response<B>, E>> + Send + 'static,
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .with_context(|| format!("binding the {name} on 127.0.0.1"))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let runtime = runtime()?;
        let thread = std::thread::Builder::new()
            .name(format!("{name}-{}", addr.port()))
            .spawn(move || runtime.block_on(serve(listener, handler, stopped)))?;
        Ok(H2Server {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for H2Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve<H, F, B, E>(
    listener: std::net::TcpListener,
    handler: H,
    mut stopped: tokio::sync::oneshot::Receiver<()>,
) where
    H: Fn(Request<Incoming>) -> F + Clone + Send + 'static,
    F: Future<Output = Result<Response<B>, E>> + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    loop {
        let accepted = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((io, _)) = accepted else { continue };
        let handler = handler.clone();
        tokio::spawn(async move {
            let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(io), hyper::service::service_fn(handler))
                .await;
        });
    }
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
    let runtime = runtime()?;
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
