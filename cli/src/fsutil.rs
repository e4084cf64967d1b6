//! Writes that leave either the complete file or nothing: data goes to a temporary file in
//! the destination's directory and is renamed into place only when complete.

use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};

/// The directory a path lives in (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Writes `data` to `path` atomically; an existing file is replaced.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = parent_dir(path);
    let mut tmp = tempfile::Builder::new()
        .prefix(".weir-partial-")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    tmp.write_all(data)
        .with_context(|| format!("writing {}", path.display()))?;
    tmp.as_file()
        .sync_all()
        .with_context(|| format!("flushing {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("renaming the finished file to {}", path.display()))?;
    Ok(())
}
