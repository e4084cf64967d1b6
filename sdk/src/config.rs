//! Typed plugin configuration: `pluginConfig` arrives as JSON (Istio sends the JSON of the
//! WasmPlugin's `pluginConfig`, or nothing at all) and is parsed once per configure.

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;
use std::ops::Deref;
use std::rc::Rc;

/// Configuration shared by the root context and every stream it creates.
///
/// Cloning a `Shared` copies a pointer, not the configuration: a new request costs no
/// allocation. A Wasm VM is single-threaded, so no atomics are needed.
pub struct Shared<T>(Rc<T>);

impl<T> Shared<T> {
    /// Wraps a configuration value.
    pub fn new(value: T) -> Self {
        Shared(Rc::new(value))
    }
}

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Shared(Rc::clone(&self.0))
    }
}

impl<T> Deref for Shared<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: fmt::Debug> fmt::Debug for Shared<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Why a configuration was rejected: the field path (`rules[2].action`) and the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// Dotted path to the offending field; `.` for the document itself.
    pub path: String,
    /// What was wrong with it.
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid plugin configuration at {}: {}", self.path, self.reason)
    }
}

impl std::error::Error for ConfigError {}

/// Parses plugin configuration bytes into `T`, naming the field path on failure.
///
/// An empty (or all-whitespace) configuration is read as `{}`, so a config type whose
/// fields all have defaults accepts a WasmPlugin without `pluginConfig`.
pub fn parse_config<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ConfigError> {
    let text = if bytes.iter().all(u8::is_ascii_whitespace) { &b"{}"[..] } else { bytes };
    let mut de = serde_json::Deserializer::from_slice(text);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        // serde_json appends " at line L column C"; the field path says more.
        let mut reason = inner.to_string();
        let position = format!(" at line {} column {}", inner.line(), inner.column());
        if inner.line() > 0 && reason.ends_with(&position) {
            reason.truncate(reason.len() - position.len());
        }
        ConfigError { path, reason }
    })?;
    de.end().map_err(|e| ConfigError { path: ".".into(), reason: e.to_string() })?;
    Ok(value)
}

/// An HTTP header name, checked when the configuration is parsed: a lower-case token as
/// HTTP/2 and Envoy require (RFC 9110 `tchar`s, no upper case). Pseudo-headers such as
/// `:path` are not header names here; use the dedicated accessors for them.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct HeaderName(String);

impl HeaderName {
    /// Validates `name`.
    pub fn new(name: impl Into<String>) -> Result<Self, InvalidHeader> {
        let name = name.into();
        if name.is_empty() {
            return Err(InvalidHeader("header name is empty".into()));
        }
        if name.starts_with(':') {
            return Err(InvalidHeader(format!("'{name}' is a pseudo-header, not a header name")));
        }
        if let Some(c) = name.bytes().find(|c| !is_lower_tchar(*c)) {
            let what = if c.is_ascii_uppercase() { "an upper-case letter" } else { "a character not allowed in a header name" };
            return Err(InvalidHeader(format!("'{}' contains {what}; header names are lower-case tokens", name.escape_default())));
        }
        Ok(HeaderName(name))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_lower_tchar(c: u8) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// An HTTP header value, checked when the configuration is parsed: no CR, LF or NUL
/// (which would let a value smuggle a second header or truncate the map on the wire).
#[derive(Clone, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(transparent)]
pub struct HeaderValue(String);

impl HeaderValue {
    /// Validates `value`.
    pub fn new(value: impl Into<String>) -> Result<Self, InvalidHeader> {
        let value = value.into();
        if value.bytes().any(|c| matches!(c, b'\r' | b'\n' | 0)) {
            return Err(InvalidHeader("header value contains CR, LF or NUL, which would split or cut the header".into()));
        }
        Ok(HeaderValue(value))
    }

    /// The value as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A header name or value failed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidHeader(String);

impl fmt::Display for InvalidHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidHeader {}

macro_rules! string_newtype {
    ($t:ident) => {
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $t::new(String::deserialize(d)?).map_err(D::Error::custom)
            }
        }
        impl Deref for $t {
            type Target = str;
            fn deref(&self) -> &str {
                &self.0
            }
        }
        impl AsRef<[u8]> for $t {
            fn as_ref(&self) -> &[u8] {
                self.0.as_bytes()
            }
        }
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&self.0, f)
            }
        }
        impl TryFrom<&str> for $t {
            type Error = InvalidHeader;
            fn try_from(s: &str) -> Result<Self, InvalidHeader> {
                $t::new(s)
            }
        }
    };
}
string_newtype!(HeaderName);
string_newtype!(HeaderValue);

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Rule {
        name: HeaderName,
        #[serde(default)]
        value: HeaderValue,
    }

    #[derive(Deserialize, Debug, Default)]
    struct Cfg {
        #[serde(default)]
        rules: Vec<Rule>,
        #[serde(default)]
        extra: BTreeMap<String, u32>,
    }

    #[test]
    fn empty_config_means_defaults() {
        let cfg: Cfg = parse_config(b"").unwrap();
        assert!(cfg.rules.is_empty());
        let cfg: Cfg = parse_config(b"  \n").unwrap();
        assert!(cfg.extra.is_empty());
    }

    #[test]
    fn errors_name_the_field_path() {
        let err = parse_config::<Cfg>(br#"{"rules":[{"name":"ok"},{"name":"Bad"}]}"#).unwrap_err();
        assert_eq!(err.path, "rules[1].name");
        assert!(err.reason.contains("upper-case"), "{err}");
        let err = parse_config::<Cfg>(br#"{"rules":[{"name":"a","value":"x\r\ny: z"}]}"#).unwrap_err();
        assert_eq!(err.path, "rules[0].value");
        let err = parse_config::<Cfg>(br#"{"extra":{"k":"v"}}"#).unwrap_err();
        assert_eq!(err.path, "extra.k");
        assert!(err.to_string().starts_with("invalid plugin configuration at extra.k: invalid type"), "{err}");
    }

    #[test]
    fn trailing_garbage_and_bad_json_are_rejected() {
        assert!(parse_config::<Cfg>(b"{} x").is_err());
        assert!(parse_config::<Cfg>(b"{").is_err());
    }

    #[test]
    fn header_names_are_lower_case_tokens() {
        assert!(HeaderName::new("x-request-id").is_ok());
        assert!(HeaderName::new(":path").is_err());
        assert!(HeaderName::new("X-Upper").is_err());
        assert!(HeaderName::new("has space").is_err());
        assert!(HeaderName::new("").is_err());
        assert!(HeaderValue::new("a\0b").is_err());
        assert!(HeaderValue::new("plain value, with; punctuation").is_ok());
    }
}
