//! Builds a plugin crate to `.wasm` from inside a test.
//!
//! The build runs once per crate per process, in a target directory of its own
//! (`<target>/weir-wasm`), so the outer `cargo test`, which holds the lock on its own target
//! directory, is never waited on.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

use crate::engine::lock;
use crate::error::LoadError;

type BuildSlot = Arc<OnceLock<Result<PathBuf, String>>>;

/// The `.wasm` built from the crate at `crate_dir`, building it on first use.
pub(crate) fn wasm_of(crate_dir: &Path) -> Result<PathBuf, LoadError> {
    static BUILDS: OnceLock<Mutex<HashMap<PathBuf, BuildSlot>>> = OnceLock::new();
    let key = crate_dir
        .canonicalize()
        .unwrap_or_else(|_| crate_dir.to_path_buf());
    let slot = lock(BUILDS.get_or_init(Default::default))
        .entry(key.clone())
        .or_default()
        .clone();
    slot.get_or_init(|| run_cargo(&key))
        .clone()
        .map_err(LoadError::Build)
}

/// The target directory of the running test binary (`…/target/debug/deps/<test>` → `…/target`).
fn outer_target_dir(crate_dir: &Path) -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(Path::to_path_buf))
        .unwrap_or_else(|| crate_dir.join("target"))
}

fn run_cargo(crate_dir: &Path) -> Result<PathBuf, String> {
    let manifest = crate_dir.join("Cargo.toml");
    if !manifest.is_file() {
        return Err(format!(
            "{} has no Cargo.toml: pass the plugin crate's directory",
            crate_dir.display()
        ));
    }
    let target_dir = outer_target_dir(crate_dir).join("weir-wasm");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip1",
            "--message-format=json-render-diagnostics",
        ])
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target_dir)
        // Settings meant for the outer (native) build must not leak into the guest build.
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(30).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!(
            "cargo build --target wasm32-wasip1 of {} failed (is the target installed? `rustup target add wasm32-wasip1`):\n{}",
            manifest.display(),
            tail.join("\n")
        ));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let wanted = manifest.canonicalize().unwrap_or(manifest.clone());
    for line in stdout.lines() {
        let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if message["reason"] != "compiler-artifact" {
            continue;
        }
        let same_crate = message["manifest_path"]
            .as_str()
            .map(PathBuf::from)
            .is_some_and(|p| p == wanted);
        let wasm = message["filenames"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f.as_str())
            .find(|f| f.ends_with(".wasm"));
        if let (true, Some(wasm)) = (same_crate, wasm) {
            return Ok(PathBuf::from(wasm));
        }
    }
    Err(format!(
        "cargo built {} but produced no .wasm: is it a `cdylib`?",
        manifest.display()
    ))
}
