//! gRPC calls and streams through the probe plugin (`x-probe: grpc-*`), answered by the
//! test's gRPC cluster handlers.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use weir_runtime::grpc::code;
use weir_runtime::{GrpcReply, GrpcRequest, GrpcStreamScript, LogLevel, Request};

use crate::probe;

fn grpc(mode: &str) -> Request {
    Request::get("/").header("x-probe", mode)
}

#[test]
fn unary_call_reaches_the_cluster_and_its_reply_the_plugin() {
    let seen: Arc<Mutex<Vec<GrpcRequest>>> = Arc::default();
    let record = seen.clone();
    let plugin = probe()
        .grpc_upstream("echo", move |req: &GrpcRequest| {
            record.lock().unwrap().push(req.clone());
            GrpcReply::ok(format!(
                "pong to {}",
                String::from_utf8_lossy(req.message())
            ))
        })
        .start()
        .unwrap();
    let out = plugin.http().request(grpc("grpc-unary")).run();
    let reply = out.local_reply().expect("the probe answers with the reply");
    assert_eq!(reply.status(), 200);
    assert_eq!(reply.text(), "pong to ping");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].service(), "test.Echo");
    assert_eq!(seen[0].method(), "Say");
    assert_eq!(seen[0].path(), "/test.Echo/Say");
    assert_eq!(seen[0].metadata("x-md"), Some("one"));
    assert_eq!(seen[0].timeout(), Some(Duration::from_millis(500)));
    assert!(!seen[0].is_stream());
    let calls = out.grpc_calls();
    assert_eq!(calls.len(), 1);
    // Envoy numbers unary calls 1 mod 4 from 5.
    assert_eq!(calls[0].token(), 5);
    assert_eq!(calls[0].cluster(), "echo");
    assert_eq!(calls[0].received_messages(), [b"pong to ping".to_vec()]);
    assert_eq!(calls[0].status().map(|s| s.code), Some(code::OK));
}

#[test]
fn error_status_and_its_message_reach_the_plugin() {
    let plugin = probe()
        .grpc_upstream("echo", |_: &GrpcRequest| {
            GrpcReply::error(code::PERMISSION_DENIED, "not you")
        })
        .start()
        .unwrap();
    let out = plugin.http().request(grpc("grpc-unary")).run();
    assert_eq!(out.local_reply().map(|r| r.status()), Some(503));
    assert!(
        out.logged(r#"grpc failed 5: 7 (7 Some("not you{via_upstream}"))"#),
        "{:?}",
        out.logs()
    );
    let status = out.grpc_calls()[0].status().cloned().unwrap();
    assert_eq!(
        (status.code, status.message.as_str()),
        (7, "not you{via_upstream}")
    );
}

#[test]
fn ok_without_a_message_is_internal() {
    let plugin = probe()
        .grpc_upstream("echo", |_: &GrpcRequest| {
            GrpcStreamScript::new().close(code::OK, "")
        })
        .start()
        .unwrap();
    let out = plugin.http().request(grpc("grpc-unary")).run();
    assert!(out.logged("grpc failed 5: 13"), "{:?}", out.logs());
}

#[test]
fn a_reply_later_than_the_timeout_is_envoys_timeout() {
    let plugin = probe()
        .grpc_upstream("echo", |_: &GrpcRequest| {
            GrpcReply::ok("late").delay(Duration::from_secs(1))
        })
        .start()
        .unwrap();
    let mut stream = plugin.http_stream();
    stream.send_request(&grpc("grpc-slow"), None);
    assert!(stream.request_paused(), "waiting for the gRPC answer");
    plugin.advance(Duration::from_millis(99));
    assert!(stream.outcome().local_reply().is_none());
    plugin.advance(Duration::from_millis(1));
    let out = stream.finish();
    assert_eq!(out.local_reply().map(|r| r.status()), Some(503));
    assert!(
        out.logged(r#"grpc failed 5: 14 (14 Some("upstream request timeout{response_timeout}"))"#),
        "{:?}",
        out.logs()
    );
    assert_eq!(plugin.now(), Duration::from_millis(100));
}

#[test]
fn a_delayed_reply_within_the_timeout_arrives_when_due() {
    let plugin = probe()
        .grpc_upstream("echo", |_: &GrpcRequest| {
            GrpcReply::ok("in time").delay(Duration::from_millis(300))
        })
        .start()
        .unwrap();
    let out = plugin.http().request(grpc("grpc-unary")).run();
    assert_eq!(out.local_reply().map(|r| r.text()), Some("in time".into()));
    assert_eq!(plugin.now(), Duration::from_millis(300));
}

#[test]
fn unknown_cluster_is_parse_failure_as_in_envoy() {
    let plugin = probe().start().unwrap();
    let out = plugin.http().request(grpc("grpc-unknown")).run();
    assert!(
        out.logs_at(LogLevel::Warn)
            .contains(&"grpc unknown cluster: call Err(ParseFailure), stream Err(ParseFailure)"),
        "{:?}",
        out.logs()
    );
    assert!(out.grpc_calls().is_empty());
    assert!(out.trap().is_none());
}

#[test]
fn cancel_then_unknown_tokens() {
    let plugin = probe()
        .grpc_upstream("echo", |_: &GrpcRequest| GrpcReply::ok("never seen"))
        .start()
        .unwrap();
    let out = plugin.http().request(grpc("grpc-cancel")).run();
    assert!(
        out.logged(
            "grpc cancel: Ok(()) then Err(NotFound); wrong kind Err(NotFound); absent Err(NotFound)"
        ),
        "{:?}",
        out.logs()
    );
    let call = &out.grpc_calls()[0];
    assert!(call.cancelled());
    assert!(call.received_messages().is_empty());
    assert_eq!(call.status(), None);
    assert!(!out.logged("grpc reply"));
}

#[test]
fn stream_delivers_metadata_messages_trailers_then_close_in_order() {
    let plugin = probe()
        .grpc_upstream("echo", |req: &GrpcRequest| {
            assert!(req.is_stream());
            GrpcStreamScript::new()
                .initial_metadata("x-srv", "s1")
                .message("m1")
                .wait(Duration::from_millis(10))
                .message("m2")
                .await_client_end()
                .trailing_metadata("x-t", "t")
                .close(code::OK, "")
        })
        .start()
        .unwrap();
    let out = plugin.http().request(grpc("grpc-stream")).run();
    let grpc_logs: Vec<&str> = out
        .logs_at(LogLevel::Info)
        .into_iter()
        .filter(|l| l.starts_with("grpc"))
        .collect();
    assert_eq!(
        grpc_logs,
        [
            "grpc stream 6: sent Ok(()) Ok(())",
            r#"grpc initial metadata 6: 3 x-srv=Some("s1")"#,
            "grpc message 6: m1",
            "grpc message 6: m2",
            r#"grpc trailing metadata 6: 2 grpc-status=Some("0")"#,
            r#"grpc closed 6: 0 (0 Some("via_upstream")); close Ok(())"#,
        ]
    );
    let call = &out.grpc_calls()[0];
    assert_eq!(call.sent_messages(), [b"a".to_vec(), b"b".to_vec()]);
    assert!(call.client_ended());
    assert_eq!(call.received_messages().len(), 2);
    assert_eq!(
        out.upstream_request().map(|r| r.path().to_string()),
        Some("/".into())
    );
}

#[test]
fn stream_closed_without_messages_is_trailers_only() {
    let plugin = probe()
        .grpc_upstream("echo", |_: &GrpcRequest| {
            GrpcStreamScript::new().close(code::UNAVAILABLE, "down")
        })
        .start()
        .unwrap();
    let out = plugin.http().request(grpc("grpc-stream")).run();
    assert!(
        out.logged("grpc initial metadata 6: 0 x-srv=None"),
        "{:?}",
        out.logs()
    );
    assert!(out.logged(r#"grpc trailing metadata 6: 4 grpc-status=Some("14")"#));
    assert!(out.logged(r#"grpc closed 6: 14 (14 Some("down{via_upstream}"))"#));
}
