//! Grants from a Rego policy (regorus), alone and together with the ACL.

use serde_json::json;

use crate::support::*;

const POLICY: &str = r#"
package weir

import rego.v1

grants := {"functions": functions, "files": files}

functions contains "read_data" if "readers" in input.groups

functions contains "delete_data" if {
    input.subject == "root"
    input.method == "DELETE"
}

functions contains "reports" if {
    startswith(input.uri, "/reports/")
    input.host == "app.test"
}

files contains f if {
    some g in input.groups
    some f in data.group_files[g]
}

files contains sprintf("/home/%s", [input.subject]) if input.claims.email_verified == true

only_for_patch := {"functions": ["patch_data"]} if input.method == "PATCH"

# Nine million iterations that find nothing: far past any sane time limit.
runaway := {"functions": [x | some a in numbers.range(1, 3000); some b in numbers.range(1, 3000); a * b == -1; x := "never"]} if input.method == "SLOW"
"#;

const DATA: &str = "group_files:\n  readers: [/data/public]\n  auditors: [/data/audit]\n";

async fn start_rego(rule: &str) -> RunningServer {
    let config = file_config(
        "",
        &format!(
            "rego:\n  policies: [authz.rego]\n  data_file: data.yaml\n  rule: {rule}\n  timeout_ms: 200\n"
        ),
    );
    start_with(&config, |dir| {
        std::fs::write(dir.join("authz.rego"), POLICY).unwrap();
        std::fs::write(dir.join("data.yaml"), DATA).unwrap();
    })
    .await
}

async fn ask(server: &RunningServer, token: &str, method: &str, uri: &str) -> Answer {
    let response = server
        .client
        .post(server.url("/check"))
        .header("authorization", format!("Bearer {token}"))
        .header("x-forwarded-method", method)
        .header("x-forwarded-uri", uri)
        .header("x-forwarded-host", "app.test")
        .send()
        .await
        .unwrap();
    answer(response).await
}

#[tokio::test]
async fn rego_policy_sees_subject_groups_claims_and_request() {
    let server = start_rego("data.weir.grants").await;
    let idp = idp();

    // Groups and data.
    let answer = ask(&server, &idp.token("bob", &["readers"]), "GET", "/").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let claims = payload_of(&answer.body);
    assert_eq!(claims["functions"], json!(["read_data"]));
    assert_eq!(claims["files"], json!(["/data/public"]));

    // Method and subject; the ACL's grants for the same subject are added.
    let root = idp.token("root", &[]);
    assert_eq!(
        ask(&server, &root, "GET", "/").await.status,
        403,
        "root only gets delete_data for DELETE"
    );
    let answer = ask(&server, &root, "DELETE", "/x").await;
    assert_eq!(
        payload_of(&answer.body)["functions"],
        json!(["delete_data"])
    );

    // URI and host.
    let answer = ask(&server, &idp.token("carol", &[]), "GET", "/reports/q3").await;
    assert_eq!(payload_of(&answer.body)["functions"], json!(["reports"]));

    // Arbitrary claims, unioned with the ACL entry for alice.
    let token = {
        use jwt_simple::prelude::*;
        #[derive(serde::Serialize)]
        struct Extra {
            email_verified: bool,
        }
        let claims = Claims::with_custom_claims(
            Extra {
                email_verified: true,
            },
            Duration::from_secs(300),
        )
        .with_issuer(IDP_ISSUER)
        .with_audience(IDP_AUDIENCE)
        .with_subject("alice");
        idp.rsa.sign(claims).unwrap()
    };
    let answer = ask(&server, &token, "GET", "/").await;
    let claims = payload_of(&answer.body);
    assert_eq!(
        claims["functions"],
        json!(["read_data", "write_data"]),
        "from the ACL"
    );
    assert_eq!(
        claims["files"],
        json!(["/data/alice", "/home/alice"]),
        "ACL + Rego"
    );
    server.stop().await;
}

#[tokio::test]
async fn undefined_result_denies_a_missing_rule_fails_start_up_a_malformed_result_is_a_500() {
    let server = start_rego("data.weir.only_for_patch").await;
    let token = idp().token("dave", &[]); // nothing in the ACL
    let answer = ask(&server, &token, "GET", "/").await;
    assert_eq!(
        answer.status, 403,
        "an undefined result grants nothing: {}",
        answer.body
    );
    let answer = ask(&server, &token, "PATCH", "/").await;
    assert_eq!(payload_of(&answer.body)["functions"], json!(["patch_data"]));

    // A misspelt rule is caught when the server starts, not on every request.
    let config_path = server.dir.path().join("policy-server.yaml");
    let text = std::fs::read_to_string(&config_path)
        .unwrap()
        .replace("only_for_patch", "only_for_pacth");
    std::fs::write(&config_path, text).unwrap();
    let config = policy_server::Config::load(&config_path).unwrap();
    let err = policy_server::PolicyServer::from_config(&config)
        .await
        .err()
        .expect("start-up fails");
    assert!(format!("{err:#}").contains("only_for_pacth"), "{err:#}");
    server.stop().await;

    // `functions` is a set of strings, not a grants object: a policy bug, so 500.
    let server = start_rego("data.weir.functions").await;
    let answer = ask(&server, &idp().token("bob", &["readers"]), "GET", "/").await;
    assert_eq!(answer.status, 500);
    assert_eq!(answer.body, "policy server error");
    server.stop().await;
}

#[tokio::test]
async fn a_runaway_policy_is_stopped_by_the_time_limit() {
    let server = start_rego("data.weir.runaway").await;
    let token = idp().token("dave", &[]);
    assert_eq!(
        ask(&server, &token, "GET", "/").await.status,
        403,
        "undefined for GET"
    );
    let started = std::time::Instant::now();
    let answer = ask(&server, &token, "SLOW", "/").await;
    assert_eq!(answer.status, 500, "{}", answer.body);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    server.stop().await;
}
