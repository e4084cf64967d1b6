//! How the reader meets serde: the `Deserializer` impl and the access types that walk
//! arrays, objects, enum variants and object keys.

use super::{Deserializer, Error, Event, Segment};
use serde::de::{self, DeserializeSeed, IntoDeserializer, Unexpected, Visitor};

impl<'de> Deserializer<'de> {
    /// Hands the next value to `visitor`, except floats that would need parsing: those are
    /// refused as the wrong type without being parsed. serde_json does the same for every
    /// type hint but `any` and the numeric ones (it never offers a float to a string,
    /// sequence or struct visitor), so the accepted documents are the same.
    fn visit_except_floats<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value, Error> {
        let event = self.next_event()?;
        self.visit(event, visitor)
    }

    /// Hands `event` to `visitor`; a [`Event::Float`] here is refused unparsed (see
    /// [`Self::visit_except_floats`]).
    fn visit<V: Visitor<'de>>(&mut self, event: Event<'de>, visitor: V) -> Result<V::Value, Error> {
        match event {
            Event::Null => visitor.visit_unit(),
            Event::Bool(b) => visitor.visit_bool(b),
            Event::U64(n) => visitor.visit_u64(n),
            Event::I64(n) => visitor.visit_i64(n),
            Event::F64(n) => visitor.visit_f64(n),
            Event::Float(_) => Err(de::Error::invalid_type(Unexpected::Float(0.0), &visitor)),
            Event::Str(Some(s)) => visitor.visit_borrowed_str(s),
            Event::Str(None) => visitor.visit_str(&self.scratch),
            Event::ArrayStart => {
                let value = visitor.visit_seq(Elements {
                    de: &mut *self,
                    first: true,
                    index: 0,
                })?;
                self.close(b']')?;
                Ok(value)
            }
            Event::ObjectStart => {
                let value = visitor.visit_map(Entries {
                    de: &mut *self,
                    first: true,
                    key_pos: 0,
                })?;
                self.close(b'}')?;
                Ok(value)
            }
        }
    }
}

impl<'de> de::Deserializer<'de> for &mut Deserializer<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.next_event()? {
            Event::Float(text) => visitor.visit_f64(self.float(text)?),
            event => self.visit(event, visitor),
        }
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_any(visitor)
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_any(F32InRange(visitor))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.skip_whitespace();
        if self.rest().starts_with(b"null") {
            self.pos += 4;
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    /// [`RawJson`](crate::config::RawJson) asks for its value's text under a reserved name.
    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        if name == super::RAW_JSON {
            self.skip_whitespace();
            let start = self.pos;
            self.skip_value()?;
            let text = self.text.get(start..self.pos).unwrap_or_default();
            return visitor.visit_borrowed_str(text);
        }
        visitor.visit_newtype_struct(self)
    }

    /// `"Variant"` for a unit variant, `{"Variant": value}` for the others (serde_json's
    /// externally tagged form).
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.next_event()? {
            Event::Str(Some(s)) => visitor.visit_enum(s.into_deserializer()),
            Event::Str(None) => visitor.visit_enum(self.scratch.as_str().into_deserializer()),
            Event::ObjectStart => {
                self.skip_whitespace();
                let key_pos = self.pos;
                let value = visitor.visit_enum(Variant {
                    de: &mut *self,
                    key_pos,
                })?;
                self.skip_whitespace();
                if self.peek() != Some(b'}') {
                    return Err(self.syntax("expected `}` after the enum's only entry"));
                }
                self.pos += 1;
                self.depth -= 1;
                Ok(value)
            }
            other => Err(de::Error::invalid_type(other.unexpected(), &visitor)),
        }
    }

    integer_hints! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64
    }

    /// 128-bit integers beyond 64 bits are read exactly, as serde_json does.
    fn deserialize_i128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.next_event()? {
            Event::Float(text) => match text.parse::<i128>() {
                Ok(n) => visitor.visit_i128(n),
                Err(_) => visitor.visit_f64(self.float(text)?),
            },
            event => self.visit(event, visitor),
        }
    }

    fn deserialize_u128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.next_event()? {
            Event::Float(text) => match text.parse::<u128>() {
                Ok(n) => visitor.visit_u128(n),
                Err(_) => visitor.visit_f64(self.float(text)?),
            },
            event => self.visit(event, visitor),
        }
    }

    non_float_hints! {
        deserialize_bool deserialize_char deserialize_str deserialize_string deserialize_bytes
        deserialize_byte_buf deserialize_unit deserialize_seq deserialize_map
        deserialize_identifier
    }

    /// An ignored value (an unknown field, say) is still checked to be JSON, but a float in
    /// it is not parsed, so an out-of-range one is accepted, as serde_json does.
    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.next_event()? {
            Event::Float(_) => visitor.visit_unit(),
            event => self.visit(event, visitor),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.visit_except_floats(visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.visit_except_floats(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.visit_except_floats(visitor)
    }

    /// Only an object: serde_json also fills a struct from an array, by field order, a form
    /// no plugin documents and a typo could fall into.
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.next_event()? {
            Event::ArrayStart => Err(de::Error::invalid_type(Unexpected::Seq, &visitor)),
            event => self.visit(event, visitor),
        }
    }
}

/// Integer hints: a float is still offered to the visitor (serde_json does, and the
/// integer visitors then name it in their error).
macro_rules! integer_hints {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.deserialize_any(visitor)
        }
    )*};
}
use integer_hints;

macro_rules! non_float_hints {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.visit_except_floats(visitor)
        }
    )*};
}
use non_float_hints;

struct Elements<'a, 'de> {
    de: &'a mut Deserializer<'de>,
    first: bool,
    index: usize,
}

impl<'de> de::SeqAccess<'de> for Elements<'_, 'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        if !self.de.has_next(b']', &mut self.first)? {
            return Ok(None);
        }
        let index = self.index;
        self.index += 1;
        seed.deserialize(&mut *self.de)
            .map(Some)
            .map_err(|e| e.within(Segment::Index(index)))
    }
}

struct Entries<'a, 'de> {
    de: &'a mut Deserializer<'de>,
    first: bool,
    /// Where the current key's opening quote is, to name it if its value is rejected.
    key_pos: usize,
}

impl<'de> de::MapAccess<'de> for Entries<'_, 'de> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        if !self.de.has_next(b'}', &mut self.first)? {
            return Ok(None);
        }
        self.key_pos = self.de.pos;
        match self.de.key()? {
            Some(key) => seed.deserialize(Key(key)).map(Some),
            None => seed.deserialize(Key(&self.de.scratch)).map(Some),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        seed.deserialize(&mut *self.de).map_err(|e| {
            let key = self.de.key_at(self.key_pos);
            e.within(Segment::Key(key))
        })
    }
}

/// `{"Variant": value}`: the key names the variant.
struct Variant<'a, 'de> {
    de: &'a mut Deserializer<'de>,
    key_pos: usize,
}

impl<'a, 'de> de::EnumAccess<'de> for Variant<'a, 'de> {
    type Error = Error;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), Error> {
        let value = match self.de.key()? {
            Some(key) => seed.deserialize(Key(key))?,
            None => seed.deserialize(Key(&self.de.scratch))?,
        };
        Ok((value, self))
    }
}

impl<'de> de::VariantAccess<'de> for Variant<'_, 'de> {
    type Error = Error;

    /// A unit variant is its name as a string: serde_json's `{"Variant": null}` is refused,
    /// a second spelling no plugin documents.
    fn unit_variant(self) -> Result<(), Error> {
        Err(Error::new(
            "invalid type: object, expected the variant's name as a string".into(),
        ))
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        seed.deserialize(&mut *self.de)
            .map_err(|e| e.within(Segment::Key(self.de.key_at(self.key_pos))))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_any(&mut *self.de, visitor)
            .map_err(|e| e.within(Segment::Key(self.de.key_at(self.key_pos))))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        de::Deserializer::deserialize_any(&mut *self.de, visitor)
            .map_err(|e| e.within(Segment::Key(self.de.key_at(self.key_pos))))
    }
}

/// An object key. Keys are strings, but maps keyed by integers or enums read them too, as
/// serde_json does.
struct Key<'a>(&'a str);

impl Key<'_> {
    fn integer<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        if let Ok(n) = self.0.parse::<u64>() {
            return visitor.visit_u64(n);
        }
        match self.0.parse::<i64>() {
            Ok(n) => visitor.visit_i64(n),
            Err(_) => Err(de::Error::invalid_type(Unexpected::Str(self.0), &visitor)),
        }
    }
}

macro_rules! integer_keys {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            self.integer(visitor)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Key<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_str(self.0)
    }

    integer_keys!(deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64);

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_enum(self.0.into_deserializer())
    }

    serde::forward_to_deserialize_any! {
        bool i128 u128 f32 f64 char str string bytes byte_buf unit unit_struct seq tuple
        tuple_struct map struct identifier ignored_any
    }
}

/// Refuses a finite number too large for `f32` instead of letting it become infinity, as
/// serde_json does ("number out of range"); everything else goes to the wrapped visitor.
struct F32InRange<V>(V);

impl<'de, V: Visitor<'de>> Visitor<'de> for F32InRange<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.0.expecting(f)
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<V::Value, E> {
        if v.is_finite() && (v as f32).is_infinite() {
            return Err(E::custom("number out of range"));
        }
        self.0.visit_f64(v)
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<V::Value, E> {
        self.0.visit_i64(v)
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<V::Value, E> {
        self.0.visit_u64(v)
    }

    fn visit_i128<E: serde::de::Error>(self, v: i128) -> Result<V::Value, E> {
        self.0.visit_i128(v)
    }

    fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<V::Value, E> {
        self.0.visit_u128(v)
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<V::Value, E> {
        self.0.visit_str(v)
    }

    fn visit_borrowed_str<E: serde::de::Error>(self, v: &'de str) -> Result<V::Value, E> {
        self.0.visit_borrowed_str(v)
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<V::Value, E> {
        self.0.visit_string(v)
    }
}
