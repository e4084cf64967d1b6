//! Shared data: a key-value store every VM of the plugin sees (Envoy runs one VM per worker
//! thread, so a value a filter keeps in a `static` is per worker; one kept here is not).
//! Writes can be conditional on the version read (compare-and-swap), so VMs racing to
//! update the same key cannot lose each other's writes.
//!
//! ```no_run
//! # fn count() -> weir::Result<()> {
//! use weir::shared_data;
//! loop {
//!     let (n, version) = match shared_data::get("requests")? {
//!         Some((bytes, version)) => (String::from_utf8_lossy(&bytes).parse::<u64>().unwrap_or(0), Some(version)),
//!         None => (0, None),
//!     };
//!     if shared_data::set("requests", (n + 1).to_string().as_bytes(), version)? {
//!         break;
//!     }
//! }
//! # Ok(()) }
//! ```
//!
//! # Namespaced by plugin
//!
//! The host keeps one store per **VM id**, not per plugin: every plugin configured with the
//! same `vm_id` reads and writes the same keys, whatever its code. Istio configures every
//! WasmPlugin with an empty `vm_id`, so on one proxy all WasmPlugins share one store (and two
//! WasmPlugins of the same module can even share one VM: Envoy reuses a VM whose VM id, VM
//! configuration and code match). [`get`]
//! and [`set`] therefore put the plugin's identity in front of `key`: its name (Envoy's
//! `plugin_name`; Istio: `<namespace>.<WasmPlugin name>`) and its root id (`plugin_root_id`;
//! Istio: `pluginName`). Two plugins using the same key do not collide, and a plugin that
//! writes plain keys (as other SDKs' examples do) cannot plant a value this one reads.
//!
//! This prevents accidents and naive key guessing, **not** a hostile module: shared data has
//! no access control, and a module with the same VM id can compute the namespaced key and
//! read or overwrite it. Keep secrets out of shared data, and check what you read (the SDK
//! verifies a cached JWKS again before using it). [`get_global`] and [`set_global`] use the
//! key as it is, for data meant to be shared with other plugins.

use crate::error::{Error, HostResult, Result};
use proxy_wasm::hostcalls;
use weir_abi::{HostFunction, Status};

/// The value under this plugin's `key` and its version, or `None` when nothing is stored.
pub fn get(key: &str) -> Result<Option<(Vec<u8>, u32)>> {
    get_global(&scoped(key)?)
}

/// Stores `value` under this plugin's `key`. With `Some(version)` the write only happens if
/// the stored version is still that one (the value was not changed since it was read):
/// returns `Ok(false)` when another VM changed it first. `None` writes unconditionally.
pub fn set(key: &str, value: &[u8], version: Option<u32>) -> Result<bool> {
    set_global(&scoped(key)?, value, version)
}

/// Like [`get`], with `key` as it is: visible to every plugin in the same VM id.
pub fn get_global(key: &str) -> Result<Option<(Vec<u8>, u32)>> {
    let (value, version) = hostcalls::get_shared_data(key).host(HostFunction::GetSharedData)?;
    Ok(value.map(|v| (v, version.unwrap_or(0))))
}

/// Like [`set`], with `key` as it is: visible to every plugin in the same VM id.
pub fn set_global(key: &str, value: &[u8], version: Option<u32>) -> Result<bool> {
    match hostcalls::set_shared_data(key, Some(value), version) {
        Ok(()) => Ok(true),
        Err(status) => match crate::proxy_types::status(status) {
            Status::CasMismatch => Ok(false),
            status => Err(Error::host(HostFunction::SetSharedData, status)),
        },
    }
}

/// `key` in this plugin's namespace: `weir:<len>:<plugin name>:<len>:<root id>:<key>`. The
/// lengths keep it unambiguous whatever the name and root id contain. Read on every call
/// (two property look-ups): one VM can host several plugins, and the host knows which one
/// is running.
pub fn scoped(key: &str) -> Result<String> {
    let part =
        |name: &str| -> Result<String> { Ok(crate::property_string(&[name])?.unwrap_or_default()) };
    let (name, root) = (part("plugin_name")?, part("plugin_root_id")?);
    Ok(format!(
        "weir:{}:{name}:{}:{root}:{key}",
        name.len(),
        root.len()
    ))
}
