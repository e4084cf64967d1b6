//! Envoy 1.40 running modules of ABI 0.1.0 and 0.2.0, and refusing an unknown version, with
//! the expectations `runtime/tests/all/abi_versions.rs` checks in weir-runtime: together
//! they show both engines give the same outcomes for every ABI version served.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{ensure, Context, Result};
use weir_envoy_tests::{EchoUpstream, Envoy, WasmFilter};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The ABI 0.1.0 guest (runtime/test-plugins/abi-0-1-0, proxy-wasm 0.1.4), built for
/// wasm32-wasip1 in the test-plugins workspace.
fn abi_0_1_0_wasm() -> Result<PathBuf> {
    let plugins = repo().join("runtime/test-plugins");
    let target = repo().join("target/abi-guests");
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--target", "wasm32-wasip1", "-p", "weir-abi-0-1-0-guest"])
        .current_dir(&plugins)
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .context("running cargo to build the ABI 0.1.0 guest")?;
    ensure!(status.success(), "building the ABI 0.1.0 guest failed");
    Ok(target.join("wasm32-wasip1/release/weir_abi_0_1_0_guest.wasm"))
}

fn guest(name: &str) -> PathBuf {
    repo().join("runtime/tests/all/guests").join(name)
}

#[test]
fn abi_0_1_0_module_runs_start_configuration_and_two_argument_header_callbacks() -> Result<()> {
    let upstream = EchoUpstream::start()?;
    let filter = WasmFilter::new(abi_0_1_0_wasm()?).root_id("abi-0-1-0").configuration("x-from-config=yes\nx-second=2");
    let envoy = Envoy::builder().upstream(upstream.addr()).http_filter(filter).start()?;

    let response = envoy.get("/hello")?.send()?;
    assert_eq!(response.status, 200);
    assert_eq!(response.headers.get("x-from-config"), Some("yes"));
    assert_eq!(response.headers.get("x-second"), Some("2"));
    let seen = &upstream.requests()[0];
    assert_eq!(seen.headers.get("x-abi"), Some("0.1.0"));
    assert_eq!(seen.headers.get("x-missing-header"), Some("None"));

    let response = envoy.get("/pause")?.send()?;
    assert_eq!(response.status, 200);
    assert_eq!(upstream.requests().len(), 2);

    let response = envoy.get("/deny")?.send()?;
    assert_eq!((response.status, response.text().as_str()), (403, "denied\n"));
    assert_eq!(response.headers.get("x-denied-by"), Some("abi-0.1.0"));
    assert_eq!(upstream.requests().len(), 2);
    Ok(())
}

#[test]
fn abi_0_2_0_module_uses_malloc_start_section_and_wasi_unstable() -> Result<()> {
    let upstream = EchoUpstream::start()?;
    let filter = WasmFilter::new(guest("abi_0_2_0.wasm")).root_id("abi-0-2-0").configuration("cfg-0.2.0");
    let envoy = Envoy::builder().upstream(upstream.addr()).http_filter(filter).start()?;

    let response = envoy.get("/x")?.header("user-agent", "abi-test").send()?;
    assert_eq!(response.status, 200);
    assert_eq!(response.headers.get("x-resp-abi"), Some("0.2.0"));
    let seen = &upstream.requests()[0];
    assert_eq!(seen.headers.get("x-abi"), Some("0.2.0"));
    assert_eq!(seen.headers.get("x-started"), Some("yes"));
    assert_eq!(seen.headers.get("x-config"), Some("cfg-0.2.0"));
    assert_eq!(seen.headers.get("x-missing-status"), Some("1"));
    assert_eq!(seen.headers.get("x-user-agent-copy"), Some("abi-test"));
    Ok(())
}

#[test]
fn unknown_abi_version_is_refused() -> Result<()> {
    let upstream = EchoUpstream::start()?;
    let filter = WasmFilter::new(guest("abi_9_9_9.wasm")).root_id("abi-9-9-9");
    let refusal = Envoy::builder().upstream(upstream.addr()).http_filter(filter).start_expecting_refusal()?;
    assert!(refusal.log.contains("unknown Proxy-Wasm ABI version"), "{}", refusal.log);
    Ok(())
}
