//! A real gRPC server on 127.0.0.1 for the gRPC scenarios' clusters: tonic's server-side
//! gRPC (framing, status, metadata, trailers-only errors) over hyper's HTTP/2, answering
//! every method of every service the way the scenario's [`GrpcBehaviour`] says, and
//! recording what it received.
//!
//! It serves connections with hyper directly rather than tonic's `transport::Server`, so
//! nothing enforces the `grpc-timeout` Envoy sends: a call outlives its timeout only by
//! Envoy's own timer, which is what the timeout scenario shows.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context as TaskContext, Poll};
use std::time::Duration;

use anyhow::Result;
use futures_util::stream::{self, BoxStream, StreamExt};
use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
use tonic::{Code, Status, Streaming};

use crate::grpc::GrpcBehaviour;
use crate::h2::H2Server;

/// The one message type of the scenarios' service: `message Text { string text = 1; }`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Text {
    /// The text.
    #[prost(string, tag = "1")]
    pub text: String,
}

/// One call as the server received it.
#[derive(Debug, Clone, Default)]
pub struct ReceivedCall {
    /// `/<service>/<method>`.
    pub path: String,
    /// Request headers (metadata), names lowercase.
    pub metadata: Vec<(String, String)>,
    /// The client's messages, as their `text`.
    pub messages: Vec<String>,
}

type Calls = Arc<Mutex<Vec<ReceivedCall>>>;

/// A running server; dropping it stops it.
#[derive(Debug)]
pub struct GrpcUpstream {
    server: H2Server,
    calls: Calls,
}

impl GrpcUpstream {
    /// Starts a server answering as `behaviour` says.
    pub fn start(behaviour: GrpcBehaviour) -> Result<Self> {
        let calls = Calls::default();
        let echo = Echo {
            behaviour: Arc::new(behaviour),
            calls: calls.clone(),
            path: String::new(),
        };
        let server = H2Server::start("gRPC upstream", move |request| {
            answer(echo.clone(), request)
        })?;
        Ok(GrpcUpstream { server, calls })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// The calls received so far, in order of arrival.
    pub fn calls(&self) -> Vec<ReceivedCall> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

/// Every path is the same bidirectional-streaming method: a unary call is a stream of one
/// message each way on the wire.
async fn answer(
    mut echo: Echo,
    request: http::Request<hyper::body::Incoming>,
) -> Result<http::Response<tonic::body::Body>, Infallible> {
    echo.path = request.uri().path().to_owned();
    let mut grpc = tonic::server::Grpc::new(tonic_prost::ProstCodec::<Text, Text>::default());
    Ok(grpc.streaming(echo, request).await)
}

#[derive(Clone)]
struct Echo {
    behaviour: Arc<GrpcBehaviour>,
    calls: Calls,
    path: String,
}

type Reply = tonic::Response<BoxStream<'static, Result<Text, Status>>>;

impl tower_service::Service<tonic::Request<Streaming<Text>>> for Echo {
    type Response = Reply;
    type Error = Status;
    type Future = Pin<Box<dyn std::future::Future<Output = Result<Reply, Status>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut TaskContext<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: tonic::Request<Streaming<Text>>) -> Self::Future {
        let (behaviour, calls, path) = (
            self.behaviour.clone(),
            self.calls.clone(),
            self.path.clone(),
        );
        Box::pin(async move {
            let metadata = request
                .metadata()
                .clone()
                .into_headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let index = {
                let mut calls = calls.lock().map_err(|_| Status::internal("lock"))?;
                calls.push(ReceivedCall {
                    path,
                    metadata,
                    messages: Vec::new(),
                });
                calls.len() - 1
            };
            // The server answers once the client has ended its side.
            let mut incoming = request.into_inner();
            while let Some(message) = incoming.message().await? {
                if let Ok(mut calls) = calls.lock() {
                    calls[index].messages.push(message.text);
                }
            }
            tokio::time::sleep(Duration::from_millis(behaviour.delay_ms)).await;
            let status = (behaviour.code != 0).then(|| {
                Status::with_metadata(
                    Code::from_i32(behaviour.code),
                    behaviour.message.clone(),
                    metadata_map(&behaviour.trailing_metadata),
                )
            });
            if behaviour.replies.is_empty() {
                if let Some(status) = status {
                    // tonic sends an error before any message as a trailers-only response.
                    return Err(status);
                }
            }
            let replies: Vec<Result<Text, Status>> = behaviour
                .replies
                .iter()
                .map(|text| Ok(Text { text: text.clone() }))
                .chain(status.map(Err))
                .collect();
            let mut response = tonic::Response::new(stream::iter(replies).boxed());
            *response.metadata_mut() = metadata_map(&behaviour.initial_metadata);
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
