//! Hooks that wait: [`Flow::wait`] holds a future the stream adapter drives from
//! `on_http_call_response` until it yields the hook's real [`Flow`].
//!
//! A future cannot borrow the filter (`&mut self`) across callbacks, because the filter is
//! handed back to proxy-wasm between them; so the future is `'static` and owns what it
//! needs: a [`Shared`](crate::Shared) config clone and header handles
//! ([`Headers::handle`](crate::Headers::handle)), which act on the stream being processed.

use crate::{Flow, Result};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// A hook's pending outcome: the future given to [`Flow::wait`].
pub struct Waiting(Pin<Box<dyn Future<Output = Result<Flow>>>>);

impl fmt::Debug for Waiting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Waiting(..)")
    }
}

impl Waiting {
    pub(crate) fn new(future: impl Future<Output = Result<Flow>> + 'static) -> Self {
        Waiting(Box::pin(future))
    }

    /// Polls once. The waker is a no-op on purpose: the only events that can make progress
    /// are host callbacks (a callout's response), and the adapter polls after each of them.
    pub(crate) fn poll(&mut self) -> Poll<Result<Flow>> {
        self.0
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
    }
}

impl Flow {
    /// A hook's outcome that is not known yet: the stream pauses until `future` completes,
    /// then its `Flow` applies (`Continue` resumes the stream, a reply is sent, an `Err`
    /// becomes [`on_error`](crate::HttpFilter::on_error)'s reply). The future typically awaits
    /// [`Call::send`](crate::Call::send); it must own what it uses (`async move`).
    ///
    /// While it waits, later callbacks of the same direction (request body chunks during a
    /// request-header wait) are held by Envoy and not shown to the filter. A future that ends
    /// with [`Flow::Pause`] is treated as an error: nothing would ever resume the stream.
    pub fn wait(future: impl Future<Output = Result<Flow>> + 'static) -> Flow {
        Flow::Wait(Waiting::new(future))
    }
}

/// A finished future's result as the adapter applies it: `Pause` would leave the stream
/// paused with nothing left to resume it, so it fails closed instead.
pub(crate) fn settled(result: Result<Flow>) -> Result<Flow> {
    match result {
        Ok(Flow::Pause) => Err(crate::Error::msg(
            "a Flow::wait future ended with Flow::Pause; return Continue or a reply",
        )),
        other => other,
    }
}
