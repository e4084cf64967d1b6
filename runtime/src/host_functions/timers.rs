//! `proxy_get_current_time_nanoseconds`, `proxy_set_tick_period_milliseconds`: both on the
//! plugin's virtual clock, which only the test moves.

use wasmtime::{Caller, Linker};
use weir_abi::{HostFunction, HOST_MODULE};

use super::{status, write_u64};
use crate::state::HostState;

pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        HOST_MODULE,
        HostFunction::GetCurrentTimeNanoseconds.as_str(),
        |mut caller: Caller<'_, HostState>, ptr: u32| {
            let now = caller.data().proxy.now_ns();
            status(write_u64(&mut caller, ptr, now))
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        HostFunction::SetTickPeriodMilliseconds.as_str(),
        |mut caller: Caller<'_, HostState>, period: u32| {
            let proxy = &mut caller.data_mut().proxy;
            proxy.tick_period_ms = period;
            proxy.next_tick_ns =
                (period > 0).then(|| proxy.now_ns().saturating_add(u64::from(period) * 1_000_000));
            status(Ok(()))
        },
    )?;
    Ok(())
}
