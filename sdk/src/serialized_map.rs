//! Host maps (headers, trailers, metadata, a callout's response headers) read in one call.
//! HTTP headers and the answers of HTTP and gRPC calls all use it, so it belongs to none of
//! them.

use crate::error::{Error, HostStatus, Result};
use std::ops::Range;
use weir_abi::wire::{self, Pair};
use weir_abi::{HostFunction, MapType};

/// A map as the host serialized it, read with one call and decoded in place by
/// [`weir_abi::wire`]: proxy-wasm's reader gives every name and value an allocation of its
/// own (about 1,500 Wasm instructions per header) and panics on a name that is not UTF-8.
#[derive(Debug)]
pub(crate) struct SerializedMap(Vec<u8>);

impl SerializedMap {
    const CALL: HostFunction = HostFunction::GetHeaderMapPairs;

    pub(crate) fn read(map: MapType) -> Result<Self> {
        #[link(wasm_import_module = "env")]
        extern "C" {
            fn proxy_get_header_map_pairs(
                map: MapType,
                data: *mut *mut u8,
                size: *mut usize,
            ) -> u32;
        }
        let (mut data, mut size) = (std::ptr::null_mut::<u8>(), 0usize);
        // SAFETY: the host writes a pointer and a size to the two slots; a non-null pointer
        // is memory it allocated through this module's allocator (proxy-wasm's
        // `proxy_on_memory_allocate`, a `Vec<u8>` of capacity `size`), now ours to free.
        match unsafe { proxy_get_header_map_pairs(map, &mut data, &mut size) } {
            0 if data.is_null() => Ok(SerializedMap(Vec::new())),
            0 => Ok(SerializedMap(unsafe {
                Vec::from_raw_parts(data, size, size)
            })),
            1 => Err(Error::host(Self::CALL, HostStatus::NotFound)),
            2 => Err(Error::host(Self::CALL, HostStatus::BadArgument)),
            _ => Err(Error::host(Self::CALL, HostStatus::InternalFailure)),
        }
    }

    pub(crate) fn pairs(&self) -> Result<Vec<Pair<'_>>> {
        wire::decode_map(&self.0)
            .map_err(|_| Error::host(Self::CALL, HostStatus::SerializationFailure))
    }

    /// The bytes the host wrote, which [`Self::pairs`] and [`Self::ranges_of`] point into.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.0
    }

    /// Where the values of `name` (any case) lie in this map's bytes; `pairs` are its own.
    pub(crate) fn ranges_of(&self, pairs: &[Pair<'_>], name: &str) -> Vec<Range<usize>> {
        let base = self.0.as_ptr() as usize;
        pairs
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| {
                let start = v.as_ptr() as usize - base;
                start..start + v.len()
            })
            .collect()
    }
}
