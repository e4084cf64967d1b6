//! Probes of single host-function areas, picked by a request path under `/probe/`. Each
//! calls the host the way a module written outside this project might (raw imports where
//! the SDK would panic on a status it does not expect) and writes the raw statuses it got
//! into a header, so a scenario pins Envoy's answer for each edge.

use std::cell::RefCell;
use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType, MetricType};

/// The queue a paused stream announces itself on; the root resumes it from
/// `on_queue_ready`.
pub const RESUME_QUEUE: &str = "exerciser.resume";
/// Shared-data key counting the VMs that ran `proxy_on_vm_start`.
pub const VMS_STARTED: &str = "exerciser.vms-started";
/// Shared-data key counting root contexts that ran `proxy_on_configure`.
pub const VMS_CONFIGURED: &str = "exerciser.vms-configured";
/// Shared-data key counting root contexts whose timer fired.
pub const VMS_TICKED: &str = "exerciser.vms-ticked";

thread_local! {
    /// Streams of this VM waiting for the root's next tick (context ids are per VM).
    static WAITING_FOR_TICK: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

/// The host functions as they are imported, returning the raw status, so edges the SDK
/// answers with a panic can be observed.
mod raw {
    #[link(wasm_import_module = "env")]
    extern "C" {
        pub fn proxy_define_metric(
            kind: u32,
            name: *const u8,
            name_len: usize,
            id: *mut u32,
        ) -> u32;
        pub fn proxy_increment_metric(id: u32, delta: i64) -> u32;
        pub fn proxy_record_metric(id: u32, value: u64) -> u32;
        pub fn proxy_get_metric(id: u32, value: *mut u64) -> u32;
        pub fn proxy_set_buffer_bytes(
            kind: u32,
            start: usize,
            size: usize,
            data: *const u8,
            len: usize,
        ) -> u32;
        pub fn proxy_call_foreign_function(
            name: *const u8,
            name_len: usize,
            args: *const u8,
            args_len: usize,
            out: *mut *mut u8,
            out_len: *mut usize,
        ) -> u32;
        pub fn proxy_continue_stream(kind: u32) -> u32;
        pub fn proxy_close_stream(kind: u32) -> u32;
        pub fn proxy_resolve_shared_queue(
            vm_id: *const u8,
            vm_id_len: usize,
            name: *const u8,
            name_len: usize,
            id: *mut u32,
        ) -> u32;
    }
}

pub fn define(kind: u32, name: &str) -> (u32, u32) {
    let mut id = 0;
    // SAFETY: pointers to live locals and a string the call only reads.
    let status = unsafe { raw::proxy_define_metric(kind, name.as_ptr(), name.len(), &mut id) };
    (status, id)
}

fn get(id: u32) -> String {
    let mut value = 0;
    // SAFETY: a pointer to a live local.
    let status = unsafe { raw::proxy_get_metric(id, &mut value) };
    if status == 0 {
        format!("{value}")
    } else {
        format!("s{status}")
    }
}

fn increment(id: u32, delta: i64) -> u32 {
    // SAFETY: plain values.
    unsafe { raw::proxy_increment_metric(id, delta) }
}

fn record(id: u32, value: u64) -> u32 {
    // SAFETY: plain values.
    unsafe { raw::proxy_record_metric(id, value) }
}

/// Metrics at the edges: increments of 0 and below, a name defined twice, unknown ids of
/// each type tag, a type that does not exist, reads of a histogram.
pub fn metrics() -> String {
    let (_, counter) = define(MetricType::Counter as u32, "exerciser_edge_counter");
    let inc_zero = increment(counter, 0);
    let inc_negative = increment(counter, -1);
    let (redefine, again) = define(MetricType::Counter as u32, "exerciser_edge_counter");
    let inc_again = increment(again, 2);
    let read_first = get(counter);
    let (_, gauge) = define(MetricType::Gauge as u32, "exerciser_edge_gauge");
    let gauge_set = record(gauge, 7);
    let gauge_down = increment(gauge, -3);
    let gauge_zero = increment(gauge, 0);
    let (_, histogram) = define(MetricType::Histogram as u32, "exerciser_edge_histogram");
    let hist_record = record(histogram, 5);
    let hist_increment = increment(histogram, 1);
    let hist_get = get(histogram);
    let (bad_kind, _) = define(3, "exerciser_edge_bad_kind");
    format!(
        "inc0={inc_zero} incneg={inc_negative} redefine={redefine} same_id={} inc_again={inc_again} read={read_first} \
         gauge_set={gauge_set} gauge_down={gauge_down} gauge0={gauge_zero} gauge={} \
         hist_record={hist_record} hist_inc={hist_increment} hist_get={hist_get} bad_kind={bad_kind} \
         unknown_inc={},{},{},{} unknown_record={},{},{},{} unknown_get={},{},{},{}",
        again == counter,
        get(gauge),
        increment(1000, 1),
        increment(1001, 1),
        increment(1002, 1),
        increment(1003, 1),
        record(1000, 1),
        record(1001, 1),
        record(1002, 1),
        record(1003, 1),
        get(1000),
        get(1001),
        get(1002),
        get(1003),
    )
}

/// Header order after edits: a repeated name replaced, a name added again, a new name set.
pub fn header_order() -> String {
    let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, "x-b", Some("new"));
    let _ = hostcalls::add_map_value(MapType::HttpRequestHeaders, "x-a", "again");
    let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, "x-d", Some("set"));
    let _ = hostcalls::set_map_value(MapType::HttpRequestHeaders, "x-c", Some("3"));
    let map = hostcalls::get_map(MapType::HttpRequestHeaders).unwrap_or_default();
    let order: Vec<String> = map
        .iter()
        // Only the client's names and the pseudo-headers: Envoy's connection manager adds
        // `x-request-id` and `x-forwarded-proto` before any filter runs.
        .filter(|(name, _)| {
            ["x-a", "x-b", "x-c", "x-d"].contains(&name.as_str()) || name.starts_with(':')
        })
        .map(|(name, value)| {
            if name.starts_with("x-") {
                format!("{name}={value}")
            } else {
                name.clone()
            }
        })
        .collect();
    order.join(",")
}

fn splice(kind: BufferType, start: usize, size: usize, data: &[u8]) -> u32 {
    // SAFETY: a slice the call only reads.
    unsafe { raw::proxy_set_buffer_bytes(kind as u32, start, size, data.as_ptr(), data.len()) }
}

/// Body splices that keep the length (the upstream got `content-length` already): from 0
/// over part of the body, in the middle, and at the end.
pub fn splice_request_body(size: usize) -> String {
    let from_start = splice(BufferType::HttpRequestBody, 0, 5, b"HOWDY");
    let middle = splice(BufferType::HttpRequestBody, 3, 2, b"ZZ");
    let at_end = splice(BufferType::HttpRequestBody, size, 0, b"");
    format!("start={from_start} middle={middle} end={at_end}")
}

/// A partial splice of the response body from 0: two bytes replaced by two.
pub fn splice_response_body() -> u32 {
    splice(BufferType::HttpResponseBody, 0, 2, b"XY")
}

fn foreign(name: &str, args: &[u8]) -> (u32, Vec<u8>) {
    let mut out: *mut u8 = std::ptr::null_mut();
    let mut len = 0usize;
    // SAFETY: the host allocates `out` with this module's allocator; taken over below.
    let status = unsafe {
        raw::proxy_call_foreign_function(
            name.as_ptr(),
            name.len(),
            args.as_ptr(),
            args.len(),
            &mut out,
            &mut len,
        )
    };
    let bytes = if status == 0 && !out.is_null() {
        // SAFETY: `len` bytes the host allocated for us.
        unsafe { Vec::from_raw_parts(out, len, len) }
    } else {
        Vec::new()
    };
    (status, bytes)
}

/// Envoy's `compress` / `uncompress`, and a name nobody provides.
pub fn foreign_functions() -> String {
    let text = b"hello hello hello hello hello hello";
    let (compress, packed) = foreign("compress", text);
    let (uncompress, unpacked) = foreign("uncompress", &packed);
    let (garbage, _) = foreign("uncompress", b"not zlib at all");
    let (unknown, _) = foreign("no_such_function", b"");
    let header: Vec<String> = packed.iter().take(2).map(|b| format!("{b:02x}")).collect();
    format!(
        "compress={compress} header={} roundtrip={} uncompress={uncompress} garbage={garbage} unknown={unknown}",
        header.join(""),
        unpacked == text
    )
}

/// A protobuf length-delimited field (short values only).
fn proto_field(field: u8, value: &[u8]) -> Vec<u8> {
    let mut out = vec![(field << 3) | 2, value.len() as u8];
    out.extend_from_slice(value);
    out
}

/// Envoy's other foreign functions called with arguments they cannot use: bytes that are
/// no protobuf message, an empty message, a 2-byte expression token, an unknown token, a
/// filter-state object nobody registered, a property declared twice.
pub fn foreign_edges() -> String {
    let garbage: &[u8] = &[0xff];
    let declared = proto_field(1, b"weir_declared");
    let mut filter_state = proto_field(1, b"weir.no_such_object");
    filter_state.extend(proto_field(2, b"x"));
    let status = |name: &str, args: &[u8]| foreign(name, args).0;
    format!(
        "declare_garbage={} declare={} declare_again={} state_garbage={} state_unknown={} \
         eval_short={} eval_unknown={} delete_short={} delete={} sign_garbage={} sign_empty={} \
         verify_garbage={} verify_empty={}",
        status("declare_property", garbage),
        status("declare_property", &declared),
        status("declare_property", &declared),
        status("set_envoy_filter_state", garbage),
        status("set_envoy_filter_state", &filter_state),
        status("expr_evaluate", &[1, 0]),
        status("expr_evaluate", &12_345u32.to_le_bytes()),
        status("expr_delete", &[1, 0]),
        status("expr_delete", &12_345u32.to_le_bytes()),
        status("sign", garbage),
        status("sign", b""),
        status("verify_signature", garbage),
        status("verify_signature", b""),
    )
}

/// `proxy_resolve_shared_queue` with an empty and with a foreign VM id.
pub fn resolve_queue(name: &str) -> String {
    let resolve = |vm_id: &str| {
        let mut id = 0;
        // SAFETY: strings the call only reads, a pointer to a live local.
        unsafe {
            raw::proxy_resolve_shared_queue(
                vm_id.as_ptr(),
                vm_id.len(),
                name.as_ptr(),
                name.len(),
                &mut id,
            )
        }
    };
    format!("empty={} other={}", resolve(""), resolve("some-other-vm"))
}

/// A callout with a body and no `content-length` header; the SDK's own call, whose
/// statuses it knows (`BadArgument`, `InternalFailure`).
pub fn callout(path: &str, body: &[u8], timeout: Duration) -> String {
    let headers = vec![
        (":method", "POST"),
        (":path", path),
        (":authority", "authz"),
    ];
    match hostcalls::dispatch_http_call("authz", headers, Some(body), vec![], timeout) {
        Ok(_) => "dispatched".to_owned(),
        Err(status) => format!("refused {status:?}"),
    }
}

/// Continue and close of stream types an HTTP stream does not have, and of unknown types
/// (raw statuses; the HTTP request's own continue is not asked for: it is not paused).
pub fn stream_statuses() -> String {
    // SAFETY: plain values.
    let (continue_upstream, continue_downstream, close_downstream, continue_unknown, close_unknown) = unsafe {
        (
            raw::proxy_continue_stream(3),
            raw::proxy_continue_stream(2),
            raw::proxy_close_stream(2),
            raw::proxy_continue_stream(9),
            raw::proxy_close_stream(9),
        )
    };
    format!(
        "continue_upstream={continue_upstream} continue_downstream={continue_downstream} \
         close_downstream={close_downstream} continue_unknown={continue_unknown} close_unknown={close_unknown}"
    )
}

/// The properties Envoy derives per stream, as `on_log` sees them.
pub fn stream_properties() -> String {
    let get = |path: Vec<&str>| hostcalls::get_property(path).ok().flatten();
    let code = match get(vec!["response", "code"]) {
        Some(bytes) if bytes.len() == 8 => {
            let mut raw = [0u8; 8];
            raw.copy_from_slice(&bytes);
            i64::from_le_bytes(raw).to_string()
        }
        Some(bytes) => format!("{bytes:?}"),
        None => "absent".to_owned(),
    };
    let text = |path: Vec<&str>| match get(path) {
        Some(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        None => "absent".to_owned(),
    };
    let upstream = if get(vec!["upstream", "address"]).is_some() {
        "present"
    } else {
        "absent"
    };
    format!(
        "code={code} details={} upstream={upstream}",
        text(vec!["response", "code_details"])
    )
}

/// Remembers a paused stream for the root's next tick.
pub fn wait_for_tick(context_id: u32) {
    WAITING_FOR_TICK.with(|waiting| waiting.borrow_mut().push(context_id));
}

/// Resumes streams waiting for a tick, from the root context.
pub fn resume_waiting(by: &str) {
    let waiting: Vec<u32> =
        WAITING_FOR_TICK.with(|waiting| waiting.borrow_mut().drain(..).collect());
    for context in waiting {
        resume(context, by);
    }
}

/// From a root callback: act on stream `context` and let its request go on.
pub fn resume(context: u32, by: &str) {
    let switched = hostcalls::set_effective_context(context);
    let _ = hostcalls::add_map_value(MapType::HttpRequestHeaders, "x-resumed-by", by);
    let resumed = hostcalls::resume_http_request();
    crate::log(
        proxy_wasm::types::LogLevel::Info,
        &format!("exerciser: resumed {context} from {by}: {switched:?} {resumed:?}"),
    );
}

/// Adds one to a shared-data counter, retrying on a CAS mismatch (VMs start one by one in
/// Envoy, but the retry costs nothing).
pub fn count(key: &str) {
    for _ in 0..10 {
        let (value, cas) = hostcalls::get_shared_data(key).unwrap_or((None, None));
        let now: u32 = value
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if hostcalls::set_shared_data(key, Some((now + 1).to_string().as_bytes()), cas).is_ok() {
            return;
        }
    }
}

/// A shared-data counter's value.
pub fn counted(key: &str) -> String {
    let (value, _) = hostcalls::get_shared_data(key).unwrap_or((None, None));
    value
        .map(|v| String::from_utf8_lossy(&v).into_owned())
        .unwrap_or_else(|| "0".to_owned())
}

/// The timeout of the callout-timeout probe: above `i32::MAX` milliseconds, as Envoy reads it.
pub const HUGE_TIMEOUT: Duration = Duration::from_millis(3_000_000_000);

/// In the response phase (`x-report-maps` requests): the request's header map, answered
/// with raw statuses. Envoy forgets it once its callback returned `Continue` or the plugin
/// resumed the request, so this shows whether anything is left to read, size or write.
pub fn request_headers_later() -> String {
    use crate::trailer_probes::{map_add, map_size, map_value};
    let map = MapType::HttpRequestHeaders;
    let pairs = hostcalls::get_map(map)
        .map(|pairs| pairs.len().to_string())
        .unwrap_or_else(|status| format!("{status:?}"));
    format!(
        "get={} pairs={pairs} size={} add={}",
        map_value(map, ":method"),
        map_size(map),
        map_add(map, "x-late", "no")
    )
}
