//! Work a plugin does outside any request: fetch keys when it is configured and refresh them
//! on a timer, with the same `async` callouts a filter uses ([`Call`](crate::Call)).
//!
//! ```no_run
//! use std::time::Duration;
//! use weir::prelude::*;
//! use weir::background::Background;
//! use weir::Call;
//!
//! #[derive(Deserialize)]
//! struct Config {
//!     keys_cluster: String,
//! }
//! impl Validate for Config {}
//!
//! struct Filter;
//! impl HttpFilter for Filter {}
//!
//! fn start(cfg: &Shared<Config>, bg: &mut Background) {
//!     let cfg = cfg.clone();
//!     bg.every("refresh keys", Duration::from_secs(300), move || {
//!         let cfg = cfg.clone();
//!         async move {
//!             let keys = Call::get(cfg.keys_cluster.as_str(), "/keys").send().await?;
//!             info!("keys: {} bytes", keys.body.len());
//!             Ok(())
//!         }
//!     });
//! }
//!
//! weir::http_plugin!(Config => |_cfg| Filter, background = start);
//! ```
//!
//! Each job runs once as soon as the plugin is configured, then every `period` on the plugin's
//! root context (one per VM: Envoy runs a VM per worker thread, so share results through
//! shared data, as [`jwt::RemoteJwks`](crate::jwt) does). A run that fails is logged at warn
//! level and retried after [`RETRY_AFTER_ERROR`] (or its period, if shorter). A run still
//! waiting for a callout when the next one is due is left to finish: runs never overlap.
//! A new configuration replaces the jobs; a run in flight for the old one is dropped.
//!
//! [`Background::on_queue`] runs a handler with the items of a shared queue as they arrive
//! (see [`queue`](crate::queue)), with the same `async` support.

use crate::error::Result;
use crate::queue::Queue;
use proxy_wasm::hostcalls;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime};

/// How soon a failed run is retried, unless its period is shorter.
pub const RETRY_AFTER_ERROR: Duration = Duration::from_secs(10);

/// The longest period a job can have; longer ones are cut to this (a week).
pub const MAX_PERIOD: Duration = Duration::from_secs(7 * 24 * 3600);

/// The most items one run of a queue handler receives; the rest wait for the next
/// notification (the host sends one per item enqueued).
pub const MAX_ITEMS_PER_RUN: usize = 1024;

type Run = Pin<Box<dyn Future<Output = Result<()>>>>;

struct Job {
    name: &'static str,
    period: Duration,
    make: Box<dyn Fn() -> Run>,
    running: Option<Run>,
    due: SystemTime,
}

/// The periodic jobs of one plugin's root context; filled by the `background = …` function
/// given to [`http_plugin!`](crate::http_plugin) or [`network_plugin!`](crate::network_plugin).
#[derive(Default)]
pub struct Background {
    jobs: Vec<Job>,
    /// Set by the first [`Background::on_queue`]. Behind a trait object that only
    /// `on_queue` creates, so a plugin without queues links none of their code.
    queues: Option<Box<dyn QueueDispatch>>,
}

/// What the root context asks of the queue handlers.
trait QueueDispatch {
    fn add(&mut self, handler: QueueHandler);
    /// Drains queue `id` into a new run of its handler, if it has one.
    fn ready(&mut self, id: u32);
    /// Drains every queue (at configure time).
    fn drain_all(&mut self);
    /// Polls the runs in flight.
    fn poll(&mut self);
}

struct QueueHandler {
    queue: Queue,
    handle: Box<dyn Fn(Vec<Vec<u8>>) -> Run>,
}

#[derive(Default)]
struct QueueHandlers {
    handlers: Vec<QueueHandler>,
    /// Runs still waiting (for a callout), with their handler's index.
    runs: Vec<(usize, Run)>,
}

impl QueueDispatch for QueueHandlers {
    fn add(&mut self, handler: QueueHandler) {
        self.handlers.push(handler);
    }

    fn ready(&mut self, id: u32) {
        if let Some(at) = self.handlers.iter().position(|h| h.queue.id() == id) {
            self.drain(at);
        }
    }

    fn drain_all(&mut self) {
        for at in 0..self.handlers.len() {
            self.drain(at);
        }
    }

    fn poll(&mut self) {
        let handlers = &self.handlers;
        self.runs.retain_mut(|(at, run)| {
            let Poll::Ready(result) = run.as_mut().poll(&mut Context::from_waker(Waker::noop()))
            else {
                return true;
            };
            if let Err(err) = result {
                log::warn!(
                    "handler of shared queue '{}' failed: {err}",
                    handlers[*at].queue.name()
                );
            }
            false
        });
    }
}

impl QueueHandlers {
    fn drain(&mut self, at: usize) {
        let handler = &self.handlers[at];
        let mut items = Vec::new();
        while items.len() < MAX_ITEMS_PER_RUN {
            match handler.queue.dequeue() {
                Ok(Some(item)) => items.push(item),
                Ok(None) => break,
                Err(err) => {
                    log::warn!("cannot drain: {err}");
                    break;
                }
            }
        }
        if !items.is_empty() {
            self.runs.push((at, (handler.handle)(items)));
        }
    }
}

impl std::fmt::Debug for Background {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.jobs.iter().map(|j| (j.name, j.period)))
            .finish()
    }
}

impl Background {
    /// Runs `job` now and then every `period` (at least one second, at most [`MAX_PERIOD`]).
    /// `name` appears in the log lines of failed runs. The future must own what it uses
    /// (`async move`).
    pub fn every<F, Fut>(&mut self, name: &'static str, period: Duration, job: F) -> &mut Self
    where
        F: Fn() -> Fut + 'static,
        Fut: Future<Output = Result<()>> + 'static,
    {
        let period = period.clamp(Duration::from_secs(1), MAX_PERIOD);
        let make: Box<dyn Fn() -> Run> = Box::new(move || Box::pin(job()));
        self.jobs.push(Job {
            name,
            period,
            make,
            running: None,
            due: SystemTime::UNIX_EPOCH,
        });
        self
    }

    /// Runs `handler` with the items of `queue` (registered by this VM, see
    /// [`Queue::register`]) whenever the host reports new ones: each notification drains the
    /// queue (at most [`MAX_ITEMS_PER_RUN`] items) and, if it held any, starts a run. Runs
    /// are not serialized: a run waiting for a callout does not stop the next one from
    /// draining the queue, so items never pile up in the host, whose queue has no limit.
    /// Bound what the runs keep between them (the `event-batcher` example keeps one
    /// shipment in flight and drops, counting them, events over its buffer). A failed run
    /// is logged at warn level; its items are not put back.
    ///
    /// Items already queued when the plugin is configured are handled at once.
    pub fn on_queue<F, Fut>(&mut self, queue: &Queue, handler: F) -> &mut Self
    where
        F: Fn(Vec<Vec<u8>>) -> Fut + 'static,
        Fut: Future<Output = Result<()>> + 'static,
    {
        let handler = QueueHandler {
            queue: queue.clone(),
            handle: Box::new(move |items| Box::pin(handler(items))),
        };
        self.queues
            .get_or_insert_with(|| Box::new(QueueHandlers::default()))
            .add(handler);
        self
    }

    /// Runs the handler of queue `id`; called on `proxy_on_queue_ready`.
    pub(crate) fn on_queue_ready(&mut self, id: u32) {
        if let Some(queues) = self.queues.as_mut() {
            queues.ready(id);
            queues.poll();
        }
    }

    /// Starts every job and sets the root context's tick to the shortest interval a job can
    /// need (its period, or the retry delay); drains the queues once.
    pub(crate) fn start(&mut self) {
        if let Some(queues) = self.queues.as_mut() {
            queues.drain_all();
        }
        let Some(tick) = self
            .jobs
            .iter()
            .map(|j| j.period.min(RETRY_AFTER_ERROR))
            .min()
        else {
            self.poll(now());
            return;
        };
        if let Err(status) = hostcalls::set_tick_period(tick) {
            log::warn!(
                "background jobs will not repeat: proxy_set_tick_period failed ({})",
                status as u32
            );
        }
        self.on_tick();
    }

    /// Starts the jobs that are due and not running.
    pub(crate) fn on_tick(&mut self) {
        let now = now();
        for job in &mut self.jobs {
            if job.running.is_none() && job.due <= now {
                job.running = Some((job.make)());
            }
        }
        self.poll(now);
    }

    /// Polls the running jobs; called after a callout answered on the root context.
    pub(crate) fn on_callout(&mut self) {
        self.poll(now());
    }

    fn poll(&mut self, now: SystemTime) {
        if let Some(queues) = self.queues.as_mut() {
            queues.poll();
        }
        for job in &mut self.jobs {
            let Some(run) = job.running.as_mut() else {
                continue;
            };
            // The no-op waker is enough: only host callbacks (a callout's answer, a tick) can
            // make progress, and each of them polls again.
            let Poll::Ready(result) = run.as_mut().poll(&mut Context::from_waker(Waker::noop()))
            else {
                continue;
            };
            job.running = None;
            job.due = now
                + match result {
                    Ok(()) => job.period,
                    Err(err) => {
                        log::warn!("background job '{}' failed: {err}", job.name);
                        job.period.min(RETRY_AFTER_ERROR)
                    }
                };
        }
    }
}

/// The host's clock; the epoch if it cannot be read (every job is then due).
fn now() -> SystemTime {
    crate::now().unwrap_or(SystemTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_kept_between_a_second_and_a_week() {
        let mut bg = Background::default();
        bg.every("huge", Duration::MAX, || async { Ok(()) });
        bg.every("tiny", Duration::ZERO, || async { Ok(()) });
        assert_eq!(format!("{bg:?}"), r#"[("huge", 604800s), ("tiny", 1s)]"#);
    }
}
