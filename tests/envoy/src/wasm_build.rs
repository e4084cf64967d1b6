//! Building plugin crates to `.wasm` from inside a test, by package name.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};

use anyhow::{bail, Result};
use weir_runtime::build::WasmBuild;

use crate::locate::repo_root;

/// Builds the plugin `package` (a crate in `plugins/` or `examples/`) for `wasm32-wasip1`
/// (release profile, the one that ships) and returns the path of its `.wasm`.
///
/// The build is weir-runtime's ([`weir_runtime::build`]), the one `Plugin::build` uses:
/// each crate is built once per test process, into `<target>/weir-wasm`, where
/// `make build` also builds, so a test reuses what `make build` or another suite built.
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

/// [`build_wasm`] with cargo features on (`&["ext-authz-grpc"]`), built in a target
/// directory of its own (`weir-wasm.<features>`), so builds of one package with different
/// features never overwrite each other. `package` may also be the directory of
/// a crate relative to the repository (`runtime/test-plugins/x`).
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
    let dir = crate_dir(package)?;
    if features.is_empty() {
        return Ok(weir_runtime::build::wasm_of(&dir)?);
    }
    static BUILT: Mutex<Option<HashMap<String, Result<PathBuf, String>>>> = Mutex::new(None);
    // Holding the lock across the build serializes builds, which cargo would do anyway.
    let mut built = BUILT.lock().unwrap_or_else(PoisonError::into_inner);
    built
        .get_or_insert_with(HashMap::new)
        .entry(format!("{package}+{}", features.join(",")))
        .or_insert_with(|| {
            // A target directory per feature set: the default build, which other tests
            // in this process may be loading, is never overwritten under them.
            let target =
                weir_runtime::build::test_target_dir(&dir).with_extension(features.join("+"));
            WasmBuild::for_tests(&dir)
                .features(features)
                .target_dir(target)
                .run()
                .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(anyhow::Error::msg)
}

/// `plugins/<package>`, `examples/<package>`, or `package` as a path in the repository.
fn crate_dir(package: &str) -> Result<PathBuf> {
    let root = repo_root();
    let candidates = [
        root.join("plugins").join(package),
        root.join("examples").join(package),
        root.join(package),
    ];
    match candidates
        .into_iter()
        .find(|dir| dir.join("Cargo.toml").is_file())
    {
        Some(dir) => Ok(dir),
        None => bail!("no plugin crate named {package} in plugins/ or examples/"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_package_is_named_in_the_error() {
        let err = try_build_wasm("no-such-plugin").unwrap_err();
        assert!(err.to_string().contains("no-such-plugin"), "{err}");
    }
}
