//! What `on_log` can read once a stream ended: the attributes Envoy computes per request
//! and the header maps, reported with raw statuses so a missing map shows as the host
//! answers it.

use proxy_wasm::hostcalls;

/// Also used by `trailer_probes`.
pub(crate) mod raw {
    #[link(wasm_import_module = "env")]
    extern "C" {
        pub fn proxy_get_header_map_pairs(map: u32, out: *mut *mut u8, out_len: *mut usize) -> u32;
        pub fn proxy_get_header_map_value(
            map: u32,
            key: *const u8,
            key_len: usize,
            out: *mut *mut u8,
            out_len: *mut usize,
        ) -> u32;
    }
}

/// Map types of the ABI.
const REQUEST_TRAILERS: u32 = 1;
const RESPONSE_HEADERS: u32 = 2;
const RESPONSE_TRAILERS: u32 = 3;

fn get(path: &[&str]) -> Option<Vec<u8>> {
    hostcalls::get_property(path.to_vec()).ok().flatten()
}

/// An 8-byte integer attribute with its value.
fn int(path: &[&str]) -> String {
    match get(path) {
        Some(bytes) if bytes.len() == 8 => {
            let mut raw = [0u8; 8];
            raw.copy_from_slice(&bytes);
            i64::from_le_bytes(raw).to_string()
        }
        Some(bytes) => format!("bytes{}", bytes.len()),
        None => "absent".to_owned(),
    }
}

/// An 8-byte attribute whose value depends on timing or on ports: its presence and size.
fn int_shape(path: &[&str]) -> &'static str {
    match get(path) {
        Some(bytes) if bytes.len() == 8 => "int",
        Some(_) => "other",
        None => "absent",
    }
}

/// A string attribute whose value depends on ports: present or not.
fn text_shape(path: &[&str]) -> &'static str {
    match get(path) {
        Some(bytes) if bytes.is_empty() => "empty",
        Some(_) => "text",
        None => "absent",
    }
}

fn text(path: &[&str]) -> String {
    match get(path) {
        Some(bytes) => format!("{:?}", String::from_utf8_lossy(&bytes)),
        None => "absent".to_owned(),
    }
}

/// The attributes Envoy derives per request, deterministic ones by value.
pub fn attributes() -> String {
    format!(
        "flags={} req_size={} resp_size={} req_total={} resp_total={} duration={} \
         up_port={} up_local={} up_failure={} attempts={} latency={}",
        int(&["response", "flags"]),
        int(&["request", "size"]),
        int(&["response", "size"]),
        int_shape(&["request", "total_size"]),
        int_shape(&["response", "total_size"]),
        int_shape(&["request", "duration"]),
        int_shape(&["upstream", "port"]),
        text_shape(&["upstream", "local_address"]),
        text(&["upstream", "transport_failure_reason"]),
        int(&["upstream", "request_attempt_count"]),
        int_shape(&["response", "backend_latency"]),
    )
}

fn pairs(map: u32) -> String {
    let mut out: *mut u8 = std::ptr::null_mut();
    let mut len = 0usize;
    // SAFETY: pointers to live locals; the host allocates `out` with our allocator.
    let status = unsafe { raw::proxy_get_header_map_pairs(map, &mut out, &mut len) };
    if !out.is_null() {
        // SAFETY: `len` bytes the host allocated for us, freed here.
        drop(unsafe { Vec::from_raw_parts(out, len, len) });
    }
    // Envoy passes no buffer for an empty map; a length above an empty map's encoding
    // depends on headers Envoy adds with changing values.
    let len = if len <= 4 {
        len.to_string()
    } else {
        "some".to_owned()
    };
    format!("{status}/{len}")
}

fn value(map: u32, key: &str) -> u32 {
    let mut out: *mut u8 = std::ptr::null_mut();
    let mut len = 0usize;
    // SAFETY: a string the call only reads, pointers to live locals.
    let status = unsafe {
        raw::proxy_get_header_map_value(map, key.as_ptr(), key.len(), &mut out, &mut len)
    };
    if !out.is_null() {
        // SAFETY: `len` bytes the host allocated for us, freed here.
        drop(unsafe { Vec::from_raw_parts(out, len, len) });
    }
    status
}

/// Raw statuses of reads of the response maps and the request trailers (`pairs` as
/// `status/serialized length`): in a stream whose client left before any response, the
/// response maps do not exist.
pub fn maps() -> String {
    format!(
        "resp_pairs={} resp_get={} resp_trailers={} resp_trailer_get={} req_trailer_get={}",
        pairs(RESPONSE_HEADERS),
        value(RESPONSE_HEADERS, ":status"),
        pairs(RESPONSE_TRAILERS),
        value(RESPONSE_TRAILERS, "x-none"),
        value(REQUEST_TRAILERS, "x-none"),
    )
}
