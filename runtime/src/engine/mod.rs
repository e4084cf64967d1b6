//! The process-wide wasmtime [`Engine`], the host [`Linker`] and the compiled-module cache.
//!
//! One engine and one linker serve every plugin in the process (wasmtime's model: the engine
//! owns compiled code, stores are cheap). Compiled modules are cached by content so that
//! loading the same `.wasm` again, from any test thread, costs a hash and a map lookup.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Mutex, OnceLock};

use wasmtime::{Config, Engine, ExternType, InstancePre, Linker, Module, OptLevel, ValType};
use weir_abi::HostFunction;

use crate::abi_version::{AbiVersion, Declared};
use crate::error::LoadError;
use crate::state::HostState;
use crate::sync::lock;

pub(crate) mod vm;

/// A module compiled and linked against the host, ready to instantiate many times.
#[derive(Clone)]
pub(crate) struct CompiledModule {
    pub(crate) pre: InstancePre<HostState>,
    pub(crate) module: Module,
    /// The proxy-wasm ABI its `proxy_abi_version_*` export declares.
    pub(crate) declared: Declared,
}

impl std::fmt::Debug for CompiledModule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledModule")
            .field("name", &self.module.name())
            .finish()
    }
}

struct Host {
    engine: Engine,
    linker: Linker<HostState>,
    // Keyed by length and a 128-bit hash of the bytes; collisions are not a practical concern
    // for a test cache, and keeping the bytes around would double memory for large modules.
    modules: Mutex<HashMap<(usize, u64, u64), CompiledModule>>,
}

fn host() -> Result<&'static Host, LoadError> {
    static HOST: OnceLock<Result<Host, String>> = OnceLock::new();
    HOST.get_or_init(|| {
        let mut config = Config::new();
        // Fuel counts guest instructions: deterministic per-callback cost, and the limit that
        // stops a guest that loops forever.
        config.consume_fuel(true);
        config.cranelift_opt_level(OptLevel::Speed);
        let engine = Engine::new(&config).map_err(|e| format!("{e:#}"))?;
        let mut linker = Linker::new(&engine);
        crate::host_functions::wasi::add_to_linker(&mut linker).map_err(|e| format!("{e:#}"))?;
        crate::host_functions::add_to_linker(&mut linker).map_err(|e| format!("{e:#}"))?;
        // ABI 0.2.0 modules (AssemblyScript) import WASI under its pre-snapshot name; Envoy
        // serves both names with the same functions (proxy-wasm-cpp-host
        // `WasmBase::registerCallbacks`), the calls proxies use being identical in both.
        linker
            .alias_module(weir_abi::WASI_MODULE, WASI_UNSTABLE)
            .map_err(|e| format!("{e:#}"))?;
        Ok(Host {
            engine,
            linker,
            modules: Mutex::new(HashMap::new()),
        })
    })
    .as_ref()
    .map_err(|e| LoadError::Engine(e.clone()))
}

/// WASI's module name before `wasi_snapshot_preview1` (AssemblyScript still imports it).
pub(crate) const WASI_UNSTABLE: &str = "wasi_unstable";

fn content_key(bytes: &[u8]) -> (usize, u64, u64) {
    let hash = |salt: u64| {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        salt.hash(&mut hasher);
        bytes.hash(&mut hasher);
        hasher.finish()
    };
    (bytes.len(), hash(0x5745_4952), hash(0x7761_736d))
}

/// Compiles (or fetches from the cache) and links a module.
pub(crate) fn compile(bytes: &[u8]) -> Result<CompiledModule, LoadError> {
    let host = host()?;
    if !bytes.starts_with(b"\0asm") {
        return Err(LoadError::NotWasm);
    }
    let key = content_key(bytes);
    if let Some(found) = lock(&host.modules).get(&key) {
        return Ok(found.clone());
    }
    // Compile outside the lock: other threads may load other modules meanwhile.
    let module =
        Module::new(&host.engine, bytes).map_err(|e| LoadError::Compile(format!("{e:#}")))?;
    let declared = crate::abi_version::declared(&module);
    let abi = match &declared {
        Declared::Known(abi) => *abi,
        // Envoy refuses these before linking: so do we, with the versions we do serve.
        Declared::Unknown(markers) => {
            return Err(LoadError::UnsupportedAbi {
                markers: markers.join(", "),
                supported: crate::abi_version::SUPPORTED,
            })
        }
        // Not a proxy-wasm module (e.g. a WASI command): link against the current ABI.
        Declared::None => AbiVersion::V0_2_1,
    };
    let linker = linker_for(&host.linker, &module, abi)?;
    let pre = linker
        .instantiate_pre(&module)
        .map_err(|e| LoadError::Link(format!("{e:#}")))?;
    let compiled = CompiledModule {
        pre,
        module,
        declared,
    };
    lock(&host.modules).insert(key, compiled.clone());
    Ok(compiled)
}

/// The host linker, extended with `ENOSYS` stubs for WASI preview1 functions a module imports
/// beyond those the host implements (the full preview1 surface is large, and toolchains
/// import parts of it that a proxy never serves, such as `path_open`). Unknown `env`
/// imports, and those of another ABI version than `abi`, are an error, as in Envoy.
fn linker_for(
    base: &Linker<HostState>,
    module: &Module,
    abi: AbiVersion,
) -> Result<Linker<HostState>, LoadError> {
    let mut missing_env = Vec::new();
    let mut linker: Option<Linker<HostState>> = None;
    for import in module.imports() {
        let ExternType::Func(ty) = import.ty() else {
            continue;
        };
        let (module_name, name) = (import.module(), import.name());
        let defined = match module_name {
            weir_abi::HOST_MODULE => HostFunction::from_name(name).is_some_and(|f| abi.provides(f)),
            weir_abi::WASI_MODULE | WASI_UNSTABLE => {
                crate::host_functions::wasi::FUNCTIONS.contains(&name)
            }
            _ => false,
        };
        if defined {
            continue;
        }
        if (module_name == weir_abi::WASI_MODULE || module_name == WASI_UNSTABLE)
            && ty.results().len() == 1
            && matches!(ty.results().next(), Some(ValType::I32))
        {
            let linker = linker.get_or_insert_with(|| base.clone());
            linker
                .func_new(
                    module_name,
                    name,
                    ty.clone(),
                    |_caller, _params, results| {
                        results[0] = wasmtime::Val::I32(i32::from(weir_abi::errno::NOSYS));
                        Ok(())
                    },
                )
                .map_err(|e| LoadError::Link(format!("{e:#}")))?;
        } else {
            let others = match HostFunction::from_name(name) {
                Some(function) if module_name == weir_abi::HOST_MODULE => {
                    abi.others_providing(function)
                }
                _ => Vec::new(),
            };
            missing_env.push(if others.is_empty() {
                format!("{module_name}.{name}")
            } else {
                let others: Vec<String> = others.iter().map(ToString::to_string).collect();
                format!(
                    "{module_name}.{name} (proxy-wasm ABI {} only; the module declares ABI {abi})",
                    others.join(" and ")
                )
            });
        }
    }
    if !missing_env.is_empty() {
        return Err(LoadError::MissingImports(missing_env));
    }
    Ok(linker.unwrap_or_else(|| base.clone()))
}

/// Names of the functions a module imports from `module_name`.
pub(crate) fn imports_of(module: &Module, module_name: &str) -> Vec<String> {
    module
        .imports()
        .filter(|i| i.module() == module_name)
        .map(|i| i.name().to_string())
        .collect()
}
