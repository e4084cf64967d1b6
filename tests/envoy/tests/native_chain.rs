//! The native chain `make bench` measures Weir's against (`examples/seed_chain/native.rs`:
//! oauth2 → jwt_authn → ext_authz with the policy server → jwt_authn) does the same job:
//! nobody reaches the upstream without signing in at the provider, a signed-in user the
//! policy allows gets the page with a grant the upstream can read, one it refuses gets 403,
//! and a grant the client sends itself is never what the upstream sees.

#[allow(dead_code)] // the demo and the benchmarks use the rest
#[path = "../examples/seed_chain/mod.rs"]
mod seed_chain;

use anyhow::Result;
use seed_chain::native::{NativeChain, GRANT_HEADER, USER_HEADER};
use seed_chain::{browser_back_from_sign_in, page_url, PolicyBuild, PAGE};
use weir_envoy_tests::HttpRequest;

#[test]
fn native_chain_enforces_the_same_policy() -> Result<()> {
    let chain = NativeChain::start(PolicyBuild::Dev)?;
    let envoy = &chain.envoy;

    // No session: sent to the provider's authorization endpoint, nothing upstream.
    let first = envoy.get(PAGE)?.send()?;
    assert_eq!(first.status, 302, "{}", first.text());
    let location = first.headers.get("location").unwrap_or_default();
    let authorize = format!("{}/auth?", chain.idp.issuer());
    assert!(location.starts_with(&authorize), "redirected to {location}");

    // alice (in the ACL) signs in and gets the page with a verified grant upstream.
    let mut alice = browser_back_from_sign_in(envoy, "alice")?;
    let page = alice.get(&page_url(envoy))?;
    assert_eq!(page.status, 200, "{}", page.text());
    let upstream = chain.upstream.requests();
    assert_eq!(upstream.len(), 1, "only alice's page reached the upstream");
    let grant = upstream[0].headers.get_all(GRANT_HEADER);
    assert_eq!(grant.len(), 1, "one grant header upstream: {grant:?}");
    assert_eq!(
        grant[0].split('.').count(),
        3,
        "the grant is a compact JWS: {}",
        grant[0]
    );
    assert_eq!(upstream[0].headers.get_all(USER_HEADER), ["alice"]);

    // A grant the client sends is replaced by the policy server's.
    let forged = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.";
    let with_forged = HttpRequest::get(&page_url(envoy))?.header(GRANT_HEADER, forged);
    assert_eq!(alice.send(with_forged)?.status, 200);
    let upstream = chain.upstream.requests();
    let seen = upstream[1].headers.get_all(GRANT_HEADER);
    assert!(
        seen.len() == 1 && seen[0] != forged,
        "the upstream saw {seen:?}"
    );

    // bob signs in at the provider, but the policy grants him nothing: 403, even with the
    // grant alice got (ext_authz decides before any grant is read).
    let mut bob = browser_back_from_sign_in(envoy, "bob")?;
    assert_eq!(bob.get(&page_url(envoy))?.status, 403);
    let alices_grant = HttpRequest::get(&page_url(envoy))?.header(GRANT_HEADER, grant[0]);
    assert_eq!(bob.send(alices_grant)?.status, 403);
    assert_eq!(
        chain.upstream.requests().len(),
        2,
        "nothing of bob's reached the upstream"
    );

    // A tampered ID token cookie breaks the oauth2 filter's HMAC: back to the provider.
    // (With the refresh token cookie still there, the filter would renew the session at
    // the provider instead.)
    let cookies: Vec<String> = alice
        .cookies()
        .iter()
        .filter(|c| {
            seed_chain::native::SESSION_COOKIES.contains(&c.name.as_str())
                && c.name != "RefreshToken"
        })
        .map(|c| {
            if c.name == "IdToken" {
                format!("IdToken=x{}", c.value)
            } else {
                format!("{}={}", c.name, c.value)
            }
        })
        .collect();
    let tampered = envoy
        .get(PAGE)?
        .header("cookie", &cookies.join("; "))
        .send()?;
    assert_eq!(tampered.status, 302);
    assert_eq!(chain.upstream.requests().len(), 2);
    Ok(())
}
