//! Compiling hand-written WAT guests to `.wasm` files Envoy can load.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Compiles the WAT file at `source` and returns the path of the `.wasm` it wrote.
///
/// The WAT stays the one source of truth: nothing generated is committed. The output goes
/// to `<tmp>/weir-wat/<name>-<hash of the bytes>.wasm`, so concurrent tests and processes
/// that compile the same source agree on the file, and an edited source gets a new one.
pub fn compile_wat(source: impl AsRef<Path>) -> Result<PathBuf> {
    let source = source.as_ref();
    let wasm = wat::parse_file(source)
        .with_context(|| format!("compiling the WAT guest {}", source.display()))?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    wasm.hash(&mut hasher);
    let stem = source.file_stem().unwrap_or_default().to_string_lossy();
    let dir = std::env::temp_dir().join("weir-wat");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("{stem}-{:016x}.wasm", hasher.finish()));
    if std::fs::read(&path).is_ok_and(|existing| existing == wasm) {
        return Ok(path);
    }
    // Written aside and renamed, so a reader never sees half a module.
    let partial = dir.join(format!("{stem}.{}.partial", std::process::id()));
    std::fs::write(&partial, &wasm).with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, &path)
        .with_context(|| format!("moving the compiled guest to {}", path.display()))?;
    Ok(path)
}
