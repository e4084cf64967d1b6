//! The embedding API: load or build a plugin, start it like Envoy would, drive streams, read
//! outcomes. Plugin tests use it, and so do `weir run` and `weir exec`. Every [`Plugin`] is a value with its own VMs, shared data, clock and metrics:
//! tests run in parallel without seeing each other.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use weir_abi::LogLevel;

use crate::engine::compile;
use crate::engine::vm::Vm;
use crate::error::{LoadError, StartError};
use crate::flows;
use crate::host_functions::properties::normalize;
use crate::message::{Request, Response};
use crate::outcome::{LogEntry, Trap};
use crate::state::shared::{PluginShared, Settings, Upstream};
use crate::sync::lock;

mod handle;
mod http;
mod lifecycle;
mod network;

pub use http::{HttpExchange, HttpStream};
pub use network::{Connection, TcpExchange};

/// Default fuel per callback: far above any real plugin's need, low enough that a runaway
/// loop ends in about a second.
pub const DEFAULT_FUEL_LIMIT: u64 = 1_000_000_000;
/// Default memory limit per VM.
pub const DEFAULT_MEMORY_LIMIT: usize = 256 << 20;

enum Source {
    Path(PathBuf),
    Bytes(Vec<u8>),
    Crate(PathBuf),
}

/// A property value as Envoy serializes it for `proxy_get_property`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PropertyValue(Vec<u8>);

impl From<&str> for PropertyValue {
    fn from(value: &str) -> Self {
        PropertyValue(value.as_bytes().to_vec())
    }
}
impl From<String> for PropertyValue {
    fn from(value: String) -> Self {
        PropertyValue(value.into_bytes())
    }
}
impl From<i64> for PropertyValue {
    /// Integers are 8 bytes, little-endian.
    fn from(value: i64) -> Self {
        PropertyValue(value.to_le_bytes().to_vec())
    }
}
impl From<bool> for PropertyValue {
    /// Booleans are one byte.
    fn from(value: bool) -> Self {
        PropertyValue(vec![u8::from(value)])
    }
}
impl From<Vec<u8>> for PropertyValue {
    fn from(value: Vec<u8>) -> Self {
        PropertyValue(value)
    }
}

/// A plugin or VM configuration: JSON (as Istio passes `pluginConfig`), text or bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfigBytes(Vec<u8>);

impl From<serde_json::Value> for ConfigBytes {
    fn from(value: serde_json::Value) -> Self {
        ConfigBytes(value.to_string().into_bytes())
    }
}
impl From<&str> for ConfigBytes {
    fn from(value: &str) -> Self {
        ConfigBytes(value.as_bytes().to_vec())
    }
}
impl From<String> for ConfigBytes {
    fn from(value: String) -> Self {
        ConfigBytes(value.into_bytes())
    }
}
impl From<Vec<u8>> for ConfigBytes {
    fn from(value: Vec<u8>) -> Self {
        ConfigBytes(value)
    }
}

/// Sets up a plugin; [`PluginBuilder::start`] loads and starts it.
#[must_use = "call .start() to run the plugin"]
pub struct PluginBuilder {
    source: Source,
    settings: Settings,
    workers: usize,
    /// VMs started before the workers' that get no streams (Envoy's main-thread VMs).
    main_thread_vms: usize,
    /// The shared-data store of another plugin in the same VM id.
    vm_store: Option<crate::state::shared::SharedData>,
}

impl std::fmt::Debug for PluginBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginBuilder")
            .field("root_id", &self.settings.root_id)
            .finish_non_exhaustive()
    }
}

impl PluginBuilder {
    fn new(source: Source) -> Self {
        PluginBuilder {
            source,
            settings: Settings {
                root_id: String::new(),
                name: String::new(),
                vm_id: String::new(),
                config: Vec::new(),
                vm_config: Vec::new(),
                env: Vec::new(),
                properties: HashMap::new(),
                fuel_limit: DEFAULT_FUEL_LIMIT,
                memory_limit: DEFAULT_MEMORY_LIMIT,
                log_level: LogLevel::Trace,
                upstreams: HashMap::new(),
                grpc_upstreams: HashMap::new(),
                clock_start_ns: crate::state::shared::CLOCK_START.as_nanos() as u64,
            },
            workers: 1,
            main_thread_vms: 0,
            vm_store: None,
        }
    }

    /// The root id (Istio: `pluginName`); property `plugin_root_id`. Default: empty.
    pub fn root_id(mut self, root_id: &str) -> Self {
        self.settings.root_id = root_id.to_string();
        self
    }

    /// The plugin name (Istio: `<namespace>.<name>`); property `plugin_name`.
    /// Default: empty, as in Envoy when the plugin configuration has no `name`.
    pub fn name(mut self, name: &str) -> Self {
        self.settings.name = name.to_string();
        self
    }

    /// The VM id (Istio sets none); property `plugin_vm_id`, and the namespace of queues.
    pub fn vm_id(mut self, vm_id: &str) -> Self {
        self.settings.vm_id = vm_id.to_string();
        self
    }

    /// Starts this plugin in `other`'s VM id, as Envoy does for two plugins configured with
    /// the same `vm_id` (every Istio WasmPlugin has the empty one): both read and write one
    /// shared-data store, whatever their code, name or root id. Queues and metrics stay
    /// per plugin.
    pub fn same_vm_id_as(mut self, other: &Plugin) -> Self {
        let inner = other.lock();
        self.settings.vm_id = inner.shared.settings.vm_id.clone();
        self.vm_store = Some(lock(&inner.shared.data).clone());
        self
    }

    /// The plugin configuration, read by `proxy_on_configure`.
    pub fn config(mut self, config: impl Into<ConfigBytes>) -> Self {
        self.settings.config = config.into().0;
        self
    }

    /// The VM configuration, read by `proxy_on_vm_start`.
    pub fn vm_config(mut self, config: impl Into<ConfigBytes>) -> Self {
        self.settings.vm_config = config.into().0;
        self
    }

    /// A VM environment variable (Istio: `vmConfig.env`), visible through WASI `environ_get`.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.settings.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Routes `proxy_http_call`s to `cluster` to a handler. Calls to clusters without one
    /// fail with `BadArgument`, as calls to unknown clusters do in Envoy.
    pub fn upstream<F>(mut self, cluster: &str, handler: F) -> Self
    where
        F: Fn(&Request) -> Response + Send + Sync + 'static,
    {
        let handler: Upstream = Arc::new(handler);
        self.settings.upstreams.insert(cluster.to_string(), handler);
        self
    }

    /// Routes `proxy_grpc_call`s and `proxy_grpc_stream`s to `cluster` to a handler: it
    /// receives the service, method, initial metadata, message and timeout
    /// ([`GrpcRequest`](crate::GrpcRequest)) and answers with a
    /// [`GrpcReply`](crate::GrpcReply) or a [`GrpcStreamScript`](crate::GrpcStreamScript).
    /// Calls to a cluster that has neither this nor an [`upstream`](Self::upstream) fail
    /// with `ParseFailure`, as in Envoy; answers arrive on the virtual clock like callout
    /// responses, at the root context (as Envoy delivers them).
    pub fn grpc_upstream<F, A>(mut self, cluster: &str, handler: F) -> Self
    where
        F: Fn(&crate::grpc::GrpcRequest) -> A + Send + Sync + 'static,
        A: Into<crate::grpc::GrpcAnswer>,
    {
        let handler: crate::state::shared::GrpcUpstream =
            Arc::new(move |request| handler(request).into());
        self.settings
            .grpc_upstreams
            .insert(cluster.to_string(), handler);
        self
    }

    /// Sets a property for `proxy_get_property`; `path` is dotted (`"source.address"`).
    /// For segments containing dots use [`PluginBuilder::property_path`].
    pub fn property(self, path: &str, value: impl Into<PropertyValue>) -> Self {
        let segments: Vec<&str> = path.split('.').collect();
        self.property_path(&segments, value)
    }

    /// Sets a property by explicit segments (`&["request", "headers", "x.y"]`).
    pub fn property_path(mut self, segments: &[&str], value: impl Into<PropertyValue>) -> Self {
        let key = normalize(&weir_abi::wire::encode_path(segments));
        self.settings.properties.insert(key, value.into().0);
        self
    }

    /// Wasm instructions a single callback may execute before it is stopped with a trap.
    pub fn fuel_limit(mut self, instructions: u64) -> Self {
        self.settings.fuel_limit = instructions;
        self
    }

    /// Linear memory a VM may grow to, in bytes (default 256 MiB).
    pub fn memory_limit(mut self, bytes: usize) -> Self {
        self.settings.memory_limit = bytes;
        self
    }

    /// The host's log level: lower levels are dropped, and `proxy_get_log_level` returns it.
    pub fn log_level(mut self, level: LogLevel) -> Self {
        self.settings.log_level = level;
        self
    }

    /// Where the virtual clock starts (default [`CLOCK_START`](crate::CLOCK_START), a fixed
    /// date, so runs are reproducible). `weir exec` passes the wall clock, so a token issued
    /// today is judged as Envoy would judge it today. A time before the Unix epoch starts
    /// the clock at the epoch; one after the year 2262 starts it then (the clock counts
    /// nanoseconds in 64 bits and must still be able to move forward).
    pub fn clock_start(mut self, at: std::time::SystemTime) -> Self {
        let since = at.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        self.settings.clock_start_ns = u64::try_from(since.as_nanos()).unwrap_or(u64::MAX / 2);
        self
    }

    /// Number of VMs (Envoy: one per worker thread; they share data, queues and metrics).
    pub fn workers(mut self, count: usize) -> Self {
        self.workers = count.max(1);
        self
    }

    /// Also starts the two VMs Envoy 1.40 runs for a plugin on its main thread, before the
    /// workers' VMs: the one it configures first to check the configuration, and the main
    /// thread's own. Both run `proxy_on_vm_start` and `proxy_on_configure`, the second also
    /// its own timer (the first never ticks), and they share data, queues and metrics with the workers' VMs; no stream runs on them.
    /// With it, a plugin sees the start-up Envoy gives it (three VMs for one worker, scenario
    /// `exerciser_startup_vms`); without it (the default), only the workers' VMs run.
    pub fn main_thread_vms(mut self) -> Self {
        self.main_thread_vms = lifecycle::ENVOY_MAIN_THREAD_VMS;
        self
    }

    /// Loads the module and starts every VM the way Envoy does.
    pub fn start(self) -> Result<Plugin, StartError> {
        let bytes = match &self.source {
            Source::Bytes(bytes) => bytes.clone(),
            Source::Path(path) => read(path)?,
            Source::Crate(dir) => read(&crate::build::wasm_of(dir)?)?,
        };
        let compiled = compile(&bytes)?;
        let mut shared = PluginShared::new(self.settings);
        if let Some(store) = self.vm_store {
            *shared
                .data
                .get_mut()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = store;
        }
        let shared = Arc::new(shared);
        // Envoy configures its main-thread VMs first, so a worker's registration of a
        // queue name is the last one, and the one notified.
        let mut main_thread = Vec::with_capacity(self.main_thread_vms);
        for index in 0..self.main_thread_vms {
            let mut vm = Vm::instantiate(&compiled, shared.clone(), self.workers + index)?;
            // The VM Envoy configures first only checks the configuration: its timer
            // never fires (scenario `exerciser_startup_vms`: two of three VMs tick).
            vm.state().proxy.ticks = index > 0;
            vm.start()?;
            main_thread.push(vm);
        }
        let mut vms = Vec::with_capacity(self.workers + self.main_thread_vms);
        for worker in 0..self.workers {
            let mut vm = Vm::instantiate(&compiled, shared.clone(), worker)?;
            vm.start()?;
            vms.push(vm);
        }
        vms.extend(main_thread);
        // Callouts made while starting (a root context fetching keys on configure) answer
        // now when their upstream has no delay, as they would moments after Envoy starts.
        for vm in vms.iter_mut() {
            flows::deliver_calls(vm, false);
        }
        let plugin = Plugin {
            inner: Mutex::new(Inner {
                shared,
                vms,
                workers: self.workers,
                logs: Vec::new(),
            }),
        };
        plugin.lock().pump();
        Ok(plugin)
    }
}

fn read(path: &Path) -> Result<Vec<u8>, LoadError> {
    std::fs::read(path).map_err(|source| LoadError::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// A started plugin: one or more VMs of one module, as Envoy runs them.
pub struct Plugin {
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin").finish_non_exhaustive()
    }
}

pub(crate) struct Inner {
    pub(crate) shared: Arc<PluginShared>,
    /// The workers' VMs (`0..workers`, where streams run), then the main-thread ones.
    pub(crate) vms: Vec<Vm>,
    pub(crate) workers: usize,
    /// Logs of root contexts (start-up, ticks, queues, …).
    pub(crate) logs: Vec<LogEntry>,
}

impl Plugin {
    /// A plugin from a `.wasm` file.
    pub fn load(path: impl AsRef<Path>) -> PluginBuilder {
        PluginBuilder::new(Source::Path(path.as_ref().to_path_buf()))
    }

    /// A plugin from module bytes.
    pub fn from_bytes(bytes: impl Into<Vec<u8>>) -> PluginBuilder {
        PluginBuilder::new(Source::Bytes(bytes.into()))
    }

    /// A plugin built from the crate in `crate_dir` (usually `env!("CARGO_MANIFEST_DIR")`)
    /// with `cargo build --release --target wasm32-wasip1`, once per process.
    pub fn build(crate_dir: impl AsRef<Path>) -> PluginBuilder {
        PluginBuilder::new(Source::Crate(crate_dir.as_ref().to_path_buf()))
    }

    /// Path of the `.wasm` built from `crate_dir` (building it on first use).
    pub fn wasm_path(crate_dir: impl AsRef<Path>) -> Result<PathBuf, LoadError> {
        crate::build::wasm_of(crate_dir.as_ref())
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    /// An HTTP exchange on the first VM, run to completion with [`HttpExchange::run`].
    pub fn http(&self) -> HttpExchange<'_> {
        HttpExchange::new(self, 0)
    }

    /// An HTTP exchange on VM `worker` (0-based; out of range picks the last).
    pub fn http_on(&self, worker: usize) -> HttpExchange<'_> {
        HttpExchange::new(self, worker)
    }

    /// An HTTP stream driven step by step.
    pub fn http_stream(&self) -> HttpStream<'_> {
        HttpStream::open(self, 0)
    }

    /// An HTTP stream driven step by step on VM `worker` (0-based; out of range picks the
    /// last), as Envoy runs each stream on the worker thread that accepted its connection.
    pub fn http_stream_on(&self, worker: usize) -> HttpStream<'_> {
        HttpStream::open(self, worker)
    }

    /// A TCP exchange (NETWORK filter) on the first VM.
    pub fn tcp(&self) -> TcpExchange<'_> {
        TcpExchange::new(self)
    }

    /// A TCP connection driven step by step.
    pub fn connection(&self) -> Connection<'_> {
        Connection::open(self, 0)
    }

    /// Moves the virtual clock forward, firing ticks and delivering callout responses and
    /// queue notifications as they fall due.
    pub fn advance(&self, by: Duration) {
        let mut inner = self.lock();
        let target = inner
            .shared
            .now_ns()
            .saturating_add(by.as_nanos().min(u128::from(u64::MAX)) as u64);
        loop {
            let next = inner
                .vms
                .iter_mut()
                .flat_map(|vm| [flows::next_tick_due(vm), flows::next_call_due(vm)])
                .flatten()
                .min();
            match next {
                Some(at) if at <= target => {
                    inner.shared.set_now_ns(at);
                    for vm in inner.vms.iter_mut() {
                        flows::tick_if_due(vm);
                        flows::deliver_calls(vm, false);
                    }
                    inner.pump();
                }
                _ => break,
            }
        }
        inner.shared.set_now_ns(target);
        inner.pump();
    }

    /// The proxy-wasm ABI version the module declares (its `proxy_abi_version_*` export).
    pub fn abi_version(&self) -> crate::AbiVersion {
        self.lock()
            .vms
            .first_mut()
            .map_or(crate::AbiVersion::V0_2_1, |vm| vm.state().abi)
    }

    /// Logs written outside streams (start-up, ticks, queue notifications), in order.
    pub fn logs(&self) -> Vec<LogEntry> {
        let mut inner = self.lock();
        inner.collect_root_logs();
        inner.logs.clone()
    }

    /// A counter or gauge value (histograms: number of samples).
    pub fn metric(&self, name: &str) -> Option<u64> {
        let inner = self.lock();
        let metrics = lock(&inner.shared.metrics);
        metrics.by_name(name).map(|m| {
            if m.samples.is_empty() {
                m.value
            } else {
                m.samples.len() as u64
            }
        })
    }

    /// Samples recorded to a histogram.
    pub fn histogram(&self, name: &str) -> Vec<u64> {
        let inner = self.lock();
        let metrics = lock(&inner.shared.metrics);
        metrics
            .by_name(name)
            .map(|m| m.samples.clone())
            .unwrap_or_default()
    }

    /// A shared-data value, as any VM would read it.
    pub fn shared_data(&self, key: &str) -> Option<Vec<u8>> {
        let inner = self.lock();
        let data = lock(&inner.shared.data);
        data.get(key.as_bytes()).map(|(value, _)| value)
    }

    /// Every shared-data key, sorted: for tests of how much a plugin keeps there.
    pub fn shared_data_keys(&self) -> Vec<String> {
        let inner = self.lock();
        let data = lock(&inner.shared.data);
        let mut keys: Vec<String> = data
            .keys()
            .into_iter()
            .map(|k| String::from_utf8_lossy(&k).into_owned())
            .collect();
        keys.sort();
        keys
    }

    /// Writes a shared-data value unconditionally, as another plugin of the same VM id
    /// could: for tests of what a plugin trusts in shared data.
    pub fn set_shared_data(&self, key: &str, value: &[u8]) {
        let inner = self.lock();
        let mut data = lock(&inner.shared.data);
        data.set(key.as_bytes().to_vec(), value.to_vec(), 0);
    }

    /// gRPC calls and streams opened outside streams (start-up, ticks, queue
    /// notifications), on every VM, in order of opening per VM, as far as they got.
    pub fn grpc_calls(&self) -> Vec<crate::grpc::GrpcCall> {
        let mut inner = self.lock();
        let mut calls = Vec::new();
        for vm in inner.vms.iter_mut() {
            let proxy = &vm.state().proxy;
            let root = proxy.root_context;
            calls.extend(
                proxy
                    .journal
                    .grpc_calls
                    .iter()
                    .filter(|(context, _)| *context == root || *context == 0)
                    .map(|(_, call)| call.clone()),
            );
        }
        calls
    }

    /// The trap of the first crashed VM, if any.
    pub fn trap(&self) -> Option<Trap> {
        self.lock().vms.iter().find_map(|vm| vm.crashed.clone())
    }

    /// Number of workers' VMs (streams run on these).
    pub fn workers(&self) -> usize {
        self.lock().workers
    }

    /// Number of VMs, the main-thread ones ([`PluginBuilder::main_thread_vms`]) included.
    pub fn vm_count(&self) -> usize {
        self.lock().vms.len()
    }

    /// Virtual time elapsed since the plugin started.
    pub fn now(&self) -> Duration {
        let inner = self.lock();
        let since = inner
            .shared
            .now_ns()
            .saturating_sub(inner.shared.settings.clock_start_ns);
        Duration::from_nanos(since)
    }
}

impl Inner {
    /// Delivers queue notifications until none are left. Callout responses are not
    /// delivered here: tests decide when (`deliver_callouts`, `advance`, `run`), so they can
    /// order them against body chunks.
    pub(crate) fn pump(&mut self) {
        // Bounded: two VMs feeding each other's queues forever must not hang the host.
        for _ in 0..10_000 {
            let ready: Vec<(usize, u32, u32)> =
                std::mem::take(&mut crate::state::shared::queues(&self.shared).ready);
            if ready.is_empty() {
                break;
            }
            for (worker, context, queue) in ready {
                if let Some(vm) = self.vms.get_mut(worker) {
                    flows::queue_ready(vm, context, queue);
                }
            }
        }
        self.collect_root_logs();
    }

    /// Moves root-context journal entries into the plugin's logs.
    pub(crate) fn collect_root_logs(&mut self) {
        for vm in self.vms.iter_mut() {
            let proxy = &mut vm.state().proxy;
            let root = proxy.root_context;
            let (root_logs, rest): (Vec<_>, Vec<_>) = proxy
                .journal
                .logs
                .drain(..)
                .partition(|(context, _)| *context == root || *context == 0);
            proxy.journal.logs = rest;
            proxy
                .journal
                .costs
                .retain(|(context, _, _)| *context != root && *context != 0);
            self.logs
                .extend(root_logs.into_iter().map(|(_, entry)| entry));
        }
    }
}
