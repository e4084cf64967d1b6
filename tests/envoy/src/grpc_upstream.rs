//! A real gRPC server on 127.0.0.1 whose every answer a test scripts: tonic's server-side
//! gRPC (framing, status, metadata, trailers, trailers-only errors) over hyper's HTTP/2
//! ([`H2Server`]). The handler sees each call whole (path, metadata, messages) and says
//! how to answer: the messages, the status, metadata, a delay, or holding the call open
//! until the client cancels it. Messages are bytes (a pass-through codec); the tests
//! encode what they need.
//!
//! It serves connections with hyper directly rather than tonic's `transport::Server`, so
//! nothing enforces the `grpc-timeout` Envoy sends: a call outlives its timeout only by
//! Envoy's own timer.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use anyhow::Result;
use bytes::{Buf, BufMut};
use futures_util::stream::{self, BoxStream, StreamExt};
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tonic::{Code, Status, Streaming};

use crate::h2_server::H2Server;

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
    metadata: Vec<(String, String)>,
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

    /// A status other than OK, with its `grpc-message`, and no message: a trailers-only
    /// response.
    pub fn status(code: u32, message: &str) -> Self {
        Self::default().then_status(code, message)
    }

    /// Ends with status `code` and its `grpc-message` after the messages.
    pub fn then_status(mut self, code: u32, message: &str) -> Self {
        self.status = code;
        self.message = message.to_owned();
        self
    }

    /// Waits this long before the response headers.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Adds an initial metadata entry (a response header).
    pub fn metadata(mut self, name: &str, value: &str) -> Self {
        self.metadata.push((name.to_owned(), value.to_owned()));
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

    /// The status the call ends with, when it is not a bare OK.
    fn end(&self) -> Option<Status> {
        let bare_ok = self.status == 0 && self.message.is_empty() && self.trailers.is_empty();
        (!bare_ok).then(|| {
            Status::with_metadata(
                Code::from_i32(i32::try_from(self.status).unwrap_or(i32::MAX)),
                self.message.clone(),
                metadata_map(&self.trailers),
            )
        })
    }
}

type Handler = dyn Fn(&GrpcCall) -> GrpcReply + Send + Sync;

#[derive(Default)]
struct Record {
    calls: Vec<GrpcCall>,
    cancelled: Vec<String>,
}

type Shared = Arc<Mutex<Record>>;

fn lock(record: &Shared) -> std::sync::MutexGuard<'_, Record> {
    record.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running gRPC server; stopped on drop.
pub struct GrpcUpstream {
    server: H2Server,
    record: Shared,
}

impl std::fmt::Debug for GrpcUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GrpcUpstream({})", self.server.addr())
    }
}

impl GrpcUpstream {
    /// Starts a server answering every call with `handler`'s reply.
    pub fn start(handler: impl Fn(&GrpcCall) -> GrpcReply + Send + Sync + 'static) -> Result<Self> {
        let record = Shared::default();
        let scripted = Scripted {
            handler: Arc::new(handler),
            record: record.clone(),
            call: GrpcCall::default(),
        };
        let server = H2Server::start("gRPC upstream", move |request| {
            answer(scripted.clone(), request)
        })?;
        Ok(GrpcUpstream { server, record })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The calls received so far, in order of arrival (one still sending has the messages
    /// so far).
    pub fn calls(&self) -> Vec<GrpcCall> {
        lock(&self.record).calls.clone()
    }

    /// The paths of calls the client cancelled so far: held or delayed ones, and streams
    /// reset while the client was still sending.
    pub fn cancelled(&self) -> Vec<String> {
        lock(&self.record).cancelled.clone()
    }
}

/// Every path is served as the same bidirectional-streaming method: a unary call is a
/// stream of one message each way on the wire.
async fn answer(
    mut scripted: Scripted,
    request: http::Request<hyper::body::Incoming>,
) -> Result<http::Response<tonic::body::Body>, Infallible> {
    scripted.call.path = request.uri().path().to_owned();
    scripted.call.metadata = request
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    Ok(tonic::server::Grpc::new(Raw)
        .streaming(scripted, request)
        .await)
}

/// Records the call's path as cancelled when dropped before [`Cancel::disarm`]: hyper
/// drops a call's future or body when the client resets its stream.
struct Cancel {
    record: Shared,
    path: Option<String>,
}

impl Cancel {
    fn disarm(mut self) {
        self.path = None;
    }
}

impl Drop for Cancel {
    fn drop(&mut self) {
        if let Some(path) = self.path.take() {
            lock(&self.record).cancelled.push(path);
        }
    }
}

#[derive(Clone)]
struct Scripted {
    handler: Arc<Handler>,
    record: Shared,
    call: GrpcCall,
}

type Answer = tonic::Response<BoxStream<'static, Result<Vec<u8>, Status>>>;

impl tower_service::Service<tonic::Request<Streaming<Vec<u8>>>> for Scripted {
    type Response = Answer;
    type Error = Status;
    type Future = Pin<Box<dyn std::future::Future<Output = Result<Answer, Status>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: tonic::Request<Streaming<Vec<u8>>>) -> Self::Future {
        let Scripted {
            handler,
            record,
            mut call,
        } = self.clone();
        Box::pin(async move {
            let cancel = Cancel {
                record: record.clone(),
                path: Some(call.path.clone()),
            };
            // Recorded on arrival, each message as it comes (a call the client cancels
            // while sending is seen too); answered once the client has ended its side. An
            // error here is the client resetting the stream, recorded by `cancel`.
            let index = {
                let mut record = lock(&record);
                record.calls.push(call.clone());
                record.calls.len() - 1
            };
            let mut incoming = request.into_inner();
            while let Some(message) = incoming.message().await? {
                lock(&record).calls[index].messages.push(message.clone());
                call.messages.push(message);
            }
            let reply = handler(&call);
            tokio::time::sleep(reply.delay).await;
            let messages = stream::iter(reply.messages.clone().into_iter().map(Ok));
            let body = match reply.end() {
                _ if reply.hold => {
                    // Never ends; dropped (and `cancel` with it) when the client resets.
                    let held = stream::poll_fn(move |_| {
                        let _armed = &cancel;
                        Poll::Pending
                    });
                    messages.chain(held).boxed()
                }
                // tonic sends an error before any message as a trailers-only response.
                Some(status) if reply.messages.is_empty() && status.code() != Code::Ok => {
                    cancel.disarm();
                    return Err(status);
                }
                end => {
                    cancel.disarm();
                    messages.chain(stream::iter(end.map(Err))).boxed()
                }
            };
            let mut response = tonic::Response::new(body);
            *response.metadata_mut() = metadata_map(&reply.metadata);
            Ok(response)
        })
    }
}

fn metadata_map(fields: &[(String, String)]) -> MetadataMap {
    let mut map = MetadataMap::new();
    for (name, value) in fields {
        if let (Ok(key), Ok(value)) = (
            MetadataKey::from_bytes(name.as_bytes()),
            MetadataValue::try_from(value.as_str()),
        ) {
            map.append(key, value);
        }
    }
    map
}

/// The pass-through codec: a message is its bytes.
#[derive(Debug, Clone, Copy, Default)]
struct Raw;

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;

    fn encoder(&mut self) -> Raw {
        Raw
    }

    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}
