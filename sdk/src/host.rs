//! What the host knows beyond the stream: its clock, VM environment variables and properties.

use crate::error::{Error, HostResult, Result};
use proxy_wasm::hostcalls;
use std::time::{SystemTime, UNIX_EPOCH};
use weir_abi::HostFunction;

/// The host's clock: wall time in Envoy, the virtual clock in weir-runtime tests. Use it
/// rather than `std::time`, so tests that advance the clock see the plugin follow.
pub fn now() -> Result<SystemTime> {
    hostcalls::get_current_time().host(HostFunction::GetCurrentTimeNanoseconds)
}

/// The host's clock in whole seconds since the Unix epoch (JWT `exp`/`iat` units).
pub fn unix_time() -> Result<u64> {
    let since = now()?
        .duration_since(UNIX_EPOCH)
        .map_err(|_| Error::msg("the host clock is before 1970"))?;
    Ok(since.as_secs())
}

/// A VM environment variable, as set by a WasmPlugin's `vmConfig.env` (INLINE values, or
/// HOST values copied from the proxy's environment). Envoy passes them to the module
/// through WASI `environ_get`; nothing else in the environment is visible.
pub fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// A host property such as `["request", "path"]`, `["source", "address"]` or
/// `["plugin_name"]`, as raw bytes; `None` if the host has no such property.
///
/// Envoy encodes strings as UTF-8 and integers as 8-byte little-endian values.
pub fn property(path: &[&str]) -> Result<Option<Vec<u8>>> {
    hostcalls::get_property(path.to_vec()).host(HostFunction::GetProperty)
}

/// A string property (lossy UTF-8), `None` if absent.
pub fn property_string(path: &[&str]) -> Result<Option<String>> {
    Ok(property(path)?.map(|b| String::from_utf8_lossy(&b).into_owned()))
}

/// An integer property (Envoy's 8-byte little-endian encoding), `None` if absent or not
/// an integer.
pub fn property_i64(path: &[&str]) -> Result<Option<i64>> {
    Ok(property(path)?
        .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
        .map(i64::from_le_bytes))
}
