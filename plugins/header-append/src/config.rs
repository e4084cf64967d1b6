//! The plugin's configuration and how it is validated.

use serde::Deserialize;
use weir::config::{ConfigError, Entries, RawJson, Validate};
use weir::{HeaderName, HeaderValue};

/// What to do when the header may already be present: Envoy's
/// `config.core.v3.HeaderValueOption.HeaderAppendAction`, spelled the same way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
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

/// One header to add: `{"name": …, "value": …, "action": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Operation {
    /// Lower-case header name; pseudo-headers (`:path`) are refused.
    pub name: HeaderName,
    /// Value; CR, LF and NUL are refused.
    pub value: HeaderValue,
    /// Defaults to `APPEND_IF_EXISTS_OR_ADD`.
    #[serde(default)]
    pub action: Action,
}

/// The whole configuration. Every field is optional.
///
/// The document's keys are partly data: besides the four lists, Red Hat's flat form makes
/// every other key a header name, repeatable, in order. So the document is read entry by
/// entry ([`Entries`]) and [`Validate::validate`] reads each value by its key; a key given
/// twice keeps its last value, a flat header given twice is added twice.
#[derive(Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Config {
    document: Entries<RawJson>,
    /// Headers added to the request before it goes upstream.
    #[serde(skip)]
    pub request_headers_to_add: Vec<Operation>,
    /// Request headers removed (every value) before additions.
    #[serde(skip)]
    pub request_headers_to_remove: Vec<HeaderName>,
    /// Headers added to the response before it goes to the client.
    #[serde(skip)]
    pub response_headers_to_add: Vec<Operation>,
    /// Response headers removed (every value) before additions.
    #[serde(skip)]
    pub response_headers_to_remove: Vec<HeaderName>,
    /// Red Hat's flat form: every other key is a header appended to responses, in order.
    #[serde(skip)]
    pub flat: Vec<(HeaderName, HeaderValue)>,
}

impl Validate for Config {
    fn validate(&mut self) -> Result<(), ConfigError> {
        for (key, value) in std::mem::take(&mut self.document.0) {
            let named = |err: ConfigError| err.in_field(&key);
            match key.as_str() {
                "request_headers_to_add" => {
                    self.request_headers_to_add = value.parse().map_err(named)?
                }
                "request_headers_to_remove" => {
                    self.request_headers_to_remove = value.parse().map_err(named)?
                }
                "response_headers_to_add" => {
                    self.response_headers_to_add = value.parse().map_err(named)?
                }
                "response_headers_to_remove" => {
                    self.response_headers_to_remove = value.parse().map_err(named)?
                }
                _ => {
                    let name = HeaderName::new(key.as_str())
                        .map_err(|e| ConfigError::at(".", e.to_string()))?;
                    let value = value.parse().map_err(named)?;
                    self.flat.push((name, value));
                }
            }
        }
        Ok(())
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
        assert!(err.reason.contains("unknown variant `PREPEND`"), "{err}");

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
                "request_headers_to_add: invalid type: integer `5`, expected a sequence",
            ),
            (
                r#"{"request_headers_to_add":[["x"]]}"#,
                "request_headers_to_add[0]: invalid type: array, expected struct Operation",
            ),
            (
                r#"{"request_headers_to_add":[{"name":"x","value":"y","color":"red"}]}"#,
                "request_headers_to_add[0]: unknown field `color`, expected one of `name`, `value`, `action`",
            ),
            (r#"{"request_headers_to_add":[{"value":"y"}]}"#, "request_headers_to_add[0]: missing field `name`"),
            (r#"{"response_headers_to_add":[{"name":"x"}]}"#, "response_headers_to_add[0]: missing field `value`"),
            (
                r#"{"response_headers_to_add":[{"name":"x","value":1.5}]}"#,
                "response_headers_to_add[0].value: invalid type: floating point number, expected a string",
            ),
            (
                r#"{"response_headers_to_add":[{"name":"x","value":"y","action":"PREPEND"}]}"#,
                "response_headers_to_add[0].action: unknown variant `PREPEND`, expected one of \
                 `APPEND_IF_EXISTS_OR_ADD`, `ADD_IF_ABSENT`, `OVERWRITE_IF_EXISTS_OR_ADD`, `OVERWRITE_IF_EXISTS`",
            ),
            (
                r#"{"response_headers_to_add":[{"name":"x","value":"y","action":2}]}"#,
                "response_headers_to_add[0].action: invalid type: integer `2`, expected enum Action",
            ),
            (
                r#"{"request_headers_to_remove":"x-a"}"#,
                "request_headers_to_remove: invalid type: string \"x-a\", expected a sequence",
            ),
            (
                r#"{"request_headers_to_remove":["x-a",null]}"#,
                "request_headers_to_remove[1]: invalid type: null, expected a string",
            ),
            (
                r#"{"X-Flat":"v"}"#,
                ".: 'X-Flat' contains an upper-case letter; header names are lower-case tokens",
            ),
            (r#"{"x-flat":true}"#, "x-flat: invalid type: boolean `true`, expected a string"),
            (r#"[]"#, ".: invalid type: array, expected an object"),
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

    /// Inside one operation a repeated field is refused (derive's rule), where the
    /// document's own keys keep their last value.
    #[test]
    fn a_field_repeated_inside_an_operation_is_refused() {
        let err = rejected(r#"{"request_headers_to_add":[{"name":"a","name":"b","value":"v"}]}"#);
        assert_eq!(
            err.to_string(),
            "invalid plugin configuration at request_headers_to_add[0]: duplicate field `name`"
        );
    }

    #[test]
    fn a_document_of_flat_headers_only() {
        let cfg: Config = parse_config(br#"{"x-a":"1","x-b":""}"#).unwrap();
        let flat: Vec<_> = cfg
            .flat
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        assert_eq!(flat, [("x-a", "1"), ("x-b", "")]);
        assert!(cfg.request_headers_to_add.is_empty() && cfg.response_headers_to_add.is_empty());
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
