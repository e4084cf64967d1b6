//! Starting, querying and stopping one Envoy process.

use std::net::SocketAddr;
use std::process::ExitStatus;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::bootstrap::{HttpFilter, Topology, WasmFilter, HTTP_LISTENER, TCP_LISTENER};
use crate::locate::find_envoy;
use crate::scratch::ScratchDir;
use crate::yaml::to_yaml;
use weir_cli::run::process::{EnvoyCommand, EnvoyProcess, Startup};
use weir_test_http::HttpRequest;

/// How long Envoy may take to become ready, or to give up on a refused config. Startup
/// with one wasm VM takes well under a second here; the margin is for a loaded machine.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// What Envoy 1.40 (V8) logs when a guest fails at run time; see [`Envoy::wasm_failures`].
/// `tests/harness.rs` makes a guest panic and trap in Envoy and checks each mark is seen.
/// A failed VM fails every later request closed (503) without logging again.
const WASM_FAILURE_MARKS: &[&str] = &["failed: Uncaught", "panicked at"];

/// Configures an Envoy before starting it; see [`Envoy::builder`].
#[derive(Debug, Clone, Default)]
pub struct EnvoyBuilder {
    topology: Topology,
    process_env: Vec<(String, String)>,
    component_log_levels: Option<String>,
    /// Worker threads beyond the default one; see [`EnvoyBuilder::concurrency`].
    concurrency: Option<usize>,
}

impl EnvoyBuilder {
    /// Appends an HTTP wasm filter; filters run in the order they are added, before the
    /// router.
    pub fn http_filter(mut self, filter: WasmFilter) -> Self {
        self.topology.http_filters.push(HttpFilter::Wasm(filter));
        self
    }

    /// Appends one of Envoy's own HTTP filters, e.g. `envoy.filters.http.jwt_authn` standing
    /// in for Istio's authn: `filter` is the whole entry (`name` and `typed_config`). Filters
    /// run in the order they are added, wasm and native alike.
    pub fn native_http_filter(mut self, filter: Value) -> Self {
        self.topology.http_filters.push(HttpFilter::Native(filter));
        self
    }

    /// Appends a network (L4) wasm filter to the TCP proxy listener, which this enables.
    pub fn network_filter(mut self, filter: WasmFilter) -> Self {
        self.topology.network_filters.push(filter);
        self
    }

    /// Adds the TCP proxy listener even without network filters (needs an upstream).
    pub fn tcp_listener(mut self) -> Self {
        self.topology.tcp_listener = true;
        self
    }

    /// Routes all HTTP (and TCP) traffic to `addr`. Without one, every HTTP request gets a
    /// direct `200` from Envoy's route.
    pub fn upstream(mut self, addr: SocketAddr) -> Self {
        self.topology.upstream = Some(addr);
        self
    }

    /// Makes Envoy speak HTTP/2 (prior knowledge) to the [`EnvoyBuilder::upstream`], so
    /// request and response trailers travel end to end (HTTP/1.1 drops them). The HTTP
    /// listener accepts HTTP/1.1 and HTTP/2 (h2c prior knowledge) either way.
    pub fn upstream_http2(mut self) -> Self {
        self.topology.upstream_http2 = true;
        self
    }

    /// Adds a cluster `name` with one endpoint at `addr`, e.g. the target of a plugin's
    /// `proxy_http_call(name, …)`. Names must differ from each other and from `upstream`,
    /// the cluster [`EnvoyBuilder::upstream`] configures.
    pub fn cluster(mut self, name: &str, addr: SocketAddr) -> Self {
        self.topology.clusters.push((name.to_owned(), addr));
        self
    }

    /// Adds a cluster `name` with no endpoint at all: it exists, but never has a healthy
    /// host (Envoy answers a call to it at once, without connecting anywhere).
    pub fn cluster_without_endpoints(mut self, name: &str) -> Self {
        self.topology.empty_clusters.push(name.to_owned());
        self
    }

    /// The route's timeout for the upstream's response (default 10 s): past it the router
    /// gives up on the upstream and answers `504` itself.
    pub fn route_timeout(mut self, timeout: Duration) -> Self {
        self.topology.route_timeout = Some(timeout);
        self
    }

    /// The route's idle timeout (none by default): a stream with no activity this long is
    /// ended by Envoy, which answers `504` itself if the response has not started.
    pub fn route_idle_timeout(mut self, timeout: Duration) -> Self {
        self.topology.route_idle_timeout = Some(timeout);
        self
    }

    /// Adds a cluster `name` whose one endpoint speaks HTTP/2 (gRPC), e.g. for a plugin's
    /// `proxy_grpc_call`s and `proxy_grpc_stream`s.
    pub fn grpc_cluster(mut self, name: &str, addr: SocketAddr) -> Self {
        self.topology.grpc_clusters.push((name.to_owned(), addr));
        self
    }

    /// Adds a static generic secret `name` (`static_resources.secrets`), which a filter
    /// names in an `SdsSecretConfig` without `sds_config`, e.g. the oauth2 filter's
    /// `token_secret` and `hmac_secret`.
    pub fn generic_secret(mut self, name: &str, value: &str) -> Self {
        self.topology
            .secrets
            .push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets an environment variable of the Envoy process, e.g. for
    /// [`WasmFilter::host_env_key`] (the test's own environment is inherited too).
    pub fn process_env(mut self, key: &str, value: &str) -> Self {
        self.process_env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Envoy's `--concurrency`: worker threads, each with its own VM per plugin (default 1).
    /// For tests of what crosses VMs, such as shared queues.
    pub fn concurrency(mut self, workers: usize) -> Self {
        self.concurrency = Some(workers.max(1));
        self
    }

    /// Envoy's `--component-log-level`, e.g. `"wasm:debug"` to see plugin debug logs.
    pub fn component_log_level(mut self, levels: &str) -> Self {
        self.component_log_levels = Some(levels.to_owned());
        self
    }

    /// The bootstrap this builder produces, as YAML (what [`EnvoyBuilder::start`] runs).
    pub fn bootstrap_yaml(&self) -> Result<String> {
        Ok(to_yaml(&self.topology.bootstrap()?))
    }

    /// Starts Envoy and waits until its admin `/ready` answers `200`.
    pub fn start(self) -> Result<Envoy> {
        let mut process = self.launch()?;
        match process.wait_for_outcome()? {
            Startup::Ready => {
                let admin = process.envoy.admin();
                Envoy::attach(process, admin)
            }
            Startup::Exited(status) => {
                Err(process.failure(&format!("Envoy exited during startup ({status})")))
            }
        }
    }

    /// Starts Envoy expecting it to reject the configuration and exit, as Envoy 1.40 does
    /// (exit status 1) when a wasm plugin's `on_configure` returns false in a bootstrap
    /// listener, whatever the failure policy. Fails if Envoy becomes ready instead.
    pub fn start_expecting_refusal(self) -> Result<Refusal> {
        let mut process = self.launch()?;
        match process.wait_for_outcome()? {
            Startup::Exited(status) if !status.success() => Ok(Refusal {
                status,
                log: process.log(),
                _process: process,
            }),
            Startup::Exited(status) => Err(process.failure(&format!(
                "Envoy exited ({status}) instead of refusing the config"
            ))),
            Startup::Ready => {
                Err(process.failure("Envoy accepted the config it was expected to refuse"))
            }
        }
    }

    fn launch(self) -> Result<Process> {
        let envoy = find_envoy()?;
        let scratch = ScratchDir::create()?;
        let config = scratch.path().join("envoy.yaml");
        std::fs::write(&config, self.bootstrap_yaml()?)
            .with_context(|| format!("writing {}", config.display()))?;
        // One worker thread unless a test asks for more, so one VM per plugin serves every
        // request (Envoy still makes extra VMs on the main thread for configuration): plugin
        // state such as counters and caches is predictable in assertions, and parallel tests
        // on a 2-core machine do not each start a worker per core.
        let mut command = EnvoyCommand::new(&envoy, &config, scratch.path())
            .concurrency(self.concurrency.unwrap_or(1));
        if let Some(levels) = &self.component_log_levels {
            command = command.component_log_level(levels);
        }
        for (key, value) in &self.process_env {
            command = command.env(key, value);
        }
        let envoy = command.spawn()?;
        Ok(Process { envoy, scratch })
    }
}

/// An Envoy process and its scratch directory. Dropping it kills and reaps the process,
/// then drops the directory (kept if the test is failing).
#[derive(Debug)]
struct Process {
    envoy: EnvoyProcess,
    scratch: ScratchDir,
}

impl Process {
    fn log(&self) -> String {
        self.envoy.log()
    }

    /// Waits for Envoy to be ready or to exit, for at most [`STARTUP_TIMEOUT`].
    fn wait_for_outcome(&mut self) -> Result<Startup> {
        match self.envoy.wait_for_startup(STARTUP_TIMEOUT) {
            Ok(startup) => Ok(startup),
            Err(err) => Err(self.failure(&format!("{err:#}"))),
        }
    }

    /// An error carrying Envoy's log; the scratch directory is kept for inspection.
    fn failure(&mut self, what: &str) -> anyhow::Error {
        self.scratch.keep();
        anyhow::anyhow!(
            "{what}; Envoy's files are kept in {} and its log says:\n{}",
            self.scratch.path().display(),
            self.log()
        )
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.envoy.kill();
    }
}

/// Envoy's exit after refusing a configuration; see
/// [`EnvoyBuilder::start_expecting_refusal`].
#[derive(Debug)]
pub struct Refusal {
    /// Envoy's exit status (1 in Envoy 1.40).
    pub status: ExitStatus,
    /// Everything Envoy logged.
    pub log: String,
    _process: Process,
}

impl Refusal {
    /// The log lines at `[error]` or `[critical]` level, which carry the reason.
    pub fn error_lines(&self) -> Vec<&str> {
        self.log
            .lines()
            .filter(|l| l.contains("][error][") || l.contains("][critical]["))
            .collect()
    }
}

/// A running Envoy. Dropping it kills the process; the scratch directory with
/// `envoy.yaml` and `envoy.log` is kept when the test is failing.
#[derive(Debug)]
pub struct Envoy {
    process: Process,
    admin: SocketAddr,
    http: SocketAddr,
    tcp: Option<SocketAddr>,
}

impl Envoy {
    /// A builder with no filters and no upstream.
    pub fn builder() -> EnvoyBuilder {
        EnvoyBuilder::default()
    }

    fn attach(process: Process, admin: SocketAddr) -> Result<Self> {
        let listeners = HttpRequest::get(&format!("http://{admin}/listeners?format=json"))?
            .send()
            .context("asking Envoy's admin API for listener addresses")?;
        let listeners: Value =
            serde_json::from_slice(&listeners.body).context("parsing /listeners?format=json")?;
        let bound = |name: &str| -> Option<SocketAddr> {
            let status = listeners["listener_statuses"]
                .as_array()?
                .iter()
                .find(|l| l["name"] == name)?;
            let sa = &status["local_address"]["socket_address"];
            format!("{}:{}", sa["address"].as_str()?, sa["port_value"].as_u64()?)
                .parse()
                .ok()
        };
        let http = bound(HTTP_LISTENER).with_context(|| {
            format!("Envoy reports no address for listener {HTTP_LISTENER}: {listeners}")
        })?;
        let tcp = bound(TCP_LISTENER);
        Ok(Self {
            process,
            admin,
            http,
            tcp,
        })
    }

    /// `http://127.0.0.1:<port>` of the HTTP listener (no trailing slash).
    pub fn url(&self) -> String {
        format!("http://{}", self.http)
    }

    /// `http://127.0.0.1:<port>` of the admin API.
    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin)
    }

    /// The TCP proxy listener's address, when one was configured.
    pub fn tcp_addr(&self) -> Option<SocketAddr> {
        self.tcp
    }

    /// A request to `path` (starting with `/`) on the HTTP listener.
    pub fn request(&self, method: &str, path: &str) -> Result<HttpRequest> {
        HttpRequest::new(method, &format!("{}{path}", self.url()))
    }

    /// A `GET` request to `path` on the HTTP listener.
    pub fn get(&self, path: &str) -> Result<HttpRequest> {
        self.request("GET", path)
    }

    /// `/config_dump` from the admin API, parsed.
    pub fn config_dump(&self) -> Result<Value> {
        let body = self.admin_get("/config_dump")?;
        serde_json::from_str(&body).context("parsing /config_dump")
    }

    /// `/stats` from the admin API: one `name: value` per line.
    pub fn stats(&self) -> Result<String> {
        self.admin_get("/stats")
    }

    /// One counter or gauge from `/stats` by its full name, if Envoy has it.
    pub fn stat(&self, name: &str) -> Result<Option<u64>> {
        Ok(self.stats()?.lines().find_map(|line| {
            let (n, v) = line.split_once(": ")?;
            (n == name).then(|| v.trim().parse().ok()).flatten()
        }))
    }

    /// Everything Envoy has logged so far.
    pub fn log(&self) -> String {
        self.process.log()
    }

    /// The log lines that show a wasm plugin failing at run time: a trap (V8 reports it as
    /// `Function: proxy_on_… failed: Uncaught RuntimeError: …`) and the panic message a
    /// Rust guest writes to stderr just before it (`wasm log <plugin>: panicked at …`).
    pub fn wasm_failures(&self) -> Vec<String> {
        self.log()
            .lines()
            .filter(|line| WASM_FAILURE_MARKS.iter().any(|mark| line.contains(mark)))
            .map(str::to_owned)
            .collect()
    }

    /// Envoy's process id.
    pub fn pid(&self) -> u32 {
        self.process.envoy.pid()
    }

    /// Envoy's resident memory in KiB, `VmRSS` of `/proc/<pid>/status` (Linux).
    pub fn rss_kib(&self) -> Result<u64> {
        let path = format!("/proc/{}/status", self.pid());
        let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.trim().strip_suffix("kB"))
            .and_then(|kib| kib.trim().parse().ok())
            .with_context(|| format!("no VmRSS line in {path}"))
    }

    fn admin_get(&self, path: &str) -> Result<String> {
        let response = HttpRequest::get(&format!("{}{path}", self.admin_url()))?.send()?;
        if response.status != 200 {
            bail!(
                "admin {path} answered {}: {}",
                response.status,
                response.text()
            );
        }
        Ok(response.text())
    }
}
