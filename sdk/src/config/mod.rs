//! Typed plugin configuration: `pluginConfig` arrives as JSON (Istio sends the JSON of the
//! WasmPlugin's `pluginConfig`, or nothing at all) and is parsed once per configure.
//!
//! One pattern for every plugin: `#[derive(Deserialize)]` reads the document (types such as
//! [`HeaderName`] and [`bounded`] check single fields as they are read), then
//! [`Validate::validate`] checks what spans fields and resolves what the document only
//! names, such as secrets in VM environment variables. Errors from both steps name the field
//! path the same way: `invalid plugin configuration at rules[2].header: <reason>`.

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

mod entries;
mod json;
mod validate;
pub use entries::{Entries, RawJson};
pub use validate::Validate;
#[cfg(test)]
mod json_tests;
#[cfg(test)]
mod json_typed_tests;
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
        write!(
            f,
            "invalid plugin configuration at {}: {}",
            self.path, self.reason
        )
    }
}

impl std::error::Error for ConfigError {}

impl From<json::Error> for ConfigError {
    fn from(err: json::Error) -> Self {
        ConfigError {
            path: err.path(),
            reason: err.into_reason(),
        }
    }
}

/// Parses plugin configuration bytes into `T`, then runs its [`Validate::validate`]: what the
/// SDK does at configure time. Errors name the field path.
///
/// An empty (or all-whitespace) configuration is read as `{}`, so a config type whose
/// fields all have defaults accepts a WasmPlugin without `pluginConfig`. The JSON must be
/// strict RFC 8259: no comments, trailing commas or invalid escapes.
pub fn parse_config<T: DeserializeOwned + Validate>(bytes: &[u8]) -> Result<T, ConfigError> {
    let text = if bytes.iter().all(u8::is_ascii_whitespace) {
        &b"{}"[..]
    } else {
        bytes
    };
    let mut config: T = json::from_slice(text).map_err(ConfigError::from)?;
    config.validate()?;
    Ok(config)
}

/// A `deserialize_with` for integers that must lie in `MIN..=MAX`: durations, periods and
/// sizes a plugin later adds to a timestamp or hands to the host as a narrower integer, where
/// a huge value would overflow (a trap) or wrap (a wrong timeout). The error names the bounds,
/// and the configuration error names the field.
///
/// ```
/// #[derive(serde::Deserialize)]
/// struct Config {
///     #[serde(deserialize_with = "weir::config::bounded::<_, 1, 60000>")]
///     timeout_ms: u64,
/// }
/// impl weir::config::Validate for Config {}
/// let err = weir::parse_config::<Config>(br#"{"timeout_ms": 0}"#).err().map(|e| e.to_string());
/// assert_eq!(err.as_deref(), Some("invalid plugin configuration at timeout_ms: must be between 1 and 60000, got 0"));
/// ```
pub fn bounded<'de, D: Deserializer<'de>, const MIN: u64, const MAX: u64>(
    d: D,
) -> Result<u64, D::Error> {
    let value = u64::deserialize(d)?;
    if (MIN..=MAX).contains(&value) {
        Ok(value)
    } else {
        Err(D::Error::custom(format!(
            "must be between {MIN} and {MAX}, got {value}"
        )))
    }
}

/// Appends `text` between `quote`s, escaping what could garble a log line: control
/// characters, non-ASCII (as `\u{..}`), backslashes and the quote itself. Written by hand
/// because `{:?}` and `escape_default` pull Unicode tables into the module.
pub(crate) fn push_quoted(out: &mut String, text: &str, quote: char) {
    out.push(quote);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\\' => out.push_str("\\\\"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            ' '..='~' => out.push(c),
            c => {
                out.push_str("\\u{");
                let code = u32::from(c);
                let digits = (32 - code.leading_zeros()).div_ceil(4).max(1);
                for shift in (0..digits).rev() {
                    let nibble = (code >> (shift * 4)) & 0xf;
                    out.push(char::from_digit(nibble, 16).unwrap_or('?'));
                }
                out.push('}');
            }
        }
    }
    out.push(quote);
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
        check_name(&name)?;
        Ok(HeaderName(name))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// [`HeaderName::new`]'s check, without taking ownership (one copy of the code, however
/// many string types callers pass).
pub(crate) fn check_name(name: &str) -> Result<(), InvalidHeader> {
    if name.is_empty() {
        return Err(InvalidHeader("header name is empty".into()));
    }
    let problem = if name.starts_with(':') {
        " is a pseudo-header, not a header name"
    } else {
        match name.bytes().find(|c| !is_lower_tchar(*c)) {
            None => return Ok(()),
            Some(c) if c.is_ascii_uppercase() => " contains an upper-case letter; header names are lower-case tokens",
            Some(_) => " contains a character not allowed in a header name; header names are lower-case tokens",
        }
    };
    let mut msg = String::new();
    push_quoted(&mut msg, name, '\'');
    msg.push_str(problem);
    Err(InvalidHeader(msg))
}

/// [`HeaderValue::new`]'s check, without taking ownership.
pub(crate) fn check_value(value: &str) -> Result<(), InvalidHeader> {
    if value.bytes().any(|c| matches!(c, b'\r' | b'\n' | 0)) {
        return Err(InvalidHeader(
            "header value contains CR, LF or NUL, which would split or cut the header".into(),
        ));
    }
    Ok(())
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
        check_value(&value)?;
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

    impl Validate for Cfg {}

    #[test]
    fn empty_config_means_defaults() {
        let cfg: Cfg = parse_config(b"").unwrap();
        assert!(cfg.rules.is_empty());
        let cfg: Cfg = parse_config(b"  \n").unwrap();
        assert!(cfg.extra.is_empty());
    }

    #[test]
    fn valid_config_is_read() {
        let cfg: Cfg = parse_config(
            br#"{"rules":[{"name":"x-a","value":"v w"},{"name":"x-b"}],"extra":{"k":7}}"#,
        )
        .unwrap();
        assert_eq!(
            (cfg.rules[0].name.as_str(), cfg.rules[0].value.as_str()),
            ("x-a", "v w")
        );
        assert_eq!(
            (cfg.rules[1].name.as_str(), cfg.rules[1].value.as_str()),
            ("x-b", "")
        );
        assert_eq!(cfg.extra["k"], 7);
    }

    #[test]
    fn errors_name_the_field_path() {
        let err = parse_config::<Cfg>(br#"{"rules":[{"name":"ok"},{"name":"Bad"}]}"#).unwrap_err();
        assert_eq!(err.path, "rules[1].name");
        assert!(err.reason.contains("upper-case"), "{err}");
        let err =
            parse_config::<Cfg>(br#"{"rules":[{"name":"a","value":"x\r\ny: z"}]}"#).unwrap_err();
        assert_eq!(err.path, "rules[0].value");
        let err = parse_config::<Cfg>(br#"{"extra":{"k":"v"}}"#).unwrap_err();
        assert_eq!(err.path, "extra.k");
        assert!(
            err.to_string()
                .starts_with("invalid plugin configuration at extra.k: invalid type"),
            "{err}"
        );
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

    #[test]
    fn header_errors_quote_the_name_safely() {
        let reason = |name: &str| HeaderName::new(name).unwrap_err().to_string();
        assert_eq!(
            reason(":path"),
            "':path' is a pseudo-header, not a header name"
        );
        assert_eq!(
            reason("X-Id"),
            "'X-Id' contains an upper-case letter; header names are lower-case tokens"
        );
        assert_eq!(
            reason("a b\n'é\\"),
            "'a b\\n\\'\\u{e9}\\\\' contains a character not allowed in a header name; header names are lower-case tokens"
        );
        assert_eq!(reason(""), "header name is empty");
        assert!(
            check_name("x-ok").is_ok() && check_value("v").is_ok() && check_value("a\rb").is_err()
        );
    }
}
