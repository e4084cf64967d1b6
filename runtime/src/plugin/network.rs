//! L4 (NETWORK filter) connections: a one-shot exchange ([`TcpExchange`]) and a
//! step-by-step connection ([`Connection`]).

use crate::engine::vm::Vm;
use crate::flows;
use crate::outcome::Outcome;
use crate::plugin::handle::{Handle, StreamKind};
use crate::plugin::Plugin;
use crate::state::{StreamState, TcpState};

/// One connection: client bytes, then server bytes, then both sides close.
#[must_use = "call .run() to open the connection"]
#[derive(Debug)]
pub struct TcpExchange<'p> {
    plugin: &'p Plugin,
    downstream: Vec<Vec<u8>>,
    upstream: Vec<Vec<u8>>,
}

impl<'p> TcpExchange<'p> {
    pub(crate) fn new(plugin: &'p Plugin) -> Self {
        TcpExchange {
            plugin,
            downstream: Vec::new(),
            upstream: Vec::new(),
        }
    }

    /// A chunk the client sends (call again for more chunks).
    pub fn downstream(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.downstream.push(bytes.into());
        self
    }

    /// A chunk the server sends back, if the client's data reached it.
    pub fn upstream(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.upstream.push(bytes.into());
        self
    }

    /// Runs the connection to its end.
    pub fn run(self) -> Outcome {
        let mut connection = Connection::open(self.plugin, 0);
        let count = self.downstream.len();
        for (index, chunk) in self.downstream.iter().enumerate() {
            connection.send_downstream(chunk, index + 1 == count);
        }
        connection.deliver_callouts();
        if !connection.outcome().to_upstream().is_empty() || count == 0 {
            let count = self.upstream.len();
            for (index, chunk) in self.upstream.iter().enumerate() {
                connection.send_upstream(chunk, index + 1 == count);
            }
        }
        connection.deliver_callouts();
        connection.close_downstream();
        connection.close_upstream();
        connection.finish()
    }
}

/// A TCP connection driven step by step; dropping it ends the connection.
pub struct Connection<'p> {
    handle: Handle<'p, TcpKind>,
}

impl std::fmt::Debug for Connection<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("worker", &self.handle.worker)
            .finish_non_exhaustive()
    }
}

pub(crate) struct TcpKind;

impl StreamKind for TcpKind {
    fn create(vm: &mut Vm) -> u32 {
        flows::tcp::create(vm)
    }

    fn fill(state: &StreamState, outcome: &mut Outcome) {
        if let StreamState::Tcp(tcp) = state {
            fill(outcome, tcp);
        }
    }

    fn finish(vm: &mut Vm, context: u32) -> Option<StreamState> {
        flows::tcp::finish(vm, context).map(StreamState::Tcp)
    }
}

impl<'p> Connection<'p> {
    pub(crate) fn open(plugin: &'p Plugin, worker: usize) -> Self {
        Connection {
            handle: Handle::open(plugin, worker),
        }
    }

    fn step(&mut self, f: impl FnOnce(&mut Vm, u32)) -> &mut Self {
        self.handle.step(f);
        self
    }

    /// Bytes from the client.
    pub fn send_downstream(&mut self, bytes: &[u8], end_of_stream: bool) -> &mut Self {
        self.step(|vm, cx| flows::tcp::data(vm, cx, false, bytes, end_of_stream))
    }

    /// Bytes from the server.
    pub fn send_upstream(&mut self, bytes: &[u8], end_of_stream: bool) -> &mut Self {
        self.step(|vm, cx| flows::tcp::data(vm, cx, true, bytes, end_of_stream))
    }

    /// The client closes.
    pub fn close_downstream(&mut self) -> &mut Self {
        self.step(|vm, cx| flows::tcp::peer_closed(vm, cx, false))
    }

    /// The server closes.
    pub fn close_upstream(&mut self) -> &mut Self {
        self.step(|vm, cx| flows::tcp::peer_closed(vm, cx, true))
    }

    /// Delivers every pending callout response now.
    pub fn deliver_callouts(&mut self) -> &mut Self {
        self.handle.deliver_callouts();
        self
    }

    /// What the connection showed so far.
    pub fn outcome(&mut self) -> Outcome {
        self.handle.outcome()
    }

    /// Ends the connection and returns the full outcome.
    pub fn finish(mut self) -> Outcome {
        self.handle.end()
    }
}

fn fill(outcome: &mut Outcome, tcp: &TcpState) {
    outcome.actions = tcp.actions.clone();
    outcome.to_upstream = tcp.to_upstream.clone();
    outcome.to_downstream = tcp.to_downstream.clone();
    outcome.closed_by_plugin = tcp.closed_by_plugin;
    outcome.trap = tcp.trap.clone();
}
