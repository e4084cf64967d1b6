//! examples/event-batcher in a real Envoy with two worker threads (two VMs of the plugin,
//! plus Envoy's main-thread VM): every request's event, from whichever worker served it,
//! reaches the collector in the batches one VM ships.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use weir_envoy_tests::{build_wasm, EchoUpstream, Envoy, Reply, WasmFilter};

const REQUESTS: usize = 24;

#[test]
fn every_requests_event_reaches_the_collector_from_both_workers() -> anyhow::Result<()> {
    let collector = EchoUpstream::with_reply(Reply::status(204).body(""))?;
    let plugin = WasmFilter::new(build_wasm("event-batcher"))
        .plugin_name("default", "event-batcher")
        .json_configuration(
            &json!({"cluster": "collector", "batch_size": 10, "flush_interval_seconds": 1}),
        );
    let envoy = Envoy::builder()
        .http_filter(plugin)
        .cluster("collector", collector.addr())
        .concurrency(2)
        .start()?;

    // One connection per request: Envoy spreads them over its workers.
    for n in 0..REQUESTS {
        let response = envoy.get(&format!("/item/{n}?token=secret-{n}"))?.send()?;
        assert_eq!(response.status, 200, "{}", response.text());
    }

    // Two full batches at once, the last four on the next flush (within a second).
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen: BTreeMap<String, Value> = BTreeMap::new();
    while seen.len() < REQUESTS {
        assert!(
            Instant::now() < deadline,
            "only {} of {REQUESTS} events arrived: {seen:?}\n{}",
            seen.len(),
            envoy.log()
        );
        std::thread::sleep(Duration::from_millis(50));
        seen.clear();
        for batch in collector.requests() {
            assert_eq!(
                (batch.method.as_str(), batch.path.as_str()),
                ("POST", "/events")
            );
            assert_eq!(batch.headers.get_all("content-type"), ["application/json"]);
            let body: Value = serde_json::from_slice(&batch.body)?;
            for event in body["events"].as_array().expect("an events array") {
                let path = event["path"].as_str().expect("a path").to_owned();
                assert!(
                    seen.insert(path, event.clone()).is_none(),
                    "an event arrived twice: {event}"
                );
            }
        }
    }
    for n in 0..REQUESTS {
        assert_eq!(
            seen[&format!("/item/{n}")],
            json!({"method": "GET", "path": format!("/item/{n}"), "status": 200})
        );
    }
    let batches = collector.requests();
    assert!(
        batches
            .iter()
            .all(|b| !String::from_utf8_lossy(&b.body).contains("secret")),
        "query strings stay in the proxy"
    );
    assert!(
        batches.len() >= 3 && batches.len() <= REQUESTS,
        "{} batches",
        batches.len()
    );
    let shipped = envoy.stats()?.lines().find_map(|l| {
        l.strip_suffix(&format!("event_batcher.events_shipped: {REQUESTS}"))
            .map(str::to_owned)
    });
    assert!(
        shipped.is_some(),
        "events_shipped is not {REQUESTS}:\n{}",
        envoy.stats()?
    );
    // Both workers served requests (Envoy counts connections per worker), so both VMs enqueued.
    let stats = envoy.stats()?;
    for worker in ["worker_0", "worker_1"] {
        let served = stats.lines().filter(|l| {
            l.starts_with("listener.127.0.0.1_")
                && l.contains(&format!(".{worker}.downstream_cx_total: "))
        });
        let count: u64 = served
            .filter_map(|l| l.rsplit(": ").next()?.parse::<u64>().ok())
            .sum();
        assert!(count > 0, "{worker} served no connection:\n{stats}");
    }
    assert!(
        envoy.wasm_failures().is_empty(),
        "{:?}",
        envoy.wasm_failures()
    );
    Ok(())
}
