//! Building plugin crates to `.wasm` from inside a test.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Mutex, PoisonError};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::locate::repo_root;

/// Builds workspace package `package` for `wasm32-wasip1` (release profile, the one that
/// ships) and returns the path of its `.wasm`. An example (`examples/<package>`, a
/// workspace of its own) is built through its manifest.
///
/// Each package is built once per test process; concurrent callers wait for the first.
/// The build uses its own target directory, `<repo>/target/weir-wasm`, so it never waits
/// for the lock that the outer `cargo test` holds on the normal target directory.
/// `$CARGO` (set by cargo for tests) picks the same cargo that runs the tests.
///
/// # Panics
///
/// When the build fails; the message includes cargo's output.
pub fn build_wasm(package: &str) -> PathBuf {
    match try_build_wasm(package) {
        Ok(path) => path,
        Err(err) => panic!("{err:#}"),
    }
}

/// Like [`build_wasm`], returning the error instead of panicking.
pub fn try_build_wasm(package: &str) -> Result<PathBuf> {
    static BUILT: Mutex<Option<HashMap<String, Result<PathBuf, String>>>> = Mutex::new(None);
    // Holding the lock across the build serializes builds, which cargo would do anyway.
    let mut built = BUILT.lock().unwrap_or_else(PoisonError::into_inner);
    let outcome = built
        .get_or_insert_with(HashMap::new)
        .entry(package.to_owned())
        .or_insert_with(|| run_cargo(package).map_err(|err| format!("{err:#}")))
        .clone();
    outcome.map_err(anyhow::Error::msg)
}

fn run_cargo(package: &str) -> Result<PathBuf> {
    let root = repo_root();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target_dir = root.join("target/weir-wasm");
    let example = root.join("examples").join(package).join("Cargo.toml");
    let mut command = Command::new(&cargo);
    if example.is_file() {
        command.arg("build").arg("--manifest-path").arg(&example);
    } else {
        command.args(["build", "-p", package]);
    }
    let output = command
        .current_dir(&root)
        .args(["--target", "wasm32-wasip1", "--release"])
        .arg("--target-dir")
        .arg(&target_dir)
        .arg("--message-format=json-render-diagnostics")
        .output()
        .with_context(|| format!("running {} to build {package}", cargo.to_string_lossy()))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        bail!(
            "`cargo build -p {package} --target wasm32-wasip1 --release` failed ({}).\n\
             Is the target installed (`rustup target add wasm32-wasip1`)? cargo said:\n{stderr}",
            output.status
        );
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    wasm_artifact(&stdout, package).with_context(|| {
        format!("cargo built {package} but reported no .wasm file: is it a cdylib?\n{stderr}")
    })
}

/// The `.wasm` file from cargo's JSON messages for `package`'s cdylib.
fn wasm_artifact(messages: &str, package: &str) -> Option<PathBuf> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|msg| msg["reason"] == "compiler-artifact")
        .filter(|msg| {
            msg["target"]["name"].as_str().map(|n| n.replace('_', "-"))
                == Some(package.replace('_', "-"))
        })
        .flat_map(|msg| msg["filenames"].as_array().cloned().unwrap_or_default())
        .filter_map(|file| file.as_str().map(PathBuf::from))
        .find(|file| file.extension().is_some_and(|ext| ext == "wasm"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_packages_wasm_artifact() {
        let messages = r#"{"reason":"compiler-artifact","target":{"name":"log"},"filenames":["/t/liblog.rlib"]}
{"reason":"compiler-artifact","target":{"name":"header_append"},"filenames":["/t/header_append.wasm"]}
{"reason":"build-finished","success":true}"#;
        assert_eq!(
            wasm_artifact(messages, "header-append"),
            Some(PathBuf::from("/t/header_append.wasm"))
        );
        assert_eq!(wasm_artifact(messages, "other"), None);
    }
}
