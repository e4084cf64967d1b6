//! event-batcher on the real `.wasm` in weir-runtime, with several VMs (Envoy's workers):
//! events from every worker reach one VM, which ships them in batches to a collector.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use weir_runtime::{Plugin, PluginBuilder, Request, Response};

/// What the collector received: each batch's events, as JSON.
type Batches = Arc<Mutex<Vec<Vec<Value>>>>;

/// The plugin on `workers` VMs, its collector answering what `answer` returns for the n-th batch.
fn batcher(
    workers: usize,
    config: Value,
    answer: impl Fn(usize) -> Response + Send + Sync + 'static,
) -> (Plugin, Batches) {
    let batches: Batches = Arc::default();
    let seen = batches.clone();
    let plugin = plugin()
        .workers(workers)
        .config(config)
        .upstream("collector", move |req| {
            assert_eq!((req.method(), req.path()), ("POST", "/events"));
            let body: Value = serde_json::from_slice(req.body_bytes()).expect("the batch is JSON");
            let mut seen = seen.lock().unwrap();
            seen.push(body["events"].as_array().expect("an events array").clone());
            answer(seen.len())
        })
        .start()
        .unwrap();
    (plugin, batches)
}

fn plugin() -> PluginBuilder {
    Plugin::build(env!("CARGO_MANIFEST_DIR")).name("default.event-batcher")
}

fn request(plugin: &Plugin, worker: usize, path: &str, status: u16) {
    let out = plugin
        .http_on(worker)
        .request(Request::get(path))
        .response(Response::status(status))
        .run();
    assert!(
        out.trap().is_none() && out.local_reply().is_none(),
        "{:?}",
        out.logs()
    );
}

fn event(method: &str, path: &str, status: u16) -> Value {
    json!({"method": method, "path": path, "status": status})
}

#[test]
fn one_batch_carries_the_events_of_every_worker() {
    let (plugin, batches) = batcher(2, json!({"cluster": "collector", "batch_size": 4}), |_| {
        Response::status(204)
    });
    request(&plugin, 0, "/a?token=secret", 200);
    request(&plugin, 1, "/b", 404);
    request(&plugin, 0, "/c", 503);
    assert!(batches.lock().unwrap().is_empty(), "not a full batch yet");
    request(&plugin, 1, "/d", 200);
    plugin.advance(Duration::ZERO); // the shipping VM's callout is answered

    let batches = batches.lock().unwrap().clone();
    assert_eq!(
        batches,
        [vec![
            event("GET", "/a", 200),
            event("GET", "/b", 404),
            event("GET", "/c", 503),
            event("GET", "/d", 200)
        ]],
        "the query string never leaves the proxy"
    );
    assert_eq!(plugin.metric("event_batcher.events_shipped"), Some(4));
    assert_eq!(plugin.metric("event_batcher.batches_shipped"), Some(1));
}

#[test]
fn a_partial_batch_is_shipped_on_the_flush_timer() {
    let config = json!({"cluster": "collector", "batch_size": 100, "flush_interval_seconds": 5});
    let (plugin, batches) = batcher(2, config, |_| Response::status(200));
    request(&plugin, 0, "/x", 200);
    request(&plugin, 1, "/y", 201);
    plugin.advance(Duration::from_secs(4));
    assert!(batches.lock().unwrap().is_empty());
    plugin.advance(Duration::from_secs(1));
    assert_eq!(
        *batches.lock().unwrap(),
        [vec![event("GET", "/x", 200), event("GET", "/y", 201)]]
    );
}

#[test]
fn a_failed_batch_is_counted_as_lost_and_the_next_one_ships() {
    let (plugin, batches) = batcher(2, json!({"cluster": "collector", "batch_size": 2}), |n| {
        Response::status(if n == 1 { 503 } else { 200 })
    });
    for path in ["/1", "/2", "/3", "/4"] {
        request(&plugin, 0, path, 200);
        plugin.advance(Duration::ZERO);
    }
    assert_eq!(batches.lock().unwrap().len(), 2);
    assert_eq!(plugin.metric("event_batcher.batches_failed"), Some(1));
    assert_eq!(plugin.metric("event_batcher.events_lost"), Some(2));
    assert_eq!(plugin.metric("event_batcher.events_shipped"), Some(2));
    assert!(plugin.logs().iter().any(|l| l
        .message
        .contains("a batch of 2 events was lost: collector answered 503")));
    assert!(plugin.trap().is_none());
}

#[test]
fn events_over_the_buffer_are_dropped_and_counted_while_a_batch_is_in_flight() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let config = json!({"cluster": "collector", "batch_size": 2, "max_buffered_events": 3});
    let (plugin, batches) = batcher(2, config, move |_| {
        counted.fetch_add(1, Ordering::SeqCst);
        Response::status(200).delay(Duration::from_secs(2))
    });
    // Worker 0 only: the shipping VM is worker 1, whose slow callout stays in flight.
    for n in 0..7 {
        request(&plugin, 0, &format!("/{n}"), 200);
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "one batch in flight at a time"
    );
    assert_eq!(
        plugin.metric("event_batcher.events_dropped"),
        Some(2),
        "2 in flight, 3 buffered, 2 dropped"
    );
    plugin.advance(Duration::from_secs(4));
    let shipped: Vec<usize> = batches.lock().unwrap().iter().map(Vec::len).collect();
    assert_eq!(
        shipped,
        [2, 2],
        "then the next full batch; one event waits for the timer"
    );
    plugin.advance(Duration::from_secs(5));
    assert_eq!(plugin.metric("event_batcher.events_shipped"), Some(5));
}

#[test]
fn bad_configuration_is_refused_naming_the_field() {
    for (config, field) in [
        (json!({}), "cluster"),
        (json!({"cluster": "c", "batch_size": 0}), "batch_size"),
        (
            json!({"cluster": "c", "batch_size": 50, "max_buffered_events": 10}),
            "max_buffered_events",
        ),
        (
            json!({"cluster": "c", "flush_interval_seconds": 86400}),
            "flush_interval_seconds",
        ),
        (json!({"cluster": "c", "path": "events"}), "path"),
        (json!({"cluster": "c", "batch": 5}), "batch"),
    ] {
        let err = plugin()
            .config(config.clone())
            .start()
            .unwrap_err()
            .to_string();
        assert!(err.contains(field), "{config}: {err}");
    }
    // The checks that span fields name the field as the reader's own errors do.
    for (config, path) in [
        (json!({"cluster": ""}), "cluster"),
        (
            json!({"cluster": "c", "batch_size": 50, "max_buffered_events": 10}),
            "max_buffered_events",
        ),
        (json!({"cluster": "c", "path": "events"}), "path"),
    ] {
        let err = plugin()
            .config(config.clone())
            .start()
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("invalid plugin configuration at {path}: ")),
            "{config}: {err}"
        );
    }
}
