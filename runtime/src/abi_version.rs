//! Which proxy-wasm ABI a module speaks, read from its `proxy_abi_version_*` export, and
//! what each version changes on top of the one 0.2.1 implementation.
//!
//! The three versions differ only at the edges (spec `CHANGELOG.md`): 0.1.0 has
//! `proxy_get_configuration`, `proxy_continue_request`/`_response` and
//! `proxy_clear_route_cache` instead of `proxy_continue_stream`/`proxy_close_stream`, header
//! callbacks without `end_of_stream`, and `Ok` with an empty value for a missing header;
//! 0.2.0 lacks `proxy_get_log_level`. Everything else is shared.

use wasmtime::Module;
use weir_abi::HostFunction;

/// A proxy-wasm ABI version the host serves.
#[derive(Copy, Clone, Debug, Eq, PartialEq, Hash)]
pub enum AbiVersion {
    /// ABI 0.1.0 (proxy-wasm Rust SDK 0.1.x, early C++ SDK): set-up in `_start`.
    V0_1_0,
    /// ABI 0.2.0 (e.g. AssemblyScript's `@solo-io/proxy-runtime`).
    V0_2_0,
    /// ABI 0.2.1, the current one.
    V0_2_1,
}

/// The versions served, as `weir` names them in messages.
pub(crate) const SUPPORTED: &str = "0.1.0, 0.2.0 and 0.2.1";

impl AbiVersion {
    /// Every version the host serves, oldest first.
    pub const ALL: [AbiVersion; 3] = [AbiVersion::V0_1_0, AbiVersion::V0_2_0, AbiVersion::V0_2_1];

    /// The export name that declares this version.
    pub fn export_name(self) -> &'static str {
        match self {
            AbiVersion::V0_1_0 => weir_abi::ABI_VERSION_0_1_0,
            AbiVersion::V0_2_0 => weir_abi::ABI_VERSION_0_2_0,
            AbiVersion::V0_2_1 => weir_abi::ABI_VERSION_0_2_1,
        }
    }

    /// Whether the host provides `function` to modules of this version, as Envoy registers
    /// them (proxy-wasm-cpp-host `WasmBase::registerCallbacks`): importing a function of
    /// another version fails to link in Envoy too.
    pub(crate) fn provides(self, function: HostFunction) -> bool {
        match function {
            HostFunction::GetConfiguration
            | HostFunction::ContinueRequest
            | HostFunction::ContinueResponse
            | HostFunction::ClearRouteCache => self == AbiVersion::V0_1_0,
            HostFunction::ContinueStream | HostFunction::CloseStream => self != AbiVersion::V0_1_0,
            HostFunction::GetLogLevel => self == AbiVersion::V0_2_1,
            _ => true,
        }
    }

    /// The versions other than `self` that provide `function`, for link errors such as
    /// "proxy_get_log_level is ABI 0.2.1 only".
    pub(crate) fn others_providing(self, function: HostFunction) -> Vec<AbiVersion> {
        AbiVersion::ALL
            .into_iter()
            .filter(|v| *v != self && v.provides(function))
            .collect()
    }

    /// Header callbacks take `end_of_stream` from 0.2.0 on.
    pub(crate) fn header_callbacks_take_end_of_stream(self) -> bool {
        self != AbiVersion::V0_1_0
    }
}

impl std::fmt::Display for AbiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AbiVersion::V0_1_0 => "0.1.0",
            AbiVersion::V0_2_0 => "0.2.0",
            AbiVersion::V0_2_1 => "0.2.1",
        })
    }
}

/// What a module's exports say about its ABI.
#[derive(Clone, Debug, Eq, PartialEq)]
pub(crate) enum Declared {
    /// A version the host serves.
    Known(AbiVersion),
    /// Only `proxy_abi_version_*` exports of versions the host does not serve (their names).
    Unknown(Vec<String>),
    /// No `proxy_abi_version_*` function export: not a proxy-wasm module (a WASI command).
    None,
}

/// Reads the declared version the way Envoy does (proxy-wasm-cpp-host
/// `BytecodeUtil::getAbiVersion`): the first function export, in export order, naming a
/// known version wins; markers of unknown versions are ignored if a known one exists.
pub(crate) fn declared(module: &Module) -> Declared {
    let mut unknown = Vec::new();
    for export in module.exports() {
        if export.ty().func().is_none() {
            continue;
        }
        let version = match export.name() {
            weir_abi::ABI_VERSION_0_1_0 => AbiVersion::V0_1_0,
            weir_abi::ABI_VERSION_0_2_0 => AbiVersion::V0_2_0,
            weir_abi::ABI_VERSION_0_2_1 => AbiVersion::V0_2_1,
            other if other.starts_with("proxy_abi_version_") => {
                unknown.push(other.to_string());
                continue;
            }
            _ => continue,
        };
        return Declared::Known(version);
    }
    if unknown.is_empty() {
        Declared::None
    } else {
        Declared::Unknown(unknown)
    }
}
