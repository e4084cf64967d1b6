//! acl-check's decision cache in a real Envoy, in front of check-header, with the reference
//! policy server letting its grants be reused (`issued_token.reuse_seconds`). Envoy's own
//! counter of requests to the `policy` cluster shows which requests asked the server. HTTP
//! only: over gRPC acl-check refuses `decision_cache_seconds` (see grpc_only.rs).

use anyhow::Result;
use serde_json::json;
use weir_envoy_tests::{EchoUpstream, Envoy, PolicyServer, UserKeys};

use super::filters::{check_header, get, get_path};
use super::tokens::{Idp, USER};
use super::transport::Transport;

/// Requests Envoy sent to the policy server.
fn policy_requests(envoy: &Envoy) -> Result<u64> {
    Ok(envoy.stat("cluster.policy.upstream_rq_total")?.unwrap_or(0))
}

#[test]
fn a_cached_grant_spares_the_policy_server_and_outlives_it() -> Result<()> {
    let idp = Idp::new();
    let mut policy = PolicyServer::start(USER.issuer, USER.audience, UserKeys::File(&idp.jwks()))?;
    policy.reuse_grants_for(60)?;
    let upstream = EchoUpstream::start()?;
    // Request binding holds for a reused grant (the key includes the request line); a
    // single-use grant could not be reused, so single_use_grants stays off here.
    let envoy = Envoy::builder()
        .http_filter(
            Transport::Http
                .acl_check(json!({ "decision_cache_seconds": 30, "status_on_error": 503 })),
        )
        .http_filter(check_header(
            &policy.jwks()?,
            json!({ "require_request_binding": true }),
        ))
        .cluster("policy", policy.addr)
        .upstream(upstream.addr())
        .start()?;
    let alice = format!("Bearer {}", idp.token("alice", &[]));
    let alice = [("authorization", alice.as_str())];

    for n in 1..=2 {
        let res = get(&envoy, &alice)?;
        assert_eq!(res.status, 200, "request {n}: {res:?}\n{}", envoy.log());
    }
    assert_eq!(
        policy_requests(&envoy)?,
        1,
        "the second request was served from the cache"
    );
    assert_eq!(policy.log().matches("200: grant token issued").count(), 1);
    let seen = upstream.requests();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[1].headers.get("x-user"),
        Some("alice"),
        "{:?}",
        seen[1]
    );
    assert_eq!(envoy.stat("wasmcustom.acl_check.cache_hits")?, Some(1));

    // The policy server gone: the cached decision still allows, anything else fails closed.
    policy.stop();
    let res = get(&envoy, &alice)?;
    assert_eq!(res.status, 200, "cached: {res:?}\n{}", envoy.log());
    let res = get_path(&envoy, "/data/other", &alice)?;
    assert_eq!(res.status, 503, "not cached: {res:?}");
    assert_eq!(upstream.requests().len(), 3);
    assert_eq!(envoy.stat("wasmcustom.acl_check.cache_hits")?, Some(2));
    assert_eq!(envoy.stat("wasmcustom.acl_check.errored")?, Some(1));
    Ok(())
}
