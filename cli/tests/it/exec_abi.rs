//! `weir exec` on modules of each proxy-wasm ABI version: it names the version it detected
//! and runs them, and it refuses a version no proxy serves with the versions that are.
//! The guests are weir-runtime's (`runtime/test-plugins`): the 0.1.0 one is built with
//! proxy-wasm 0.1.4, the others are WAT compiled here.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::{ok, user_error, weir, write};

fn test_plugins(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../runtime/test-plugins")
        .join(path)
}

/// The WAT guest `name`, compiled into `dir`.
fn wat_guest(dir: &Path, name: &str) -> String {
    let wasm = wat::parse_file(test_plugins(&format!("wat/{name}.wat"))).expect("test WAT parses");
    write(dir, &format!("{name}.wasm"), &wasm)
        .display()
        .to_string()
}

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).expect("--json output is JSON")
}

fn header<'a>(message: &'a Value, name: &str) -> Option<&'a str> {
    message["headers"]
        .as_array()?
        .iter()
        .find(|pair| pair[0] == name)
        .and_then(|pair| pair[1].as_str())
}

#[test]
fn abi_0_1_0_module_is_detected_and_runs() {
    let crate_dir = test_plugins("abi-0-1-0");
    let wasm = weir_runtime::Plugin::wasm_path(&crate_dir)
        .unwrap_or_else(|e| panic!("building {}: {e}", crate_dir.display()));
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write(dir.path(), "config.json", br#"{"x-from-config": "yes"}"#);
    let wasm = wasm.display().to_string();
    let out = weir(
        &[
            "exec",
            &wasm,
            "--root-id",
            "abi-0-1-0",
            "--config",
            &config.display().to_string(),
        ],
        None,
    );
    let text = ok(&out);
    assert!(
        text.contains("\nproxy-wasm ABI 0.1.0 (the module's proxy_abi_version_* export)\n"),
        "{text}"
    );
    assert!(
        text.contains("  x-abi: 0.1.0\n") && text.contains("  x-from-config: yes\n"),
        "{text}"
    );
}

#[test]
fn abi_0_2_0_and_0_2_1_modules_are_detected_and_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (guest, abi) in [("abi_0_2_0", "0.2.0"), ("both_allocators", "0.2.1")] {
        let wasm = wat_guest(dir.path(), guest);
        let report = json(&weir(
            &["exec", &wasm, "--json", "-H", "user-agent: abi-test"],
            None,
        ));
        assert_eq!(report["plugin"]["abi_version"], abi, "{guest}");
        assert_eq!(
            header(&report["upstream_request"], "x-user-agent-copy"),
            Some("abi-test"),
            "{guest}: {report:#}"
        );
    }
}

#[test]
fn unknown_abi_version_is_refused_naming_the_supported_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wasm = wat_guest(dir.path(), "abi_9_9_9");
    let err = user_error(&weir(&["exec", &wasm], None));
    assert!(
        err.contains("unknown Proxy-Wasm ABI version: the module exports proxy_abi_version_9_9_9"),
        "{err}"
    );
    assert!(
        err.contains("runs ABI 0.1.0, 0.2.0 and 0.2.1 only"),
        "{err}"
    );
    assert!(
        err.contains("hint: rebuild the plugin with an SDK for ABI 0.1.0, 0.2.0 or 0.2.1"),
        "{err}"
    );
}
