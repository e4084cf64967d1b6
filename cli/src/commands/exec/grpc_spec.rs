//! The gRPC reply file of `weir exec --grpc-upstream CLUSTER=FILE`: how a gRPC cluster
//! answers every call and stream the plugin opens to it.
//!
//! # gRPC reply format
//!
//! ```text
//! grpc 0
//! initial x-served-by: policy-1
//! trailing x-decision-id: 42
//! delay 20
//!
//! <the response message: a serialized protobuf, byte for byte>
//! ```
//!
//! - The first line is the status: `grpc CODE [MESSAGE]`, with the gRPC code (0–16) and
//!   the `grpc-message` as the server sends it (`grpc 7 not%20allowed`); or the single
//!   word `timeout`, what Envoy gives a call that outlives its timeout (`UNAVAILABLE`,
//!   read as `upstream request timeout{response_timeout}`).
//! - Then, in any order: `initial NAME: VALUE` and `trailing NAME: VALUE` (metadata,
//!   repeatable), `delay MS` (the answer comes this many milliseconds later on the virtual
//!   clock; past the call's timeout the plugin gets Envoy's timeout).
//! - An empty line ends them; everything after it is the response message. No message
//!   with code 0 is what Envoy fails as `INTERNAL`; a message with an error code is
//!   refused (the plugin would never see it).
//!
//! A stream opened to the cluster gets the same: initial metadata, the message, trailing
//! metadata, the status, once the plugin has ended its side.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use weir_cli::UserError;
use weir_runtime::{GrpcAnswer, GrpcReply, GrpcStreamScript};

/// Reads a gRPC reply file.
pub(crate) fn reply_file(flag: &str, path: &Path) -> Result<GrpcAnswer> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("{flag}: reading the gRPC reply {}", path.display()))
        .map_err(|e| UserError(format!("{e:#}")))?;
    reply(&bytes)
        .map_err(|message| UserError(format!("{flag}: {}: {message}", path.display())).into())
}

/// Parses a gRPC reply (format in the module docs).
pub(crate) fn reply(bytes: &[u8]) -> Result<GrpcAnswer, String> {
    let (head, message) = super::spec::split_head(bytes);
    let head = std::str::from_utf8(head)
        .map_err(|_| "the status and metadata lines must be UTF-8".to_string())?;
    let mut lines = head.lines().map(|l| l.trim_end_matches('\r'));
    let status = lines.next().map(str::trim).unwrap_or_default();
    if status == "timeout" {
        if lines.next().is_some() || !message.is_empty() {
            return Err("`timeout` stands alone: nothing may follow it".into());
        }
        return Ok(GrpcReply::timeout().into());
    }
    let (code, text) = status_line(status)?;
    if code != 0 && !message.is_empty() {
        return Err(format!(
            "a message with the error code {code} never reaches the plugin: remove it"
        ));
    }
    let mut script = GrpcStreamScript::new().await_client_end();
    let mut trailing = Vec::new();
    for line in lines {
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        match word {
            "initial" => {
                let (name, value) = metadata(rest)?;
                script = script.initial_metadata(&name, &value);
            }
            "trailing" => trailing.push(metadata(rest)?),
            "delay" => {
                let ms: u64 = rest.trim().parse().map_err(|_| format!("delay: expected milliseconds, got {rest:?}"))?;
                script = script.wait(Duration::from_millis(ms));
            }
            _ => {
                return Err(format!(
                    "line {line:?}: expected `initial NAME: VALUE`, `trailing NAME: VALUE` or `delay MS`"
                ))
            }
        }
    }
    if !message.is_empty() {
        script = script.message(message.to_vec());
    }
    for (name, value) in &trailing {
        script = script.trailing_metadata(name, value);
    }
    Ok(script.close(code, text).into())
}

/// `grpc CODE [MESSAGE]`.
fn status_line(line: &str) -> Result<(u32, &str), String> {
    let rest = line.strip_prefix("grpc ").ok_or_else(|| {
        format!("status line {line:?}: expected `grpc CODE [MESSAGE]` or `timeout`")
    })?;
    let (code, text) = rest.trim().split_once(' ').unwrap_or((rest.trim(), ""));
    match code.parse::<u32>() {
        Ok(code) if code <= 16 => Ok((code, text.trim())),
        _ => Err(format!(
            "status line {line:?}: the code must be a gRPC code, 0 to 16"
        )),
    }
}

/// `NAME: VALUE`, the name lowercased as gRPC metadata keys are.
fn metadata(field: &str) -> Result<(String, String), String> {
    let (name, value) = field
        .split_once(':')
        .ok_or_else(|| format!("metadata {field:?}: expected NAME: VALUE"))?;
    let name = name.trim().to_ascii_lowercase();
    if name.is_empty()
        || name
            .bytes()
            .any(|b| !(b.is_ascii_alphanumeric() || b"-_.".contains(&b)))
    {
        return Err(format!(
            "metadata name {name:?}: use letters, digits, '-', '_' and '.'"
        ));
    }
    Ok((name, value.trim().to_string()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::reply;
    use weir_runtime::{GrpcAnswer, GrpcReply};

    #[test]
    fn ok_with_metadata_delay_and_message() {
        let answer =
            reply(b"grpc 0\ninitial x-a: 1\ntrailing x-b: 2\ndelay 20\n\n\x0a\x02hi").unwrap();
        let GrpcAnswer::Stream(script) = answer else {
            panic!("a script")
        };
        let debug = format!("{script:?}");
        assert!(debug.contains("Wait(20ms)"), "{debug}");
        assert!(debug.contains("x-a") && debug.contains("x-b"), "{debug}");
    }

    #[test]
    fn timeout_and_errors() {
        assert_eq!(
            reply(b"timeout").unwrap(),
            GrpcAnswer::Reply(GrpcReply::timeout())
        );
        assert!(reply(b"timeout\ninitial x: 1")
            .unwrap_err()
            .contains("stands alone"));
        assert!(reply(b"grpc 7 no\n\nbody")
            .unwrap_err()
            .contains("never reaches"));
        assert!(reply(b"grpc 17").unwrap_err().contains("0 to 16"));
        assert!(reply(b"HTTP/1.1 200 OK").unwrap_err().contains("grpc CODE"));
        assert!(reply(b"grpc 0\nbogus line")
            .unwrap_err()
            .contains("expected `initial"));
        assert!(reply(b"grpc 0\ndelay soon")
            .unwrap_err()
            .contains("milliseconds"));
        assert!(reply(b"grpc 0\ninitial bad name: x")
            .unwrap_err()
            .contains("metadata name"));
    }
}
