//! Trailers, under `/probe/trailers-…` (HTTP/2 scenarios): every callback logs what the
//! trailer maps answer there, with raw statuses, so a scenario pins Envoy's answers both
//! where a map exists and where it does not (yet, or any more).
//!
//! - `/probe/trailers-pass`: the client's and the upstream's trailers reach
//!   `on_*_trailers`, which add `x-*-added`, replace `x-*-replace` and remove `x-*-remove`.
//! - `/probe/trailers-add`: no trailers come; the last body callback of each direction
//!   (the body buffered until then) adds one, which Envoy creates then
//!   (`addDecodedTrailers` / `addEncodedTrailers`).
//!
//! Log lines start `exerciser: trailers <callback>`; `on_log` reads both maps once more.

use proxy_wasm::hostcalls;
use proxy_wasm::types::{Action, MapType};

mod raw {
    #[link(wasm_import_module = "env")]
    extern "C" {
        pub fn proxy_get_header_map_size(map: u32, size: *mut usize) -> u32;
        pub fn proxy_add_header_map_value(
            map: u32,
            key: *const u8,
            key_len: usize,
            value: *const u8,
            value_len: usize,
        ) -> u32;
        pub fn proxy_replace_header_map_value(
            map: u32,
            key: *const u8,
            key_len: usize,
            value: *const u8,
            value_len: usize,
        ) -> u32;
        pub fn proxy_remove_header_map_value(map: u32, key: *const u8, key_len: usize) -> u32;
    }
}

/// `proxy_add_header_map_value` or `proxy_replace_header_map_value`.
type Write = unsafe extern "C" fn(u32, *const u8, usize, *const u8, usize) -> u32;

/// Which direction's trailers.
#[derive(Clone, Copy)]
pub enum Side {
    Request,
    Response,
}

impl Side {
    fn map(self) -> MapType {
        match self {
            Side::Request => MapType::HttpRequestTrailers,
            Side::Response => MapType::HttpResponseTrailers,
        }
    }

    /// The prefix of the names the plugin touches in this direction.
    fn prefix(self) -> &'static str {
        match self {
            Side::Request => "x-t",
            Side::Response => "x-rt",
        }
    }
}

fn log(message: &str) {
    crate::log(
        proxy_wasm::types::LogLevel::Info,
        &format!("exerciser: trailers {message}"),
    );
}

/// `status` or `0:value`.
fn value(side: Side, key: &str) -> String {
    map_value(side.map(), key)
}

/// `status` or `0:value` for any header map (also `probes::request_headers_later`).
pub(crate) fn map_value(map: MapType, key: &str) -> String {
    let mut out: *mut u8 = std::ptr::null_mut();
    let mut len = 0usize;
    // SAFETY: a string the call only reads, pointers to live locals.
    let status = unsafe {
        crate::log_probes::raw::proxy_get_header_map_value(
            map as u32,
            key.as_ptr(),
            key.len(),
            &mut out,
            &mut len,
        )
    };
    if out.is_null() {
        return status.to_string();
    }
    // SAFETY: `len` bytes the host allocated for us, taken over here.
    let bytes = unsafe { Vec::from_raw_parts(out, len, len) };
    format!("{status}:{}", String::from_utf8_lossy(&bytes))
}

/// `[name=value,…]` as `proxy_get_header_map_pairs` gives them (always `Ok`).
fn pairs(side: Side) -> String {
    let map = hostcalls::get_map(side.map()).unwrap_or_default();
    let fields: Vec<String> = map.iter().map(|(n, v)| format!("{n}={v}")).collect();
    format!("[{}]", fields.join(","))
}

/// `status` or `0:size` (Envoy's size of a map is its bytes of names and values).
fn size(side: Side) -> String {
    map_size(side.map())
}

/// `status` or `0:size` for any header map.
pub(crate) fn map_size(map: MapType) -> String {
    let mut size = 0usize;
    // SAFETY: a pointer to a live local.
    let status = unsafe { raw::proxy_get_header_map_size(map as u32, &mut size) };
    match status {
        0 => format!("0:{size}"),
        other => other.to_string(),
    }
}

fn write(call: Write, map: MapType, key: &str, value: &str) -> u32 {
    // SAFETY: strings the call only reads.
    unsafe {
        call(
            map as u32,
            key.as_ptr(),
            key.len(),
            value.as_ptr(),
            value.len(),
        )
    }
}

fn add(side: Side, key: &str, value: &str) -> u32 {
    map_add(side.map(), key, value)
}

/// `proxy_add_header_map_value`'s status, for any header map.
pub(crate) fn map_add(map: MapType, key: &str, value: &str) -> u32 {
    write(raw::proxy_add_header_map_value, map, key, value)
}

fn replace(side: Side, key: &str, value: &str) -> u32 {
    write(raw::proxy_replace_header_map_value, side.map(), key, value)
}

fn remove(side: Side, key: &str) -> u32 {
    // SAFETY: a string the call only reads.
    unsafe { raw::proxy_remove_header_map_value(side.map() as u32, key.as_ptr(), key.len()) }
}

/// Reads of both maps, and writes that must not create one: from a callback where the
/// map named does not exist (headers, a body chunk that is not the last).
pub fn outside(callback: &str, write: Side) {
    let other = match write {
        Side::Request => Side::Response,
        Side::Response => Side::Request,
    };
    let name = format!("{}-early", write.prefix());
    log(&format!(
        "{callback} {w}: get={} pairs={} size={} add={} replace={} remove={} then={} {o}: get={} pairs={}",
        value(write, "x-none"),
        pairs(write),
        size(write),
        add(write, &name, "no"),
        replace(write, &name, "no"),
        remove(write, &name),
        pairs(write),
        value(other, "x-none"),
        pairs(other),
        w = write.prefix(),
        o = other.prefix(),
    ));
}

/// In `on_*_trailers`: the trailers as they came, then edited.
pub fn edit(side: Side) {
    let p = side.prefix();
    let before = pairs(side);
    let got = value(side, &format!("{p}1"));
    let added = add(side, &format!("{p}-added"), "plugin");
    let replaced = replace(side, &format!("{p}-replace"), "new");
    let removed = remove(side, &format!("{p}-remove"));
    let missing = value(side, "x-none");
    log(&format!(
        "on_{}_trailers got={before} first={got} add={added} replace={replaced} remove={removed} missing={missing} now={} size={}",
        match side {
            Side::Request => "request",
            Side::Response => "response",
        },
        pairs(side),
        size(side),
    ));
}

/// In the last body callback: the map does not exist until a write creates it.
pub fn add_in_last_body(callback: &str, side: Side) {
    let p = side.prefix();
    let other = match side {
        Side::Request => Side::Response,
        Side::Response => Side::Request,
    };
    let before = value(side, "x-none");
    let pairs_before = pairs(side);
    // Envoy sizes the writable map, so this already creates it (empty).
    let size_before = size(side);
    let missing = value(side, "x-none");
    let other_add = add(other, &format!("{}-wrong", other.prefix()), "no");
    let added = add(side, &format!("{p}-added"), "in-body");
    let after = value(side, &format!("{p}-added"));
    log(&format!(
        "{callback} last: get={before} pairs={pairs_before} size={size_before} then_get={missing} other_add={other_add} add={added} get_after={after} now={} size={}",
        pairs(side),
        size(side),
    ));
}

/// In a callout's response callback: `proxy_get_header_map_size` of its headers and
/// trailers (raw statuses; Envoy sizes only the stream's own maps).
pub fn callout_map_sizes() -> String {
    let status = |map: MapType| {
        let mut size = 0usize;
        // SAFETY: a pointer to a live local.
        unsafe { raw::proxy_get_header_map_size(map as u32, &mut size) }
    };
    format!(
        "headers={} trailers={}",
        status(MapType::HttpCallResponseHeaders),
        status(MapType::HttpCallResponseTrailers)
    )
}

/// In `on_log`: the maps Envoy hands its access loggers.
pub fn on_log() {
    log(&format!(
        "on_log req={} req_get={} resp={} resp_get={}",
        pairs(Side::Request),
        value(Side::Request, "x-none"),
        pairs(Side::Response),
        value(Side::Response, "x-none"),
    ));
}

impl crate::Stream {
    /// `/probe/trailers-pass` or `/probe/trailers-add`.
    pub(crate) fn trailer_probe(&self) -> Option<bool> {
        match self.path.as_str() {
            "/probe/trailers-pass" => Some(false),
            "/probe/trailers-add" => Some(true),
            _ => None,
        }
    }

    /// A body callback of a trailer probe: a chunk before trailers shows the maps from
    /// there; the adding probe buffers the body and adds trailers in the last callback.
    pub(crate) fn trailer_body(
        &self,
        side: Side,
        callback: &str,
        end_of_stream: bool,
    ) -> Option<Action> {
        let adds = self.trailer_probe()?;
        Some(match (adds, end_of_stream) {
            (false, false) => {
                outside(callback, side);
                Action::Continue
            }
            (true, false) => Action::Pause,
            (true, true) => {
                add_in_last_body(callback, side);
                Action::Continue
            }
            (false, true) => Action::Continue,
        })
    }
}
