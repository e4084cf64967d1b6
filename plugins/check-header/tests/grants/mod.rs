//! Grant tokens signed here with weir-test-jwt, and the JWKS that verifies them. The
//! runtime's clock starts at `weir_runtime::CLOCK_START` (`T0`), so token times are relative
//! to it.
#![allow(dead_code)]

use serde_json::{json, Value};
use weir_runtime::{Outcome, Plugin};
use weir_test_jwt::jwt_simple::prelude::*;

pub const T0: u64 = weir_runtime::CLOCK_START.as_secs();

pub struct Keys {
    pub pair: ES256KeyPair,
}

pub fn keys() -> Keys {
    Keys {
        pair: weir_test_jwt::es256_key("grant-1"),
    }
}

pub fn claims(functions: &[&str]) -> JWTClaims<Value> {
    weir_test_jwt::claims(
        T0,
        60,
        "weir-policy-server",
        "check-header",
        "alice",
        json!({ "functions": functions, "files": ["/data"] }),
    )
}

pub fn sign(k: &Keys, c: JWTClaims<Value>) -> String {
    k.pair.sign(c).expect("signs")
}

/// A grant signed validly by `k` under a header of the test's choosing.
pub fn sign_with_header(k: &Keys, header: Value, c: &JWTClaims<Value>) -> String {
    weir_test_jwt::sign_with_header(&k.pair, &header, c)
}

/// `c` bound to one request, as the policy server binds the grants it issues.
pub fn bound(mut c: JWTClaims<Value>, method: &str, host: &str, path: &str) -> JWTClaims<Value> {
    c.custom["request"] = json!({ "method": method, "host": host, "path": path });
    c
}

pub fn jwks(k: &Keys) -> String {
    weir_test_jwt::jwks([weir_test_jwt::es256_jwk(&k.pair)])
}

/// check-header verifying grants of `k` for `read_data`, with `extra` config keys.
pub fn start(k: &Keys, extra: Value) -> Plugin {
    let mut cfg = json!({ "read_header": "authz_complete", "verification_key": jwks(k), "function": "read_data",
        "issuer": "weir-policy-server", "audiences": ["check-header"] });
    if let (Some(cfg), Value::Object(extra)) = (cfg.as_object_mut(), extra) {
        cfg.extend(extra);
    }
    Plugin::build(env!("CARGO_MANIFEST_DIR"))
        .config(cfg)
        .start()
        .expect("check-header starts")
}

/// The status the client got: a refusal never reaches the upstream, a pass always does, and
/// nothing traps.
pub fn status(out: &Outcome) -> u16 {
    assert!(out.trap().is_none(), "trap: {:?}", out.trap());
    match out.local_reply() {
        Some(reply) => {
            assert!(
                out.upstream_request().is_none(),
                "a refused request never reaches the upstream"
            );
            reply.status()
        }
        None => {
            assert!(
                out.upstream_request().is_some(),
                "a pass reaches the upstream"
            );
            200
        }
    }
}
