//! Library side of the `weir` command: building, pushing, pulling and signing OCI images of
//! proxy-wasm plugins, and writing and validating Istio `WasmPlugin` manifests.
//!
//! The binary (`src/main.rs`) only parses arguments and draws progress; everything a later
//! command (such as `weir run`) may reuse lives here.

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
