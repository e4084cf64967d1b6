//! `weir exec` on the real header-append `.wasm` (built with the Weir SDK), on the raw
//! `proxy-wasm` probe guest of weir-runtime's tests and on the fidelity suite's exerciser,
//! which calls every host function (neither uses the Weir SDK): text output snapshotted,
//! `--json` asserted field by field.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::Value;

use crate::common::{assert_snapshot, ok, stderr, user_error, weir, write};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// header-append and the probe, built once per test process.
fn header_append() -> &'static str {
    static WASM: OnceLock<String> = OnceLock::new();
    WASM.get_or_init(|| built(&repo("plugins/header-append")))
}

pub(crate) fn probe() -> &'static str {
    static WASM: OnceLock<String> = OnceLock::new();
    WASM.get_or_init(|| built(&repo("runtime/test-plugins/probe")))
}

fn exerciser() -> &'static str {
    static WASM: OnceLock<String> = OnceLock::new();
    WASM.get_or_init(|| built(&repo("tests/fidelity/guests/exerciser")))
}

fn built(crate_dir: &Path) -> String {
    let path = weir_runtime::Plugin::wasm_path(crate_dir)
        .unwrap_or_else(|e| panic!("building {}: {e}", crate_dir.display()));
    path.display().to_string()
}

pub(crate) fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "--json output is JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// The values of header `name` in a MESSAGE of the JSON report.
fn header_values<'a>(message: &'a Value, name: &str) -> Vec<&'a str> {
    message["headers"]
        .as_array()
        .expect("headers array")
        .iter()
        .filter(|pair| pair[0] == name)
        .map(|pair| pair[1].as_str().expect("header value"))
        .collect()
}

const CONFIG: &str = r#"{
  "request_headers_to_add": [
    {"name": "x-team", "value": "payments", "action": "ADD_IF_ABSENT"},
    {"name": "x-tag", "value": "plugin", "action": "APPEND_IF_EXISTS_OR_ADD"}
  ],
  "request_headers_to_remove": ["x-debug"],
  "response_headers_to_add": [{"name": "x-served-by", "value": "weir", "action": "OVERWRITE_IF_EXISTS_OR_ADD"}],
  "response_headers_to_remove": ["server"]
}"#;

const RESPONSE: &str = "HTTP/1.1 200 OK\ncontent-type: text/plain\nserver: envoy\n\nhello\n";

/// Instruction counts follow the compiled SDK, and the module path the machine.
fn redact(text: &str, wasm: &str) -> String {
    let counts = regex::Regex::new(r"(?m)^(  proxy_on_\w+|  total) +\d+$").expect("regex");
    let text = text.replace(wasm, "[WASM]");
    counts.replace_all(&text, "$1 [N]").into_owned()
}

#[test]
fn header_append_text_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write(dir.path(), "config.json", CONFIG.as_bytes());
    let response = write(dir.path(), "response.http", RESPONSE.as_bytes());
    let out = weir(
        &[
            "exec",
            header_append(),
            "--config",
            &config.display().to_string(),
            "--request",
            "POST /orders",
            "-H",
            "host: shop.example.com",
            "-H",
            "x-tag: client",
            "-H",
            "x-debug: 1",
            "--body",
            "{\"qty\": 2}",
            "--response",
            &format!("@{}", response.display()),
        ],
        None,
    );
    let text = ok(&out);
    assert_snapshot(
        "exec-header-append.txt",
        &(redact(&text, header_append()) + "\n"),
    );
}

/// `-v` tells compiling the module from starting it, and the report is unchanged by it.
#[test]
fn verbose_reports_compile_and_start_times() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write(dir.path(), "config.json", CONFIG.as_bytes());
    let config = config.display().to_string();
    let args = ["exec", header_append(), "--config", config.as_str()];
    let quiet = weir(&args, None);
    let verbose = weir(&[&args[..], &["-v"]].concat(), None);
    assert_eq!(ok(&verbose), ok(&quiet));
    let timing = regex::Regex::new(
        r"(?m)^  compiled in \d+\.\d ms; started \(instantiate, on_vm_start, on_configure\) in \d+\.\d{3} ms$",
    )
    .expect("regex");
    assert!(timing.is_match(&stderr(&verbose)), "{}", stderr(&verbose));
    assert!(
        !stderr(&quiet).contains("compiled in"),
        "{}",
        stderr(&quiet)
    );
}

#[test]
fn header_append_json_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write(dir.path(), "config.json", CONFIG.as_bytes());
    let out = weir(
        &[
            "exec",
            header_append(),
            "--json",
            "--config",
            &config.display().to_string(),
            "-H",
            "x-tag: client",
            "-H",
            "x-debug: 1",
            "--response",
            "200\nserver: envoy\nx-served-by: upstream\n\nok",
        ],
        None,
    );
    ok(&out);
    let report = json(&out);
    assert_eq!(report["weir_exec"], 1);
    let upstream = &report["upstream_request"];
    assert_eq!(header_values(upstream, ":path"), ["/"]);
    assert_eq!(header_values(upstream, "x-team"), ["payments"]);
    assert_eq!(header_values(upstream, "x-tag"), ["client", "plugin"]);
    assert!(header_values(upstream, "x-debug").is_empty());
    assert_eq!(report["response_source"], "upstream");
    let response = &report["response"];
    assert_eq!(header_values(response, ":status"), ["200"]);
    assert_eq!(header_values(response, "x-served-by"), ["weir"]);
    assert!(header_values(response, "server").is_empty());
    assert_eq!(response["body"], "ok");
    assert!(report["local_reply"].is_null() && report["trap"].is_null());
    let phases: Vec<&str> = report["actions"]
        .as_array()
        .expect("actions")
        .iter()
        .map(|a| a["phase"].as_str().expect("phase"))
        .collect();
    assert_eq!(
        phases,
        ["request_headers", "response_headers", "response_body"]
    );
    let callbacks = report["instructions"]["callbacks"]
        .as_array()
        .expect("callbacks");
    let sum: u64 = callbacks
        .iter()
        .map(|c| c["instructions"].as_u64().expect("count"))
        .sum();
    assert!(sum > 0);
    assert_eq!(report["instructions"]["total"].as_u64(), Some(sum));
    assert!(callbacks
        .iter()
        .any(|c| c["callback"] == "proxy_on_request_headers"));
}

#[test]
fn rejected_config_shows_the_plugins_own_error_and_a_hint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write(
        dir.path(),
        "bad.json",
        br#"{"request_headers_to_add": [{"name": "x", "value": "y", "action": "PREPEND"}]}"#,
    );
    let err = user_error(&weir(
        &[
            "exec",
            header_append(),
            "--config",
            &config.display().to_string(),
        ],
        None,
    ));
    assert!(
        err.contains(&format!(
            "error: the plugin rejected the configuration {}",
            config.display()
        )),
        "{err}"
    );
    assert!(
        err.contains("Caused by: plugin rejected its configuration"),
        "{err}"
    );
    assert!(
        err.contains("PREPEND"),
        "the plugin's own message is shown: {err}"
    );
    assert!(
        err.contains("hint: the plugin's own message is above"),
        "{err}"
    );
}

#[test]
fn raw_proxy_wasm_callout_answered_from_a_canned_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let canned = write(
        dir.path(),
        "auth.http",
        b"HTTP/1.1 200 OK\nx-policy: allow\n\ntoken-42",
    );
    let upstream = format!("auth={}", canned.display());
    let out = weir(
        &[
            "exec",
            probe(),
            "--json",
            "--env",
            "GREETING=hi",
            "-H",
            "x-probe: callout",
            "--upstream",
            &upstream,
        ],
        None,
    );
    ok(&out);
    let report = json(&out);
    let callout = &report["callouts"][0];
    assert_eq!(callout["cluster"], "auth");
    assert_eq!(callout["timeout_ms"], 500);
    assert_eq!(header_values(&callout["request"], "x-user"), ["ann"]);
    assert_eq!(callout["request"]["body"], "who?");
    assert_eq!(callout["response"]["body"], "token-42");
    assert_eq!(
        header_values(&report["upstream_request"], "x-auth"),
        ["token-42"]
    );
    assert_eq!(
        report["metrics"][0],
        serde_json::json!({ "name": "probe_requests", "value": 1 })
    );
    let logs = report["logs"].as_array().expect("logs");
    assert!(
        logs.iter()
            .any(|l| l["scope"] == "plugin" && l["message"] == "vm start, GREETING=hi, args=0"),
        "{logs:?}"
    );
    assert!(logs.iter().any(|l| l["scope"] == "stream"
        && l["level"] == "info"
        && l["message"] == "callout answered 200: token-42"));
}

#[test]
fn raw_proxy_wasm_local_reply_and_failed_callout() {
    let out = weir(&["exec", probe(), "-H", "x-probe: reply"], None);
    let text = ok(&out);
    assert!(text.contains("== response, as the client received it (local reply from the plugin)\n  :status: 403\n  x-reason: probe"), "{text}");
    assert!(
        text.contains("== request, as the upstream received it\n  (never reached the upstream)"),
        "{text}"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    let canned = write(dir.path(), "down.http", b"fail\n");
    let upstream = format!("auth={}", canned.display());
    let report = json(&weir(
        &[
            "exec",
            probe(),
            "--json",
            "-H",
            "x-probe: callout",
            "--upstream",
            &upstream,
        ],
        None,
    ));
    assert_eq!(report["response_source"], "local_reply");
    assert_eq!(report["local_reply"]["status"], 503);
    assert!(report["callouts"][0]["response"]["headers"]
        .as_array()
        .expect("headers")
        .is_empty());
}

#[test]
fn a_crashing_plugin_is_reported_with_exit_1() {
    let out = weir(&["exec", probe(), "--json", "-H", "x-probe: panic"], None);
    let err = user_error(&out);
    assert!(
        err.contains("the plugin crashed: proxy_on_request_headers trapped"),
        "{err}"
    );
    let report = json(&out);
    assert!(report["trap"]["panic_message"]
        .as_str()
        .expect("panic message")
        .contains("probe panic: boom"));
}

#[test]
fn malformed_canned_file_names_the_flag_and_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let canned = write(dir.path(), "bad.http", b"OK 200\n");
    let upstream = format!("auth={}", canned.display());
    let err = user_error(&weir(&["exec", probe(), "--upstream", &upstream], None));
    assert!(
        err.contains("--upstream")
            && err.contains("bad.http")
            && err.contains("is not a status line"),
        "{}",
        err
    );
    let missing = user_error(&weir(
        &["exec", probe(), "--upstream", "auth=/nonexistent/x.http"],
        None,
    ));
    assert!(missing.contains("/nonexistent/x.http"), "{missing}");
}

/// The exerciser's callout flow, as the fidelity scenario `exerciser_callout_allows` runs it in
/// Envoy: one command exercises config, env, properties, shared data with CAS, queues,
/// metrics, a callout and header mutation in both directions.
#[test]
fn raw_exerciser_calls_every_host_function() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write(dir.path(), "config.json", br#"{"greeting":"plain"}"#);
    let canned = write(dir.path(), "authz.http", b"HTTP/1.1 200 OK\n\ngranted");
    let upstream = format!("authz={}", canned.display());
    let out = weir(
        &[
            "exec",
            exerciser(),
            "--json",
            "--root-id",
            "exerciser",
            "--config",
            &config.display().to_string(),
            "--env",
            "EXERCISER_GREETING=hello",
            "--request",
            "GET /callout/ok",
            "-H",
            "x-user: ann",
            "--upstream",
            &upstream,
            "--response",
            "200\n\nfine",
        ],
        None,
    );
    ok(&out);
    let report = json(&out);
    let upstream = &report["upstream_request"];
    for (name, value) in [
        ("x-authz", "granted"),
        ("x-config", r#"{"greeting":"plain"}"#),
        ("x-env-greeting", "hello"),
        ("x-prop-root-id", "exerciser"),
        ("x-prop-path", "/callout/ok"),
        (
            "x-shared",
            "before=none first=Ok(()) second=Ok(()) stale=Err(CasMismatch) now=2",
        ),
        ("x-queue", "resolved=true enqueued=Ok(()) took=first"),
        ("x-metric-requests", "Ok(1)"),
        ("x-replace", "replaced"),
    ] {
        assert_eq!(
            header_values(upstream, name),
            [value],
            "upstream header {name}"
        );
    }
    assert_eq!(report["callouts"][0]["cluster"], "authz");
    assert_eq!(
        header_values(&report["callouts"][0]["request"], ":path"),
        ["/check?path=/callout/ok"]
    );
    assert_eq!(
        header_values(&report["response"], "x-resp-added"),
        ["added"]
    );
    assert_eq!(report["response"]["body"], "fine");
    let metrics = report["metrics"].as_array().expect("metrics");
    assert!(
        metrics.contains(&serde_json::json!({ "name": "exerciser_requests", "value": 1 })),
        "{metrics:?}"
    );
    let logs = report["logs"].as_array().expect("logs");
    assert!(
        logs.iter()
            .any(|l| l["message"] == "exerciser: authz answered 200"),
        "{logs:?}"
    );
}
