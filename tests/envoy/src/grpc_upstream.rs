//! A gRPC server on 127.0.0.1, speaking the wire protocol itself (HTTP/2 with h2,
//! length-prefixed messages, `grpc-status` trailers) so a test scripts each answer: the
//! messages, the status, a delay, or holding the call open until the client cancels it.
//! Messages are bytes; the tests encode what they need.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response};

/// A call as the server received it.
#[derive(Debug, Clone, Default)]
pub struct GrpcCall {
    /// `/package.Service/Method`.
    pub path: String,
    /// The request headers (gRPC's initial metadata), names lower-case.
    pub metadata: Vec<(String, String)>,
    /// The messages the client sent, without their length prefix.
    pub messages: Vec<Vec<u8>>,
}

impl GrpcCall {
    /// The first value of metadata `name`.
    pub fn metadata(&self, name: &str) -> Option<&str> {
        self.metadata
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// How the server answers one call.
#[derive(Debug, Clone, Default)]
pub struct GrpcReply {
    delay: Duration,
    messages: Vec<Vec<u8>>,
    status: u32,
    message: String,
    trailers: Vec<(String, String)>,
    hold: bool,
}

impl GrpcReply {
    /// Status OK with these messages (one for a unary call).
    pub fn ok(messages: Vec<Vec<u8>>) -> Self {
        GrpcReply {
            messages,
            ..Self::default()
        }
    }

    /// A status other than OK, with its `grpc-message`, and no message.
    pub fn status(code: u32, message: &str) -> Self {
        GrpcReply {
            status: code,
            message: message.to_owned(),
            ..Self::default()
        }
    }

    /// Waits this long before the response headers.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Adds a trailing metadata entry.
    pub fn trailer(mut self, name: &str, value: &str) -> Self {
        self.trailers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sends the headers and messages, then never ends the call: it waits for the client
    /// to cancel it (recorded in [`GrpcUpstream::cancelled`]).
    pub fn hold(mut self) -> Self {
        self.hold = true;
        self
    }
}

type Handler = dyn Fn(&GrpcCall) -> GrpcReply + Send + Sync;

#[derive(Default)]
struct Record {
    calls: Vec<GrpcCall>,
    cancelled: Vec<String>,
}

/// A running gRPC server; stopped on drop.
pub struct GrpcUpstream {
    addr: SocketAddr,
    record: Arc<Mutex<Record>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for GrpcUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GrpcUpstream({})", self.addr)
    }
}

impl GrpcUpstream {
    /// Starts a server answering every call with `handler`'s reply.
    pub fn start(handler: impl Fn(&GrpcCall) -> GrpcReply + Send + Sync + 'static) -> Result<Self> {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let record = Arc::new(Mutex::new(Record::default()));
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the gRPC server's runtime")?;
        let handler: Arc<Handler> = Arc::new(handler);
        let shared = record.clone();
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                tokio::select! {
                    _ = stopped => {}
                    _ = serve(listener, handler, shared) => {}
                }
            });
        });
        Ok(GrpcUpstream {
            addr,
            record,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The calls received so far.
    pub fn calls(&self) -> Vec<GrpcCall> {
        self.lock().calls.clone()
    }

    /// The paths of calls the client cancelled so far: held ones, and streams reset while
    /// the client was still sending.
    pub fn cancelled(&self) -> Vec<String> {
        self.lock().cancelled.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Record> {
        self.record.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for GrpcUpstream {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn serve(
    listener: tokio::net::TcpListener,
    handler: Arc<Handler>,
    record: Arc<Mutex<Record>>,
) {
    while let Ok((socket, _)) = listener.accept().await {
        let (handler, record) = (handler.clone(), record.clone());
        tokio::spawn(async move {
            let Ok(mut connection) = h2::server::handshake(socket).await else {
                return;
            };
            while let Some(Ok((request, respond))) = connection.accept().await {
                let (handler, record) = (handler.clone(), record.clone());
                tokio::spawn(async move {
                    let _ = answer(request, respond, &*handler, &record).await;
                });
            }
        });
    }
}

async fn answer(
    request: http::Request<h2::RecvStream>,
    mut respond: h2::server::SendResponse<Bytes>,
    handler: &Handler,
    record: &Mutex<Record>,
) -> Result<()> {
    let path = request.uri().path().to_owned();
    let metadata = request
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let mut body = request.into_body();
    let mut bytes = Vec::new();
    while let Some(chunk) = body.data().await {
        let Ok(chunk) = chunk else {
            // Reset while the client was still sending: a cancelled stream.
            cancelled(record, path);
            return Ok(());
        };
        let _ = body.flow_control().release_capacity(chunk.len());
        bytes.extend_from_slice(&chunk);
    }
    let call = GrpcCall {
        path: path.clone(),
        metadata,
        messages: unframe(&bytes),
    };
    let reply = handler(&call);
    record
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .calls
        .push(call);
    tokio::time::sleep(reply.delay).await;
    let head = Response::builder()
        .status(200)
        .header("content-type", "application/grpc")
        .body(())?;
    let mut send = respond.send_response(head, false)?;
    for message in &reply.messages {
        let mut frame = vec![0u8];
        frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
        frame.extend_from_slice(message);
        send.send_data(Bytes::from(frame), false)?;
    }
    if reply.hold {
        // Ends when the client resets the stream (a cancel) or the connection goes.
        let _ = poll_fn(|cx| send.poll_reset(cx)).await;
        cancelled(record, path);
        return Ok(());
    }
    let mut trailers = HeaderMap::new();
    trailers.insert("grpc-status", HeaderValue::from(reply.status));
    if !reply.message.is_empty() {
        trailers.insert("grpc-message", HeaderValue::from_str(&reply.message)?);
    }
    for (name, value) in &reply.trailers {
        trailers.append(
            http::HeaderName::from_bytes(name.as_bytes())?,
            HeaderValue::from_str(value)?,
        );
    }
    send.send_trailers(trailers)?;
    Ok(())
}

fn cancelled(record: &Mutex<Record>, path: String) {
    record
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .cancelled
        .push(path);
}

/// The messages of a gRPC body (each behind a flag byte and a 4-byte big-endian length).
fn unframe(mut bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut messages = Vec::new();
    while bytes.len() >= 5 {
        let len = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
        let Some(message) = bytes.get(5..5 + len) else {
            break;
        };
        messages.push(message.to_vec());
        bytes = &bytes[5 + len..];
    }
    messages
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unframes_messages_and_drops_a_truncated_tail() {
        let body = [
            0, 0, 0, 0, 2, b'h', b'i', 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, b'x',
        ];
        assert_eq!(unframe(&body), vec![b"hi".to_vec(), Vec::new()]);
    }
}
