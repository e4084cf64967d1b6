//! The plugin's configuration and how it is validated.

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use std::fmt;
use weir::{HeaderName, HeaderValue};

/// What to do when the header may already be present: Envoy's
/// `config.core.v3.HeaderValueOption.HeaderAppendAction`, spelled the same way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Action {
    /// `APPEND_IF_EXISTS_OR_ADD`: add another value if the header exists, otherwise add it.
    #[default]
    AppendIfExistsOrAdd,
    /// `ADD_IF_ABSENT`: add the header only if it is absent.
    AddIfAbsent,
    /// `OVERWRITE_IF_EXISTS_OR_ADD`: replace all values if the header exists, otherwise add it.
    OverwriteIfExistsOrAdd,
    /// `OVERWRITE_IF_EXISTS`: replace all values only if the header exists; otherwise nothing.
    OverwriteIfExists,
}

const ACTIONS: [(&str, Action); 4] = [
    ("APPEND_IF_EXISTS_OR_ADD", Action::AppendIfExistsOrAdd),
    ("ADD_IF_ABSENT", Action::AddIfAbsent),
    ("OVERWRITE_IF_EXISTS_OR_ADD", Action::OverwriteIfExistsOrAdd),
    ("OVERWRITE_IF_EXISTS", Action::OverwriteIfExists),
];

// The deserializers below are written by hand: serde's derived enum and struct code, with
// `deny_unknown_fields`, is several times larger in a Wasm module than these few matches,
// and the plugin's size budget is 100 KB.
impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        match ACTIONS.iter().find(|(n, _)| *n == name) {
            Some((_, action)) => Ok(*action),
            None => Err(de::Error::custom(format!(
                "unknown action `{name}`, expected APPEND_IF_EXISTS_OR_ADD, ADD_IF_ABSENT, OVERWRITE_IF_EXISTS_OR_ADD or OVERWRITE_IF_EXISTS"
            ))),
        }
    }
}

/// One header to add: `{"name": …, "value": …, "action": …}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// Lower-case header name; pseudo-headers (`:path`) are refused.
    pub name: HeaderName,
    /// Value; CR, LF and NUL are refused.
    pub value: HeaderValue,
    /// Defaults to `APPEND_IF_EXISTS_OR_ADD`.
    pub action: Action,
}

impl<'de> Deserialize<'de> for Operation {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(OperationVisitor)
    }
}

struct OperationVisitor;

impl<'de> Visitor<'de> for OperationVisitor {
    type Value = Operation;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object with name, value and optional action")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Operation, A::Error> {
        let (mut name, mut value, mut action) = (None, None, Action::default());
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "name" => name = Some(map.next_value()?),
                "value" => value = Some(map.next_value()?),
                "action" => action = map.next_value()?,
                _ => return Err(de::Error::custom(format!("unknown field `{key}`, expected name, value or action"))),
            }
        }
        let name = name.ok_or_else(|| de::Error::custom("missing field `name`"))?;
        let value = value.ok_or_else(|| de::Error::custom("missing field `value`"))?;
        Ok(Operation { name, value, action })
    }
}

/// The whole configuration. Every field is optional.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Config {
    /// Headers added to the request before it goes upstream.
    pub request_headers_to_add: Vec<Operation>,
    /// Request headers removed (every value) before additions.
    pub request_headers_to_remove: Vec<HeaderName>,
    /// Headers added to the response before it goes to the client.
    pub response_headers_to_add: Vec<Operation>,
    /// Response headers removed (every value) before additions.
    pub response_headers_to_remove: Vec<HeaderName>,
    /// Red Hat's flat form: every other key is a header appended to responses, in order.
    pub flat: Vec<(HeaderName, HeaderValue)>,
}

/// Hand-written rather than derived with `#[serde(flatten)]`: flatten buffers the document
/// first, which loses the field path in errors (a bad flat value would be reported at `.`)
/// and doubles the code size of the plugin.
impl<'de> Deserialize<'de> for Config {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ConfigVisitor)
    }
}

struct ConfigVisitor;

impl<'de> Visitor<'de> for ConfigVisitor {
    type Value = Config;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object with request_headers_to_add/_remove, response_headers_to_add/_remove, or header: value pairs")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Config, A::Error> {
        let mut cfg = Config::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "request_headers_to_add" => cfg.request_headers_to_add = map.next_value()?,
                "request_headers_to_remove" => cfg.request_headers_to_remove = map.next_value()?,
                "response_headers_to_add" => cfg.response_headers_to_add = map.next_value()?,
                "response_headers_to_remove" => cfg.response_headers_to_remove = map.next_value()?,
                _ => {
                    let name = HeaderName::new(key).map_err(de::Error::custom)?;
                    let value = map.next_value::<HeaderValue>()?;
                    cfg.flat.push((name, value));
                }
            }
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir::parse_config;

    #[test]
    fn structured_and_flat_forms() {
        let cfg: Config = parse_config(
            br#"{"request_headers_to_add":[{"name":"x-a","value":"1","action":"ADD_IF_ABSENT"}],
                 "response_headers_to_remove":["server"],
                 "first-header":"some-value"}"#,
        )
        .unwrap();
        assert_eq!(cfg.request_headers_to_add[0].action, Action::AddIfAbsent);
        assert_eq!(cfg.response_headers_to_remove[0].as_str(), "server");
        assert_eq!(cfg.flat[0].0.as_str(), "first-header");
        assert_eq!(cfg.flat[0].1.as_str(), "some-value");
        let cfg: Config = parse_config(br#"{"response_headers_to_add":[{"name":"x","value":"y"}]}"#).unwrap();
        assert_eq!(cfg.response_headers_to_add[0].action, Action::AppendIfExistsOrAdd);
    }

    #[test]
    fn empty_config_is_valid() {
        assert_eq!(parse_config::<Config>(b"").unwrap(), Config::default());
    }

    fn rejected(json: &str) -> weir::ConfigError {
        parse_config::<Config>(json.as_bytes()).expect_err(json)
    }

    #[test]
    fn bad_configs_name_the_field() {
        let err = rejected(r#"{"response_headers_to_add":[{"name":"x","value":"y","action":"PREPEND"}]}"#);
        assert_eq!(err.path, "response_headers_to_add[0].action");
        assert!(err.reason.contains("unknown action `PREPEND`"), "{err}");

        let err = rejected(r#"{"request_headers_to_add":[{"name":"x","value":"y"},{"name":"Bad Name","value":"y"}]}"#);
        assert_eq!(err.path, "request_headers_to_add[1].name");

        let err = rejected(r#"{"request_headers_to_add":[{"name":":path","value":"/"}]}"#);
        assert!(err.reason.contains("pseudo-header"), "{err}");

        let err = rejected(r#"{"response_headers_to_add":[{"name":"x","value":"a\r\nset-cookie: evil"}]}"#);
        assert_eq!(err.path, "response_headers_to_add[0].value");

        let err = rejected(r#"{"request_headers_to_add":5}"#);
        assert_eq!(err.path, "request_headers_to_add");
        assert!(err.reason.contains("invalid type"), "{err}");

        let err = rejected(r#"{"request_headers_to_remove":[":authority"]}"#);
        assert_eq!(err.path, "request_headers_to_remove[0]");
    }

    #[test]
    fn flat_form_is_validated_too() {
        let err = rejected(r#"{"Upper-Header":"v"}"#);
        assert!(err.reason.contains("upper-case"), "{err}");
        let err = rejected(r#"{"response_header_to_add":[{"name":"x","value":"y"}]}"#);
        assert!(err.reason.contains("invalid type"), "{err}");
        let err = rejected(r#"{"x-flat":"a\nb"}"#);
        assert_eq!(err.path, "x-flat");
    }
}
