//! Runs a scenario in weir-runtime.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use weir_runtime::{Headers, Plugin, Request, Response};

use crate::observed::{normalize_headers, CalloutSeen, HttpSeen, Observed, Side, TcpSeen};
use crate::scenario::{CannedResponse, Framing, Scenario};

fn fields(headers: &Headers) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect()
}

fn canned(response: &CannedResponse) -> Response {
    let mut out = Response::status(response.status);
    for (name, value) in &response.headers {
        out = out.header(name, value);
    }
    for (name, value) in &response.trailers {
        out = out.trailer(name, value);
    }
    // The test servers on the Envoy side frame as asked; `body` sets content-length.
    match response.framing {
        Framing::Chunked => out
            .header("transfer-encoding", "chunked")
            .body_without_length(response.body.clone()),
        Framing::Close => out.body_without_length(response.body.clone()),
        Framing::ContentLength | Framing::Reset | Framing::Refuse => {
            out.body(response.body.clone())
        }
    }
}

/// A callout cluster's answer as the plugin gets it: the test server on the Envoy side
/// ends every response with `connection: close`, which Envoy passes on for callouts.
fn canned_callout(response: &CannedResponse) -> Response {
    canned(response).header("connection", "close")
}

/// Runs `scenario` with the module at `wasm` and reports what weir-runtime showed.
pub fn run(scenario: &Scenario, wasm: &Path) -> Result<Observed> {
    // Envoy starts two main-thread VMs besides the worker's; so does weir-runtime here.
    let mut builder = Plugin::load(wasm)
        .main_thread_vms()
        .root_id(&scenario.root_id)
        .name(&format!("default.{}", scenario.plugin.name()))
        .config(scenario.config_text());
    for (key, value) in &scenario.env {
        builder = builder.env(key, value);
    }
    for (path, value) in &scenario.runtime_properties {
        builder = builder.property(path, value.as_str());
    }
    for (cluster, response) in &scenario.callouts {
        let response = canned_callout(response);
        builder = builder.upstream(cluster, move |_| response.clone());
    }
    for cluster in &scenario.empty_clusters {
        builder = builder.upstream(cluster, |_| Response::no_healthy_upstream());
    }
    builder = crate::grpc::runtime_handlers(scenario, builder);
    for cluster in &scenario.refusing_clusters {
        builder = builder.upstream(cluster, |_| Response::connection_refused());
    }
    let plugin = match builder.start() {
        Ok(plugin) => plugin,
        Err(err) if scenario.expect.rejected => {
            return Ok(Observed {
                rejected: true,
                logs: vec![err.to_string()],
                ..Observed::default()
            });
        }
        Err(err) => {
            return Err(anyhow::Error::new(err).context("weir-runtime could not start the plugin"))
        }
    };
    if scenario.advance_ms > 0 {
        plugin.advance(Duration::from_millis(scenario.advance_ms));
    }
    let mut observed = match (&scenario.request, &scenario.tcp) {
        (Some(request), _) => run_http(&plugin, scenario, request),
        (None, Some(tcp)) => {
            let out = plugin
                .tcp()
                .downstream(tcp.send.as_bytes())
                .upstream(tcp.reply.as_bytes())
                .run();
            let mut observed = observe_common(scenario, &out);
            observed.tcp = Some(TcpSeen {
                upstream_received: String::from_utf8_lossy(out.to_upstream()).into_owned(),
                client_received: String::from_utf8_lossy(out.to_downstream()).into_owned(),
                closed: out.closed_by_plugin(),
            });
            observed
        }
        (None, None) => Observed::default(),
    };
    observed
        .logs
        .extend(plugin.logs().into_iter().map(|entry| entry.message));
    Ok(observed)
}

fn run_http(
    plugin: &Plugin,
    scenario: &Scenario,
    request: &crate::scenario::ClientRequest,
) -> Observed {
    let mut sent = Request::new(&request.method, &request.path);
    for (name, value) in &request.headers {
        sent = sent.header(name, value);
    }
    for (name, value) in &request.trailers {
        sent = sent.trailer(name, value);
    }
    // The Envoy side's client always frames requests with content-length, also `0`.
    sent = sent
        .header("content-length", &request.body.len().to_string())
        .body(request.body.clone());
    let upstream = scenario.upstream_response();
    let route_timeout = scenario.route_timeout_ms.unwrap_or(10_000);
    let idle_timeout = scenario.route_idle_timeout_ms.unwrap_or(u64::MAX);
    // Envoy's router answers in the upstream's place when it resets or is too slow.
    let response = match upstream.framing {
        Framing::Reset => Response::upstream_reset(),
        Framing::Refuse => Response::connection_refused(),
        _ if upstream.delay_ms >= idle_timeout.min(route_timeout)
            && idle_timeout < route_timeout =>
        {
            Response::idle_timeout()
        }
        _ if upstream.delay_ms >= route_timeout => Response::timeout(),
        _ => canned(&upstream),
    };
    let mut exchange = plugin.http().request(sent).response(response);
    if scenario.client_gives_up_ms.is_some() {
        exchange = exchange.client_disconnects();
    }
    if scenario.held_ms > 0 {
        exchange = exchange.wait_while_held(Duration::from_millis(scenario.held_ms));
    }
    let out = exchange.run();
    let mut observed = observe_common(scenario, &out);
    // An upstream that refuses connections never receives the request sent its way.
    let refused = upstream.framing == Framing::Refuse;
    observed.grpc_calls = crate::grpc::seen_on_runtime(scenario, &out);
    observed.upstream = out
        .upstream_request()
        .filter(|_| !refused)
        .map(|seen| HttpSeen {
            method: Some(seen.method().to_owned()),
            path: Some(seen.path().to_owned()),
            headers: normalize_headers(&fields(seen.headers()), Side::Request),
            body: seen.text(),
            trailers: normalize_headers(&fields(seen.trailers()), Side::Trailers),
            ..HttpSeen::default()
        });
    observed.client = out.response().map(|got| HttpSeen {
        status: Some(got.status_code()),
        headers: normalize_headers(&fields(got.headers()), Side::Response),
        body: got.text(),
        trailers: normalize_headers(&fields(got.trailers()), Side::Trailers),
        ..HttpSeen::default()
    });
    observed
}

/// Callouts, metrics and logs, which HTTP streams and connections share.
fn observe_common(scenario: &Scenario, out: &weir_runtime::Outcome) -> Observed {
    let wanted = &scenario.expect;
    let mut callouts: Vec<CalloutSeen> = out
        .callouts()
        .iter()
        .map(|call| CalloutSeen {
            cluster: call.cluster().to_owned(),
            method: call.request().method().to_owned(),
            path: call.request().path().to_owned(),
            headers: crate::selected_headers(wanted, call.cluster(), |name| {
                call.request().header_value(name).map(str::to_owned)
            }),
        })
        .collect();
    // A cluster that refuses connections never receives the call it answers for.
    callouts.retain(|call| !scenario.refusing_clusters.contains(&call.cluster));
    callouts.sort_by(|a, b| a.cluster.cmp(&b.cluster));
    Observed {
        callouts,
        metrics: wanted
            .metrics
            .keys()
            .map(|name| (name.clone(), out.metric(name)))
            .collect(),
        logs: out
            .logs()
            .iter()
            .map(|entry| entry.message.clone())
            .collect(),
        ..Observed::default()
    }
}
