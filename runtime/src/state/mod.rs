//! What host functions read and write. Here the one typed state a VM's [`wasmtime::Store`]
//! carries, reached by host functions through `Caller::data_mut`; in `shared`, what a
//! plugin's VMs share; in `grpc`, the gRPC calls in flight on a VM. WASI and the proxy ABI are separate fields, as wasmtime's own WASI
//! is one field of an embedder's state.

use std::collections::HashMap;
use std::sync::Arc;

use wasmtime::{Func, Memory, StoreLimits};
use weir_abi::{LogLevel, StreamType};

use crate::abi_version::AbiVersion;
use crate::message::{Fields, LocalReply, Request, Response};
use crate::outcome::LogEntry;
use shared::PluginShared;

pub(crate) mod grpc;
pub(crate) mod shared;

/// Everything a VM's host functions read and write.
pub(crate) struct HostState {
    pub(crate) limits: StoreLimits,
    /// The guest's exported memory, set right after instantiation.
    pub(crate) memory: Option<Memory>,
    /// `proxy_on_memory_allocate`, or `malloc` for older guests.
    pub(crate) allocator: Option<Func>,
    /// The ABI the module declares (set right after instantiation).
    pub(crate) abi: AbiVersion,
    pub(crate) wasi: WasiState,
    pub(crate) proxy: ProxyState,
}

/// WASI preview1 state: what the guest sees of its process.
pub(crate) struct WasiState {
    pub(crate) env: Vec<(String, String)>,
    /// Deterministic generator behind `random_get`, so runs are reproducible.
    pub(crate) rng: u64,
    /// Arguments (`args_get`): none for plugins, as in Envoy; a command's argv otherwise.
    pub(crate) args: Vec<String>,
    /// stdout/stderr go to the host's own streams instead of the captured logs (WASI
    /// commands such as test binaries, run by [`crate::command`]).
    pub(crate) inherit_stdio: bool,
}

/// Proxy-wasm state of one VM.
pub(crate) struct ProxyState {
    pub(crate) shared: Arc<PluginShared>,
    /// Index of this VM among the plugin's VMs (one per simulated Envoy worker).
    pub(crate) worker: usize,
    pub(crate) root_context: u32,
    /// The context host calls act on (`proxy_set_effective_context` changes it).
    pub(crate) active_context: u32,
    pub(crate) next_context: u32,
    pub(crate) streams: HashMap<u32, StreamState>,
    pub(crate) journal: Journal,
    pub(crate) tick_period_ms: u32,
    pub(crate) next_tick_ns: Option<u64>,
    /// The `proxy_http_call` response being delivered, readable only during its callback.
    pub(crate) call_response: Option<Response>,
    pub(crate) pending_calls: Vec<PendingCall>,
    pub(crate) next_call_id: u32,
    /// Configuration buffers, as `proxy_get_buffer_bytes` serves them.
    pub(crate) vm_config: Vec<u8>,
    pub(crate) plugin_config: Vec<u8>,
    /// The plugin is shutting down and the root context answered `proxy_on_done` with
    /// false: it calls `proxy_done` when it has finished, then gets `proxy_on_delete`.
    pub(crate) root_awaiting_done: bool,
    /// Set by `proxy_done` from the root context.
    pub(crate) root_done_called: bool,
    /// The root context got `proxy_on_delete`: no more ticks.
    pub(crate) root_deleted: bool,
    /// Timers fire (not on the VM Envoy configures first, which never ticks).
    pub(crate) ticks: bool,
    /// Inside `proxy_on_configure`: ABI 0.1.0's `proxy_get_configuration` then returns the
    /// plugin configuration, otherwise the VM configuration (Envoy `Context::getConfiguration`).
    pub(crate) configuring: bool,
    /// Inside `proxy_on_log`: header maps are the ones Envoy hands its access loggers, and
    /// a read of one that does not exist is `NotFound` rather than `BadArgument`.
    pub(crate) access_log_phase: bool,
    /// Names `declare_property` declared in this VM.
    pub(crate) declared_properties: std::collections::HashSet<Vec<u8>>,
    /// Properties the guest set outside any stream, by encoded path.
    pub(crate) root_properties: HashMap<Vec<u8>, Vec<u8>>,
    /// This VM's metric ids (Envoy numbers them per VM).
    pub(crate) metric_ids: shared::MetricIds,
    /// gRPC calls and streams, owned by the root context as in Envoy.
    pub(crate) grpc: grpc::GrpcState,
}

/// What a VM recorded, drained into outcomes.
#[derive(Default)]
pub(crate) struct Journal {
    pub(crate) logs: Vec<(u32, LogEntry)>,
    pub(crate) costs: Vec<(u32, &'static str, u64)>,
    pub(crate) callouts: Vec<(u32, crate::outcome::Callout)>,
    /// gRPC calls by the context that opened them, updated as they progress.
    pub(crate) grpc_calls: Vec<(u32, crate::grpc::GrpcCall)>,
}

/// A stream context's state.
pub(crate) enum StreamState {
    Http(Box<HttpState>),
    Tcp(Box<TcpState>),
}

/// Which callback a direction is paused in.
#[derive(Copy, Clone, Debug, Eq, PartialEq)]
pub(crate) enum PausedAt {
    Headers,
    Body,
    Trailers,
}

/// One direction (request or response) of an HTTP stream.
#[derive(Default)]
pub(crate) struct Direction {
    pub(crate) headers: Option<Fields>,
    /// The body buffer the guest sees: chunks not yet passed on.
    pub(crate) body: Vec<u8>,
    pub(crate) trailers: Option<Fields>,
    pub(crate) paused: Option<PausedAt>,
    /// Body and trailers that arrived while headers were paused: Envoy holds them back
    /// from the plugin until the stream continues.
    pub(crate) held_body: Vec<u8>,
    pub(crate) held_end: bool,
    pub(crate) held_trailers: Option<Fields>,
    pub(crate) body_seen: bool,
    /// The last body callback runs, or paused and holds the body: a write to this
    /// direction's trailers creates them (Envoy `Context::getMap`: `addDecodedTrailers` /
    /// `addEncodedTrailers`); anywhere else a missing trailer map is not writable.
    pub(crate) trailers_creatable: bool,
    /// The header callback returned `Continue`, or (request only) the plugin called
    /// `proxy_continue_stream`: Envoy forgets the map it handed the plugin
    /// (`Context::decodeHeaders` / `encodeHeaders` / `continueStream`), so later reads find
    /// none and size and writes fail. A response whose header callback paused keeps its
    /// map after the resume. The headers stay here for properties, stream info and the
    /// access-log reads.
    pub(crate) headers_forgotten: bool,
    pub(crate) end_received: bool,
    pub(crate) passed: Passed,
}

/// What passed the plugin in one direction.
#[derive(Default, Clone)]
pub(crate) struct Passed {
    pub(crate) headers: Option<Fields>,
    pub(crate) body: Vec<u8>,
    pub(crate) trailers: Option<Fields>,
    pub(crate) end: bool,
}

/// State of an HTTP stream context.
#[derive(Default)]
pub(crate) struct HttpState {
    pub(crate) request: Direction,
    pub(crate) response: Direction,
    pub(crate) local_reply: Option<LocalReply>,
    /// The local reply as the client got it after the plugin's own response callbacks
    /// (Envoy runs a reply made before the response started through the encoder filters).
    pub(crate) replied: Option<Response>,
    pub(crate) reset: bool,
    /// What Envoy records for the stream when it, not the plugin or the upstream, decided
    /// its end (router timeout or reset, client gone): `response.code_details`.
    pub(crate) details: Option<&'static str>,
    /// How the upstream failed, when the router answered in its place.
    pub(crate) failure: Option<crate::message::UpstreamFailure>,
    /// Envoy's legacy response flags (`response.flags`).
    pub(crate) flags: u64,
    /// The client closed its connection before the response.
    pub(crate) client_gone: bool,
    /// The virtual clock when the stream started (`request.duration` counts from it).
    pub(crate) started_ns: u64,
    /// Properties the guest set on this stream, by encoded path.
    pub(crate) properties: HashMap<Vec<u8>, Vec<u8>>,
    /// `proxy_continue_stream` / `proxy_close_stream` requests, applied after the callback.
    pub(crate) signals: Vec<Signal>,
    pub(crate) actions: Vec<(crate::outcome::Phase, crate::outcome::Action)>,
    pub(crate) trap: Option<crate::outcome::Trap>,
}

/// State of an L4 (network) stream context.
#[derive(Default)]
pub(crate) struct TcpState {
    pub(crate) downstream: Vec<u8>,
    pub(crate) upstream: Vec<u8>,
    pub(crate) to_upstream: Vec<u8>,
    pub(crate) to_downstream: Vec<u8>,
    pub(crate) closed_by_plugin: bool,
    pub(crate) downstream_paused: bool,
    pub(crate) upstream_paused: bool,
    pub(crate) downstream_end: bool,
    pub(crate) upstream_end: bool,
    pub(crate) closed: bool,
    pub(crate) properties: HashMap<Vec<u8>, Vec<u8>>,
    pub(crate) signals: Vec<Signal>,
    pub(crate) actions: Vec<(crate::outcome::Phase, crate::outcome::Action)>,
    pub(crate) trap: Option<crate::outcome::Trap>,
}

/// A stream operation the guest asked for.
#[derive(Copy, Clone, Debug, Eq, PartialEq)]
pub(crate) enum Signal {
    Continue(StreamType),
    Close(StreamType),
}

/// A `proxy_http_call` whose response has not been delivered yet.
pub(crate) struct PendingCall {
    pub(crate) call_id: u32,
    pub(crate) context: u32,
    pub(crate) due_ns: u64,
    pub(crate) response: Response,
}

impl HostState {
    pub(crate) fn new(shared: Arc<PluginShared>, worker: usize) -> Self {
        let settings = &shared.settings;
        let limits = wasmtime::StoreLimitsBuilder::new()
            .memory_size(settings.memory_limit)
            .instances(1)
            .build();
        HostState {
            limits,
            memory: None,
            allocator: None,
            abi: AbiVersion::V0_2_1,
            wasi: WasiState {
                env: settings.env.clone(),
                rng: 0x9e37_79b9_7f4a_7c15 ^ (worker as u64 + 1),
                args: Vec::new(),
                inherit_stdio: false,
            },
            proxy: ProxyState {
                worker,
                root_context: 1,
                active_context: 1,
                next_context: 2,
                streams: HashMap::new(),
                journal: Journal::default(),
                tick_period_ms: 0,
                next_tick_ns: None,
                call_response: None,
                pending_calls: Vec::new(),
                next_call_id: 1,
                vm_config: settings.vm_config.clone(),
                plugin_config: settings.config.clone(),
                root_awaiting_done: false,
                root_done_called: false,
                root_deleted: false,
                ticks: true,
                configuring: false,
                access_log_phase: false,
                declared_properties: Default::default(),
                root_properties: HashMap::new(),
                metric_ids: shared::MetricIds::default(),
                grpc: grpc::GrpcState::default(),
                shared,
            },
        }
    }
}

/// Log lines kept per VM between two outcomes: a guest logging in a loop must not exhaust
/// the host's memory.
pub(crate) const MAX_PENDING_LOGS: usize = 100_000;

impl ProxyState {
    pub(crate) fn log(&mut self, level: LogLevel, message: String) {
        if level < self.shared.settings.log_level || self.journal.logs.len() >= MAX_PENDING_LOGS {
            return;
        }
        let context = self.active_context;
        self.journal
            .logs
            .push((context, LogEntry { level, message }));
    }

    pub(crate) fn http(&mut self) -> Option<&mut HttpState> {
        match self.streams.get_mut(&self.active_context)? {
            StreamState::Http(http) => Some(http),
            StreamState::Tcp(_) => None,
        }
    }

    pub(crate) fn tcp(&mut self) -> Option<&mut TcpState> {
        match self.streams.get_mut(&self.active_context)? {
            StreamState::Tcp(tcp) => Some(tcp),
            StreamState::Http(_) => None,
        }
    }

    pub(crate) fn now_ns(&self) -> u64 {
        self.shared.now_ns()
    }
}

/// The request a callout handler receives, built from what the guest passed.
pub(crate) fn callout_request(headers: Fields, body: Vec<u8>, trailers: Fields) -> Request {
    Request::from_parts(headers, body, trailers)
}
