//! One request's event: how a worker puts it on the queue, and how the shipping VM checks
//! it and writes it as JSON.
//!
//! On the queue an event is the line `<status> <method> <path>`: short, and cheap for
//! every worker to write. The shipping VM parses it again rather than forwarding bytes,
//! because anything in the VM id can enqueue on the queue (see the README): only items
//! that parse become JSON, with every string escaped.

/// The longest path kept; longer ones are cut (at a character boundary).
pub const MAX_PATH_BYTES: usize = 512;
/// The longest method accepted (Envoy allows any token; real ones are short).
const MAX_METHOD_BYTES: usize = 32;

/// The queue item for a request: the query string is left out (it can carry tokens), the
/// path cut to [`MAX_PATH_BYTES`]. `status` is 0 when the response had none.
pub fn item(method: &str, path: &str, status: u16) -> Vec<u8> {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let mut cut = path.len().min(MAX_PATH_BYTES);
    while !path.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut method = method;
    if method.len() > MAX_METHOD_BYTES || !is_token(method) {
        method = "-";
    }
    format!("{status:03} {method} {}", &path[..cut]).into_bytes()
}

/// The event as a JSON object, or `None` when the item is not one [`item`] writes.
pub fn to_json(item: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(item).ok()?;
    let mut parts = text.splitn(3, ' ');
    let (status, method, path) = (parts.next()?, parts.next()?, parts.next()?);
    let status: u16 = (status.len() == 3).then(|| status.parse().ok()).flatten()?;
    if !(method == "-" || method.len() <= MAX_METHOD_BYTES && is_token(method))
        || path.len() > MAX_PATH_BYTES
    {
        return None;
    }
    let mut json = format!(r#"{{"method":"{method}","status":{status},"path":""#);
    escape_into(&mut json, path);
    json.push_str("\"}");
    Some(json)
}

/// An HTTP method token (RFC 9110 tchar), so it needs no JSON escaping.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Appends `s` as the inside of a JSON string.
fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_leave_out_the_query_and_parse_back_to_json() {
        let item = item("GET", "/a/b?token=secret#frag", 200);
        assert_eq!(item, b"200 GET /a/b");
        assert_eq!(
            to_json(&item).as_deref(),
            Some(r#"{"method":"GET","status":200,"path":"/a/b"}"#)
        );
    }

    #[test]
    fn strings_are_escaped_and_junk_is_refused() {
        assert_eq!(
            to_json(b"404 POST /x\"y\\z\x01").as_deref(),
            Some(r#"{"method":"POST","status":404,"path":"/x\"y\\z\u0001"}"#)
        );
        for junk in [
            &b"20 GET /"[..],
            b"200 G\"T /",
            b"abc GET /",
            b"200 GET",
            b"\xff GET /",
        ] {
            assert_eq!(to_json(junk), None, "{junk:?}");
        }
        assert_eq!(
            to_json(&item("G\"T", &"é".repeat(400), 0)).map(|j| j.len() < 600),
            Some(true)
        );
    }
}
