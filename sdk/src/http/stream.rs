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
}

impl<F: HttpFilter> HttpStream<F> {
    pub(crate) fn new(filter: F) -> Self {
        HttpStream { filter, replied: false }
    }

    /// Maps a hook's result to the ABI's answer, sending local replies (for `Err` too).
    fn finish(&mut self, phase: Phase, result: Result<Flow>) -> Action {
        match result {
            Ok(Flow::Continue) => Action::Continue,
            Ok(Flow::Pause) => Action::Pause,
            Ok(Flow::Reply(reply)) => self.reply(reply),
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
        if self.replied {
            return Action::Pause;
        }
        let result = run(&mut self.filter);
        self.finish(phase, result)
    }

    fn response_phase(&mut self, phase: Phase, run: impl FnOnce(&mut F) -> Result<Flow>) -> Action {
        let result = run(&mut self.filter);
        self.finish(phase, result)
    }
}

impl<F: HttpFilter> Context for HttpStream<F> {}

impl<F: HttpFilter> HttpContext for HttpStream<F> {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.request_phase(Phase::RequestHeaders, |f| f.on_request_headers(&mut Headers::new(end_of_stream)))
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.request_phase(Phase::RequestBody, |f| f.on_request_body(&mut Body::new(body_size, end_of_stream)))
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        self.request_phase(Phase::RequestTrailers, |f| f.on_request_trailers(&mut Headers::new(true)))
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.response_phase(Phase::ResponseHeaders, |f| f.on_response_headers(&mut Headers::new(end_of_stream)))
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        self.response_phase(Phase::ResponseBody, |f| f.on_response_body(&mut Body::new(body_size, end_of_stream)))
    }

    fn on_http_response_trailers(&mut self, _num_trailers: usize) -> Action {
        self.response_phase(Phase::ResponseTrailers, |f| f.on_response_trailers(&mut Headers::new(true)))
    }

    fn on_log(&mut self) {
        self.filter.on_stream_end();
    }
}
