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

use crate::error::{Error, HostResult, Result};
use proxy_wasm::hostcalls;
use proxy_wasm::types::Status;

/// The value under `key` and its version, or `None` when nothing is stored.
pub fn get(key: &str) -> Result<Option<(Vec<u8>, u32)>> {
    let (value, version) = hostcalls::get_shared_data(key).host("proxy_get_shared_data")?;
    Ok(value.map(|v| (v, version.unwrap_or(0))))
}

/// Stores `value` under `key`. With `Some(version)` the write only happens if the stored
/// version is still that one (the value was not changed since it was read): returns
/// `Ok(false)` when another VM changed it first. `None` writes unconditionally.
pub fn set(key: &str, value: &[u8], version: Option<u32>) -> Result<bool> {
    match hostcalls::set_shared_data(key, Some(value), version) {
        Ok(()) => Ok(true),
        Err(Status::CasMismatch) => Ok(false),
        Err(status) => Err(Error::host("proxy_set_shared_data", status)),
    }
}
