//! `proxy_define_metric`, `proxy_increment_metric`, `proxy_record_metric`, `proxy_get_metric`.

use wasmtime::{Caller, Linker};
use weir_abi::{MetricType, Status};

use super::{read_string, status, write_u32, write_u64};
use crate::engine::lock;
use crate::host_state::HostState;

fn check(status: Status) -> super::HostResult {
    match status {
        Status::Ok => Ok(()),
        other => Err(other.into()),
    }
}

pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_define_metric",
        |mut caller: Caller<'_, HostState>, kind: u32, name_ptr: u32, name_len: u32, id_ptr: u32| {
            status((|| {
                let kind = MetricType::from_u32(kind).ok_or(Status::BadArgument)?;
                let name = read_string(&mut caller, name_ptr, name_len)?;
                let id = lock(&caller.data().proxy.shared.metrics).define(kind, name);
                write_u32(&mut caller, id_ptr, id)
            })())
        },
    )?;
    linker.func_wrap("env", "proxy_increment_metric", |caller: Caller<'_, HostState>, id: u32, delta: i64| {
        status(check(lock(&caller.data().proxy.shared.metrics).increment(id, delta)))
    })?;
    linker.func_wrap("env", "proxy_record_metric", |caller: Caller<'_, HostState>, id: u32, value: u64| {
        status(check(lock(&caller.data().proxy.shared.metrics).record(id, value)))
    })?;
    linker.func_wrap("env", "proxy_get_metric", |mut caller: Caller<'_, HostState>, id: u32, value_ptr: u32| {
        status((|| {
            let value = lock(&caller.data().proxy.shared.metrics).get(id)?;
            write_u64(&mut caller, value_ptr, value)
        })())
    })?;
    Ok(())
}
