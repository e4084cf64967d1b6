//! Reads the module to package: a `.wasm` file, or a plugin crate that is built first.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::wasm::{inspect_module, ModuleInfo};
use crate::UserError;

/// A checked module and where it came from.
#[derive(Debug, Clone)]
pub struct ModuleInput {
    /// The module bytes.
    pub wasm: Vec<u8>,
    /// What inspection found.
    pub info: ModuleInfo,
    /// The .wasm file read (built, for a crate).
    pub path: PathBuf,
}

/// Loads `path`: a directory with Cargo.toml is built for wasm32-wasip1 in release mode.
pub fn load_module(path: &Path) -> Result<ModuleInput> {
    let wasm_path = if path.is_dir() {
        build_crate(path)?
    } else {
        path.to_path_buf()
    };
    let wasm =
        std::fs::read(&wasm_path).with_context(|| format!("reading {}", wasm_path.display()))?;
    let info =
        inspect_module(&wasm).with_context(|| format!("checking {}", wasm_path.display()))?;
    Ok(ModuleInput {
        wasm,
        info,
        path: wasm_path,
    })
}

/// Builds the crate with the one build every part of Weir uses, showing cargo's progress.
fn build_crate(dir: &Path) -> Result<PathBuf> {
    weir_runtime::build::WasmBuild::new(dir)
        .show_cargo_output(true)
        .run()
        .map_err(|e| UserError(e.to_string()).into())
}
