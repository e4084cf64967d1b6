//! `make bench`: steady-state requests of a signed-in browser through seed 000's chain (the
//! `make demo` set-up: openid-connect → jwt_authn → acl-check with the policy server →
//! check-header → upstream) against the same Envoy with no filters, in front of the same
//! upstream. One client sends `REQUESTS` requests with the session cookie, one after another
//! on one keep-alive connection, after a warm-up; `ROUNDS` interleaved rounds, medians.
//!
//! acl-check asks the policy server on every request, so every request also carries a
//! fresh grant for check-header to verify: this is the fresh-grant case.

#[allow(dead_code)] // the demo uses all of it
mod seed_chain;

use std::time::Instant;

use anyhow::{ensure, Result};
use seed_chain::SeedChain;
use weir_envoy_tests::{Envoy, KeepAlive};

const REQUESTS: usize = 1_000;
const WARM_UP: usize = 50;
const ROUNDS: usize = 3;

fn main() -> Result<()> {
    let chain = SeedChain::start()?;
    let bare = Envoy::builder().upstream(chain.upstream.addr()).start()?;
    let cookie = sign_in(&chain)?;
    let headers = [("accept", "text/html"), ("cookie", cookie.as_str())];
    let rate = |envoy: &Envoy| -> Result<f64> {
        let mut conn = KeepAlive::open(envoy.url().trim_start_matches("http://"))?;
        for _ in 0..WARM_UP {
            let status = conn.get(seed_chain::PAGE, &headers)?;
            ensure!(status == 200, "warm-up answered {status}; Envoy log:\n{}", envoy.log());
        }
        let seen = chain.upstream.requests().len();
        let started = Instant::now();
        for _ in 0..REQUESTS {
            let status = conn.get(seed_chain::PAGE, &headers)?;
            ensure!(status == 200, "status {status} during the run");
        }
        let rate = REQUESTS as f64 / started.elapsed().as_secs_f64();
        let reached = chain.upstream.requests().len() - seen;
        ensure!(reached == REQUESTS, "{reached} of {REQUESTS} requests reached the upstream");
        Ok(rate)
    };
    let (mut through_chain, mut no_filters) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        through_chain.push(rate(&chain.envoy)?);
        no_filters.push(rate(&bare)?);
    }
    let (chain_rate, bare_rate) = (median(through_chain), median(no_filters));
    println!(
        "seed 000's chain vs the same Envoy with no filters (Envoy 1.40, one keep-alive connection, signed-in browser)"
    );
    println!("{REQUESTS} sequential requests per run, {ROUNDS} interleaved rounds, medians:");
    println!("  chain (openid-connect, jwt_authn, acl-check + policy server, check-header)  {chain_rate:>7.0} req/s");
    println!("  no filters                                                               {bare_rate:>7.0} req/s");
    println!("  ratio chain / no filters = {:.3}", chain_rate / bare_rate);
    Ok(())
}

/// Signs alice in through the chain and returns the session's `cookie` header.
fn sign_in(chain: &SeedChain) -> Result<String> {
    let browser = chain.signed_in_browser("alice")?;
    // The session is in openid-connect's __Host- cookies; the provider's own stay out.
    let session_cookies = browser.cookies().iter().filter(|c| c.name.starts_with("__Host-"));
    let cookies: Vec<String> = session_cookies.map(|c| format!("{}={}", c.name, c.value)).collect();
    ensure!(!cookies.is_empty(), "no session cookie after signing in");
    Ok(cookies.join("; "))
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}
