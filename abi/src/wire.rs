//! Wire formats: serialized header maps and property paths.
//!
//! Maps: `u32 count`, then `count × (u32 key_len, u32 value_len)`, then each key and each
//! value followed by a `\0`; all integers little-endian. An empty map is either zero bytes
//! or a zero count. Property paths: segments joined by `\0`.

use alloc::vec::Vec;
use core::fmt;

/// One decoded `(key, value)` entry, borrowed from the serialized bytes.
pub type Pair<'a> = (&'a [u8], &'a [u8]);

/// Why serialized bytes could not be decoded.
#[derive(Copy, Clone, Eq, PartialEq, Debug)]
pub enum WireError {
    /// The input ends before the data its header announces.
    Truncated,
    /// A key or value is not followed by the `\0` the format requires.
    MissingNul,
    /// Bytes remain after the last announced entry.
    TrailingBytes,
    /// A length does not fit the format's `u32` fields.
    TooLarge,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WireError::Truncated => "serialized map is shorter than its header announces",
            WireError::MissingNul => "serialized map entry is not terminated by \\0",
            WireError::TrailingBytes => "serialized map has bytes after its last entry",
            WireError::TooLarge => "map or entry is larger than u32::MAX bytes",
        })
    }
}

impl core::error::Error for WireError {}

/// Size in bytes of the encoding of `pairs`, `None` if it exceeds `u32` limits.
pub fn encoded_map_len<K: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(K, V)]) -> Option<usize> {
    let mut size = 4usize.checked_add(pairs.len().checked_mul(8)?)?;
    for (key, value) in pairs {
        size = size
            .checked_add(key.as_ref().len())?
            .checked_add(value.as_ref().len())?
            .checked_add(2)?;
    }
    u32::try_from(pairs.len()).ok()?;
    Some(size)
}

/// Encodes a header map, failing if a length does not fit the format's `u32` fields.
pub fn try_encode_map<I, K, V>(pairs: I) -> Result<Vec<u8>, WireError>
where
    I: IntoIterator<Item = (K, V)>,
    K: AsRef<[u8]>,
    V: AsRef<[u8]>,
{
    let pairs: Vec<(K, V)> = pairs.into_iter().collect();
    let size = encoded_map_len(&pairs).ok_or(WireError::TooLarge)?;
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (key, value) in &pairs {
        let key_len = u32::try_from(key.as_ref().len()).map_err(|_| WireError::TooLarge)?;
        let value_len = u32::try_from(value.as_ref().len()).map_err(|_| WireError::TooLarge)?;
        out.extend_from_slice(&key_len.to_le_bytes());
        out.extend_from_slice(&value_len.to_le_bytes());
    }
    for (key, value) in &pairs {
        out.extend_from_slice(key.as_ref());
        out.push(0);
        out.extend_from_slice(value.as_ref());
        out.push(0);
    }
    Ok(out)
}

fn read_u32(bytes: &[u8], at: usize) -> Result<usize, WireError> {
    let end = at.checked_add(4).ok_or(WireError::Truncated)?;
    let field = bytes.get(at..end).ok_or(WireError::Truncated)?;
    let mut raw = [0u8; 4];
    raw.copy_from_slice(field);
    Ok(u32::from_le_bytes(raw) as usize)
}

/// Decodes a header map into borrowed `(key, value)` byte slices, in order.
///
/// Accepts an empty input and a lone zero count as the empty map. Any inconsistency
/// (lengths past the end, missing `\0`, bytes left over) is an error.
pub fn decode_map(bytes: &[u8]) -> Result<Vec<Pair<'_>>, WireError> {
    // The spec also allows a single 0x00 byte for the empty map.
    if bytes.is_empty() || bytes == [0] {
        return Ok(Vec::new());
    }
    let count = read_u32(bytes, 0)?;
    let header_end = count
        .checked_mul(8)
        .and_then(|n| n.checked_add(4))
        .ok_or(WireError::Truncated)?;
    if header_end > bytes.len() {
        return Err(WireError::Truncated);
    }
    let mut pairs = Vec::with_capacity(count);
    let mut data = header_end;
    let mut take = |len: usize| -> Result<&[u8], WireError> {
        let end = data.checked_add(len).ok_or(WireError::Truncated)?;
        let slice = bytes.get(data..end).ok_or(WireError::Truncated)?;
        match bytes.get(end) {
            Some(0) => {}
            Some(_) => return Err(WireError::MissingNul),
            None => return Err(WireError::Truncated),
        }
        data = end + 1;
        Ok(slice)
    };
    for index in 0..count {
        let key_len = read_u32(bytes, 4 + index * 8)?;
        let value_len = read_u32(bytes, 8 + index * 8)?;
        let key = take(key_len)?;
        let value = take(value_len)?;
        pairs.push((key, value));
    }
    if data != bytes.len() {
        return Err(WireError::TrailingBytes);
    }
    Ok(pairs)
}

/// Encodes a property path such as `["request", "headers", "host"]`.
pub fn encode_path<I, S>(segments: I) -> Vec<u8>
where
    I: IntoIterator<Item = S>,
    S: AsRef<[u8]>,
{
    let mut out = Vec::new();
    for (index, segment) in segments.into_iter().enumerate() {
        if index > 0 {
            out.push(0);
        }
        out.extend_from_slice(segment.as_ref());
    }
    out
}

/// Splits a property path into its segments. One trailing `\0` is tolerated, as some SDKs
/// terminate every segment; the empty path has no segments.
pub fn decode_path(bytes: &[u8]) -> Vec<&[u8]> {
    let bytes = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    if bytes.is_empty() {
        return Vec::new();
    }
    bytes.split(|b| *b == 0).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn map_round_trips_in_order_with_duplicates_and_binary() {
        let pairs: Vec<(&[u8], &[u8])> = vec![
            (b"a", b"1"),
            (b"b", b"22"),
            (b"a", b""),
            (b"bin", &[0xff, 1]),
        ];
        let bytes = try_encode_map(pairs.iter().copied()).unwrap();
        assert_eq!(bytes.len(), encoded_map_len(&pairs).unwrap());
        assert_eq!(decode_map(&bytes).unwrap(), pairs);
    }

    #[test]
    fn map_layout_matches_the_spec_example() {
        let bytes = try_encode_map([("a", "1"), ("b", "22")]).unwrap();
        let mut expected = vec![2, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0];
        expected.extend_from_slice(b"a\x001\x00b\x0022\x00");
        assert_eq!(bytes, expected);
    }

    #[test]
    fn empty_map_forms_all_decode() {
        assert!(decode_map(&[]).unwrap().is_empty());
        assert!(decode_map(&[0]).unwrap().is_empty());
        assert!(decode_map(&[0, 0, 0, 0]).unwrap().is_empty());
        assert_eq!(
            try_encode_map::<_, &str, &str>([]).unwrap(),
            vec![0, 0, 0, 0]
        );
    }

    #[test]
    fn malformed_maps_are_errors() {
        let good = try_encode_map([("key", "value")]).unwrap();
        for cut in 1..good.len() {
            assert!(decode_map(&good[..cut]).is_err(), "prefix of {cut} bytes");
        }
        let mut no_nul = good.clone();
        let nul_after_key = 4 + 8 + 3;
        no_nul[nul_after_key] = b'x';
        assert_eq!(decode_map(&no_nul), Err(WireError::MissingNul));
        let mut trailing = good.clone();
        trailing.push(0);
        assert_eq!(decode_map(&trailing), Err(WireError::TrailingBytes));
        // A count announcing 2^32-1 entries must not allocate or overflow.
        assert_eq!(
            decode_map(&[0xff, 0xff, 0xff, 0xff, 1]),
            Err(WireError::Truncated)
        );
        // Lengths near u32::MAX must not overflow offsets.
        let huge = [
            1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0,
        ];
        assert_eq!(decode_map(&huge), Err(WireError::Truncated));
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics() {
        // A small deterministic generator stands in for a fuzzer.
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..20_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 40) as usize;
            let bytes: Vec<u8> = (0..len).map(|i| (state >> (i % 8 * 8)) as u8 % 4).collect();
            let _ = decode_map(&bytes);
            let _ = decode_path(&bytes);
        }
    }

    #[test]
    fn paths_round_trip_and_tolerate_a_trailing_nul() {
        let bytes = encode_path(["request", "headers", "x-id"]);
        assert_eq!(bytes, b"request\0headers\0x-id");
        let segments: Vec<&[u8]> = vec![b"request", b"headers", b"x-id"];
        assert_eq!(decode_path(&bytes), segments);
        assert_eq!(decode_path(b"plugin_name\0"), vec![&b"plugin_name"[..]]);
        assert!(decode_path(b"").is_empty());
    }

    #[test]
    fn enums_convert_from_raw_values() {
        use crate::*;
        for status in Status::ALL {
            assert_eq!(Status::from_u32(*status as u32), Some(*status));
        }
        assert_eq!(Status::from_u32(5), None);
        assert_eq!(
            MapType::from_u32(7),
            Some(MapType::HttpCallResponseTrailers)
        );
        assert_eq!(MapType::from_u32(8), None);
        assert_eq!(BufferType::ALL.len(), 9);
        assert_eq!(MapType::ALL.len(), 8);
        assert_eq!(u32::from(LogLevel::Critical), 5);
    }
}
