//! The ext_authz adapter as Envoy's HTTP service calls it: the original method and path
//! under `path_prefix`, the original host, the ID token in a cookie; the grant comes back
//! in a header, decided by the same path as `/check`.

use serde_json::json;

use crate::grants::strict_verify;
use crate::support::*;

const EXTRA: &str =
    "ext_authz:\n  path_prefix: /ext-authz\n  id_token_cookie: IdToken\n  grant_header: x-grant\n";

/// What the adapter answered: status, the grant header, cache-control.
struct Checked {
    status: u16,
    grant: Option<String>,
    cache_control: Option<String>,
    www_authenticate: Option<String>,
}

async fn ext_authz(
    server: &RunningServer,
    method: &str,
    path: &str,
    cookie: Option<&str>,
) -> Checked {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut request = server
        .client
        .request(method, server.url(path))
        .header("host", "app.test")
        // Envoy always sends the client's authorization header; the adapter must not use it.
        .header(
            "authorization",
            format!("Bearer {}", idp().token("alice", &[])),
        );
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let response = request.send().await.expect("policy server answers");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    Checked {
        status: response.status().as_u16(),
        grant: header("x-grant"),
        cache_control: header("cache-control"),
        www_authenticate: header("www-authenticate"),
    }
}

#[tokio::test]
async fn allowed_user_gets_a_grant_bound_to_the_original_request() {
    let server = start_with(&file_config("", EXTRA), |_| {}).await;
    let jwks = published_jwks(&server).await;
    let cookie = format!(
        "OauthHMAC=x; IdToken={}; BearerToken=opaque",
        idp().token("alice", &[])
    );
    let answer = ext_authz(&server, "GET", "/ext-authz/data/report?x=1", Some(&cookie)).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.cache_control.as_deref(), Some("no-store"));
    let grant = answer.grant.expect("the grant header");
    let claims = strict_verify(&jwks, &grant, "ES256");
    assert_eq!(claims.subject.as_deref(), Some("alice"));
    assert_eq!(
        claims.custom["functions"],
        json!(["read_data", "write_data"])
    );
    assert_eq!(
        claims.custom["request"],
        json!({ "method": "GET", "host": "app.test", "path": "/data/report" })
    );

    // The method is the original one, whatever it is; the root path is "/".
    let answer = ext_authz(&server, "DELETE", "/ext-authz", Some(&cookie)).await;
    assert_eq!(answer.status, 200);
    let claims = payload_of(&answer.grant.unwrap());
    assert_eq!(
        claims["request"],
        json!({ "method": "DELETE", "host": "app.test", "path": "/" })
    );
    server.stop().await;
}

#[tokio::test]
async fn refusals_are_the_ones_check_gives() {
    let server = start_with(&file_config("", EXTRA), |_| {}).await;
    let bob = format!("IdToken={}", idp().token("bob", &[]));
    let denied = ext_authz(&server, "GET", "/ext-authz/data/x", Some(&bob)).await;
    assert_eq!((denied.status, denied.grant), (403, None));

    // No cookie: 401, even though the authorization header holds alice's valid token.
    let missing = ext_authz(&server, "GET", "/ext-authz/data/x", Some("other=1")).await;
    assert_eq!((missing.status, missing.grant), (401, None));
    assert_eq!(
        missing.www_authenticate.as_deref(),
        Some("Bearer error=\"invalid_token\"")
    );

    let alice = idp().token("alice", &[]);
    let tampered = format!("IdToken={}x", &alice);
    let invalid = ext_authz(&server, "GET", "/ext-authz/data/x", Some(&tampered)).await;
    assert_eq!((invalid.status, invalid.grant), (401, None));

    let twice = format!("IdToken={alice}; IdToken={}", idp().token("bob", &[]));
    let ambiguous = ext_authz(&server, "GET", "/ext-authz/data/x", Some(&twice)).await;
    assert_eq!((ambiguous.status, ambiguous.grant), (401, None));

    // A path that only starts like the prefix is no check at all.
    let elsewhere = ext_authz(
        &server,
        "GET",
        "/ext-authzX/data",
        Some(&format!("IdToken={alice}")),
    )
    .await;
    assert_eq!((elsewhere.status, elsewhere.grant), (404, None));
    server.stop().await;
}

#[tokio::test]
async fn without_the_section_there_is_no_adapter() {
    let server = start_default().await;
    let cookie = format!("IdToken={}", idp().token("alice", &[]));
    let answer = ext_authz(&server, "GET", "/ext-authz/data/x", Some(&cookie)).await;
    assert_eq!((answer.status, answer.grant), (404, None));
    server.stop().await;
}

#[tokio::test]
async fn a_prefix_that_shadows_a_route_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("policy-server.yaml");
    std::fs::write(
        &path,
        file_config("", "ext_authz:\n  path_prefix: /.well-known\n"),
    )
    .unwrap();
    let err = policy_server::Config::load(&path).unwrap_err();
    assert!(
        format!("{err:#}").contains("ext_authz.path_prefix"),
        "{err:#}"
    );
}
