//! Grant tokens signed here by jwt-simple, and the JWKS that verifies them. The runtime's
//! clock starts at 2026-01-01T00:00:00Z (`T0`), so token times are relative to it.
#![allow(dead_code)]

use jwt_simple::prelude::*;
use serde_json::{json, Value};
use weir_runtime::Plugin;

pub const T0: u64 = weir_runtime::CLOCK_START.as_secs();

pub struct Keys {
    pub pair: ES256KeyPair,
}

pub fn keys() -> Keys {
    Keys {
        pair: ES256KeyPair::generate().with_key_id("grant-1"),
    }
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

/// A grant signed validly by `k` under a header of the test's choosing (jwt-simple writes
/// only its own headers): `crit`, or an `alg` the signature does not match.
pub fn sign_with_header(k: &Keys, header: Value, c: &JWTClaims<Value>) -> String {
    use p256::ecdsa::signature::Signer;
    let b64 = |b: &[u8]| Base64UrlSafeNoPadding::encode_to_string(b).expect("b64");
    let signing = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(&serde_json::to_vec(c).expect("claims"))
    );
    let signature: p256::ecdsa::Signature = k.pair.key_pair().as_ref().sign(signing.as_bytes());
    format!("{signing}.{}", b64(&signature.to_bytes()))
}

/// `c` bound to one request, as the policy server binds the grants it issues.
pub fn bound(mut c: JWTClaims<Value>, method: &str, host: &str, path: &str) -> JWTClaims<Value> {
    c.custom["request"] = json!({ "method": method, "host": host, "path": path });
    c
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
    Plugin::build(env!("CARGO_MANIFEST_DIR"))
        .config(cfg)
        .start()
        .expect("check-header starts")
}
