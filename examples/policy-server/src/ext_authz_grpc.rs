//! A third front end: Envoy's ext_authz gRPC service (`envoy.service.auth.v3.Authorization`,
//! method `Check`), for Envoy's `ext_authz` filter with a `grpc_service` and for acl-check's
//! `protocol: ext_authz_grpc`. A thin adapter over `server::grant`, the one decision path
//! `/check` uses, served on the same listener (HTTP/2 cleartext).
//!
//! The `CheckRequest`'s `attributes.request.http` gives the method, path, host and the
//! headers; the user's token is the `authorization` header's bearer token. The answer:
//! - a grant: status OK and an `ok_response` setting `grant_header` to the grant token;
//! - 401 and 403: status `UNAUTHENTICATED` or `PERMISSION_DENIED` and a `denied_response`
//!   with the same HTTP status, body and `www-authenticate` header `/check` gives;
//! - 500 (the user's keys or the policy cannot be evaluated): the gRPC error `UNAVAILABLE`,
//!   so the client has no decision and fails closed.

use std::sync::Arc;

use anyhow::{ensure, Result};
use axum::http::{header, HeaderName, StatusCode};
use axum::response::Response;
use envoy_types::ext_authz::v3::pb::{
    Authorization, AuthorizationServer, CheckRequest, CheckResponse, DeniedHttpResponse,
    HeaderValueOption, HttpResponse, HttpStatus, OkHttpResponse,
};
use envoy_types::pb::envoy::config::core::v3::HeaderValue;
use envoy_types::pb::google::rpc;
use serde::Deserialize;
use tonic::{Code, Request, Status};

use crate::server::{grant, AppState};

/// The `ext_authz_grpc` section of the config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtAuthzGrpcConfig {
    /// Request header carrying the grant token upstream on an allow.
    #[serde(default = "default_grant_header")]
    pub grant_header: String,
}

fn default_grant_header() -> String {
    "authz_complete".into()
}

impl ExtAuthzGrpcConfig {
    pub(crate) fn validate(&self) -> Result<()> {
        let header = &self.grant_header;
        ensure!(
            HeaderName::from_bytes(header.as_bytes()).is_ok_and(|h| h.as_str() == header),
            "ext_authz_grpc.grant_header must be a lower-case header name, got {header:?}"
        );
        Ok(())
    }
}

/// The gRPC service, as routes to merge into the HTTP router.
pub(crate) fn routes(config: &ExtAuthzGrpcConfig, state: Arc<AppState>) -> axum::Router {
    let service = Check {
        config: config.clone(),
        state,
    };
    tonic::service::Routes::new(AuthorizationServer::new(service)).into_axum_router()
}

struct Check {
    config: ExtAuthzGrpcConfig,
    state: Arc<AppState>,
}

#[tonic::async_trait]
impl Authorization for Check {
    async fn check(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<tonic::Response<CheckResponse>, Status> {
        let http = request
            .into_inner()
            .attributes
            .and_then(|a| a.request)
            .and_then(|r| r.http)
            .unwrap_or_default();
        let authorization = http.headers.get(header::AUTHORIZATION.as_str());
        let user = self
            .state
            .verifier
            .verify_header(authorization.map(|v| v.as_bytes()).into_iter())
            .await;
        let decision = grant(&self.state, user, &http.method, &http.path, &http.host).await;
        let response = match decision {
            Ok(token) => allowed(&self.config.grant_header, token),
            Err(refusal) => denied(refusal).await?,
        };
        Ok(tonic::Response::new(response))
    }
}

fn header_option(key: &str, value: String) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue {
            key: key.to_owned(),
            value,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn allowed(grant_header: &str, token: String) -> CheckResponse {
    CheckResponse {
        status: Some(rpc::Status {
            code: Code::Ok as i32,
            ..Default::default()
        }),
        http_response: Some(HttpResponse::OkResponse(OkHttpResponse {
            headers: vec![header_option(grant_header, token)],
            ..Default::default()
        })),
        ..Default::default()
    }
}

/// A refusal of `server::grant` as ext_authz says it: 401 and 403 are denials, anything
/// else is no decision (an error status the client must fail closed on).
async fn denied(refusal: Response) -> Result<CheckResponse, Status> {
    let status = refusal.status();
    let code = match status {
        StatusCode::UNAUTHORIZED => Code::Unauthenticated,
        StatusCode::FORBIDDEN => Code::PermissionDenied,
        other => {
            return Err(Status::unavailable(format!(
                "policy server error ({other})"
            )))
        }
    };
    let headers = refusal
        .headers()
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|v| header_option(header::WWW_AUTHENTICATE.as_str(), v.to_owned()))
        .collect();
    let body = axum::body::to_bytes(refusal.into_body(), 4096)
        .await
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    Ok(CheckResponse {
        status: Some(rpc::Status {
            code: code as i32,
            message: body.clone(),
            ..Default::default()
        }),
        http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
            status: Some(HttpStatus {
                code: i32::from(status.as_u16()),
            }),
            headers,
            body,
        })),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_a_grant_header_that_is_not_a_lower_case_name() {
        for bad in ["Grant", "a b", ""] {
            let err = ExtAuthzGrpcConfig {
                grant_header: bad.into(),
            }
            .validate()
            .unwrap_err();
            assert!(
                err.to_string().contains("ext_authz_grpc.grant_header"),
                "{err}"
            );
        }
        assert!(ExtAuthzGrpcConfig {
            grant_header: default_grant_header()
        }
        .validate()
        .is_ok());
    }

    #[tokio::test]
    async fn refusals_map_to_denials_and_server_errors_to_no_decision() {
        let unauthorized = crate::server::refuse(StatusCode::UNAUTHORIZED, "invalid token");
        let res = denied(unauthorized).await.unwrap();
        assert_eq!(res.status.unwrap().code, Code::Unauthenticated as i32);
        let Some(HttpResponse::DeniedResponse(d)) = res.http_response else {
            panic!("no denied response");
        };
        assert_eq!(d.status.unwrap().code, 401);
        assert_eq!(d.body, "invalid token");
        assert!(d.headers[0]
            .header
            .as_ref()
            .unwrap()
            .value
            .starts_with("Bearer"));
        let forbidden = crate::server::refuse(StatusCode::FORBIDDEN, "no grants");
        assert_eq!(
            denied(forbidden).await.unwrap().status.unwrap().code,
            Code::PermissionDenied as i32
        );
        let broken = crate::server::refuse(StatusCode::INTERNAL_SERVER_ERROR, "x");
        assert_eq!(denied(broken).await.unwrap_err().code(), Code::Unavailable);
    }
}
