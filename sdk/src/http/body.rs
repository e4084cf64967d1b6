//! Body chunks of the current HTTP stream.

use crate::error::{HostResult, Result};
use proxy_wasm::hostcalls;
use std::marker::PhantomData;
use weir_abi::BufferType;

use crate::proxy_types::buffer_type;
use weir_abi::HostFunction;

/// Which body a [`Body`] handle reads and writes.
pub trait BodyKind: sealed::Sealed {
    #[doc(hidden)]
    const BUFFER: BufferType;
}

mod sealed {
    pub trait Sealed {}
}

/// Marker types naming the two bodies of an HTTP stream and the two directions of a TCP
/// connection.
pub mod kind {
    use super::*;
    /// The request body.
    #[derive(Debug)]
    pub enum Request {}
    /// The response body.
    #[derive(Debug)]
    pub enum Response {}
    /// Bytes from the client on a TCP connection.
    #[derive(Debug)]
    pub enum Downstream {}
    /// Bytes from the upstream on a TCP connection.
    #[derive(Debug)]
    pub enum Upstream {}
    impl sealed::Sealed for Request {}
    impl sealed::Sealed for Response {}
    impl sealed::Sealed for Downstream {}
    impl sealed::Sealed for Upstream {}
    impl BodyKind for Downstream {
        const BUFFER: BufferType = BufferType::DownstreamData;
    }
    impl BodyKind for Upstream {
        const BUFFER: BufferType = BufferType::UpstreamData;
    }
    impl BodyKind for Request {
        const BUFFER: BufferType = BufferType::HttpRequestBody;
    }
    impl BodyKind for Response {
        const BUFFER: BufferType = BufferType::HttpResponseBody;
    }
}

/// The body (or TCP data) Envoy holds for this stream right now: the latest chunk, or, after
/// hooks returned [`Flow::Pause`](crate::Flow::Pause), every chunk buffered so far.
#[derive(Debug)]
pub struct Body<K: BodyKind> {
    len: usize,
    end_of_stream: bool,
    _kind: PhantomData<(K, *const ())>,
}

/// The request body, given to [`HttpFilter::on_request_body`](crate::HttpFilter::on_request_body).
pub type RequestBody = Body<kind::Request>;
/// The response body, given to [`HttpFilter::on_response_body`](crate::HttpFilter::on_response_body).
pub type ResponseBody = Body<kind::Response>;
/// Client bytes of a TCP connection, given to
/// [`NetworkFilter::on_downstream_data`](crate::NetworkFilter::on_downstream_data).
pub type DownstreamData = Body<kind::Downstream>;
/// Upstream bytes of a TCP connection, given to
/// [`NetworkFilter::on_upstream_data`](crate::NetworkFilter::on_upstream_data).
pub type UpstreamData = Body<kind::Upstream>;

impl<K: BodyKind> Body<K> {
    pub(crate) fn new(len: usize, end_of_stream: bool) -> Self {
        Body {
            len,
            end_of_stream,
            _kind: PhantomData,
        }
    }

    /// Bytes available: the chunk, or everything buffered so far.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there are no bytes available.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True for the last chunk (for TCP: the peer half-closed). An HTTP message with
    /// trailers ends in the trailer hook instead, and this stays false.
    pub fn end_of_stream(&self) -> bool {
        self.end_of_stream
    }

    /// Reads the available bytes. How many that can be is Envoy's to bound: a body buffered
    /// past the connection's buffer limit is answered by Envoy (413 for a request, 500 for
    /// a response) and never reaches the plugin. Check [`len`](Self::len) first for a
    /// smaller limit.
    pub fn bytes(&self) -> Result<Vec<u8>> {
        Ok(hostcalls::get_buffer(buffer_type(K::BUFFER), 0, self.len)
            .host(HostFunction::GetBufferBytes)?
            .unwrap_or_default())
    }

    /// Replaces the available bytes with `data`.
    pub fn replace(&mut self, data: &[u8]) -> Result<()> {
        hostcalls::set_buffer(buffer_type(K::BUFFER), 0, self.len, data)
            .host(HostFunction::SetBufferBytes)?;
        self.len = data.len();
        Ok(())
    }

    /// Appends `data` after the available bytes.
    pub fn append(&mut self, data: &[u8]) -> Result<()> {
        hostcalls::set_buffer(buffer_type(K::BUFFER), self.len, 0, data)
            .host(HostFunction::SetBufferBytes)?;
        self.len += data.len();
        Ok(())
    }

    /// Inserts `data` before the available bytes.
    pub fn prepend(&mut self, data: &[u8]) -> Result<()> {
        hostcalls::set_buffer(buffer_type(K::BUFFER), 0, 0, data)
            .host(HostFunction::SetBufferBytes)?;
        self.len += data.len();
        Ok(())
    }
}
