//! `proxy_log`, `proxy_get_log_level`.

use wasmtime::{Caller, Linker};
use weir_abi::{HostFunction, LogLevel, Status, HOST_MODULE};

use super::{read, status, write_u32};
use crate::state::HostState;

pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        HOST_MODULE,
        HostFunction::Log.as_str(),
        |mut caller: Caller<'_, HostState>, level: u32, ptr: u32, len: u32| {
            status((|| {
                let level = LogLevel::from_u32(level).ok_or(Status::BadArgument)?;
                let message = read(&mut caller, ptr, len)?;
                caller
                    .data_mut()
                    .proxy
                    .log(level, String::from_utf8_lossy(&message).into_owned());
                Ok(())
            })())
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        HostFunction::GetLogLevel.as_str(),
        |mut caller: Caller<'_, HostState>, ptr: u32| {
            let level = caller.data().proxy.shared.settings.log_level as u32;
            status(write_u32(&mut caller, ptr, level))
        },
    )?;
    Ok(())
}
