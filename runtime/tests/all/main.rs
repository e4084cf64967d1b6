//! weir-runtime's tests: one binary, one module per area. Guests are real `.wasm`: the raw
//! `proxy-wasm` probe under `test-plugins/` (built once per process) and hand-written WAT
//! for hostile guests.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod abi_versions;
mod command;
mod grpc;
mod hostile;
mod http;
mod imports;
mod lifecycle;
mod network;
mod root;
mod sdk;
mod sdk_grpc;
mod sdk_overhead;
mod sdk_queue;
mod stream_end;

use weir_runtime::{Plugin, PluginBuilder};

/// The probe plugin (test-plugins/probe), built on first use.
pub fn probe() -> PluginBuilder {
    Plugin::build(concat!(env!("CARGO_MANIFEST_DIR"), "/test-plugins/probe"))
}

/// A WAT guest, compiled to Wasm.
pub fn wat(source: &str) -> Vec<u8> {
    wat::parse_str(source).expect("test WAT must parse")
}
