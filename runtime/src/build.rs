//! Building a plugin crate to `.wasm`: the one place in Weir that runs cargo for a guest and
//! finds the module it produced. The test API ([`Plugin::build`](crate::Plugin::build)),
//! `weir package` / `weir run` / `weir exec` given a crate directory, and the Envoy suites
//! (`weir_envoy_tests::build_wasm`) all build through [`WasmBuild`].
//!
//! ```no_run
//! let wasm = weir_runtime::build::WasmBuild::new("examples/hello").run()?;
//! assert!(wasm.extension().is_some_and(|e| e == "wasm"));
//! # Ok::<(), weir_runtime::build::BuildError>(())
//! ```
//!
//! Inside tests, [`wasm_of`] builds each crate once per process, in a target directory of
//! its own ([`test_target_dir`], `<target>/weir-wasm`), so the outer `cargo test`, which
//! holds the lock on its own target directory, is never waited on. `make build`
//! (`scripts/build-plugins.sh`) builds into that same directory, so the tests reuse what it
//! built.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};

use crate::engine::lock;
use crate::error::LoadError;

/// The release build of one plugin crate for `wasm32-wasip1`.
#[derive(Debug, Clone)]
pub struct WasmBuild {
    crate_dir: PathBuf,
    target_dir: Option<PathBuf>,
    show_cargo_output: bool,
    isolate_env: bool,
}

/// Why a build produced no module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildError(String);

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BuildError {}

impl WasmBuild {
    /// `cargo build --release --target wasm32-wasip1` of the crate in `crate_dir`, into the
    /// crate's usual target directory (cargo's rules: `CARGO_TARGET_DIR`, the workspace's
    /// `target`).
    pub fn new(crate_dir: impl AsRef<Path>) -> Self {
        WasmBuild {
            crate_dir: crate_dir.as_ref().to_path_buf(),
            target_dir: None,
            show_cargo_output: false,
            isolate_env: false,
        }
    }

    /// The same build as seen from a test: into [`test_target_dir`], with the outer build's
    /// settings (`CARGO_TARGET_DIR`, `CARGO_BUILD_TARGET`, `RUSTFLAGS`) kept away from it.
    pub fn for_tests(crate_dir: impl AsRef<Path>) -> Self {
        let mut build = WasmBuild::new(crate_dir);
        build.target_dir = Some(test_target_dir(&build.crate_dir));
        build.isolate_env = true;
        build
    }

    /// Builds into `dir` instead.
    pub fn target_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.target_dir = Some(dir.into());
        self
    }

    /// Lets cargo's progress and diagnostics through to this process's stderr (the CLI);
    /// otherwise they are kept and the tail is put in the error.
    pub fn show_cargo_output(mut self, show: bool) -> Self {
        self.show_cargo_output = show;
        self
    }

    /// Runs cargo and returns the path of the crate's `.wasm`.
    pub fn run(&self) -> Result<PathBuf, BuildError> {
        let manifest = self.crate_dir.join("Cargo.toml");
        if !manifest.is_file() {
            return Err(BuildError(format!(
                "{} has no Cargo.toml: pass the plugin crate's directory",
                self.crate_dir.display()
            )));
        }
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut command = Command::new(cargo);
        command
            .args(["build", "--release", "--target", "wasm32-wasip1"])
            .arg("--message-format=json-render-diagnostics")
            .arg("--manifest-path")
            .arg(&manifest);
        if let Some(dir) = &self.target_dir {
            command.arg("--target-dir").arg(dir);
        }
        if self.isolate_env {
            // Settings meant for the outer (native) build must not leak into the guest build.
            for var in [
                "CARGO_TARGET_DIR",
                "CARGO_BUILD_TARGET",
                "RUSTFLAGS",
                "CARGO_ENCODED_RUSTFLAGS",
            ] {
                command.env_remove(var);
            }
        }
        if self.show_cargo_output {
            command.stderr(Stdio::inherit());
        }
        let output = command
            .output()
            .map_err(|e| BuildError(format!("cannot run cargo: {e}")))?;
        if !output.status.success() {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let tail: Vec<&str> = stderr.lines().rev().take(30).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            let shown = if self.show_cargo_output {
                "see cargo's output above".to_string()
            } else {
                tail.join("\n")
            };
            return Err(BuildError(format!(
                "cargo build --release --target wasm32-wasip1 of {} failed (is the target installed? `rustup target add wasm32-wasip1`):\n{shown}",
                manifest.display(),
            )));
        }
        let wanted = manifest.canonicalize().unwrap_or(manifest.clone());
        let found = wasm_artifacts(&String::from_utf8_lossy(&output.stdout), &wanted);
        match found.as_slice() {
            [one] => Ok(one.clone()),
            [] => Err(BuildError(format!(
                "building {} produced no .wasm: the crate needs `crate-type = [\"cdylib\"]`",
                self.crate_dir.display()
            ))),
            many => Err(BuildError(format!(
                "building {} produced {} .wasm files; pass one of them",
                self.crate_dir.display(),
                many.len()
            ))),
        }
    }
}

/// The `.wasm` files of cdylib targets of the package at `manifest`, from cargo's JSON
/// messages (a workspace build also reports its dependencies, which are never cdylibs of
/// this package).
fn wasm_artifacts(messages: &str, manifest: &Path) -> Vec<PathBuf> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|msg| msg["reason"] == "compiler-artifact")
        .filter(|msg| msg["manifest_path"].as_str().map(Path::new) == Some(manifest))
        .filter(|msg| {
            msg["target"]["kind"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|k| k == "cdylib"))
        })
        .flat_map(|msg| msg["filenames"].as_array().cloned().unwrap_or_default())
        .filter_map(|file| file.as_str().map(PathBuf::from))
        .filter(|file| file.extension().is_some_and(|ext| ext == "wasm"))
        .collect()
}

type BuildSlot = Arc<OnceLock<Result<PathBuf, String>>>;

/// The `.wasm` built from the crate at `crate_dir` by [`WasmBuild::for_tests`], building it
/// on first use; concurrent callers for the same crate wait for the one build.
pub fn wasm_of(crate_dir: &Path) -> Result<PathBuf, LoadError> {
    static BUILDS: OnceLock<Mutex<HashMap<PathBuf, BuildSlot>>> = OnceLock::new();
    let key = crate_dir
        .canonicalize()
        .unwrap_or_else(|_| crate_dir.to_path_buf());
    let slot = lock(BUILDS.get_or_init(Default::default))
        .entry(key.clone())
        .or_default()
        .clone();
    slot.get_or_init(|| WasmBuild::for_tests(&key).run().map_err(|e| e.0))
        .clone()
        .map_err(LoadError::Build)
}

/// Where test builds go: `weir-wasm` inside the running test's target directory.
pub fn test_target_dir(crate_dir: &Path) -> PathBuf {
    outer_target_dir(crate_dir).join("weir-wasm")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_only_the_crates_own_cdylib_wasm() {
        let messages = r#"{"reason":"compiler-artifact","manifest_path":"/w/log/Cargo.toml","target":{"kind":["lib"]},"filenames":["/t/liblog.rlib"]}
{"reason":"compiler-artifact","manifest_path":"/w/other/Cargo.toml","target":{"kind":["cdylib"]},"filenames":["/t/other.wasm"]}
{"reason":"compiler-artifact","manifest_path":"/w/p/Cargo.toml","target":{"kind":["lib","cdylib"]},"filenames":["/t/libp.rlib","/t/p.wasm"]}
not json
{"reason":"build-finished","success":true}"#;
        assert_eq!(
            wasm_artifacts(messages, Path::new("/w/p/Cargo.toml")),
            vec![PathBuf::from("/t/p.wasm")]
        );
        assert!(wasm_artifacts(messages, Path::new("/w/log/Cargo.toml")).is_empty());
    }

    #[test]
    fn a_directory_without_a_manifest_is_refused_before_cargo_runs() {
        let err = WasmBuild::new("/nonexistent/plugin").run().unwrap_err();
        assert!(err.to_string().contains("has no Cargo.toml"), "{err}");
    }
}
