//! A bounded, paced load: a few workers, each sending one request at a time over its own
//! client (and so its own keep-alive connection), for a fixed time and at most a fixed
//! number of requests. Every request is recorded with when it started and ended, so a
//! soak can line the outcomes up with the faults it caused; see [`crate::judge`].

use std::time::{Duration, Instant};

/// How much load, for how long.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    /// Sending stops once this much time has passed since the clock given to [`Load::run`].
    pub until: Duration,
    /// Requests per second each worker sends at most (it waits when it is ahead).
    pub rate_per_worker: u32,
    /// Requests in all, across workers; sending stops when they are used up.
    pub max_requests: usize,
}

/// One request's outcome, timed from the load's clock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Which worker sent it.
    pub worker: usize,
    /// When it was sent.
    pub start: Duration,
    /// When the answer (or the error) came.
    pub end: Duration,
    /// The status, or what went wrong instead of a status.
    pub outcome: Result<u16, String>,
}

impl Load {
    /// Runs one thread per worker, each calling its function (one request, returning the
    /// status or an error) in a loop, and returns every sample ordered by start time.
    /// `clock` is time zero of the samples, shared with whatever runs beside the load.
    pub fn run<F>(&self, clock: Instant, workers: Vec<F>) -> Vec<Sample>
    where
        F: FnMut() -> anyhow::Result<u16> + Send,
    {
        let count = workers.len().max(1);
        let per_worker = self.max_requests.div_ceil(count);
        let interval = Duration::from_secs_f64(1.0 / f64::from(self.rate_per_worker.max(1)));
        let mut samples: Vec<Sample> = std::thread::scope(|scope| {
            let threads: Vec<_> = workers
                .into_iter()
                .enumerate()
                .map(|(worker, mut send)| {
                    scope.spawn(move || {
                        let mut mine = Vec::new();
                        let mut next = clock.elapsed();
                        while mine.len() < per_worker {
                            if let Some(wait) = next.checked_sub(clock.elapsed()) {
                                std::thread::sleep(wait);
                            }
                            let start = clock.elapsed();
                            if start >= self.until {
                                break;
                            }
                            let outcome = send().map_err(|e| format!("{e:#}"));
                            mine.push(Sample {
                                worker,
                                start,
                                end: clock.elapsed(),
                                outcome,
                            });
                            // Paced from the schedule, not from the answer, so a slow answer
                            // is caught up on (never beyond the rate's burst of one).
                            next = (next + interval).max(start);
                        }
                        mine
                    })
                })
                .collect();
            threads
                .into_iter()
                .flat_map(|t| t.join().unwrap_or_default())
                .collect()
        });
        samples.sort_by_key(|s| s.start);
        samples
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_at_the_request_budget_and_keeps_the_pace() {
        let load = Load {
            until: Duration::from_secs(30),
            rate_per_worker: 100,
            max_requests: 20,
        };
        let clock = Instant::now();
        let samples = load.run(clock, vec![|| Ok(200), || anyhow::bail!("refused")]);
        assert_eq!(samples.len(), 20);
        assert_eq!(samples.iter().filter(|s| s.outcome == Ok(200)).count(), 10);
        assert!(samples.iter().all(|s| s.worker < 2 && s.start <= s.end));
        assert!(samples.windows(2).all(|w| w[0].start <= w[1].start));
        // 10 requests per worker at 100/s take at least 9 intervals of 10 ms.
        assert!(
            samples.last().map(|s| s.start) >= Some(Duration::from_millis(90)),
            "{samples:?}"
        );
    }

    #[test]
    fn stops_at_the_deadline() {
        let load = Load {
            until: Duration::from_millis(100),
            rate_per_worker: 1000,
            max_requests: usize::MAX,
        };
        let samples = load.run(Instant::now(), vec![|| Ok(200)]);
        assert!(!samples.is_empty());
        assert!(samples.iter().all(|s| s.start < Duration::from_millis(100)));
        assert!(
            samples.len() <= 101,
            "{} requests in 100 ms at 1000/s",
            samples.len()
        );
    }
}
