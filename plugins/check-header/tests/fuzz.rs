//! Random requests through check-header in weir-runtime: valid grants, their mutations and
//! random bytes in `authz_complete` and elsewhere. No trap, ever; and a request reaches the
//! upstream only with exactly one `authz_complete` that is a grant signed by the test key.
//! `make fuzz` runs a million requests over the three plugins; `cargo test` a short run.

mod grants;

use grants::*;
use serde_json::json;
use weir_runtime::fuzz::{fuzz_http, fuzz_requests, fuzz_seed, Fuzzer};

#[test]
fn random_requests_never_trap_and_only_valid_grants_pass() {
    let k = keys();
    let plugin = start(
        &k,
        json!({ "claim_to_headers": [{ "claim": "sub", "header": "x-user" }, { "claim": "functions", "header": "x-fn" }] }),
    );
    let valid: Vec<String> = vec![
        sign(&k, claims(&["read_data"])),
        sign(&k, claims(&["read_data", "write_data"])),
        sign(&k, claims(&["write_data"])),
    ];
    let seed = fuzz_seed();
    let fuzzer = Fuzzer::new(seed)
        .header_names(&["authz_complete", "x-user"])
        .tokens(valid.clone());
    let mut passed = 0;
    fuzz_http(&plugin, fuzzer, seed, fuzz_requests(), |request, out| {
        if out.upstream_request().is_some() {
            let sent = request.headers().get_all("authz_complete");
            assert!(
                matches!(sent.as_slice(), [one] if valid[..2].contains(&one.trim().to_string())),
                "WEIR_FUZZ_SEED={seed}: passed without one valid grant: {request:?}"
            );
            passed += 1;
        }
    });
    assert!(
        passed > 0,
        "WEIR_FUZZ_SEED={seed}: no request passed; the fuzzer never sent a valid grant"
    );
}
