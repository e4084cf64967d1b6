//! Random requests and upstream responses through header-append in weir-runtime, with every
//! action on names the fuzzer also sends. No trap, ever. `make fuzz` runs a million
//! requests over the three plugins; `cargo test` a short run.

use serde_json::json;
use weir_runtime::fuzz::{fuzz_http, fuzz_requests, fuzz_seed, Fuzzer};
use weir_runtime::Plugin;

#[test]
fn random_requests_never_trap() {
    let ops = json!([
        { "name": "x-a", "value": "v", "action": "APPEND_IF_EXISTS_OR_ADD" },
        { "name": "x-b", "value": "v", "action": "ADD_IF_ABSENT" },
        { "name": "x-c", "value": "v", "action": "OVERWRITE_IF_EXISTS_OR_ADD" },
        { "name": "authorization", "value": "v", "action": "OVERWRITE_IF_EXISTS" },
    ]);
    let plugin = Plugin::build(env!("CARGO_MANIFEST_DIR"))
        .config(json!({ "request_headers_to_add": ops, "response_headers_to_add": ops,
            "request_headers_to_remove": ["x-d", "cookie"], "response_headers_to_remove": ["x-d"] }))
        .start()
        .expect("header-append starts");
    let seed = fuzz_seed();
    let fuzzer = Fuzzer::new(seed).header_names(&["x-a", "x-b", "x-c", "x-d", "cookie"]);
    fuzz_http(&plugin, fuzzer, seed, fuzz_requests(), |_, out| {
        assert!(
            out.local_reply().is_none(),
            "WEIR_FUZZ_SEED={seed}: header-append never replies: {:?}",
            out.logs()
        );
    });
}
