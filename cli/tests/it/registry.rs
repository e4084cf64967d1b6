//! Push → pull round trips against an authenticated TLS registry, cross-checked by skopeo,
//! and the failures users meet most (credentials, missing images, tampering, TLS).

use std::io::Read;
use std::path::Path;
use std::time::Instant;

use sha2::{Digest, Sha256};

use crate::common::{self, listing, ok, user_error, weir, TestRegistry, PASSWORD, USER};

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn args<'a>(base: &'a [&'a str], flags: &'a [String]) -> Vec<&'a str> {
    base.iter()
        .copied()
        .chain(flags.iter().map(String::as_str))
        .collect()
}

/// plugin.wasm from a tar+gzip layer file.
fn plugin_from_tar_gz(path: &Path) -> Vec<u8> {
    let file = std::fs::File::open(path).expect("layer file");
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
    for entry in archive.entries().expect("tar entries") {
        let mut entry = entry.expect("entry");
        if entry.path().expect("path").to_string_lossy() == "plugin.wasm" {
            let mut out = Vec::new();
            entry.read_to_end(&mut out).expect("read plugin.wasm");
            return out;
        }
    }
    panic!("no plugin.wasm in {}", path.display());
}

#[test]
fn every_format_round_trips_and_skopeo_reads_it() {
    let registry = TestRegistry::start();
    let work = tempfile::tempdir().expect("tempdir");
    let wasm = common::test_module("round-trip");
    let input = common::write(work.path(), "in.wasm", &wasm);
    let input = input.to_str().expect("utf-8 path");
    let flags = registry.flags();
    for (name, extra) in [
        ("compat", vec![]),
        ("docker", vec!["--docker"]),
        ("artifact", vec!["--format", "artifact"]),
    ] {
        let image = registry.image(&format!("plugins/{name}:1.0"));
        let started = Instant::now();
        let mut push = vec!["push", "-q", input, &image];
        push.extend(extra.iter().copied());
        let digest = ok(&weir(&args(&push, &flags), Some(PASSWORD)));
        let out = work.path().join(format!("{name}.wasm"));
        let out_s = out.to_str().expect("utf-8");
        let pulled = ok(&weir(
            &args(
                &["pull", "-q", &image, "-o", out_s, "--sha256", &digest],
                &flags,
            ),
            Some(PASSWORD),
        ));
        eprintln!(
            "{name}: push + pull on loopback took {:?}",
            started.elapsed()
        );
        assert_eq!(pulled, digest, "pull reports the pushed manifest digest");
        assert_eq!(
            std::fs::read(&out).expect("pulled file"),
            wasm,
            "{name}: plugin.wasm round-trips byte-identical"
        );

        // skopeo sees the same manifest bytes, and so the same digest.
        let raw = registry.skopeo_raw_manifest(&image);
        assert_eq!(
            sha256(&raw),
            digest,
            "{name}: registry digest equals weir's"
        );
        let manifest: serde_json::Value = serde_json::from_slice(&raw).expect("manifest JSON");
        let layers = manifest["layers"].as_array().expect("layers");
        let copy_dir = work.path().join(format!("{name}-skopeo"));
        registry.skopeo_copy_to_dir(&image, &copy_dir);
        let blob_file = |d: &serde_json::Value| {
            copy_dir.join(
                d["digest"]
                    .as_str()
                    .expect("digest")
                    .trim_start_matches("sha256:"),
            )
        };
        match name {
            "compat" | "docker" => {
                let (manifest_type, layer_type) = if name == "docker" {
                    (
                        "application/vnd.docker.distribution.manifest.v2+json",
                        "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    )
                } else {
                    (
                        "application/vnd.oci.image.manifest.v1+json",
                        "application/vnd.oci.image.layer.v1.tar+gzip",
                    )
                };
                assert_eq!(manifest["mediaType"], manifest_type);
                let last = layers.last().expect("a layer");
                assert_eq!(
                    last["mediaType"], layer_type,
                    "{name}: last layer is tar+gzip"
                );
                assert_eq!(
                    plugin_from_tar_gz(&blob_file(last)),
                    wasm,
                    "{name}: skopeo's copy holds plugin.wasm"
                );
                let config = std::fs::read(blob_file(&manifest["config"])).expect("config blob");
                let config: serde_json::Value =
                    serde_json::from_slice(&config).expect("config JSON");
                assert!(
                    config["os"].is_string() && config["architecture"].is_string(),
                    "valid image config"
                );
            }
            _ => {
                let types: Vec<_> = layers
                    .iter()
                    .map(|l| l["mediaType"].as_str().expect("type"))
                    .collect();
                assert_eq!(
                    types,
                    [
                        "application/vnd.module.wasm.config.v1+json",
                        "application/vnd.module.wasm.content.layer.v1+wasm"
                    ],
                    "artifact: exactly two layers"
                );
                assert_eq!(
                    std::fs::read(blob_file(&layers[1])).expect("wasm layer"),
                    wasm
                );
            }
        }

        // The generated WasmPlugin pins exactly the digest the registry reports.
        let yaml = ok(&weir(
            &args(
                &[
                    "manifest",
                    "--name",
                    name,
                    "--url",
                    &image,
                    "--resolve",
                    "--phase",
                    "AUTHZ",
                ],
                &flags,
            ),
            Some(PASSWORD),
        ));
        let doc: serde_json::Value = serde_yaml_ng::from_str(&yaml).expect("manifest YAML");
        assert_eq!(
            format!("sha256:{}", doc["spec"]["sha256"].as_str().expect("sha256")),
            sha256(&raw)
        );
        assert_eq!(doc["spec"]["url"], format!("oci://{image}"));

        // `weir package` writes the same image offline, and pushing that layout changes nothing.
        let layout = work.path().join(format!("{name}.tar"));
        let layout_s = layout.to_str().expect("utf-8");
        let mut package = vec!["package", "-q", input, "-o", layout_s];
        package.extend(extra.iter().copied());
        assert_eq!(
            ok(&weir(&package, None)),
            digest,
            "{name}: package and push build identical images"
        );
        let again = registry.image(&format!("plugins/{name}-from-layout:1.0"));
        assert_eq!(
            ok(&weir(
                &args(&["push", "-q", layout_s, &again], &flags),
                Some(PASSWORD)
            )),
            digest
        );
    }
}

#[test]
fn registry_failures_are_clear_and_leave_no_partial_files() {
    let registry = TestRegistry::start();
    let work = tempfile::tempdir().expect("tempdir");
    let wasm = common::test_module("failures");
    let input = common::write(work.path(), "in.wasm", &wasm);
    let input = input.to_str().expect("utf-8");
    let flags = registry.flags();
    let image = registry.image("plugins/failures:1");
    let digest = ok(&weir(
        &args(&["push", "-q", input, &image], &flags),
        Some(PASSWORD),
    ));
    let out_dir = work.path().join("out");
    std::fs::create_dir(&out_dir).expect("out dir");
    let out = out_dir.join("plugin.wasm");
    let out = out.to_str().expect("utf-8");

    let wrong = user_error(&weir(
        &args(&["pull", &image, "-o", out], &flags),
        Some("wrong-password"),
    ));
    assert!(
        wrong.contains("refused the credentials (401 Unauthorized)"),
        "{wrong}"
    );
    assert!(
        wrong.contains("hint: check the user name and password"),
        "{wrong}"
    );

    let anonymous = user_error(&weir(
        &["pull", &image, "-o", out, "--ca-cert", &registry.ca()],
        None,
    ));
    assert!(
        anonymous.contains("hint: the registry needs credentials"),
        "{anonymous}"
    );

    let missing = user_error(&weir(
        &args(
            &["pull", &registry.image("plugins/nothing:1"), "-o", out],
            &flags,
        ),
        Some(PASSWORD),
    ));
    assert!(
        missing.contains("was not found in the registry (404)"),
        "{missing}"
    );

    let untrusted = user_error(&weir(
        &["pull", &image, "-o", out, "-u", USER, "--password-stdin"],
        Some(PASSWORD),
    ));
    assert!(
        untrusted.contains("hint: for a registry with a private CA pass --ca-cert"),
        "{untrusted}"
    );

    let pinned = user_error(&weir(
        &args(
            &["pull", &image, "-o", out, "--sha256", &"ab".repeat(32)],
            &flags,
        ),
        Some(PASSWORD),
    ));
    assert!(pinned.contains("manifest digest mismatch"), "{pinned}");

    // Alter the stored plugin layer behind the registry's back.
    let manifest: serde_json::Value =
        serde_json::from_slice(&registry.skopeo_raw_manifest(&image)).expect("manifest");
    let layer_digest = manifest["layers"][0]["digest"]
        .as_str()
        .expect("layer digest")
        .to_string();
    let blob = registry.blob_file(&layer_digest);
    let original = std::fs::read(&blob).expect("stored blob");
    let mut tampered = original.clone();
    let last = tampered.len() - 9;
    tampered[last] ^= 0xff;
    std::fs::write(&blob, &tampered).expect("tamper");
    let corrupt = user_error(&weir(
        &args(&["pull", &image, "-o", out], &flags),
        Some(PASSWORD),
    ));
    assert!(corrupt.contains("is corrupt or tampered with"), "{corrupt}");

    std::fs::write(&blob, &original[..original.len() / 2]).expect("truncate");
    let truncated = user_error(&weir(
        &args(&["pull", &image, "-o", out], &flags),
        Some(PASSWORD),
    ));
    assert!(truncated.contains("was truncated"), "{truncated}");

    assert!(
        listing(&out_dir).is_empty(),
        "failed pulls left files: {:?}",
        listing(&out_dir)
    );
    let all = [
        wrong, anonymous, missing, untrusted, pinned, corrupt, truncated,
    ]
    .map(|text| common::redact(&text, &registry.host, work.path()));
    common::assert_snapshot("errors-registry.txt", &all.join("----\n"));
    std::fs::write(&blob, &original).expect("restore");
    assert_eq!(
        ok(&weir(
            &args(&["pull", "-q", &image, "-o", out], &flags),
            Some(PASSWORD)
        )),
        digest
    );
    assert_eq!(listing(&out_dir), ["plugin.wasm"]);
}

#[test]
fn credentials_come_from_a_pull_secret_or_docker_config() {
    use base64::Engine;
    let registry = TestRegistry::start();
    let work = tempfile::tempdir().expect("tempdir");
    let input = common::write(work.path(), "in.wasm", &common::test_module("secrets"));
    let image = registry.image("plugins/secret:2");
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    let docker_config = format!(
        r#"{{"auths":{{"https://{}":{{"auth":"{auth}"}}}}}}"#,
        registry.host
    );
    let config_path = common::write(work.path(), "config.json", docker_config.as_bytes());
    let secret = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: pull\ntype: kubernetes.io/dockerconfigjson\ndata:\n  .dockerconfigjson: {}\n",
        base64::engine::general_purpose::STANDARD.encode(&docker_config)
    );
    let secret_path = common::write(work.path(), "secret.yaml", secret.as_bytes());
    let ca = registry.ca();
    let with_config = [
        "--ca-cert",
        &ca,
        "--docker-config",
        config_path.to_str().expect("utf-8"),
    ];
    let pushed = ok(&weir(
        &[
            &["push", "-q", input.to_str().expect("utf-8"), &image][..],
            &with_config,
        ]
        .concat(),
        None,
    ));
    let out = work.path().join("pulled.wasm");
    let with_secret = [
        "--ca-cert",
        &ca,
        "--pull-secret",
        secret_path.to_str().expect("utf-8"),
    ];
    let pulled = ok(&weir(
        &[
            &["pull", "-q", &image, "-o", out.to_str().expect("utf-8")][..],
            &with_secret,
        ]
        .concat(),
        None,
    ));
    assert_eq!(pushed, pulled);
}

#[test]
fn plain_http_needs_insecure_and_transient_failures_are_retried() {
    let mut registry = TestRegistry::start_plain();
    let work = tempfile::tempdir().expect("tempdir");
    let wasm = common::test_module("plain");
    let input = common::write(work.path(), "in.wasm", &wasm);
    let image = registry.image("plugins/plain:1");
    let out = work.path().join("out.wasm");
    let out = out.to_str().expect("utf-8");

    let tls_to_plain = user_error(&weir(
        &["push", input.to_str().expect("utf-8"), &image],
        None,
    ));
    assert!(tls_to_plain.contains("pass --insecure"), "{tls_to_plain}");
    let digest = ok(&weir(
        &[
            "push",
            "-q",
            "--insecure",
            input.to_str().expect("utf-8"),
            &image,
        ],
        None,
    ));

    // The registry is down when the pull starts and comes back ~1 s later: connection
    // refusals are retried with backoff (0.5 s, 1 s, 2 s, …) and the pull succeeds.
    registry.stop();
    let pull = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .args([
            "pull",
            "--insecure",
            "--no-progress",
            "--retries",
            "5",
            &image,
            "-o",
            out,
        ])
        .env("DOCKER_CONFIG", "/nonexistent-weir-test-docker-config")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("weir runs");
    std::thread::sleep(std::time::Duration::from_millis(1000));
    registry.restart();
    let output = pull.wait_with_output().expect("pull finishes");
    assert_eq!(ok(&output).lines().last(), Some(digest.as_str()));
    assert!(
        common::stderr(&output).contains("retrying in"),
        "{}",
        common::stderr(&output)
    );
    assert_eq!(std::fs::read(out).expect("pulled"), wasm);

    // With no retries allowed, the same outage is reported at once.
    registry.stop();
    let down = user_error(&weir(
        &["pull", "--insecure", "--retries", "1", &image, "-o", out],
        None,
    ));
    assert!(
        down.contains("cannot reach the registry")
            && down.contains("hint: check that the registry runs"),
        "{down}"
    );
}

#[test]
fn an_image_index_resolves_to_its_linux_amd64_manifest() {
    use weir_cli::oci::image::build_image;
    use weir_cli::oci::registry::{parse_reference, Registry, RegistryOptions, SilentReporter};
    use weir_cli::oci::{auth::Credentials, Blob, ImageFormat};

    let registry = TestRegistry::start();
    let wasm = common::test_module("indexed");
    let info = weir_cli::wasm::inspect_module(&wasm).expect("module");
    let image = build_image(&wasm, &info, ImageFormat::Compat, &[]).expect("image");
    let other =
        build_image(&common::test_module("arm"), &info, ImageFormat::Compat, &[]).expect("image");
    let entry = |img: &weir_cli::oci::image::PluginImage, arch: &str| {
        serde_json::json!({
            "mediaType": img.manifest_media_type, "digest": img.digest(), "size": img.manifest.len(),
            "platform": {"os": "linux", "architecture": arch},
        })
    };
    let index = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [entry(&other, "arm64"), entry(&image, "amd64")],
    }))
    .expect("index");
    let client = Registry::new(RegistryOptions {
        ca_certs: vec![registry.ca().into()],
        credentials: Some(Credentials {
            username: USER.into(),
            password: PASSWORD.into(),
        }),
        ..RegistryOptions::default()
    })
    .expect("client");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let index_digest = runtime.block_on(async {
        for img in [&image, &other] {
            let by_digest =
                parse_reference(&registry.image(&format!("plugins/multi@{}", img.digest())))
                    .expect("ref");
            let blobs: Vec<Blob> = img.blobs().cloned().collect();
            client
                .push_raw(
                    &by_digest,
                    &blobs,
                    &img.manifest,
                    &img.manifest_media_type,
                    &SilentReporter,
                )
                .await
                .expect("child");
        }
        let tagged = parse_reference(&registry.image("plugins/multi:1")).expect("ref");
        client
            .push_raw(
                &tagged,
                &[],
                &index,
                "application/vnd.oci.image.index.v1+json",
                &SilentReporter,
            )
            .await
            .expect("index push")
    });
    let work = tempfile::tempdir().expect("tempdir");
    let out = work.path().join("plugin.wasm");
    let flags = registry.flags();
    let pulled = ok(&weir(
        &args(
            &[
                "pull",
                "-q",
                &registry.image("plugins/multi:1"),
                "-o",
                out.to_str().expect("utf-8"),
                "--sha256",
                &index_digest,
            ],
            &flags,
        ),
        Some(PASSWORD),
    ));
    assert_eq!(
        pulled, index_digest,
        "sha256 refers to what the URL names, the index"
    );
    assert_eq!(
        std::fs::read(&out).expect("pulled"),
        wasm,
        "the linux/amd64 child's module"
    );
}
