//! Metrics: typed counter, gauge and histogram handles, visible in Envoy's `/stats` and in
//! weir-runtime's `out.metric(name)`.
//!
//! A handle is a `const` value naming the metric; the host id is defined on first use and
//! cached per VM (Envoy returns the same id for the same name, but a define per request
//! would be a wasted host call). Recording never fails a request: host errors are ignored
//! (a failed define is logged at debug level), because losing a count must not deny traffic.
//!
//! ```no_run
//! use weir::metrics::Counter;
//! static ALLOWED: Counter = Counter::new("acl_check.allowed");
//! ALLOWED.inc();
//! ```

use proxy_wasm::hostcalls;
use std::cell::RefCell;
use weir_abi::MetricType;

thread_local! {
    /// name → host metric id, per VM.
    static IDS: RefCell<Vec<(&'static str, u32)>> = const { RefCell::new(Vec::new()) };
}

fn id(name: &'static str, kind: MetricType) -> Option<u32> {
    if let Some(id) = IDS.with(|ids| {
        ids.borrow()
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, id)| *id)
    }) {
        return Some(id);
    }
    match hostcalls::define_metric(crate::proxy_types::metric_type(kind), name) {
        Ok(id) => {
            IDS.with(|ids| ids.borrow_mut().push((name, id)));
            Some(id)
        }
        Err(status) => {
            log::debug!("cannot define metric {name}: host status {}", status as u32);
            None
        }
    }
}

macro_rules! handle {
    ($(#[$doc:meta])* $name:ident, $kind:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy)]
        pub struct $name {
            name: &'static str,
        }

        impl $name {
            /// A handle for the metric `name` (Envoy shows it as-is in `/stats`).
            pub const fn new(name: &'static str) -> Self {
                $name { name }
            }

            /// The metric's name.
            pub fn name(&self) -> &'static str {
                self.name
            }

            fn id(&self) -> Option<u32> {
                id(self.name, MetricType::$kind)
            }
        }
    };
}

handle!(
    /// A monotonically increasing count (`proxy_define_metric(Counter)`).
    Counter, Counter
);
handle!(
    /// A value that goes up and down.
    Gauge, Gauge
);
handle!(
    /// A distribution of recorded values.
    Histogram, Histogram
);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.add(1);
    }

    /// Adds `n`.
    pub fn add(&self, n: u64) {
        if let Some(id) = self.id() {
            let _ = hostcalls::increment_metric(id, n.min(i64::MAX as u64) as i64);
        }
    }
}

impl Gauge {
    /// Sets the value.
    pub fn set(&self, value: u64) {
        if let Some(id) = self.id() {
            let _ = hostcalls::record_metric(id, value);
        }
    }

    /// Adds `delta` (negative to decrease).
    pub fn add(&self, delta: i64) {
        if let Some(id) = self.id() {
            let _ = hostcalls::increment_metric(id, delta);
        }
    }
}

impl Histogram {
    /// Records one value.
    pub fn record(&self, value: u64) {
        if let Some(id) = self.id() {
            let _ = hostcalls::record_metric(id, value);
        }
    }
}
