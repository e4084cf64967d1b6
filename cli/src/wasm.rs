//! Checks that a file is a proxy-wasm module before it is packaged or after it is pulled.

use thiserror::Error;
use wasmparser::{Parser, Payload};

/// The four bytes every Wasm binary starts with; Istio's fetcher checks exactly these.
pub const WASM_MAGIC: &[u8; 4] = b"\0asm";

/// Istio refuses modules above this size (`ISTIO_WASM_MAX_BINARY_SIZE_BYTES`).
pub const MAX_MODULE_SIZE: u64 = 256 * 1024 * 1024;

/// What packaging needs to know about a module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModuleInfo {
    /// Exported `proxy_abi_version_*` functions, sorted, e.g. `proxy_abi_version_0_2_1`.
    pub abi_versions: Vec<String>,
}

/// Why a file is not a usable proxy-wasm module.
#[derive(Debug, Error)]
pub enum ModuleError {
    /// The file does not start with `\0asm`.
    #[error("not a WebAssembly module: it does not start with the bytes \\0asm")]
    NotWasm,
    /// The file is larger than Istio accepts.
    #[error(
        "module is {size} bytes; Istio refuses modules above {MAX_MODULE_SIZE} bytes (256 MiB)"
    )]
    TooLarge {
        /// Size of the module in bytes.
        size: u64,
    },
    /// The binary does not parse.
    #[error("malformed WebAssembly module: {0}")]
    Malformed(String),
    /// A Wasm component, not a core module: proxy-wasm hosts load core modules only.
    #[error("this is a WebAssembly component; proxy-wasm hosts load core modules only")]
    Component,
    /// The module does not export any ABI version marker.
    #[error("module exports no proxy_abi_version_* function, so it is not a proxy-wasm plugin")]
    NoAbiVersion,
}

/// Parses `bytes` as a core Wasm module and returns its proxy-wasm ABI versions.
pub fn inspect_module(bytes: &[u8]) -> Result<ModuleInfo, ModuleError> {
    if !bytes.starts_with(WASM_MAGIC) {
        return Err(ModuleError::NotWasm);
    }
    let size = bytes.len() as u64;
    if size > MAX_MODULE_SIZE {
        return Err(ModuleError::TooLarge { size });
    }
    let mut abi_versions = Vec::new();
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(|e| ModuleError::Malformed(e.to_string()))? {
            Payload::Version {
                encoding: wasmparser::Encoding::Component,
                ..
            } => return Err(ModuleError::Component),
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.map_err(|e| ModuleError::Malformed(e.to_string()))?;
                    if export.name.starts_with("proxy_abi_version_") {
                        abi_versions.push(export.name.to_string());
                    }
                }
            }
            _ => {}
        }
    }
    if abi_versions.is_empty() {
        return Err(ModuleError::NoAbiVersion);
    }
    abi_versions.sort();
    Ok(ModuleInfo { abi_versions })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_text_and_modules_without_abi_marker() {
        assert!(matches!(
            inspect_module(b"hello"),
            Err(ModuleError::NotWasm)
        ));
        let bare = b"\0asm\x01\0\0\0";
        assert!(matches!(
            inspect_module(bare),
            Err(ModuleError::NoAbiVersion)
        ));
        let truncated = b"\0asm\x01\0\0\0\x07\x05";
        assert!(matches!(
            inspect_module(truncated),
            Err(ModuleError::Malformed(_))
        ));
    }

    #[test]
    fn refuses_modules_above_istios_size_cap() {
        // Zeroed allocations are lazily mapped, so this costs little real memory.
        let mut huge = vec![0u8; MAX_MODULE_SIZE as usize + 1];
        huge[..8].copy_from_slice(b"\0asm\x01\0\0\0");
        let err = inspect_module(&huge).expect_err("over the cap");
        assert!(matches!(err, ModuleError::TooLarge { .. }), "{err}");
        assert!(err.to_string().contains("256 MiB"), "{err}");
    }
}
