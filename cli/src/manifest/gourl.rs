//! Go's `url.ParseRequestURI`, which Kubernetes CEL's `isURL` and `url()` use: the CRD's
//! `url` rule only means what Istio means if we parse exactly as Go does.

/// The parts of a request URI the CRD's rule reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestUri {
    /// Lower-cased scheme; empty when there is none.
    pub scheme: String,
}

/// Parses like Go's `url.ParseRequestURI`; `None` where Go returns an error.
pub fn parse_request_uri(raw: &str) -> Option<RequestUri> {
    if raw.bytes().any(|b| b < 0x20 || b == 0x7f) || raw.is_empty() {
        return None;
    }
    if raw == "*" {
        return Some(RequestUri {
            scheme: String::new(),
        });
    }
    let (scheme, rest) = split_scheme(raw)?;
    let scheme = scheme.to_ascii_lowercase();
    // Request URIs carry no fragment; a query is split off and not checked further.
    let rest = match rest.find('?') {
        Some(i) => &rest[..i],
        None => rest,
    };
    if !rest.starts_with('/') {
        // Go accepts "scheme:opaque"; without a scheme a request URI must be absolute.
        return if scheme.is_empty() {
            None
        } else {
            Some(RequestUri { scheme })
        };
    }
    let path = if !scheme.is_empty() && rest.starts_with("//") {
        let after = &rest[2..];
        let (authority, path) = match after.find('/') {
            Some(i) => (&after[..i], &after[i..]),
            None => (after, ""),
        };
        if !valid_authority(authority) {
            return None;
        }
        path
    } else {
        rest
    };
    valid_escapes(path).then_some(RequestUri { scheme })
}

/// Go's `getScheme`: `Some(("", raw))` when there is no scheme, `None` on "missing protocol scheme".
fn split_scheme(raw: &str) -> Option<(&str, &str)> {
    for (i, c) in raw.char_indices() {
        match c {
            'a'..='z' | 'A'..='Z' => {}
            '0'..='9' | '+' | '-' | '.' if i > 0 => {}
            '0'..='9' | '+' | '-' | '.' => return Some(("", raw)),
            ':' if i == 0 => return None,
            ':' => return Some((&raw[..i], &raw[i + 1..])),
            _ => return Some(("", raw)),
        }
    }
    Some(("", raw))
}

fn valid_authority(authority: &str) -> bool {
    let (userinfo, host) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    if let Some(u) = userinfo {
        let allowed = |c: char| c.is_ascii_alphanumeric() || "-._:~!$&'()*+,;=%@".contains(c);
        if !u.chars().all(allowed) || !valid_escapes(u) {
            return false;
        }
    }
    valid_host(host)
}

fn valid_host(host: &str) -> bool {
    let (name, port) = if let Some(stripped) = host.strip_prefix('[') {
        let Some(end) = stripped.find(']') else {
            return false;
        };
        (&stripped[..end], &stripped[end + 1..])
    } else {
        match host.rfind(':') {
            Some(i) => (&host[..i], &host[i..]),
            None => (host, ""),
        }
    };
    // Go's validOptionalPort: empty, or ':' followed by digits only.
    let port_ok = match port.strip_prefix(':') {
        Some(digits) => digits.bytes().all(|b| b.is_ascii_digit()),
        None => port.is_empty(),
    };
    if !port_ok {
        return false;
    }
    if !valid_escapes(name) {
        return false;
    }
    name.bytes()
        .all(|b| b >= 0x80 || b.is_ascii_alphanumeric() || b"-_.~!$&'()*+,;=:[]<>\"%".contains(&b))
}

/// Every `%` must start a two-hex-digit escape.
fn valid_escapes(s: &str) -> bool {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = |j: usize| bytes.get(j).is_some_and(|b| b.is_ascii_hexdigit());
            if !(hex(i + 1) && hex(i + 2)) {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::parse_request_uri;

    fn scheme(s: &str) -> Option<String> {
        parse_request_uri(s).map(|u| u.scheme)
    }

    #[test]
    fn matches_go_on_the_istio_vectors() {
        assert_eq!(scheme("http://test").as_deref(), Some("http"));
        assert_eq!(scheme("test"), None);
        assert_eq!(
            scheme("file:///opt/filters/openid.wasm").as_deref(),
            Some("file")
        );
        assert_eq!(scheme("fake://example.com").as_deref(), Some("fake"));
        assert_eq!(scheme("#%blah$#@"), None);
        assert_eq!(scheme("http://#%blah$#@"), None);
        assert_eq!(scheme("OCI://reg:5000/a/b:1").as_deref(), Some("oci"));
        // A bare host:port parses as scheme "reg" with an opaque part, as in Go.
        assert_eq!(scheme("reg:5000/x").as_deref(), Some("reg"));
        assert_eq!(scheme("http://reg:50x0/a"), None);
        assert_eq!(scheme(""), None);
    }
}
