//! Building plugin crates to `.wasm` from inside a test, by package name.

use std::path::PathBuf;

use anyhow::{bail, Result};

use crate::locate::repo_root;

/// Builds the plugin `package` (a crate in `plugins/` or `examples/`) for `wasm32-wasip1`
/// (release profile, the one that ships) and returns the path of its `.wasm`.
///
/// The build is weir-runtime's ([`weir_runtime::build::wasm_of`]), the one `Plugin::build`
/// uses: each crate is built once per test process, into `<target>/weir-wasm`, where
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

/// Like [`build_wasm`], returning the error instead of panicking.
pub fn try_build_wasm(package: &str) -> Result<PathBuf> {
    let root = repo_root();
    let Some(dir) = ["plugins", "examples"]
        .iter()
        .map(|parent| root.join(parent).join(package))
        .find(|dir| dir.join("Cargo.toml").is_file())
    else {
        bail!("no plugin crate named {package} in plugins/ or examples/");
    };
    Ok(weir_runtime::build::wasm_of(&dir)?)
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
