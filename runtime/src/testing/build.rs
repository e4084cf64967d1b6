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

/// Where the outer build's target directory is, as far as the process can tell alone.
#[derive(Debug, PartialEq, Eq)]
enum OuterTarget {
    /// `CARGO_TARGET_DIR`, or the target directory a test binary in `<target>/<profile>/deps/` runs from.
    Known(PathBuf),
    /// Not known from the process: ask cargo for the target directory of this manifest
    /// directory's workspace. A doctest runs from a temporary directory, an example from
    /// `<target>/<profile>/examples/`: neither path says where the target directory is.
    AskCargo(PathBuf),
}

/// Decides where the outer target directory is. `target_env` is `CARGO_TARGET_DIR`,
/// `exe` the running executable, `manifest_env` `CARGO_MANIFEST_DIR` (cargo sets it for the
/// tests and doctests it runs), `crate_dir` the plugin crate being built.
fn locate_outer_target(
    target_env: Option<PathBuf>,
    exe: Option<&Path>,
    manifest_env: Option<PathBuf>,
    crate_dir: &Path,
) -> OuterTarget {
    if let Some(dir) = target_env.filter(|dir| !dir.as_os_str().is_empty()) {
        return OuterTarget::Known(dir);
    }
    // `…/target/debug/deps/<test>-<hash>` → `…/target`; only a binary in `deps` is
    // trusted, as any other place (`/tmp/rustdoctestXYZ/rust_out`) would give a wrong one.
    let in_deps = exe.filter(|exe| exe.parent().and_then(Path::file_name) == Some("deps".as_ref()));
    if let Some(target) = in_deps.and_then(|exe| exe.ancestors().nth(3)) {
        return OuterTarget::Known(target.to_path_buf());
    }
    OuterTarget::AskCargo(manifest_env.unwrap_or_else(|| crate_dir.to_path_buf()))
}

/// The target directory of the outer build (the `cargo test` that runs this process).
fn outer_target_dir(crate_dir: &Path) -> PathBuf {
    let exe = std::env::current_exe().ok();
    let located = locate_outer_target(
        std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from),
        exe.as_deref(),
        std::env::var_os("CARGO_MANIFEST_DIR").map(PathBuf::from),
        crate_dir,
    );
    match located {
        OuterTarget::Known(dir) => dir,
        OuterTarget::AskCargo(manifest_dir) => {
            workspace_target_dir(&manifest_dir).unwrap_or_else(|| manifest_dir.join("target"))
        }
    }
}

/// `target_directory` from `cargo metadata` for the workspace of `manifest_dir` (honouring
/// `build.target-dir` in `.cargo/config.toml`), or `None` when cargo cannot tell.
fn workspace_target_dir(manifest_dir: &Path) -> Option<PathBuf> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let output = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .arg("--manifest-path")
        .arg(manifest_dir.join("Cargo.toml"))
        .output()
        .ok()
        .filter(|output| output.status.success())?;
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).ok()?;
    metadata["target_directory"].as_str().map(PathBuf::from)
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

#[cfg(test)]
mod tests {
    use super::*;

    const PLUGIN: &str = "/src/my-plugin";

    fn locate(target_env: Option<&str>, exe: &str, manifest_env: Option<&str>) -> OuterTarget {
        locate_outer_target(
            target_env.map(PathBuf::from),
            Some(Path::new(exe)),
            manifest_env.map(PathBuf::from),
            Path::new(PLUGIN),
        )
    }

    fn known(dir: &str) -> OuterTarget {
        OuterTarget::Known(PathBuf::from(dir))
    }

    #[test]
    fn cargo_target_dir_wins() {
        let exe = "/src/ws/target/debug/deps/t-1a2b";
        assert_eq!(locate(Some("/tmp/tgt"), exe, None), known("/tmp/tgt"));
        // Set but empty is as good as unset.
        assert_eq!(locate(Some(""), exe, None), known("/src/ws/target"));
    }

    #[test]
    fn a_test_binary_in_deps_names_its_target_dir() {
        let exe = "/src/ws/target/debug/deps/t-1a2b";
        assert_eq!(
            locate(None, exe, Some("/src/ws/runtime")),
            known("/src/ws/target")
        );
        let cross = "/src/ws/target/x86_64-unknown-linux-gnu/debug/deps/t-1a2b";
        assert_eq!(
            locate(None, cross, None),
            known("/src/ws/target/x86_64-unknown-linux-gnu")
        );
    }

    #[test]
    fn a_doctest_or_example_binary_asks_cargo_about_the_tested_crate() {
        // rustdoc runs doctests from a temporary directory: its path says nothing.
        let doctest = "/tmp/rustdoctestAbC123/rust_out";
        let ask = |dir: &str| OuterTarget::AskCargo(PathBuf::from(dir));
        assert_eq!(
            locate(None, doctest, Some("/src/ws/runtime")),
            ask("/src/ws/runtime")
        );
        assert_eq!(
            locate(None, "/src/ws/target/debug/examples/demo", None),
            ask(PLUGIN)
        );
        assert_eq!(
            locate(None, "/deps", None),
            ask(PLUGIN),
            "no directory above deps"
        );
    }

    #[test]
    fn cargo_names_the_target_dir_this_test_runs_from() {
        let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let target = workspace_target_dir(manifest_dir).expect("cargo metadata answers");
        let exe = std::env::current_exe().expect("the test binary's path");
        let (target, exe) = (target.canonicalize().unwrap(), exe.canonicalize().unwrap());
        assert!(
            exe.starts_with(&target),
            "{} is not under {}",
            exe.display(),
            target.display()
        );
        assert_eq!(
            workspace_target_dir(Path::new("/nonexistent-weir-crate")),
            None
        );
    }
}
