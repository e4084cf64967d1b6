//! The foreign functions Envoy 1.40 registers for every module (Envoy's
//! `extensions/common/wasm/foreign.cc`), as far as they need no Envoy internals, and
//! Envoy's statuses for arguments they cannot use (scenarios `exerciser_foreign_functions`,
//! `exerciser_foreign_edges`). `FIDELITY.md` lists what is not served.

use std::io::{Read, Write};

use weir_abi::Status;

use super::HostResult;
use crate::state::ProxyState;

/// One field of a protobuf message in wire format: its number and, for length-delimited
/// fields, the bytes.
struct Field<'a> {
    number: u64,
    bytes: Option<&'a [u8]>,
}

fn varint(input: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = input.split_first()?;
        *input = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

/// The fields of a protobuf message, or `None` if the bytes are not one (what makes
/// Envoy's `ParseFromString` fail: a truncated field, a group, field number 0).
fn message(mut input: &[u8]) -> Option<Vec<Field<'_>>> {
    let mut fields = Vec::new();
    while !input.is_empty() {
        let key = varint(&mut input)?;
        let number = key >> 3;
        if number == 0 {
            return None;
        }
        let bytes = match key & 7 {
            0 => {
                varint(&mut input)?;
                None
            }
            1 | 5 => {
                let width = if key & 7 == 1 { 8 } else { 4 };
                input = input.get(width..)?;
                None
            }
            2 => {
                let len = usize::try_from(varint(&mut input)?).ok()?;
                let (value, rest) = (input.get(..len)?, input.get(len..)?);
                input = rest;
                Some(value)
            }
            _ => return None,
        };
        fields.push(Field { number, bytes });
    }
    Some(fields)
}

/// A length-delimited field's last value (protobuf's rule for repeated scalars).
fn string_field<'a>(fields: &[Field<'a>], number: u64) -> &'a [u8] {
    fields
        .iter()
        .rev()
        .find(|f| f.number == number)
        .and_then(|f| f.bytes)
        .unwrap_or_default()
}

/// An expression token: exactly four bytes.
fn token(args: &[u8]) -> HostResult<[u8; 4]> {
    <[u8; 4]>::try_from(args).map_err(|_| Status::BadArgument.into())
}

/// Runs foreign function `name`. An unknown name is `NotFound`, as in Envoy.
pub(super) fn call(proxy: &mut ProxyState, name: &str, args: &[u8]) -> HostResult<Vec<u8>> {
    match name {
        "compress" => {
            let mut encoder =
                flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            encoder
                .write_all(args)
                .map_err(|_| Status::SerializationFailure)?;
            Ok(encoder.finish().map_err(|_| Status::SerializationFailure)?)
        }
        "uncompress" => {
            let mut out = Vec::new();
            let mut decoder = flate2::read::ZlibDecoder::new(args);
            decoder
                .read_to_end(&mut out)
                .map_err(|_| Status::SerializationFailure)?;
            // zlib's `uncompress` refuses a stream that does not end where the input does.
            if decoder.total_in() != args.len() as u64 {
                return Err(Status::SerializationFailure.into());
            }
            Ok(out)
        }
        // No route table here: nothing to clear.
        "clear_route_cache" => Ok(Vec::new()),
        // `DeclarePropertyArguments` (field 1: the name). A name declared before is
        // `BadArgument`. The declaration is kept; reads and writes of the property are not
        // typed by it here.
        "declare_property" => {
            let fields = message(args).ok_or(Status::BadArgument)?;
            let name = string_field(&fields, 1).to_vec();
            if !proxy.declared_properties.insert(name) {
                return Err(Status::BadArgument.into());
            }
            Ok(Vec::new())
        }
        // `SetEnvoyFilterStateArguments`: Envoy accepts the names of its filter-state
        // object factories; none is known here, so every name is `NotFound`, as an
        // unknown one is in Envoy.
        "set_envoy_filter_state" => {
            message(args).ok_or(Status::BadArgument)?;
            Err(Status::NotFound.into())
        }
        // No expression can be created here (`expr_create` is not served), so every
        // well-formed token is unknown.
        "expr_evaluate" => {
            token(args)?;
            Err(Status::NotFound.into())
        }
        "expr_delete" => {
            token(args)?;
            Ok(Vec::new())
        }
        // Bytes that are no message, or a message without a key: `BadArgument`, as in
        // Envoy. Signing and verifying with a key are not served.
        "sign" | "verify_signature" => {
            let fields = message(args).ok_or(Status::BadArgument)?;
            if fields.is_empty() {
                return Err(Status::BadArgument.into());
            }
            Err(Status::Unimplemented.into())
        }
        _ => Err(Status::NotFound.into()),
    }
}
