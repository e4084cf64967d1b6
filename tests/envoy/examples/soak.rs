//! `make soak`: seed 000's chain (the one `make demo` walks: openid-connect → jwt_authn →
//! acl-check → check-header, with the real oidc-provider and policy server) under load in a
//! real Envoy 1.40, while the policy server is restarted and the OpenID Provider is stopped
//! and started again.
//!
//! A few browser sessions sign in through the provider first; each then sends the page
//! request over its own keep-alive connection at a fixed pace (bounded in time and count,
//! 127.0.0.1 only). At the end it prints requests by status, each fault's fail-closed
//! answers and time to recover, Envoy's memory at the start (after warm-up) and end, and
//! any wasm trap or panic in Envoy's log, and exits non-zero on any violation:
//! - a status other than 200 anywhere, except the documented fail-closed one of the
//!   dependency that is down (acl-check's `status_on_error` for the policy server;
//!   openid-connect's 503 + `Retry-After` for the provider), during its outage and a
//!   stated grace after it is back; a request that gets no answer at all;
//! - no 200 after a dependency is back, or no new sign-in within 10 s of the provider's return;
//! - Envoy's resident memory growing by 10 % or more between warm-up and the end;
//! - a trap or panic line in Envoy's log.
//!
//! ```text
//! cargo run -q -p weir-envoy-tests --example soak -- [--seconds 60] [--workers 4] [--rate 50]
//!     [--policy-down S --policy-up S] [--provider-down S --provider-up S] [--grace S]
//! ```
//! Fault times are seconds from the start of the load; by default they are fractions of
//! `--seconds` (policy server down at 25 %, back at 35 %; provider down at 55 %, back at
//! 75 %), so `--seconds 16` (`make test`) and 60 (`make soak`) keep the same shape.

#[allow(dead_code)] // the demo and the benches use the rest
mod seed_chain;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use seed_chain::{SeedChain, ACL_STATUS_ON_ERROR};
use weir_envoy_tests::{judge, Envoy, Fault, Load, Verdict};

/// What openid-connect answers when it needs the provider and cannot reach it (its
/// README: 503 with `Retry-After`).
const PROVIDER_DOWN_STATUS: u16 = 503;
/// The body the upstream serves; a 200 with anything else did not come from it.
const PAGE_BODY: &str = "the quarterly report\n";
/// Envoy's memory may grow less than this between warm-up and the end.
const RSS_GROWTH_LIMIT: f64 = 0.10;
/// How long a new sign-in may take to work again once the provider is back.
const SIGN_IN_DEADLINE: Duration = Duration::from_secs(10);

/// The run's shape, from the command line.
#[derive(Debug, Clone, Copy)]
struct Plan {
    seconds: f64,
    workers: usize,
    rate: u32,
    warm_up: f64,
    policy: (f64, f64),
    provider: (f64, f64),
    grace: f64,
}

impl Plan {
    fn from_args() -> Result<Plan> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let value = |name: &str| -> Result<Option<f64>> {
            let Some(i) = args.iter().position(|a| a == name) else {
                return Ok(None);
            };
            let text = args
                .get(i + 1)
                .with_context(|| format!("{name} needs a value"))?;
            let number: f64 = text
                .parse()
                .with_context(|| format!("{name} {text:?} is not a number"))?;
            ensure!(
                number.is_finite() && number >= 0.0,
                "{name} must be a non-negative number, got {text}"
            );
            Ok(Some(number))
        };
        for arg in args.iter().step_by(2) {
            let known = [
                "--seconds",
                "--workers",
                "--rate",
                "--policy-down",
                "--policy-up",
                "--provider-down",
                "--provider-up",
                "--grace",
            ];
            ensure!(
                known.contains(&arg.as_str()),
                "unknown argument {arg:?}; known: {}",
                known.join(" ")
            );
        }
        let seconds = value("--seconds")?.unwrap_or(60.0);
        ensure!(
            (8.0..=3600.0).contains(&seconds),
            "--seconds must be 8..3600"
        );
        let at = |name: &str, fraction: f64| -> Result<f64> {
            Ok(value(name)?.unwrap_or(seconds * fraction))
        };
        let plan = Plan {
            seconds,
            workers: value("--workers")?.unwrap_or(4.0) as usize,
            rate: value("--rate")?.unwrap_or(50.0) as u32,
            warm_up: (seconds * 0.15).max(2.0),
            policy: (at("--policy-down", 0.25)?, at("--policy-up", 0.35)?),
            provider: (at("--provider-down", 0.55)?, at("--provider-up", 0.75)?),
            grace: value("--grace")?.unwrap_or(2.0),
        };
        ensure!((1..=16).contains(&plan.workers), "--workers must be 1..16");
        ensure!(
            (1..=500).contains(&plan.rate),
            "--rate (requests per second per worker) must be 1..500"
        );
        let times = [
            plan.warm_up,
            plan.policy.0,
            plan.policy.1,
            plan.provider.0,
            plan.provider.1,
            seconds - 1.0,
        ];
        ensure!(
            times.windows(2).all(|w| w[0] < w[1]),
            "the schedule must run warm-up < policy down < up < provider down < up < end - 1 s: {times:?}"
        );
        Ok(plan)
    }
}

/// When things happened, on the load's clock.
#[derive(Debug, Default)]
struct Timeline {
    events: Vec<(Duration, String)>,
    rss_start: u64,
    rss_end: u64,
    rss_peak: u64,
    policy: (Duration, Duration),
    provider: (Duration, Duration),
    /// Time from the provider's return to a new browser signed in, and the attempts it took.
    sign_in: Option<(Duration, usize)>,
}

fn main() -> Result<ExitCode> {
    let plan = Plan::from_args()?;
    let mut chain = SeedChain::start()?;
    println!(
        "make soak: seed 000's chain in Envoy 1.40 for {:.0} s, {} signed-in browser sessions × {} requests/s, keep-alive",
        plan.seconds, plan.workers, plan.rate
    );
    let before = connections_and_requests(&chain.envoy)?;
    let url = chain.page_url();
    let workers = (0..plan.workers)
        .map(|_| {
            let mut browser = chain.signed_in_browser("alice")?;
            let url = url.clone();
            Ok(move || -> Result<u16> {
                let page = browser.get(&url)?;
                if page.status == 200 && page.body != PAGE_BODY.as_bytes() {
                    bail!(
                        "200 with a body the upstream did not send: {:?}",
                        page.text()
                    );
                }
                if page.status == PROVIDER_DOWN_STATUS && page.headers.get("retry-after").is_none()
                {
                    bail!("503 without Retry-After");
                }
                Ok(page.status)
            })
        })
        .collect::<Result<Vec<_>>>()
        .context("signing in the browser sessions")?;

    let clock = Instant::now();
    let load = Load {
        until: Duration::from_secs_f64(plan.seconds),
        rate_per_worker: plan.rate,
        max_requests: (plan.seconds * f64::from(plan.rate) * plan.workers as f64).ceil() as usize,
    };
    let (samples, timeline) = std::thread::scope(|scope| -> Result<_> {
        let running = scope.spawn(|| load.run(clock, workers));
        let timeline = run_faults(&mut chain, &plan, clock);
        let samples = running
            .join()
            .map_err(|_| anyhow::anyhow!("the load thread panicked"))?;
        Ok((samples, timeline?))
    })?;
    let after = connections_and_requests(&chain.envoy)?;

    let grace = Duration::from_secs_f64(plan.grace);
    let faults = [
        Fault {
            name: "policy server".into(),
            down: timeline.policy.0,
            up: timeline.policy.1,
            fail_closed: vec![ACL_STATUS_ON_ERROR],
        },
        Fault {
            name: "OpenID Provider".into(),
            down: timeline.provider.0,
            up: timeline.provider.1,
            fail_closed: vec![PROVIDER_DOWN_STATUS],
        },
    ];
    let mut verdict = judge(&samples, &faults, grace);
    let growth = timeline.rss_end as f64 / timeline.rss_start.max(1) as f64 - 1.0;
    if growth >= RSS_GROWTH_LIMIT {
        verdict.violations.push((
            format!(
                "Envoy's RSS grew {:.1} % (limit {:.0} %)",
                growth * 100.0,
                RSS_GROWTH_LIMIT * 100.0
            ),
            1,
        ));
    }
    if timeline.sign_in.is_none() {
        verdict.violations.push((
            format!("no new sign-in within {SIGN_IN_DEADLINE:?} of the provider's return"),
            1,
        ));
    }
    let failures = chain.envoy.wasm_failures();
    for line in &failures {
        verdict.violations.push((format!("Envoy log: {line}"), 1));
    }
    let connections = (after.0 - before.0, after.1 - before.1);
    print_summary(
        &plan,
        &timeline,
        &verdict,
        samples.len(),
        growth,
        failures.len(),
        connections,
    );
    if verdict.passed() {
        println!("\nsoak passed");
        Ok(ExitCode::SUCCESS)
    } else {
        println!("\nsoak FAILED");
        eprintln!(
            "policy server log (tail):\n{}",
            tail(&chain.policy.log(), 20)
        );
        eprintln!("provider log (tail):\n{}", tail(&chain.idp.log(), 20));
        eprintln!("Envoy log (tail):\n{}", tail(&chain.envoy.log(), 40));
        Ok(ExitCode::FAILURE)
    }
}

/// Stops and restarts the dependencies on schedule while the load runs, and reads Envoy's
/// memory after warm-up, every second, and at the end.
fn run_faults(chain: &mut SeedChain, plan: &Plan, clock: Instant) -> Result<Timeline> {
    let mut run = Schedule {
        chain,
        clock,
        timeline: Timeline::default(),
    };
    run.note(format!("load starts: {} signed-in sessions", plan.workers));
    run.wait_until(plan.warm_up)?;
    run.timeline.rss_start = run.chain.envoy.rss_kib()?;
    run.timeline.rss_peak = run.timeline.rss_start;
    run.note(format!(
        "warm-up over: Envoy RSS {}",
        mib(run.timeline.rss_start)
    ));

    run.timeline.policy = run.outage(
        "policy server",
        plan.policy,
        |chain| chain.policy.stop(),
        |chain| {
            chain.policy.start_again()?;
            Ok(format!("on {} (same signing key)", chain.policy.addr))
        },
    )?;
    run.timeline.provider = run.outage(
        "OpenID Provider",
        plan.provider,
        |chain| chain.idp.stop(),
        |chain| {
            chain.idp.start_again()?;
            Ok(format!(
                "on port {} (same keys and clients)",
                chain.idp.port()
            ))
        },
    )?;
    run.timeline.sign_in = sign_in_again(run.chain)?;
    if let Some((took, attempts)) = run.timeline.sign_in {
        run.note(format!(
            "a new browser signed in ({} after the provider's return, {attempts} attempt(s))",
            ms(took)
        ));
    }

    run.wait_until(plan.seconds)?;
    run.timeline.rss_end = run.chain.envoy.rss_kib()?;
    run.timeline.rss_peak = run.timeline.rss_peak.max(run.timeline.rss_end);
    run.note(format!(
        "load ends: Envoy RSS {}",
        mib(run.timeline.rss_end)
    ));
    Ok(run.timeline)
}

/// The chain and the timeline while the faults are caused, on the load's clock.
struct Schedule<'a> {
    chain: &'a mut SeedChain,
    clock: Instant,
    timeline: Timeline,
}

impl Schedule<'_> {
    /// Sleeps until `at` seconds, reading Envoy's memory every second once warm-up is over.
    fn wait_until(&mut self, at: f64) -> Result<()> {
        let at = Duration::from_secs_f64(at);
        while self.clock.elapsed() < at {
            std::thread::sleep((at - self.clock.elapsed()).min(Duration::from_secs(1)));
            if self.timeline.rss_start > 0 {
                self.timeline.rss_peak = self.timeline.rss_peak.max(self.chain.envoy.rss_kib()?);
            }
        }
        Ok(())
    }

    fn note(&mut self, what: String) -> Duration {
        let at = self.clock.elapsed();
        self.timeline.events.push((at, what));
        at
    }

    /// Stops a dependency at `window.0` and starts it again at `window.1`; returns when it
    /// was down (from the moment the kill is sent: requests in flight then may fail closed)
    /// and when it was back (its restart returned).
    fn outage(
        &mut self,
        name: &str,
        window: (f64, f64),
        stop: fn(&mut SeedChain),
        start: fn(&mut SeedChain) -> Result<String>,
    ) -> Result<(Duration, Duration)> {
        self.wait_until(window.0)?;
        let down = self.note(format!("{name} stopped (killed)"));
        stop(self.chain);
        self.wait_until(window.1)?;
        let back = start(self.chain)?;
        let up = self.note(format!("{name} back {back}"));
        Ok((down, up))
    }
}

/// A new browser signing in through the restarted provider and the chain, retried until it
/// works or [`SIGN_IN_DEADLINE`] passes: the time it took and the attempts.
fn sign_in_again(chain: &SeedChain) -> Result<Option<(Duration, usize)>> {
    let started = Instant::now();
    for attempt in 1.. {
        match chain.signed_in_browser("alice") {
            Ok(_) => return Ok(Some((started.elapsed(), attempt))),
            Err(e) if started.elapsed() > SIGN_IN_DEADLINE => {
                eprintln!("the last sign-in attempt after the provider's return failed: {e:#}");
                return Ok(None);
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
    unreachable!("the attempts are unbounded")
}

/// Envoy's count of accepted connections and of requests on its HTTP listener.
fn connections_and_requests(envoy: &Envoy) -> Result<(u64, u64)> {
    let stat = |name: &str| -> Result<u64> {
        envoy
            .stat(name)?
            .with_context(|| format!("Envoy has no stat {name}"))
    };
    Ok((
        stat("http.http.downstream_cx_total")?,
        stat("http.http.downstream_rq_total")?,
    ))
}

fn print_summary(
    plan: &Plan,
    timeline: &Timeline,
    verdict: &Verdict,
    sent: usize,
    growth: f64,
    traps: usize,
    connections: (u64, u64),
) {
    println!("\n  time     event");
    for (at, what) in &timeline.events {
        println!("  {:6.2} s  {what}", at.as_secs_f64());
    }
    println!("\n  requests by status ({sent} sent by the load)");
    for (status, count) in &verdict.by_status {
        println!("  {status:>6}  {count:>7}");
    }
    println!("\n  dependency        down (s)        fail-closed answers   recovery (first 200 after it is back)");
    for outcome in &verdict.faults {
        let (down, up) = if outcome.name == "policy server" {
            timeline.policy
        } else {
            timeline.provider
        };
        let closed = if outcome.fail_closed.is_empty() {
            "none".to_owned()
        } else {
            outcome
                .fail_closed
                .iter()
                .map(|(s, n)| format!("{s} × {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let recovery = outcome.recovery.map_or("never".to_owned(), ms);
        println!(
            "  {:<16}  {:5.2}–{:5.2}   {closed:<20}  {recovery}",
            outcome.name,
            down.as_secs_f64(),
            up.as_secs_f64()
        );
    }
    println!(
        "  (fail-closed answers are allowed while a dependency is down and {:.1} s after: acl-check's status_on_error {ACL_STATUS_ON_ERROR} for the policy server, openid-connect's {PROVIDER_DOWN_STATUS} + Retry-After for the provider)",
        plan.grace
    );
    let sign_in = timeline
        .sign_in
        .map_or("none within 10 s".to_owned(), |(t, n)| {
            format!("{} ({n} attempt(s))", ms(t))
        });
    println!("  new sign-in after the provider's return: {sign_in}");
    println!(
        "\n  Envoy RSS   start {}   end {}   peak {}   growth {:+} KiB, {:+.2} % (limit {:.0} %)",
        mib(timeline.rss_start),
        mib(timeline.rss_end),
        mib(timeline.rss_peak),
        timeline.rss_end as i64 - timeline.rss_start as i64,
        growth * 100.0,
        RSS_GROWTH_LIMIT * 100.0
    );
    println!("  Envoy log   wasm traps and panics: {traps}");
    println!(
        "  Envoy saw   {} requests on {} connections (the sign-ins' included)",
        connections.1, connections.0
    );
    if !verdict.violations.is_empty() {
        println!("\n  violations");
        for (what, count) in &verdict.violations {
            println!("  {count:>7} × {what}");
        }
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
