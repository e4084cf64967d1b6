//! The engine-neutral outcome of one scenario, the normalizations that make the two
//! engines' raw observations comparable, and a field-by-field diff.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What one run showed, in the terms a plugin controls. Scenarios state the expected one
/// under `expect`; each engine's runner fills one in the same shape.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Observed {
    /// The plugin refused its configuration (`on_configure` returned false).
    #[serde(default)]
    pub rejected: bool,
    /// The request as the upstream received it; `None` when it never got there.
    #[serde(default)]
    pub upstream: Option<HttpSeen>,
    /// The response as the client received it (the upstream's or a local reply).
    #[serde(default)]
    pub client: Option<HttpSeen>,
    /// Callouts the plugin made, in cluster-name order.
    #[serde(default)]
    pub callouts: Vec<CalloutSeen>,
    /// Plugin-defined metrics by name; `null` means not defined. Only names listed in
    /// the expectation are read.
    #[serde(default)]
    pub metrics: BTreeMap<String, Option<u64>>,
    /// A NETWORK filter's connection.
    #[serde(default)]
    pub tcp: Option<TcpSeen>,
    /// gRPC calls as their clusters received them, in cluster-name order; only read
    /// (and compared) when the expectation lists them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grpc_calls: Option<Vec<crate::grpc::GrpcCallSeen>>,
    /// In an expectation: texts that must appear in the engine's log. In an engine's
    /// observation: every log line. Not compared across engines, whose log lines are
    /// framed differently (Envoy prefixes time, thread and plugin name).
    #[serde(default, skip_serializing)]
    pub logs: Vec<String>,
}

/// An HTTP message: a request (`method`, `path`) or a response (`status`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpSeen {
    /// Request method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// Request target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Response status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// `name: value` lines after [`normalize_headers`].
    #[serde(default)]
    pub headers: Vec<String>,
    /// The body, as text.
    #[serde(default)]
    pub body: String,
    /// Trailers as `name: value` lines (normalized as [`Side::Trailers`]); left out when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trailers: Vec<String>,
}

/// One callout as the called cluster received it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CalloutSeen {
    /// The cluster called.
    pub cluster: String,
    /// The method.
    pub method: String,
    /// The request target.
    pub path: String,
    /// Selected headers (the names the expectation lists); `null` when absent.
    #[serde(default)]
    pub headers: BTreeMap<String, Option<String>>,
}

/// A connection through a NETWORK filter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TcpSeen {
    /// Bytes the upstream received, as text.
    pub upstream_received: String,
    /// Bytes the client received, as text.
    pub client_received: String,
    /// The plugin closed the connection (Envoy: it ended with nothing from upstream).
    pub closed: bool,
}

/// Which side of the proxy a header list comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// A request, as the upstream received it.
    Request,
    /// A response, as the client received it.
    Response,
    /// Trailers of either: Envoy adds none of its own.
    Trailers,
}

/// Headers Envoy adds on its own and a plugin neither sets nor sees change: dropped
/// from both engines' observations. The README lists each with its reason.
const ENVOY_ADDED_REQUEST: &[&str] = &[
    "x-request-id",
    "x-forwarded-proto",
    "x-envoy-expected-rq-timeout-ms",
];
const ENVOY_ADDED_RESPONSE: &[&str] = &[
    "date",
    "server",
    "x-envoy-upstream-service-time",
    "connection",
];

/// Headers Envoy's codec stores once, joining repeated field lines with `", "` before any
/// filter runs. Repeats of these are joined the same way for both engines.
const MERGED_BY_ENVOY: &[&str] = &[
    "accept",
    "accept-encoding",
    "authorization",
    "cache-control",
    "content-type",
    "expect",
    "te",
    "user-agent",
    "via",
    "x-forwarded-for",
];

/// Makes a raw header list comparable across engines: lower-case names; no pseudo-headers
/// or `host` (method, path and status are compared on their own; the authority is the
/// test listener's address in Envoy); no headers Envoy adds by itself; repeats of
/// Envoy's merged headers joined; and sorted by name, keeping the order of one name's
/// values (only that order carries meaning in HTTP).
pub fn normalize_headers(raw: &[(String, String)], side: Side) -> Vec<String> {
    let dropped = match side {
        Side::Request => ENVOY_ADDED_REQUEST,
        Side::Response => ENVOY_ADDED_RESPONSE,
        Side::Trailers => &[],
    };
    let mut fields: Vec<(String, String)> = Vec::new();
    for (name, value) in raw {
        let name = name.to_ascii_lowercase();
        if name.starts_with(':') || name == "host" || dropped.contains(&name.as_str()) {
            continue;
        }
        let merged = MERGED_BY_ENVOY.contains(&name.as_str());
        match fields.iter_mut().find(|(n, _)| merged && *n == name) {
            Some((_, joined)) => {
                joined.push(',');
                joined.push_str(value);
            }
            None => fields.push((name, value.clone())),
        }
    }
    fields.sort_by(|a, b| a.0.cmp(&b.0));
    fields
        .into_iter()
        .map(|(n, v)| format!("{n}: {v}"))
        .collect()
}

/// Differences between two observations, one line per differing field, naming the field
/// by its JSON path. Empty when they agree. Logs are not part of it (see
/// [`Observed::logs`]).
pub fn diff(left_name: &str, left: &Observed, right_name: &str, right: &Observed) -> Vec<String> {
    let mut out = Vec::new();
    let (l, r) = (to_value(left), to_value(right));
    walk("", &l, &r, left_name, right_name, &mut out);
    out
}

/// The log texts of `expected` that `logs` lacks.
pub fn missing_logs<'a>(expected: &'a Observed, logs: &[String]) -> Vec<&'a str> {
    expected
        .logs
        .iter()
        .filter(|want| !logs.iter().any(|line| line.contains(want.as_str())))
        .map(String::as_str)
        .collect()
}

fn to_value(observed: &Observed) -> Value {
    // Serializing plain data structs with string keys cannot fail.
    serde_json::to_value(observed).unwrap_or(Value::Null)
}

fn walk(path: &str, l: &Value, r: &Value, ln: &str, rn: &str, out: &mut Vec<String>) {
    if l == r {
        return;
    }
    let at = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match (l, r) {
        (Value::Object(lo), Value::Object(ro)) => {
            let keys: std::collections::BTreeSet<&String> = lo.keys().chain(ro.keys()).collect();
            for key in keys {
                walk(
                    &at(key),
                    lo.get(key).unwrap_or(&Value::Null),
                    ro.get(key).unwrap_or(&Value::Null),
                    ln,
                    rn,
                    out,
                );
            }
        }
        (Value::Array(la), Value::Array(ra)) if la.iter().chain(ra).all(Value::is_string) => {
            // Header lists: say which lines one side has and the other lacks.
            let only = |a: &[Value], b: &[Value]| -> Vec<String> {
                a.iter()
                    .filter(|v| !b.contains(v))
                    .map(|v| v.as_str().unwrap_or_default().to_owned())
                    .collect()
            };
            let (lonly, ronly) = (only(la, ra), only(ra, la));
            if lonly.is_empty() && ronly.is_empty() {
                out.push(format!(
                    "{path}: same lines, different order or count: {ln} {l}, {rn} {r}"
                ));
            } else {
                out.push(format!(
                    "{path}: only {ln} has {lonly:?}; only {rn} has {ronly:?}"
                ));
            }
        }
        (Value::Array(la), Value::Array(ra)) if la.len() == ra.len() => {
            for (i, (lv, rv)) in la.iter().zip(ra).enumerate() {
                walk(&format!("{path}[{i}]"), lv, rv, ln, rn, out);
            }
        }
        _ => out.push(format!("{path}: {ln} {l}, {rn} {r}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn normalization_drops_envoy_headers_merges_built_ins_and_keeps_value_order() {
        let raw = fields(&[
            (":path", "/"),
            ("Host", "127.0.0.1:1"),
            ("x-b", "2"),
            ("accept", "a"),
            ("x-request-id", "r"),
            ("x-b", "1"),
            ("accept", "b"),
            ("x-a", "0"),
        ]);
        assert_eq!(
            normalize_headers(&raw, Side::Request),
            ["accept: a,b", "x-a: 0", "x-b: 2", "x-b: 1"]
        );
        assert_eq!(
            normalize_headers(
                &fields(&[("date", "now"), ("x-request-id", "r")]),
                Side::Response
            ),
            ["x-request-id: r"]
        );
    }

    #[test]
    fn diff_names_the_field_and_the_lines_each_side_lacks() {
        let a = Observed {
            client: Some(HttpSeen {
                status: Some(200),
                headers: vec!["x-a: 1".into()],
                ..HttpSeen::default()
            }),
            ..Observed::default()
        };
        let mut b = a.clone();
        b.client = Some(HttpSeen {
            status: Some(503),
            headers: vec!["x-b: 1".into()],
            ..HttpSeen::default()
        });
        let lines = diff("runtime", &a, "envoy", &b);
        assert_eq!(
            lines,
            [
                r#"client.headers: only runtime has ["x-a: 1"]; only envoy has ["x-b: 1"]"#,
                "client.status: runtime 200, envoy 503",
            ]
        );
        assert!(diff("runtime", &a, "envoy", &a).is_empty());
    }
}
