//! HTTP streams through the probe plugin.

use std::time::Duration;

use weir_runtime::{Action, Headers, LogLevel, Phase, Request, Response};

use crate::probe;

#[test]
fn headers_are_mutated_and_response_passes_back() {
    let plugin = probe().root_id("probe").start().unwrap();
    let out = plugin
        .http()
        .request(
            Request::get("/p")
                .header("x-remove-me", "1")
                .header("x-keep", "2"),
        )
        .response(Response::status(200).header("server", "up"))
        .run();
    assert_eq!(out.action(Phase::RequestHeaders), Some(Action::Continue));
    let upstream = out
        .upstream_request()
        .expect("request reaches the upstream");
    assert_eq!(upstream.header_value("x-probe-seen"), Some("1"));
    assert_eq!(upstream.header_value("x-keep"), Some("2"));
    assert_eq!(upstream.header_value("x-remove-me"), None);
    let response = out.response().unwrap();
    assert_eq!(response.status_code(), 200);
    assert_eq!(response.header_value("x-probe-response"), Some("1"));
    assert!(
        out.logs_at(LogLevel::Info).contains(&"request headers: 6"),
        "{:?}",
        out.logs()
    );
    assert!(out.logged("stream done"));
    assert_eq!(out.metric("probe_requests"), Some(1));
    assert_eq!(plugin.histogram("probe_sizes"), vec![42]);
    assert!(out.instructions_in("proxy_on_request_headers") > 0);
    assert_eq!(
        out.instructions(),
        out.costs().iter().map(|c| c.instructions).sum::<u64>()
    );
}

#[test]
fn instruction_counts_are_deterministic() {
    // The same sequence of requests costs the same on any fresh plugin (the first request
    // of a VM costs more: the guest's allocator and maps warm up).
    let costs = || {
        let plugin = probe().start().unwrap();
        (0..3)
            .map(|_| {
                plugin
                    .http()
                    .request(Request::get("/same"))
                    .run()
                    .instructions()
            })
            .collect::<Vec<u64>>()
    };
    let first = costs();
    assert_eq!(first, costs());
    assert_eq!(first[1], first[2]);
    assert!(first[0] >= first[1], "{first:?}");
}

#[test]
fn local_reply_ends_the_stream() {
    let plugin = probe().start().unwrap();
    let out = plugin
        .http()
        .request(Request::get("/").header("x-probe", "reply"))
        .run();
    let reply = out.local_reply().expect("local reply");
    assert_eq!(reply.status(), 403);
    assert_eq!(reply.header("x-reason"), Some("probe"));
    assert_eq!(reply.text(), "denied");
    assert!(out.upstream_request().is_none());
    // As in Envoy: the reply goes through the plugin's own response callbacks, and a body
    // without a type gets `content-type: text/plain`.
    let response = out.response().unwrap();
    assert_eq!(response.status_code(), 403);
    assert_eq!(out.action(Phase::ResponseHeaders), Some(Action::Continue));
    assert_eq!(response.header_value("x-probe-response"), Some("1"));
    assert_eq!(response.header_value("content-type"), Some("text/plain"));
    assert_eq!(response.text(), "denied");
}

#[test]
fn body_is_buffered_until_end_of_stream_then_rewritten() {
    let plugin = probe().start().unwrap();
    let out = plugin
        .http()
        .request(
            Request::post("/b")
                .header("x-probe", "body")
                .body("hello world"),
        )
        .response(Response::status(200).body("ok"))
        .chunk_size(4)
        .run();
    let bodies: Vec<Action> = out
        .actions()
        .iter()
        .filter(|(p, _)| *p == Phase::RequestBody)
        .map(|(_, a)| *a)
        .collect();
    assert_eq!(
        bodies,
        vec![Action::Pause(1), Action::Pause(1), Action::Continue]
    );
    assert!(out.logged("request body: 11 end=true"));
    assert_eq!(out.upstream_request().unwrap().text(), "HELLO WORLD");
    assert_eq!(out.response().unwrap().text(), "ok!");
}

#[test]
fn trailers_are_delivered_and_modifiable() {
    let plugin = probe().start().unwrap();
    let out = plugin
        .http()
        .request(Request::post("/t").body("x").trailer("grpc-status", "0"))
        .run();
    assert!(out.logged("request trailers: 1"));
    let upstream = out.upstream_request().unwrap();
    assert_eq!(upstream.trailers().get("x-trailer-seen"), Some("1"));
    assert_eq!(upstream.text(), "x");
}

#[test]
fn callout_pauses_then_resumes_the_request() {
    let plugin = probe()
        .upstream("auth", |req| {
            assert_eq!(req.path(), "/check");
            Response::status(200).body(format!(
                "user={}",
                req.header_value("x-user").unwrap_or("?")
            ))
        })
        .start()
        .unwrap();
    let out = plugin
        .http()
        .request(Request::get("/").header("x-probe", "callout"))
        .run();
    assert_eq!(out.action(Phase::RequestHeaders), Some(Action::Pause(1)));
    assert_eq!(out.callouts().len(), 1);
    let callout = &out.callouts()[0];
    assert_eq!(callout.cluster(), "auth");
    assert_eq!(callout.request().text(), "who?");
    assert_eq!(callout.timeout(), Duration::from_millis(500));
    assert_eq!(
        out.upstream_request().unwrap().header_value("x-auth"),
        Some("user=ann")
    );
    assert_eq!(out.response().unwrap().status_code(), 200);
}

#[test]
fn callout_denial_and_failure_and_timeout() {
    let plugin = probe()
        .upstream("auth", |_| Response::status(403))
        .start()
        .unwrap();
    let out = plugin
        .http()
        .request(Request::get("/").header("x-probe", "callout"))
        .run();
    assert_eq!(out.local_reply().unwrap().status(), 403);
    assert!(out.upstream_request().is_none());

    let failing = probe()
        .upstream("auth", |_| Response::failure())
        .start()
        .unwrap();
    let out = failing
        .http()
        .request(Request::get("/").header("x-probe", "callout"))
        .run();
    assert_eq!(
        out.local_reply().unwrap().status(),
        503,
        "0 headers means the call failed"
    );

    let slow = probe()
        .upstream("auth", |_| {
            Response::status(200).delay(Duration::from_secs(2))
        })
        .start()
        .unwrap();
    let out = slow
        .http()
        .request(Request::get("/").header("x-probe", "callout"))
        .run();
    assert_eq!(
        out.local_reply().unwrap().status(),
        504,
        "Envoy answers a timed-out call with 504"
    );
    assert_eq!(
        slow.now(),
        Duration::from_millis(500),
        "delivered at the call's timeout"
    );
}

#[test]
fn callout_to_unknown_cluster_is_bad_argument() {
    let plugin = probe().start().unwrap();
    let out = plugin
        .http()
        .request(Request::get("/").header("x-probe", "callout-unknown"))
        .run();
    assert!(
        out.logged("unknown cluster: Err(BadArgument)"),
        "{:?}",
        out.logs()
    );
    assert!(out.callouts().is_empty());
    assert!(out.upstream_request().is_some());
}

#[test]
fn stepwise_stream_holds_body_while_headers_wait_for_a_callout() {
    let plugin = probe()
        .upstream("auth", |_| Response::status(200).body("ok"))
        .start()
        .unwrap();
    let mut stream = plugin.http_stream();
    stream.send_request_headers(&Request::post("/").header("x-probe", "callout"), false);
    stream.send_request_body(b"payload", true);
    assert!(stream.request_paused());
    assert!(
        !stream.outcome().logged("request body"),
        "body is held back while headers are paused"
    );
    stream.deliver_callouts();
    assert!(stream.request_complete());
    let out = stream.finish();
    assert!(out.logged("request body: 7 end=true"));
    assert_eq!(out.upstream_request().unwrap().text(), "payload");
}

#[test]
fn paused_stream_without_resume_never_reaches_upstream() {
    let plugin = probe().start().unwrap();
    let out = plugin
        .http()
        .request(Request::get("/").header("x-probe", "stop"))
        .run();
    assert_eq!(out.action(Phase::RequestHeaders), Some(Action::Pause(1)));
    assert!(out.upstream_request().is_none());
    assert!(out.response().is_none());
}

#[test]
fn reset_ends_the_stream() {
    let plugin = probe().start().unwrap();
    let out = plugin
        .http()
        .request(Request::get("/").header("x-probe", "reset"))
        .run();
    assert!(out.was_reset());
    assert!(out.upstream_request().is_none());
}

#[test]
fn panic_is_a_trap_with_the_guest_message() {
    let plugin = probe().start().unwrap();
    let out = plugin
        .http()
        .request(Request::get("/").header("x-probe", "panic"))
        .run();
    let trap = out.trap().expect("trap");
    assert_eq!(trap.callback, "proxy_on_request_headers");
    assert!(
        trap.panic_message
            .as_deref()
            .unwrap_or("")
            .contains("probe panic: boom"),
        "{trap}"
    );
    assert!(out.upstream_request().is_none());
    // Envoy does not call a crashed VM again.
    let next = plugin.http().request(Request::get("/")).run();
    assert!(next.trap().is_some());
    assert!(plugin.trap().is_some());
}

#[test]
fn infinite_loop_is_stopped_by_the_fuel_limit() {
    let plugin = probe().fuel_limit(5_000_000).start().unwrap();
    let out = plugin
        .http()
        .request(Request::get("/").header("x-probe", "loop"))
        .run();
    let trap = out.trap().expect("trap");
    assert!(trap.out_of_fuel, "{trap}");
    assert_eq!(out.instructions_in("proxy_on_request_headers"), 5_000_000);
}

#[test]
fn properties_have_envoy_like_defaults_and_test_overrides() {
    let plugin = probe()
        .root_id("probe-root")
        .name("ns.probe")
        .property("custom.value", "set-by-test")
        .start()
        .unwrap();
    let out = plugin
        .http()
        .request(
            Request::get("/props?q=1")
                .authority("svc.local")
                .header("x-probe", "props")
                .header("user-agent", "curl"),
        )
        .run();
    let line = out
        .logs_at(LogLevel::Info)
        .into_iter()
        .find(|l| l.starts_with("props"))
        .unwrap()
        .to_string();
    assert_eq!(
        line,
        "props name=ns.probe root=probe-root path=/props?q=1 host=svc.local src=10.0.0.1:50000 ua=curl \
         custom=set-by-test note=kept port=Some(8080)"
    );
}

#[test]
fn a_test_overrides_a_property_for_one_stream_only() {
    let plugin = probe()
        .property("custom.value", "plugin-wide")
        .start()
        .unwrap();
    let custom = |out: weir_runtime::Outcome| {
        let line = out
            .logs_at(LogLevel::Info)
            .into_iter()
            .find(|l| l.starts_with("props"))
            .unwrap()
            .to_string();
        line.split(' ')
            .find_map(|part| part.strip_prefix("custom="))
            .unwrap()
            .to_string()
    };
    let request = || Request::get("/").header("x-probe", "props");
    let overridden = plugin
        .http()
        .property("custom.value", "this-stream")
        .request(request())
        .run();
    assert_eq!(custom(overridden), "this-stream");
    assert_eq!(
        custom(plugin.http().request(request()).run()),
        "plugin-wide"
    );
    let mut stream = plugin.http_stream();
    stream
        .property("custom.value", "stepped")
        .send_request_headers(&request(), true);
    assert_eq!(custom(stream.finish()), "stepped");
}

#[test]
fn plugin_name_is_empty_when_none_is_configured_as_in_envoy() {
    let plugin = probe().root_id("probe-root").start().unwrap();
    let out = plugin
        .http()
        .request(Request::get("/").header("x-probe", "props"))
        .run();
    let line = out
        .logs_at(LogLevel::Info)
        .into_iter()
        .find(|l| l.starts_with("props"))
        .unwrap()
        .to_string();
    // Envoy answers the empty string, which the proxy-wasm crate reads as no value.
    assert!(
        line.starts_with("props name=<none> root=probe-root "),
        "{line}"
    );
}

#[test]
fn many_parallel_streams_on_many_plugins() {
    std::thread::scope(|scope| {
        for n in 0..4 {
            scope.spawn(move || {
                let plugin = probe().start().unwrap();
                for _ in 0..5 {
                    let out = plugin.http().request(Request::get(&format!("/{n}"))).run();
                    assert!(out.upstream_request().is_some());
                }
                assert_eq!(plugin.metric("probe_requests"), Some(5));
            });
        }
    });
}

#[test]
fn headers_helpers() {
    let mut headers = Headers::new();
    headers.append("X-A", "1");
    headers.append("x-a", "2");
    assert_eq!(headers.get_all("x-a"), vec!["1", "2"]);
    headers.set("x-a", "3");
    assert_eq!(headers.get("X-A"), Some("3"));
}

#[test]
fn request_headers_are_gone_once_their_callback_continued_or_the_plugin_resumed_them() {
    // Envoy forgets the request headers when `proxy_on_request_headers` returns Continue
    // (`Context::decodeHeaders`) and when the plugin resumes a paused request
    // (`Context::continueStream`): either way the response phase reads `BadArgument` (2).
    // Measured in Envoy by the fidelity scenarios `exerciser_header_maps_*`.
    let plugin = probe()
        .upstream("auth", |_| Response::status(200).body("ok"))
        .start()
        .unwrap();
    let continued = plugin
        .http()
        .request(Request::get("/").header("x-probe", "plain"))
        .run();
    assert!(
        continued.logged("request header in the response phase: status 2"),
        "{:?}",
        continued.logs()
    );
    let mut stream = plugin.http_stream();
    stream.send_request_headers(&Request::post("/").header("x-probe", "callout"), true);
    assert!(stream.request_paused());
    stream.deliver_callouts();
    assert!(
        !stream.request_paused(),
        "the callout's answer resumes the request"
    );
    stream.send_response_headers(&Response::status(200), true);
    let resumed = stream.finish();
    assert!(
        resumed.logged("request header in the response phase: status 2"),
        "{:?}",
        resumed.logs()
    );
}
