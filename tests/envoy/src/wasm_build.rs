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

/// [`build_wasm`] with cargo features on (`&["ext-authz-grpc"]`). The `.wasm` is copied to
/// a name that says the features, so builds of one package with different features, in
/// one test process, do not overwrite each other. `package` may also be the directory of
/// a crate outside the workspace, relative to the repository (`runtime/test-plugins/x`).
///
/// # Panics
///
/// When the build fails; the message includes cargo's output.
pub fn build_wasm_with(package: &str, features: &[&str]) -> PathBuf {
    match build_cached(package, features) {
        Ok(path) => path,
        Err(err) => panic!("{err:#}"),
    }
}

/// Like [`build_wasm`], returning the error instead of panicking.
pub fn try_build_wasm(package: &str) -> Result<PathBuf> {
    build_cached(package, &[])
}

fn build_cached(package: &str, features: &[&str]) -> Result<PathBuf> {
    static BUILT: Mutex<Option<HashMap<String, Result<PathBuf, String>>>> = Mutex::new(None);
    // Holding the lock across the build serializes builds, which cargo would do anyway.
    let mut built = BUILT.lock().unwrap_or_else(PoisonError::into_inner);
    let outcome = built
        .get_or_insert_with(HashMap::new)
        .entry(format!("{package}+{}", features.join(",")))
        .or_insert_with(|| run_cargo(package, features).map_err(|err| format!("{err:#}")))
        .clone();
    outcome.map_err(anyhow::Error::msg)
}

fn run_cargo(package: &str, features: &[&str]) -> Result<PathBuf> {
    let root = repo_root();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let target_dir = root.join("target/weir-wasm");
    let example = root.join("examples").join(package).join("Cargo.toml");
    let elsewhere = root.join(package).join("Cargo.toml");
    let mut command = Command::new(&cargo);
    if example.is_file() {
        command.arg("build").arg("--manifest-path").arg(&example);
    } else if package.contains('/') && elsewhere.is_file() {
        command.arg("build").arg("--manifest-path").arg(&elsewhere);
    } else {
        command.args(["build", "-p", package]);
    }
    if !features.is_empty() {
        command.arg("--features").arg(features.join(","));
    }
    // A crate outside the workspace is named by its manifest, not its directory.
    let crate_name = if package.contains('/') {
        package_name(&elsewhere).unwrap_or_else(|| package.to_owned())
    } else {
        package.to_owned()
    };
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
    let wasm = wasm_artifact(&stdout, &crate_name).with_context(|| {
        format!("cargo built {package} but reported no .wasm file: is it a cdylib?\n{stderr}")
    })?;
    if features.is_empty() {
        return Ok(wasm);
    }
    let copy = wasm.with_extension(format!("{}.wasm", features.join("+")));
    std::fs::copy(&wasm, &copy).with_context(|| format!("copying {}", wasm.display()))?;
    Ok(copy)
}

/// The `name` of the `[package]` in `manifest`.
fn package_name(manifest: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(manifest).ok()?;
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("name ="))?;
    Some(line.split('"').nth(1)?.to_owned())
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
