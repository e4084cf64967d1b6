//! How an L4 connection moves through the plugin: new connection, data in both directions
//! (buffered while the plugin pauses, as Envoy's network filters buffer), close events.

use weir_abi::{Callback, PeerType, StreamType};

use crate::engine::vm::Vm;
use crate::outcome::{Action, Phase};
use crate::state::{Signal, StreamState, TcpState};

fn tcp(vm: &mut Vm, context: u32) -> Option<&mut TcpState> {
    match vm.state().proxy.streams.get_mut(&context)? {
        StreamState::Tcp(tcp) => Some(tcp),
        StreamState::Http(_) => None,
    }
}

fn open(vm: &mut Vm, context: u32) -> Option<&mut TcpState> {
    tcp(vm, context).filter(|t| !t.closed && t.trap.is_none())
}

fn invoke(
    vm: &mut Vm,
    context: u32,
    callback: Callback,
    phase: Option<Phase>,
    args: &[u32],
) -> Option<Action> {
    let result = vm.call(context, callback, args);
    let tcp = tcp(vm, context)?;
    match result {
        Ok(raw) => {
            let action = Action::from_raw(raw.unwrap_or(0));
            if let Some(phase) = phase {
                tcp.actions.push((phase, action));
            }
            Some(action)
        }
        Err(trap) => {
            tcp.trap = Some(trap);
            None
        }
    }
}

/// Creates the connection's context and calls `proxy_on_new_connection`.
pub(crate) fn create(vm: &mut Vm) -> u32 {
    let proxy = &mut vm.state().proxy;
    let context = proxy.next_context;
    proxy.next_context += 1;
    let root = proxy.root_context;
    proxy
        .streams
        .insert(context, StreamState::Tcp(Box::default()));
    if invoke(vm, context, Callback::ContextCreate, None, &[context, root]).is_some() {
        invoke(
            vm,
            context,
            Callback::NewConnection,
            Some(Phase::NewConnection),
            &[context],
        );
    }
    settle(vm, context);
    context
}

/// Data from the client (`upstream == false`) or the server (`upstream == true`).
pub(crate) fn data(vm: &mut Vm, context: u32, from_upstream: bool, chunk: &[u8], end: bool) {
    let Some(tcp) = open(vm, context) else { return };
    let (buffer, callback, phase) = if from_upstream {
        tcp.upstream_end |= end;
        (
            &mut tcp.upstream,
            Callback::UpstreamData,
            Phase::UpstreamData,
        )
    } else {
        tcp.downstream_end |= end;
        (
            &mut tcp.downstream,
            Callback::DownstreamData,
            Phase::DownstreamData,
        )
    };
    buffer.extend_from_slice(chunk);
    let size = buffer.len() as u32;
    let action = invoke(
        vm,
        context,
        callback,
        Some(phase),
        &[context, size, u32::from(end)],
    );
    if let Some(tcp) = open(vm, context) {
        match action {
            Some(Action::Continue) => pass(tcp, from_upstream),
            Some(Action::Pause(_)) if from_upstream => tcp.upstream_paused = true,
            Some(Action::Pause(_)) => tcp.downstream_paused = true,
            None => {}
        }
    }
    settle(vm, context);
}

fn pass(tcp: &mut TcpState, from_upstream: bool) {
    if from_upstream {
        tcp.upstream_paused = false;
        tcp.to_downstream.append(&mut tcp.upstream);
    } else {
        tcp.downstream_paused = false;
        tcp.to_upstream.append(&mut tcp.downstream);
    }
}

/// A peer closed its side: `proxy_on_{downstream,upstream}_connection_close`.
pub(crate) fn peer_closed(vm: &mut Vm, context: u32, upstream: bool) {
    if tcp(vm, context).is_none() {
        return;
    }
    let callback = if upstream {
        Callback::UpstreamConnectionClose
    } else {
        Callback::DownstreamConnectionClose
    };
    invoke(
        vm,
        context,
        callback,
        None,
        &[context, PeerType::Remote as u32],
    );
    settle(vm, context);
}

/// Applies continue/close requests.
pub(crate) fn settle(vm: &mut Vm, context: u32) {
    loop {
        let Some(tcp) = tcp(vm, context) else { return };
        if tcp.signals.is_empty() {
            return;
        }
        match tcp.signals.remove(0) {
            Signal::Close(_) => {
                tcp.closed = true;
                tcp.closed_by_plugin = true;
            }
            Signal::Continue(StreamType::Upstream) => pass(tcp, true),
            Signal::Continue(_) => pass(tcp, false),
        }
    }
}

/// Ends the connection: `proxy_on_done`, `proxy_on_log`, `proxy_on_delete`.
pub(crate) fn finish(vm: &mut Vm, context: u32) -> Option<Box<TcpState>> {
    let trap = vm.end_stream_context(context);
    vm.state()
        .proxy
        .pending_calls
        .retain(|call| call.context != context);
    match vm.state().proxy.streams.remove(&context)? {
        StreamState::Tcp(mut tcp) => {
            if tcp.trap.is_none() {
                tcp.trap = trap;
            }
            Some(tcp)
        }
        StreamState::Http(_) => None,
    }
}
