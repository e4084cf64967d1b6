//! `make bench`: the login round trip through seed 000's chain in Envoy 1.40, all local. Each
//! round is a new browser: the request to Envoy, the redirect to oidc-provider, its sign-in
//! and consent forms, the callback (code exchange and ID token validation in
//! openid-connect), and the first authenticated request through jwt_authn, acl-check (and
//! the policy server) and check-header to the upstream. Prints the median and the spread.

#[allow(dead_code)] // the demo uses all of it
mod seed_chain;

use std::time::{Duration, Instant};

use anyhow::{ensure, Result};
use seed_chain::SeedChain;
use weir_idp_tests::Browser;

const ROUNDS: usize = 30;

fn main() -> Result<()> {
    let chain = SeedChain::start()?;
    let url = format!("{}/reports/q3", chain.envoy.url());
    let callback = format!("{}/oauth2/callback", chain.envoy.url());
    let login = || -> Result<Duration> {
        let mut browser = Browser::new();
        let started = Instant::now();
        let first = browser.get(&url)?;
        ensure!(first.status == 302, "expected the redirect to the provider, got {}", first.status);
        let back = browser.sign_in_from(first, "alice", &callback)?;
        let session = browser.get(back.url.as_str())?;
        ensure!(session.status == 302, "the callback answered {}", session.status);
        let page = browser.get(&url)?;
        ensure!(page.status == 200, "the authenticated request answered {}", page.status);
        Ok(started.elapsed())
    };
    // The first round also discovers the provider and fetches every JWKS: reported apart.
    chain.first_visit(&mut Browser::new(), &url)?;
    let cold = login()?;
    let mut times: Vec<Duration> = (0..ROUNDS).map(|_| login()).collect::<Result<_>>()?;
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!("login round trip through seed 000's chain (Envoy 1.40, oidc-provider, policy server; all on 127.0.0.1)");
    println!("  first login (JWKS fetches included): {:.1} ms", ms(cold));
    println!(
        "  {ROUNDS} logins: median {:.1} ms, fastest {:.1} ms, slowest {:.1} ms",
        ms(times[ROUNDS / 2]),
        ms(times[0]),
        ms(times[ROUNDS - 1])
    );
    Ok(())
}
