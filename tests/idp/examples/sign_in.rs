//! Starts the test OpenID Provider, signs in through its forms and prints every hop with
//! timings: `cargo run -p weir-idp-tests --example sign_in`.
//!
//! The PKCE challenge is a fixed one (RFC 7636's example): this shows the browser side only.

use std::time::Instant;

use anyhow::Result;
use weir_idp_tests::{Browser, Provider, TestClient};

fn main() -> Result<()> {
    let callback = "http://127.0.0.1:9/callback";
    let started = Instant::now();
    let idp = Provider::builder()
        .realm("ingress")
        .client(TestClient::new("rp", "rp-secret").redirect_uri(callback))
        .start()?;
    println!(
        "provider {} ready in {:?} (node start-up {:?})",
        idp.issuer(),
        started.elapsed(),
        idp.startup_time()
    );

    let mut auth = url::Url::parse(&idp.endpoint("authorization_endpoint")?)?;
    auth.query_pairs_mut()
        .append_pair("client_id", "rp")
        .append_pair("response_type", "code")
        .append_pair("scope", "openid")
        .append_pair("redirect_uri", callback)
        .append_pair("state", "demo")
        .append_pair("code_challenge_method", "S256")
        .append_pair(
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        );

    let mut browser = Browser::new();
    let login = Instant::now();
    let back = browser.sign_in(auth.as_str(), "alice", callback)?;
    let took = login.elapsed();
    for hop in browser.history() {
        let to = hop
            .location
            .as_ref()
            .map(|l| format!(" -> {l}"))
            .unwrap_or_default();
        println!("{} {} {}{to}", hop.method, hop.url, hop.status);
    }
    println!("signed in in {took:?}; the relying party gets {}", back.url);
    let cookies: Vec<String> = browser
        .cookies()
        .iter()
        .map(|c| format!("{} (path {})", c.name, c.path))
        .collect();
    println!("the browser holds the provider's cookies {cookies:?}");
    Ok(())
}
