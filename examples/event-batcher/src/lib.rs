//! event-batcher: every worker's filter puts one small event per request (method, path,
//! status) on a shared queue; one VM drains the queue and POSTs the events in batches of
//! JSON to a configured cluster, every `batch_size` events or every
//! `flush_interval_seconds`, whichever comes first. The template for a shared queue.

mod event;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use weir::background::Background;
use weir::metrics::Counter;
use weir::prelude::*;
use weir::queue::Queue;
use weir::Call;

/// The queue's name (namespaced by the SDK with the plugin's name and root id).
const QUEUE: &str = "events";

static SHIPPED: Counter = Counter::new("event_batcher.events_shipped");
static BATCHES: Counter = Counter::new("event_batcher.batches_shipped");
static BATCHES_FAILED: Counter = Counter::new("event_batcher.batches_failed");
static LOST: Counter = Counter::new("event_batcher.events_lost");
static DROPPED: Counter = Counter::new("event_batcher.events_dropped");
static MALFORMED: Counter = Counter::new("event_batcher.items_malformed");
static NOT_QUEUED: Counter = Counter::new("event_batcher.events_not_queued");

/// The plugin's `pluginConfig`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    cluster: String,
    #[serde(default = "default_path")]
    path: String,
    #[serde(
        default = "default_batch_size",
        deserialize_with = "weir::config::bounded::<_, 1, 10000>"
    )]
    batch_size: u64,
    #[serde(
        default = "default_flush",
        deserialize_with = "weir::config::bounded::<_, 1, 3600>"
    )]
    flush_interval_seconds: u64,
    #[serde(
        default = "default_max_buffered",
        deserialize_with = "weir::config::bounded::<_, 1, 1000000>"
    )]
    max_buffered_events: u64,
    #[serde(
        default = "default_timeout",
        deserialize_with = "weir::config::bounded::<_, 1, 60000>"
    )]
    timeout_ms: u64,
}

fn default_path() -> String {
    "/events".into()
}
fn default_batch_size() -> u64 {
    100
}
fn default_flush() -> u64 {
    5
}
fn default_max_buffered() -> u64 {
    10_000
}
fn default_timeout() -> u64 {
    5_000
}

/// The checks that span fields or look inside a string; bounds are checked as the numbers
/// are read.
impl Validate for Config {
    fn validate(&mut self) -> Result<(), ConfigError> {
        if self.cluster.is_empty() {
            return Err(ConfigError::at("cluster", "must name an Envoy cluster"));
        }
        if !self.path.starts_with('/')
            || self.path.chars().any(|c| c.is_ascii_control() || c == ' ')
        {
            return Err(ConfigError::at(
                "path",
                format!(
                    "'{}' must start with '/' and hold no spaces or control characters",
                    self.path
                ),
            ));
        }
        if self.max_buffered_events < self.batch_size {
            return Err(ConfigError::at(
                "max_buffered_events",
                format!(
                    "must be at least batch_size ({}), got {}",
                    self.batch_size, self.max_buffered_events
                ),
            ));
        }
        Ok(())
    }
}

impl Config {
    /// Bounded to 10,000 when read, so it fits any `usize`.
    fn batch_size(&self) -> usize {
        self.batch_size as usize
    }

    /// Bounded to 1,000,000 when read, so it fits any `usize`.
    fn max_buffered_events(&self) -> usize {
        self.max_buffered_events as usize
    }
}

/// The per-request part, on every worker: remembers the request line, enqueues the event
/// when the response starts. Never changes or fails the request.
struct Recorder {
    method: String,
    path: String,
}

impl HttpFilter for Recorder {
    fn on_request_headers(&mut self, req: &mut RequestHeaders) -> Result<Flow> {
        self.method = req.method()?.unwrap_or_default();
        self.path = req.path()?.unwrap_or_default();
        Ok(Flow::Continue)
    }

    fn on_response_headers(&mut self, res: &mut ResponseHeaders) -> Result<Flow> {
        let status = res.status().ok().flatten().unwrap_or(0);
        let item = event::item(&self.method, &self.path, status);
        // Losing an event must not cost the client its response: count it instead.
        let queued = match Queue::resolve(QUEUE) {
            Ok(Some(queue)) => queue.enqueue(&item).is_ok(),
            _ => false,
        };
        if !queued {
            NOT_QUEUED.inc();
        }
        Ok(Flow::Continue)
    }
}

/// The shipping VM's state: events waiting, and whether a batch is on its way.
struct Batcher {
    cfg: Shared<Config>,
    pending: VecDeque<String>,
    shipping: bool,
}

impl Batcher {
    /// Keeps the items that are events, up to `max_buffered_events`; counts the rest.
    fn accept(&mut self, items: Vec<Vec<u8>>) {
        for item in items {
            match event::to_json(&item) {
                Some(_) if self.pending.len() >= self.cfg.max_buffered_events() => DROPPED.inc(),
                Some(json) => self.pending.push_back(json),
                None => MALFORMED.inc(),
            }
        }
    }

    /// The next batch to send, if one is due and none is in flight: a full one, or with
    /// `flush` whatever is waiting.
    fn next_batch(&mut self, flush: bool) -> Option<(usize, String)> {
        let due = self.pending.len() >= self.cfg.batch_size() || flush && !self.pending.is_empty();
        if self.shipping || !due {
            return None;
        }
        let count = self.pending.len().min(self.cfg.batch_size());
        let events: Vec<String> = self.pending.drain(..count).collect();
        self.shipping = true;
        Some((count, format!(r#"{{"events":[{}]}}"#, events.join(","))))
    }
}

/// Sends due batches one at a time until none is due. A batch the collector does not take
/// (an error, a timeout, a status other than 2xx) is dropped and counted, not retried.
async fn ship(batcher: Rc<RefCell<Batcher>>, flush: bool) -> Result<()> {
    loop {
        let Some((count, body)) = batcher.borrow_mut().next_batch(flush) else {
            return Ok(());
        };
        let cfg = batcher.borrow().cfg.clone();
        let sent = Call::post(cfg.cluster.as_str(), &cfg.path)
            .header("content-type", "application/json")
            .body(body)
            .timeout(Duration::from_millis(cfg.timeout_ms))
            .send()
            .await;
        batcher.borrow_mut().shipping = false;
        let failure = match sent {
            Ok(res) if (200..300).contains(&res.status) => None,
            Ok(res) => Some(Error::msg(format!("collector answered {}", res.status))),
            Err(err) => Some(err),
        };
        if let Some(err) = failure {
            BATCHES_FAILED.inc();
            LOST.add(count as u64);
            return Err(err.context(format!("a batch of {count} events was lost")));
        }
        BATCHES.inc();
        SHIPPED.add(count as u64);
    }
}

/// Every VM registers the queue; the host notifies the last one, which ships. The others
/// keep an empty buffer, so their flush job finds nothing to send.
fn start(cfg: &Shared<Config>, bg: &mut Background) {
    let queue = match Queue::register(QUEUE) {
        Ok(queue) => queue,
        Err(err) => return error!("events will not be shipped from this VM: {err}"),
    };
    let batcher = Rc::new(RefCell::new(Batcher {
        cfg: cfg.clone(),
        pending: VecDeque::new(),
        shipping: false,
    }));
    let on_items = batcher.clone();
    bg.on_queue(&queue, move |items| {
        on_items.borrow_mut().accept(items);
        ship(on_items.clone(), false)
    });
    bg.every(
        "flush events",
        Duration::from_secs(cfg.flush_interval_seconds),
        move || ship(batcher.clone(), true),
    );
}

weir::http_plugin!(Config => |_cfg| Recorder { method: String::new(), path: String::new() }, background = start);
