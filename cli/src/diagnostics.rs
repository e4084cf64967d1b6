//! Sorts errors into the user's to fix and ours, and adds `hint:` lines.

use weir_cli::manifest::validate::ValidationFailed;
use weir_cli::oci::extract::ExtractError;
use weir_cli::oci::registry::RegistryError;
use weir_cli::wasm::ModuleError;
use weir_cli::UserError;
use weir_runtime::{LoadError, StartError};

/// Exit status for errors the user can fix (bad input, registry refusal, invalid manifest).
pub const EXIT_USER_ERROR: i32 = 1;
/// Exit status clap uses for unusable arguments.
pub const EXIT_USAGE: i32 = 2;
/// Exit status for failures that point to a bug or an environment problem.
pub const EXIT_UNEXPECTED: i32 = 3;

/// Whose problem an error is, and what to suggest.
#[derive(Debug)]
pub struct Diagnosis {
    /// Exit status to use.
    pub exit_code: i32,
    /// `hint:` lines.
    pub hints: Vec<String>,
}

/// Looks through the error chain for a cause we know.
pub fn diagnose(err: &anyhow::Error) -> Diagnosis {
    let user = |hints: Vec<String>| Diagnosis {
        exit_code: EXIT_USER_ERROR,
        hints,
    };
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<RegistryError>() {
            return match e {
                RegistryError::Other(_) => Diagnosis {
                    exit_code: EXIT_UNEXPECTED,
                    hints: vec![],
                },
                e => user(registry_hints(e)),
            };
        }
        if let Some(e) = cause.downcast_ref::<ModuleError>() {
            let hint = match e {
                ModuleError::NotWasm | ModuleError::Malformed(_) => {
                    "pass the .wasm built by `cargo build --target wasm32-wasip1 --release`, or the plugin crate's directory"
                }
                ModuleError::NoAbiVersion => {
                    "build the module with a proxy-wasm SDK (the weir SDK or proxy-wasm): they export proxy_abi_version_0_2_1"
                }
                ModuleError::Component => "build for wasm32-wasip1 (a core module), not wasm32-wasip2",
                ModuleError::TooLarge { .. } => "build with --release and opt-level = \"z\", or strip debug info",
            };
            return user(vec![hint.to_string()]);
        }
        if let Some(e) = cause.downcast_ref::<StartError>() {
            return user(start_hints(e));
        }
        if cause.downcast_ref::<ExtractError>().is_some() {
            return user(vec!["package the module with `weir package` or `weir push`, which write formats Istio reads".into()]);
        }
        if cause.downcast_ref::<ValidationFailed>().is_some()
            || cause.downcast_ref::<UserError>().is_some()
        {
            return user(vec![]);
        }
        if let Some(e) = cause.downcast_ref::<std::io::Error>() {
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound
                    | std::io::ErrorKind::PermissionDenied
                    | std::io::ErrorKind::AlreadyExists
            ) {
                return user(vec![]);
            }
        }
    }
    Diagnosis {
        exit_code: EXIT_UNEXPECTED,
        hints: vec![],
    }
}

fn registry_hints(e: &RegistryError) -> Vec<String> {
    let hint = match e {
        RegistryError::Unauthorized { had_credentials: false, .. } => {
            "the registry needs credentials: pass --username with --password-stdin, --docker-config, or --pull-secret".into()
        }
        RegistryError::Unauthorized { .. } => "check the user name and password for this registry".into(),
        RegistryError::Denied { .. } => "these credentials lack the right to this repository".into(),
        RegistryError::NotFound { .. } => "check the repository name and the tag or digest".into(),
        RegistryError::DigestMismatch { .. } => {
            "the reference now names different content: update the expected sha256, or pull by @sha256: digest".into()
        }
        RegistryError::BlobCorrupt { .. } | RegistryError::Truncated { .. } => {
            "the registry's copy is damaged or was altered: push the image again from a trusted source".into()
        }
        RegistryError::Oversize { .. } => "Istio refuses modules above 256 MiB".into(),
        RegistryError::Format(_) | RegistryError::NotWasm { .. } => {
            "package the module with `weir package` or `weir push`, which write formats Istio reads".into()
        }
        RegistryError::Connection { tls: true, .. } => {
            "for a registry with a private CA pass --ca-cert CA.pem; for a plain-HTTP registry pass --insecure".into()
        }
        RegistryError::Connection { .. } => "check that the registry runs at that host and port".into(),
        RegistryError::Other(_) => return vec![],
    };
    vec![hint]
}

/// `weir exec`: a plugin that would not start in weir-runtime.
fn start_hints(e: &StartError) -> Vec<String> {
    let hint = match e {
        StartError::ConfigRejected { .. } => {
            "the plugin's own message is above: fix the file given to --config (no --config: the plugin needs one)"
        }
        StartError::VmStartRejected { .. } => "the plugin refused to start its VM: check --env and the plugin's message above",
        StartError::Trap(_) => "the plugin crashed while starting: its panic message is above",
        StartError::NotProxyWasm => {
            "build the module with a proxy-wasm SDK: they export proxy_abi_version_0_1_0, _0_2_0 or _0_2_1"
        }
        StartError::Load(LoadError::UnsupportedAbi { .. }) => {
            "rebuild the plugin with an SDK for ABI 0.1.0, 0.2.0 or 0.2.1 (Weir and proxy-wasm 0.2 for Rust target 0.2.1); Envoy refuses this module too"
        }
        StartError::Load(LoadError::MissingImports(_)) => {
            "the module imports host functions its ABI version lacks (Envoy refuses it too): rebuild it with one SDK version throughout"
        }
        _ => "pass a proxy-wasm module built for wasm32-wasip1",
    };
    vec![hint.to_string()]
}
