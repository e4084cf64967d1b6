//! The harness itself against a real Envoy, without any plugin: if these fail, the plugin
//! suites' failures say nothing about the plugins.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::Result;
use weir_envoy_tests::{
    build_wasm, compile_wat, EchoUpstream, Envoy, FailurePolicy, Reply, TimedRequests, WasmFilter,
};

#[test]
fn proxies_repeated_headers_both_ways_in_order() -> Result<()> {
    let upstream = EchoUpstream::with_reply(
        Reply::status(201)
            .header("x-multi", "one")
            .header("x-other", "between")
            .header("x-multi", "two")
            .body("from upstream"),
    )?;
    let envoy = Envoy::builder().upstream(upstream.addr()).start()?;

    let response = envoy
        .request("POST", "/some/path?q=1")?
        .header("x-twice", "first")
        .header("x-twice", "second")
        .body("request body")
        .send()?;

    assert_eq!(response.status, 201);
    assert_eq!(response.headers.get_all("x-multi"), ["one", "two"]);
    assert_eq!(response.text(), "from upstream");
    let requests = upstream.requests();
    assert_eq!(requests.len(), 1, "{requests:#?}");
    let seen = &requests[0];
    assert_eq!(
        (seen.method.as_str(), seen.path.as_str()),
        ("POST", "/some/path?q=1")
    );
    assert_eq!(seen.headers.get_all("x-twice"), ["first", "second"]);
    assert_eq!(seen.body, b"request body");
    assert!(upstream.errors().is_empty(), "{:?}", upstream.errors());
    Ok(())
}

#[test]
fn echoes_the_request_body_and_does_not_follow_redirects() -> Result<()> {
    let upstream = EchoUpstream::start()?;
    let envoy = Envoy::builder().upstream(upstream.addr()).start()?;
    assert_eq!(
        envoy.request("PUT", "/")?.body("ping").send()?.text(),
        "ping"
    );

    upstream.set_reply(Reply::status(302).header("location", "/elsewhere"));
    let response = envoy.get("/")?.send()?;
    assert_eq!(response.status, 302);
    assert_eq!(response.headers.get("location"), Some("/elsewhere"));
    assert_eq!(upstream.requests().len(), 2);
    Ok(())
}

#[test]
fn answers_directly_without_upstream_and_exposes_admin() -> Result<()> {
    let envoy = Envoy::builder().start()?;
    let response = envoy.get("/")?.send()?;
    assert_eq!(
        (response.status, response.text().as_str()),
        (200, "no upstream configured\n")
    );

    assert_eq!(envoy.stat("http.http.downstream_rq_2xx")?, Some(1));
    let dump = envoy.config_dump()?.to_string();
    assert!(
        dump.contains("envoy.filters.network.http_connection_manager"),
        "{dump}"
    );
    assert!(envoy.admin_url().starts_with("http://127.0.0.1:"));
    assert!(
        envoy.log().contains("starting main dispatch loop"),
        "{}",
        envoy.log()
    );
    Ok(())
}

#[test]
fn tcp_listener_proxies_bytes_to_the_upstream() -> Result<()> {
    let upstream = EchoUpstream::with_reply(Reply::status(200).body("over tcp"))?;
    let envoy = Envoy::builder()
        .upstream(upstream.addr())
        .tcp_listener()
        .start()?;
    let addr = envoy.tcp_addr().expect("the TCP listener was requested");

    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(b"GET /raw HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;

    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.ends_with("over tcp"), "{reply}");
    assert_eq!(upstream.requests()[0].path, "/raw");
    Ok(())
}

#[test]
fn bootstrap_configures_wasm_like_istiod() -> Result<()> {
    let module = std::env::temp_dir().join(format!("weir-harness-{}.wasm", std::process::id()));
    std::fs::write(&module, b"\0asm\x01\0\0\0")?;
    let filter = WasmFilter::new(&module)
        .plugin_name("istio-system", "header-append")
        .root_id("header-append")
        .json_configuration(&serde_json::json!({"first-header": "v"}))
        .env("INLINE", "1")
        .host_env_key("FROM_HOST")
        .failure_policy(FailurePolicy::FailOpen);
    let yaml = Envoy::builder().http_filter(filter).bootstrap_yaml()?;
    std::fs::remove_file(&module)?;

    for expected in [
        r#"name: "istio-system.header-append""#,
        r#"root_id: "header-append""#,
        r#""@type": "type.googleapis.com/google.protobuf.StringValue""#,
        r#"value: "{\"first-header\":\"v\"}""#,
        r#"runtime: "envoy.wasm.runtime.v8""#,
        r#"INLINE: "1""#,
        r#"- "FROM_HOST""#,
        r#"failure_policy: "FAIL_OPEN""#,
    ] {
        assert!(yaml.contains(expected), "missing {expected} in:\n{yaml}");
    }
    assert!(!yaml.contains("vm_id"), "istiod sets no vm_id:\n{yaml}");
    Ok(())
}

#[test]
fn a_module_envoy_cannot_load_is_reported_as_refusal() -> Result<()> {
    let module = std::env::temp_dir().join(format!("weir-not-wasm-{}.wasm", std::process::id()));
    std::fs::write(&module, b"this is not a wasm module")?;
    let refusal = Envoy::builder()
        .http_filter(WasmFilter::new(&module).plugin_name("ns", "broken"))
        .start_expecting_refusal();
    std::fs::remove_file(&module)?;
    let refusal = refusal?;

    assert_eq!(refusal.status.code(), Some(1), "{}", refusal.log);
    assert!(
        refusal
            .error_lines()
            .iter()
            .any(|l| l.contains("Unable to create Wasm plugin ns.broken")),
        "{}",
        refusal.log
    );
    Ok(())
}

#[test]
fn start_reports_a_refused_config_with_the_log_and_keeps_the_files() -> Result<()> {
    let module = std::env::temp_dir().join(format!("weir-not-wasm2-{}.wasm", std::process::id()));
    std::fs::write(&module, b"still not wasm")?;
    let started = Envoy::builder()
        .http_filter(WasmFilter::new(&module).plugin_name("ns", "broken"))
        .start();
    std::fs::remove_file(&module)?;

    let message = format!("{:#}", started.expect_err("Envoy cannot load this module"));
    assert!(message.contains("Envoy exited during startup"), "{message}");
    assert!(
        message.contains("Unable to create Wasm plugin ns.broken"),
        "{message}"
    );
    let kept = message
        .split("kept in ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the error names the kept directory");
    assert!(
        std::path::Path::new(kept).join("envoy.log").is_file(),
        "{message}"
    );
    std::fs::remove_dir_all(kept)?;
    Ok(())
}

#[test]
fn envoy_accepts_every_field_the_harness_writes_for_http_and_l4() -> Result<()> {
    // header-append ignores its VM environment; it is only here as a module that loads.
    let filter = WasmFilter::new(build_wasm("header-append"))
        .plugin_name("istio-system", "env-check")
        .root_id("env-check")
        .configuration("{}")
        .env("INLINE_KEY", "inline-value")
        .host_env_key("WEIR_HOST_KEY")
        .failure_policy(FailurePolicy::FailOpen);
    let upstream = EchoUpstream::start()?;
    // Only loaded on the L4 listener, never sent traffic: it is an HTTP plugin.
    let l4 = WasmFilter::new(build_wasm("header-append")).plugin_name("istio-system", "l4-check");
    let envoy = Envoy::builder()
        .http_filter(filter)
        .network_filter(l4)
        .upstream(upstream.addr())
        .process_env("WEIR_HOST_KEY", "from-host")
        .start()?;

    let dump = envoy.config_dump()?.to_string();
    for expected in [
        r#""name":"istio-system.env-check""#,
        r#""root_id":"env-check""#,
        r#""INLINE_KEY":"inline-value""#,
        r#""host_env_keys":["WEIR_HOST_KEY"]"#,
        r#""failure_policy":"FAIL_OPEN""#,
        r#""runtime":"envoy.wasm.runtime.v8""#,
        r#""@type":"type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm""#,
        r#""name":"istio-system.l4-check""#,
    ] {
        assert!(
            dump.contains(expected),
            "config_dump lacks {expected}:\n{dump}"
        );
    }
    assert_eq!(envoy.get("/")?.send()?.status, 200);
    assert!(envoy.tcp_addr().is_some());
    Ok(())
}

#[test]
fn http_filters_run_in_the_order_added() -> Result<()> {
    // Two header-append instances: the second overwrites what the first added, which only
    // works if it runs after it. Envoy runs response filters in reverse order, so there
    // the second finds nothing to overwrite and the first's value stays.
    let step = |name: &str, action: &str| {
        let ops = serde_json::json!([{"name": "x-order", "value": name, "action": action}]);
        WasmFilter::new(build_wasm("header-append"))
            .plugin_name("ns", name)
            .json_configuration(&serde_json::json!({
                "request_headers_to_add": ops, "response_headers_to_add": ops,
            }))
    };
    let upstream = EchoUpstream::start()?;
    let envoy = Envoy::builder()
        .http_filter(step("first", "APPEND_IF_EXISTS_OR_ADD"))
        .http_filter(step("second", "OVERWRITE_IF_EXISTS"))
        .upstream(upstream.addr())
        .start()?;

    let response = envoy.get("/")?.send()?;
    assert_eq!(
        upstream.requests()[0].headers.get_all("x-order"),
        ["second"]
    );
    assert_eq!(response.headers.get_all("x-order"), ["first"]);
    Ok(())
}

#[test]
fn extra_clusters_are_loaded_next_to_the_upstream() -> Result<()> {
    let upstream = EchoUpstream::start()?;
    let callout = EchoUpstream::start()?;
    let envoy = Envoy::builder()
        .upstream(upstream.addr())
        .cluster("authz", callout.addr())
        .start()?;
    let dump = envoy.config_dump()?.to_string();
    assert!(dump.contains(r#""name":"authz""#), "{dump}");
    assert!(
        dump.contains(&format!(r#""port_value":{}"#, callout.addr().port())),
        "{dump}"
    );
    assert_eq!(envoy.get("/")?.send()?.status, 200);
    Ok(())
}

#[test]
fn wasm_failures_finds_a_guest_panic_and_trap_and_nothing_else() -> Result<()> {
    let guest = compile_wat(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/wat/panic_on_request.wat"
    ))?;
    let upstream = EchoUpstream::start()?;
    let envoy = Envoy::builder()
        .http_filter(WasmFilter::new(guest).plugin_name("ns", "panics"))
        .upstream(upstream.addr())
        .start()?;
    assert_eq!(envoy.get("/fine")?.send()?.status, 200);
    assert_eq!(
        envoy.wasm_failures(),
        Vec::<String>::new(),
        "{}",
        envoy.log()
    );

    // The trapping request fails closed (503 in Envoy 1.40, failure policy FAIL_CLOSED).
    let trapped = envoy.get("/panic")?.send()?;
    assert_eq!(trapped.status, 503, "{}", envoy.log());
    // The VM stays failed: every later request fails closed too, and nothing more is logged.
    assert_eq!(envoy.get("/fine")?.send()?.status, 503);
    let failures = envoy.wasm_failures();
    for mark in [
        "panicked at src/lib.rs:7:9",
        "proxy_on_request_headers failed: Uncaught RuntimeError",
    ] {
        assert!(
            failures.iter().any(|l| l.contains(mark)),
            "no {mark:?} in {failures:#?}\nlog:\n{}",
            envoy.log()
        );
    }
    assert_eq!(failures.len(), 2, "{failures:#?}");
    Ok(())
}

#[test]
fn timed_requests_send_the_header_sets_in_turn_and_fail_on_another_status() -> Result<()> {
    let upstream = EchoUpstream::start()?;
    let envoy = Envoy::builder().upstream(upstream.addr()).start()?;
    let header_sets = [vec![("x-n", "a")], vec![("x-n", "b")]];
    let mut run = TimedRequests::new("/timed", &header_sets, 3, 5);
    let (timing, seen_at_start) =
        run.run_after_warm_up(&envoy, || Ok(upstream.requests().len()))?;
    assert_eq!(seen_at_start, 3, "the hook runs after the warm-up");
    assert_eq!(timing.requests, 5);
    assert!(timing.per_second() > 0.0 && timing.micros_per_request() > 0.0);
    let sent: Vec<String> = upstream
        .requests()
        .iter()
        .map(|r| r.headers.get_all("x-n").concat())
        .collect();
    // Each phase starts again at the first set.
    assert_eq!(sent, ["a", "b", "a", "a", "b", "a", "b", "a"]);

    run.expected_status = 401;
    let err = format!("{:#}", run.run(&envoy).unwrap_err());
    assert!(
        err.contains("warm-up, request 0 of 3 to /timed: status 200, expected 401"),
        "{err}"
    );
    assert_eq!(
        upstream.requests().len(),
        9,
        "it stops at the first wrong status"
    );
    Ok(())
}
