//! gRPC events delivered to the root context as Envoy delivers them: the callback each
//! event calls, and what it may read while it runs (the events themselves come from the
//! cluster's script, in `crate::state::grpc`).

use weir_abi::Callback;

use crate::engine::vm::Vm;
use crate::grpc::{code, GrpcStatus};
use crate::state::grpc::{record, EventKind};

/// When the next gRPC event of this VM is due.
pub(crate) fn next_due(vm: &mut Vm) -> Option<u64> {
    vm.state().proxy.grpc.next_due()
}

/// Delivers the next gRPC event due by `limit` (any with `None`); false when none was.
/// The caller settles what the callback set in motion.
pub(crate) fn deliver_next(vm: &mut Vm, limit: Option<u64>) -> bool {
    let proxy = &mut vm.state().proxy;
    let Some(event) = proxy.grpc.take_next(limit) else {
        return false;
    };
    proxy.shared.set_now_ns(event.due_ns);
    let token = event.token;
    let Some(streaming) = proxy.grpc.calls.get(&token).map(|c| c.streaming) else {
        return true;
    };
    let root = proxy.root_context;
    let grpc = &mut proxy.grpc;
    let (callback, arg) = match event.kind {
        EventKind::InitialMetadata(fields) => {
            let count = fields.len() as u32;
            grpc.initial_metadata = Some(fields);
            (Callback::GrpcReceiveInitialMetadata, count)
        }
        EventKind::Message(message) => {
            let size = message.len() as u32;
            grpc.receive_buffer = Some(message.clone());
            if !streaming {
                grpc.drop_call(token);
            }
            record(proxy, token, |c| {
                c.received.push(message);
                if !streaming {
                    c.status = Some(GrpcStatus::new(code::OK, ""));
                }
            });
            (Callback::GrpcReceive, size)
        }
        EventKind::TrailingMetadata(fields) => {
            let count = fields.len() as u32;
            grpc.trailing_metadata = Some(fields);
            (Callback::GrpcReceiveTrailingMetadata, count)
        }
        EventKind::Close(status) => {
            let code = status.code;
            grpc.status = Some(status.clone());
            let remove = match grpc.calls.get_mut(&token) {
                Some(call) => {
                    call.remote_closed = true;
                    !streaming || call.local_closed
                }
                None => false,
            };
            if remove {
                grpc.drop_call(token);
            }
            record(proxy, token, |c| c.status = Some(status));
            (Callback::GrpcClose, code)
        }
    };
    let _ = vm.call(root, callback, &[root, token, arg]);
    let grpc = &mut vm.state().proxy.grpc;
    grpc.receive_buffer = None;
    grpc.initial_metadata = None;
    grpc.trailing_metadata = None;
    grpc.status = None;
    true
}
