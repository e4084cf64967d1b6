//! A one-connection TCP upstream on 127.0.0.1 for NETWORK scenarios in Envoy, and the
//! client side of the exchange.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

/// How long either side waits for bytes that may never come (a closed connection).
const IDLE: Duration = Duration::from_secs(2);

/// Accepts connections; from each it reads until it has `expect_len` bytes (or the peer
/// stops sending), records them, answers `reply` and closes.
#[derive(Debug)]
pub struct TcpUpstream {
    addr: SocketAddr,
    received: Arc<Mutex<Vec<u8>>>,
    _accept: JoinHandle<()>,
}

impl TcpUpstream {
    /// Starts the server in a background thread; it lives as long as the test process,
    /// blocked in `accept`, which costs nothing.
    pub fn start(expect_len: usize, reply: Vec<u8>) -> Result<Self> {
        let listener =
            TcpListener::bind("127.0.0.1:0").context("binding the TCP upstream on 127.0.0.1")?;
        let addr = listener.local_addr()?;
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = received.clone();
        let accept = std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let got = read_up_to(&stream, expect_len);
                sink.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .extend(got);
                let _ = (&stream).write_all(&reply);
                let _ = stream.shutdown(std::net::Shutdown::Both);
            }
        });
        Ok(TcpUpstream {
            addr,
            received,
            _accept: accept,
        })
    }

    /// Where Envoy's TCP proxy should connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every byte received so far, over all connections.
    pub fn received(&self) -> Vec<u8> {
        self.received
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

/// Reads until `want` bytes arrived, the peer closed, or nothing came for [`IDLE`].
fn read_up_to(mut stream: &TcpStream, want: usize) -> Vec<u8> {
    let _ = stream.set_read_timeout(Some(IDLE));
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while got.len() < want {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    got
}

/// What the client saw on its connection.
#[derive(Debug)]
pub struct ClientSaw {
    /// Bytes received before the connection ended.
    pub received: Vec<u8>,
    /// Whether the proxy closed the connection (rather than the wait running out).
    pub closed: bool,
}

/// Connects to `addr`, sends `bytes`, and reads until the proxy closes or [`IDLE`] passes.
pub fn exchange(addr: SocketAddr, bytes: &[u8]) -> Result<ClientSaw> {
    let mut stream = TcpStream::connect_timeout(&addr, IDLE)
        .with_context(|| format!("connecting to Envoy's TCP listener {addr}"))?;
    stream.set_read_timeout(Some(IDLE))?;
    // A proxy that closes at once may reset the connection before the write: that is a
    // close, seen as such by the read below.
    let _ = stream.write_all(bytes);
    let deadline = Instant::now() + IDLE;
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => {
                return Ok(ClientSaw {
                    received,
                    closed: true,
                })
            }
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {
                return Ok(ClientSaw {
                    received,
                    closed: true,
                })
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Ok(ClientSaw {
                    received,
                    closed: false,
                })
            }
            Err(e) => return Err(e).context("reading from Envoy's TCP listener"),
        }
        if Instant::now() > deadline {
            return Ok(ClientSaw {
                received,
                closed: false,
            });
        }
    }
}
