//! The two ways acl-check asks the policy server, which the chain's matrix runs each case
//! over: HTTP (`POST /check` on a plain cluster) and Envoy's ext_authz gRPC
//! (`protocol: ext_authz_grpc`, the reference server's `Authorization/Check` on an HTTP/2
//! cluster).

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Result;
use serde_json::{json, Value};
use weir_envoy_tests::{
    build_wasm, build_wasm_with, EchoUpstream, Envoy, EnvoyBuilder, GrpcReply, GrpcUpstream,
    PolicyServer, Reply, UserKeys, WasmFilter,
};

use super::ext_authz_wire::allow;
use super::filters::{acl_check, check_header, merged, SET_HEADER};
use super::tokens::USER;

/// How acl-check reaches the policy server. Its `Display` starts every failure message of
/// a matrix case, so a failure names the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Http,
    Grpc,
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Transport::Http => "over HTTP",
            Transport::Grpc => "over gRPC",
        })
    }
}

impl Transport {
    /// acl-check asking the `policy` cluster this way, with `extra` settings.
    pub fn acl_check(self, extra: Value) -> WasmFilter {
        match self {
            Transport::Http => acl_check(build_wasm("acl-check"), extra),
            Transport::Grpc => acl_check(
                build_wasm_with("acl-check", &["ext-authz-grpc"]),
                merged(json!({ "protocol": "ext_authz_grpc" }), extra),
            ),
        }
    }

    /// The reference policy server, answering this way too (over gRPC it still serves
    /// `POST /check` and its keys over HTTP on the same address).
    pub fn policy_server(self, idp_keys: UserKeys<'_>) -> Result<PolicyServer> {
        let builder = PolicyServer::builder(USER.issuer, USER.audience, idp_keys);
        match self {
            Transport::Http => builder.start(),
            Transport::Grpc => builder.ext_authz_grpc(SET_HEADER).start(),
        }
    }

    /// `builder` with the `policy` cluster at `addr`, of the kind this transport needs.
    pub fn policy_cluster(self, builder: EnvoyBuilder, addr: SocketAddr) -> EnvoyBuilder {
        match self {
            Transport::Http => builder.cluster("policy", addr),
            Transport::Grpc => builder.grpc_cluster("policy", addr),
        }
    }

    /// The chain `acl-check → check-header → upstream`, acl-check asking `policy` this way
    /// with `acl_extra` settings, check-header trusting `jwks` with request binding and
    /// single-use grants.
    pub fn chain(
        self,
        policy: SocketAddr,
        jwks: &str,
        upstream: &EchoUpstream,
        acl_extra: Value,
    ) -> Result<Envoy> {
        let builder = Envoy::builder()
            .http_filter(self.acl_check(acl_extra))
            .http_filter(check_header(
                jwks,
                json!({ "require_request_binding": true, "single_use_grants": true }),
            ));
        self.policy_cluster(builder, policy)
            .upstream(upstream.addr())
            .start()
    }
}

/// Servers from which acl-check gets no decision, by case; they run while this is held.
pub struct Undecided {
    pub cases: Vec<(&'static str, SocketAddr)>,
    _http: Vec<EchoUpstream>,
    _grpc: Vec<GrpcUpstream>,
}

impl Transport {
    /// The servers that give no decision this way, after `down` (nothing accepts) and
    /// `failing` (the reference server whose identity provider never answers). The slow
    /// one answers with a grant-shaped `a.b.c` 1.5 s late: had the 200 ms timeout not cut
    /// the call, check-header would answer 401, not `status_on_error`.
    pub fn undecided(self, down: SocketAddr, failing: SocketAddr) -> Result<Undecided> {
        let late = Duration::from_millis(1500);
        Ok(match self {
            Transport::Http => {
                let slow = EchoUpstream::with_reply(Reply::status(200).body("a.b.c").delay(late))?;
                let garbage =
                    EchoUpstream::with_reply(Reply::status(200).body("<html>welcome</html>"))?;
                Undecided {
                    cases: vec![
                        ("down", down),
                        ("500", failing),
                        ("slow past the timeout", slow.addr()),
                        ("garbage body", garbage.addr()),
                    ],
                    _http: vec![slow, garbage],
                    _grpc: Vec::new(),
                }
            }
            Transport::Grpc => {
                let slow = GrpcUpstream::start(move |_| {
                    GrpcReply::ok(vec![allow(&[(SET_HEADER, "a.b.c")], &[])]).delay(late)
                })?;
                let garbage =
                    GrpcUpstream::start(|_| GrpcReply::ok(vec![b"\xff\xff\xff".to_vec()]))?;
                let error = GrpcUpstream::start(|_| GrpcReply::status(13, "internal"))?;
                let not_a_grant = GrpcUpstream::start(|_| {
                    GrpcReply::ok(vec![allow(&[(SET_HEADER, "<html>")], &[])])
                })?;
                let http1 = EchoUpstream::with_reply(Reply::status(200).body("a.b.c"))?;
                Undecided {
                    cases: vec![
                        ("down", down),
                        ("UNAVAILABLE from the policy server", failing),
                        ("slow past the timeout", slow.addr()),
                        ("garbage message", garbage.addr()),
                        ("gRPC error status", error.addr()),
                        ("set_header not a compact JWS", not_a_grant.addr()),
                        ("an HTTP/1 server", http1.addr()),
                    ],
                    _http: vec![http1],
                    _grpc: vec![slow, garbage, error, not_a_grant],
                }
            }
        })
    }
}
