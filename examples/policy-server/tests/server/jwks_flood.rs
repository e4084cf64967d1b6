//! A flood of tokens with made-up `kid`s against a slow identity provider: requests whose
//! key is cached are answered while the fetch the flood started is still pending, and the
//! flood costs the identity provider one fetch. Latencies are printed (`--nocapture`), not
//! asserted: what is asserted is the order of events.

use std::sync::Arc;
use std::time::{Duration, Instant};

use jwt_simple::prelude::{ECDSAP256KeyPairLike, ES256KeyPair};

use crate::keys::{jwks_of, JwksEndpoint};
use crate::support::*;

const FLOOD: usize = 32;
const GOOD_REQUESTS: usize = 20;

/// `count` checks of `token` one after the other, each a 200; their latencies.
async fn timed_checks(server: &RunningServer, token: &str, count: usize) -> Vec<Duration> {
    let mut latencies = Vec::with_capacity(count);
    for _ in 0..count {
        let started = Instant::now();
        let answer = server.check_token(token).await;
        latencies.push(started.elapsed());
        assert_eq!(
            answer.status, 200,
            "a known key is accepted: {}",
            answer.body
        );
    }
    latencies
}

fn summary(latencies: &mut [Duration]) -> String {
    latencies.sort();
    format!(
        "median {:?}, max {:?} over {}",
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1],
        latencies.len()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_keys_do_not_wait_for_a_kid_miss_fetch() {
    let known = ES256KeyPair::generate().with_key_id("known");
    let (idp_endpoint, url) = JwksEndpoint::start(jwks_of(&[&known])).await;
    // No rate limit, so only single-flight keeps the flood to one fetch; the fetch may take
    // up to 30 s, far longer than any request here is allowed to.
    let config = config_yaml(
        &format!("jwks_url: {url}"),
        "  jwks_min_refetch_seconds: 0\n  jwks_fetch_timeout_ms: 30000\n  jwks_kid_miss_wait_ms: 300\n",
        "",
    );
    let server = Arc::new(start_with(&config, |_| {}).await);
    assert_eq!(idp_endpoint.hits(), 1, "one fetch at start-up");
    let good = known.sign(user_claims("alice", &[])).unwrap();
    let mut quiet = timed_checks(&server, &good, GOOD_REQUESTS).await;

    idp_endpoint.hold();
    let flood: Vec<_> = (0..FLOOD)
        .map(|i| {
            let server = server.clone();
            let forged = ES256KeyPair::generate().with_key_id(&format!("made-up-{i}"));
            let token = forged.sign(user_claims("alice", &[])).unwrap();
            tokio::spawn(async move {
                let started = Instant::now();
                let answer = server.check_token(&token).await;
                (answer, started.elapsed())
            })
        })
        .collect();
    // Bounded wait for the fetch the flood started to be parked at the identity provider.
    for _ in 0..200 {
        if idp_endpoint.pending() > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(idp_endpoint.pending(), 1, "the flood started a fetch");

    let mut during = timed_checks(&server, &good, GOOD_REQUESTS).await;
    assert_eq!(
        idp_endpoint.pending(),
        1,
        "the good tokens were answered while the fetch was still pending: none waited for it"
    );
    let mut flood_latencies = Vec::new();
    for request in flood {
        let (answer, latency) = request.await.unwrap();
        answer.assert_unauthorized("made-up kid");
        flood_latencies.push(latency);
    }
    assert_eq!(
        idp_endpoint.pending(),
        1,
        "made-up kids are refused after jwks_kid_miss_wait_ms, not after the fetch"
    );
    assert_eq!(
        idp_endpoint.hits(),
        2,
        "{FLOOD} concurrent kid misses joined one fetch"
    );
    idp_endpoint.release();

    println!("good tokens, no flood:      {}", summary(&mut quiet));
    println!("good tokens, during flood:  {}", summary(&mut during));
    println!(
        "made-up kids (the flood):   {}",
        summary(&mut flood_latencies)
    );
    assert_eq!(server.check_token(&good).await.status, 200);
    let server = Arc::try_unwrap(server)
        .ok()
        .expect("flood requests are done");
    server.stop().await;
}

#[test]
fn jwks_waits_and_timeouts_are_bounded_at_start_up() {
    for (field, value) in [
        ("jwks_kid_miss_wait_ms", "0"),
        ("jwks_kid_miss_wait_ms", "60001"),
        ("jwks_fetch_timeout_ms", "18446744073709551615"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("policy-server.yaml");
        let line = format!("  {field}: {value}\n");
        std::fs::write(
            &path,
            config_yaml("jwks_url: http://127.0.0.1:1/jwks", &line, ""),
        )
        .unwrap();
        let err = policy_server::Config::load(&path).expect_err("out of range");
        assert!(
            format!("{err:#}").contains(&format!("user_token.{field}")),
            "{field}={value}: {err:#}"
        );
    }
}
