//! The `policy-server` binary: key generation, config checking, and a real start, request
//! and graceful SIGTERM shutdown.

use std::ffi::OsStr;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use crate::support::*;

const BIN: &str = env!("CARGO_BIN_EXE_policy-server");

/// Runs the binary to completion (bounded) with `args`.
async fn run<S: AsRef<OsStr>>(args: &[S]) -> std::process::Output {
    let output = Command::new(BIN).args(args).kill_on_drop(true).output();
    tokio::time::timeout(REQUEST_TIMEOUT, output)
        .await
        .expect("policy-server finishes in time")
        .unwrap()
}

#[track_caller]
fn assert_success(output: &std::process::Output) {
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "policy-server failed: {stderr}");
}

#[tokio::test]
async fn generate_key_writes_a_private_pem_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key.pem");
    let output = run(&["--generate-key".as_ref(), path.as_os_str()]).await;
    assert_success(&output);
    let kid = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    let pem = std::fs::read_to_string(&path).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "{pem}");
    // EdDSA by default: the cheapest of the two for check-header to verify.
    let pair = jwt_simple::prelude::Ed25519KeyPair::from_pem(&pem).unwrap();
    assert_eq!(
        pair.jwk_thumbprint(),
        kid,
        "the printed kid is the key's thumbprint"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let again = run(&["--generate-key".as_ref(), path.as_os_str()]).await;
    assert!(
        !again.status.success(),
        "an existing key is never overwritten"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), pem);

    let ec = dir.path().join("ec.pem");
    let ec_args = [
        "--key-algorithm".as_ref(),
        "ES256".as_ref(),
        "--generate-key".as_ref(),
        ec.as_os_str(),
    ];
    assert_success(&run(&ec_args).await);
    let ec_pem = std::fs::read_to_string(&ec).unwrap();
    jwt_simple::prelude::ES256KeyPair::from_pem(&ec_pem).unwrap();
}

#[tokio::test]
async fn check_config_reports_errors_with_the_file_name() {
    let server = start_default().await;
    let good = server.dir.path().join("policy-server.yaml");
    assert_success(
        &run(&[
            "--check-config".as_ref(),
            "--config".as_ref(),
            good.as_os_str(),
        ])
        .await,
    );

    let bad = server.dir.path().join("bad.yaml");
    std::fs::write(
        &bad,
        std::fs::read_to_string(&good).unwrap() + "unknown_key: 1\n",
    )
    .unwrap();
    let output = run(&[
        "--check-config".as_ref(),
        "--config".as_ref(),
        bad.as_os_str(),
    ])
    .await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("bad.yaml") && stderr.contains("unknown_key"),
        "{stderr}"
    );
    server.stop().await;
}

#[tokio::test]
async fn serves_until_sigterm_then_exits_cleanly() {
    // Borrow a ready directory (config, keys, ACL) from an in-process server.
    let files = start_default().await;
    let config = files.dir.path().join("policy-server.yaml");
    let mut child = Command::new(BIN)
        .arg("--config")
        .arg(&config)
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // The one stdout line is the base URL, printed once the port is bound.
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let base_url = tokio::time::timeout(REQUEST_TIMEOUT, stdout.next_line())
        .await
        .expect("the server prints its URL")
        .unwrap()
        .expect("the server printed a line before exiting");
    assert!(base_url.starts_with("http://127.0.0.1:"), "{base_url}");

    let client = &files.client;
    let token = idp().token("alice", &["readers"]);
    let response = client
        .post(format!("{base_url}/check"))
        .header("authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let pid = child.id().unwrap().to_string();
    let kill = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(kill.success());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("the server stops within 10 s of SIGTERM")
        .unwrap();
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
    files.stop().await;
}
