//! `weir::grpc` as a host sees it (guest: test-plugins/sdk-grpc-guest), against the test
//! API's gRPC clusters: unary calls and their metadata, error statuses, Envoy's timeout, an
//! unknown cluster, a stream with trailing metadata, cancellation when the HTTP stream ends
//! while a call waits, and calls from a background job.

use std::time::Duration;

use serde_json::json;
use weir_runtime::grpc::code;
use weir_runtime::{
    GrpcReply, GrpcRequest, GrpcStreamScript, LocalReply, Outcome, Plugin, PluginBuilder, Request,
};

fn guest() -> PluginBuilder {
    Plugin::build(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/test-plugins/sdk-grpc-guest"
    ))
}

/// The reply the guest answered with (it always answers locally).
fn reply(out: &Outcome) -> &LocalReply {
    assert!(out.trap().is_none(), "{:?}", out.trap());
    out.local_reply()
        .unwrap_or_else(|| panic!("no reply: {:?}", out.logs()))
}

fn echo(req: &GrpcRequest) -> GrpcReply {
    match req.message() {
        b"fail" => GrpcReply::error(code::PERMISSION_DENIED, "not you"),
        b"slow" => GrpcReply::ok("late").delay(Duration::from_secs(2)),
        m => GrpcReply::ok([b"echo:".as_slice(), m].concat()),
    }
}

#[test]
fn a_unary_call_sends_message_and_metadata_and_returns_the_answer() {
    let plugin = guest().grpc_upstream("grpc", echo).start().unwrap();
    let out = plugin.http().request(Request::get("/?unary=hello")).run();
    let res = reply(&out);
    assert_eq!(res.status(), 200);
    assert_eq!(res.header("x-grpc-code"), Some("OK"));
    assert_eq!(res.text(), "echo:hello");
    let call = &out.grpc_calls()[0];
    assert_eq!(call.cluster(), "grpc");
    assert_eq!(call.request().path(), "/test.Echo/Unary");
    assert_eq!(call.request().message(), b"hello");
    assert_eq!(call.request().metadata("x-probe"), Some("hello"));
    assert_eq!(call.request().timeout(), Some(Duration::from_millis(1000)));
    assert!(!call.cancelled());
}

#[test]
fn an_error_status_is_a_value_with_its_message() {
    let plugin = guest().grpc_upstream("grpc", echo).start().unwrap();
    let out = plugin.http().request(Request::get("/?unary=fail")).run();
    let res = reply(&out);
    assert_eq!(res.status(), 200, "{}", res.text());
    assert_eq!(res.header("x-grpc-code"), Some("PERMISSION_DENIED"));
    assert_eq!(res.header("x-grpc-message"), Some("not you{via_upstream}"));
}

#[test]
fn past_its_timeout_a_call_ends_as_envoy_ends_it() {
    let plugin = guest().grpc_upstream("grpc", echo).start().unwrap();
    let mut stream = plugin.http_stream();
    stream.send_request(&Request::get("/?unary=slow&timeout=200"), None);
    assert!(stream.request_paused(), "waiting for the answer");
    plugin.advance(Duration::from_millis(200));
    let out = stream.finish();
    let res = reply(&out);
    assert_eq!(res.header("x-grpc-code"), Some("UNAVAILABLE"));
    assert_eq!(
        res.header("x-grpc-message"),
        Some("upstream request timeout{response_timeout}")
    );
}

#[test]
fn an_unknown_cluster_is_an_err_not_a_trap() {
    let plugin = guest().grpc_upstream("grpc", echo).start().unwrap();
    let out = plugin
        .http()
        .request(Request::get("/?unary=x&cluster=nowhere"))
        .run();
    let res = reply(&out);
    assert_eq!(res.status(), 502);
    assert!(
        res.text()
            .starts_with("cannot call test.Echo/Unary on gRPC cluster 'nowhere'"),
        "{}",
        res.text()
    );
    assert!(out.grpc_calls().is_empty());
}

#[test]
fn a_stream_sends_its_message_and_receives_every_message_and_the_trailers() {
    let plugin = guest()
        .grpc_upstream("grpc", |_: &GrpcRequest| {
            GrpcStreamScript::new()
                .await_client_end()
                .initial_metadata("x-i", "start")
                .message("m1")
                .message("m2")
                .trailing_metadata("x-t", "done")
                .close(code::OK, "")
        })
        .start()
        .unwrap();
    let out = plugin.http().request(Request::get("/?stream=m")).run();
    let res = reply(&out);
    assert_eq!(res.text(), "m1,m2");
    assert_eq!(res.header("x-grpc-count"), Some("2"));
    assert_eq!(res.header("x-grpc-code"), Some("OK"));
    assert_eq!(res.header("x-trailer"), Some("done"));
    let call = &out.grpc_calls()[0];
    assert!(call.request().is_stream());
    assert_eq!(call.sent_messages(), [b"m".to_vec()]);
    assert!(call.client_ended());
}

#[test]
fn a_stream_closed_with_an_error_ends_the_messages_with_it() {
    let plugin = guest()
        .grpc_upstream("grpc", |_: &GrpcRequest| {
            GrpcStreamScript::new()
                .message("m1")
                .close(code::RESOURCE_EXHAUSTED, "quota")
        })
        .start()
        .unwrap();
    let out = plugin.http().request(Request::get("/?stream=m")).run();
    let res = reply(&out);
    assert_eq!(res.text(), "m1");
    assert_eq!(res.header("x-grpc-code"), Some("RESOURCE_EXHAUSTED"));
    let error = res.header("x-grpc-error").unwrap_or_default();
    assert!(
        error.starts_with("gRPC call failed: RESOURCE_EXHAUSTED: quota"),
        "{error}"
    );
}

#[test]
fn calls_and_streams_in_flight_are_cancelled_when_the_http_stream_ends() {
    let plugin = guest()
        .grpc_upstream("grpc", |req: &GrpcRequest| -> weir_runtime::GrpcAnswer {
            if req.is_stream() {
                GrpcStreamScript::new().into()
            } else {
                GrpcReply::ok("too late")
                    .delay(Duration::from_secs(30))
                    .into()
            }
        })
        .start()
        .unwrap();
    for query in ["/?hold", "/?hold_stream"] {
        let mut stream = plugin.http_stream();
        stream.send_request(&Request::get(query), None);
        assert!(stream.request_paused(), "{query}: waiting");
        let out = stream.finish();
        assert!(out.trap().is_none(), "{query}: {:?}", out.trap());
        let calls = out.grpc_calls();
        assert_eq!(calls.len(), 1, "{query}");
        assert!(
            calls[0].cancelled(),
            "{query}: the call outlived its stream"
        );
        assert_eq!(calls[0].status(), None, "{query}: nothing delivered");
    }
    // The late answer finds nothing waiting; the VM goes on serving.
    plugin.advance(Duration::from_secs(31));
    let out = plugin.http().request(Request::get("/?stream=x")).run();
    assert!(out.trap().is_none(), "{:?}", out.trap());
}

#[test]
fn a_background_job_awaits_its_grpc_call() {
    let plugin = guest()
        .config(json!({ "tick": true }))
        .grpc_upstream("grpc", |_: &GrpcRequest| GrpcReply::ok("tock"))
        .start()
        .unwrap();
    let logs = plugin.logs();
    assert!(logs.iter().any(|l| l.message == "tick: OK 4"), "{logs:?}");
    assert_eq!(plugin.grpc_calls()[0].request().path(), "/test.Echo/Tick");
}
