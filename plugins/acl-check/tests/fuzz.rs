//! Random requests through acl-check in weir-runtime, with a policy server that answers at
//! random (any status, headers, grant-shaped or random bodies, failures, timeouts). No trap,
//! ever; and a request reaches the upstream only carrying exactly the policy server's token
//! in `authz_complete`, never a client's. `make fuzz` runs a million requests over the three
//! plugins; `cargo test` a short run.

use std::sync::Mutex;

use serde_json::json;
use weir_runtime::fuzz::{fuzz_http, fuzz_requests, fuzz_seed, Fuzzer};
use weir_runtime::Plugin;

const GRANT: &str = "eyJhbGciOiJFUzI1NiJ9.eyJmdW5jdGlvbnMiOlsicmVhZF9kYXRhIl19.c2lnbmF0dXJl";

#[test]
fn random_requests_never_trap_and_only_policy_tokens_go_upstream() {
    let seed = fuzz_seed();
    let policy = Mutex::new(Fuzzer::new(seed ^ 0x5eed).tokens([GRANT.to_string()]));
    let plugin = Plugin::build(env!("CARGO_MANIFEST_DIR"))
        .config(json!({ "acl_server": "policy", "set_header": "authz_complete", "allowed_upstream_headers": ["x-user"],
            "allowed_request_headers": ["authorization", "cookie"] }))
        .upstream("policy", move |_| policy.lock().unwrap_or_else(|e| e.into_inner()).callout_response())
        .start()
        .expect("acl-check starts");
    let fuzzer = Fuzzer::new(seed)
        .header_names(&["authz_complete", "cookie", "x-user"])
        .tokens([GRANT.to_string()]);
    let mut passed = 0;
    fuzz_http(&plugin, fuzzer, seed, fuzz_requests(), |request, out| {
        let Some(up) = out.upstream_request() else {
            return;
        };
        let answer = out
            .callouts()
            .first()
            .and_then(|c| c.response())
            .map(|r| r.text());
        let sent = up.headers().get_all("authz_complete");
        assert!(
            matches!((sent.as_slice(), &answer), ([token], Some(body)) if body.trim() == *token),
            "WEIR_FUZZ_SEED={seed}: upstream got {sent:?}, policy server said {answer:?}: {request:?}"
        );
        passed += 1;
    });
    assert!(
        passed > 0,
        "WEIR_FUZZ_SEED={seed}: no request passed; the policy server never granted"
    );
}
