//! `weir package`: reproducible layouts that skopeo reads, and clear refusals of bad input.

use crate::common::{self, listing, ok, stdout, user_error, weir};

#[test]
fn packaging_is_reproducible_and_skopeo_reads_the_layout() {
    let work = tempfile::tempdir().expect("tempdir");
    let input = common::write(work.path(), "in.wasm", &common::test_module("repro"));
    let input = input.to_str().expect("utf-8");
    let mut digests = Vec::new();
    for (i, format) in ["compat", "compat", "artifact", "artifact"]
        .iter()
        .enumerate()
    {
        let out = work.path().join(format!("layout-{i}"));
        digests.push(ok(&weir(
            &[
                "package",
                "-q",
                input,
                "--format",
                format,
                "-o",
                out.to_str().expect("utf-8"),
            ],
            None,
        )));
    }
    assert_eq!(digests[0], digests[1], "same input, same compat digest");
    assert_eq!(digests[2], digests[3], "same input, same artifact digest");
    assert_ne!(digests[0], digests[2]);
    let docker = work.path().join("docker.tar");
    let docker_digest = ok(&weir(
        &[
            "package",
            "-q",
            input,
            "--docker",
            "-o",
            docker.to_str().expect("utf-8"),
        ],
        None,
    ));
    assert_ne!(docker_digest, digests[0]);
    let spelled_out = work.path().join("docker-compat.tar");
    let args = [
        "package",
        "-q",
        input,
        "--format",
        "compat",
        "--docker",
        "-o",
        spelled_out.to_str().expect("utf-8"),
    ];
    assert_eq!(
        ok(&weir(&args, None)),
        docker_digest,
        "--format compat --docker is --docker"
    );
    let refused = work.path().join("docker-artifact.tar");
    let args = [
        "package",
        "-q",
        input,
        "--format",
        "artifact",
        "--docker",
        "-o",
        refused.to_str().expect("utf-8"),
    ];
    assert!(user_error(&weir(&args, None)).contains("--docker applies to the compat format only"));
    assert!(!refused.exists(), "nothing written for a refused format");

    // skopeo reads the directory layout and the tarball, and sees the digest weir printed.
    let layout = format!("oci:{}:latest", work.path().join("layout-0").display());
    let raw = common::skopeo(&["inspect", "--raw", &layout]);
    let digest = format!(
        "sha256:{}",
        hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&raw.stdout))
    );
    assert_eq!(digest, digests[0]);
    let archive = format!("oci-archive:{}", docker.display());
    let raw = common::skopeo(&["inspect", "--raw", &archive]);
    let manifest: serde_json::Value = serde_json::from_slice(&raw.stdout).expect("manifest");
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.docker.distribution.manifest.v2+json"
    );
}

#[test]
fn non_wasm_and_non_proxy_wasm_input_is_refused_without_leftovers() {
    let work = tempfile::tempdir().expect("tempdir");
    let text = common::write(work.path(), "notes.wasm", b"this is not wasm");
    let bare = common::write(
        work.path(),
        "bare.wasm",
        &wat::parse_str("(module (func (export \"run\")))").expect("wat"),
    );
    let before = listing(work.path());
    for (input, expected) in [
        (
            &text,
            "not a WebAssembly module: it does not start with the bytes \\0asm",
        ),
        (&bare, "module exports no proxy_abi_version_* function"),
    ] {
        for output in ["layout", "image.tar"] {
            let out = work.path().join(output);
            let err = user_error(&weir(
                &[
                    "package",
                    input.to_str().expect("utf-8"),
                    "-o",
                    out.to_str().expect("utf-8"),
                ],
                None,
            ));
            assert!(err.contains(expected), "{err}");
            assert!(err.contains("hint: "), "a hint says what to do: {err}");
        }
    }
    assert_eq!(listing(work.path()), before, "no partial output");

    // An existing output directory is never overwritten.
    let good = common::write(work.path(), "good.wasm", &common::test_module("good"));
    std::fs::create_dir(work.path().join("taken")).expect("dir");
    let out = weir(
        &[
            "package",
            good.to_str().expect("utf-8"),
            "-o",
            work.path().join("taken").to_str().expect("utf-8"),
        ],
        None,
    );
    assert!(
        user_error(&out).contains("already exists"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn a_plugin_crate_is_built_and_packaged() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let crate_dir = root.join("plugins/header-append");
    let target_dir = root.join("target/weir-wasm");
    let work = tempfile::tempdir().expect("tempdir");
    let layout = work.path().join("layout");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_weir"))
        .args(["package", "-q", "--root-id", "header_append"])
        .arg(&crate_dir)
        .arg("-o")
        .arg(&layout)
        .env("CARGO_TARGET_DIR", &target_dir)
        .output()
        .expect("weir runs");
    ok(&out);
    let built = std::fs::read(target_dir.join("wasm32-wasip1/release/header_append.wasm"))
        .expect("built module");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).expect("index"))
            .expect("JSON");
    let blob = |digest: &str| {
        std::fs::read(layout.join("blobs").join(digest.replacen(':', "/", 1))).expect("blob")
    };
    let manifest: serde_json::Value = serde_json::from_slice(&blob(
        index["manifests"][0]["digest"].as_str().expect("digest"),
    ))
    .expect("manifest");
    let layer = blob(manifest["layers"][0]["digest"].as_str().expect("layer"));
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(layer.as_slice()));
    let mut files = std::collections::BTreeMap::new();
    for entry in archive.entries().expect("entries") {
        let mut entry = entry.expect("entry");
        let name = entry.path().expect("path").to_string_lossy().to_string();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).expect("read");
        files.insert(name, data);
    }
    assert_eq!(
        files["plugin.wasm"], built,
        "the layer holds the module cargo built"
    );
    let runtime: serde_json::Value =
        serde_json::from_slice(&files["runtime-config.json"]).expect("runtime config");
    assert_eq!(
        runtime["config"]["rootIds"],
        serde_json::json!(["header_append"])
    );
    assert_eq!(
        runtime["abiVersions"],
        serde_json::json!(["proxy_abi_version_0_2_1"])
    );
}
