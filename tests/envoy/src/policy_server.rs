//! The reference policy server (`examples/policy-server`) as a child process on 127.0.0.1:
//! built once per test process, configured in a fresh directory, stopped on drop.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Mutex, PoisonError};
use std::time::Duration;

use crate::{repo_root, HttpRequest};
use anyhow::{bail, Context, Result};

/// The server's ACL: alice may read and write, the `writers` group may only write, and
/// bob (in no group) gets nothing.
const ACL_YAML: &str = "\
subjects:
  alice:
    functions: [read_data, write_data]
    files: [/data/alice]
groups:
  writers:
    functions: [write_data]
";

/// Where the server gets the identity provider's keys.
#[derive(Debug, Clone, Copy)]
pub enum UserKeys<'a> {
    /// A JWKS document, written to a file the server reads at start-up.
    File(&'a str),
    /// A JWKS URL; one that nothing answers makes every check a 500.
    Url(&'a str),
}

/// A running policy server; killed (and its directory removed) on drop.
#[derive(Debug)]
pub struct PolicyServer {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    dir: PathBuf,
    /// The configuration after its `listen:` line, which a restart rewrites to `addr`.
    config: String,
    /// Built with `--release`.
    release: bool,
}

/// How to start a [`PolicyServer`]; see [`PolicyServer::builder`].
#[derive(Debug, Clone)]
pub struct PolicyServerBuilder<'a> {
    issuer: &'a str,
    audience: &'a str,
    keys: UserKeys<'a>,
    listen: SocketAddr,
    release: bool,
    key_algorithm: &'static str,
    ext_authz_prefix: Option<&'a str>,
    ext_authz_grpc_header: Option<&'a str>,
}

impl PolicyServerBuilder<'_> {
    /// Listens on `listen`, for a server Envoy must know before it starts (default: any
    /// free port on 127.0.0.1).
    pub fn listen(mut self, listen: SocketAddr) -> Self {
        self.listen = listen;
        self
    }

    /// With `true`, builds the server with `--release`, as a deployment runs it: the
    /// benchmarks need it (the dev build answers about 7x fewer checks per second and would
    /// be the bottleneck of any chain in front of it). Tests keep the quicker dev build.
    pub fn release(mut self, release: bool) -> Self {
        self.release = release;
        self
    }

    /// The grants' signing algorithm: `ES256` (the default here: the suites forge grants
    /// with [`PolicyServer::signing_key_pem`] as an ES256 key) or `EdDSA` (the server's own
    /// default, and the cheapest for check-header to verify).
    pub fn key_algorithm(mut self, algorithm: &'static str) -> Self {
        self.key_algorithm = algorithm;
        self
    }

    /// Turns on the adapter for Envoy's `ext_authz` filter (HTTP service) under `prefix`:
    /// the user's ID token from the `IdToken` cookie, the grant in `authz_complete`.
    pub fn ext_authz(mut self, prefix: &'static str) -> Self {
        self.ext_authz_prefix = Some(prefix);
        self
    }

    /// Turns on the ext_authz gRPC service (`Authorization/Check`, on the same address over
    /// HTTP/2), putting the grant in `grant_header` on an allow.
    pub fn ext_authz_grpc(mut self, grant_header: &'static str) -> Self {
        self.ext_authz_grpc_header = Some(grant_header);
        self
    }

    /// Writes the configuration with a new signing key ([`Self::key_algorithm`]), starts the
    /// server and waits until it prints its address.
    pub fn start(self) -> Result<PolicyServer> {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let binary = binary(self.release)?;
        let dir = std::env::temp_dir().join(format!(
            "weir-policy-server-{}-{}",
            std::process::id(),
            COUNT.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::write(dir.join("acl.yaml"), ACL_YAML)?;
        let source = match self.keys {
            UserKeys::File(jwks) => {
                std::fs::write(dir.join("idp-jwks.json"), jwks)?;
                "jwks_file: idp-jwks.json".to_owned()
            }
            UserKeys::Url(url) => format!("jwks_url: {url}\n  jwks_fetch_timeout_ms: 200"),
        };
        let (issuer, audience) = (self.issuer, self.audience);
        let mut config = format!(
            "acl_file: acl.yaml\n\
             user_token:\n  issuers: [{issuer}]\n  audiences: [{audience}]\n  {source}\n"
        );
        if let Some(prefix) = self.ext_authz_prefix {
            config += &format!("ext_authz:\n  path_prefix: {prefix}\n");
        }
        if let Some(header) = self.ext_authz_grpc_header {
            config += &format!("ext_authz_grpc:\n  grant_header: {header}\n");
        }
        // Last, so PolicyServer::reuse_grants_for can add to it.
        config += &format!(
            "issued_token:\n  signing_key: signing.pem\n  algorithm: {}\n",
            self.key_algorithm
        );
        let keygen = Command::new(&binary)
            .arg("--generate-key")
            .arg(dir.join("signing.pem"))
            .args(["--key-algorithm", self.key_algorithm])
            .output()
            .context("running policy-server --generate-key")?;
        if !keygen.status.success() {
            bail!(
                "policy-server --generate-key failed: {}",
                String::from_utf8_lossy(&keygen.stderr)
            );
        }
        let (child, addr) = spawn(&binary, &dir, self.listen, &config)?;
        Ok(PolicyServer {
            child,
            addr,
            dir,
            config,
            release: self.release,
        })
    }
}

impl PolicyServer {
    /// A server for identity provider `issuer`/`audience`, taking the provider's keys from
    /// `keys`; see [`PolicyServerBuilder`] for the options.
    pub fn builder<'a>(
        issuer: &'a str,
        audience: &'a str,
        keys: UserKeys<'a>,
    ) -> PolicyServerBuilder<'a> {
        PolicyServerBuilder {
            issuer,
            audience,
            keys,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            release: false,
            key_algorithm: "ES256",
            ext_authz_prefix: None,
            ext_authz_grpc_header: None,
        }
    }

    /// Starts the server for identity provider `issuer`/`audience` with a new ES256 signing
    /// key, and waits until it prints its address.
    pub fn start(issuer: &str, audience: &str, keys: UserKeys<'_>) -> Result<Self> {
        Self::builder(issuer, audience, keys).start()
    }

    /// [`PolicyServer::start`] on a given address, for a server Envoy must know before it
    /// starts (port 0: any free port).
    pub fn start_on(
        listen: SocketAddr,
        issuer: &str,
        audience: &str,
        keys: UserKeys<'_>,
    ) -> Result<Self> {
        Self::builder(issuer, audience, keys).listen(listen).start()
    }

    /// Kills the server, as a crash or a rolling update would; [`PolicyServer::start_again`]
    /// brings it back.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again after [`PolicyServer::stop`] on the same address, with the
    /// same signing key and ACL, so grants it signed before still verify. Its log goes on in
    /// the same file.
    pub fn start_again(&mut self) -> Result<()> {
        self.stop();
        let (child, addr) = spawn(&binary(self.release)?, &self.dir, self.addr, &self.config)?;
        self.child = child;
        if addr != self.addr {
            bail!(
                "the restarted policy server listens on {addr}, not {}",
                self.addr
            );
        }
        Ok(())
    }

    /// Restarts the server letting acl-check reuse its grants for `seconds`
    /// (`issued_token.reuse_seconds`: `Cache-Control: private, max-age` on each 200).
    pub fn reuse_grants_for(&mut self, seconds: u64) -> Result<()> {
        // `issued_token` is the configuration's last section.
        self.config
            .push_str(&format!("  reuse_seconds: {seconds}\n"));
        self.start_again()
    }

    /// The public keys check-header verifies grants with, from the server's own endpoint.
    pub fn jwks(&self) -> Result<String> {
        let response =
            HttpRequest::get(&format!("http://{}/.well-known/jwks.json", self.addr))?.send()?;
        if response.status != 200 {
            bail!("GET /.well-known/jwks.json answered {}", response.status);
        }
        Ok(response.text())
    }

    /// The private signing key (PKCS#8 PEM), to forge grants that differ in one respect.
    pub fn signing_key_pem(&self) -> Result<String> {
        Ok(std::fs::read_to_string(self.dir.join("signing.pem"))?)
    }

    /// The server's process id (for reading its CPU time in the benchmarks).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("policy-server.log")).unwrap_or_default()
    }
}

impl Drop for PolicyServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("policy-server files kept in {}", self.dir.display());
        }
    }
}

/// Runs the server in `dir` listening on `listen`, and waits until it prints its address.
fn spawn(
    binary: &Path,
    dir: &Path,
    listen: SocketAddr,
    config: &str,
) -> Result<(Child, SocketAddr)> {
    std::fs::write(
        dir.join("policy-server.yaml"),
        format!("listen: {listen}\n{config}"),
    )?;
    let log_path = dir.join("policy-server.log");
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)?;
    let mut child = Command::new(binary)
        .arg("--config")
        .arg(dir.join("policy-server.yaml"))
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .context("starting policy-server")?;
    let stdout = child.stdout.take().context("policy-server stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx.recv_timeout(Duration::from_secs(20)).unwrap_or_default();
    let Some(addr) = line
        .trim()
        .strip_prefix("http://")
        .and_then(|a| a.parse().ok())
    else {
        let _ = child.kill();
        let _ = child.wait();
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        bail!("policy-server printed no address ({line:?}); its log:\n{log}");
    };
    Ok((child, addr))
}

/// Builds `examples/policy-server` (its own workspace) once per test process and profile
/// into the shared target directory and returns the binary.
fn binary(release: bool) -> Result<PathBuf> {
    static BUILT: Mutex<[Option<Result<PathBuf, String>>; 2]> = Mutex::new([None, None]);
    let mut built = BUILT.lock().unwrap_or_else(PoisonError::into_inner);
    built[usize::from(release)]
        .get_or_insert_with(|| build(release).map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn build(release: bool) -> Result<PathBuf> {
    let root = repo_root();
    let target: PathBuf =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let manifest: &Path = &root.join("examples/policy-server/Cargo.toml");
    let mut command = Command::new(&cargo);
    command
        .args(["build", "-q", "--bin", "policy-server", "--manifest-path"])
        .arg(manifest);
    if release {
        command.arg("--release");
    }
    let output = command
        .env("CARGO_TARGET_DIR", &target)
        .output()
        .context("running cargo to build the policy server")?;
    if !output.status.success() {
        bail!(
            "`cargo build --manifest-path {}` failed; fix the policy server first:\n{}",
            manifest.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(target
        .join(if release { "release" } else { "debug" })
        .join("policy-server"))
}
