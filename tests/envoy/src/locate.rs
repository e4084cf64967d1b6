//! Finding the repository and the Envoy binary.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

/// The repository root (the workspace that holds this crate at `tests/envoy`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// The Envoy binary to run: `$WEIR_ENVOY`, else `<repo>/.venv/bin/envoy` (what
/// `make envoy` installs), else `envoy` on `PATH`.
pub fn find_envoy() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("WEIR_ENVOY") {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        bail!(
            "WEIR_ENVOY points at {}, which is not a file: fix it, or unset it and run `make envoy`",
            path.display()
        );
    }
    let venv = repo_root().join(".venv/bin/envoy");
    if venv.is_file() {
        return Ok(venv);
    }
    if let Some(on_path) = search_path("envoy") {
        return Ok(on_path);
    }
    bail!(
        "no Envoy found (looked at $WEIR_ENVOY, {}, and PATH): run `make envoy` in {} \
         to install Envoy 1.40 into .venv, or set WEIR_ENVOY to an Envoy binary",
        venv.display(),
        repo_root().display()
    )
}

fn search_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}
