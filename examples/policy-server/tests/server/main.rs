//! The policy server over real HTTP on 127.0.0.1: one test binary, one module per area.

mod attacks;
mod cli;
mod ext_authz;
mod grants;
mod jwks_flood;
mod keys;
#[cfg(feature = "rego")]
mod rego;
mod shipped_config;
mod support;
