//! The Weir SDK's shared queues (`weir::queue`, `Background::on_queue`) as a host sees them
//! (guest: test-plugins/sdk-guest): items from every worker reach the registering VM's
//! handler, which can call out; names are namespaced; statuses come back as values.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use weir_runtime::{LogLevel, Plugin, Request, Response};

use crate::sdk::{ask, sdk_guest};

fn runs(plugin: &Plugin) -> Vec<String> {
    let logs = plugin.logs();
    logs.into_iter()
        .map(|l| l.message)
        .filter(|m| m.starts_with("queue run") || m.starts_with("shipped"))
        .collect()
}

#[test]
fn items_from_every_worker_reach_the_handler_of_the_registering_vm() {
    let plugin = sdk_guest()
        .name("ns.guest")
        .root_id("guest")
        .workers(3)
        .config(json!({"queue_handler": true}))
        .start()
        .unwrap();
    for (worker, item) in ["a", "b", "c"].into_iter().enumerate() {
        let out = plugin
            .http_on(worker)
            .request(Request::get(&format!("/?enqueue={item}")))
            .run();
        assert!(
            out.trap().is_none() && !out.logged("no queue"),
            "{:?}",
            out.logs()
        );
    }
    // Each enqueue notified the owner at once, so each run drained one item, in order.
    assert_eq!(
        runs(&plugin),
        ["queue run: a", "queue run: b", "queue run: c"]
    );
    // Every VM registered the same namespaced queue, under one id.
    let registered: Vec<String> = plugin
        .logs()
        .into_iter()
        .map(|l| l.message)
        .filter(|m| m.starts_with("registered"))
        .collect();
    assert_eq!(registered, ["registered weir:8:ns.guest:5:guest:q as 1"; 3]);
}

#[test]
fn a_handler_calls_out_and_later_items_are_drained_while_the_call_is_in_flight() {
    let received = Arc::new(Mutex::new(Vec::new()));
    let seen = received.clone();
    let plugin = sdk_guest()
        .root_id("guest")
        .workers(2)
        .config(json!({"queue_handler": true}))
        .upstream("collector", move |req| {
            seen.lock()
                .unwrap()
                .push(String::from_utf8_lossy(req.body_bytes()).into_owned());
            Response::status(204).delay(Duration::from_secs(1))
        })
        .start()
        .unwrap();
    // Both from worker 0; the owner is worker 1, whose pending callout nothing answers yet.
    ask(&plugin, "/?enqueue=ship");
    ask(&plugin, "/?enqueue=later");
    // The first run waits for the collector; the second ran meanwhile.
    assert_eq!(runs(&plugin), ["queue run: ship", "queue run: later"]);
    plugin.advance(Duration::from_secs(1));
    assert_eq!(
        runs(&plugin),
        ["queue run: ship", "queue run: later", "shipped ship: 204"]
    );
    assert_eq!(*received.lock().unwrap(), ["ship"]);
}

#[test]
fn a_failing_handler_is_logged_with_the_queue_name_and_the_next_items_still_run() {
    // No `collector` cluster: the call fails, the run ends in an Err.
    let plugin = sdk_guest()
        .name("ns.guest")
        .root_id("guest")
        .config(json!({"queue_handler": true}))
        .start()
        .unwrap();
    ask(&plugin, "/?enqueue=ship");
    ask(&plugin, "/?enqueue=next");
    let warned: Vec<String> = plugin
        .logs()
        .into_iter()
        .filter(|l| l.level == LogLevel::Warn)
        .map(|l| l.message)
        .collect();
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(
        warned[0].starts_with("handler of shared queue 'weir:8:ns.guest:5:guest:q' failed: cannot call cluster 'collector'"),
        "{warned:?}"
    );
    assert_eq!(runs(&plugin), ["queue run: ship", "queue run: next"]);
    assert!(plugin.trap().is_none());
}

#[test]
fn without_a_handler_items_wait_in_order_and_an_empty_queue_dequeues_none() {
    let plugin = sdk_guest().root_id("guest").workers(2).start().unwrap();
    ask(&plugin, "/?enqueue=first");
    plugin
        .http_on(1)
        .request(Request::get("/?enqueue=second"))
        .run();
    for expected in [
        "dequeued Some(\"first\")",
        "dequeued Some(\"second\")",
        "dequeued None",
        "dequeued None",
    ] {
        assert!(ask(&plugin, "/?dequeue").logged(expected), "{expected}");
    }
}

#[test]
fn resolving_a_queue_nobody_registered_is_none_and_names_are_namespaced() {
    let plugin = sdk_guest()
        .name("ns.guest")
        .root_id("guest")
        .start()
        .unwrap();
    assert!(ask(&plugin, "/?resolve=other").logged("resolve other: None"));
    assert!(ask(&plugin, "/?resolve=q").logged("resolve q: Some(\"weir:8:ns.guest:5:guest:q\")"));
}
