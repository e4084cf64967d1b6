//! The plugin's configuration and how it is validated.

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Unexpected, Visitor};
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

const ACTION_NAMES: &str =
    "APPEND_IF_EXISTS_OR_ADD, ADD_IF_ABSENT, OVERWRITE_IF_EXISTS_OR_ADD or OVERWRITE_IF_EXISTS";

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

// How the configuration is read, and why it looks like this: the plugin's size budget is
// 100 KB of Wasm, and serde code is instantiated once per visitor type. Derived impls
// (with `deny_unknown_fields`, `flatten` for the flat form) cost several times more than
// these hand-written ones, and `flatten` also buffers the document, which loses the field
// path in errors. So every part of the document is read by the same visitor, [`Part`],
// which says what it expects; the parse code exists once instead of once per type.

impl<'de> Deserialize<'de> for Config {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        read(d, Part::Config, |p| {
            if let Parsed::Config(cfg) = p {
                Some(cfg)
            } else {
                None
            }
        })
    }
}

impl<'de> Deserialize<'de> for Operation {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        read(d, Part::Operation, |p| {
            if let Parsed::Operation(op) = p {
                Some(op)
            } else {
                None
            }
        })
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        read(d, Part::Action, |p| {
            if let Parsed::Action(action) = p {
                Some(action)
            } else {
                None
            }
        })
    }
}

/// Reads `part` and takes its value out of [`Parsed`] (a part always yields its own variant,
/// so the error cannot happen).
fn read<'de, D: Deserializer<'de>, T>(
    d: D,
    part: Part,
    take: fn(Parsed) -> Option<T>,
) -> Result<T, D::Error> {
    take(part.deserialize(d)?).ok_or_else(|| {
        de::Error::custom("internal error: a configuration part was read as another")
    })
}

/// A part of the configuration document, used as the visitor that reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Config,
    Operation,
    Operations,
    Names,
    Name,
    Value,
    Action,
}

/// What a [`Part`] was read into; each part always yields its own variant.
enum Parsed {
    Config(Config),
    Operation(Operation),
    Operations(Vec<Operation>),
    Names(Vec<HeaderName>),
    Name(HeaderName),
    Value(HeaderValue),
    Action(Action),
}

impl<'de> DeserializeSeed<'de> for Part {
    type Value = Parsed;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Parsed, D::Error> {
        match self {
            Part::Config | Part::Operation => d.deserialize_map(self),
            Part::Operations | Part::Names => d.deserialize_seq(self),
            Part::Name | Part::Value | Part::Action => d.deserialize_str(self),
        }
    }
}

impl<'de> Visitor<'de> for Part {
    type Value = Parsed;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Config => {
                "an object with request_headers_to_add/_remove, response_headers_to_add/_remove, or header: value pairs"
            }
            Part::Operation => "an object with name, value and optional action",
            Part::Operations => "a list of {name, value, action} objects",
            Part::Names => "a list of header names",
            Part::Name => "a header name (string)",
            Part::Value => "a header value (string)",
            Part::Action => return write!(f, "one of {ACTION_NAMES}"),
        })
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Parsed, E> {
        match self {
            Part::Name => HeaderName::new(s).map(Parsed::Name).map_err(E::custom),
            Part::Value => HeaderValue::new(s).map(Parsed::Value).map_err(E::custom),
            Part::Action => match ACTIONS.iter().find(|(n, _)| *n == s) {
                Some((_, action)) => Ok(Parsed::Action(*action)),
                None => Err(E::custom(format!(
                    "unknown action `{s}`, expected {ACTION_NAMES}"
                ))),
            },
            _ => Err(E::invalid_type(Unexpected::Str(s), &self)),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Parsed, A::Error> {
        let (mut ops, mut names) = (Vec::new(), Vec::new());
        let item = match self {
            Part::Operations => Part::Operation,
            Part::Names => Part::Name,
            _ => return Err(de::Error::invalid_type(Unexpected::Seq, &self)),
        };
        while let Some(parsed) = seq.next_element_seed(item)? {
            match parsed {
                Parsed::Operation(op) => ops.push(op),
                Parsed::Name(name) => names.push(name),
                _ => {}
            }
        }
        Ok(if self == Part::Operations {
            Parsed::Operations(ops)
        } else {
            Parsed::Names(names)
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Parsed, A::Error> {
        match self {
            Part::Config => {
                let mut cfg = Config::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "request_headers_to_add" => {
                            cfg.request_headers_to_add = operations(&mut map)?
                        }
                        "request_headers_to_remove" => {
                            cfg.request_headers_to_remove = names(&mut map)?
                        }
                        "response_headers_to_add" => {
                            cfg.response_headers_to_add = operations(&mut map)?
                        }
                        "response_headers_to_remove" => {
                            cfg.response_headers_to_remove = names(&mut map)?
                        }
                        _ => {
                            let name = HeaderName::new(key).map_err(de::Error::custom)?;
                            if let Parsed::Value(value) = map.next_value_seed(Part::Value)? {
                                cfg.flat.push((name, value));
                            }
                        }
                    }
                }
                Ok(Parsed::Config(cfg))
            }
            Part::Operation => {
                let (mut name, mut value, mut action) = (None, None, Action::default());
                while let Some(key) = map.next_key::<String>()? {
                    let part = match key.as_str() {
                        "name" => Part::Name,
                        "value" => Part::Value,
                        "action" => Part::Action,
                        _ => {
                            return Err(de::Error::custom(format!(
                                "unknown field `{key}`, expected name, value or action"
                            )))
                        }
                    };
                    match map.next_value_seed(part)? {
                        Parsed::Name(n) => name = Some(n),
                        Parsed::Value(v) => value = Some(v),
                        Parsed::Action(a) => action = a,
                        _ => {}
                    }
                }
                let name = name.ok_or_else(|| de::Error::custom("missing field `name`"))?;
                let value = value.ok_or_else(|| de::Error::custom("missing field `value`"))?;
                Ok(Parsed::Operation(Operation {
                    name,
                    value,
                    action,
                }))
            }
            _ => Err(de::Error::invalid_type(Unexpected::Map, &self)),
        }
    }
}

/// The value of the current entry, read as a list of operations.
fn operations<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Vec<Operation>, A::Error> {
    Ok(
        if let Parsed::Operations(list) = map.next_value_seed(Part::Operations)? {
            list
        } else {
            Vec::new()
        },
    )
}

/// The value of the current entry, read as a list of header names.
fn names<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Vec<HeaderName>, A::Error> {
    Ok(
        if let Parsed::Names(list) = map.next_value_seed(Part::Names)? {
            list
        } else {
            Vec::new()
        },
    )
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
        let cfg: Config =
            parse_config(br#"{"response_headers_to_add":[{"name":"x","value":"y"}]}"#).unwrap();
        assert_eq!(
            cfg.response_headers_to_add[0].action,
            Action::AppendIfExistsOrAdd
        );
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
        let err = rejected(
            r#"{"response_headers_to_add":[{"name":"x","value":"y","action":"PREPEND"}]}"#,
        );
        assert_eq!(err.path, "response_headers_to_add[0].action");
        assert!(err.reason.contains("unknown action `PREPEND`"), "{err}");

        let err = rejected(
            r#"{"request_headers_to_add":[{"name":"x","value":"y"},{"name":"Bad Name","value":"y"}]}"#,
        );
        assert_eq!(err.path, "request_headers_to_add[1].name");

        let err = rejected(r#"{"request_headers_to_add":[{"name":":path","value":"/"}]}"#);
        assert!(err.reason.contains("pseudo-header"), "{err}");

        let err = rejected(
            r#"{"response_headers_to_add":[{"name":"x","value":"a\r\nset-cookie: evil"}]}"#,
        );
        assert_eq!(err.path, "response_headers_to_add[0].value");

        let err = rejected(r#"{"request_headers_to_add":5}"#);
        assert_eq!(err.path, "request_headers_to_add");
        assert!(err.reason.contains("invalid type"), "{err}");

        let err = rejected(r#"{"request_headers_to_remove":[":authority"]}"#);
        assert_eq!(err.path, "request_headers_to_remove[0]");
    }

    /// The whole message, as Envoy's log shows it, for each kind of mistake.
    #[test]
    fn messages_say_what_was_expected() {
        let cases = [
            (
                r#"{"request_headers_to_add":5}"#,
                "request_headers_to_add: invalid type: integer `5`, expected a list of {name, value, action} objects",
            ),
            (
                r#"{"request_headers_to_add":[["x"]]}"#,
                "request_headers_to_add[0]: invalid type: array, expected an object with name, value and optional action",
            ),
            (
                r#"{"request_headers_to_add":[{"name":"x","value":"y","color":"red"}]}"#,
                "request_headers_to_add[0]: unknown field `color`, expected name, value or action",
            ),
            (r#"{"request_headers_to_add":[{"value":"y"}]}"#, "request_headers_to_add[0]: missing field `name`"),
            (r#"{"response_headers_to_add":[{"name":"x"}]}"#, "response_headers_to_add[0]: missing field `value`"),
            (
                r#"{"response_headers_to_add":[{"name":"x","value":1.5}]}"#,
                "response_headers_to_add[0].value: invalid type: floating point number, expected a header value (string)",
            ),
            (
                r#"{"response_headers_to_add":[{"name":"x","value":"y","action":"PREPEND"}]}"#,
                "response_headers_to_add[0].action: unknown action `PREPEND`, expected APPEND_IF_EXISTS_OR_ADD, \
                 ADD_IF_ABSENT, OVERWRITE_IF_EXISTS_OR_ADD or OVERWRITE_IF_EXISTS",
            ),
            (
                r#"{"response_headers_to_add":[{"name":"x","value":"y","action":2}]}"#,
                "response_headers_to_add[0].action: invalid type: integer `2`, expected one of \
                 APPEND_IF_EXISTS_OR_ADD, ADD_IF_ABSENT, OVERWRITE_IF_EXISTS_OR_ADD or OVERWRITE_IF_EXISTS",
            ),
            (
                r#"{"request_headers_to_remove":"x-a"}"#,
                "request_headers_to_remove: invalid type: string \"x-a\", expected a list of header names",
            ),
            (
                r#"{"request_headers_to_remove":["x-a",null]}"#,
                "request_headers_to_remove[1]: invalid type: null, expected a header name (string)",
            ),
            (
                r#"{"X-Flat":"v"}"#,
                ".: 'X-Flat' contains an upper-case letter; header names are lower-case tokens",
            ),
            (r#"{"x-flat":true}"#, "x-flat: invalid type: boolean `true`, expected a header value (string)"),
            (r#"[]"#, ".: invalid type: array, expected an object with request_headers_to_add/_remove, response_headers_to_add/_remove, or header: value pairs"),
            (r#"{"x-a":"1",}"#, ".: trailing comma at line 1 column 12"),
        ];
        for (json, message) in cases {
            assert_eq!(
                rejected(json).to_string(),
                format!("invalid plugin configuration at {message}"),
                "{json}"
            );
        }
    }

    /// Mangled configurations are rejected with an error, never a panic (a trap at
    /// configure time would take the whole VM down), and what is accepted is valid.
    #[test]
    fn mangled_configs_never_panic() {
        let good =
            br#"{"request_headers_to_add":[{"name":"x-a","value":"1","action":"ADD_IF_ABSENT"}],
            "response_headers_to_remove":["server"],"x-flat":"v\u00e9"}"#;
        let mut seed: u64 = 0xDDBA_1100;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let bytes = b"{}[]\",:\\ aAxX-_:0129eE.\r\n\x00\xff";
        let (mut accepted, mut rejected) = (0, 0);
        for _ in 0..5000 {
            let mut doc = good.to_vec();
            for _ in 0..=next() % 3 {
                let at = (next() % doc.len() as u64) as usize;
                let b = bytes[(next() % bytes.len() as u64) as usize];
                match next() % 3 {
                    0 => doc[at] = b,
                    1 => doc.insert(at, b),
                    _ => {
                        doc.remove(at);
                    }
                }
            }
            match parse_config::<Config>(&doc) {
                Ok(cfg) => {
                    accepted += 1;
                    let names = cfg
                        .request_headers_to_add
                        .iter()
                        .chain(&cfg.response_headers_to_add)
                        .map(|op| &op.name);
                    for name in names
                        .chain(&cfg.request_headers_to_remove)
                        .chain(cfg.flat.iter().map(|(n, _)| n))
                    {
                        assert!(HeaderName::new(name.as_str()).is_ok(), "{name}");
                    }
                }
                Err(err) => {
                    rejected += 1;
                    assert!(!err.path.is_empty() && !err.reason.is_empty(), "{err}");
                }
            }
        }
        assert!(
            accepted > 100 && rejected > 1000,
            "accepted {accepted}, rejected {rejected}"
        );
    }

    #[test]
    fn later_keys_win_and_flat_headers_keep_their_order() {
        let cfg: Config = parse_config(
            br#"{"x-b":"1","request_headers_to_remove":["a"],"x-a":"2","request_headers_to_remove":["b"],"x-b":"3"}"#,
        )
        .unwrap();
        let flat: Vec<_> = cfg
            .flat
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        assert_eq!(flat, [("x-b", "1"), ("x-a", "2"), ("x-b", "3")]);
        assert_eq!(cfg.request_headers_to_remove.len(), 1);
        assert_eq!(cfg.request_headers_to_remove[0].as_str(), "b");
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
