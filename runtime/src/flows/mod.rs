//! A VM's callbacks, called in the order Envoy calls them: HTTP streams (`http`), L4
//! connections (`tcp`), and here the events that do not come from a stream (callout
//! responses, gRPC events, timer ticks and queue notifications), delivered in virtual-time
//! order.

use weir_abi::Callback;

use crate::engine::vm::Vm;
use crate::state::StreamState;

mod grpc;
pub(crate) mod http;
pub(crate) mod tcp;

/// When the next callout response (HTTP or gRPC) of this VM is due.
pub(crate) fn next_call_due(vm: &mut Vm) -> Option<u64> {
    let http = vm
        .state()
        .proxy
        .pending_calls
        .iter()
        .map(|c| c.due_ns)
        .min();
    let grpc = grpc::next_due(vm);
    http.into_iter().chain(grpc).min()
}

/// Delivers callout responses: those due now, or all of them in due order (moving the
/// virtual clock forward) when `all` is set. Returns how many were delivered.
pub(crate) fn deliver_calls(vm: &mut Vm, all: bool) -> usize {
    let mut delivered = 0;
    loop {
        let proxy = &mut vm.state().proxy;
        let now = proxy.now_ns();
        let next = proxy
            .pending_calls
            .iter()
            .enumerate()
            .filter(|(_, c)| all || c.due_ns <= now)
            .min_by_key(|(_, c)| c.due_ns)
            .map(|(index, c)| (index, c.due_ns));
        let limit = (!all).then_some(now);
        let grpc_due = proxy.grpc.next_due().filter(|due| all || *due <= now);
        // gRPC events first when due earlier: one clock, one order.
        if let Some(grpc_due) = grpc_due {
            if next.is_none_or(|(_, http_due)| grpc_due < http_due) {
                if grpc::deliver_next(vm, limit) {
                    settle_all(vm);
                }
                delivered += 1;
                continue;
            }
        }
        let Some((index, _)) = next else {
            return delivered;
        };
        let call = proxy.pending_calls.remove(index);
        proxy.shared.set_now_ns(call.due_ns);
        let counts = [
            call.response.headers().len() as u32,
            call.response.body_bytes().len() as u32,
            call.response.trailers().len() as u32,
        ];
        proxy.call_response = Some(call.response);
        let context = call.context;
        let result = vm.call(
            context,
            Callback::HttpCallResponse,
            &[context, call.call_id, counts[0], counts[1], counts[2]],
        );
        vm.state().proxy.call_response = None;
        delivered += 1;
        if let Err(trap) = result {
            match vm.state().proxy.streams.get_mut(&context) {
                Some(StreamState::Http(http)) => http.trap = Some(trap),
                Some(StreamState::Tcp(tcp)) => tcp.trap = Some(trap),
                None => {}
            }
        }
        settle_all(vm);
    }
}

/// Applies what any callback asked of any stream of this VM: a callout response, a tick or
/// a queue notification may act on another stream through `proxy_set_effective_context`,
/// and Envoy continues, closes or answers that stream right then (its deferred actions
/// run when the callback returns), not at the stream's next event.
pub(crate) fn settle_all(vm: &mut Vm) {
    delete_root_if_done(vm);
    let mut streams: Vec<(u32, bool)> = vm
        .state()
        .proxy
        .streams
        .iter()
        .map(|(id, state)| (*id, matches!(state, StreamState::Http(_))))
        .collect();
    streams.sort_unstable();
    for (context, is_http) in streams {
        if is_http {
            http::settle(vm, context);
        } else {
            tcp::settle(vm, context);
        }
    }
}

/// When this VM's root context ticks next, if its timer runs at all.
pub(crate) fn next_tick_due(vm: &mut Vm) -> Option<u64> {
    let proxy = &vm.state().proxy;
    proxy
        .next_tick_ns
        .filter(|_| proxy.ticks && !proxy.root_deleted && proxy.tick_period_ms > 0)
}

/// Fires the root context's tick if it is due at `now`; returns whether it fired.
pub(crate) fn tick_if_due(vm: &mut Vm) -> bool {
    let proxy = &mut vm.state().proxy;
    let now = proxy.now_ns();
    match proxy.next_tick_ns {
        Some(due)
            if due <= now && proxy.tick_period_ms > 0 && !proxy.root_deleted && proxy.ticks =>
        {
            proxy.next_tick_ns =
                Some(due.saturating_add(u64::from(proxy.tick_period_ms) * 1_000_000));
            let root = proxy.root_context;
            let _ = vm.call(root, Callback::Tick, &[root]);
            settle_all(vm);
            true
        }
        _ => false,
    }
}

/// Shuts the root context down as Envoy does when it drops a VM: `proxy_on_done`, and
/// `proxy_on_delete` once the plugin is done (at once if `on_done` answers true, else when
/// it calls `proxy_done`, from a later tick, callout response or queue notification).
pub(crate) fn shut_down_root(vm: &mut Vm) {
    let proxy = &mut vm.state().proxy;
    if proxy.root_deleted || proxy.root_awaiting_done {
        return;
    }
    proxy.root_done_called = false;
    let root = proxy.root_context;
    let done = vm.call(root, Callback::Done, &[root]);
    let proxy = &mut vm.state().proxy;
    proxy.root_awaiting_done = true;
    if matches!(done, Ok(Some(1)) | Ok(None)) || done.is_err() {
        proxy.root_done_called = true;
    }
    delete_root_if_done(vm);
}

fn delete_root_if_done(vm: &mut Vm) {
    let proxy = &mut vm.state().proxy;
    if !(proxy.root_awaiting_done && proxy.root_done_called) {
        return;
    }
    proxy.root_awaiting_done = false;
    proxy.root_deleted = true;
    let root = proxy.root_context;
    let _ = vm.call(root, Callback::Delete, &[root]);
}

/// Delivers `proxy_on_queue_ready` to the VM owning a queue.
pub(crate) fn queue_ready(vm: &mut Vm, context: u32, queue: u32) {
    let _ = vm.call(context, Callback::QueueReady, &[context, queue]);
    settle_all(vm);
}
