//! `require_request_binding`: the policy server writes the request it decided on into the
//! grant's `request` claim (`{"method", "host", "path"}`), and the grant is refused on any
//! other request, so a grant copied off one request cannot authorize a different one.

use serde_json::{Map, Value};
use weir::http::path::{normalize, under};

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
    m == method
        && h.eq_ignore_ascii_case(host)
        && prefix.starts_with('/')
        && unambiguous(path)
        && under(path, prefix)
}

/// True when the upstream can only read `path` as it is: already normalized (no dot
/// segments, no escapes of unreserved characters) and free of what servers disagree about
/// (encoded `/` or `\`, `;`, `//`). Envoy may forward other forms as they are, and the
/// upstream then resolve a path outside the granted prefix.
fn unambiguous(path: &str) -> bool {
    normalize(path).is_some_and(|n| n == path)
}
