//! Reads the module to package: a `.wasm` file, or a plugin crate that is built first.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

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

/// Runs cargo and returns the cdylib it produced.
fn build_crate(dir: &Path) -> Result<PathBuf> {
    let manifest = dir.join("Cargo.toml");
    if !manifest.is_file() {
        return Err(UserError(format!(
            "{} is a directory without Cargo.toml",
            dir.display()
        ))
        .into());
    }
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
        .stderr(std::process::Stdio::inherit())
        .output()
        .context("running cargo")?;
    if !output.status.success() {
        return Err(UserError(format!(
            "cargo build of {} failed (see its output above)",
            dir.display()
        ))
        .into());
    }
    let mut found = Vec::new();
    for line in output.stdout.split(|b| *b == b'\n') {
        let Ok(msg) = serde_json::from_slice::<serde_json::Value>(line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        let is_cdylib = msg["target"]["kind"]
            .as_array()
            .is_some_and(|k| k.iter().any(|v| v == "cdylib"));
        if let (true, Some(files)) = (is_cdylib, msg["filenames"].as_array()) {
            found.extend(
                files
                    .iter()
                    .filter_map(|f| f.as_str())
                    .filter(|f| f.ends_with(".wasm"))
                    .map(PathBuf::from),
            );
        }
    }
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!(UserError(format!(
            "building {} produced no .wasm: the crate needs `crate-type = [\"cdylib\"]`",
            dir.display()
        ))),
        many => bail!(UserError(format!(
            "building {} produced {} .wasm files; pass one of them",
            dir.display(),
            many.len()
        ))),
    }
}
