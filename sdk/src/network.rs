//! NETWORK (L4) filters: one [`NetworkFilter`] value per TCP connection.
//!
//! A WasmPlugin with `type: NETWORK` runs as an Envoy network filter in front of
//! `tcp_proxy` (or any other terminal filter): it sees the connection open, the bytes in
//! both directions, and the close events.
//!
//! ```no_run
//! use weir::prelude::*;
//! use weir::network::{Connection, ConnectionFlow, NetworkFilter};
//!
//! #[derive(Deserialize)]
//! struct Config { banned_prefix: String }
//! impl Validate for Config {}
//!
//! struct Guard { cfg: Shared<Config> }
//!
//! impl NetworkFilter for Guard {
//!     fn on_new_connection(&mut self, conn: &Connection) -> Result<ConnectionFlow> {
//!         let source = conn.source_address()?.unwrap_or_default();
//!         Ok(if source.starts_with(&self.cfg.banned_prefix) { ConnectionFlow::Close } else { ConnectionFlow::Continue })
//!     }
//! }
//!
//! weir::network_plugin!(Config => |cfg| Guard { cfg });
//! ```

use crate::error::{Error, Result};
use crate::host::{property, property_string};
use crate::http::{DownstreamData, UpstreamData};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, StreamContext};
use proxy_wasm::types::{Action, PeerType};
use std::marker::PhantomData;

/// What a network hook tells Envoy to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a ConnectionFlow does nothing unless returned from a hook"]
pub enum ConnectionFlow {
    /// Pass the data (or the new connection) on.
    Continue,
    /// Hold the data: Envoy buffers it and calls the hook again with everything so far.
    Pause,
    /// Close the connection in both directions; nothing more is forwarded.
    Close,
}

/// Which side closed a connection, as Envoy reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// Envoy closed it (for example after a filter asked to).
    Local,
    /// The other end closed it.
    Remote,
    /// Envoy did not say.
    Unknown,
}

impl From<PeerType> for Peer {
    fn from(p: PeerType) -> Peer {
        match p {
            PeerType::Local => Peer::Local,
            PeerType::Remote => Peer::Remote,
            _ => Peer::Unknown,
        }
    }
}

/// Facts about the connection being filtered, read from Envoy's attributes.
#[derive(Debug)]
pub struct Connection {
    _vm: PhantomData<*const ()>, // only valid inside its callback's VM
}

impl Connection {
    fn new() -> Self {
        Connection { _vm: PhantomData }
    }

    /// The client's address, `ip:port` (`source.address`).
    pub fn source_address(&self) -> Result<Option<String>> {
        property_string(&["source", "address"])
    }

    /// The address the client connected to, `ip:port` (`destination.address`).
    pub fn destination_address(&self) -> Result<Option<String>> {
        property_string(&["destination", "address"])
    }

    /// The TLS SNI the client asked for (`connection.requested_server_name`), if any.
    pub fn requested_server_name(&self) -> Result<Option<String>> {
        Ok(property_string(&["connection", "requested_server_name"])?.filter(|s| !s.is_empty()))
    }

    /// Any other connection attribute, raw.
    pub fn property(&self, path: &[&str]) -> Result<Option<Vec<u8>>> {
        property(path)
    }
}

/// The per-connection part of a NETWORK plugin. Every hook has a default that continues.
///
/// An `Err` from a hook is logged at error level and closes the connection: a filter that
/// cannot decide fails closed.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a network filter",
    note = "implement `weir::network::NetworkFilter` for `{Self}`; every hook has a default"
)]
pub trait NetworkFilter: 'static {
    /// A client connected.
    fn on_new_connection(&mut self, conn: &Connection) -> Result<ConnectionFlow> {
        let _ = conn;
        Ok(ConnectionFlow::Continue)
    }

    /// Bytes arrived from the client.
    fn on_downstream_data(&mut self, data: &mut DownstreamData) -> Result<ConnectionFlow> {
        let _ = data;
        Ok(ConnectionFlow::Continue)
    }

    /// Bytes arrived from the upstream.
    fn on_upstream_data(&mut self, data: &mut UpstreamData) -> Result<ConnectionFlow> {
        let _ = data;
        Ok(ConnectionFlow::Continue)
    }

    /// The client side of the connection closed.
    fn on_downstream_close(&mut self, peer: Peer) {
        let _ = peer;
    }

    /// The upstream side of the connection closed.
    fn on_upstream_close(&mut self, peer: Peer) {
        let _ = peer;
    }

    /// The connection is over: the place for accounting. Called once.
    fn on_connection_end(&mut self) {}
}

/// Adapts a [`NetworkFilter`] to proxy-wasm's stream callbacks.
pub(crate) struct NetworkStream<F> {
    filter: F,
    closed: bool,
}

impl<F: NetworkFilter> NetworkStream<F> {
    pub(crate) fn new(filter: F) -> Self {
        NetworkStream {
            filter,
            closed: false,
        }
    }

    fn finish(&mut self, what: &str, result: Result<ConnectionFlow>) -> Action {
        let flow = result.unwrap_or_else(|err: Error| {
            log::error!("{what}: {err}; closing the connection");
            ConnectionFlow::Close
        });
        match flow {
            ConnectionFlow::Continue => Action::Continue,
            ConnectionFlow::Pause => Action::Pause,
            ConnectionFlow::Close => {
                self.close();
                Action::Pause
            }
        }
    }

    fn close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        if let Err(status) = hostcalls::close_downstream() {
            log::error!(
                "closing the downstream connection failed: host status {}",
                status as u32
            );
        }
        // The upstream may not be connected yet; Envoy then has nothing to close.
        let _ = hostcalls::close_upstream();
    }
}

impl<F: NetworkFilter> Context for NetworkStream<F> {}

impl<F: NetworkFilter> StreamContext for NetworkStream<F> {
    fn on_new_connection(&mut self) -> Action {
        let result = self.filter.on_new_connection(&Connection::new());
        self.finish("new connection", result)
    }

    fn on_downstream_data(&mut self, data_size: usize, end_of_stream: bool) -> Action {
        if self.closed {
            return Action::Pause;
        }
        let result = self
            .filter
            .on_downstream_data(&mut DownstreamData::new(data_size, end_of_stream));
        self.finish("downstream data", result)
    }

    fn on_upstream_data(&mut self, data_size: usize, end_of_stream: bool) -> Action {
        if self.closed {
            return Action::Pause;
        }
        let result = self
            .filter
            .on_upstream_data(&mut UpstreamData::new(data_size, end_of_stream));
        self.finish("upstream data", result)
    }

    fn on_downstream_close(&mut self, peer_type: PeerType) {
        self.filter.on_downstream_close(peer_type.into());
    }

    fn on_upstream_close(&mut self, peer_type: PeerType) {
        self.filter.on_upstream_close(peer_type.into());
    }

    fn on_log(&mut self) {
        self.filter.on_connection_end();
    }
}
