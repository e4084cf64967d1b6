//! State shared by all VMs of one plugin (Envoy runs one VM per worker thread): settings,
//! the virtual clock, shared data, shared queues and metrics. Owned by the plugin value,
//! never global, so tests in parallel never see each other's state.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use weir_abi::{LogLevel, MetricType, Status};

use crate::message::{Request, Response};
use crate::sync::lock;

/// A callout handler: the test's stand-in for an Envoy cluster.
pub(crate) type Upstream = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

/// A gRPC cluster handler: the test's stand-in for a gRPC service behind an Envoy cluster.
pub(crate) type GrpcUpstream =
    Arc<dyn Fn(&crate::grpc::GrpcRequest) -> crate::grpc::GrpcAnswer + Send + Sync>;

/// Fixed plugin settings, as Envoy's plugin and VM configuration would give them.
pub(crate) struct Settings {
    pub(crate) root_id: String,
    pub(crate) name: String,
    pub(crate) vm_id: String,
    pub(crate) config: Vec<u8>,
    pub(crate) vm_config: Vec<u8>,
    pub(crate) env: Vec<(String, String)>,
    /// Properties set by the test, by encoded path.
    pub(crate) properties: HashMap<Vec<u8>, Vec<u8>>,
    pub(crate) fuel_limit: u64,
    pub(crate) memory_limit: usize,
    pub(crate) log_level: LogLevel,
    pub(crate) upstreams: HashMap<String, Upstream>,
    pub(crate) grpc_upstreams: HashMap<String, GrpcUpstream>,
    /// Where the virtual clock starts, in nanoseconds since the Unix epoch.
    pub(crate) clock_start_ns: u64,
}

/// Cross-VM state of one plugin.
pub(crate) struct PluginShared {
    pub(crate) settings: Settings,
    clock_ns: AtomicU64,
    pub(crate) data: Mutex<SharedData>,
    pub(crate) queues: Mutex<Queues>,
    pub(crate) metrics: Mutex<Metrics>,
}

/// Where a plugin's virtual clock starts unless [`PluginBuilder::clock_start`] says otherwise:
/// 2026-01-01T00:00:00Z, as a duration since the Unix epoch. Fixed so test runs are
/// reproducible; tests that mint tokens use it as their "now".
///
/// [`PluginBuilder::clock_start`]: crate::PluginBuilder::clock_start
pub const CLOCK_START: std::time::Duration = std::time::Duration::from_secs(1_767_225_600);

impl PluginShared {
    pub(crate) fn new(settings: Settings) -> Self {
        PluginShared {
            clock_ns: AtomicU64::new(settings.clock_start_ns),
            settings,
            data: Mutex::new(SharedData::default()),
            queues: Mutex::new(Queues::default()),
            metrics: Mutex::new(Metrics::default()),
        }
    }

    pub(crate) fn now_ns(&self) -> u64 {
        self.clock_ns.load(Ordering::SeqCst)
    }

    pub(crate) fn set_now_ns(&self, now: u64) {
        self.clock_ns.fetch_max(now, Ordering::SeqCst);
    }
}

/// Key-value store with compare-and-swap tokens. Envoy keys shared data by VM id alone, so
/// plugins started with [`same_vm_id_as`](crate::PluginBuilder::same_vm_id_as) hold clones
/// of one store.
#[derive(Default, Clone)]
pub(crate) struct SharedData {
    store: Arc<Mutex<Store>>,
}

#[derive(Default)]
struct Store {
    entries: HashMap<Vec<u8>, (Vec<u8>, u32)>,
    last_cas: u32,
}

impl SharedData {
    pub(crate) fn get(&self, key: &[u8]) -> Option<(Vec<u8>, u32)> {
        lock(&self.store).entries.get(key).cloned()
    }

    pub(crate) fn keys(&self) -> Vec<Vec<u8>> {
        lock(&self.store).entries.keys().cloned().collect()
    }

    /// `cas == 0` writes unconditionally; otherwise the stored token must match.
    pub(crate) fn set(&mut self, key: Vec<u8>, value: Vec<u8>, cas: u32) -> Status {
        let mut store = lock(&self.store);
        if let Some((_, current)) = store.entries.get(&key) {
            if cas != 0 && cas != *current {
                return Status::CasMismatch;
            }
        }
        store.last_cas = store.last_cas.wrapping_add(1).max(1);
        let version = store.last_cas;
        store.entries.insert(key, (value, version));
        Status::Ok
    }
}

/// Shared queues, addressed by (vm_id, name).
#[derive(Default)]
pub(crate) struct Queues {
    by_name: HashMap<(String, Vec<u8>), u32>,
    queues: HashMap<u32, Queue>,
    /// `proxy_on_queue_ready` notifications to deliver: (worker, context, queue).
    pub(crate) ready: Vec<(usize, u32, u32)>,
}

struct Queue {
    owner: (usize, u32),
    items: VecDeque<Vec<u8>>,
}

impl Queues {
    pub(crate) fn register(&mut self, vm_id: &str, name: Vec<u8>, owner: (usize, u32)) -> u32 {
        let next = self.queues.len() as u32 + 1;
        let id = *self
            .by_name
            .entry((vm_id.to_string(), name))
            .or_insert(next);
        let queue = self.queues.entry(id).or_insert_with(|| Queue {
            owner,
            items: VecDeque::new(),
        });
        queue.owner = owner;
        id
    }

    pub(crate) fn resolve(&self, vm_id: &str, name: &[u8]) -> Option<u32> {
        self.by_name
            .get(&(vm_id.to_string(), name.to_vec()))
            .copied()
    }

    pub(crate) fn enqueue(&mut self, id: u32, value: Vec<u8>) -> Status {
        let Some(queue) = self.queues.get_mut(&id) else {
            return Status::NotFound;
        };
        queue.items.push_back(value);
        let (worker, context) = queue.owner;
        self.ready.push((worker, context, id));
        Status::Ok
    }

    pub(crate) fn dequeue(&mut self, id: u32) -> Result<Vec<u8>, Status> {
        let queue = self.queues.get_mut(&id).ok_or(Status::NotFound)?;
        queue.items.pop_front().ok_or(Status::Empty)
    }
}

/// Metrics, process-wide in Envoy and so shared by all VMs here: one entry per type and
/// name (Envoy's stat). The ids a guest sees are per VM ([`MetricIds`]).
#[derive(Default)]
pub(crate) struct Metrics {
    by_kind_and_name: HashMap<(u32, String), usize>,
    pub(crate) entries: Vec<Metric>,
}

/// One defined metric.
pub(crate) struct Metric {
    pub(crate) kind: MetricType,
    pub(crate) name: String,
    pub(crate) value: u64,
    pub(crate) samples: Vec<u64>,
}

impl Metrics {
    /// The entry of this type and name, created on first use.
    pub(crate) fn entry(&mut self, kind: MetricType, name: String) -> usize {
        let next = self.entries.len();
        *self
            .by_kind_and_name
            .entry((kind as u32, name.clone()))
            .or_insert_with(|| {
                self.entries.push(Metric {
                    kind,
                    name,
                    value: 0,
                    samples: Vec::new(),
                });
                next
            })
    }

    pub(crate) fn get_mut(&mut self, index: usize) -> Option<&mut Metric> {
        self.entries.get_mut(index)
    }

    pub(crate) fn by_name(&self, name: &str) -> Option<&Metric> {
        self.entries.iter().find(|m| m.name == name)
    }
}

/// A VM's metric ids, numbered as Envoy numbers them: the type in the low two bits
/// (counter 0, gauge 1, histogram 2), a new id per definition (also of a name defined
/// before, which then shares the stat), counting up by 4 per type from 4, 5 and 6.
#[derive(Default)]
pub(crate) struct MetricIds {
    by_id: HashMap<u32, usize>,
    last: [u32; 3],
}

/// The id bits that carry the metric type.
pub(crate) const METRIC_TYPE_MASK: u32 = 0x3;

impl MetricIds {
    pub(crate) fn assign(&mut self, kind: MetricType, entry: usize) -> u32 {
        let slot = kind as usize;
        if self.last[slot] == 0 {
            self.last[slot] = kind as u32;
        }
        self.last[slot] += METRIC_TYPE_MASK + 1;
        let id = self.last[slot];
        self.by_id.insert(id, entry);
        id
    }

    pub(crate) fn entry(&self, id: u32) -> Option<usize> {
        self.by_id.get(&id).copied()
    }
}

/// Locks the shared queues of a plugin.
pub(crate) fn queues(shared: &PluginShared) -> std::sync::MutexGuard<'_, Queues> {
    lock(&shared.queues)
}
