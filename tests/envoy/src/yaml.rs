//! Writes a `serde_json::Value` as block-style YAML for Envoy's `-c` file.
//!
//! Envoy would read JSON too, but a kept scratch directory is read by people, and block
//! YAML looks like the configs in Envoy's and Istio's docs. Every string value is written
//! as a JSON string literal, which YAML reads as a double-quoted scalar with the same
//! escapes, so no value can be mistaken for a number, a boolean or YAML syntax. Keys are
//! left bare when they are plain identifiers (all of Envoy's field names), quoted otherwise
//! (`"@type"`).

use serde_json::Value;

/// The YAML text of `value` (a mapping at the top level, as Envoy's bootstrap is).
pub(crate) fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    write_block(value, 0, &mut out);
    out
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::Null => Some("null".to_owned()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(Value::String(s.clone()).to_string()),
        Value::Array(a) if a.is_empty() => Some("[]".to_owned()),
        Value::Object(o) if o.is_empty() => Some("{}".to_owned()),
        Value::Array(_) | Value::Object(_) => None,
    }
}

fn yaml_key(key: &str) -> String {
    let bare = key.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
        && !["true", "false", "null", "yes", "no", "on", "off", "y", "n"]
            .contains(&key.to_ascii_lowercase().as_str());
    if bare {
        key.to_owned()
    } else {
        Value::String(key.to_owned()).to_string()
    }
}

/// Writes a non-scalar `value` whose lines start at `indent` spaces.
fn write_block(value: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(map) => {
            for (key, item) in map {
                let key = yaml_key(key);
                match scalar(item) {
                    Some(text) => out.push_str(&format!("{pad}{key}: {text}\n")),
                    None => {
                        out.push_str(&format!("{pad}{key}:\n"));
                        write_block(item, indent + 2, out);
                    }
                }
            }
        }
        Value::Array(items) => {
            for item in items {
                match scalar(item) {
                    Some(text) => out.push_str(&format!("{pad}- {text}\n")),
                    None => {
                        // The first line of the nested block goes after "- "; the rest keep
                        // its indentation, which is two deeper than the dash.
                        let mut nested = String::new();
                        write_block(item, indent + 2, &mut nested);
                        out.push_str(&format!("{pad}- {}", &nested[indent + 2..]));
                    }
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar(other).unwrap_or_default())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nests_maps_and_lists() {
        // Keys are in sorted order so the test holds with or without serde_json's
        // `preserve_order` feature.
        let v = json!({"a": {"b": [1, {"c": "x", "d": []}], "e": {}}, "on": true, "z@": "y: z"});
        assert_eq!(
            to_yaml(&v),
            "a:\n  b:\n    - 1\n    - c: \"x\"\n      d: []\n  e: {}\n\"on\": true\n\"z@\": \"y: z\"\n"
        );
    }
}
