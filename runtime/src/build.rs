//! Building a plugin crate to `.wasm`: the one place in Weir that runs cargo for a guest and
//! finds the module it produced. The embedding API ([`Plugin::build`](crate::Plugin::build)),
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

use crate::error::LoadError;
use crate::sync::lock;

/// The release build of one plugin crate for `wasm32-wasip1`.
#[derive(Debug, Clone)]
pub struct WasmBuild {
    crate_dir: PathBuf,
    target_dir: Option<PathBuf>,
    show_cargo_output: bool,
    isolate_env: bool,
    features: Vec<String>,
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
            features: Vec::new(),
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

    /// Turns on the crate's cargo `features` (e.g. `["ext-authz-grpc"]`).
    pub fn features<S: AsRef<str>>(mut self, features: &[S]) -> Self {
        self.features = features.iter().map(|f| f.as_ref().to_owned()).collect();
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
        if !self.features.is_empty() {
            command.arg("--features").arg(self.features.join(","));
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
