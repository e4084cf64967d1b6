//! Request paths as the upstream will serve them, for plugins whose options name paths
//! (skip authentication under `/healthz`, answer on `/oauth2/callback`, …).
//!
//! Comparing a rule with the raw `:path` is a classic bypass: `/healthz/../admin` starts
//! with `/healthz` but most servers serve `/admin`; `/%68ealthz` is `/healthz` to them;
//! `/healthzadmin` is not under `/healthz`. [`normalize`] turns a `:path` into the path a
//! standards-following server serves (RFC 3986 §6.2.2: query dropped, unreserved characters
//! percent-decoded, dot-segments removed as §5.2.4 says) and refuses paths that servers
//! disagree about, so a rule can treat them as matching nothing. [`under`] matches a prefix
//! on a segment boundary only.
//!
//! ```
//! use weir::http::path::{normalize, under};
//! assert_eq!(normalize("/healthz/../admin?x=1").as_deref(), Some("/admin"));
//! assert_eq!(normalize("/%68ealthz").as_deref(), Some("/healthz"));
//! assert_eq!(normalize("/healthz%2F..%2Fadmin"), None); // an encoded separator
//! assert!(under("/healthz/live", "/healthz") && !under("/healthzadmin", "/healthz"));
//! ```

/// The path `raw` (a `:path`, with or without query) names once normalized, or `None` when
/// upstream servers may read it in different ways. Steps, in order:
///
/// 1. everything from the first `?` or `#` is dropped;
/// 2. `None` if the rest is empty or does not start with `/`, or holds a backslash, a `;`
///    (path parameters: Tomcat reads `/..;/` as `/../`), an empty segment (`//`: servers
///    that merge slashes resolve `/a//../b` differently), a malformed `%` escape, or an
///    escape of `/`, `\` or `%` itself (`%2F`, `%5C`, `%25`: some servers decode them once
///    more, some split on them);
/// 3. escapes of unreserved characters (`A-Z a-z 0-9 - . _ ~`) are decoded; other escapes
///    are kept, with upper-case hex digits;
/// 4. dot-segments are removed (RFC 3986 §5.2.4): `/a/./b/../c` is `/a/c`, and `..` never
///    climbs above the root.
pub fn normalize(raw: &str) -> Option<String> {
    let path = raw.split(['?', '#']).next().unwrap_or_default();
    if !path.starts_with('/')
        || path.contains("//")
        || path.bytes().any(|b| b == b'\\' || b == b';')
    {
        return None;
    }
    remove_dot_segments(&decode_unreserved(path)?)
}

/// True when `path` is `prefix` or lies below it: the match ends on a segment boundary.
/// `/healthz` (or `/healthz/`) covers `/healthz` and `/healthz/live`, never `/healthzadmin`.
/// Both are compared as given; pass `path` through [`normalize`] first.
pub fn under(path: &str, prefix: &str) -> bool {
    let prefix = prefix.trim_end_matches('/');
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// Checks a configured path rule: it must be a path that [`normalize`] leaves as it is,
/// apart from a trailing `/` on a prefix, so that a rule can only match what it says.
/// The error says what is wrong, for a configuration error message.
pub fn check_rule(rule: &str) -> Result<(), String> {
    match normalize(rule) {
        Some(n) if n == rule => Ok(()),
        Some(n) => Err(format!("{rule:?} is not a normalized path (it reads as {n:?})")),
        None => Err(format!(
            "{rule:?} must be a path starting with '/', without query, '//', ';', '\\' or escaped '/', '\\', '%'"
        )),
    }
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn decode_unreserved(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let (hi, lo) = (hex(*bytes.get(i + 1)?)?, hex(*bytes.get(i + 2)?)?);
        let byte = hi * 16 + lo;
        match byte {
            b'/' | b'\\' | b'%' => return None,
            b if unreserved(b) => out.push(b),
            _ => out.extend_from_slice(format!("%{byte:02X}").as_bytes()),
        }
        i += 3;
    }
    // Only ASCII was replaced by ASCII, so the bytes are still the UTF-8 they came from.
    String::from_utf8(out).ok()
}

/// RFC 3986 §5.2.4 on an absolute path whose segments are all non-empty.
fn remove_dot_segments(path: &str) -> Option<String> {
    let mut kept: Vec<&str> = Vec::new();
    let segments: Vec<&str> = path[1..].split('/').collect();
    let last = segments.len() - 1;
    let mut trailing_slash = false;
    for (i, segment) in segments.iter().enumerate() {
        match *segment {
            "." => trailing_slash = i == last,
            ".." => {
                kept.pop();
                trailing_slash = i == last;
            }
            "" => trailing_slash = i == last, // only a trailing '/': "//" was refused
            s => {
                kept.push(s);
                trailing_slash = false;
            }
        }
    }
    let mut out = String::with_capacity(path.len());
    for s in &kept {
        out.push('/');
        out.push_str(s);
    }
    if trailing_slash || out.is_empty() {
        out.push('/');
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::{check_rule, normalize, under};

    #[test]
    fn dot_segments_are_removed_as_rfc_3986_says() {
        let cases = [
            ("/", "/"),
            ("/a/b/c/./../../g", "/a/g"),
            ("/mid/content=5/../6", "/mid/6"),
            ("/healthz/../private", "/private"),
            ("/healthz/.", "/healthz/"),
            ("/healthz/..", "/"),
            ("/..", "/"),
            ("/../../etc/passwd", "/etc/passwd"),
            ("/a/b/", "/a/b/"),
            ("/a/.../b", "/a/.../b"),
            ("/a/..b/c", "/a/..b/c"),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize(raw).as_deref(), Some(want), "{raw}");
        }
    }

    #[test]
    fn query_and_fragment_are_dropped() {
        assert_eq!(
            normalize("/healthz?/../private").as_deref(),
            Some("/healthz")
        );
        assert_eq!(normalize("/a#/../b").as_deref(), Some("/a"));
        assert_eq!(normalize("/a/..?x").as_deref(), Some("/"));
    }

    #[test]
    fn only_unreserved_characters_are_decoded() {
        assert_eq!(normalize("/%68ealthz").as_deref(), Some("/healthz"));
        assert_eq!(
            normalize("/healthz/%2e%2E/private").as_deref(),
            Some("/private")
        );
        assert_eq!(normalize("/a%7Eb%2D%5f").as_deref(), Some("/a~b-_"));
        assert_eq!(
            normalize("/a%20b%3f%c3%A9").as_deref(),
            Some("/a%20b%3F%C3%A9")
        );
        assert_eq!(normalize("/caf\u{e9}").as_deref(), Some("/caf\u{e9}"));
    }

    #[test]
    fn paths_servers_read_differently_match_nothing() {
        for raw in [
            "/healthz%2F..%2Fprivate",
            "/healthz%2f..",
            "/healthz/..%5Cprivate",
            "/healthz\\..\\private",
            "/healthz%252F..",
            "/healthz/..;/private",
            "/healthz;x=1",
            "//healthz",
            "/healthz//../private",
            "/bad%zz",
            "/bad%2",
            "/bad%",
            "",
            "healthz",
            "*",
            "?x",
        ] {
            assert_eq!(normalize(raw), None, "{raw:?}");
        }
    }

    #[test]
    fn prefixes_match_on_segment_boundaries() {
        assert!(under("/healthz", "/healthz"));
        assert!(under("/healthz/live", "/healthz"));
        assert!(under("/healthz/", "/healthz/"));
        assert!(under("/healthz", "/healthz/"));
        assert!(under("/healthz/live", "/healthz/"));
        assert!(!under("/healthzadmin", "/healthz"));
        assert!(!under("/healthzadmin", "/healthz/"));
        assert!(!under("/health", "/healthz"));
        assert!(under("/anything", "/"));
    }

    #[test]
    fn rules_must_be_normalized_paths() {
        for ok in ["/", "/healthz", "/public/", "/a%20b", "/oauth2/callback"] {
            assert_eq!(check_rule(ok), Ok(()), "{ok}");
        }
        for bad in [
            "healthz",
            "/a/../b",
            "/%68ealthz",
            "/a?x",
            "/a//b",
            "/a%2Fb",
            "/a%3f",
        ] {
            assert!(check_rule(bad).is_err(), "{bad}");
        }
    }
}
