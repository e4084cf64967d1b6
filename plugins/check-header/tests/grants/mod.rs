//! Grant tokens signed here by jwt-simple, and the JWKS that verifies them. The runtime's
//! clock starts at 2026-01-01T00:00:00Z (`T0`), so token times are relative to it.
#![allow(dead_code)]

use jwt_simple::prelude::*;
use serde_json::{json, Value};
use weir_runtime::Plugin;

pub const T0: u64 = 1_767_225_600;

pub struct Keys {
    pub pair: ES256KeyPair,
}

pub fn keys() -> Keys {
    Keys { pair: ES256KeyPair::generate().with_key_id("grant-1") }
}

pub fn claims(functions: &[&str]) -> JWTClaims<Value> {
    JWTClaims {
        issued_at: Some(UnixTimeStamp::from_secs(T0)),
        expires_at: Some(UnixTimeStamp::from_secs(T0 + 60)),
        invalid_before: Some(UnixTimeStamp::from_secs(T0)),
        issuer: Some("weir-policy-server".into()),
        subject: Some("alice".into()),
        audiences: Some(Audiences::AsString("check-header".into())),
        jwt_id: None,
        nonce: None,
        custom: json!({ "functions": functions, "files": ["/data"] }),
    }
}

pub fn sign(k: &Keys, c: JWTClaims<Value>) -> String {
    k.pair.sign(c).expect("signs")
}

pub fn jwks(k: &Keys) -> String {
    let pk = k.pair.public_key();
    let point = pk.public_key().to_bytes_uncompressed();
    let b64 = |b: &[u8]| Base64UrlSafeNoPadding::encode_to_string(b).expect("b64");
    json!({ "keys": [{ "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": "grant-1",
        "x": b64(&point[1..33]), "y": b64(&point[33..65]) }] })
    .to_string()
}


/// check-header verifying grants of `k` for `read_data`, with `extra` config keys.
pub fn start(k: &Keys, extra: Value) -> Plugin {
    let mut cfg = json!({ "read_header": "authz_complete", "verification_key": jwks(k), "function": "read_data",
        "issuer": "weir-policy-server", "audiences": ["check-header"] });
    if let (Some(cfg), Value::Object(extra)) = (cfg.as_object_mut(), extra) {
        cfg.extend(extra);
    }
    Plugin::build(env!("CARGO_MANIFEST_DIR")).config(cfg).start().expect("check-header starts")
}

