//! `weir run` against real Envoy: seed 000's WasmPlugin examples (file://, oci:// from a
//! local TLS registry with a pull secret, https:// from a local TLS server, vmConfig env),
//! ordering around jwt_authn, fetch failures, pull policy, hot reload, validation first.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use sha2::{Digest, Sha256};

use crate::common::{self, TestRegistry, PASSWORD, USER};
use crate::run_support::{header_append, variant, write_yaml, HttpsServer, WeirRun};

const GATEWAY: &str =
    "namespace: istio-ingress\nlabels:\n  istio: ingressgateway\ndirection: gateway\nport: 8080\n";
/// RFC 7517 appendix A.1's EC public key: a valid JWKS for Envoy's jwt_authn.
const JWKS: &str = r#"{"keys":[{"kty":"EC","crv":"P-256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM","kid":"1"}]}"#;

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn pull_secret(registry: &TestRegistry) -> String {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    let config = format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, registry.host);
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: private-registry-pull-secret\n  namespace: istio-ingress\ntype: kubernetes.io/dockerconfigjson\nstringData:\n  .dockerconfigjson: '{config}'\n"
    )
}

/// `weir push MODULE oci://REGISTRY/REPO_TAG`; returns the manifest digest.
fn push(registry: &TestRegistry, module: &Path, repo_tag: &str) -> String {
    let target = format!("oci://{}", registry.image(repo_tag));
    let mut args = vec!["push".to_string(), module.display().to_string(), target];
    args.extend(registry.flags());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    common::ok(&common::weir(&args, Some(&format!("{PASSWORD}\n"))))
}

fn wasm_filename(run: &WeirRun, name: &str) -> String {
    let config = run.extension_config(name);
    config["typed_config"]["config"]["vm_config"]["code"]["local"]["filename"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn configuration(run: &WeirRun, name: &str) -> String {
    let config = run.extension_config(name);
    config["typed_config"]["config"]["configuration"]["value"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn seed_file_example_runs_and_ctrl_c_stops_envoy() {
    let dir = tempfile::tempdir().expect("tempdir");
    let module = std::fs::read(header_append()).expect("module");
    let wasm = common::write(dir.path(), "openid.wasm", &module);
    let plugin = format!(
        "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata:\n  name: openid-connect\n  namespace: istio-ingress\nspec:\n  selector:\n    matchLabels:\n      istio: ingressgateway\n  url: file://{}\n  sha256: {}\n  phase: AUTHN\n  pluginConfig:\n    openid_server: authn\n    openid_realm: ingress\n",
        wasm.display(),
        sha256_hex(&module)
    );
    let file = write_yaml(dir.path(), "openid.yaml", &plugin);
    let workload = write_yaml(dir.path(), "workload.yaml", GATEWAY);
    let upstream = weir_test_http::EchoUpstream::start().expect("upstream");
    let upstream_url = format!("http://{}", upstream.addr());
    let cache = dir.path().join("cache");
    let mut run = WeirRun::with(
        &file,
        Some(&workload),
        &cache,
        &["--upstream", &upstream_url],
    );
    let response = run.get("/seed");
    assert_eq!(response.status, 200);
    assert_eq!(response.headers.get("openid_server"), Some("authn"));
    assert_eq!(response.headers.get("openid_realm"), Some("ingress"));
    assert_eq!(
        upstream.requests().len(),
        1,
        "the request reached the upstream"
    );
    // What istiod writes: <ns>.<name>, empty root_id, pluginConfig as JSON in a StringValue, V8.
    let config = run.extension_config("istio-ingress.openid-connect");
    let wasm_config = &config["typed_config"]["config"];
    // An empty root_id (no pluginName) is proto3's default, which /config_dump leaves out.
    assert_eq!(wasm_config["root_id"].as_str().unwrap_or_default(), "");
    assert_eq!(wasm_config["vm_config"]["runtime"], "envoy.wasm.runtime.v8");
    assert_eq!(
        configuration(&run, "istio-ingress.openid-connect"),
        r#"{"openid_realm":"ingress","openid_server":"authn"}"#
    );
    assert!(
        run.stdout().contains("istio-ingress.openid-connect [AUTHN"),
        "{}",
        run.stdout()
    );
    let admin = run.admin.clone();
    assert_eq!(
        run.interrupt(),
        Some(0),
        "Ctrl-C is a clean exit: {}",
        run.stderr()
    );
    assert!(run.stderr().contains("Envoy stopped"), "{}", run.stderr());
    assert!(
        std::net::TcpStream::connect(&admin).is_err(),
        "Envoy's admin port is closed after Ctrl-C"
    );
}

#[test]
fn seed_oci_and_https_examples_with_pull_secret_and_vm_env() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = TestRegistry::start();
    let module = header_append();
    let digest = push(&registry, &module, "openid-connect/openid:latest");
    let secret = pull_secret(&registry);
    let head = "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata:\n  name: openid-connect\n  namespace: istio-ingress\nspec:\n  selector:\n    matchLabels:\n      istio: ingressgateway\n";
    let config =
        "  phase: AUTHN\n  pluginConfig:\n    openid_server: authn\n    openid_realm: ingress\n";
    let env = "  vmConfig:\n    env:\n    - name: POD_NAME\n      valueFrom: HOST\n    - name: TRUST_DOMAIN\n      value: \"cluster.local\"\n";
    let oci = format!(
        "  url: oci://{}/openid-connect/openid:latest\n  imagePullPolicy: IfNotPresent\n  imagePullSecret: private-registry-pull-secret\n",
        registry.host
    );
    // Example 2: OCI image, pull secret.
    let file = write_yaml(
        dir.path(),
        "openid.yaml",
        &format!("{secret}---\n{head}{oci}{config}"),
    );
    let workload = write_yaml(dir.path(), "workload.yaml", GATEWAY);
    let cache = dir.path().join("cache");
    let run = WeirRun::with(
        &file,
        Some(&workload),
        &cache,
        &["--ca-cert", &registry.ca()],
    );
    assert_eq!(run.get("/").headers.get("openid_server"), Some("authn"));
    assert!(
        run.stdout().contains(&digest),
        "the chain names the manifest digest:\n{}",
        run.stdout()
    );
    let hex = digest.trim_start_matches("sha256:");
    assert!(wasm_filename(&run, "istio-ingress.openid-connect").ends_with(&format!("{hex}.wasm")));

    // Example 3: the same with vmConfig env, applied by hot reload.
    write_yaml(
        dir.path(),
        "openid.yaml",
        &format!("{secret}---\n{head}{oci}{config}{env}"),
    );
    run.wait_for(Duration::from_secs(5), "vmConfig env applied", || {
        let c = run.extension_config("istio-ingress.openid-connect");
        c["typed_config"]["config"]["vm_config"]["environment_variables"]["key_values"]
            ["TRUST_DOMAIN"]
            == "cluster.local"
    });
    let c = run.extension_config("istio-ingress.openid-connect");
    assert_eq!(
        c["typed_config"]["config"]["vm_config"]["environment_variables"]["host_env_keys"],
        serde_json::json!(["POD_NAME"])
    );
    assert_eq!(run.get("/").status, 200);

    // Example 4: https://, imagePullPolicy Always, from a local TLS server.
    let served = dir.path().join("served");
    std::fs::create_dir_all(served.join("filters")).expect("dir");
    let https_module = variant(&std::fs::read(&module).expect("module"), "https");
    std::fs::write(served.join("filters/openid.wasm"), &https_module).expect("write");
    let server_dir = tempfile::tempdir().expect("tempdir");
    let (ca, cert, key) = common::certificates();
    let ca_file = common::write(server_dir.path(), "ca.pem", ca.as_bytes());
    let cert_file = common::write(server_dir.path(), "cert.pem", cert.as_bytes());
    let key_file = common::write(server_dir.path(), "key.pem", key.as_bytes());
    let server = HttpsServer::start(&served, &cert_file, &key_file);
    let https = format!(
        "  url: {}/filters/openid.wasm\n  imagePullPolicy: Always\n",
        server.base
    );
    drop(run);
    let file = write_yaml(
        dir.path(),
        "openid.yaml",
        &format!("{head}{https}{config}{env}"),
    );
    let run = WeirRun::with(
        &file,
        Some(&workload),
        &cache,
        &["--ca-cert", ca_file.to_str().expect("utf8")],
    );
    assert_eq!(run.get("/").headers.get("openid_realm"), Some("ingress"));
    assert!(wasm_filename(&run, "istio-ingress.openid-connect")
        .ends_with(&format!("{}.wasm", sha256_hex(&https_module))));
}

#[test]
fn seed_three_plugins_order_around_jwt_authn_and_unset_priority_sorts_after_zero() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = TestRegistry::start();
    let module = header_append();
    for repo in [
        "openid-connect/openid:latest",
        "acl-check/acl:latest",
        "check-header:latest",
    ] {
        push(&registry, &module, repo);
    }
    let host = &registry.host;
    let seed = format!(
        "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata:\n  name: openid-connect\n  namespace: istio-ingress\nspec:\n  selector:\n    matchLabels:\n      istio: ingressgateway\n  url: oci://{host}/openid-connect/openid:latest\n  imagePullPolicy: IfNotPresent\n  imagePullSecret: private-registry-pull-secret\n  phase: AUTHN\n  pluginConfig:\n    openid_server: authn\n    openid_realm: ingress\n---\napiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata:\n  name: acl-check\n  namespace: istio-ingress\nspec:\n  selector:\n    matchLabels:\n      istio: ingressgateway\n  url: oci://{host}/acl-check/acl:latest\n  imagePullPolicy: Always\n  imagePullSecret: private-registry-pull-secret\n  phase: AUTHZ\n  priority: 1000\n  pluginConfig:\n    acl_server: some_server\n    set_header: authz_complete\n---\napiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata:\n  name: check-header\n  namespace: istio-ingress\nspec:\n  selector:\n    matchLabels:\n      istio: ingressgateway\n  url: oci://{host}/check-header:latest\n  imagePullPolicy: IfNotPresent\n  imagePullSecret: private-registry-pull-secret\n  phase: AUTHZ\n  priority: 10\n  pluginConfig:\n    read_header: authz_complete\n    verification_key: a89gAzxvls0JKAKIJSBnnvvvkIO\n    function: read_data\n"
    );
    let wasm = module.display();
    // Names sort before the seed's, so load order alone would put them first.
    let extra = format!(
        "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata:\n  name: a-unset\n  namespace: istio-ingress\nspec:\n  url: file://{wasm}\n  phase: AUTHZ\n---\napiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata:\n  name: b-zero\n  namespace: istio-ingress\nspec:\n  url: file://{wasm}\n  phase: AUTHZ\n  priority: 0\n---\napiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata:\n  name: other-namespace\n  namespace: elsewhere\nspec:\n  url: file://{wasm}\n"
    );
    let plugins = dir.path().join("plugins");
    std::fs::create_dir_all(&plugins).expect("dir");
    write_yaml(&plugins, "seed.yaml", &seed);
    write_yaml(&plugins, "extra.yaml", &extra);
    write_yaml(&plugins, "secret.yaml", &pull_secret(&registry));
    let workload = write_yaml(
        dir.path(),
        "workload.yaml",
        &format!("{GATEWAY}jwt:\n  issuer: https://idp.example\n  jwks: '{JWKS}'\nauthorization:\n  action: DENY\n  paths: [\"/admin*\"]\n"),
    );
    let cache = dir.path().join("cache");
    let run = WeirRun::with(
        &plugins,
        Some(&workload),
        &cache,
        &["--ca-cert", &registry.ca()],
    );
    assert_eq!(
        run.http_filter_names(),
        [
            "istio-ingress.openid-connect",
            "envoy.filters.http.jwt_authn",
            "istio-ingress.acl-check",
            "istio-ingress.check-header",
            "istio-ingress.b-zero",
            "istio-ingress.a-unset",
            "envoy.filters.http.rbac",
            "envoy.filters.http.router",
        ],
        "Envoy's /config_dump holds the chain in istiod's order"
    );
    assert!(
        run.stderr()
            .contains("not applied: elsewhere.other-namespace"),
        "{}",
        run.stderr()
    );
    let response = run.get("/data");
    assert_eq!(response.status, 200, "{}", run.stderr());
    assert_eq!(response.headers.get("set_header"), Some("authz_complete"));
    assert_eq!(response.headers.get("function"), Some("read_data"));
    assert_eq!(
        run.get("/admin/x").status,
        403,
        "the rbac rule denies /admin*"
    );
    let bad_token = weir_test_http::HttpRequest::get(&format!("{}/data", run.url))
        .expect("request")
        .header("authorization", "Bearer not-a-jwt")
        .send()
        .expect("response");
    assert_eq!(bad_token.status, 401, "jwt_authn rejects an invalid token");
}

#[test]
fn fetch_failures_fail_open_200_fail_close_403_and_sha256_mismatch_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let module = std::fs::read(header_append()).expect("module");
    let wasm = common::write(dir.path(), "plugin.wasm", &module);
    let doc = |url: &str, extra: &str| {
        format!(
            "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata:\n  name: guard\n  namespace: default\nspec:\n  url: {url}\n{extra}  pluginConfig:\n    x-guard: loaded\n"
        )
    };
    let file = write_yaml(
        dir.path(),
        "guard.yaml",
        &doc(
            "file:///nonexistent/guard.wasm",
            "  failStrategy: FAIL_OPEN\n",
        ),
    );
    let cache = dir.path().join("cache");
    let run = WeirRun::with(&file, None, &cache, &[]);
    let open = run.get("/");
    assert_eq!(open.status, 200, "FAIL_OPEN lets requests through");
    assert_eq!(open.headers.get("x-guard"), None, "the plugin did not run");
    assert!(
        run.stderr().contains("default.guard: module fetch failed"),
        "{}",
        run.stderr()
    );

    write_yaml(
        dir.path(),
        "guard.yaml",
        &doc(
            "file:///nonexistent/guard.wasm",
            "  failStrategy: FAIL_CLOSE\n",
        ),
    );
    run.wait_for(Duration::from_secs(5), "FAIL_CLOSE denies", || {
        run.get("/").status == 403
    });

    let wrong = "0".repeat(64);
    let url = format!("file://{}", wasm.display());
    write_yaml(
        dir.path(),
        "guard.yaml",
        &doc(&url, &format!("  sha256: {wrong}\n")),
    );
    run.wait_for(Duration::from_secs(5), "mismatch reported", || {
        run.stderr().contains("checksum mismatch")
    });
    assert_eq!(
        run.get("/").status,
        403,
        "a sha256 mismatch is a fetch failure: deny-all"
    );

    write_yaml(
        dir.path(),
        "guard.yaml",
        &doc(&url, &format!("  sha256: {}\n", sha256_hex(&module))),
    );
    run.wait_for(Duration::from_secs(5), "plugin loaded", || {
        run.get("/").headers.get("x-guard") == Some("loaded")
    });
}

#[test]
fn pull_policy_if_not_present_keeps_cached_module_always_pulls_moved_tag() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = TestRegistry::start();
    let v1 = header_append();
    let v2 = common::write(
        dir.path(),
        "v2.wasm",
        &variant(&std::fs::read(&v1).expect("module"), "v2"),
    );
    let d1 = push(&registry, &v1, "p/guard:1.0");
    let doc = |policy: &str, value: &str| {
        format!(
            "{}---\napiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata:\n  name: guard\n  namespace: istio-ingress\nspec:\n  url: oci://{}/p/guard:1.0\n  imagePullPolicy: {policy}\n  imagePullSecret: private-registry-pull-secret\n  pluginConfig:\n    x-guard: {value}\n",
            pull_secret(&registry),
            registry.host
        )
    };
    let file = write_yaml(dir.path(), "guard.yaml", &doc("IfNotPresent", "one"));
    let workload = write_yaml(dir.path(), "workload.yaml", GATEWAY);
    let cache = dir.path().join("cache");
    let run = WeirRun::with(
        &file,
        Some(&workload),
        &cache,
        &["--ca-cert", &registry.ca()],
    );
    let hex = |d: &str| format!("{}.wasm", d.trim_start_matches("sha256:"));
    assert!(wasm_filename(&run, "istio-ingress.guard").ends_with(&hex(&d1)));

    let d2 = push(&registry, &v2, "p/guard:1.0");
    assert_ne!(d1, d2, "the tag moved");
    write_yaml(dir.path(), "guard.yaml", &doc("IfNotPresent", "two"));
    run.wait_for(Duration::from_secs(5), "config change applied", || {
        run.get("/").headers.get("x-guard") == Some("two")
    });
    assert!(
        wasm_filename(&run, "istio-ingress.guard").ends_with(&hex(&d1)),
        "IfNotPresent keeps the cached module"
    );

    write_yaml(dir.path(), "guard.yaml", &doc("Always", "three"));
    run.wait_for(Duration::from_secs(5), "Always re-pulls", || {
        wasm_filename(&run, "istio-ingress.guard").ends_with(&hex(&d2))
    });
    assert_eq!(run.get("/").headers.get("x-guard"), Some("three"));
}

#[test]
fn hot_reload_within_two_seconds_without_dropped_requests() {
    let dir = tempfile::tempdir().expect("tempdir");
    let module = std::fs::read(header_append()).expect("module");
    let wasm = common::write(dir.path(), "plugin.wasm", &module);
    let doc = |version: &str| {
        format!(
            "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata:\n  name: versioned\n  namespace: default\nspec:\n  url: file://{}\n  pluginConfig:\n    x-version: {version}\n",
            wasm.display()
        )
    };
    let file = write_yaml(dir.path(), "plugin.yaml", &doc("v1"));
    let upstream = weir_test_http::EchoUpstream::start().expect("upstream");
    let cache = dir.path().join("cache");
    let run = WeirRun::with(
        &file,
        None,
        &cache,
        &["--upstream", &format!("http://{}", upstream.addr())],
    );
    assert_eq!(run.get("/").headers.get("x-version"), Some("v1"));

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let first_v2 = Arc::new(Mutex::new(None::<Instant>));
    let loops: Vec<_> = (0..2)
        .map(|_| {
            let (stop, sent, failures, first_v2, url) = (
                stop.clone(),
                sent.clone(),
                failures.clone(),
                first_v2.clone(),
                run.url.clone(),
            );
            std::thread::spawn(move || {
                let deadline = Instant::now() + Duration::from_secs(30);
                while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                    let result = weir_test_http::HttpRequest::get(&format!("{url}/loop"))
                        .and_then(|r| r.send());
                    sent.fetch_add(1, Ordering::SeqCst);
                    match result {
                        Ok(r) if r.status == 200 => {
                            if r.headers.get("x-version") == Some("v2") {
                                first_v2
                                    .lock()
                                    .expect("lock")
                                    .get_or_insert_with(Instant::now);
                            }
                        }
                        Ok(r) => failures
                            .lock()
                            .expect("lock")
                            .push(format!("status {}", r.status)),
                        Err(e) => failures.lock().expect("lock").push(format!("{e:#}")),
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    let edited = Instant::now();
    write_yaml(dir.path(), "plugin.yaml", &doc("v2"));
    run.wait_for(Duration::from_secs(2), "v2 served", || {
        first_v2.lock().expect("lock").is_some()
    });
    let config_latency = first_v2
        .lock()
        .expect("lock")
        .expect("seen")
        .duration_since(edited);

    // A rebuilt module (new bytes, same path) swaps the VM as well.
    let rebuilt = variant(&module, "rebuilt");
    let rebuilt_name = format!("{}.wasm", sha256_hex(&rebuilt));
    let swapped = Instant::now();
    common::write(dir.path(), "plugin.wasm.tmp", &rebuilt);
    std::fs::rename(dir.path().join("plugin.wasm.tmp"), &wasm).expect("rename");
    run.wait_for(Duration::from_secs(2), "rebuilt module loaded", || {
        wasm_filename(&run, "default.versioned").ends_with(&rebuilt_name)
    });
    let module_latency = swapped.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::SeqCst);
    for handle in loops {
        handle.join().expect("request loop");
    }
    let failures = failures.lock().expect("lock");
    let total = sent.load(Ordering::SeqCst);
    eprintln!("hot reload: config {config_latency:?}, module {module_latency:?}, {total} requests, {} failed", failures.len());
    assert!(
        failures.is_empty(),
        "dropped or failed requests during reload: {failures:?}"
    );
    assert!(total > 20, "the loop kept sending ({total})");
    assert!(config_latency < Duration::from_secs(2));
    assert_eq!(run.get("/").headers.get("x-version"), Some("v2"));
}

#[test]
fn invalid_wasmplugins_are_refused_before_envoy_with_validate_messages() {
    let invalid =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/data/istio/wasmplugin-invalid.yaml");
    let invalid = invalid.to_str().expect("utf8");
    let validate = common::weir(&["manifest", "validate", invalid], None);
    let expected = common::stdout(&validate);
    assert!(!expected.is_empty());
    // A missing Envoy would be the error if validation did not come first.
    let run = common::weir(
        &["run", "-f", invalid, "--envoy", "/nonexistent/envoy"],
        None,
    );
    let stderr = common::user_error(&run);
    for line in expected.lines() {
        assert!(
            stderr.contains(line.trim()),
            "`{line}` missing from weir run's error:\n{stderr}"
        );
    }
    assert!(!stderr.contains("no Envoy"), "{stderr}");
    assert!(common::stdout(&run).is_empty(), "nothing started");
}

#[test]
fn dry_run_prints_the_envoy_config_and_missing_envoy_says_how_to_install() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wasm = header_append();
    let doc = format!(
        "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata:\n  name: env-demo\n  namespace: default\nspec:\n  url: file://{}\n  pluginName: my-root\n  failStrategy: FAIL_OPEN\n  phase: STATS\n  vmConfig:\n    env:\n    - name: TRUST_DOMAIN\n      value: cluster.local\n",
        wasm.display()
    );
    let file = write_yaml(dir.path(), "p.yaml", &doc);
    let cache = dir.path().join("cache");
    let args = [
        "run",
        "-f",
        file.to_str().expect("utf8"),
        "--cache-dir",
        cache.to_str().expect("utf8"),
        "--envoy",
        "/nonexistent/envoy",
    ];
    let mut dry = args.to_vec();
    dry.push("--dry-run");
    let out = common::ok(&common::weir(&dry, None));
    for needle in [
        "envoy.wasm.runtime.v8",
        "root_id: my-root",
        "failure_policy: FAIL_OPEN",
        "TRUST_DOMAIN: cluster.local",
        "config_discovery",
        "type.googleapis.com/google.protobuf.StringValue",
        "path_config_source",
    ] {
        assert!(
            out.contains(needle),
            "`{needle}` missing from the dry run:\n{out}"
        );
    }
    let stderr = common::user_error(&common::weir(&args, None));
    assert!(
        stderr.contains("make envoy") && stderr.contains("PATH"),
        "{stderr}"
    );
}

#[test]
fn a_module_that_rejects_its_config_is_reported_by_name_and_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let module = std::fs::read(header_append()).expect("module");
    let wasm = common::write(dir.path(), "plugin.wasm", &module);
    let plugin = format!(
        "apiVersion: extensions.istio.io/v1alpha1\nkind: WasmPlugin\nmetadata:\n  name: appender\n  namespace: default\nspec:\n  url: file://{}\n  pluginConfig:\n    response_headers_to_add: not-a-list\n",
        wasm.display()
    );
    let file = write_yaml(dir.path(), "appender.yaml", &plugin);
    let run = WeirRun::with(&file, None, &dir.path().join("cache"), &[]);
    let stderr = run.stderr();
    assert!(
        stderr.contains("default.appender: plugin rejected its configuration"),
        "{stderr}"
    );
    assert!(
        stderr.contains("response_headers_to_add"),
        "the plugin's own message names the field: {stderr}"
    );
    // Envoy refuses the filter's configuration too and answers every request 500 until the
    // WasmPlugin is fixed; the plugin never runs.
    let response = run.get("/");
    assert_eq!(response.status, 500);
    assert_eq!(response.headers.get("response_headers_to_add"), None);

    let fixed = plugin.replace("response_headers_to_add: not-a-list", "x-fixed: yes");
    write_yaml(dir.path(), "appender.yaml", &fixed);
    run.wait_for(Duration::from_secs(5), "fixed config applied", || {
        run.get("/").headers.get("x-fixed") == Some("yes")
    });
}
