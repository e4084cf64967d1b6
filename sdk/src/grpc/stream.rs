//! gRPC streams: [`GrpcOpen::open`] starts one, [`GrpcStream::send`] writes messages,
//! [`GrpcStream::message`] awaits the next one the server sends.
//!
//! ```no_run
//! use weir::prelude::*;
//! use weir::grpc::Grpc;
//!
//! async fn watch() -> Result<()> {
//!     let mut stream = Grpc::stream("events", "acme.Feed", "Watch").metadata("x-k", "v").open()?;
//!     stream.send_last(b"\x08\x01".to_vec())?; // the request; no more from this side
//!     while let Some(event) = stream.message().await? {
//!         info!("{} bytes", event.len());
//!     }
//!     info!("trailers: {:?}", stream.trailing_metadata());
//!     Ok(())
//! }
//! ```
//!
//! Envoy puts no deadline on a stream: a filter that awaits one should bound the wait by
//! what it expects (a message count), or by cancelling from a timer. Dropping the stream
//! cancels it.

use super::{
    abi, cancel, check, read_message, read_metadata, status_error, GrpcCode, Metadata, Target,
    DEFAULT_MAX_MESSAGE_BYTES,
};
use crate::error::Result;
use crate::pending::{Slot, Slots, Table};
use proxy_wasm::hostcalls;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use weir_abi::HostFunction;
use weir_abi::MapType;

/// A gRPC stream to open with [`GrpcOpen::open`].
#[derive(Debug)]
#[must_use = "a GrpcOpen does nothing until .open() is called"]
pub struct GrpcOpen {
    target: Target,
    max_message_bytes: usize,
}

impl GrpcOpen {
    pub(super) fn new(target: Target) -> GrpcOpen {
        GrpcOpen {
            target,
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
        }
    }

    /// Adds initial metadata; the name is lower-cased.
    pub fn metadata(mut self, name: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.target.add(name, value);
        self
    }

    /// The longest message accepted from the server (default [`DEFAULT_MAX_MESSAGE_BYTES`]);
    /// a longer one is an `Err` from [`GrpcStream::message`] and cancels the stream.
    pub fn max_message_bytes(mut self, max: usize) -> Self {
        self.max_message_bytes = max;
        self
    }

    /// Opens the stream. An `Err` if Envoy refuses (unknown cluster).
    pub fn open(self) -> Result<GrpcStream> {
        let token = hostcalls::open_grpc_stream(
            &self.target.cluster,
            &self.target.service,
            &self.target.method,
            self.target.pairs(),
        )
        .map_err(|status| {
            self.target
                .refused(HostFunction::GrpcStream, crate::proxy_types::status(status))
        })?;
        STREAMS.insert(StreamSlot {
            token,
            max_message: self.max_message_bytes,
            messages: VecDeque::new(),
            initial: None,
            trailing: None,
            closed: None,
        });
        Ok(GrpcStream {
            token,
            what: format!(
                "gRPC stream {}/{} on '{}'",
                self.target.service, self.target.method, self.target.cluster
            ),
        })
    }
}

/// What arrived on one stream and was not taken yet.
struct StreamSlot {
    token: u32,
    max_message: usize,
    messages: VecDeque<Result<Vec<u8>>>,
    initial: Option<Metadata>,
    trailing: Option<Metadata>,
    /// The server's status once the stream closed.
    closed: Option<(GrpcCode, String)>,
}

thread_local! {
    static OPEN_STREAMS: Slots<StreamSlot> = const { RefCell::new(Vec::new()) };
}

impl Slot for StreamSlot {
    fn token(&self) -> u32 {
        self.token
    }
}

/// Streams open in this VM.
const STREAMS: Table<StreamSlot> = Table(&OPEN_STREAMS);

/// An open gRPC stream. Dropping it cancels the stream unless the server closed it.
#[derive(Debug)]
pub struct GrpcStream {
    token: u32,
    what: String,
}

impl GrpcStream {
    /// Sends a message (encoded protobuf bytes).
    pub fn send(&self, message: impl AsRef<[u8]>) -> Result<()> {
        self.write(message.as_ref(), false)
    }

    /// Sends a last message and ends this side of the stream (the server's side stays open).
    pub fn send_last(&self, message: impl AsRef<[u8]>) -> Result<()> {
        self.write(message.as_ref(), true)
    }

    fn write(&self, message: &[u8], end: bool) -> Result<()> {
        // SAFETY: the host reads `message` during the call.
        let status = unsafe {
            abi::proxy_grpc_send(self.token, message.as_ptr(), message.len(), end as u32)
        };
        check(status, HostFunction::GrpcSend, &self.what)
    }

    /// Ends this side of the stream without a message; the server's messages still arrive.
    pub fn close(&self) -> Result<()> {
        // SAFETY: a plain call with an integer argument.
        let status = unsafe { abi::proxy_grpc_close(self.token) };
        check(status, HostFunction::GrpcClose, &self.what)
    }

    /// Stops the stream both ways now; nothing more arrives.
    pub fn cancel(self) -> Result<()> {
        let closed = STREAMS
            .with(self.token, |s| s.closed.is_some())
            .unwrap_or(true);
        if closed {
            return Ok(());
        }
        STREAMS.with(self.token, |s| {
            s.closed = Some((GrpcCode::CANCELLED, "cancelled by the plugin".into()))
        });
        // SAFETY: a plain call with an integer argument.
        let status = unsafe { abi::proxy_grpc_cancel(self.token) };
        check(status, HostFunction::GrpcCancel, &self.what)
    }

    /// The next message from the server: `Ok(Some)`, `Ok(None)` once the server closed the
    /// stream with `OK`, or an `Err` for any other status (see [`GrpcStream::status`]) or an
    /// oversized message.
    pub fn message(&mut self) -> MessageFuture<'_> {
        MessageFuture { stream: self }
    }

    /// The server's initial metadata, once it arrived.
    pub fn initial_metadata(&self) -> Option<Metadata> {
        STREAMS.with(self.token, |s| s.initial.clone()).flatten()
    }

    /// The server's trailing metadata, once it arrived.
    pub fn trailing_metadata(&self) -> Option<Metadata> {
        STREAMS.with(self.token, |s| s.trailing.clone()).flatten()
    }

    /// The status the stream closed with (code and `grpc-message`), once it did.
    pub fn status(&self) -> Option<(GrpcCode, String)> {
        STREAMS.with(self.token, |s| s.closed.clone()).flatten()
    }
}

impl Drop for GrpcStream {
    fn drop(&mut self) {
        let open = STREAMS
            .remove(self.token)
            .is_some_and(|slot| slot.closed.is_none());
        if open {
            cancel(self.token);
        }
    }
}

/// The next message of a [`GrpcStream`]; see [`GrpcStream::message`].
#[derive(Debug)]
#[must_use = "a MessageFuture must be awaited"]
pub struct MessageFuture<'a> {
    stream: &'a mut GrpcStream,
}

impl Future for MessageFuture<'_> {
    type Output = Result<Option<Vec<u8>>>;

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        let token = self.stream.token;
        let next = STREAMS.with(token, |s| match s.messages.pop_front() {
            Some(message) => Poll::Ready(message.map(Some)),
            None => match &s.closed {
                Some((GrpcCode::OK, _)) => Poll::Ready(Ok(None)),
                Some((code, message)) => Poll::Ready(Err(status_error(*code, message))),
                None => Poll::Pending,
            },
        });
        next.unwrap_or_else(|| Poll::Ready(Ok(None)))
    }
}

/// What the host reported on a stream; returns whether the stream is still held.
pub(crate) fn deliver_initial_metadata(token: u32) -> bool {
    let metadata = read_metadata(MapType::GrpcReceiveInitialMetadata);
    STREAMS
        .with(token, |s| s.initial = Some(metadata))
        .is_some()
}

/// A message arrived on stream `token`.
pub(crate) fn deliver_message(token: u32, size: usize) -> bool {
    let Some(max) = STREAMS.with(token, |s| s.max_message) else {
        return false;
    };
    let message = read_message(size, max);
    let oversized = message.is_err();
    STREAMS.with(token, |s| {
        s.messages.push_back(message);
        if oversized && s.closed.is_none() {
            s.closed = Some((
                GrpcCode::RESOURCE_EXHAUSTED,
                "message over the limit".into(),
            ));
        }
    });
    if oversized {
        cancel(token);
    }
    true
}

/// Trailing metadata arrived on stream `token`.
pub(crate) fn deliver_trailing_metadata(token: u32) -> bool {
    let metadata = read_metadata(MapType::GrpcReceiveTrailingMetadata);
    STREAMS
        .with(token, |s| s.trailing = Some(metadata))
        .is_some()
}

/// The server closed stream `token` with `status`.
pub(crate) fn deliver_close(token: u32, status: u32) -> bool {
    let message = if status == 0 {
        String::new()
    } else {
        super::status_message()
    };
    STREAMS
        .with(token, |s| {
            s.closed.get_or_insert((GrpcCode(status), message));
        })
        .is_some()
}
