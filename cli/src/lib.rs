//! Library side of the `weir` command: building, pushing, pulling and signing OCI images of
//! proxy-wasm plugins, writing and validating Istio `WasmPlugin` manifests, and running a
//! plugin (`weir run` in a real Envoy wired as istiod wires it, `weir exec` for one request
//! in weir-runtime).
//!
//! The binary (`src/main.rs`) only parses arguments and draws progress; the work lives here so
//! the tests (and other tools) call the same code the command runs.

#![warn(missing_docs)]

pub mod fsutil;
pub mod input;
pub mod manifest;
pub mod oci;
pub mod run;
pub mod template;
pub mod wasm;

/// An error whose message tells the user what to change; the CLI exits with its user-error
/// status and prints no "this is a bug" hint.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UserError(pub String);
