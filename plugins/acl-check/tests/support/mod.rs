//! What the acl-check suites share: a configuration from a base and per-test changes, and
//! the plugin started with a stubbed policy server.

use serde_json::Value;
use weir_runtime::{Plugin, Request, Response};

/// A policy-server answer to a check request, fixed per test case.
pub type Answer = fn(&Request) -> Response;

/// `base` with the keys of `extra` added or replaced.
pub fn merged(mut base: Value, extra: Value) -> Value {
    if let (Some(cfg), Value::Object(extra)) = (base.as_object_mut(), extra) {
        cfg.extend(extra);
    }
    base
}

/// acl-check with `config`, its `policy` cluster answered by `policy`.
pub fn start_with(
    config: Value,
    policy: impl Fn(&Request) -> Response + Send + Sync + 'static,
) -> Plugin {
    Plugin::build(env!("CARGO_MANIFEST_DIR"))
        .config(config)
        .upstream("policy", policy)
        .start()
        .expect("acl-check starts")
}
