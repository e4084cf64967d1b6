//! The small part of HTTP/1.1 (RFC 9112) that the test client and the echo upstream speak.
//!
//! Why not a crate: both ends must show header fields exactly as they crossed the wire
//! (order, repeated names, no merging), which `http::HeaderMap`-based clients and servers
//! do not promise. Both ends also use one request per connection (`connection: close`),
//! so framing is limited to: a start line, header fields, and a body delimited by
//! `content-length`, `transfer-encoding: chunked` or, for responses, the end of the
//! connection. Everything else is rejected with an error rather than guessed.

use std::io::{self, BufRead, Read};

use crate::headers::Headers;

/// Longest start line or header section accepted, so a confused peer cannot grow memory.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Largest body accepted; test bodies are small.
const MAX_BODY_BYTES: u64 = 16 * 1024 * 1024;

/// A start line and its header fields.
pub(crate) struct Head {
    pub(crate) start_line: String,
    pub(crate) headers: Headers,
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Reads one CRLF- (or LF-) terminated line without its terminator; `None` at EOF.
fn read_line(r: &mut impl BufRead, budget: &mut usize) -> io::Result<Option<String>> {
    let mut raw = Vec::new();
    let n = r
        .by_ref()
        .take(*budget as u64 + 1)
        .read_until(b'\n', &mut raw)?;
    if n == 0 {
        return Ok(None);
    }
    if n > *budget {
        return Err(invalid("HTTP head larger than 64 KiB"));
    }
    *budget -= n;
    if raw.last() != Some(&b'\n') {
        return Err(invalid("connection closed in the middle of a line"));
    }
    raw.pop();
    if raw.last() == Some(&b'\r') {
        raw.pop();
    }
    String::from_utf8(raw)
        .map(Some)
        .map_err(|_| invalid("HTTP head is not UTF-8"))
}

/// Reads a start line and header fields. `Ok(None)` means the peer closed the connection
/// before sending anything, which is how an idle keep-alive connection ends.
pub(crate) fn read_head(r: &mut impl BufRead) -> io::Result<Option<Head>> {
    let mut budget = MAX_HEAD_BYTES;
    let Some(start_line) = read_line(r, &mut budget)? else {
        return Ok(None);
    };
    let mut fields = Vec::new();
    loop {
        let line = read_line(r, &mut budget)?
            .ok_or_else(|| invalid("connection closed inside the header section"))?;
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            return Err(invalid("obsolete header line folding is not supported"));
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid(format!("header line without a colon: {line:?}")))?;
        if name.is_empty() || name.ends_with([' ', '\t']) {
            return Err(invalid(format!("malformed header name in {line:?}")));
        }
        fields.push((name.to_owned(), value.trim_matches([' ', '\t']).to_owned()));
    }
    Ok(Some(Head {
        start_line,
        headers: Headers::new(fields),
    }))
}

/// How the body after a head is delimited.
pub(crate) enum BodyFraming {
    /// No body (requests without length, 1xx/204/304 responses, replies to HEAD).
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// `transfer-encoding: chunked`.
    Chunked,
    /// Until the peer closes the connection (responses only).
    UntilClose,
}

/// Works out the framing from the headers; `is_response` allows read-until-close.
pub(crate) fn framing(headers: &Headers, is_response: bool) -> io::Result<BodyFraming> {
    if let Some(te) = headers.get("transfer-encoding") {
        if te.trim().eq_ignore_ascii_case("chunked") {
            return Ok(BodyFraming::Chunked);
        }
        return Err(invalid(format!("unsupported transfer-encoding {te:?}")));
    }
    match headers.get_all("content-length").as_slice() {
        [] if is_response => Ok(BodyFraming::UntilClose),
        [] => Ok(BodyFraming::None),
        [len] => len
            .trim()
            .parse()
            .map(BodyFraming::Length)
            .map_err(|_| invalid(format!("bad content-length {len:?}"))),
        many => Err(invalid(format!("several content-length fields: {many:?}"))),
    }
}

/// Reads a body with the given framing.
pub(crate) fn read_body(r: &mut impl BufRead, framing: BodyFraming) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    match framing {
        BodyFraming::None => {}
        BodyFraming::Length(len) => {
            if len > MAX_BODY_BYTES {
                return Err(invalid(format!(
                    "body of {len} bytes is over the 16 MiB limit"
                )));
            }
            r.take(len).read_to_end(&mut body)?;
            if body.len() as u64 != len {
                return Err(invalid("connection closed before the whole body arrived"));
            }
        }
        BodyFraming::UntilClose => {
            r.take(MAX_BODY_BYTES + 1).read_to_end(&mut body)?;
            if body.len() as u64 > MAX_BODY_BYTES {
                return Err(invalid("body is over the 16 MiB limit"));
            }
        }
        BodyFraming::Chunked => read_chunked(r, &mut body)?,
    }
    Ok(body)
}

fn read_chunked(r: &mut impl BufRead, body: &mut Vec<u8>) -> io::Result<()> {
    loop {
        let mut budget = MAX_HEAD_BYTES;
        let line = read_line(r, &mut budget)?
            .ok_or_else(|| invalid("connection closed before the last chunk"))?;
        let size_text = line.split(';').next().unwrap_or_default().trim();
        let size = u64::from_str_radix(size_text, 16)
            .map_err(|_| invalid(format!("bad chunk size line {line:?}")))?;
        if size == 0 {
            // Trailer fields are read and dropped: no test here looks at them.
            while !read_line(r, &mut budget)?
                .ok_or_else(|| invalid("connection closed inside the trailers"))?
                .is_empty()
            {}
            return Ok(());
        }
        if body.len() as u64 + size > MAX_BODY_BYTES {
            return Err(invalid("chunked body is over the 16 MiB limit"));
        }
        let before = body.len();
        r.take(size).read_to_end(body)?;
        if (body.len() - before) as u64 != size {
            return Err(invalid("connection closed inside a chunk"));
        }
        if read_line(r, &mut budget)?.as_deref() != Some("") {
            return Err(invalid("chunk data not followed by CRLF"));
        }
    }
}

/// Serializes a head plus a `content-length`-framed body, ready to write in one go.
pub(crate) fn encode(start_line: &str, fields: &[(String, String)], body: &[u8]) -> Vec<u8> {
    let length = format!("content-length: {}\r\n", body.len());
    let mut out = head(start_line, fields, &length);
    out.extend_from_slice(body);
    out
}

/// The start line, the fields, the framing field (if any) and `connection: close`.
fn head(start_line: &str, fields: &[(String, String)], framing: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(start_line.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in fields {
        out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
    }
    out.extend_from_slice(framing.as_bytes());
    out.extend_from_slice(b"connection: close\r\n\r\n");
    out
}

/// A message framed with `transfer-encoding: chunked` (the body in one chunk).
pub(crate) fn encode_chunked(
    start_line: &str,
    fields: &[(String, String)],
    body: &[u8],
) -> Vec<u8> {
    let mut out = head(start_line, fields, "transfer-encoding: chunked\r\n");
    if !body.is_empty() {
        out.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// A response without any length: its body ends when the connection closes.
pub(crate) fn encode_unframed(
    start_line: &str,
    fields: &[(String, String)],
    body: &[u8],
) -> Vec<u8> {
    let mut out = head(start_line, fields, "");
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_response(wire: &str) -> io::Result<(Head, Vec<u8>)> {
        let mut r = io::BufReader::new(wire.as_bytes());
        let head = read_head(&mut r)?.ok_or_else(|| invalid("no head"))?;
        let framing = framing(&head.headers, true)?;
        let body = read_body(&mut r, framing)?;
        Ok((head, body))
    }

    #[test]
    fn keeps_repeated_fields_in_order() -> io::Result<()> {
        let (head, body) = parse_response(
            "HTTP/1.1 200 OK\r\nx-a: 1\r\ny: 2\r\nX-A:  3 \r\ncontent-length: 2\r\n\r\nhi",
        )?;
        assert_eq!(head.start_line, "HTTP/1.1 200 OK");
        assert_eq!(head.headers.get_all("x-a"), ["1", "3"]);
        assert_eq!(body, b"hi");
        Ok(())
    }

    #[test]
    fn decodes_chunked_bodies_with_trailers() -> io::Result<()> {
        let (_, body) = parse_response(
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nt: 1\r\n\r\n",
        )?;
        assert_eq!(body, b"abcde");
        Ok(())
    }

    #[test]
    fn each_encoding_frames_the_body_its_way() -> io::Result<()> {
        let fields = vec![("x-a".to_owned(), "1".to_owned())];
        for (wire, framing) in [
            (
                encode("HTTP/1.1 200 OK", &fields, b"hello"),
                "content-length: 5",
            ),
            (
                encode_chunked("HTTP/1.1 200 OK", &fields, b"hello"),
                "transfer-encoding: chunked",
            ),
            (encode_unframed("HTTP/1.1 200 OK", &fields, b"hello"), ""),
        ] {
            let text = String::from_utf8_lossy(&wire).into_owned();
            let (head, body) = parse_response(&text)?;
            assert_eq!(body, b"hello", "{text:?}");
            assert_eq!(head.headers.get("x-a"), Some("1"));
            assert_eq!(head.headers.get("connection"), Some("close"));
            let framed = head.headers.contains("content-length")
                || head.headers.contains("transfer-encoding");
            assert_eq!(framed, !framing.is_empty(), "{text:?}");
            assert!(text.contains(framing), "{text:?}");
        }
        Ok(())
    }

    #[test]
    fn reads_until_close_without_length() -> io::Result<()> {
        let (_, body) = parse_response("HTTP/1.1 200 OK\r\n\r\nrest of it")?;
        assert_eq!(body, b"rest of it");
        Ok(())
    }

    #[test]
    fn rejects_truncated_bodies_bad_framing_and_folding() {
        for wire in [
            "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nab",
            "HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\nab",
            "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
            "HTTP/1.1 200 OK\r\nx: a\r\n b\r\n\r\n",
            "HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
        ] {
            assert!(parse_response(wire).is_err(), "accepted {wire:?}");
        }
    }
}
