//! WasmPlugin generation and validation against Istio's CRD and Istio's own vectors.

use std::path::{Path, PathBuf};

use weir_cli::manifest::validate::{parse_documents, validate_wasmplugin};

use crate::common::{assert_snapshot, ok, stderr, user_error, weir};

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/data")
        .join(name)
}

#[test]
fn istio_valid_vectors_pass() {
    let out = weir(
        &[
            "manifest",
            "validate",
            data("istio/wasmplugin-valid.yaml").to_str().expect("utf-8"),
        ],
        None,
    );
    ok(&out);
    assert!(
        stderr(&out).contains("4 WasmPlugin document(s) valid"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn istio_invalid_vectors_fail_with_their_expected_error() {
    let text = std::fs::read_to_string(data("istio/wasmplugin-invalid.yaml")).expect("vectors");
    let docs = parse_documents(&text).expect("YAML");
    assert_eq!(docs.len(), 15);
    for mut doc in docs {
        let expected = doc["_err"].as_str().expect("_err").to_string();
        doc.as_mapping_mut().expect("mapping").remove("_err");
        let err = validate_wasmplugin(&doc).expect_err(&expected);
        let text = err.to_string();
        assert!(
            text.contains(&expected),
            "expected `{expected}` in:\n{text}"
        );
    }
}

#[test]
fn invalid_vectors_through_the_cli_exit_with_user_error() {
    let out = weir(
        &[
            "manifest",
            "validate",
            data("istio/wasmplugin-invalid.yaml")
                .to_str()
                .expect("utf-8"),
        ],
        None,
    );
    let err = user_error(&out);
    assert!(err.contains("15 of 15 document(s) is invalid"), "{err}");
}

#[test]
fn generated_wasmplugin_is_valid_and_matches_snapshot() {
    let work = tempfile::tempdir().expect("tempdir");
    let config = work.path().join("config.json");
    std::fs::write(
        &config,
        r#"{"header": "x-weir", "value": "on", "limits": {"max": 3}}"#,
    )
    .expect("config");
    let digest = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let yaml = ok(&weir(
        &[
            "manifest",
            "--name",
            "header-append",
            "-n",
            "istio-ingress",
            "--url",
            "registry.example:5000/plugins/header-append:1.0",
            "--sha256",
            digest,
            "--selector",
            "istio=ingressgateway",
            "--phase",
            "authz",
            "--priority",
            "10",
            "--plugin-config",
            config.to_str().expect("utf-8"),
            "--plugin-name",
            "header_append",
            "--fail-strategy",
            "FAIL_OPEN",
            "--image-pull-policy",
            "IfNotPresent",
            "--image-pull-secret",
            "pull",
            "--env",
            "TRUST_DOMAIN=cluster.local",
            "--host-env",
            "POD_NAME",
            "--match-mode",
            "SERVER",
            "--match-port",
            "8080",
            "--type",
            "HTTP",
        ],
        None,
    ));
    assert_snapshot("wasmplugin-full.yaml", &format!("{yaml}\n"));
    for doc in parse_documents(&yaml).expect("YAML") {
        validate_wasmplugin(&doc).expect("generated manifest is valid");
    }
    let tetrate = weir(
        &[
            "manifest",
            "--kind",
            "tetrate",
            "--name",
            "header-append",
            "--url",
            "registry.example:5000/p:1",
            "--phase",
            "AUTHZ",
            "--priority",
            "1000",
            "--plugin-config",
            config.to_str().expect("utf-8"),
            "--selector",
            "a=b",
        ],
        None,
    );
    assert_snapshot("wasmextension-tetrate.yaml", &format!("{}\n", ok(&tetrate)));
    assert!(
        stderr(&tetrate).contains("WasmExtension cannot express selector"),
        "{}",
        stderr(&tetrate)
    );
}

#[test]
fn target_refs_generate_a_valid_plugin_without_selector() {
    let yaml = ok(&weir(
        &[
            "manifest",
            "--name",
            "gw",
            "--url",
            "oci://r.example/p:1",
            "--target-ref",
            "gateway.networking.k8s.io/Gateway/ingress",
            "--target-ref",
            "Service/echo",
        ],
        None,
    ));
    let doc = &parse_documents(&yaml).expect("YAML")[0];
    assert_eq!(
        doc["spec"]["targetRefs"][0]["group"],
        "gateway.networking.k8s.io"
    );
    assert_eq!(doc["spec"]["targetRefs"][1]["kind"], "Service");
    assert!(doc["spec"]["targetRefs"][1]["group"].is_null());
    validate_wasmplugin(doc).expect("valid");
    let both = weir(
        &[
            "manifest",
            "--name",
            "x",
            "--url",
            "oci://r/p:1",
            "--selector",
            "a=b",
            "--target-ref",
            "Service/s",
        ],
        None,
    );
    assert_eq!(
        both.status.code(),
        Some(2),
        "clap refuses selector with target refs"
    );
}

#[test]
fn generation_refuses_what_istio_would_reject() {
    let bad_url = user_error(&weir(
        &[
            "manifest",
            "--name",
            "x",
            "--url",
            "fake://example.com/p.wasm",
        ],
        None,
    ));
    assert_snapshot("error-bad-url.txt", &bad_url);
    let bad_phase = user_error(&weir(
        &[
            "manifest",
            "--name",
            "x",
            "--url",
            "oci://r/p:1",
            "--phase",
            "LATE",
        ],
        None,
    ));
    assert!(
        bad_phase.contains(r#"spec.phase: Unsupported value: "LATE""#),
        "{bad_phase}"
    );
    let both = user_error(&weir(
        &[
            "manifest",
            "--name",
            "x",
            "--url",
            "oci://r/p:1",
            "--selector",
            "a=b*",
        ],
        None,
    ));
    assert!(
        both.contains("wildcard not allowed in label value match"),
        "{both}"
    );
}

#[test]
fn verification_key_lands_in_plugin_config_byte_exact() {
    let work = tempfile::tempdir().expect("tempdir");
    let prefix = work.path().join("signer");
    ok(&weir(
        &["sign", "--generate-key", prefix.to_str().expect("utf-8")],
        None,
    ));
    let public = std::fs::read_to_string(work.path().join("signer.pub")).expect("public key");
    let out = weir(
        &[
            "manifest",
            "--name",
            "signed",
            "--url",
            "oci://r.example/p:1",
            "--verification-key",
            work.path().join("signer.pub").to_str().expect("utf-8"),
        ],
        None,
    );
    ok(&out);
    // Untrimmed: the block scalar's final line break is part of the key.
    let yaml = String::from_utf8(out.stdout).expect("utf-8");
    assert!(
        yaml.contains("verificationKey: |\n      -----BEGIN PUBLIC KEY-----"),
        "{yaml}"
    );
    let doc = &parse_documents(&yaml).expect("YAML")[0];
    assert_eq!(
        doc["spec"]["pluginConfig"]["verificationKey"].as_str(),
        Some(public.as_str())
    );
    let not_a_key = user_error(&weir(
        &[
            "manifest",
            "--name",
            "x",
            "--url",
            "oci://r/p:1",
            "--verification-key",
            work.path().join("signer.key").to_str().expect("utf-8"),
        ],
        None,
    ));
    assert!(
        not_a_key.contains("is not a PEM P-256 public key"),
        "{not_a_key}"
    );
}
