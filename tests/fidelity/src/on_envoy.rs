//! Runs a scenario in a real Envoy through `weir-envoy-tests`: one Envoy per scenario,
//! an echo upstream with the canned response, one more for each callout cluster.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use weir_envoy_tests::{EchoUpstream, Envoy, EnvoyBuilder, Reply, WasmFilter};

use crate::observed::{normalize_headers, CalloutSeen, HttpSeen, Observed, Side, TcpSeen};
use crate::scenario::{CannedResponse, ClientRequest, Scenario};
use crate::tcp_upstream::{self, TcpUpstream};

/// Envoy names a plugin-defined metric `wasmcustom.<name>` in its stats.
const METRIC_PREFIX: &str = "wasmcustom.";

fn reply(response: &CannedResponse) -> Reply {
    let mut out = Reply::status(response.status);
    for (name, value) in &response.headers {
        out = out.header(name, value);
    }
    out.body(response.body.as_bytes())
}

fn fields(headers: &weir_envoy_tests::Headers) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect()
}

fn filter(scenario: &Scenario, wasm: &Path) -> WasmFilter {
    let mut filter = WasmFilter::new(wasm)
        .plugin_name("default", scenario.plugin.name())
        .root_id(&scenario.root_id)
        .configuration(scenario.config_text());
    for (key, value) in &scenario.env {
        filter = filter.env(key, value);
    }
    filter
}

/// Runs `scenario` with the module at `wasm` and reports what Envoy showed.
pub fn run(scenario: &Scenario, wasm: &Path) -> Result<Observed> {
    let mut callouts = Vec::new();
    let mut builder = Envoy::builder();
    for (cluster, response) in &scenario.callouts {
        let server = EchoUpstream::with_reply(reply(response))?;
        builder = builder.cluster(cluster, server.addr());
        callouts.push((cluster.clone(), server));
    }
    let grpc_servers = crate::grpc::start_servers(scenario)?;
    for (cluster, server) in &grpc_servers {
        builder = builder.grpc_cluster(cluster, server.addr());
    }
    for cluster in &scenario.refusing_clusters {
        // A port that was just free and is closed again: connecting is refused.
        let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        builder = builder.cluster(cluster, closed);
    }
    if let Some(tcp) = &scenario.tcp {
        let upstream = TcpUpstream::start(tcp.send.len(), tcp.reply.as_bytes().to_vec())?;
        let builder = builder
            .network_filter(filter(scenario, wasm))
            .upstream(upstream.addr());
        let envoy = match start(builder, scenario)? {
            Started::Ready(envoy) => envoy,
            Started::Refused(observed) => return Ok(*observed),
        };
        wait(scenario);
        let envoy_addr = envoy.tcp_addr().context("Envoy has no TCP listener")?;
        let client = tcp_upstream::exchange(envoy_addr, tcp.send.as_bytes())?;
        let upstream_received = upstream.received();
        let mut observed = observe_common(scenario, &envoy, &callouts)?;
        observed.tcp = Some(TcpSeen {
            closed: client.closed && client.received.is_empty() && upstream_received.is_empty(),
            upstream_received: String::from_utf8_lossy(&upstream_received).into_owned(),
            client_received: String::from_utf8_lossy(&client.received).into_owned(),
        });
        return Ok(observed);
    }
    let upstream = EchoUpstream::with_reply(reply(&scenario.upstream_response()))?;
    let builder = builder
        .http_filter(filter(scenario, wasm))
        .upstream(upstream.addr());
    let envoy = match start(builder, scenario)? {
        Started::Ready(envoy) => envoy,
        Started::Refused(observed) => return Ok(*observed),
    };
    wait(scenario);
    let Some(request) = &scenario.request else {
        return observe_common(scenario, &envoy, &callouts);
    };
    let got = send(&envoy, request)?;
    let mut observed = observe_common(scenario, &envoy, &callouts)?;
    observed.grpc_calls = crate::grpc::seen_on_envoy(scenario, &grpc_servers);
    let mut seen = upstream.requests();
    if seen.len() > 1 {
        anyhow::bail!(
            "the upstream received {} requests for one client request: {seen:#?}",
            seen.len()
        );
    }
    observed.upstream = seen.pop().map(|req| HttpSeen {
        method: Some(req.method),
        path: Some(req.path),
        headers: normalize_headers(&fields(&req.headers), Side::Request),
        body: String::from_utf8_lossy(&req.body).into_owned(),
        ..HttpSeen::default()
    });
    observed.client = Some(HttpSeen {
        status: Some(got.status),
        headers: normalize_headers(&fields(&got.headers), Side::Response),
        body: got.text(),
        ..HttpSeen::default()
    });
    Ok(observed)
}

/// How a start ended.
enum Started {
    /// Envoy is serving.
    Ready(Envoy),
    /// Envoy refused the configuration, as the scenario expects; its log is kept.
    Refused(Box<Observed>),
}

fn start(builder: EnvoyBuilder, scenario: &Scenario) -> Result<Started> {
    if scenario.expect.rejected {
        let refusal = builder.start_expecting_refusal()?;
        let logs = refusal.log.lines().map(str::to_owned).collect();
        return Ok(Started::Refused(Box::new(Observed {
            rejected: true,
            logs,
            ..Observed::default()
        })));
    }
    builder.start().map(Started::Ready)
}

/// Real time for the scenario's wait: Envoy's timers run on the wall clock.
fn wait(scenario: &Scenario) {
    if scenario.advance_ms > 0 {
        std::thread::sleep(Duration::from_millis(scenario.advance_ms));
    }
}

fn send(envoy: &Envoy, request: &ClientRequest) -> Result<weir_envoy_tests::HttpResponse> {
    let mut out = envoy
        .request(&request.method, &request.path)?
        .timeout(Duration::from_secs(10));
    for (name, value) in &request.headers {
        out = out.header(name, value);
    }
    if !request.body.is_empty() {
        out = out.body(request.body.as_bytes());
    }
    out.send()
        .context("sending the scenario's request through Envoy")
}

/// Callouts, metrics and logs, which HTTP and TCP scenarios share.
fn observe_common(
    scenario: &Scenario,
    envoy: &Envoy,
    callouts: &[(String, EchoUpstream)],
) -> Result<Observed> {
    let wanted = &scenario.expect;
    let mut seen = Vec::new();
    for (cluster, server) in callouts {
        for req in server.requests() {
            seen.push(CalloutSeen {
                cluster: cluster.clone(),
                method: req.method.clone(),
                path: req.path.clone(),
                headers: crate::selected_headers(wanted, cluster, |name| {
                    req.headers.get(name).map(str::to_owned)
                }),
            });
        }
    }
    let stats = envoy.stats()?;
    let metric = |name: &str| {
        let full = format!("{METRIC_PREFIX}{name}");
        stats.lines().find_map(|line| {
            let (n, v) = line.split_once(": ")?;
            (n == full).then(|| v.trim().parse().ok()).flatten()
        })
    };
    Ok(Observed {
        callouts: seen,
        metrics: wanted
            .metrics
            .keys()
            .map(|name| (name.clone(), metric(name)))
            .collect(),
        logs: envoy.log().lines().map(str::to_owned).collect(),
        ..Observed::default()
    })
}
