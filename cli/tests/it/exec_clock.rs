//! `weir exec` judges time as Envoy would today: the plugin sees the system clock unless
//! `--time` pins one. check-header verifies a grant issued moments ago, and refuses the same
//! grant at a pinned time before it was issued or after it expired.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::{EncodePublicKey, LineEnding};
use serde_json::{json, Value};

use crate::common::{ok, weir, write};

fn check_header() -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/check-header");
    let path = weir_runtime::Plugin::wasm_path(&dir)
        .unwrap_or_else(|e| panic!("building check-header: {e}"));
    path.display().to_string()
}

/// An ES256 grant valid from `iat` for five minutes, and the PEM key that verifies it.
fn grant(iat: u64) -> (String, String) {
    let key = SigningKey::from_bytes(&[7u8; 32].into()).expect("a valid P-256 scalar");
    let pem = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("PEM");
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256","typ":"JWT"}"#);
    let claims = json!({
        "iss": "policy-server", "aud": "gateway", "sub": "alice",
        "iat": iat, "nbf": iat, "exp": iat + 300, "functions": ["read"],
    });
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signature: Signature = key.sign(format!("{header}.{payload}").as_bytes());
    (
        format!(
            "{header}.{payload}.{}",
            URL_SAFE_NO_PAD.encode(signature.to_bytes())
        ),
        pem,
    )
}

/// The status the client got for one request carrying `token`, with `extra` flags.
fn status_with(token: &str, pem: &str, extra: &[&str]) -> String {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = json!({
        "read_header": "authz_complete", "verification_key": pem, "function": "read",
        "issuer": "policy-server", "audiences": ["gateway"], "clock_skew_seconds": 0,
    });
    let config = write(dir.path(), "config.json", config.to_string().as_bytes());
    let wasm = check_header();
    let header = format!("authz_complete: {token}");
    let mut args = vec![
        "exec",
        wasm.as_str(),
        "--json",
        "--config",
        config.to_str().expect("utf-8"),
        "-H",
        &header,
    ];
    args.extend_from_slice(extra);
    let out = weir(&args, None);
    ok(&out);
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let status = report["response"]["headers"]
        .as_array()
        .expect("headers")
        .iter()
        .find(|p| p[0] == ":status");
    status
        .and_then(|p| p[1].as_str())
        .expect(":status")
        .to_string()
}

#[test]
fn a_grant_issued_now_is_allowed_on_the_system_clock() {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs();
    let (token, pem) = grant(now - 5);
    assert_eq!(status_with(&token, &pem, &[]), "200");
}

#[test]
fn time_pins_the_clock_before_issue_and_after_expiry() {
    let iat = 1_800_000_000; // 2027-01-15T08:00:00Z
    let (token, pem) = grant(iat);
    assert_eq!(
        status_with(&token, &pem, &["--time", "2027-01-15T08:01:00Z"]),
        "200"
    );
    assert_eq!(status_with(&token, &pem, &["--time", "1800000060"]), "200");
    assert_eq!(
        status_with(&token, &pem, &["--time", "2027-01-15T07:59:00Z"]),
        "401",
        "not yet valid"
    );
    assert_eq!(
        status_with(&token, &pem, &["--time", "2027-01-15T08:06:00Z"]),
        "401",
        "expired"
    );
}
