//! `make demo`: seed 000's whole chain in a real Envoy (1.40, V8), walked from the terminal.
//!
//! ```text
//! browser ─▶ openid-connect (AUTHN) ─▶ jwt_authn ─▶ acl-check (AUTHZ) ─▶ check-header (AUTHZ) ─▶ upstream
//!                 │ login, code exchange       │ checks the       │ asks the policy   │ verifies the grant
//!                 ▼                            ▼ forwarded JWT    ▼ server            ▼ (JWKS from the server)
//!          OpenID Provider (oidc-provider, certified)      policy server (examples/policy-server)
//! ```
//!
//! Every part is real and local (127.0.0.1): the provider is oidc-provider from npm, the policy
//! server is this repository's, jwt_authn stands in for Istio's authn (a RequestAuthentication
//! compiles to it), and the browser is a client that follows redirects and fills in the
//! provider's forms. Run with `make demo` (it builds the plugins first).

#[allow(dead_code)] // the soak and the login bench use the rest
mod seed_chain;

use anyhow::{ensure, Context, Result};
use seed_chain::{SeedChain, PAGE};
use weir_idp_tests::{Browser, Jwt};

fn main() -> Result<()> {
    let chain = SeedChain::start()?;
    let SeedChain {
        idp,
        policy,
        upstream,
        envoy,
    } = &chain;
    println!("OpenID Provider   {}  (oidc-provider)", idp.issuer());
    println!(
        "policy server     http://{}  (examples/policy-server; alice may read_data)",
        policy.addr
    );
    println!("upstream          http://{}", upstream.addr());
    println!("Envoy 1.40 (V8)   {}", envoy.url());
    println!("  chain: openid-connect → jwt_authn → acl-check → check-header → router\n");

    let url = chain.page_url();
    let mut browser = Browser::new();
    let first = chain.first_visit(&mut browser)?;
    ensure!(
        first.status == 302,
        "expected a redirect to the provider, got {}:\n{}",
        first.status,
        envoy.log()
    );
    let authorize = first
        .headers
        .get("location")
        .unwrap_or_default()
        .to_string();
    println!("1. browser  GET {PAGE} (no session)");
    println!("   ← 302 to the provider: {}", shorten(&authorize, 110));
    println!("     (PKCE S256, state and nonce; they travel in an encrypted __Host- cookie)");

    let callback = browser.sign_in_from(first, "alice", &chain.callback_url())?;
    println!("2. browser  signs in as alice at the provider (sign-in and consent forms)");
    println!("   ← 302 to {}", shorten(callback.url.as_str(), 110));

    let back = browser.get(callback.url.as_str())?;
    ensure!(
        back.status == 302,
        "the callback answered {}: {}\n{}",
        back.status,
        back.text(),
        envoy.log()
    );
    println!("3. browser  GET /oauth2/callback: openid-connect exchanges the code, validates the ID token");
    println!(
        "   ← 302 to {} with the session in cookies:",
        back.headers.get("location").unwrap_or_default()
    );
    for cookie in browser
        .cookies()
        .iter()
        .filter(|c| c.name.starts_with("__Host-"))
    {
        println!(
            "     {} ({} bytes, AES-256-GCM)",
            cookie.name,
            cookie.value.len()
        );
    }

    let page = browser.get(&url)?;
    ensure!(
        page.status == 200,
        "the authenticated request answered {}: {}\npolicy server log:\n{}\nEnvoy log:\n{}",
        page.status,
        page.text(),
        policy.log(),
        envoy.log()
    );
    let seen = upstream
        .requests()
        .last()
        .cloned()
        .context("the upstream saw no request")?;
    let bearer = seen
        .headers
        .get("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .context("no bearer token upstream")?;
    let jwt = Jwt::decode(bearer)?;
    println!("4. browser  GET {PAGE} with the session cookie");
    println!(
        "   openid-connect  → Authorization: Bearer <ID token: sub={}, iss={}>",
        jwt.claim_str("sub").unwrap_or("?"),
        jwt.claim_str("iss").unwrap_or("?")
    );
    println!("   jwt_authn       → verified it with the provider's JWKS");
    println!("   acl-check       → the policy server granted alice; grant in authz_complete");
    println!("   check-header    → verified the grant (keys fetched from the policy server): issued for this");
    println!(
        "                     request (GET /reports/q3), first use of its jti, read_data permitted"
    );
    println!(
        "   upstream saw    x-user: {}",
        seen.headers.get("x-user").unwrap_or("(absent)")
    );
    println!(
        "                   authz_complete: {}",
        seen.headers
            .get("authz_complete")
            .unwrap_or("(stripped after verification)")
    );
    let cookies = seen.headers.get_all("cookie").join("; ");
    println!(
        "                   plugin cookies: {}",
        if cookies.contains("__Host-") {
            "present (unexpected)"
        } else {
            "stripped"
        }
    );
    println!("   ← {} {}", page.status, page.text().trim());

    let forged = weir_envoy_tests::HttpRequest::get(&url)?
        .header("accept", "application/json")
        .header("authz_complete", "forged")
        .send()?;
    println!("5. API client without a session, forging authz_complete → {} (no redirect for non-browsers)", forged.status);
    ensure!(forged.status == 401, "expected 401, got {}", forged.status);
    let stats = envoy.stats()?;
    let counters: Vec<&str> = stats
        .lines()
        .filter(|l| {
            [
                "jwt_authn.allowed",
                "jwt_authn.denied",
                "acl_check.",
                "check_header.",
                "openid_connect.",
            ]
            .iter()
            .any(|k| l.contains(k))
        })
        .filter(|l| !l.ends_with(": 0"))
        .collect();
    println!("\nEnvoy's /stats (non-zero counters of the chain):");
    for line in counters {
        println!("  {line}");
    }
    println!(
        "The upstream saw {} request(s), all authenticated and authorized.",
        upstream.requests().len()
    );
    Ok(())
}

fn shorten(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let cut = (0..=max)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    format!("{}…", &text[..cut])
}
