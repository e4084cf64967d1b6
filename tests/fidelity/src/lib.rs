//! The fidelity suite: the same proxy-wasm scenario in weir-runtime and in a real Envoy,
//! outcomes compared field by field with each other and with the scenario's expectation.
//!
//! A scenario (`scenarios/*.json`, format in the crate README and [`Scenario`]) names a
//! plugin, its configuration and environment, canned responses for the upstream and for
//! callout clusters, one HTTP request or TCP exchange, and the expected [`Observed`]
//! outcome. [`check`] runs it on both engines:
//!
//! ```no_run
//! # fn main() -> anyhow::Result<()> {
//! let report = weir_fidelity_tests::check("scenarios/exerciser_callout_allows.json")?;
//! assert_eq!(report.runtime, report.envoy);
//! # Ok(()) }
//! ```
//!
//! Both engines run the same `.wasm` file, built once per process. Their raw observations
//! pass through the same normalizations ([`observed::normalize_headers`], the metric
//! prefix), which remove only what Envoy does on its own and no plugin controls.

#![warn(missing_docs)]

pub mod grpc;
pub mod h2;
pub mod observed;
mod on_envoy;
mod on_runtime;
pub mod scenario;
mod tcp_upstream;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

pub use observed::Observed;
pub use scenario::Scenario;

/// Both engines' outcomes of one scenario that agreed with each other and with the
/// expectation, and how long each took.
#[derive(Debug)]
pub struct Report {
    /// What weir-runtime showed.
    pub runtime: Observed,
    /// What Envoy showed.
    pub envoy: Observed,
    /// Wall time in weir-runtime (load, start, run).
    pub runtime_time: Duration,
    /// Wall time in Envoy (servers, start-up, run).
    pub envoy_time: Duration,
}

/// The directory holding the scenario files.
pub fn scenario_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios")
}

/// Runs the scenario at `path` (relative paths are under the crate) on both engines at
/// once. Fails, listing every difference, if either engine disagrees with the
/// expectation or with the other, or lacks an expected log text.
pub fn check(path: impl AsRef<Path>) -> Result<Report> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path.as_ref());
    let scenario = Scenario::load(&path)?;
    let wasm = scenario
        .plugin
        .wasm()
        .with_context(|| format!("preparing {}", scenario.plugin.name()))?;
    let timed = |f: &dyn Fn() -> Result<Observed>| {
        let started = Instant::now();
        f().map(|observed| (observed, started.elapsed()))
    };
    let (runtime, envoy) = std::thread::scope(|s| {
        let envoy = s.spawn(|| timed(&|| on_envoy::run(&scenario, &wasm)));
        let runtime = timed(&|| on_runtime::run(&scenario, &wasm));
        (
            runtime,
            envoy
                .join()
                .unwrap_or_else(|_| Err(anyhow::anyhow!("the Envoy runner panicked"))),
        )
    });
    let (runtime, runtime_time) = runtime.context("running the scenario in weir-runtime")?;
    let (envoy, envoy_time) = envoy.context("running the scenario in Envoy")?;

    let expect = &scenario.expect;
    let mut problems = Vec::new();
    let mut compare = |title: &str, lines: Vec<String>| {
        if !lines.is_empty() {
            problems.push(format!("{title}:\n  {}", lines.join("\n  ")));
        }
    };
    let mut gaps_seen = std::collections::BTreeSet::new();
    let mut without_gaps = |lines: Vec<String>| -> Vec<String> {
        lines
            .into_iter()
            .filter(|line| {
                match scenario
                    .runtime_gaps
                    .keys()
                    .find(|gap| line.starts_with(&format!("{gap}:")))
                {
                    Some(gap) => {
                        eprintln!(
                            "known weir-runtime gap ({}): {line}",
                            scenario.runtime_gaps[gap]
                        );
                        gaps_seen.insert(gap.clone());
                        false
                    }
                    None => true,
                }
            })
            .collect()
    };
    let runtime_vs_expected = without_gaps(observed::diff("expected", expect, "runtime", &runtime));
    let engines = without_gaps(observed::diff("runtime", &runtime, "envoy", &envoy));
    compare(
        "weir-runtime differs from the expectation",
        runtime_vs_expected,
    );
    compare(
        "Envoy differs from the expectation",
        observed::diff("expected", expect, "envoy", &envoy),
    );
    compare("the engines differ", engines);
    let fixed: Vec<&String> = scenario
        .runtime_gaps
        .keys()
        .filter(|gap| !gaps_seen.contains(*gap))
        .collect();
    compare(
        "runtime gaps that no longer show (remove them from the scenario)",
        fixed.iter().map(|g| g.to_string()).collect(),
    );
    for (engine, seen) in [("weir-runtime", &runtime), ("Envoy", &envoy)] {
        let missing = observed::missing_logs(expect, &seen.logs);
        if !missing.is_empty() {
            problems.push(format!(
                "{engine}'s log lacks {missing:?}; it has:\n    {}",
                seen.logs.join("\n    ")
            ));
        }
    }
    if !problems.is_empty() {
        bail!(
            "scenario {} ({}) failed:\n{}",
            path.display(),
            scenario.description,
            problems.join("\n")
        );
    }
    Ok(Report {
        runtime,
        envoy,
        runtime_time,
        envoy_time,
    })
}

/// The headers of `cluster`'s callout that the expectation lists, read with `get`.
fn selected_headers(
    expect: &Observed,
    cluster: &str,
    get: impl Fn(&str) -> Option<String>,
) -> BTreeMap<String, Option<String>> {
    expect
        .callouts
        .iter()
        .find(|call| call.cluster == cluster)
        .map(|call| {
            call.headers
                .keys()
                .map(|name| (name.clone(), get(name)))
                .collect()
        })
        .unwrap_or_default()
}
