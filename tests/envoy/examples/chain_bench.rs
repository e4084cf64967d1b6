//! `make bench`: steady-state requests of a signed-in browser through seed 000's chain (the
//! `make demo` set-up: openid-connect → jwt_authn → acl-check with the policy server →
//! check-header → upstream), through the same job built from Envoy's own filters
//! (`seed_chain::native`: oauth2 → jwt_authn → ext_authz with the same policy server →
//! jwt_authn), and through the same Envoy with no filters, in front of the same kind of
//! upstream. The policy server is built with `--release` for both chains.
//!
//! One client sends `REQUESTS` requests with the session cookies, one after another on one
//! keep-alive connection, after a warm-up; `ROUNDS` interleaved rounds, medians. Every
//! answer must be 200 and every request must reach the upstream.
//!
//! What each side caches: openid-connect keeps the session in its cookie and keeps the
//! sessions it opened; the oauth2 filter checks its cookie's HMAC (and decrypts its tokens)
//! on every request; both `jwt_authn`s cache verified tokens (`jwt_cache_config`), so the ID
//! token is verified once. ext_authz asks the policy server on every request, and each
//! answer is a new grant (new `jti`) that the grant's `jwt_authn` verifies afresh. Weir's
//! chain runs twice: as the demo has it (acl-check asks on every request, check-header
//! verifies each fresh grant and takes it once: every request carries a fresh grant), and
//! with acl-check's decision cache on (`decision_cache_seconds`, the policy server's
//! `reuse_seconds`, check-header's `single_use_grants` off: the grant is reused and
//! check-header answers it from its verified-grant cache), the steady state where each side
//! caches what it can.

#[allow(dead_code)] // the demo and the tests use the rest
mod seed_chain;

use anyhow::{ensure, Context, Result};
use seed_chain::native::{NativeChain, SESSION_COOKIES};
use seed_chain::{Decisions, PolicyBuild, SeedChain, PAGE};
use weir_envoy_tests::{EchoUpstream, Envoy, TimedRequests};
use weir_idp_tests::Browser;

const REQUESTS: usize = 1_000;
const WARM_UP: usize = 50;
const ROUNDS: usize = 5;

/// One Envoy under test, with what it needs to be measured.
struct Target<'a> {
    name: &'static str,
    envoy: &'a Envoy,
    upstream: &'a EchoUpstream,
    cookie: String,
    /// The policy server's process, whose CPU time is counted too.
    policy_pid: Option<u32>,
}

/// One run's figures.
#[derive(Default, Clone, Copy)]
struct Run {
    rate: f64,
    /// CPU milliseconds per request: Envoy's, and the policy server's.
    envoy_cpu: f64,
    policy_cpu: f64,
}

fn main() -> Result<()> {
    let weir = SeedChain::start_with(PolicyBuild::Release, Decisions::AskEveryTime)?;
    let weir_cached = SeedChain::start_with(PolicyBuild::Release, Decisions::Cached)?;
    let native = NativeChain::start(PolicyBuild::Release)?;
    let bare = Envoy::builder().upstream(weir.upstream.addr()).start()?;
    let native_browser = seed_chain::signed_in_browser(&native.envoy, "alice")?;
    let native_cookie = session_cookie(&native_browser, |name| SESSION_COOKIES.contains(&name))?;
    let targets = [
        weir_target("Weir chain, asking every time", &weir)?,
        weir_target("Weir chain, decision cache", &weir_cached)?,
        Target {
            name: "native chain",
            envoy: &native.envoy,
            upstream: &native.upstream,
            cookie: native_cookie,
            policy_pid: Some(native.policy.pid()),
        },
        Target {
            name: "no filters",
            envoy: &bare,
            upstream: &weir.upstream,
            cookie: String::new(),
            policy_pid: None,
        },
    ];
    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); targets.len()];
    for _ in 0..ROUNDS {
        for (target, runs) in targets.iter().zip(&mut runs) {
            runs.push(run(target)?);
        }
    }
    let medians: Vec<Run> = runs.into_iter().map(median).collect();
    let rate = |i: usize| medians[i].rate;
    let (fresh, cached, native_rate, bare_rate) = (rate(0), rate(1), rate(2), rate(3));

    println!("seed 000's job in Envoy 1.40 (--concurrency 1): Weir's chain, Envoy's native filters, no filters");
    println!("signed-in browser, {REQUESTS} sequential requests on one keep-alive connection per run, {ROUNDS} interleaved rounds, medians;");
    println!("policy server built with --release, EdDSA grants; the native chain asks it on every request:");
    for (target, run) in targets.iter().zip(&medians) {
        println!(
            "  {:<31} {:>7.0} req/s   CPU per request: Envoy {:.2} ms, policy server {:.2} ms",
            target.name, run.rate, run.envoy_cpu, run.policy_cpu
        );
    }
    println!("  steady state (each side caches what it can): Weir chain / native chain = {:.3}  (target >= 0.85)", cached / native_rate);
    println!("  every request a fresh grant:                 Weir chain / native chain = {:.3}  (target >= 0.85)", fresh / native_rate);
    println!("  / no filters: Weir chain with decision cache {:.3}, asking every time {:.3}, native chain {:.3}", cached / bare_rate, fresh / bare_rate, native_rate / bare_rate);
    Ok(())
}

/// Weir's `chain` with alice signed in (openid-connect's `__Host-` session cookies).
fn weir_target<'a>(name: &'static str, chain: &'a SeedChain) -> Result<Target<'a>> {
    let cookie = session_cookie(&chain.signed_in_browser("alice")?, |name| {
        name.starts_with("__Host-")
    })?;
    Ok(Target {
        name,
        envoy: &chain.envoy,
        upstream: &chain.upstream,
        cookie,
        policy_pid: Some(chain.policy.pid()),
    })
}

/// The `cookie` header of a signed-in browser's session: its cookies `keep` selects (the
/// provider's own cookies, on the same host, stay out).
fn session_cookie(browser: &Browser, keep: impl Fn(&str) -> bool) -> Result<String> {
    let cookies: Vec<String> = browser
        .cookies()
        .iter()
        .filter(|c| keep(&c.name))
        .map(|c| format!("{}={}", c.name, c.value))
        .collect();
    ensure!(!cookies.is_empty(), "no session cookie after signing in");
    Ok(cookies.join("; "))
}

/// One measured run through `target`, after a warm-up; every answer must be 200 and reach
/// the upstream.
fn run(target: &Target) -> Result<Run> {
    let mut headers = vec![("accept", "text/html")];
    if !target.cookie.is_empty() {
        headers.push(("cookie", target.cookie.as_str()));
    }
    let header_sets = [headers];
    let (timing, (seen, envoy_before, policy_before)) =
        TimedRequests::new(PAGE, &header_sets, WARM_UP, REQUESTS)
            .run_after_warm_up(target.envoy, || {
                Ok((
                    target.upstream.requests().len(),
                    cpu_ms(target.envoy.pid())?,
                    target.policy_pid.map(cpu_ms).transpose()?,
                ))
            })
            .with_context(|| target.name)?;
    let reached = target.upstream.requests().len() - seen;
    ensure!(
        reached == REQUESTS,
        "{}: {reached} of {REQUESTS} requests reached the upstream",
        target.name
    );
    let per_request = |before: f64, after: f64| (after - before) / REQUESTS as f64;
    let envoy_cpu = per_request(envoy_before, cpu_ms(target.envoy.pid())?);
    let policy_cpu = match (target.policy_pid, policy_before) {
        (Some(pid), Some(before)) => per_request(before, cpu_ms(pid)?),
        _ => 0.0,
    };
    Ok(Run {
        rate: timing.per_second(),
        envoy_cpu,
        policy_cpu,
    })
}

/// User plus system CPU time of process `pid` so far, in milliseconds (Linux `/proc`,
/// clock ticks of 10 ms).
fn cpu_ms(pid: u32) -> Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .context("malformed /proc stat")?
        .1
        .split(' ')
        .collect();
    let ticks = |i: usize| -> Result<f64> {
        Ok(fields.get(i).context("short /proc stat")?.parse::<f64>()?)
    };
    // utime and stime are fields 14 and 15 of the line; the first field after the name is 3.
    Ok((ticks(11)? + ticks(12)?) * 10.0)
}

/// The run with the median rate (its CPU figures come with it).
fn median(mut runs: Vec<Run>) -> Run {
    runs.sort_by(|a, b| a.rate.total_cmp(&b.rate));
    runs[runs.len() / 2]
}
