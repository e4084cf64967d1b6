//! Adapts an [`HttpFilter`] to proxy-wasm's context callbacks.

use super::{Body, Headers, HttpFilter, Phase};
use crate::{Flow, LocalReply, Result};
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

/// One HTTP stream: the user's filter plus what the SDK must remember between callbacks.
pub(crate) struct HttpStream<F> {
    filter: F,
    /// Set once a local reply went out; Envoy stops decoding, but a late request callback
    /// must not reach the filter as if the request were still going upstream.
    replied: bool,
    /// A hook's [`Flow::wait`] future, with the phase it answers for.
    #[cfg(feature = "callout")]
    waiting: Option<(Phase, crate::task::Waiting)>,
}

impl<F: HttpFilter> HttpStream<F> {
    pub(crate) fn new(filter: F) -> Self {
        HttpStream {
            filter,
            replied: false,
            #[cfg(feature = "callout")]
            waiting: None,
        }
    }

    /// Maps a hook's result to the ABI's answer, sending local replies (for `Err` too).
    fn finish(&mut self, phase: Phase, result: Result<Flow>) -> Action {
        match result {
            Ok(Flow::Continue) => Action::Continue,
            Ok(Flow::Pause) => Action::Pause,
            Ok(Flow::Reply(reply)) => self.reply(reply),
            #[cfg(feature = "callout")]
            Ok(Flow::Wait(mut waiting)) => match waiting.poll() {
                std::task::Poll::Ready(result) => self.finish(phase, crate::task::settled(result)),
                std::task::Poll::Pending => {
                    self.waiting = Some((phase, waiting));
                    Action::Pause
                }
            },
            Err(err) => {
                log::error!("{phase}: {err}");
                let reply = self.filter.on_error(phase, &err);
                self.reply(reply)
            }
        }
    }

    fn reply(&mut self, reply: LocalReply) -> Action {
        self.replied = true;
        crate::reply::send(reply);
        // After a local reply the stream must not continue towards the upstream.
        Action::Pause
    }

    fn request_phase(&mut self, phase: Phase, run: impl FnOnce(&mut F) -> Result<Flow>) -> Action {
        if self.replied || self.is_waiting(false) {
            return Action::Pause;
        }
        let result = run(&mut self.filter);
        self.outcome(phase, result)
    }

    fn response_phase(&mut self, phase: Phase, run: impl FnOnce(&mut F) -> Result<Flow>) -> Action {
        if self.is_waiting(true) {
            return Action::Pause;
        }
        let result = run(&mut self.filter);
        self.outcome(phase, result)
    }

    /// [`Self::finish`] with the common answer decided here, so a hook that continues pays
    /// for no call and no move of its result (a `Flow` can hold a whole local reply).
    #[inline(always)]
    fn outcome(&mut self, phase: Phase, result: Result<Flow>) -> Action {
        match result {
            Ok(Flow::Continue) => Action::Continue,
            other => self.finish(phase, other),
        }
    }
}

impl<F: HttpFilter> HttpStream<F> {
    /// Whether a hook of that direction waits for a future; later callbacks of the same
    /// direction are held so the filter never sees a body before its headers' decision.
    fn is_waiting(&self, response: bool) -> bool {
        #[cfg(feature = "callout")]
        return self
            .waiting
            .as_ref()
            .is_some_and(|(phase, _)| is_response(*phase) == response);
        #[cfg(not(feature = "callout"))]
        {
            let _ = response;
            false
        }
    }
}

#[cfg(not(feature = "callout"))]
impl<F: HttpFilter> Context for HttpStream<F> {}

#[cfg(feature = "callout")]
impl<F: HttpFilter> Context for HttpStream<F> {
    fn on_http_call_response(
        &mut self,
        token: u32,
        num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        if crate::callout::deliver(token, num_headers, body_size) {
            self.wake();
        }
    }

    #[cfg(feature = "grpc")]
    fn on_grpc_call_response(&mut self, token: u32, status_code: u32, response_size: usize) {
        if crate::grpc::deliver_call(token, status_code, response_size) {
            self.wake();
        }
    }

    #[cfg(feature = "grpc")]
    fn on_grpc_stream_initial_metadata(&mut self, token: u32, _num_elements: u32) {
        if crate::grpc::stream::deliver_initial_metadata(token) {
            self.wake();
        }
    }

    #[cfg(feature = "grpc")]
    fn on_grpc_stream_message(&mut self, token: u32, message_size: usize) {
        if crate::grpc::stream::deliver_message(token, message_size) {
            self.wake();
        }
    }

    #[cfg(feature = "grpc")]
    fn on_grpc_stream_trailing_metadata(&mut self, token: u32, _num_elements: u32) {
        if crate::grpc::stream::deliver_trailing_metadata(token) {
            self.wake();
        }
    }

    #[cfg(feature = "grpc")]
    fn on_grpc_stream_close(&mut self, token: u32, status_code: u32) {
        if crate::grpc::stream::deliver_close(token, status_code) {
            self.wake();
        }
    }
}

#[cfg(feature = "callout")]
impl<F: HttpFilter> HttpStream<F> {
    /// Polls the waiting future after a host callback delivered something it may need, and
    /// resumes the stream if the hook's outcome is now `Continue`.
    fn wake(&mut self) {
        if self.replied {
            return;
        }
        let Some((phase, mut waiting)) = self.waiting.take() else {
            return;
        };
        let result = match waiting.poll() {
            std::task::Poll::Ready(result) => crate::task::settled(result),
            std::task::Poll::Pending => {
                self.waiting = Some((phase, waiting));
                return;
            }
        };
        if let Action::Continue = self.finish(phase, result) {
            let resumed = if is_response(phase) {
                proxy_wasm::hostcalls::resume_http_response()
            } else {
                proxy_wasm::hostcalls::resume_http_request()
            };
            if let Err(status) = resumed {
                log::error!(
                    "{phase}: cannot resume the stream after a callout: host status {}",
                    status as u32
                );
            }
        }
    }
}

impl<F: HttpFilter> HttpContext for HttpStream<F> {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.request_phase(Phase::RequestHeaders, |f| {
            f.on_request_headers(&mut Headers::new(end_of_stream))
        })
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.request_phase(Phase::RequestBody, |f| {
            f.on_request_body(&mut Body::new(body_size, end_of_stream))
        })
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        self.request_phase(Phase::RequestTrailers, |f| {
            f.on_request_trailers(&mut Headers::new(true))
        })
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.response_phase(Phase::ResponseHeaders, |f| {
            f.on_response_headers(&mut Headers::new(end_of_stream))
        })
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.response_phase(Phase::ResponseBody, |f| {
            f.on_response_body(&mut Body::new(body_size, end_of_stream))
        })
    }

    fn on_http_response_trailers(&mut self, _num_trailers: usize) -> Action {
        self.response_phase(Phase::ResponseTrailers, |f| {
            f.on_response_trailers(&mut Headers::new(true))
        })
    }

    fn on_log(&mut self) {
        self.filter.on_stream_end();
    }
}

#[cfg(feature = "callout")]
fn is_response(phase: Phase) -> bool {
    matches!(
        phase,
        Phase::ResponseHeaders | Phase::ResponseBody | Phase::ResponseTrailers
    )
}
