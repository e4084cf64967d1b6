//! Runs a scenario in a real Envoy through `weir-envoy-tests`: one Envoy per scenario,
//! an echo upstream with the canned response, one more for each callout cluster.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use weir_envoy_tests::{EchoUpstream, Envoy, EnvoyBuilder, Reply, ReplyFraming, WasmFilter};

use crate::h2::{self, H2Upstream};
use crate::observed::{normalize_headers, CalloutSeen, HttpSeen, Observed, Side, TcpSeen};
use crate::scenario::{CannedResponse, ClientRequest, Framing, Scenario};
use crate::tcp_upstream::{self, TcpUpstream};

/// Envoy names a plugin-defined metric `wasmcustom.<name>` in its stats.
const METRIC_PREFIX: &str = "wasmcustom.";

fn reply(response: &CannedResponse) -> Reply {
    let mut out = Reply::status(response.status);
    for (name, value) in &response.headers {
        out = out.header(name, value);
    }
    let framing = match response.framing {
        Framing::ContentLength => ReplyFraming::ContentLength,
        Framing::Chunked => ReplyFraming::Chunked,
        Framing::Close => ReplyFraming::CloseDelimited,
        Framing::Reset | Framing::Refuse => ReplyFraming::Reset,
    };
    out.body(response.body.as_bytes())
        .framing(framing)
        .delay(Duration::from_millis(response.delay_ms))
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
    for cluster in &scenario.empty_clusters {
        builder = builder.cluster_without_endpoints(cluster);
    }
    if let Some(ms) = scenario.route_timeout_ms {
        builder = builder.route_timeout(Duration::from_millis(ms));
    }
    if let Some(ms) = scenario.route_idle_timeout_ms {
        builder = builder.route_idle_timeout(Duration::from_millis(ms));
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
    if scenario.http2 {
        let servers = Servers {
            callouts: &callouts,
            grpc: &grpc_servers,
        };
        return run_http2(scenario, wasm, builder, servers);
    }
    let upstream = EchoUpstream::with_reply(reply(&scenario.upstream_response()))?;
    let upstream_addr = match scenario.upstream_response().framing {
        // A port that was just free and is closed again: connecting is refused.
        Framing::Refuse => std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?,
        _ => upstream.addr(),
    };
    let builder = builder
        .http_filter(filter(scenario, wasm))
        .upstream(upstream_addr);
    let envoy = match start(builder, scenario)? {
        Started::Ready(envoy) => envoy,
        Started::Refused(observed) => return Ok(*observed),
    };
    wait(scenario);
    let Some(request) = &scenario.request else {
        return observe_common(scenario, &envoy, &callouts);
    };
    let got = match scenario.client_gives_up_ms {
        None => Some(send(&envoy, request, Duration::from_secs(10))?),
        Some(ms) => {
            // The client's read times out and it drops the connection: no response.
            let gave_up = send(&envoy, request, Duration::from_millis(ms));
            anyhow::ensure!(
                gave_up.is_err(),
                "the client got a response before it gave up: {gave_up:?}"
            );
            wait_for_logs(&envoy, scenario);
            None
        }
    };
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
    observed.client = got.map(|got| HttpSeen {
        status: Some(got.status),
        headers: normalize_headers(&fields(&got.headers), Side::Response),
        body: got.text(),
        ..HttpSeen::default()
    });
    Ok(observed)
}

/// The callout and gRPC servers a scenario's clusters point at.
struct Servers<'a> {
    callouts: &'a [(String, EchoUpstream)],
    grpc: &'a [(String, weir_envoy_tests::GrpcUpstream)],
}

/// An HTTP scenario over HTTP/2 on both sides of Envoy, trailers included.
fn run_http2(
    scenario: &Scenario,
    wasm: &Path,
    builder: EnvoyBuilder,
    servers: Servers<'_>,
) -> Result<Observed> {
    let callouts = servers.callouts;
    let upstream = H2Upstream::start(scenario.upstream_response())?;
    let builder = builder
        .http_filter(filter(scenario, wasm))
        .upstream(upstream.addr())
        .upstream_http2();
    let envoy = match start(builder, scenario)? {
        Started::Ready(envoy) => envoy,
        Started::Refused(observed) => return Ok(*observed),
    };
    wait(scenario);
    let Some(request) = &scenario.request else {
        return observe_common(scenario, &envoy, callouts);
    };
    let listener: std::net::SocketAddr = envoy
        .url()
        .trim_start_matches("http://")
        .parse()
        .context("Envoy's HTTP listener address")?;
    let got = h2::send(listener, request, Duration::from_secs(10))
        .context("sending the scenario's request through Envoy over HTTP/2")?;
    // The stream's end (on_log) may come after the client has its response.
    wait_for_logs(&envoy, scenario);
    let mut observed = observe_common(scenario, &envoy, callouts)?;
    observed.grpc_calls = crate::grpc::seen_on_envoy(scenario, servers.grpc);
    let mut seen = upstream.requests();
    anyhow::ensure!(
        seen.len() <= 1,
        "the upstream received {} requests for one client request: {seen:#?}",
        seen.len()
    );
    observed.upstream = seen.pop().map(|req| HttpSeen {
        method: Some(req.method),
        path: Some(req.path),
        headers: normalize_headers(&req.headers, Side::Request),
        body: String::from_utf8_lossy(&req.body).into_owned(),
        trailers: normalize_headers(&req.trailers, Side::Trailers),
        ..HttpSeen::default()
    });
    observed.client = Some(HttpSeen {
        status: Some(got.status),
        headers: normalize_headers(&got.headers, Side::Response),
        body: String::from_utf8_lossy(&got.body).into_owned(),
        trailers: normalize_headers(&got.trailers, Side::Trailers),
        ..HttpSeen::default()
    });
    Ok(observed)
}

/// How a start ended.
enum Started {
    /// Envoy is serving.
    Ready(Box<Envoy>),
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
    builder.start().map(|envoy| Started::Ready(Box::new(envoy)))
}

/// Real time for the scenario's wait: Envoy's timers run on the wall clock.
fn wait(scenario: &Scenario) {
    if scenario.advance_ms > 0 {
        std::thread::sleep(Duration::from_millis(scenario.advance_ms));
    }
}

/// After the client left, Envoy ends the stream on its own time: waits (up to 5 s) until
/// its log has every expected text.
fn wait_for_logs(envoy: &Envoy, scenario: &Scenario) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while std::time::Instant::now() < deadline {
        let log = envoy.log();
        if scenario
            .expect
            .logs
            .iter()
            .all(|want| log.contains(want.as_str()))
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn send(
    envoy: &Envoy,
    request: &ClientRequest,
    timeout: Duration,
) -> Result<weir_envoy_tests::HttpResponse> {
    let mut out = envoy
        .request(&request.method, &request.path)?
        .timeout(timeout);
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
