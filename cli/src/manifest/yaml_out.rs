//! A small YAML writer that quotes every string a YAML 1.1 reader could take for something
//! else. Kubernetes tooling reads YAML 1.1, where `on`, `yes` and `n` are booleans and
//! `1:20` is a number, so a plain `value: on` in pluginConfig would reach the plugin as
//! `true`. serde's YAML writers follow YAML 1.2 and leave such strings unquoted.

use serde_yaml_ng::Value;

/// YAML text for `value` (block style, two-space indent, trailing newline).
pub fn to_yaml_string(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Mapping(m) if !m.is_empty() => write_mapping(&mut out, m, 0),
        Value::Sequence(s) if !s.is_empty() => write_sequence(&mut out, s, 0),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    out
}

fn is_plain_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    let ambiguous = [
        "y", "yes", "n", "no", "true", "false", "on", "off", "null", "~",
    ];
    (first.is_ascii_alphabetic() || first == '/')
        && !s.ends_with(':')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:".contains(c))
        && !ambiguous.contains(&s.to_ascii_lowercase().as_str())
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) if is_plain_safe(s) => s.clone(),
        Value::String(s) => serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()),
        Value::Mapping(m) if m.is_empty() => "{}".into(),
        Value::Sequence(s) if s.is_empty() => "[]".into(),
        Value::Tagged(t) => scalar(&t.value),
        // Non-empty collections are written by the block writers.
        Value::Mapping(_) | Value::Sequence(_) => String::new(),
    }
}

fn is_block(v: &Value) -> bool {
    matches!(v, Value::Mapping(m) if !m.is_empty())
        || matches!(v, Value::Sequence(s) if !s.is_empty())
}

fn write_mapping(out: &mut String, m: &serde_yaml_ng::Mapping, indent: usize) {
    for (i, (k, v)) in m.iter().enumerate() {
        if i > 0 || !out.ends_with("- ") {
            out.push_str(&" ".repeat(indent));
        }
        out.push_str(&scalar(k));
        out.push(':');
        write_value(out, v, indent);
    }
}

fn write_sequence(out: &mut String, s: &[Value], indent: usize) {
    for item in s {
        out.push_str(&" ".repeat(indent));
        out.push_str("- ");
        match item {
            Value::Mapping(m) if !m.is_empty() => write_mapping(out, m, indent + 2),
            Value::Sequence(inner) if !inner.is_empty() => {
                out.push('\n');
                write_sequence(out, inner, indent + 2);
            }
            other => {
                out.push_str(&scalar(other));
                out.push('\n');
            }
        }
    }
}

/// Multi-line text (a PEM key) as a `|` block when that keeps it byte-exact.
fn block_literal(s: &str) -> Option<(&'static str, Vec<&str>)> {
    let (indicator, body) = match s.strip_suffix('\n') {
        Some(body) if !body.ends_with('\n') => ("|", body),
        Some(_) => return None,
        None => ("|-", s),
    };
    let lines: Vec<&str> = body.split('\n').collect();
    let printable = |l: &&str| !l.ends_with(' ') && l.chars().all(|c| !c.is_control());
    let ok = body.contains('\n')
        && !body.starts_with(' ')
        && lines.iter().all(printable)
        && lines.iter().all(|l| !l.is_empty());
    ok.then_some((indicator, lines))
}

fn write_value(out: &mut String, v: &Value, indent: usize) {
    if let Some((indicator, lines)) = v.as_str().and_then(block_literal) {
        out.push(' ');
        out.push_str(indicator);
        out.push('\n');
        for line in lines {
            out.push_str(&" ".repeat(indent + 2));
            out.push_str(line);
            out.push('\n');
        }
        return;
    }
    if !is_block(v) {
        out.push(' ');
        out.push_str(&scalar(v));
        out.push('\n');
        return;
    }
    out.push('\n');
    match v {
        Value::Mapping(m) => write_mapping(out, m, indent + 2),
        Value::Sequence(s) => write_sequence(out, s, indent),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_yaml_1_1_lookalikes_and_round_trips() {
        let text = "a: 'on'\nb: '1.0'\nc: oci://r:5000/x:1\nd: [x, {e: 'no', f: []}]\ng: {}\nh: 'with space'\ni: 3\nj: ''\nk: {pem: \"-----BEGIN-----\\nAbC=\\n-----END-----\\n\"}\nl: \"two\\nlines\"\n";
        let value: Value = serde_yaml_ng::from_str(text).expect("parse");
        let written = to_yaml_string(&value);
        assert!(
            written.contains("a: \"on\"")
                && written.contains("b: \"1.0\"")
                && written.contains("e: \"no\""),
            "{written}"
        );
        assert!(written.contains("c: oci://r:5000/x:1"), "{written}");
        assert!(
            written.contains("  pem: |\n    -----BEGIN-----\n    AbC=\n"),
            "{written}"
        );
        assert!(written.contains("l: |-\n  two\n  lines\n"), "{written}");
        let back: Value = serde_yaml_ng::from_str(&written).expect("reparse");
        assert_eq!(back, value, "{written}");
    }
}
