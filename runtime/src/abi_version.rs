//! Which proxy-wasm ABI a module speaks, read from its `proxy_abi_version_*` export, and
//! what each version changes on top of the one 0.2.1 implementation.
//!
//! The three versions differ only at the edges (spec `CHANGELOG.md`): 0.1.0 has
//! `proxy_get_configuration`, `proxy_continue_request`/`_response` and
//! `proxy_clear_route_cache` instead of `proxy_continue_stream`/`proxy_close_stream`, header
//! callbacks without `end_of_stream`, and `Ok` with an empty value for a missing header;
//! 0.2.0 lacks `proxy_get_log_level`. Everything else is shared.

use wasmtime::Module;

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

/// Host functions every version has (0.2.1's list minus the version-specific ones below).
const VERSION_SPECIFIC_0_2: [&str; 3] = [
    "proxy_continue_stream",
    "proxy_close_stream",
    "proxy_get_log_level",
];
const ONLY_0_1_0: [&str; 4] = [
    "proxy_get_configuration",
    "proxy_continue_request",
    "proxy_continue_response",
    "proxy_clear_route_cache",
];

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

    /// Whether the host provides `env.<name>` to modules of this version, as Envoy registers
    /// them (proxy-wasm-cpp-host `WasmBase::registerCallbacks`): importing a function of
    /// another version fails to link in Envoy too.
    pub(crate) fn provides(self, name: &str) -> bool {
        let common =
            weir_abi::HOST_FUNCTIONS_0_2_1.contains(&name) && !VERSION_SPECIFIC_0_2.contains(&name);
        common
            || match self {
                AbiVersion::V0_1_0 => ONLY_0_1_0.contains(&name),
                AbiVersion::V0_2_0 => {
                    name == "proxy_continue_stream" || name == "proxy_close_stream"
                }
                AbiVersion::V0_2_1 => VERSION_SPECIFIC_0_2.contains(&name),
            }
    }

    /// The versions other than `self` that provide `env.<name>`, for link errors such as
    /// "proxy_get_log_level is ABI 0.2.1 only".
    pub(crate) fn others_providing(self, name: &str) -> Vec<AbiVersion> {
        AbiVersion::ALL
            .into_iter()
            .filter(|v| *v != self && v.provides(name))
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
