//! The CLI's integration tests, one binary: each module drives the real `weir` binary,
//! and the registry-backed ones a real `docker-registry` (TLS + htpasswd) and `skopeo`.

mod common;
mod exec;
mod exec_abi;
mod exec_clock;
mod exec_grpc;
mod manifest;
mod migrate;
mod new;
mod package;
mod registry;
mod run;
mod run_support;
mod sign;
