//! For documents whose keys are data, not field names (Red Hat's flat header form, say):
//! the object entry by entry, each value kept as JSON until [`Validate`](super::Validate)
//! knows from its key what type to read it as. Plugins still derive: these are field types.

use super::{json, ConfigError};
use serde::de::{self, DeserializeOwned, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use std::fmt;

/// A JSON object read in document order: every key with its value, a repeated key
/// repeated. A type error in a value names its key, like a struct field's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entries<V>(pub Vec<(String, V)>);

impl<V> Default for Entries<V> {
    fn default() -> Self {
        Entries(Vec::new())
    }
}

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Entries<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<V>(std::marker::PhantomData<V>);

        impl<'de, V: Deserialize<'de>> Visitor<'de> for EntriesVisitor<V> {
            type Value = Entries<V>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries<V>, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }

        d.deserialize_map(EntriesVisitor(std::marker::PhantomData))
    }
}

/// A JSON value kept as its text, checked to be JSON but not yet typed: read it in
/// [`Validate::validate`](super::Validate::validate) with [`RawJson::parse`] once another
/// field or its key says what it is. Only the SDK's configuration reader
/// ([`parse_config`](super::parse_config)) produces one.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RawJson(String);

impl RawJson {
    /// The value's JSON text, as it appeared in the document.
    pub fn get(&self) -> &str {
        &self.0
    }

    /// Reads the value as `T`. The error's path starts at this value (`.` for the value
    /// itself): prefix it with [`ConfigError::in_field`] to name where the value was.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        json::from_slice(self.0.as_bytes()).map_err(ConfigError::from)
    }
}

impl<'de> Deserialize<'de> for RawJson {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Text;

        impl Visitor<'_> for Text {
            type Value = RawJson;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value read by weir's configuration reader")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<RawJson, E> {
                Ok(RawJson(text.to_owned()))
            }
        }

        d.deserialize_newtype_struct(json::RAW_JSON, Text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse_config, HeaderValue, Validate};

    #[derive(Deserialize, Debug, Default)]
    #[serde(transparent)]
    struct Doc {
        entries: Entries<RawJson>,
        #[serde(skip)]
        numbers: Vec<u32>,
        #[serde(skip)]
        others: Vec<(String, HeaderValue)>,
    }

    impl Validate for Doc {
        fn validate(&mut self) -> Result<(), ConfigError> {
            for (key, value) in std::mem::take(&mut self.entries.0) {
                if key == "numbers" {
                    self.numbers = value.parse().map_err(|e| e.in_field(&key))?;
                } else {
                    let header = value.parse().map_err(|e| e.in_field(&key))?;
                    self.others.push((key, header));
                }
            }
            Ok(())
        }
    }

    #[test]
    fn entries_keep_order_and_repeats_and_values_keep_their_text() {
        let doc: Doc =
            parse_config(br#"{"b": "1", "numbers": [1, 2], "a": "x\u0041", "b": "3"}"#).unwrap();
        assert_eq!(doc.numbers, [1, 2]);
        let others: Vec<_> = doc
            .others
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        assert_eq!(others, [("b", "1"), ("a", "xA"), ("b", "3")]);

        let raw: Entries<RawJson> = parse_config_raw(br#"{"k": {"n": [1, 2.5e3, "s"]} }"#);
        assert_eq!(raw.0[0].1.get(), r#"{"n": [1, 2.5e3, "s"]}"#);
    }

    fn parse_config_raw(bytes: &[u8]) -> Entries<RawJson> {
        json::from_slice(bytes).expect("valid JSON")
    }

    #[test]
    fn errors_in_values_read_later_still_name_the_path() {
        let err = parse_config::<Doc>(br#"{"numbers": [1, "two"]}"#).unwrap_err();
        assert_eq!(err.path, "numbers[1]");
        assert!(
            err.reason.starts_with("invalid type: string \"two\""),
            "{err}"
        );
        let err = parse_config::<Doc>(br#"{"x-a": "v", "x-b": "a\nb"}"#).unwrap_err();
        assert_eq!(err.path, "x-b");
        // Malformed JSON inside a kept value is refused while reading, with its position.
        let err = parse_config::<Doc>(br#"{"numbers": [1,]}"#).unwrap_err();
        assert_eq!(err.reason, "trailing comma at line 1 column 16");
        let err = parse_config::<Doc>(b"[]").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid plugin configuration at .: invalid type: array, expected an object"
        );
    }
}
