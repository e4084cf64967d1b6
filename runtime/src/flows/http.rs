//! How an HTTP stream moves through the plugin, as Envoy moves it: headers, body chunks and
//! trailers per direction; a paused header callback holds back body and trailers until the
//! plugin continues the stream; a paused body callback keeps buffering; a local reply or a
//! reset ends the stream; continue/close requests apply after the callback that made them.

use weir_abi::{Callback, StreamType};

use crate::engine::vm::Vm;
use crate::message::{Fields, Response};
use crate::outcome::{Action, Phase};
use crate::state::{Direction, HttpState, PausedAt, Signal, StreamState};

/// Request or response.
#[derive(Copy, Clone, Debug, Eq, PartialEq)]
pub(crate) enum Dir {
    Request,
    Response,
}

impl Dir {
    fn callbacks(self) -> [Callback; 3] {
        match self {
            Dir::Request => [
                Callback::RequestHeaders,
                Callback::RequestBody,
                Callback::RequestTrailers,
            ],
            Dir::Response => [
                Callback::ResponseHeaders,
                Callback::ResponseBody,
                Callback::ResponseTrailers,
            ],
        }
    }

    fn phases(self) -> [Phase; 3] {
        match self {
            Dir::Request => [
                Phase::RequestHeaders,
                Phase::RequestBody,
                Phase::RequestTrailers,
            ],
            Dir::Response => [
                Phase::ResponseHeaders,
                Phase::ResponseBody,
                Phase::ResponseTrailers,
            ],
        }
    }
}

fn http(vm: &mut Vm, context: u32) -> Option<&mut HttpState> {
    match vm.state().proxy.streams.get_mut(&context)? {
        StreamState::Http(http) => Some(http),
        StreamState::Tcp(_) => None,
    }
}

fn direction(vm: &mut Vm, context: u32, dir: Dir) -> Option<&mut Direction> {
    let http = http(vm, context)?;
    if is_over(http) {
        return None;
    }
    Some(match dir {
        Dir::Request => &mut http.request,
        Dir::Response => &mut http.response,
    })
}

/// Whether nothing more reaches the plugin: local reply, reset, trap, or client gone.
pub(crate) fn is_over(http: &HttpState) -> bool {
    http.local_reply.is_some() || http.reset || http.trap.is_some() || http.client_gone
}

/// Creates an HTTP stream context.
pub(crate) fn create(vm: &mut Vm) -> u32 {
    let proxy = &mut vm.state().proxy;
    let context = proxy.next_context;
    proxy.next_context += 1;
    let root = proxy.root_context;
    let started_ns = proxy.now_ns();
    proxy.streams.insert(
        context,
        StreamState::Http(Box::new(HttpState {
            started_ns,
            ..HttpState::default()
        })),
    );
    if let Err(trap) = vm.call(context, Callback::ContextCreate, &[context, root]) {
        if let Some(http) = http(vm, context) {
            http.trap = Some(trap);
        }
    }
    context
}

/// Invokes a stream callback, recording its action; `None` if the stream ended meanwhile.
fn invoke(
    vm: &mut Vm,
    context: u32,
    callback: Callback,
    phase: Phase,
    args: &[u32],
) -> Option<Action> {
    let result = vm.call(context, callback, args);
    let http = http(vm, context)?;
    match result {
        Ok(raw) => {
            let action = Action::from_raw(raw.unwrap_or(0));
            http.actions.push((phase, action));
            (!is_over(http)).then_some(action)
        }
        Err(trap) => {
            http.trap = Some(trap);
            None
        }
    }
}

/// Delivers headers in one direction.
pub(crate) fn headers(vm: &mut Vm, context: u32, dir: Dir, fields: Fields, end: bool) {
    let Some(d) = direction(vm, context, dir) else {
        return;
    };
    let count = fields.len() as u32;
    d.headers = Some(fields);
    d.headers_forgotten = false;
    d.end_received = end;
    let action = invoke(
        vm,
        context,
        dir.callbacks()[0],
        dir.phases()[0],
        &[context, count, u32::from(end)],
    );
    if let Some(d) = direction(vm, context, dir) {
        match action {
            Some(Action::Continue) => {
                // Envoy drops its pointer to the map when the callback continues
                // (`Context::decodeHeaders` / `encodeHeaders`); a paused request's maps go
                // when the plugin resumes it (`host_functions::streams::signal`).
                d.headers_forgotten = true;
                pass_headers(d);
            }
            Some(Action::Pause(_)) => d.paused = Some(PausedAt::Headers),
            None => {}
        }
    }
    settle(vm, context);
}

/// Delivers a body chunk in one direction.
pub(crate) fn body(vm: &mut Vm, context: u32, dir: Dir, chunk: &[u8], end: bool) {
    let Some(d) = direction(vm, context, dir) else {
        return;
    };
    if d.paused == Some(PausedAt::Headers) {
        d.held_body.extend_from_slice(chunk);
        d.held_end |= end;
        return;
    }
    d.body.extend_from_slice(chunk);
    d.end_received |= end;
    d.body_seen = true;
    d.trailers_creatable = end && d.trailers.is_none();
    let size = d.body.len() as u32;
    let action = invoke(
        vm,
        context,
        dir.callbacks()[1],
        dir.phases()[1],
        &[context, size, u32::from(end)],
    );
    if let Some(d) = direction(vm, context, dir) {
        match action {
            Some(Action::Continue) => {
                d.paused = None;
                pass_body(d);
            }
            Some(Action::Pause(_)) => d.paused = Some(PausedAt::Body),
            None => {}
        }
    }
    settle(vm, context);
}

/// Delivers trailers in one direction (ending it).
pub(crate) fn trailers(vm: &mut Vm, context: u32, dir: Dir, fields: Fields) {
    let Some(d) = direction(vm, context, dir) else {
        return;
    };
    if d.paused == Some(PausedAt::Headers) {
        d.held_trailers = Some(fields);
        return;
    }
    let count = fields.len() as u32;
    d.trailers = Some(fields);
    d.end_received = true;
    let action = invoke(
        vm,
        context,
        dir.callbacks()[2],
        dir.phases()[2],
        &[context, count],
    );
    if let Some(d) = direction(vm, context, dir) {
        match action {
            Some(Action::Continue) => {
                d.paused = None;
                pass_body(d);
                pass_trailers(d);
                // Envoy forgets the trailers of a callback that continued (`decodeTrailers`,
                // `encodeTrailers`): later reads find no map, writes fail
                // (`exerciser_trailers_pass`). Trailers the plugin added stay reachable.
                d.trailers = None;
            }
            Some(Action::Pause(_)) => d.paused = Some(PausedAt::Trailers),
            None => {}
        }
    }
    settle(vm, context);
}

fn pass_headers(d: &mut Direction) {
    d.passed.headers = d.headers.clone();
    if d.end_received && !d.body_seen && d.trailers.is_none() {
        d.passed.end = true;
    }
}

fn pass_body(d: &mut Direction) {
    d.trailers_creatable = false;
    d.passed.body.append(&mut d.body);
    if d.end_received && d.held_trailers.is_none() {
        match d.trailers {
            // Trailers the plugin added in the last body callback: Envoy created them then
            // (`addDecodedTrailers` / `addEncodedTrailers`) and sends them after the body.
            Some(_) => pass_trailers(d),
            None => d.passed.end = true,
        }
    }
}

fn pass_trailers(d: &mut Direction) {
    d.passed.trailers = d.trailers.clone();
    d.passed.end = true;
}

/// Applies continue/close requests the plugin made, until none are left; first sends a new
/// local reply through the plugin's response callbacks.
pub(crate) fn settle(vm: &mut Vm, context: u32) {
    encode_local_reply(vm, context);
    loop {
        let Some(http) = http(vm, context) else {
            return;
        };
        if http.signals.is_empty() {
            return;
        }
        let signal = http.signals.remove(0);
        if is_over(http) {
            continue;
        }
        match signal {
            Signal::Close(_) => {
                http.reset = true;
                continue;
            }
            Signal::Continue(StreamType::HttpRequest) => resume(vm, context, Dir::Request),
            Signal::Continue(StreamType::HttpResponse) => resume(vm, context, Dir::Response),
            Signal::Continue(_) => continue,
        }
        // Envoy's `continueStream` forgets the request's trailer map too, whichever
        // direction continued (the headers went when the plugin asked).
        if let Some(request) = direction(vm, context, Dir::Request) {
            if request.paused.is_none() {
                request.trailers = None;
            }
        }
    }
}

/// Envoy sends a local reply made before the response started through the encoder filters,
/// this plugin's included: its response header and body callbacks see, and may change, the
/// reply. One made after the response started goes to the client as it is.
fn encode_local_reply(vm: &mut Vm, context: u32) {
    let Some(state) = http(vm, context) else {
        return;
    };
    if state.reset
        || state.trap.is_some()
        || state.response.headers.is_some()
        || state.replied.is_some()
    {
        return;
    }
    let Some(reply) = state.local_reply.take() else {
        return;
    };
    // Continue requests from before the reply no longer apply; the stream is answered.
    state.signals.clear();
    let response = reply.to_response();
    let reply_body = response.body_bytes().to_vec();
    headers(
        vm,
        context,
        Dir::Response,
        response.header_fields(),
        reply_body.is_empty(),
    );
    if !reply_body.is_empty() {
        body(vm, context, Dir::Response, &reply_body, true);
    }
    let Some(state) = http(vm, context) else {
        return;
    };
    let passed = &state.response.passed;
    state.replied = Some(match &passed.headers {
        Some(fields) => Response::from_parts(fields.clone(), passed.body.clone(), Vec::new()),
        None => response,
    });
    // A second reply sent from those callbacks does not replace the first.
    state.local_reply = Some(reply);
    state.signals.clear();
}

/// `proxy_continue_stream`: lets through what the pause held, then delivers what was held back.
fn resume(vm: &mut Vm, context: u32, dir: Dir) {
    let Some(d) = direction(vm, context, dir) else {
        return;
    };
    match d.paused.take() {
        Some(PausedAt::Headers) => {
            pass_headers(d);
            let held_body = std::mem::take(&mut d.held_body);
            let held_end = std::mem::take(&mut d.held_end);
            let held_trailers = d.held_trailers.take();
            if !held_body.is_empty() || held_end {
                body(vm, context, dir, &held_body, held_end);
            }
            if let Some(fields) = held_trailers {
                trailers(vm, context, dir, fields);
            }
        }
        Some(PausedAt::Body) => pass_body(d),
        Some(PausedAt::Trailers) => {
            pass_body(d);
            pass_trailers(d);
        }
        None => {}
    }
}

/// Ends the stream: `proxy_on_done`, `proxy_on_log`, `proxy_on_delete`. Returns the
/// stream's final state.
pub(crate) fn finish(vm: &mut Vm, context: u32) -> Option<Box<HttpState>> {
    let trap = vm.end_stream_context(context);
    vm.state()
        .proxy
        .pending_calls
        .retain(|call| call.context != context);
    match vm.state().proxy.streams.remove(&context)? {
        StreamState::Http(mut http) => {
            if http.trap.is_none() {
                http.trap = trap;
            }
            Some(http)
        }
        StreamState::Tcp(_) => None,
    }
}
