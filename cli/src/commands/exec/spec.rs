//! What `weir exec` reads from its flags: the request line, headers, bodies, properties,
//! and canned responses (for `--response` and `--upstream`).
//!
//! # Canned response format
//!
//! An HTTP/1-style message, the way `curl -i` prints one:
//!
//! ```text
//! HTTP/1.1 200 OK
//! content-type: application/json
//! x-cache: miss
//!
//! {"allowed": true}
//! ```
//!
//! - The first line is the status: `HTTP/1.1 200 OK`, `HTTP/2 404` or just `200`.
//!   Two words stand for callouts that get no response: `fail` (the call fails and the
//!   plugin sees 0 headers, the ABI's failure signal) and `timeout` (what Envoy synthesizes
//!   when a call times out: 504 `upstream request timeout`).
//! - Header lines `name: value` follow, names case-insensitive, duplicates kept in order.
//! - An empty line ends the headers; everything after it, byte for byte, is the body
//!   (`content-length` is set from it). Lines may end in `\r\n` or `\n`.

use std::path::Path;

use anyhow::{Context, Result};
use weir_cli::UserError;
use weir_runtime::{Request, Response};

/// A user error carrying the flag that was wrong.
fn bad(flag: &str, message: impl std::fmt::Display) -> anyhow::Error {
    UserError(format!("{flag}: {message}")).into()
}

/// Reads `@file` as the file's bytes; anything else is the text itself.
pub(crate) fn bytes_arg(flag: &str, value: &str) -> Result<Vec<u8>> {
    match value.strip_prefix('@') {
        Some(path) => std::fs::read(path)
            .with_context(|| format!("{flag}: reading {path}"))
            .map_err(|e| user_io(flag, e)),
        None => Ok(value.as_bytes().to_vec()),
    }
}

/// `--time`: RFC 3339 with an offset (`2026-12-03T10:00:00Z`) or whole Unix seconds.
pub(crate) fn time_arg(flag: &str, value: &str) -> Result<std::time::SystemTime> {
    let value = value.trim();
    let timestamp = match value.parse::<i64>() {
        Ok(seconds) => jiff::Timestamp::from_second(seconds).map_err(|e| bad(flag, e))?,
        Err(_) => value.parse::<jiff::Timestamp>().map_err(|e| {
            bad(
                flag,
                format!(
                    "'{value}' is neither RFC 3339 (2026-12-03T10:00:00Z) nor Unix seconds: {e}"
                ),
            )
        })?,
    };
    if timestamp < jiff::Timestamp::UNIX_EPOCH {
        return Err(bad(
            flag,
            format!("'{value}' is before 1970; the proxy's clock cannot show it"),
        ));
    }
    Ok(std::time::SystemTime::from(timestamp))
}

/// Missing files are the user's to fix: keep the I/O error as the cause, exit 1.
fn user_io(flag: &str, error: anyhow::Error) -> anyhow::Error {
    let message = format!("{flag}: {}", error.root_cause());
    error.context(UserError(message))
}

/// `GET /path` (an `HTTP/1.1` suffix is allowed and ignored) → a request with default
/// `:authority` `example.com` and `:scheme` `http`.
pub(crate) fn request_line(line: &str) -> Result<Request> {
    let mut words = line.split_whitespace();
    let (Some(method), Some(path)) = (words.next(), words.next()) else {
        return Err(bad(
            "--request",
            format!("expected 'METHOD /path', got '{line}'"),
        ));
    };
    if !path.starts_with('/') {
        return Err(bad(
            "--request",
            format!("the path must start with '/', got '{path}'"),
        ));
    }
    if let Some(extra) = words.next().filter(|w| !w.starts_with("HTTP/")) {
        return Err(bad(
            "--request",
            format!("unexpected '{extra}' after the path"),
        ));
    }
    Ok(Request::new(&method.to_ascii_uppercase(), path))
}

/// Splits `name: value`.
pub(crate) fn header(flag: &str, field: &str) -> Result<(String, String)> {
    let Some((name, value)) = field
        .split_once(':')
        .filter(|(name, _)| !name.trim().is_empty())
    else {
        return Err(bad(flag, format!("expected 'name: value', got '{field}'")));
    };
    Ok((name.trim().to_ascii_lowercase(), value.trim().to_string()))
}

/// Adds a client header; `host` becomes `:authority`, as Envoy does with HTTP/1 requests.
pub(crate) fn add_request_header(request: Request, name: &str, value: &str) -> Request {
    if name == "host" {
        request.authority(value)
    } else {
        request.header(name, value)
    }
}

/// Splits `KEY=VALUE` (the value may contain `=`).
pub(crate) fn key_value<'a>(flag: &str, pair: &'a str) -> Result<(&'a str, &'a str)> {
    pair.split_once('=')
        .filter(|(key, _)| !key.is_empty())
        .ok_or_else(|| bad(flag, format!("expected KEY=VALUE, got '{pair}'")))
}

/// A `--property` value: text, or typed with an `int:`/`bool:` prefix (Envoy serializes
/// integers such as `source.port` as 8 little-endian bytes, booleans as one byte).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PropertyArg {
    /// UTF-8 bytes.
    Text(String),
    /// An int64.
    Int(i64),
    /// A bool.
    Bool(bool),
}

/// Parses a `--property` value.
pub(crate) fn property_value(value: &str) -> Result<PropertyArg> {
    if let Some(int) = value.strip_prefix("int:") {
        let parsed = int
            .parse()
            .map_err(|_| bad("--property", format!("'{int}' is not an integer")))?;
        return Ok(PropertyArg::Int(parsed));
    }
    if let Some(flag) = value.strip_prefix("bool:") {
        let parsed = flag
            .parse()
            .map_err(|_| bad("--property", format!("'{flag}' is not true or false")))?;
        return Ok(PropertyArg::Bool(parsed));
    }
    Ok(PropertyArg::Text(value.to_string()))
}

/// Reads a canned response file (see the module docs for the format).
pub(crate) fn canned_file(flag: &str, path: &Path) -> Result<Response> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("{flag}: reading the canned response {}", path.display()))
        .map_err(|e| user_io(flag, e))?;
    canned(&bytes).map_err(|message| bad(flag, format!("{}: {message}", path.display())))
}

/// Parses a canned response (see the module docs for the format).
pub(crate) fn canned(bytes: &[u8]) -> Result<Response, String> {
    let (head, body) = split_head(bytes);
    let head = std::str::from_utf8(head)
        .map_err(|_| "the status line and headers must be UTF-8".to_string())?;
    let mut lines = head.lines().map(|l| l.trim_end_matches('\r'));
    let status_line = lines.next().map(str::trim).unwrap_or_default();
    let mut response = match status_line {
        "fail" => return no_extra_lines(lines, body, Response::failure()),
        "timeout" => return no_extra_lines(lines, body, Response::timeout()),
        _ => Response::status(status_code(status_line)?),
    };
    for line in lines {
        let (name, value) = header("header", line).map_err(|e| format!("{e:#}"))?;
        response = response.header(&name, &value);
    }
    if !body.is_empty() {
        response = response.body(body.to_vec());
    }
    Ok(response)
}

/// `fail` and `timeout` stand alone: headers or a body after them would be silently lost.
fn no_extra_lines<'a>(
    mut lines: impl Iterator<Item = &'a str>,
    body: &[u8],
    response: Response,
) -> Result<Response, String> {
    if lines.next().is_some() || !body.is_empty() {
        return Err("'fail' and 'timeout' take no headers or body".into());
    }
    Ok(response)
}

/// The status code of `HTTP/1.1 200 OK`, `HTTP/2 200` or `200`.
fn status_code(line: &str) -> Result<u16, String> {
    let mut words = line.split_whitespace();
    let first = words
        .next()
        .ok_or("empty: the first line must be a status such as 'HTTP/1.1 200 OK' or '200'")?;
    let code = if first.starts_with("HTTP/") {
        words.next().unwrap_or_default()
    } else {
        first
    };
    match code.parse::<u16>() {
        Ok(code) if (100..=599).contains(&code) => Ok(code),
        _ => Err(format!(
            "'{line}' is not a status line ('HTTP/1.1 200 OK', '200', 'fail' or 'timeout')"
        )),
    }
}

/// Splits at the first empty line (`\n\n` or `\r\n\r\n`): head, body.
pub(crate) fn split_head(bytes: &[u8]) -> (&[u8], &[u8]) {
    let mut line_start = 0;
    for (i, byte) in bytes.iter().enumerate() {
        if *byte != b'\n' {
            continue;
        }
        let line = &bytes[line_start..i];
        if line.is_empty() || line == b"\r" {
            return (&bytes[..line_start], &bytes[i + 1..]);
        }
        line_start = i + 1;
    }
    (bytes, &[])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canned_response_with_headers_and_body() {
        let response =
            canned(b"HTTP/1.1 201 Created\r\nX-A: 1\r\nx-a: 2\r\n\r\nhello\n").expect("parses");
        assert_eq!(response.status_code(), 201);
        assert_eq!(response.headers().get_all("x-a"), ["1", "2"]);
        assert_eq!(response.body_bytes(), b"hello\n");
        assert_eq!(response.header_value("content-length"), Some("6"));
    }

    #[test]
    fn bare_status_and_special_words() {
        assert_eq!(canned(b"404\n").expect("parses").status_code(), 404);
        assert_eq!(canned(b"fail").expect("parses").status_code(), 0);
        assert_eq!(canned(b"timeout\n").expect("parses").status_code(), 504);
        assert!(canned(b"fail\nx: y\n").is_err());
    }

    #[test]
    fn bad_status_lines_are_errors() {
        for input in [&b""[..], b"HTTP/1.1 OK\n", b"999\n", b"ok\n"] {
            assert!(
                canned(input).is_err(),
                "{:?} accepted",
                String::from_utf8_lossy(input)
            );
        }
        assert!(canned(b"200\nno colon here\n").is_err());
    }

    #[test]
    fn request_lines() {
        let request = request_line("post /submit HTTP/1.1").expect("parses");
        assert_eq!((request.method(), request.path()), ("POST", "/submit"));
        assert!(request_line("GET").is_err());
        assert!(request_line("GET path").is_err());
        assert!(request_line("GET /a /b").is_err());
    }

    #[test]
    fn times_in_rfc_3339_or_unix_seconds() {
        let at = |v| {
            time_arg("--time", v)
                .expect(v)
                .duration_since(std::time::UNIX_EPOCH)
                .expect("after epoch")
        };
        assert_eq!(at("2026-01-01T00:00:00Z").as_secs(), 1_767_225_600);
        assert_eq!(at("2026-01-01T01:00:00+01:00").as_secs(), 1_767_225_600);
        assert_eq!(at("1767225600").as_secs(), 1_767_225_600);
        for bad in ["yesterday", "2026-01-01", "-5", "1969-12-31T23:59:59Z"] {
            assert!(time_arg("--time", bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn typed_properties() {
        assert_eq!(
            property_value("int:8080").expect("int"),
            PropertyArg::Int(8080)
        );
        assert_eq!(
            property_value("bool:true").expect("bool"),
            PropertyArg::Bool(true)
        );
        assert_eq!(
            property_value("10.0.0.1").expect("text"),
            PropertyArg::Text("10.0.0.1".into())
        );
        assert!(property_value("int:x").is_err());
    }
}
