//! Finding Node.js and making sure the provider's npm packages are installed.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};

/// This crate's directory (`tests/idp`), which holds `install.sh` and `provider/`.
pub fn idp_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The provider program (`tests/idp/provider/provider.mjs`).
pub fn provider_script() -> PathBuf {
    idp_dir().join("provider/provider.mjs")
}

/// The Node.js binary: `$WEIR_NODE`, else `node` on `PATH`.
pub fn find_node() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("WEIR_NODE") {
        let path = PathBuf::from(path);
        if path.is_file() {
            return Ok(path);
        }
        bail!(
            "WEIR_NODE points at {}, which is not a file: fix it or unset it",
            path.display()
        );
    }
    std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|dir| dir.join("node"))
        .find(|candidate| candidate.is_file())
        .context(
            "no Node.js found (looked at $WEIR_NODE and PATH): the test OpenID Provider runs on \
             Node.js >= 18.12; install it (apt-get install nodejs npm) or set WEIR_NODE",
        )
}

/// Runs `tests/idp/install.sh` once per process (it returns at once when the packages
/// already match `package-lock.json`). A lock file keeps concurrent test processes from
/// running `npm ci` over each other.
pub fn ensure_installed() -> Result<()> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| install().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn install() -> Result<()> {
    let lock_path = idp_dir().join("provider/.install.lock");
    let lock = File::create(&lock_path)
        .with_context(|| format!("creating the install lock {}", lock_path.display()))?;
    lock.lock()
        .with_context(|| format!("locking {}", lock_path.display()))?;
    let script = idp_dir().join("install.sh");
    // The script runs `node` and `npm` from PATH: put the chosen Node.js first.
    let node = find_node()?;
    let mut path = node
        .parent()
        .map(Path::to_path_buf)
        .into_iter()
        .collect::<Vec<_>>();
    path.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    let output = Command::new("bash")
        .arg(&script)
        .env(
            "PATH",
            std::env::join_paths(path).context("building PATH for install.sh")?,
        )
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    drop(lock);
    if !output.status.success() {
        bail!(
            "{} failed ({}): {}{}\nRun it by hand to see why; it needs Node.js and npm with \
             access to the npm registry.",
            script.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}
