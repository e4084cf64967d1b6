//! `require_request_binding`: the policy server writes the request it decided on into the
//! grant's `request` claim (`{"method", "host", "path"}`), and the grant is refused on any
//! other request, so a grant copied off one request cannot authorize a different one.

use serde_json::{Map, Value};

/// True when `claim` (the grant's `request`) covers this request: the same method, the same
/// host (ASCII case-insensitive), and a path (query left out) equal to the granted path or
/// under it on a segment boundary (`/data` covers `/data/x`, not `/database`). A path that
/// an upstream could resolve elsewhere (`..`, `.`, encoded `/` or `\`) never matches.
pub fn covers(claim: Option<&Value>, method: &str, host: &str, path: &str) -> bool {
    let Some(claim) = claim.and_then(Value::as_object) else {
        return false;
    };
    let field = |name: &str| Map::get(claim, name).and_then(Value::as_str);
    let (Some(m), Some(h), Some(prefix)) = (field("method"), field("host"), field("path")) else {
        return false;
    };
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let under = match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/') || prefix.ends_with('/'),
        None => false,
    };
    m == method
        && h.eq_ignore_ascii_case(host)
        && prefix.starts_with('/')
        && under
        && !ambiguous(path)
}

/// Dot segments and encoded separators: Envoy may forward them as-is and the upstream then
/// resolve a path outside the granted prefix.
fn ambiguous(path: &str) -> bool {
    let lower = path.to_ascii_lowercase();
    if lower.contains("%2f") || lower.contains("%5c") || lower.contains('\\') {
        return true;
    }
    lower
        .replace("%2e", ".")
        .split('/')
        .any(|segment| segment == "." || segment == "..")
}
