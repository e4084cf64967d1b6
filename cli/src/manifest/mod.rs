//! Istio `WasmPlugin` and Tetrate `WasmExtension` resources: generation, validation against
//! Istio's CRD, and migration from Maistra's `ServiceMeshExtension`.

pub mod gourl;
pub mod migrate;
pub mod validate;
pub mod wasmplugin;
pub mod yaml_out;

/// `extensions.istio.io/v1alpha1`.
pub const ISTIO_API_VERSION: &str = "extensions.istio.io/v1alpha1";
