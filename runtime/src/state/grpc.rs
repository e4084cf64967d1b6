//! gRPC calls and streams in flight on one VM: the cluster's script turned into events on
//! the virtual clock (`crate::flows::grpc` delivers them to the root context).
//!
//! Envoy (proxy-wasm-cpp-host) opens every gRPC call on the root context, whichever context
//! made it, and calls `proxy_on_grpc_*` with the root context's id; the SDKs route the
//! answer to the stream that asked. A stream context ending does not cancel its calls.
//! Unary calls see only `proxy_on_grpc_receive` (success) or `proxy_on_grpc_close`
//! (failure); streams see initial metadata, messages, trailing metadata, then the close.

use std::collections::{HashMap, VecDeque};

use super::ProxyState;
use crate::grpc::{
    code, delivered_message, GrpcCall, GrpcStatus, GrpcStreamScript, ScriptStep, TIMEOUT_DETAILS,
    TIMEOUT_MESSAGE,
};
use crate::message::{Fields, Headers};

/// Envoy numbers callouts by kind in the low two bits: HTTP 0, gRPC call 1, stream 2.
const KIND_MASK: u32 = 0x3;
const KIND_CALL: u32 = 1;
const KIND_STREAM: u32 = 2;

/// Whether a token is one of a unary call (`Some(false)`), a stream (`Some(true)`) or
/// neither.
pub(crate) fn token_kind(token: u32) -> Option<bool> {
    match token & KIND_MASK {
        KIND_CALL => Some(false),
        KIND_STREAM => Some(true),
        _ => None,
    }
}

/// Per-VM gRPC state (Envoy keeps it on the root context).
pub(crate) struct GrpcState {
    next_call: u32,
    next_stream: u32,
    next_seq: u64,
    pub(crate) calls: HashMap<u32, CallState>,
    pub(crate) events: Vec<Event>,
    /// What the callback being delivered may read.
    pub(crate) receive_buffer: Option<Vec<u8>>,
    pub(crate) initial_metadata: Option<Fields>,
    pub(crate) trailing_metadata: Option<Fields>,
    pub(crate) status: Option<GrpcStatus>,
}

impl Default for GrpcState {
    fn default() -> Self {
        GrpcState {
            next_call: KIND_CALL,
            next_stream: KIND_STREAM,
            next_seq: 0,
            calls: HashMap::new(),
            events: Vec::new(),
            receive_buffer: None,
            initial_metadata: None,
            trailing_metadata: None,
            status: None,
        }
    }
}

/// One open call or stream.
pub(crate) struct CallState {
    pub(crate) streaming: bool,
    steps: VecDeque<ScriptStep>,
    initial_metadata: Headers,
    trailing_metadata: Headers,
    initial_sent: bool,
    /// Script time reached when it stopped at `await_client_end`.
    paused_at_ns: u64,
    awaiting_client_end: bool,
    pub(crate) client_ended: bool,
    pub(crate) remote_closed: bool,
    pub(crate) local_closed: bool,
}

/// Something the server does, due at a virtual time.
pub(crate) struct Event {
    pub(crate) due_ns: u64,
    seq: u64,
    pub(crate) token: u32,
    pub(crate) kind: EventKind,
}

pub(crate) enum EventKind {
    InitialMetadata(Fields),
    Message(Vec<u8>),
    TrailingMetadata(Fields),
    /// The status as the plugin reads it (message with Envoy's details).
    Close(GrpcStatus),
}

impl GrpcState {
    /// Allocates the next token of a call or a stream, as Envoy does (4 apart per kind).
    pub(crate) fn next_token(&mut self, streaming: bool) -> u32 {
        let slot = if streaming {
            &mut self.next_stream
        } else {
            &mut self.next_call
        };
        *slot = slot.wrapping_add(KIND_MASK + 1);
        *slot
    }

    /// Opens a call: the script runs from `now_ns`. A unary call with a timeout ends at
    /// the timeout if the script has not answered by then.
    pub(crate) fn open(
        &mut self,
        token: u32,
        streaming: bool,
        script: GrpcStreamScript,
        now_ns: u64,
        timeout_ns: Option<u64>,
    ) {
        let state = CallState {
            streaming,
            steps: script.steps.into(),
            initial_metadata: script.initial_metadata,
            trailing_metadata: script.trailing_metadata,
            initial_sent: false,
            paused_at_ns: now_ns,
            awaiting_client_end: false,
            client_ended: !streaming,
            remote_closed: false,
            local_closed: false,
        };
        self.calls.insert(token, state);
        if streaming {
            self.run_script(token, now_ns);
        } else {
            self.answer_unary(token, now_ns, timeout_ns);
        }
    }

    fn push(&mut self, due_ns: u64, token: u32, kind: EventKind) {
        self.next_seq += 1;
        self.events.push(Event {
            due_ns,
            seq: self.next_seq,
            token,
            kind,
        });
    }

    /// A unary call sees one event: the last message (status OK), or the close.
    fn answer_unary(&mut self, token: u32, now_ns: u64, timeout_ns: Option<u64>) {
        let Some(state) = self.calls.get_mut(&token) else {
            return;
        };
        let mut at = now_ns;
        let mut last = None;
        let mut closed = None;
        for step in state.steps.drain(..) {
            match step {
                ScriptStep::Message(message) => last = Some(message),
                ScriptStep::Wait(delay) => at = at.saturating_add(nanos(delay)),
                ScriptStep::AwaitClientEnd => {}
                ScriptStep::Close(status, details) => {
                    closed = Some((status, details));
                    break;
                }
            }
        }
        let deadline = timeout_ns.map(|t| now_ns.saturating_add(t));
        let timed_out = match (&closed, deadline) {
            (_, None) => false,
            // A server that never answers runs into the timeout.
            (None, Some(_)) => true,
            (Some(_), Some(deadline)) => at > deadline,
        };
        if let (true, Some(deadline)) = (timed_out, deadline) {
            let message = delivered_message(TIMEOUT_MESSAGE, TIMEOUT_DETAILS);
            let status = GrpcStatus::new(code::UNAVAILABLE, &message);
            self.push(deadline, token, EventKind::Close(status));
            return;
        }
        // Without a close and without a timeout the call stays open.
        let Some((status, details)) = closed else {
            return;
        };
        let event = match last {
            Some(message) if status.is_ok() => EventKind::Message(message),
            // Envoy fails a unary call that ends OK without a message, with no text.
            None if status.is_ok() => EventKind::Close(GrpcStatus::new(code::INTERNAL, "")),
            _ => EventKind::Close(GrpcStatus::new(
                status.code,
                &delivered_message(&status.message, details),
            )),
        };
        self.push(at, token, event);
    }

    /// Schedules a stream's steps from `from_ns` until it waits for the client or closes.
    fn run_script(&mut self, token: u32, from_ns: u64) {
        let Some(state) = self.calls.get_mut(&token) else {
            return;
        };
        let mut at = from_ns.max(state.paused_at_ns);
        state.awaiting_client_end = false;
        let mut out = Vec::new();
        while let Some(step) = state.steps.pop_front() {
            match step {
                ScriptStep::Message(message) => {
                    if !state.initial_sent {
                        state.initial_sent = true;
                        let mut fields = response_headers();
                        fields.extend(state.initial_metadata.to_fields());
                        out.push((at, EventKind::InitialMetadata(fields)));
                    }
                    out.push((at, EventKind::Message(message)));
                }
                ScriptStep::Wait(delay) => at = at.saturating_add(nanos(delay)),
                ScriptStep::AwaitClientEnd if !state.client_ended => {
                    state.awaiting_client_end = true;
                    state.paused_at_ns = at;
                    break;
                }
                ScriptStep::AwaitClientEnd => {}
                ScriptStep::Close(status, details) => {
                    let mut trailers = Vec::new();
                    if !state.initial_sent {
                        // A trailers-only response: Envoy reports empty initial metadata
                        // and the response headers as the trailing metadata.
                        state.initial_sent = true;
                        out.push((at, EventKind::InitialMetadata(Vec::new())));
                        trailers = response_headers();
                        trailers.extend(state.initial_metadata.to_fields());
                    }
                    trailers.extend(status_fields(&status));
                    trailers.extend(state.trailing_metadata.to_fields());
                    out.push((at, EventKind::TrailingMetadata(trailers)));
                    let message = delivered_message(&status.message, details);
                    out.push((at, EventKind::Close(GrpcStatus::new(status.code, &message))));
                    state.steps.clear();
                    break;
                }
            }
        }
        for (due, kind) in out {
            self.push(due, token, kind);
        }
    }

    /// The plugin ended its side of a stream: a script waiting for it goes on.
    pub(crate) fn client_end(&mut self, token: u32, now_ns: u64) {
        let Some(state) = self.calls.get_mut(&token) else {
            return;
        };
        state.client_ended = true;
        if state.awaiting_client_end {
            self.run_script(token, now_ns);
        }
    }

    /// Forgets a call and everything it had still to deliver.
    pub(crate) fn drop_call(&mut self, token: u32) {
        self.calls.remove(&token);
        self.events.retain(|e| e.token != token);
    }

    /// When the next event is due.
    pub(crate) fn next_due(&self) -> Option<u64> {
        self.events.iter().map(|e| e.due_ns).min()
    }

    /// Takes the next event due at or before `limit` (all of them with `None`).
    pub(crate) fn take_next(&mut self, limit: Option<u64>) -> Option<Event> {
        let index = self
            .events
            .iter()
            .enumerate()
            .filter(|(_, e)| limit.is_none_or(|l| e.due_ns <= l))
            .min_by_key(|(_, e)| (e.due_ns, e.seq))
            .map(|(i, _)| i)?;
        Some(self.events.remove(index))
    }
}

fn nanos(delay: std::time::Duration) -> u64 {
    u64::try_from(delay.as_nanos()).unwrap_or(u64::MAX)
}

/// The response headers a gRPC server sends before its first message.
fn response_headers() -> Fields {
    vec![
        (b":status".to_vec(), b"200".to_vec()),
        (b"content-type".to_vec(), b"application/grpc".to_vec()),
    ]
}

fn status_fields(status: &GrpcStatus) -> Fields {
    let mut fields = vec![(
        b"grpc-status".to_vec(),
        status.code.to_string().into_bytes(),
    )];
    if !status.message.is_empty() {
        fields.push((
            b"grpc-message".to_vec(),
            status.message.clone().into_bytes(),
        ));
    }
    fields
}

/// Records something about a call in the journal entry of the context that opened it.
pub(crate) fn record(proxy: &mut ProxyState, token: u32, f: impl FnOnce(&mut GrpcCall)) {
    if let Some((_, call)) = proxy
        .journal
        .grpc_calls
        .iter_mut()
        .rev()
        .find(|(_, c)| c.token == token)
    {
        f(call);
    }
}
