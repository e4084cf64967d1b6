//! A second front end for Envoy's own `ext_authz` filter (HTTP service), so the same policy
//! can sit behind Envoy's native filters: a thin adapter over `server::grant`, the one
//! decision path `/check` uses.
//!
//! Envoy's HTTP service sends the original request's method, its path with `path_prefix`
//! put in front, its `:authority` as `host`, and the request headers `allowed_headers`
//! lets through. The user's ID token comes in a cookie (`id_token_cookie`: the oauth2
//! filter keeps it in its `IdToken` cookie, decrypted by the time ext_authz runs). A 200
//! carries the grant token in `grant_header`, which `allowed_upstream_headers` copies onto
//! the request; 401, 403 and 500 are the same refusals `/check` gives.

use std::sync::Arc;

use anyhow::{ensure, Result};
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderName, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use serde::Deserialize;

use crate::server::{grant, AppState};
use crate::verify::Rejection;

/// The `ext_authz` section of the config.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtAuthzConfig {
    /// Envoy's `http_service.path_prefix`: every request under it is a check of the
    /// request whose path follows the prefix.
    pub path_prefix: String,
    /// Cookie holding the user's ID token (the oauth2 filter's `IdToken` by default).
    #[serde(default = "default_id_token_cookie")]
    pub id_token_cookie: String,
    /// Response header carrying the grant token on a 200.
    #[serde(default = "default_grant_header")]
    pub grant_header: String,
}

fn default_id_token_cookie() -> String {
    "IdToken".into()
}
fn default_grant_header() -> String {
    "authz_complete".into()
}

impl ExtAuthzConfig {
    /// Checks the section against the server's other routes (`check_path`, the JWKS and
    /// the health check must stay reachable).
    pub(crate) fn validate(&self, check_path: &str) -> Result<()> {
        let prefix = &self.path_prefix;
        ensure!(
            prefix.len() > 1
                && prefix.starts_with('/')
                && !prefix.ends_with('/')
                && !prefix.contains(['{', '}', '*', '?', '#']),
            "ext_authz.path_prefix must be a plain path like /ext-authz (starting with '/', no trailing '/', no {{, }}, *, ?, #), got {prefix:?}"
        );
        for route in [
            check_path,
            crate::server::JWKS_PATH,
            crate::server::HEALTH_PATH,
        ] {
            ensure!(
                route != prefix && !route.starts_with(&format!("{prefix}/")),
                "ext_authz.path_prefix {prefix:?} would take over the route {route:?}"
            );
        }
        let name = &self.id_token_cookie;
        ensure!(
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b)),
            "ext_authz.id_token_cookie must be a cookie name, got {name:?}"
        );
        let header = &self.grant_header;
        ensure!(
            HeaderName::from_bytes(header.as_bytes()).is_ok_and(|h| h.as_str() == header),
            "ext_authz.grant_header must be a lower-case header name, got {header:?}"
        );
        Ok(())
    }
}

/// The adapter's routes: the prefix itself and everything under it, any method.
pub(crate) fn routes(config: &ExtAuthzConfig) -> Router<Arc<AppState>> {
    let prefix = config.path_prefix.clone();
    let config = Arc::new(config.clone());
    let handler =
        move |State(state): State<Arc<AppState>>, method: Method, uri: Uri, headers: HeaderMap| {
            let config = config.clone();
            async move { check(&config, &state, &method, &uri, &headers).await }
        };
    Router::new()
        .route(&prefix, any(handler.clone()))
        .route(&format!("{prefix}/"), any(handler.clone()))
        .route(&format!("{prefix}/{{*original}}"), any(handler))
}

async fn check(
    config: &ExtAuthzConfig,
    state: &AppState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Response {
    let path_and_query = uri.path_and_query().map_or("", |pq| pq.as_str());
    // What follows the prefix is the original request's path and query ("/" when empty).
    let original = match path_and_query.strip_prefix(config.path_prefix.as_str()) {
        Some("") => "/",
        Some(rest) if rest.starts_with(['/', '?']) => rest,
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let original = if original.starts_with('?') {
        format!("/{original}")
    } else {
        original.to_owned()
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let user = match id_token(headers, &config.id_token_cookie) {
        Ok(token) => state.verifier.verify(token).await,
        Err(rejection) => Err(rejection),
    };
    match grant(state, user, method.as_str(), &original, host).await {
        Ok(token) => {
            let mut response = StatusCode::OK.into_response();
            let headers = response.headers_mut();
            // Checked at start-up: the name parses; a JWS is always a valid header value.
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(config.grant_header.as_bytes()),
                token.parse(),
            ) {
                headers.insert(name, value);
            }
            headers.insert(
                header::CACHE_CONTROL,
                "no-store".parse().expect("static value"),
            );
            response
        }
        Err(refusal) => refusal,
    }
}

/// The value of the one cookie called `name` across the `cookie` headers. Two cookies of
/// that name are refused (which one the identity provider set cannot be told).
fn id_token<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, Rejection> {
    let mut found = None;
    for value in headers.get_all(header::COOKIE) {
        let value = value
            .to_str()
            .map_err(|_| Rejection::Invalid("cookie header is not visible ASCII".into()))?;
        for pair in value.split(';') {
            let Some((key, token)) = pair.trim().split_once('=') else {
                continue;
            };
            if key == name {
                if found.is_some() {
                    return Err(Rejection::Invalid(format!("more than one {name} cookie")));
                }
                found = Some(token.trim_matches('"'));
            }
        }
    }
    found.filter(|t| !t.is_empty()).ok_or(Rejection::Missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(prefix: &str, cookie: &str, header: &str) -> ExtAuthzConfig {
        ExtAuthzConfig {
            path_prefix: prefix.into(),
            id_token_cookie: cookie.into(),
            grant_header: header.into(),
        }
    }

    #[test]
    fn refuses_prefixes_that_are_not_plain_or_shadow_other_routes() {
        assert!(config("/ext-authz", "IdToken", "authz_complete")
            .validate("/check")
            .is_ok());
        for bad in [
            "",
            "/",
            "ext",
            "/ext/",
            "/a*",
            "/a{b}",
            "/check",
            "/.well-known",
            "/healthz",
        ] {
            let err = config(bad, "IdToken", "authz_complete").validate("/check");
            assert!(err.is_err(), "{bad:?} should be refused");
        }
        let err = config("/authz", "IdToken", "x")
            .validate("/authz/check")
            .unwrap_err();
        assert!(err.to_string().contains("ext_authz.path_prefix"), "{err}");
    }

    #[test]
    fn refuses_bad_cookie_and_header_names() {
        let err = config("/x", "Id Token", "g")
            .validate("/check")
            .unwrap_err();
        assert!(
            err.to_string().contains("ext_authz.id_token_cookie"),
            "{err}"
        );
        for bad in ["Grant", "a b", ""] {
            let err = config("/x", "IdToken", bad).validate("/check").unwrap_err();
            assert!(err.to_string().contains("ext_authz.grant_header"), "{err}");
        }
    }

    #[test]
    fn finds_the_one_cookie_by_exact_name() {
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            "a=1; XIdToken=no; IdToken=tok".parse().unwrap(),
        );
        assert!(matches!(id_token(&headers, "IdToken"), Ok("tok")));
        headers.append(header::COOKIE, "IdToken=other".parse().unwrap());
        assert!(matches!(
            id_token(&headers, "IdToken"),
            Err(Rejection::Invalid(_))
        ));
        assert!(matches!(
            id_token(&HeaderMap::new(), "IdToken"),
            Err(Rejection::Missing)
        ));
        let mut empty = HeaderMap::new();
        empty.append(header::COOKIE, "IdToken=".parse().unwrap());
        assert!(matches!(
            id_token(&empty, "IdToken"),
            Err(Rejection::Missing)
        ));
    }
}
