//! The benchmarks' measured run: a warm-up, then timed requests, one after another on one
//! [`KeepAlive`] connection to an Envoy. Every answer, warm-up included, must have the
//! expected status: a run that timed error replies (a refused grant, a 503 from a failed
//! VM) would report a rate for the wrong thing, so it fails instead, with Envoy's log.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::{Envoy, KeepAlive};

/// One run's requests; see the module docs and [`TimedRequests::run`].
#[derive(Debug, Clone, Copy)]
pub struct TimedRequests<'a> {
    /// The path every request asks for (`GET`).
    pub path: &'a str,
    /// The header sets the requests carry in turn; each of the two phases starts at the
    /// first. One set sends the same headers every time.
    pub header_sets: &'a [Vec<(&'a str, &'a str)>],
    /// The status every answer must have.
    pub expected_status: u16,
    /// Requests sent before the clock starts, so connection set-up and first-request work
    /// (caches filling, lazy initialisation) stay out of the figure.
    pub warm_up: usize,
    /// Requests timed.
    pub requests: usize,
}

/// How long a run's timed requests took.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    /// Requests timed.
    pub requests: usize,
    /// From the first timed request sent to the last answer read.
    pub elapsed: Duration,
}

impl Timing {
    /// Requests answered per second.
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// Mean microseconds per request.
    pub fn micros_per_request(&self) -> f64 {
        self.elapsed.as_secs_f64() * 1e6 / self.requests as f64
    }
}

impl<'a> TimedRequests<'a> {
    /// `warm_up` requests, then `requests` timed, each answered `200`.
    pub fn new(
        path: &'a str,
        header_sets: &'a [Vec<(&'a str, &'a str)>],
        warm_up: usize,
        requests: usize,
    ) -> Self {
        TimedRequests {
            path,
            header_sets,
            expected_status: 200,
            warm_up,
            requests,
        }
    }

    /// Opens a connection to `envoy`'s HTTP listener, sends the warm-up, then times the
    /// requests. Fails on an empty `header_sets`, a connection error, or the first answer
    /// whose status is not `expected_status` (naming the phase and the request).
    pub fn run(&self, envoy: &Envoy) -> Result<Timing> {
        self.run_after_warm_up(envoy, || Ok(()))
            .map(|(timing, ())| timing)
    }

    /// As [`TimedRequests::run`], calling `at_start` once between the warm-up and the start
    /// of the clock, e.g. to read the counters (CPU time, requests upstream) the run is
    /// measured by; its result comes back with the timing.
    pub fn run_after_warm_up<T>(
        &self,
        envoy: &Envoy,
        at_start: impl FnOnce() -> Result<T>,
    ) -> Result<(Timing, T)> {
        anyhow::ensure!(
            !self.header_sets.is_empty(),
            "header_sets is empty: give at least one set (it may be empty itself)"
        );
        let mut conn = KeepAlive::open(envoy.url().trim_start_matches("http://"))?;
        self.send(&mut conn, envoy, "warm-up", self.warm_up)?;
        let counters = at_start()?;
        let started = Instant::now();
        self.send(&mut conn, envoy, "timed run", self.requests)?;
        let timing = Timing {
            requests: self.requests,
            elapsed: started.elapsed(),
        };
        Ok((timing, counters))
    }

    /// Sends `count` requests, checking each answer's status.
    fn send(&self, conn: &mut KeepAlive, envoy: &Envoy, phase: &str, count: usize) -> Result<()> {
        for (at, headers) in self.header_sets.iter().cycle().take(count).enumerate() {
            let status = conn
                .get(self.path, headers)
                .with_context(|| format!("{phase}, request {at} of {count}"))?;
            anyhow::ensure!(
                status == self.expected_status,
                "{phase}, request {at} of {count} to {}: status {status}, expected {}; Envoy log:\n{}",
                self.path,
                self.expected_status,
                envoy.log()
            );
        }
        Ok(())
    }
}
