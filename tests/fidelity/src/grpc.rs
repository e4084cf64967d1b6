//! The gRPC part of a scenario: how each gRPC cluster's server behaves
//! ([`GrpcBehaviour`], mapped here onto the scripted replies of weir-envoy-tests'
//! `GrpcUpstream` for Envoy and onto weir-runtime's gRPC handlers), and the calls each
//! cluster received ([`GrpcCallSeen`]).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use weir_envoy_tests::{GrpcReply, GrpcUpstream};
use weir_runtime::{GrpcRequest, GrpcStreamScript, Outcome, PluginBuilder};

use crate::observed::Observed;
use crate::scenario::{Fields, Scenario};

/// What a gRPC cluster's server does with every call, whatever the method: it reads the
/// client's messages until the client ends its side, waits `delayMs`, sends
/// `initialMetadata` and each of `replies` (`Text` messages), then closes with `code`
/// and `message`; `trailingMetadata` goes with an error status (tonic sends an error
/// without replies as a trailers-only response).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GrpcBehaviour {
    /// The `text` of each reply message, in order.
    #[serde(default)]
    pub replies: Vec<String>,
    /// The gRPC status code (0: OK).
    #[serde(default)]
    pub code: i32,
    /// The `grpc-message`.
    #[serde(default)]
    pub message: String,
    /// Milliseconds between the client's end and the answer.
    #[serde(default)]
    pub delay_ms: u64,
    /// Metadata sent with the response headers.
    #[serde(default)]
    pub initial_metadata: Fields,
    /// Metadata sent with an error status.
    #[serde(default)]
    pub trailing_metadata: Fields,
}

/// One gRPC call as its cluster received it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GrpcCallSeen {
    /// The cluster called.
    pub cluster: String,
    /// `/<service>/<method>`.
    pub path: String,
    /// Selected metadata (the names the expectation lists); `null` when absent.
    #[serde(default)]
    pub metadata: BTreeMap<String, Option<String>>,
    /// The client's messages, as their `text`.
    #[serde(default)]
    pub messages: Vec<String>,
}

/// Checks what tonic can serve: trailing metadata travels only with an error status.
pub fn validate(scenario: &Scenario) -> anyhow::Result<()> {
    for (cluster, behaviour) in &scenario.grpc_clusters {
        if behaviour.code == 0 && !behaviour.trailing_metadata.is_empty() {
            anyhow::bail!("gRPC cluster {cluster}: `trailingMetadata` needs an error `code`");
        }
    }
    Ok(())
}

/// The selected metadata of `cluster`'s calls, read with `get`.
fn selected(
    expect: &Observed,
    cluster: &str,
    get: impl Fn(&str) -> Option<String>,
) -> BTreeMap<String, Option<String>> {
    expect
        .grpc_calls
        .iter()
        .flatten()
        .find(|call| call.cluster == cluster)
        .map(|call| {
            call.metadata
                .keys()
                .map(|name| (name.clone(), get(name)))
                .collect()
        })
        .unwrap_or_default()
}

/// `Text { text }` as the guest decodes it, or the bytes lossily.
fn text_of(bytes: &[u8]) -> String {
    match bytes {
        [0x0a, len, rest @ ..] if usize::from(*len) == rest.len() => {
            String::from_utf8_lossy(rest).into_owned()
        }
        [] => String::new(),
        other => String::from_utf8_lossy(other).into_owned(),
    }
}

/// The one message type of the scenarios' service: `message Text { string text = 1; }`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Text {
    /// The text.
    #[prost(string, tag = "1")]
    pub text: String,
}

fn encode_text(text: &str) -> Vec<u8> {
    prost::Message::encode_to_vec(&Text {
        text: text.to_owned(),
    })
}

/// `Text { text }` as the server decodes it, or the bytes lossily.
fn decode_text(bytes: &[u8]) -> String {
    match <Text as prost::Message>::decode(bytes) {
        Ok(message) => message.text,
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// The server's answer to every call, for Envoy.
fn reply(behaviour: &GrpcBehaviour) -> GrpcReply {
    let messages = behaviour.replies.iter().map(|r| encode_text(r)).collect();
    let mut reply = GrpcReply::ok(messages).delay(Duration::from_millis(behaviour.delay_ms));
    if behaviour.code != 0 {
        reply = reply.then_status(behaviour.code as u32, &behaviour.message);
    }
    for (name, value) in &behaviour.initial_metadata {
        reply = reply.metadata(name, value);
    }
    for (name, value) in &behaviour.trailing_metadata {
        reply = reply.trailer(name, value);
    }
    reply
}

/// Starts one server per gRPC cluster, for Envoy.
pub fn start_servers(scenario: &Scenario) -> anyhow::Result<Vec<(String, GrpcUpstream)>> {
    scenario
        .grpc_clusters
        .iter()
        .map(|(cluster, behaviour)| {
            let behaviour = behaviour.clone();
            Ok((
                cluster.clone(),
                GrpcUpstream::start(move |_| reply(&behaviour))?,
            ))
        })
        .collect()
}

/// What Envoy's gRPC clusters received, when the expectation lists calls.
pub fn seen_on_envoy(
    scenario: &Scenario,
    servers: &[(String, GrpcUpstream)],
) -> Option<Vec<GrpcCallSeen>> {
    scenario.expect.grpc_calls.as_ref()?;
    let mut seen = Vec::new();
    for (cluster, server) in servers {
        for call in server.calls() {
            seen.push(GrpcCallSeen {
                cluster: cluster.clone(),
                path: call.path.clone(),
                metadata: selected(&scenario.expect, cluster, |name| {
                    call.metadata
                        .iter()
                        .find(|(k, _)| k == name)
                        .map(|(_, v)| v.clone())
                }),
                messages: call.messages.iter().map(|m| decode_text(m)).collect(),
            });
        }
    }
    Some(seen)
}

/// The same server behaviour as weir-runtime gRPC handlers.
pub fn runtime_handlers(scenario: &Scenario, mut builder: PluginBuilder) -> PluginBuilder {
    for (cluster, behaviour) in &scenario.grpc_clusters {
        let behaviour = behaviour.clone();
        builder = builder.grpc_upstream(cluster, move |_: &GrpcRequest| script(&behaviour));
    }
    builder
}

fn script(behaviour: &GrpcBehaviour) -> GrpcStreamScript {
    let mut script = GrpcStreamScript::new()
        .await_client_end()
        .wait(Duration::from_millis(behaviour.delay_ms));
    // An error before any reply goes out trailers-only, without initial metadata.
    if !(behaviour.replies.is_empty() && behaviour.code != 0) {
        for (name, value) in &behaviour.initial_metadata {
            script = script.initial_metadata(name, value);
        }
    }
    for reply in &behaviour.replies {
        script = script.message(encode_text(reply));
    }
    for (name, value) in &behaviour.trailing_metadata {
        script = script.trailing_metadata(name, value);
    }
    script.close(
        behaviour.code as u32,
        &tonic_wire_message(&behaviour.message),
    )
}

/// The `grpc-message` as tonic writes it: controls, non-ASCII and `` "#%<>`?{}`` and the
/// space percent-encoded (Envoy passes it on undecoded).
fn tonic_wire_message(message: &str) -> String {
    let mut out = String::new();
    for byte in message.bytes() {
        if byte.is_ascii_control() || !byte.is_ascii() || b" \"#%<>`?{}".contains(&byte) {
            out.push_str(&format!("%{byte:02X}"));
        } else {
            out.push(char::from(byte));
        }
    }
    out
}

/// What weir-runtime's gRPC clusters received, when the expectation lists calls. A call
/// the plugin cancelled at once never left Envoy, so it is left out here too.
pub fn seen_on_runtime(scenario: &Scenario, out: &Outcome) -> Option<Vec<GrpcCallSeen>> {
    scenario.expect.grpc_calls.as_ref()?;
    let mut seen: Vec<GrpcCallSeen> = out
        .grpc_calls()
        .iter()
        .filter(|call| !call.cancelled())
        .map(|call| {
            let request = call.request();
            let messages = if request.is_stream() {
                call.sent_messages().iter().map(|m| text_of(m)).collect()
            } else {
                vec![text_of(request.message())]
            };
            GrpcCallSeen {
                cluster: call.cluster().to_owned(),
                path: request.path(),
                metadata: selected(&scenario.expect, call.cluster(), |name| {
                    request.metadata(name).map(str::to_owned)
                }),
                messages,
            }
        })
        .collect();
    seen.sort_by(|a, b| a.cluster.cmp(&b.cluster));
    Some(seen)
}
