//! Judging a soak's samples against the faults caused during it: outside a fault only 200
//! is right; while a dependency is down (and for a stated grace after it is back) the
//! chain may also fail closed with the status its plugin documents for that dependency.
//! Anything else — another status, a status of the wrong fault, a broken connection — is a
//! violation, and so is a fault the chain never recovers from.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::load::Sample;

/// A dependency that was down during the load.
#[derive(Debug, Clone)]
pub struct Fault {
    /// What was down, for the report ("policy server").
    pub name: String,
    /// When it was stopped, on the samples' clock.
    pub down: Duration,
    /// When it was back (its restart returned), on the samples' clock.
    pub up: Duration,
    /// The statuses the chain documents for this dependency being down.
    pub fail_closed: Vec<u16>,
}

/// How one fault went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultOutcome {
    /// The fault's name.
    pub name: String,
    /// Fail-closed answers attributed to it, by status.
    pub fail_closed: BTreeMap<u16, usize>,
    /// From the dependency being back to the end of the first 200 sent after that; `None`
    /// when no 200 followed.
    pub recovery: Option<Duration>,
}

/// The soak's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Every answer by status ("200", "403", …, or "error" for no answer).
    pub by_status: BTreeMap<String, usize>,
    /// One entry per fault, in the order given.
    pub faults: Vec<FaultOutcome>,
    /// What was wrong, grouped: a description and how often it happened.
    pub violations: Vec<(String, usize)>,
}

impl Verdict {
    /// Whether nothing was wrong.
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
    }
}

/// Judges `samples`. A fail-closed status is excused when the request overlaps the fault's
/// window, from `down` to `up + grace` (a request in flight when the dependency stopped, or
/// answered before the proxy noticed it was back).
pub fn judge(samples: &[Sample], faults: &[Fault], grace: Duration) -> Verdict {
    let mut by_status = BTreeMap::new();
    let mut outcomes: Vec<FaultOutcome> = faults
        .iter()
        .map(|f| FaultOutcome {
            name: f.name.clone(),
            fail_closed: BTreeMap::new(),
            recovery: None,
        })
        .collect();
    // Grouped by what went wrong, with the first time it happened.
    let mut violations: BTreeMap<String, (Duration, usize)> = BTreeMap::new();
    let mut violation = |what: String, at: Duration| {
        let entry = violations.entry(what).or_insert((at, 0));
        entry.1 += 1;
    };
    for sample in samples {
        let status = match &sample.outcome {
            Ok(status) => *status,
            Err(error) => {
                *by_status.entry("error".to_owned()).or_insert(0) += 1;
                violation(format!("no answer: {}", first_line(error)), sample.start);
                continue;
            }
        };
        *by_status.entry(status.to_string()).or_insert(0) += 1;
        if status == 200 {
            continue;
        }
        let excused = faults.iter().position(|f| {
            f.fail_closed.contains(&status) && sample.end >= f.down && sample.start <= f.up + grace
        });
        match excused {
            Some(i) => *outcomes[i].fail_closed.entry(status).or_insert(0) += 1,
            None if faults.iter().any(|f| f.fail_closed.contains(&status)) => violation(
                format!("fail-closed {status} outside its fault window (+{grace:?} grace)"),
                sample.start,
            ),
            None => violation(
                format!(
                    "status {status}, which is neither 200 nor a documented fail-closed status"
                ),
                sample.start,
            ),
        }
    }
    for (fault, outcome) in faults.iter().zip(&mut outcomes) {
        outcome.recovery = samples
            .iter()
            .filter(|s| s.outcome == Ok(200) && s.start >= fault.up)
            .map(|s| s.end - fault.up)
            .min();
        if outcome.recovery.is_none() {
            violation(
                format!("no 200 after the {} was back", fault.name),
                fault.up,
            );
        }
    }
    let mut violations: Vec<_> = violations
        .into_iter()
        .map(|(what, (at, n))| (at, what, n))
        .collect();
    violations.sort();
    let violations = violations
        .into_iter()
        .map(|(at, what, n)| (format!("{what} (first at {:.2} s)", at.as_secs_f64()), n))
        .collect();
    Verdict {
        by_status,
        faults: outcomes,
        violations,
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64, status: Result<u16, &str>) -> Sample {
        Sample {
            worker: 0,
            start: Duration::from_millis(ms),
            end: Duration::from_millis(ms + 5),
            outcome: status.map_err(str::to_owned),
        }
    }

    fn policy() -> Fault {
        Fault {
            name: "policy server".into(),
            down: Duration::from_millis(1000),
            up: Duration::from_millis(2000),
            fail_closed: vec![403],
        }
    }

    const GRACE: Duration = Duration::from_millis(500);

    #[test]
    fn fail_closed_inside_the_window_passes_and_recovery_is_measured() {
        let samples = [
            at(900, Ok(200)),
            at(1100, Ok(403)),
            at(2300, Ok(403)),
            at(2400, Ok(200)),
        ];
        let verdict = judge(&samples, &[policy()], GRACE);
        assert!(verdict.passed(), "{verdict:?}");
        assert_eq!(verdict.by_status.get("403"), Some(&2));
        assert_eq!(verdict.faults[0].fail_closed.get(&403), Some(&2));
        assert_eq!(verdict.faults[0].recovery, Some(Duration::from_millis(405)));
    }

    #[test]
    fn fail_closed_after_the_grace_fails() {
        let samples = [at(2600, Ok(403)), at(2700, Ok(200))];
        let verdict = judge(&samples, &[policy()], GRACE);
        assert!(!verdict.passed());
        assert!(
            verdict.violations[0].0.contains("outside its fault window"),
            "{verdict:?}"
        );
    }

    #[test]
    fn another_fault_s_status_or_an_undocumented_one_or_no_answer_fails() {
        let provider = Fault {
            name: "provider".into(),
            fail_closed: vec![503],
            ..policy()
        };
        for sample in [
            at(1100, Ok(503)),
            at(1100, Ok(500)),
            at(1100, Err("connection reset\nmore")),
        ] {
            let verdict = judge(&[sample.clone(), at(2100, Ok(200))], &[policy()], GRACE);
            assert!(!verdict.passed(), "{sample:?} passed");
        }
        let verdict = judge(&[at(1100, Ok(503)), at(2100, Ok(200))], &[provider], GRACE);
        assert!(verdict.passed(), "{verdict:?}");
    }

    #[test]
    fn no_200_after_the_fault_fails() {
        let verdict = judge(&[at(500, Ok(200)), at(1500, Ok(403))], &[policy()], GRACE);
        assert_eq!(verdict.faults[0].recovery, None);
        assert!(
            verdict
                .violations
                .iter()
                .any(|(what, _)| what.contains("no 200 after the policy server")),
            "{verdict:?}"
        );
    }

    #[test]
    fn violations_are_grouped_and_counted() {
        let samples = [at(100, Ok(502)), at(200, Ok(502)), at(2100, Ok(200))];
        let verdict = judge(&samples, &[policy()], GRACE);
        assert_eq!(verdict.violations.len(), 1);
        assert_eq!(verdict.violations[0].1, 2);
        assert!(
            verdict.violations[0].0.contains("first at 0.10 s"),
            "{verdict:?}"
        );
    }
}
