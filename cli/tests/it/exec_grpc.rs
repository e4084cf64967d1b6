//! `weir exec --grpc-upstream`: the raw `proxy-wasm` probe's gRPC calls and streams answered
//! from gRPC reply files.

use crate::common::{ok, user_error, weir, write};
use crate::exec::{json, probe};

#[test]
fn unary_call_answered_from_a_reply_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reply = write(
        dir.path(),
        "echo.grpc",
        b"grpc 0\ninitial x-srv: s1\ndelay 20\n\npong",
    );
    let upstream = format!("echo={}", reply.display());
    let out = weir(
        &[
            "exec",
            probe(),
            "--json",
            "-H",
            "x-probe: grpc-unary",
            "--grpc-upstream",
            &upstream,
        ],
        None,
    );
    ok(&out);
    let report = json(&out);
    assert_eq!(report["local_reply"]["status"], 200);
    assert_eq!(report["local_reply"]["body"], "pong");
    let call = &report["grpc_calls"][0];
    assert_eq!(call["cluster"], "echo");
    assert_eq!(call["token"], 5);
    assert_eq!(call["service"], "test.Echo");
    assert_eq!(call["method"], "Say");
    assert_eq!(call["stream"], false);
    assert_eq!(call["timeout_ms"], 500);
    assert_eq!(call["metadata"], serde_json::json!([["x-md", "one"]]));
    assert_eq!(call["message_base64"], "cGluZw==");
    assert_eq!(call["received_base64"], serde_json::json!(["cG9uZw=="]));
    assert_eq!(
        call["status"],
        serde_json::json!({ "code": 0, "message": "" })
    );
}

#[test]
fn error_status_and_stream_in_the_text_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let reply = write(
        dir.path(),
        "deny.grpc",
        b"grpc 7 not%20you\ntrailing x-why: policy\n",
    );
    let upstream = format!("echo={}", reply.display());
    let text = ok(&weir(
        &[
            "exec",
            probe(),
            "-H",
            "x-probe: grpc-unary",
            "--grpc-upstream",
            &upstream,
        ],
        None,
    ));
    assert!(text.contains("== gRPC calls\n  #1 gRPC call to echo: /test.Echo/Say (timeout 500 ms)\n    x-md: one\n    message: 4 bytes\n    -> status 7 not%20you{via_upstream}"), "{text}");
    assert!(
        text.contains(r#"grpc failed 5: 7 (7 Some("not%20you{via_upstream}"))"#),
        "{text}"
    );

    let report = json(&weir(
        &[
            "exec",
            probe(),
            "--json",
            "-H",
            "x-probe: grpc-stream",
            "--grpc-upstream",
            &upstream,
        ],
        None,
    ));
    let call = &report["grpc_calls"][0];
    assert_eq!(call["stream"], true);
    assert_eq!(call["sent_base64"], serde_json::json!(["YQ==", "Yg=="]));
    assert_eq!(call["client_ended"], true);
    assert_eq!(call["status"]["code"], 7);
    let logs: Vec<&str> = report["logs"]
        .as_array()
        .expect("logs")
        .iter()
        .filter_map(|l| l["message"].as_str())
        .collect();
    assert!(
        logs.contains(&r#"grpc trailing metadata 6: 5 grpc-status=Some("7")"#),
        "{logs:?}"
    );
}

#[test]
fn timeout_word_and_bad_files_name_the_flag_and_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let slow = write(dir.path(), "slow.grpc", b"timeout\n");
    let upstream = format!("echo={}", slow.display());
    let report = json(&weir(
        &[
            "exec",
            probe(),
            "--json",
            "-H",
            "x-probe: grpc-unary",
            "--grpc-upstream",
            &upstream,
        ],
        None,
    ));
    assert_eq!(
        report["grpc_calls"][0]["status"]["message"],
        "upstream request timeout{response_timeout}"
    );

    let bad = write(dir.path(), "bad.grpc", b"HTTP/1.1 200 OK\n");
    let upstream = format!("echo={}", bad.display());
    let err = user_error(&weir(
        &["exec", probe(), "--grpc-upstream", &upstream],
        None,
    ));
    assert!(
        err.contains("--grpc-upstream") && err.contains("bad.grpc") && err.contains("grpc CODE"),
        "{err}"
    );
    let missing = user_error(&weir(
        &[
            "exec",
            probe(),
            "--grpc-upstream",
            "echo=/nonexistent/x.grpc",
        ],
        None,
    ));
    assert!(missing.contains("/nonexistent/x.grpc"), "{missing}");
}
