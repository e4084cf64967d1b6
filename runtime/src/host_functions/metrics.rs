//! `proxy_define_metric`, `proxy_increment_metric`, `proxy_record_metric`, `proxy_get_metric`,
//! with the statuses Envoy's `Context` returns: ids carry their type in the low two bits,
//! a counter only takes increments above 0, an id of the right type that was never
//! defined is `NotFound`, an operation the type does not have is `BadArgument`.

use wasmtime::{Caller, Linker};
use weir_abi::{HostFunction, MetricType, Status, HOST_MODULE};

use super::{read_string, status, write_u32, write_u64, HostResult};
use crate::state::shared::{Metric, METRIC_TYPE_MASK};
use crate::state::HostState;
use crate::sync::lock;

/// The type an id claims, from its low bits (3 is no type).
fn kind_of(id: u32) -> Option<MetricType> {
    MetricType::from_u32(id & METRIC_TYPE_MASK)
}

/// Runs `f` on the metric behind `id` in this VM.
fn with_metric<T>(
    caller: &Caller<'_, HostState>,
    id: u32,
    f: impl FnOnce(&mut Metric) -> T,
) -> Option<T> {
    let proxy = &caller.data().proxy;
    let entry = proxy.metric_ids.entry(id)?;
    let mut metrics = lock(&proxy.shared.metrics);
    metrics.get_mut(entry).map(f)
}

fn increment(caller: &Caller<'_, HostState>, id: u32, delta: i64) -> HostResult {
    match kind_of(id) {
        Some(MetricType::Counter) => {
            let added = with_metric(caller, id, |m| {
                (delta > 0)
                    .then(|| m.value = m.value.saturating_add(delta as u64))
                    .is_some()
            });
            match added {
                None => Err(Status::NotFound.into()),
                Some(false) => Err(Status::BadArgument.into()),
                Some(true) => Ok(()),
            }
        }
        Some(MetricType::Gauge) => with_metric(caller, id, |m| {
            m.value = if delta > 0 {
                m.value.saturating_add(delta as u64)
            } else {
                m.value.saturating_sub(delta.unsigned_abs())
            }
        })
        .ok_or(Status::NotFound.into()),
        _ => Err(Status::BadArgument.into()),
    }
}

fn record(caller: &Caller<'_, HostState>, id: u32, value: u64) -> HostResult {
    with_metric(caller, id, |m| match m.kind {
        MetricType::Counter => m.value = m.value.saturating_add(value),
        MetricType::Gauge => m.value = value,
        MetricType::Histogram => m.samples.push(value),
    })
    .ok_or(Status::NotFound.into())
}

fn get(caller: &Caller<'_, HostState>, id: u32) -> HostResult<u64> {
    match kind_of(id) {
        Some(MetricType::Counter | MetricType::Gauge) => {
            with_metric(caller, id, |m| m.value).ok_or(Status::NotFound.into())
        }
        _ => Err(Status::BadArgument.into()),
    }
}

pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        HOST_MODULE,
        HostFunction::DefineMetric.as_str(),
        |mut caller: Caller<'_, HostState>,
         kind: u32,
         name_ptr: u32,
         name_len: u32,
         id_ptr: u32| {
            status((|| {
                let kind = MetricType::from_u32(kind).ok_or(Status::BadArgument)?;
                let name = read_string(&mut caller, name_ptr, name_len)?;
                let proxy = &mut caller.data_mut().proxy;
                let entry = lock(&proxy.shared.metrics).entry(kind, name);
                let id = proxy.metric_ids.assign(kind, entry);
                write_u32(&mut caller, id_ptr, id)
            })())
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        HostFunction::IncrementMetric.as_str(),
        |caller: Caller<'_, HostState>, id: u32, delta: i64| status(increment(&caller, id, delta)),
    )?;
    linker.func_wrap(
        HOST_MODULE,
        HostFunction::RecordMetric.as_str(),
        |caller: Caller<'_, HostState>, id: u32, value: u64| status(record(&caller, id, value)),
    )?;
    linker.func_wrap(
        HOST_MODULE,
        HostFunction::GetMetric.as_str(),
        |mut caller: Caller<'_, HostState>, id: u32, value_ptr: u32| {
            status((|| {
                let value = get(&caller, id)?;
                write_u64(&mut caller, value_ptr, value)
            })())
        },
    )?;
    Ok(())
}
