//! Header and trailer maps of the current HTTP stream.
//!
//! A map is a handle, not a copy: every call goes to the host, so what a filter sets is what
//! the next filter (and the upstream or client) sees. Values are bytes on the wire; the
//! `String` accessors decode them lossily so a client sending non-UTF-8 cannot make a
//! plugin trap.

use super::parse::{bearer_token, Cookies, Query};
use crate::config::{HeaderName, HeaderValue};
use crate::error::{Error, HostResult, Result};
use proxy_wasm::hostcalls;
use std::marker::PhantomData;
use std::ops::Range;
use weir_abi::wire::Pair;
use weir_abi::HostFunction;
use weir_abi::MapType;

use crate::proxy_types::map_type;
use crate::serialized_map::SerializedMap;

/// Which host map a [`Headers`] handle reads and writes.
pub trait MapKind: sealed::Sealed {
    #[doc(hidden)]
    const MAP: MapType;
}

mod sealed {
    pub trait Sealed {}
}

macro_rules! map_kinds {
    ($($(#[$doc:meta])* $name:ident => $map:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Debug)]
        pub enum $name {}
        impl sealed::Sealed for $name {}
        impl MapKind for $name {
            const MAP: MapType = MapType::$map;
        }
    )*};
}

/// Marker types naming the four maps of an HTTP stream.
pub mod kind {
    use super::*;
    map_kinds! {
        /// The request's headers, including `:method`, `:path`, `:authority`, `:scheme`.
        Request => HttpRequestHeaders,
        /// The request's trailers.
        RequestTrailer => HttpRequestTrailers,
        /// The response's headers, including `:status`.
        Response => HttpResponseHeaders,
        /// The response's trailers.
        ResponseTrailer => HttpResponseTrailers,
    }
}

/// A header (or trailer) map of the stream being processed. See the aliases
/// [`RequestHeaders`], [`ResponseHeaders`], [`RequestTrailers`], [`ResponseTrailers`].
#[derive(Debug)]
pub struct Headers<M: MapKind> {
    end_of_stream: bool,
    _map: PhantomData<(M, *const ())>, // !Send: the handle is only valid inside its callback's VM
}

/// The request headers, given to [`HttpFilter::on_request_headers`](crate::HttpFilter::on_request_headers).
pub type RequestHeaders = Headers<kind::Request>;
/// The response headers, given to [`HttpFilter::on_response_headers`](crate::HttpFilter::on_response_headers).
pub type ResponseHeaders = Headers<kind::Response>;
/// The request trailers, given to [`HttpFilter::on_request_trailers`](crate::HttpFilter::on_request_trailers).
pub type RequestTrailers = Headers<kind::RequestTrailer>;
/// The response trailers, given to [`HttpFilter::on_response_trailers`](crate::HttpFilter::on_response_trailers).
pub type ResponseTrailers = Headers<kind::ResponseTrailer>;

impl<M: MapKind> Clone for Headers<M> {
    fn clone(&self) -> Self {
        *self
    }
}

// A handle names a map of the current stream and owns nothing, so copies are harmless.
impl<M: MapKind> Copy for Headers<M> {}

impl<M: MapKind> Headers<M> {
    pub(crate) fn new(end_of_stream: bool) -> Self {
        Headers {
            end_of_stream,
            _map: PhantomData,
        }
    }

    /// A copy of this handle for a [`Flow::wait`](crate::Flow::wait) future to keep. It acts
    /// on the same stream whenever the SDK polls the future (only inside this stream's
    /// callbacks, where the host has made the stream current).
    pub fn handle(&self) -> Self {
        *self
    }

    /// True when no body follows these headers (a headers-only request or response).
    pub fn end_of_stream(&self) -> bool {
        self.end_of_stream
    }

    /// The first value of `name` (decoded lossily), or `None` if absent.
    pub fn get(&self, name: &str) -> Result<Option<String>> {
        Ok(self
            .get_bytes(name)?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// The first value of `name` as raw bytes.
    pub fn get_bytes(&self, name: &str) -> Result<Option<Vec<u8>>> {
        hostcalls::get_map_value_bytes(map_type(M::MAP), name).host(HostFunction::GetHeaderMapValue)
    }

    /// Every value of `name`, in the order they arrived (a header may repeat).
    pub fn get_all(&self, name: &str) -> Result<Vec<String>> {
        Ok(self.get_values(name)?.to_strings())
    }

    /// [`Headers::get_all`] without a copy per value: the values stay in the one copy of the
    /// map the host wrote, and [`HeaderValues::only`] picks out a single one.
    pub fn get_values(&self, name: &str) -> Result<HeaderValues> {
        let map = SerializedMap::read(M::MAP)?;
        let ranges = map.ranges_of(&map.pairs()?, name);
        Ok(HeaderValues { map, ranges })
    }

    /// [`Headers::get_all`] and [`Headers::remove_lookalikes`] in one read of the map: the
    /// values `name` had, after removing it and every spelling an upstream reads as the same.
    /// How a plugin consumes a credential header it must not pass on.
    pub fn take_all(&self, name: &str) -> Result<Vec<String>> {
        Ok(self.take_values(name)?.to_strings())
    }

    /// [`Headers::take_all`] without a copy per value (see [`Headers::get_values`]): what a
    /// plugin on the request path uses to consume a credential, such as a token of a few
    /// hundred bytes it only needs to read once.
    pub fn take_values(&self, name: &str) -> Result<HeaderValues> {
        let map = SerializedMap::read(M::MAP)?;
        let pairs = map.pairs()?;
        self.remove_lookalikes_in(&pairs, name)?;
        let ranges = map.ranges_of(&pairs, name);
        Ok(HeaderValues { map, ranges })
    }

    /// True if `name` is present.
    pub fn contains(&self, name: &str) -> Result<bool> {
        Ok(self.get_bytes(name)?.is_some())
    }

    /// Every `(name, value)` pair, in order, values decoded lossily.
    pub fn entries(&self) -> Result<Vec<(String, String)>> {
        Ok(self
            .entries_bytes()?
            .into_iter()
            .map(|(k, v)| (k, lossy(v)))
            .collect())
    }

    /// Every `(name, value)` pair, in order, values as bytes.
    pub fn entries_bytes(&self) -> Result<Vec<(String, Vec<u8>)>> {
        let map = SerializedMap::read(M::MAP)?;
        Ok(map
            .pairs()?
            .into_iter()
            .map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), v.to_vec()))
            .collect())
    }

    /// Replaces every value of `name` with `value` (adds it if absent).
    pub fn set(&self, name: &str, value: impl AsRef<[u8]>) -> Result<()> {
        let value = checked(name, value.as_ref())?;
        hostcalls::set_map_value_bytes(map_type(M::MAP), name, Some(value))
            .host(HostFunction::ReplaceHeaderMapValue)
    }

    /// Adds one more value for `name`, keeping existing ones.
    pub fn add(&self, name: &str, value: impl AsRef<[u8]>) -> Result<()> {
        let value = checked(name, value.as_ref())?;
        hostcalls::add_map_value_bytes(map_type(M::MAP), name, value)
            .host(HostFunction::AddHeaderMapValue)
    }

    /// [`Headers::set`] for a value checked when it was made (configuration fields): no
    /// scan of the value on every request.
    pub fn set_value(&self, name: &HeaderName, value: &HeaderValue) -> Result<()> {
        hostcalls::set_map_value_bytes(map_type(M::MAP), name, Some(value.as_bytes()))
            .host(HostFunction::ReplaceHeaderMapValue)
    }

    /// [`Headers::add`] for a value checked when it was made (configuration fields): no
    /// scan of the value on every request.
    pub fn add_value(&self, name: &HeaderName, value: &HeaderValue) -> Result<()> {
        hostcalls::add_map_value_bytes(map_type(M::MAP), name, value.as_bytes())
            .host(HostFunction::AddHeaderMapValue)
    }

    /// Removes every value of `name`. Removing an absent header is not an error.
    pub fn remove(&self, name: &str) -> Result<()> {
        hostcalls::remove_map_value(map_type(M::MAP), name).host(HostFunction::RemoveHeaderMapValue)
    }

    /// Removes `name` and every header an upstream framework would read as the same one:
    /// names equal to it once `_` and `-` are treated alike, in any case. CGI, WSGI, Rack and
    /// PHP turn both `x-user` and `x_user` into `HTTP_X_USER`, so a plugin that sets an
    /// identity header must remove every such spelling a client sent, or the client's copy
    /// can win upstream. Returns how many distinct spellings other than `name` were removed.
    pub fn remove_lookalikes(&self, name: &str) -> Result<usize> {
        let map = SerializedMap::read(M::MAP)?;
        self.remove_lookalikes_in(&map.pairs()?, name)
    }

    /// [`Headers::remove_lookalikes`] on `pairs`, read from this map: removes each spelling
    /// found there (a name read but absent costs no call).
    fn remove_lookalikes_in(&self, pairs: &[Pair<'_>], name: &str) -> Result<usize> {
        let mut others = 0;
        for (at, &(key, _)) in pairs.iter().enumerate() {
            // Each spelling once, at its first appearance (no list of them to allocate).
            if same_upstream(key, name.as_bytes())
                && !pairs[..at].iter().any(|&(seen, _)| seen == key)
            {
                self.remove(&String::from_utf8_lossy(key))?;
                others += usize::from(!key.eq_ignore_ascii_case(name.as_bytes()));
            }
        }
        Ok(others)
    }
}

/// True when an upstream framework that maps `-` and `_` alike (CGI's `HTTP_*` variables)
/// would see `a` and `b` as one header.
pub fn same_header_upstream(a: &str, b: &str) -> bool {
    same_upstream(a.as_bytes(), b.as_bytes())
}

fn same_upstream(a: &[u8], b: &[u8]) -> bool {
    let fold = |c: u8| {
        if c == b'_' {
            b'-'
        } else {
            c.to_ascii_lowercase()
        }
    };
    a.len() == b.len() && a.iter().zip(b).all(|(&x, &y)| fold(x) == fold(y))
}

/// The values of one header, as [`Headers::get_values`] and [`Headers::take_values`] read
/// them: slices of the single copy of the map the host wrote, in the order they arrived.
#[derive(Debug)]
pub struct HeaderValues {
    map: SerializedMap,
    ranges: Vec<Range<usize>>,
}

impl HeaderValues {
    /// How many values the header had.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// True when the header was absent.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// The value when the header had exactly one: a credential that arrives twice may be a
    /// client's copy next to the real one, so it is none.
    pub fn only(&self) -> Option<&[u8]> {
        match self.ranges.as_slice() {
            [one] => Some(&self.map.bytes()[one.clone()]),
            _ => None,
        }
    }

    /// Every value as bytes.
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.ranges.iter().map(|r| &self.map.bytes()[r.clone()])
    }

    /// Every value, decoded lossily.
    pub fn to_strings(&self) -> Vec<String> {
        self.iter()
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .collect()
    }
}

impl Headers<kind::Request> {
    /// `:method`, e.g. `GET`.
    pub fn method(&self) -> Result<Option<String>> {
        self.get(":method")
    }

    /// `:path`, including the query string.
    pub fn path(&self) -> Result<Option<String>> {
        self.get(":path")
    }

    /// Rewrites `:path` (and with it the query string).
    pub fn set_path(&self, path: &str) -> Result<()> {
        self.set(":path", path)
    }

    /// `:authority` (the `Host` of HTTP/1).
    pub fn authority(&self) -> Result<Option<String>> {
        self.get(":authority")
    }

    /// `:scheme`, `http` or `https`.
    pub fn scheme(&self) -> Result<Option<String>> {
        self.get(":scheme")
    }

    /// The decoded query string of `:path`.
    pub fn query(&self) -> Result<Query> {
        Ok(Query::from_path(&self.path()?.unwrap_or_default()))
    }

    /// The cookies of every `cookie` header.
    pub fn cookies(&self) -> Result<Cookies> {
        let values = self.get_all("cookie")?;
        Ok(Cookies::parse(values.iter().map(String::as_str)))
    }

    /// The value of the cookie `name`.
    pub fn cookie(&self, name: &str) -> Result<Option<String>> {
        Ok(self.cookies()?.get(name).map(str::to_string))
    }

    /// The token of `Authorization: Bearer <token>`, if the request carries a well-formed one.
    pub fn bearer_token(&self) -> Result<Option<String>> {
        Ok(self
            .get("authorization")?
            .as_deref()
            .and_then(bearer_token)
            .map(str::to_string))
    }
}

impl Headers<kind::Response> {
    /// `:status` as a number; `None` if absent or not a number.
    pub fn status(&self) -> Result<Option<u16>> {
        Ok(self.get(":status")?.and_then(|s| s.parse().ok()))
    }

    /// Replaces `:status`.
    pub fn set_status(&self, status: u16) -> Result<()> {
        self.set(":status", status.to_string())
    }
}

fn lossy(v: Vec<u8>) -> String {
    String::from_utf8(v).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Refuses values that would split or truncate a header on the wire. Data copied from a
/// request into a header is the usual way such bytes arrive, so check at every write.
fn checked<'a>(name: &str, value: &'a [u8]) -> Result<&'a [u8]> {
    if breaks_header(value) {
        return Err(Error::msg(format!(
            "refusing to write header '{name}': value contains CR, LF or NUL"
        )));
    }
    Ok(value)
}

/// True if `value` holds CR, LF or NUL. Runs on every header write, and values such as
/// cookies and tokens are long: eight bytes per step, with the classic test for a zero
/// byte in a word (a byte equal to `c` is a zero byte of `word ^ c·0x0101…`).
fn breaks_header(value: &[u8]) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let has_zero_byte = |w: u64| w.wrapping_sub(ONES) & !w & HIGHS != 0;
    let mut rest = value;
    while let Some((word, tail)) = rest.split_first_chunk::<8>() {
        let w = u64::from_le_bytes(*word);
        if has_zero_byte(w)
            || has_zero_byte(w ^ (ONES * u64::from(b'\r')))
            || has_zero_byte(w ^ (ONES * u64::from(b'\n')))
        {
            return true;
        }
        rest = tail;
    }
    rest.iter().any(|b| matches!(b, b'\r' | b'\n' | 0))
}

#[cfg(test)]
mod tests {
    use super::{breaks_header, same_header_upstream};

    /// The word-at-a-time scan finds CR, LF and NUL at every offset of short and long
    /// values, and nothing else (every other byte value, including 0x0b, 0x0c, 0x8a, 0x8d).
    #[test]
    fn breaks_header_matches_a_bytewise_scan() {
        for len in [0usize, 1, 7, 8, 9, 16, 23, 40] {
            for at in 0..len {
                for byte in 0..=255u8 {
                    let mut value = vec![b'a'; len];
                    value[at] = byte;
                    assert_eq!(
                        breaks_header(&value),
                        matches!(byte, b'\r' | b'\n' | 0),
                        "len {len}, byte {byte:#x} at {at}"
                    );
                }
            }
            assert!(!breaks_header(&vec![0xff; len]));
        }
    }

    #[test]
    fn underscores_and_case_fold_like_cgi() {
        assert!(same_header_upstream("x-user", "x_user"));
        assert!(same_header_upstream("X_User", "x-user"));
        assert!(same_header_upstream("x-user", "x-user"));
        assert!(!same_header_upstream("x-user", "x-users"));
        assert!(!same_header_upstream("x-user", "x.user"));
        assert!(!same_header_upstream("x-user", "xuser"));
    }
}
