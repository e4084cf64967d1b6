//! A per-Envoy scratch directory that survives a failing test.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result};

/// Holds the bootstrap, the admin address file and Envoy's log.
///
/// Removed on drop, except while the thread is panicking (a failed assertion): then it is
/// kept and its path printed, so the log can be read after the test.
#[derive(Debug)]
pub(crate) struct ScratchDir {
    path: PathBuf,
    keep: bool,
}

impl ScratchDir {
    pub(crate) fn create() -> Result<Self> {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let base = std::env::temp_dir();
        loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = base.join(format!("weir-envoy-{}-{n}", std::process::id()));
            match std::fs::create_dir(&path) {
                Ok(()) => return Ok(Self { path, keep: false }),
                // Left over from an earlier process that had the same pid: pick another.
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(err) => {
                    return Err(err).with_context(|| format!("creating {}", path.display()))
                }
            }
        }
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Keeps the directory even if the test goes on to pass (an error is on its way).
    pub(crate) fn keep(&mut self) {
        self.keep = true;
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if self.keep {
            // Whoever kept it has already reported the path.
            return;
        }
        if std::thread::panicking() {
            eprintln!(
                "weir-envoy-tests: kept Envoy's files for this failed test in {} (envoy.yaml, envoy.log)",
                self.path.display()
            );
            return;
        }
        let _ = std::fs::remove_dir_all(&self.path);
    }
}
