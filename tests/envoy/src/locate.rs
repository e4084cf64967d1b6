//! Finding the repository and the Envoy binary.

use std::path::{Path, PathBuf};

use anyhow::Result;

/// The repository root (the workspace that holds this crate at `tests/envoy`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// The Envoy binary to run, found as `weir run` finds it
/// ([`weir_cli::run::process::find_envoy`]): `$WEIR_ENVOY`, the project's `.venv/bin/envoy`
/// (what `make envoy` installs), else `envoy` on `PATH`.
pub fn find_envoy() -> Result<PathBuf> {
    weir_cli::run::process::find_envoy(None)
}
