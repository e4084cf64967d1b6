//! Starting, asking and stopping the test OpenID Provider process.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use serde_json::Value;

use weir_test_http::HttpRequest;

use crate::client::{SigningAlg, TestClient};
use crate::install::{ensure_installed, find_node, provider_script};
use crate::tamper::IdTokenTamper;

/// Configures and starts a [`Provider`].
#[derive(Debug, Clone)]
pub struct ProviderBuilder {
    clients: Vec<TestClient>,
    issuer_path: String,
    default_alg: SigningAlg,
    ttls: Vec<(&'static str, u64)>,
    rotate_refresh_tokens: bool,
    port: u16,
    startup_timeout: Duration,
}

impl ProviderBuilder {
    /// Registers a client; at least one is needed.
    pub fn client(mut self, client: TestClient) -> Self {
        self.clients.push(client);
        self
    }

    /// Puts the issuer under `/realms/<realm>`, as Keycloak does.
    pub fn realm(self, realm: &str) -> Self {
        self.issuer_path(&format!("/realms/{realm}"))
    }

    /// Puts the issuer (and every endpoint) under `path`, such as `/realms/ingress`.
    pub fn issuer_path(mut self, path: &str) -> Self {
        self.issuer_path = path.to_owned();
        self
    }

    /// The ID token algorithm for clients that do not choose one (default ES256).
    pub fn default_alg(mut self, alg: SigningAlg) -> Self {
        self.default_alg = alg;
        self
    }

    /// ID token lifetime (whole seconds, at least 1; default 300 s).
    pub fn id_token_ttl(self, ttl: Duration) -> Self {
        self.ttl("id-token-ttl", ttl)
    }

    /// Access token lifetime (whole seconds, at least 1; default 300 s).
    pub fn access_token_ttl(self, ttl: Duration) -> Self {
        self.ttl("access-token-ttl", ttl)
    }

    /// Refresh token (and grant) lifetime (default 3600 s).
    pub fn refresh_token_ttl(self, ttl: Duration) -> Self {
        self.ttl("refresh-token-ttl", ttl)
    }

    /// Provider session lifetime (default 3600 s).
    pub fn session_ttl(self, ttl: Duration) -> Self {
        self.ttl("session-ttl", ttl)
    }

    /// Makes every refresh return a new refresh token and consume the old one (default:
    /// off, as in Keycloak, where a refresh token stays valid until it expires).
    pub fn rotate_refresh_tokens(mut self, rotate: bool) -> Self {
        self.rotate_refresh_tokens = rotate;
        self
    }

    fn ttl(mut self, flag: &'static str, ttl: Duration) -> Self {
        self.ttls.retain(|(f, _)| *f != flag);
        self.ttls.push((flag, ttl.as_secs().max(1)));
        self
    }

    /// Listens on this port of 127.0.0.1 (default 0: the kernel picks a free one).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// How long to wait for the ready line (default 20 s).
    pub fn startup_timeout(mut self, timeout: Duration) -> Self {
        self.startup_timeout = timeout;
        self
    }

    /// Installs the npm packages if needed, starts the provider and waits until it listens.
    pub fn start(self) -> Result<Provider> {
        if self.clients.is_empty() {
            bail!("the test provider needs at least one client: add one with .client(..)");
        }
        ensure_installed()?;
        let dir = tempfile::Builder::new()
            .prefix("weir-idp-")
            .tempdir()
            .context("creating a directory for the provider's log")?;
        let started = Instant::now();
        let (child, ready) = match self.spawn(dir.path(), self.port) {
            Ok(running) => running,
            Err(e) => {
                let kept = dir.keep();
                return Err(e.context(format!(
                    "the test OpenID Provider did not start; its log is kept in {}",
                    kept.display()
                )));
            }
        };
        Ok(Provider {
            child,
            log_path: dir.path().join("provider.log"),
            dir: Some(dir),
            ready,
            builder: self,
            startup: started.elapsed(),
        })
    }

    /// Runs the provider with its log and key state in `dir` and waits for the ready line.
    /// The log is appended to and the state file reused, so a second run in the same
    /// directory is a restart of the same provider.
    fn spawn(&self, dir: &Path, port: u16) -> Result<(Child, Ready)> {
        let node = find_node()?;
        let log_path = dir.join("provider.log");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let clients: Vec<Value> = self.clients.iter().map(TestClient::metadata).collect();
        let mut command = Command::new(&node);
        command
            .arg(provider_script())
            .arg("--port")
            .arg(port.to_string())
            .arg("--alg")
            .arg(self.default_alg.name())
            .arg("--clients")
            .arg(Value::Array(clients).to_string())
            .arg("--state-file")
            .arg(dir.join("state.json"))
            .arg("--exit-on-stdin-close")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log);
        if !self.issuer_path.is_empty() {
            command.arg("--issuer-path").arg(&self.issuer_path);
        }
        if self.rotate_refresh_tokens {
            command.arg("--rotate-refresh-tokens");
        }
        for (flag, seconds) in &self.ttls {
            command.arg(format!("--{flag}")).arg(seconds.to_string());
        }
        let mut child = command.spawn().with_context(|| {
            format!(
                "starting {} {}",
                node.display(),
                provider_script().display()
            )
        })?;
        match wait_for_ready(&mut child, self.startup_timeout, &log_path) {
            Ok(ready) => Ok((child, ready)),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(e)
            }
        }
    }
}

/// The JSON line the provider prints once it listens.
#[derive(Debug, Clone, Deserialize)]
struct Ready {
    issuer: String,
    port: u16,
    discovery: String,
    jwks_uri: String,
    admin: String,
    signing_kids: Vec<String>,
}

fn wait_for_ready(child: &mut Child, timeout: Duration, log_path: &Path) -> Result<Ready> {
    let stdout = child
        .stdout
        .take()
        .context("the provider's stdout was not piped")?;
    let (tx, rx) = mpsc::channel();
    // The reader outlives the wait: it drains stdout until the process ends.
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let log = || std::fs::read_to_string(log_path).unwrap_or_default();
    match rx.recv_timeout(timeout) {
        Ok(line) => serde_json::from_str::<Ready>(&line).with_context(|| {
            format!("the provider's first output is not its ready line: {line:?}")
        }),
        Err(mpsc::RecvTimeoutError::Timeout) => {
            bail!("no ready line within {timeout:?}; log so far:\n{}", log())
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
            bail!(
                "the provider exited ({status}) before it was ready; log:\n{}",
                log()
            )
        }
    }
}

/// A running oidc-provider on 127.0.0.1, stopped when dropped.
///
/// When dropped during a panic (a failing test), its log is kept and its path printed.
#[derive(Debug)]
pub struct Provider {
    child: Child,
    dir: Option<tempfile::TempDir>,
    log_path: PathBuf,
    ready: Ready,
    /// How it was started, for [`Provider::start_again`].
    builder: ProviderBuilder,
    startup: Duration,
}

/// Key ids after [`Provider::rotate_keys`].
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct KeyRotation {
    /// The keys now used for signing, one per algorithm (ES256 first, then RS256).
    pub signing_kids: Vec<String>,
    /// Every key id the JWKS now publishes, newest first.
    pub jwks_kids: Vec<String>,
}

impl Provider {
    /// Starts configuring a provider.
    pub fn builder() -> ProviderBuilder {
        ProviderBuilder {
            clients: Vec::new(),
            issuer_path: String::new(),
            default_alg: SigningAlg::Es256,
            ttls: Vec::new(),
            rotate_refresh_tokens: false,
            port: 0,
            startup_timeout: Duration::from_secs(20),
        }
    }

    /// The issuer, `http://127.0.0.1:<port>[<issuer path>]`.
    pub fn issuer(&self) -> &str {
        &self.ready.issuer
    }

    /// The port it listens on (127.0.0.1 only).
    pub fn port(&self) -> u16 {
        self.ready.port
    }

    /// The socket address it listens on, for an Envoy cluster.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from((Ipv4Addr::LOCALHOST, self.ready.port))
    }

    /// `<issuer>/.well-known/openid-configuration`.
    pub fn discovery_url(&self) -> &str {
        &self.ready.discovery
    }

    /// The JWKS URL (as in the discovery document).
    pub fn jwks_url(&self) -> &str {
        &self.ready.jwks_uri
    }

    /// The key ids that signed tokens before any rotation (ES256 first, then RS256).
    pub fn initial_signing_kids(&self) -> &[String] {
        &self.ready.signing_kids
    }

    /// The clients it was started with.
    pub fn clients(&self) -> &[TestClient] {
        &self.builder.clients
    }

    /// How long start-up took, from spawning Node.js to the ready line.
    pub fn startup_time(&self) -> Duration {
        self.startup
    }

    /// Kills the provider process, as a crash or an outage would; the port is free until
    /// [`Provider::start_again`].
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the provider again after [`Provider::stop`]: same port, issuer, clients and
    /// signing keys (the current ones, after any rotation), so ID tokens it issued before
    /// still verify and relying parties need no new configuration. Its sessions, grants and
    /// refresh tokens were in memory and are gone.
    pub fn start_again(&mut self) -> Result<()> {
        self.stop();
        let dir = self
            .dir
            .as_ref()
            .context("the provider's directory is gone")?;
        let (child, ready) = self
            .builder
            .spawn(dir.path(), self.ready.port)
            .context("restarting the test OpenID Provider")?;
        self.child = child;
        if ready.issuer != self.ready.issuer {
            bail!(
                "the restarted provider has issuer {}, was {}",
                ready.issuer,
                self.ready.issuer
            );
        }
        Ok(())
    }

    /// Fetches the discovery document.
    pub fn discovery(&self) -> Result<Value> {
        self.get_json(self.discovery_url())
    }

    /// One endpoint URL from the discovery document, such as `"token_endpoint"`.
    pub fn endpoint(&self, name: &str) -> Result<String> {
        self.discovery()?
            .get(name)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .with_context(|| format!("the discovery document has no {name:?}"))
    }

    /// Fetches the JWKS.
    pub fn jwks(&self) -> Result<Value> {
        self.get_json(self.jwks_url())
    }

    /// Adds a new signing key per algorithm and makes it current; older keys stay in the
    /// JWKS, so tokens issued before still verify. Sessions and refresh tokens survive.
    pub fn rotate_keys(&self) -> Result<KeyRotation> {
        self.rotate("")
    }

    /// Like [`Provider::rotate_keys`], but older keys leave the JWKS.
    pub fn rotate_keys_retiring_old(&self) -> Result<KeyRotation> {
        self.rotate("?retire=1")
    }

    fn rotate(&self, query: &str) -> Result<KeyRotation> {
        let answer = self.admin(&format!("rotate-keys{query}"), Vec::new())?;
        serde_json::from_value(answer).context("reading the key rotation answer")
    }

    /// Makes the next token response (code or refresh grant) carry an ID token rewritten as
    /// `tamper` says; later responses are genuine again.
    pub fn tamper_next_id_token(&self, tamper: &IdTokenTamper) -> Result<()> {
        self.admin(
            "tamper-next-id-token",
            tamper.to_json().to_string().into_bytes(),
        )?;
        Ok(())
    }

    fn admin(&self, route: &str, body: Vec<u8>) -> Result<Value> {
        let url = format!("{}{route}", self.ready.admin);
        let response = HttpRequest::new("POST", &url)?
            .header("content-type", "application/json")
            .body(body)
            .send()?;
        if response.status != 200 {
            bail!(
                "POST {url} answered {}: {}",
                response.status,
                response.text()
            );
        }
        response.json()
    }

    /// Everything the provider has logged so far (one line per request, and warnings).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Where the log is written.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    fn get_json(&self, url: &str) -> Result<Value> {
        let response = HttpRequest::get(url)?.send()?;
        if response.status != 200 {
            bail!(
                "GET {url} answered {}: {}",
                response.status,
                response.text()
            );
        }
        response.json()
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            if let Some(dir) = self.dir.take() {
                let kept = dir.keep();
                eprintln!(
                    "test OpenID Provider log kept in {}",
                    kept.join("provider.log").display()
                );
            }
        }
    }
}
