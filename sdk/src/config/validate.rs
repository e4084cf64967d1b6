//! The step after deserialisation: checks a type cannot express, and values the
//! configuration only names (VM environment variables, keys to parse), with errors that
//! name the field like the reader's own.

use super::ConfigError;

/// What a configuration type checks and resolves once its JSON has been read.
///
/// The SDK calls [`validate`](Validate::validate) at configure time, right after
/// deserialisation ([`parse_config`](crate::parse_config) does both); an `Err` refuses the
/// configuration exactly like a type error: Envoy does not start the plugin and logs
/// `invalid plugin configuration at <field path>: <reason>`.
///
/// Deserialisation only reads the document: derive `Deserialize`, no hand-written
/// `Deserialize`, and nothing from the environment. What one field cannot say alone (two
/// fields that exclude each other, a path that must start with `/`) and what comes from
/// outside the document (a secret in `vmConfig.env`, read with [`env_var`](crate::env_var))
/// belong here. Values resolved here live in `#[serde(skip)]` fields.
///
/// ```
/// use weir::config::{ConfigError, Validate};
/// use weir::prelude::*;
///
/// #[derive(Deserialize)]
/// #[serde(deny_unknown_fields)]
/// struct Rule {
///     header: HeaderName,
///     #[serde(default)]
///     prefix: Option<String>,
/// }
///
/// impl Validate for Rule {
///     fn validate(&mut self) -> Result<(), ConfigError> {
///         match &self.prefix {
///             Some(p) if !p.starts_with('/') => Err(ConfigError::at("prefix", "must start with '/'")),
///             _ => Ok(()),
///         }
///     }
/// }
///
/// #[derive(Deserialize)]
/// #[serde(deny_unknown_fields)]
/// struct Config {
///     rules: Vec<Rule>,
///     #[serde(default = "default_secret_env")]
///     secret_env: String,
///     #[serde(skip)] // resolved by `validate`, never read from the JSON
///     secret: String,
/// }
///
/// fn default_secret_env() -> String {
///     "MY_SECRET".into()
/// }
///
/// impl Validate for Config {
///     fn validate(&mut self) -> Result<(), ConfigError> {
///         // `rules[2].prefix`: a nested error gets its parent's field and index.
///         self.rules.validate().map_err(|e| e.in_field("rules"))?;
///         self.secret = weir::env_var(&self.secret_env).ok_or_else(|| {
///             ConfigError::at("secret_env", format!("set the VM environment variable {}", self.secret_env))
///         })?;
///         Ok(())
///     }
/// }
///
/// let err = weir::parse_config::<Config>(
///     br#"{"rules": [{"header": "x-a"}, {"header": "x-b", "prefix": "api"}]}"#,
/// );
/// assert_eq!(
///     err.err().map(|e| e.to_string()).as_deref(),
///     Some("invalid plugin configuration at rules[1].prefix: must start with '/'"),
/// );
/// ```
///
/// A type with nothing to check says so with an empty `impl Validate for Config {}`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is used as a plugin configuration but does not implement `weir::config::Validate`",
    note = "add `impl weir::config::Validate for {Self} {{}}`, or implement `validate` to check fields and read the environment"
)]
pub trait Validate {
    /// Checks and resolves the configuration just read. The default accepts it as it is.
    fn validate(&mut self) -> Result<(), ConfigError> {
        Ok(())
    }
}

/// Validates every element; an error gets the element's index (`[2].header`).
impl<T: Validate> Validate for Vec<T> {
    fn validate(&mut self) -> Result<(), ConfigError> {
        for (index, item) in self.iter_mut().enumerate() {
            item.validate().map_err(|e| e.in_index(index))?;
        }
        Ok(())
    }
}

/// Validates the value when there is one.
impl<T: Validate> Validate for Option<T> {
    fn validate(&mut self) -> Result<(), ConfigError> {
        self.as_mut().map_or(Ok(()), Validate::validate)
    }
}

impl ConfigError {
    /// An error at `path`, written as the reader writes paths: `rules[2].header`, or `.`
    /// for the document itself.
    pub fn at(path: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// The same error seen from the parent object: inside its field `key`
    /// (`header` becomes `rules.header`, `[2].header` becomes `rules[2].header`).
    pub fn in_field(mut self, key: &str) -> Self {
        self.path = match self.path.as_str() {
            "." => key.to_owned(),
            inner if inner.starts_with('[') => format!("{key}{inner}"),
            inner => format!("{key}.{inner}"),
        };
        self
    }

    /// The same error seen from the parent array: inside its element `index`
    /// (`header` becomes `[2].header`).
    pub fn in_index(mut self, index: usize) -> Self {
        self.path = match self.path.as_str() {
            "." => format!("[{index}]"),
            inner if inner.starts_with('[') => format!("[{index}]{inner}"),
            inner => format!("[{index}].{inner}"),
        };
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse_config, HeaderName};
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Rule {
        header: HeaderName,
        #[serde(default)]
        prefix: Option<String>,
    }

    impl Validate for Rule {
        fn validate(&mut self) -> Result<(), ConfigError> {
            match &self.prefix {
                Some(p) if !p.starts_with('/') => Err(ConfigError::at(
                    "prefix",
                    format!("'{p}' must start with '/'"),
                )),
                _ => Ok(()),
            }
        }
    }

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Cfg {
        #[serde(default)]
        rules: Vec<Rule>,
        #[serde(default)]
        nested: Option<Vec<Vec<Rule>>>,
        #[serde(default)]
        allow: bool,
        #[serde(default)]
        deny: bool,
        #[serde(skip)]
        rule_count: usize,
    }

    impl Validate for Cfg {
        fn validate(&mut self) -> Result<(), ConfigError> {
            if self.allow && self.deny {
                return Err(ConfigError::at("deny", "allow and deny: set one, not both"));
            }
            self.rules.validate().map_err(|e| e.in_field("rules"))?;
            self.nested.validate().map_err(|e| e.in_field("nested"))?;
            self.rule_count = self.rules.len();
            Ok(())
        }
    }

    #[test]
    fn validation_errors_name_the_field_path_like_type_errors() {
        let json = br#"{"rules":[{"header":"x-a"},{"header":"x-b","prefix":"api"}]}"#;
        let err = parse_config::<Cfg>(json).unwrap_err();
        assert_eq!(err.path, "rules[1].prefix");
        assert_eq!(
            err.to_string(),
            "invalid plugin configuration at rules[1].prefix: 'api' must start with '/'"
        );
        // A type error one field over reads the same way.
        let json = br#"{"rules":[{"header":"x-a"},{"header":"X-B"}]}"#;
        assert_eq!(
            parse_config::<Cfg>(json).unwrap_err().path,
            "rules[1].header"
        );

        let json = br#"{"nested":[[],[{"header":"x"},{"header":"y","prefix":"z"}]]}"#;
        assert_eq!(
            parse_config::<Cfg>(json).unwrap_err().path,
            "nested[1][1].prefix"
        );
        let err = parse_config::<Cfg>(br#"{"allow":true,"deny":true}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid plugin configuration at deny: allow and deny: set one, not both"
        );
    }

    #[test]
    fn validate_runs_after_deserialisation_and_fills_skipped_fields() {
        let cfg = parse_config::<Cfg>(br#"{"rules":[{"header":"x-a"},{"header":"x-b"}]}"#)
            .expect("valid");
        assert_eq!(cfg.rule_count, 2);
        assert_eq!(cfg.rules[1].header.as_str(), "x-b");
        // A skipped field is not configuration: naming it is an unknown field.
        let err = parse_config::<Cfg>(br#"{"rule_count":5}"#).unwrap_err();
        assert!(
            err.reason.starts_with("unknown field `rule_count`"),
            "{err}"
        );
    }

    #[test]
    fn paths_compose_from_the_inside_out() {
        let err = ConfigError::at(".", "r").in_index(3).in_field("list");
        assert_eq!(err.path, "list[3]");
        let err = ConfigError::at("x", "r")
            .in_field("b")
            .in_index(0)
            .in_field("a");
        assert_eq!(err.path, "a[0].b.x");
        assert_eq!(ConfigError::at(".", "r").in_field("k").path, "k");
    }
}
