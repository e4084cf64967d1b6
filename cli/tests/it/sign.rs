//! `weir sign` / `weir pull --verify-key`: cosign-layout signatures; unsigned, re-pointed or
//! forged images are refused.

use crate::common::{self, ok, user_error, weir, TestRegistry, PASSWORD};

#[test]
fn signed_images_verify_and_tampered_ones_are_refused() {
    let registry = TestRegistry::start();
    let work = tempfile::tempdir().expect("tempdir");
    let path = |name: &str| work.path().join(name).to_str().expect("utf-8").to_string();
    ok(&weir(&["sign", "--generate-key", &path("signer")], None));
    ok(&weir(&["sign", "--generate-key", &path("other")], None));
    let flags = registry.flags();
    let with = |base: &[&str]| -> Vec<String> {
        base.iter()
            .map(|s| s.to_string())
            .chain(flags.iter().cloned())
            .collect()
    };
    let run = |base: &[&str]| {
        weir(
            &with(base).iter().map(String::as_str).collect::<Vec<_>>(),
            Some(PASSWORD),
        )
    };
    let image = registry.image("plugins/signed:1");
    let first = common::write(work.path(), "first.wasm", &common::test_module("signed"));
    let digest = ok(&run(&[
        "push",
        "-q",
        first.to_str().expect("utf-8"),
        &image,
    ]));
    let unsigned = user_error(&run(&[
        "pull",
        &image,
        "-o",
        &path("out.wasm"),
        "--verify-key",
        &path("signer.pub"),
    ]));
    assert!(unsigned.contains("is not signed"), "{unsigned}");

    assert_eq!(
        ok(&run(&["sign", "-q", &image, "--key", &path("signer.key")])),
        digest
    );
    ok(&run(&[
        "pull",
        "-q",
        &image,
        "-o",
        &path("out.wasm"),
        "--verify-key",
        &path("signer.pub"),
    ]));
    assert_eq!(
        std::fs::read(path("out.wasm")).expect("pulled"),
        std::fs::read(&first).expect("input")
    );

    // The signature sits where cosign looks for it, in cosign's layout.
    let sig_tag = registry.image(&format!(
        "plugins/signed:{}.sig",
        digest.replacen(':', "-", 1)
    ));
    let sig: serde_json::Value =
        serde_json::from_slice(&registry.skopeo_raw_manifest(&sig_tag)).expect("sig manifest");
    assert_eq!(
        sig["layers"][0]["mediaType"],
        "application/vnd.dev.cosign.simplesigning.v1+json"
    );
    assert!(sig["layers"][0]["annotations"]["dev.cosignproject.cosign/signature"].is_string());

    // cosign's own verifier (the sigstore crate) accepts the signature with the public key.
    let public_pem = std::fs::read(path("signer.pub")).expect("public key");
    sigstore_verifies(&registry, &image, &public_pem).expect("sigstore verifies weir's signature");
    let other_pem = std::fs::read(path("other.pub")).expect("other public key");
    assert!(
        sigstore_verifies(&registry, &image, &other_pem).is_err(),
        "sigstore refuses another key"
    );

    std::fs::remove_file(path("out.wasm")).expect("rm");
    let wrong_key = user_error(&run(&[
        "pull",
        &image,
        "-o",
        &path("out.wasm"),
        "--verify-key",
        &path("other.pub"),
    ]));
    assert!(
        wrong_key.contains("no valid signature by this key"),
        "{wrong_key}"
    );

    // Someone pushes other content under the signed tag and copies the old signature to it.
    let second = common::write(work.path(), "second.wasm", &common::test_module("evil"));
    let evil = ok(&run(&[
        "push",
        "-q",
        second.to_str().expect("utf-8"),
        &image,
    ]));
    let repointed = user_error(&run(&[
        "pull",
        &image,
        "-o",
        &path("out.wasm"),
        "--verify-key",
        &path("signer.pub"),
    ]));
    assert!(repointed.contains("is not signed"), "{repointed}");
    let forged_tag = registry.image(&format!(
        "plugins/signed:{}.sig",
        evil.replacen(':', "-", 1)
    ));
    let creds = format!("{}:{PASSWORD}", common::USER);
    registry.skopeo(&[
        "copy",
        "--src-cert-dir",
        &registry.cert_dir(),
        "--dest-cert-dir",
        &registry.cert_dir(),
        "--src-creds",
        &creds,
        "--dest-creds",
        &creds,
        &format!("docker://{sig_tag}"),
        &format!("docker://{forged_tag}"),
    ]);
    let forged = user_error(&run(&[
        "pull",
        &image,
        "-o",
        &path("out.wasm"),
        "--verify-key",
        &path("signer.pub"),
    ]));
    assert!(
        forged.contains(&format!("signature is for {digest}, not for {evil}")),
        "{forged}"
    );
    assert!(
        !work.path().join("out.wasm").exists(),
        "refused images are not written"
    );
}

/// Verifies `image` with the sigstore crate's cosign client and a PEM public key.
fn sigstore_verifies(
    registry: &TestRegistry,
    image: &str,
    public_pem: &[u8],
) -> Result<(), String> {
    use sigstore::cosign::verification_constraint::{PublicKeyVerifier, VerificationConstraintVec};
    use sigstore::cosign::CosignCapabilities;
    use sigstore::crypto::SigningScheme;
    use sigstore::registry::{Auth, Certificate, CertificateEncoding, ClientConfig, OciReference};

    let ca = std::fs::read(registry.ca()).map_err(|e| e.to_string())?;
    let config = ClientConfig {
        extra_root_certificates: vec![Certificate {
            encoding: CertificateEncoding::Pem,
            data: ca,
        }],
        ..ClientConfig::default()
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let mut client = sigstore::cosign::ClientBuilder::default()
            .with_oci_client_config(config)
            .build()
            .map_err(|e| e.to_string())?;
        let reference: OciReference = image.parse().map_err(|e| format!("{e}"))?;
        let auth = Auth::Basic(common::USER.to_string(), PASSWORD.to_string());
        let layers = client
            .trusted_signature_layers(&auth, &reference)
            .await
            .map_err(|e| e.to_string())?;
        let verifier = PublicKeyVerifier::new(public_pem, &SigningScheme::default())
            .map_err(|e| e.to_string())?;
        let constraints: VerificationConstraintVec = vec![Box::new(verifier)];
        let verdict = sigstore::cosign::verify_constraints(&layers, constraints.iter())
            .map_err(|e| format!("{e:?}"));
        verdict
    })
}
