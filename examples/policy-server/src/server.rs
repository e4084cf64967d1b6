//! The HTTP side: routes, the check decision and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;

use crate::acl::{Acl, Grants};
use crate::config::Config;
use crate::ext_authz::ExtAuthzConfig;
use crate::issuer::{RequestBinding, TokenIssuer};
use crate::verify::{Rejection, UserTokenVerifier, VerifiedUser};

/// Path of the public keys of the tokens this server issues.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";
/// Path of the health check.
pub const HEALTH_PATH: &str = "/healthz";

/// A configured server, ready to be bound to a listener.
pub struct PolicyServer {
    state: Arc<AppState>,
    check_path: String,
    ext_authz: Option<ExtAuthzConfig>,
    ext_authz_grpc: Option<crate::ext_authz_grpc::ExtAuthzGrpcConfig>,
    listen: SocketAddr,
}

pub(crate) struct AppState {
    pub(crate) verifier: UserTokenVerifier,
    acl: Option<Acl>,
    #[cfg(feature = "rego")]
    rego: Option<Arc<crate::rego::RegoPolicy>>,
    issuer: TokenIssuer,
    grant_cache_control: HeaderValue,
}

impl PolicyServer {
    /// Loads everything the config names (keys, ACL, policies, JWKS).
    pub async fn from_config(config: &Config) -> Result<PolicyServer> {
        let verifier = UserTokenVerifier::from_config(&config.user_token).await?;
        let acl = config.acl_file.as_deref().map(Acl::load).transpose()?;
        #[cfg(feature = "rego")]
        let rego = config
            .rego
            .as_ref()
            .map(crate::rego::RegoPolicy::from_config)
            .transpose()?
            .map(Arc::new);
        let issuer = TokenIssuer::from_config(&config.issued_token)?;
        tracing::info!(kid = issuer.kid(), "signing key loaded");
        Ok(PolicyServer {
            state: Arc::new(AppState {
                verifier,
                acl,
                #[cfg(feature = "rego")]
                rego,
                issuer,
                grant_cache_control: grant_cache_control(config.issued_token.reuse_seconds),
            }),
            check_path: config.check_path.clone(),
            ext_authz: config.ext_authz.clone(),
            ext_authz_grpc: config.ext_authz_grpc.clone(),
            listen: config.listen,
        })
    }

    /// The configured listen address.
    pub fn listen_address(&self) -> SocketAddr {
        self.listen
    }

    /// The routes: the check path, the JWKS, the health check, and the ext_authz adapter's
    /// paths when `ext_authz` is configured, and the ext_authz gRPC service when
    /// `ext_authz_grpc` is.
    pub fn router(&self) -> Router {
        let mut router = Router::new()
            .route(&self.check_path, post(check))
            .route(JWKS_PATH, get(jwks))
            .route(HEALTH_PATH, get(|| async { "ok" }));
        if let Some(ext_authz) = &self.ext_authz {
            router = router.merge(crate::ext_authz::routes(ext_authz));
        }
        let router = router.with_state(self.state.clone());
        match &self.ext_authz_grpc {
            Some(grpc) => router.merge(crate::ext_authz_grpc::routes(grpc, self.state.clone())),
            None => router,
        }
    }

    /// Serves on `listener` until `shutdown` completes, then lets in-flight requests finish.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<()> {
        let address = listener
            .local_addr()
            .context("reading the listener's address")?;
        tracing::info!(%address, check_path = %self.check_path, "policy server listening");
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
            .context("serving HTTP")
    }
}

/// A short, fixed reason for the client; the details go to the log.
pub(crate) fn refuse(status: StatusCode, reason: &'static str) -> Response {
    let mut response = (status, reason).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer error=\"invalid_token\""),
        );
    }
    response
}

fn forwarded<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

async fn check(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let method = forwarded(&headers, "x-forwarded-method");
    let uri = forwarded(&headers, "x-forwarded-uri");
    let host = forwarded(&headers, "x-forwarded-host");
    let authorization = headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .map(|v| v.as_bytes());
    let user = state.verifier.verify_header(authorization).await;
    match grant(&state, user, method, uri, host).await {
        Ok(token) => (
            StatusCode::OK,
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/jwt"),
                ),
                (header::CACHE_CONTROL, state.grant_cache_control.clone()),
            ],
            token,
        )
            .into_response(),
        Err(refusal) => refusal,
    }
}

/// The one decision path of every front end (`/check`, and the ext_authz adapter): the
/// verified user (or why there is none), the policy's grants for the request, and the
/// signed grant token; or the refusal to send (401, 403, 500), already logged.
pub(crate) async fn grant(
    state: &AppState,
    user: Result<VerifiedUser, Rejection>,
    method: &str,
    uri: &str,
    host: &str,
) -> Result<String, Response> {
    let user = match user {
        Ok(user) => user,
        Err(Rejection::Missing) => {
            tracing::info!(method, uri, host, "401: no bearer token");
            return Err(refuse(StatusCode::UNAUTHORIZED, "missing bearer token"));
        }
        Err(Rejection::Invalid(why)) => {
            tracing::warn!(method, uri, host, reason = %why, "401: invalid token");
            return Err(refuse(StatusCode::UNAUTHORIZED, "invalid token"));
        }
        Err(Rejection::Unavailable(why)) => {
            tracing::error!(method, uri, host, reason = %why, "500: cannot verify tokens");
            return Err(refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "policy server error",
            ));
        }
    };
    let grants = match decide(state, &user, method, uri, host).await {
        Ok(grants) => grants,
        Err(err) => {
            tracing::error!(subject = %user.subject, method, uri, error = format!("{err:#}"), "500: policy evaluation failed");
            return Err(refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "policy server error",
            ));
        }
    };
    if grants.is_empty() {
        tracing::info!(subject = %user.subject, groups = ?user.groups, method, uri, host, "403: no grants");
        return Err(refuse(StatusCode::FORBIDDEN, "no grants"));
    }
    let binding = RequestBinding::from_forwarded(method, uri, host);
    match state.issuer.issue(&user.subject, &grants, binding) {
        Ok(token) => {
            tracing::info!(subject = %user.subject, functions = ?grants.functions, method, uri, host, "200: grant token issued");
            Ok(token)
        }
        Err(err) => {
            tracing::error!(subject = %user.subject, error = format!("{err:#}"), "500: signing failed");
            Err(refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "policy server error",
            ))
        }
    }
}

/// The `Cache-Control` of a 200: how long acl-check's decision cache may reuse the grant
/// for an identical check (`issued_token.reuse_seconds`). `private`: the grant belongs to
/// the user whose token was checked, never to a shared HTTP cache.
fn grant_cache_control(reuse_seconds: u64) -> HeaderValue {
    if reuse_seconds == 0 {
        HeaderValue::from_static("no-store")
    } else {
        HeaderValue::try_from(format!("private, max-age={reuse_seconds}"))
            .unwrap_or_else(|_| HeaderValue::from_static("no-store"))
    }
}

/// The union of the ACL's grants and the Rego policy's grants.
#[cfg_attr(not(feature = "rego"), allow(unused_variables))]
async fn decide(
    state: &AppState,
    user: &VerifiedUser,
    method: &str,
    uri: &str,
    host: &str,
) -> Result<Grants> {
    let mut grants = Grants::default();
    if let Some(acl) = &state.acl {
        grants.extend(&acl.grants_for(&user.subject, &user.groups));
    }
    #[cfg(feature = "rego")]
    if let Some(rego) = &state.rego {
        let input = serde_json::json!({
            "subject": user.subject,
            "groups": user.groups,
            "claims": user.claims,
            "method": method,
            "uri": uri,
            "host": host,
        });
        let rego = rego.clone();
        // Policy evaluation is CPU work: keep it off the async workers.
        let from_rego = tokio::task::spawn_blocking(move || rego.evaluate(&input))
            .await
            .context("Rego evaluation task failed")??;
        grants.extend(&from_rego);
    }
    Ok(grants)
}

async fn jwks(State(state): State<Arc<AppState>>) -> Response {
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        state.issuer.jwks_json().to_owned(),
    )
        .into_response()
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for SIGINT");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => tracing::info!("SIGINT: shutting down"),
        _ = terminate => tracing::info!("SIGTERM: shutting down"),
    }
}
