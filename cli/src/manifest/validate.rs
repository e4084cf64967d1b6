//! Validates WasmPlugin documents the way the API server does with Istio's CRD: the
//! structural OpenAPI schema (types, enums, lengths, patterns, ranges, list-map keys,
//! unknown fields) and then the CRD's CEL rules. Messages follow the API server's wording,
//! so they match the `_err` of Istio's own test vectors.

use std::sync::OnceLock;

use serde_yaml_ng::{Mapping, Value};
use thiserror::Error;

use super::gourl::parse_request_uri;

/// Istio's WasmPlugin CRD (istio/istio, Apache-2.0), the schema checked against.
pub const WASMPLUGIN_CRD: &str = include_str!("wasmplugin-crd.yaml");

/// A document failed validation.
#[derive(Debug, Error)]
#[error("{resource} is invalid:\n  {}", errors.join("\n  "))]
pub struct ValidationFailed {
    /// `WasmPlugin/<name>` or a position.
    pub resource: String,
    /// One line per violation, in the API server's wording.
    pub errors: Vec<String>,
}

fn crd_schema() -> Result<&'static Value, String> {
    static SCHEMA: OnceLock<Result<Value, String>> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let crd: Value = serde_yaml_ng::from_str(WASMPLUGIN_CRD)
                .map_err(|e| format!("embedded CRD: {e}"))?;
            crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
                .as_mapping()
                .map(|m| Value::Mapping(m.clone()))
                .ok_or_else(|| "embedded CRD has no openAPIV3Schema".to_string())
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Validates one WasmPlugin document; `Ok` lists nothing, `Err` every violation.
pub fn validate_wasmplugin(doc: &Value) -> Result<(), ValidationFailed> {
    let name = doc["metadata"]["name"]
        .as_str()
        .unwrap_or("<unnamed>")
        .to_string();
    let mut errors = Vec::new();
    match (doc["apiVersion"].as_str(), doc["kind"].as_str()) {
        (Some("extensions.istio.io/v1alpha1"), Some("WasmPlugin")) => {}
        (api, kind) => errors.push(format!(
            "apiVersion/kind must be extensions.istio.io/v1alpha1 WasmPlugin, not {} {}",
            api.unwrap_or("<none>"),
            kind.unwrap_or("<none>")
        )),
    }
    if doc["metadata"]["name"].as_str().is_none_or(str::is_empty) {
        errors.push("metadata.name: Required value: name or generateName is required".into());
    }
    match crd_schema() {
        Ok(schema) => {
            let mut body = doc.as_mapping().cloned().unwrap_or_default();
            for key in ["apiVersion", "kind", "metadata"] {
                body.remove(key);
            }
            let mut checker = Checker { errors: Vec::new() };
            checker.check(&Value::Mapping(body), schema, "");
            errors.extend(checker.errors);
        }
        Err(e) => errors.push(e),
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ValidationFailed {
            resource: format!("WasmPlugin/{name}"),
            errors,
        })
    }
}

struct Checker {
    errors: Vec<String>,
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Sequence(_) => "array",
        Value::Mapping(_) => "object",
        Value::Tagged(_) => "tagged",
    }
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn key_text(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        other => serde_yaml_ng::to_string(other)
            .unwrap_or_default()
            .trim()
            .to_string(),
    }
}

impl Checker {
    fn err(&mut self, message: String) {
        self.errors.push(message);
    }

    fn check(&mut self, value: &Value, schema: &Value, path: &str) {
        let expected = schema["type"].as_str();
        if value.is_null() {
            if schema["nullable"].as_bool() != Some(true) {
                if let Some(t) = expected {
                    self.err(format!("{path} in body must be of type {t}: \"null\""));
                }
            }
            return;
        }
        let actual = type_name(value);
        let type_ok = match expected {
            None => true,
            Some("number") => matches!(actual, "integer" | "number"),
            Some(t) => t == actual,
        };
        if !type_ok {
            self.err(format!(
                "{path} in body must be of type {}: \"{actual}\"",
                expected.unwrap_or("")
            ));
            return;
        }
        match value {
            Value::String(s) => self.check_string(s, schema, path),
            Value::Number(n) => self.check_number(n, schema, path),
            Value::Sequence(items) => self.check_array(items, schema, path),
            Value::Mapping(map) => self.check_object(map, schema, path),
            _ => {}
        }
        self.check_rules(value, schema, path);
    }

    fn check_string(&mut self, s: &str, schema: &Value, path: &str) {
        if let Some(values) = schema["enum"].as_sequence() {
            if !values.iter().any(|v| v.as_str() == Some(s)) {
                let list: Vec<_> = values
                    .iter()
                    .filter_map(Value::as_str)
                    .map(|v| format!("\"{v}\""))
                    .collect();
                self.err(format!(
                    "{path}: Unsupported value: \"{s}\": supported values: {}",
                    list.join(", ")
                ));
            }
        }
        let len = s.chars().count() as u64;
        if let Some(min) = schema["minLength"].as_u64() {
            if len < min {
                self.err(format!(
                    "{path} in body should be at least {min} chars long"
                ));
            }
        }
        if let Some(max) = schema["maxLength"].as_u64() {
            if len > max {
                self.err(format!(
                    "{path}: Too long: may not be more than {max} bytes"
                ));
            }
        }
        if let Some(pattern) = schema["pattern"].as_str() {
            match regex::Regex::new(pattern) {
                Ok(re) if re.is_match(s) => {}
                Ok(_) => self.err(format!("{path} in body should match '{pattern}'")),
                Err(e) => self.err(format!("{path}: schema pattern does not compile: {e}")),
            }
        }
    }

    fn check_number(&mut self, n: &serde_yaml_ng::Number, schema: &Value, path: &str) {
        let v = n.as_f64().unwrap_or(f64::NAN);
        if schema["format"].as_str() == Some("int32")
            && n.as_i64().is_none_or(|i| i32::try_from(i).is_err())
        {
            self.err(format!("{path} in body should be a 32-bit integer"));
        }
        if let Some(min) = schema["minimum"].as_f64() {
            if v < min {
                self.err(format!(
                    "{path} in body should be greater than or equal to {min}"
                ));
            }
        }
        if let Some(max) = schema["maximum"].as_f64() {
            if v > max {
                self.err(format!(
                    "{path} in body should be less than or equal to {max}"
                ));
            }
        }
    }

    fn check_array(&mut self, items: &[Value], schema: &Value, path: &str) {
        if let Some(max) = schema["maxItems"].as_u64() {
            if items.len() as u64 > max {
                self.err(format!(
                    "{path}: Too many: {}: must have at most {max} items",
                    items.len()
                ));
            }
        }
        let item_schema = &schema["items"];
        let start = self.errors.len();
        for (i, item) in items.iter().enumerate() {
            self.check(item, item_schema, &format!("{path}[{i}]"));
        }
        let is_map_list = schema["x-kubernetes-list-type"].as_str() == Some("map");
        if is_map_list && self.errors.len() == start {
            let keys: Vec<&str> = schema["x-kubernetes-list-map-keys"]
                .as_sequence()
                .map(|s| s.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            self.check_map_list(items, &keys, path);
        }
    }

    /// List-type map: every item has its keys, and no two items share them.
    fn check_map_list(&mut self, items: &[Value], keys: &[&str], path: &str) {
        let mut seen = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let mut id = Vec::new();
            for key in keys {
                match &item[*key] {
                    Value::Null => {
                        self.err(format!("{path}[{i}].{key}: Required value"));
                    }
                    v => id.push((key.to_string(), v.clone())),
                }
            }
            if id.len() != keys.len() {
                continue;
            }
            if seen.contains(&id) {
                let shown: Vec<_> = id
                    .iter()
                    .map(|(k, v)| {
                        format!("\"{k}\":{}", serde_json::to_string(v).unwrap_or_default())
                    })
                    .collect();
                self.err(format!(
                    "{path}[{i}]: Duplicate value: map[string]interface {{}}{{{}}}",
                    shown.join(", ")
                ));
            } else {
                seen.push(id);
            }
        }
    }

    fn check_object(&mut self, map: &Mapping, schema: &Value, path: &str) {
        if let Some(max) = schema["maxProperties"].as_u64() {
            if map.len() as u64 > max {
                self.err(format!(
                    "{path}: Too many: {}: must have at most {max} items",
                    map.len()
                ));
            }
        }
        if let Some(required) = schema["required"].as_sequence() {
            for key in required.iter().filter_map(Value::as_str) {
                if !map.contains_key(key) {
                    self.err(format!("{}: Required value", child(path, key)));
                }
            }
        }
        let preserve = schema["x-kubernetes-preserve-unknown-fields"].as_bool() == Some(true);
        let properties = schema["properties"].as_mapping();
        let additional = &schema["additionalProperties"];
        for (key, value) in map {
            let name = key_text(key);
            if let Some(prop) = properties.and_then(|p| p.get(name.as_str())) {
                self.check(value, prop, &child(path, &name));
            } else if additional.is_mapping() {
                self.check(value, additional, &format!("{path}[{name}]"));
            } else if !preserve && properties.is_some() {
                self.err(format!("unknown field \"{}\"", child(path, &name)));
            }
        }
    }

    fn check_rules(&mut self, value: &Value, schema: &Value, path: &str) {
        let Some(rules) = schema["x-kubernetes-validations"].as_sequence() else {
            return;
        };
        for rule in rules {
            let text = rule["rule"].as_str().unwrap_or_default();
            let message = rule["message"].as_str().unwrap_or("failed rule");
            match eval_rule(text, value) {
                Some(true) => {}
                Some(false) => {
                    let at = if path.is_empty() { "<root>" } else { path };
                    self.err(format!(
                        "{at}: Invalid value: \"{}\": {message}",
                        type_name(value)
                    ));
                }
                None => self.err(format!("{path}: unsupported validation rule `{text}`")),
            }
        }
    }
}

/// The CEL rules the WasmPlugin CRD uses, each implemented with CEL's semantics.
/// `None` for a rule this validator does not know (reported, never ignored).
fn eval_rule(rule: &str, v: &Value) -> Option<bool> {
    let normalized: String = rule.split_whitespace().collect::<Vec<_>>().join(" ");
    let has = |field: &str| v.as_mapping().is_some_and(|m| m.contains_key(field));
    let keys = || {
        v.as_mapping()
            .into_iter()
            .flat_map(|m| m.keys())
            .map(key_text)
    };
    let allowed = ["", "http", "https", "oci", "file"];
    let url_ok =
        |s: &str| parse_request_uri(s).is_some_and(|u| allowed.contains(&u.scheme.as_str()));
    match normalized.as_str() {
        r#"!self.contains("*")"# => Some(!v.as_str()?.contains('*')),
        r#"self.all(key, !key.contains("*"))"# => Some(keys().all(|k| !k.contains('*'))),
        "self.all(key, key.size() != 0)" => Some(keys().all(|k| !k.is_empty())),
        "self.size() == 0" => Some(v.as_str()?.is_empty()),
        r#"isURL(self) ? (url(self).getScheme() in ["", "http", "https", "oci", "file"]) : (isURL("http://" + self) && url("http://" + self).getScheme() in ["", "http", "https", "oci", "file"])"# => {
            let s = v.as_str()?;
            Some(if parse_request_uri(s).is_some() { url_ok(s) } else { url_ok(&format!("http://{s}")) })
        }
        r#"(has(self.valueFrom) ? self.valueFrom : "") != "HOST" || !has(self.value)"# => {
            let from = if has("valueFrom") { v["valueFrom"].as_str().unwrap_or_default() } else { "" };
            Some(from != "HOST" || !has("value"))
        }
        "(has(self.selector) ? 1 : 0) + (has(self.targetRef) ? 1 : 0) + (has(self.targetRefs) ? 1 : 0) <= 1" => {
            Some(["selector", "targetRef", "targetRefs"].iter().filter(|f| has(f)).count() <= 1)
        }
        _ => None,
    }
}

/// Splits a multi-document YAML text, skipping empty documents.
pub fn parse_documents(text: &str) -> Result<Vec<Value>, serde_yaml_ng::Error> {
    let mut docs = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(text) {
        let value: Value = serde::Deserialize::deserialize(doc)?;
        if !value.is_null() {
            docs.push(value);
        }
    }
    Ok(docs)
}
