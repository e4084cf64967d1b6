//! Reference policy server for Weir's `acl-check` plugin.
//!
//! Run it with `cargo run -- --config policy-server.yaml` (see the README for the config
//! reference and the wire protocol).
//!
//! `POST /check` takes the user's `authorization: Bearer <JWT>` plus the original request
//! as `x-forwarded-method`, `x-forwarded-uri` and `x-forwarded-host`. The server verifies
//! the JWT strictly against the identity provider's JWKS, looks the user up in an ACL file
//! (and, with the `rego` feature, a Rego policy), and answers 200 with a short-lived
//! ES256/EdDSA-signed JWT carrying the permitted `functions` and `files`; 401 for a
//! missing or invalid token, 403 when nothing is granted, 500 for its own problems.
//! `GET /.well-known/jwks.json` publishes the keys the `check-header` plugin verifies
//! those tokens with.
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use policy_server::{Config, PolicyServer};
//! let config = Config::load("policy-server.yaml".as_ref())?;
//! let server = PolicyServer::from_config(&config).await?;
//! let listener = tokio::net::TcpListener::bind(server.listen_address()).await?;
//! server.serve(listener, policy_server::shutdown_signal()).await
//! # }
//! ```

#![warn(missing_docs)]

mod acl;
mod algorithm;
mod config;
mod ext_authz;
mod ext_authz_grpc;
mod issuer;
mod jwks;
#[cfg(feature = "rego")]
mod rego;
mod server;
mod verify;
mod verify_key;

pub use acl::{Acl, Grants};
pub use algorithm::{Algorithm, UnknownAlgorithm};
pub use config::{Config, IssuedTokenConfig, RegoConfig, UserTokenConfig};
pub use ext_authz::ExtAuthzConfig;
pub use issuer::{generate_key, write_new_key, RequestBinding, TokenIssuer};
#[cfg(feature = "rego")]
pub use rego::RegoPolicy;
pub use server::{shutdown_signal, PolicyServer, HEALTH_PATH, JWKS_PATH};
pub use verify::{Rejection, UserTokenVerifier, VerifiedUser};
