//! An HTTP/1.1 upstream on 127.0.0.1 that records what Envoy forwarded to it.

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::headers::Headers;
use crate::http1;

/// A request as the upstream received it.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// The method, e.g. `GET`.
    pub method: String,
    /// The request target, e.g. `/path?q=1`.
    pub path: String,
    /// Header fields in wire order, repeated names kept.
    pub headers: Headers,
    /// The de-chunked body.
    pub body: Vec<u8>,
}

/// What the upstream answers with.
#[derive(Debug, Clone)]
pub struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    delay: Duration,
    framing: ReplyFraming,
}

/// How the upstream frames its reply on the wire.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ReplyFraming {
    /// `content-length` (the default).
    #[default]
    ContentLength,
    /// `transfer-encoding: chunked`.
    Chunked,
    /// No length at all: the body ends when the upstream closes the connection.
    CloseDelimited,
    /// No reply: the upstream closes the connection once it has read the request.
    Reset,
}

impl Default for Reply {
    fn default() -> Self {
        Self::status(200)
    }
}

impl Reply {
    /// A reply with this status that echoes the request body back.
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: None,
            delay: Duration::ZERO,
            framing: ReplyFraming::ContentLength,
        }
    }

    /// Frames the reply this way instead of with `content-length`; [`ReplyFraming::Reset`]
    /// sends nothing and closes the connection.
    pub fn framing(mut self, framing: ReplyFraming) -> Self {
        self.framing = framing;
        self
    }

    /// Adds a header field; the same name may be added several times.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// A fixed body instead of the echoed request body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = Some(body.into());
        self
    }

    /// Waits this long after reading the request before answering, e.g. to play a slow
    /// server that a caller's timeout must cut off.
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

#[derive(Debug, Default)]
struct State {
    reply: Reply,
    requests: Vec<RecordedRequest>,
    errors: Vec<String>,
}

/// A background HTTP/1.1 server on a random 127.0.0.1 port.
///
/// Each connection carries one request: the upstream answers with `connection: close`,
/// which Envoy honours by opening a new upstream connection per request. Dropping it
/// stops the accept loop.
#[derive(Debug)]
pub struct EchoUpstream {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    accept_loop: Option<JoinHandle<()>>,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panicking connection thread must not hide what was recorded before it.
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl EchoUpstream {
    /// Starts an upstream answering `200` with the request body echoed back.
    pub fn start() -> Result<Self> {
        Self::with_reply(Reply::default())
    }

    /// Starts an upstream answering every request with `reply`.
    pub fn with_reply(reply: Reply) -> Result<Self> {
        let listener =
            TcpListener::bind("127.0.0.1:0").context("binding the echo upstream on 127.0.0.1")?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State {
            reply,
            ..State::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let accept_loop = {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::Builder::new()
                .name(format!("echo-upstream-{}", addr.port()))
                .spawn(move || accept_connections(&listener, &state, &stop))
                .context("spawning the echo upstream thread")?
        };
        Ok(Self {
            addr,
            state,
            stop,
            accept_loop: Some(accept_loop),
        })
    }

    /// The address to point Envoy's cluster at.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request received so far, oldest first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state).requests.clone()
    }

    /// Replaces the reply for requests that arrive from now on.
    pub fn set_reply(&self, reply: Reply) {
        lock(&self.state).reply = reply;
    }

    /// Connections the upstream could not parse, with the reason (should stay empty).
    pub fn errors(&self) -> Vec<String> {
        lock(&self.state).errors.clone()
    }
}

impl Drop for EchoUpstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // The accept loop blocks in accept(): one connection wakes it up to see the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(handle) = self.accept_loop.take() {
            let _ = handle.join();
        }
    }
}

fn accept_connections(listener: &TcpListener, state: &Arc<Mutex<State>>, stop: &AtomicBool) {
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let conn_state = state.clone();
        let spawned = conn.map(|stream| {
            std::thread::spawn(move || {
                if let Err(err) = serve_one(&stream, &conn_state) {
                    lock(&conn_state).errors.push(format!("{err:#}"));
                }
            })
        });
        if let Err(err) = spawned {
            lock(state).errors.push(format!("accept failed: {err}"));
        }
    }
}

fn serve_one(stream: &TcpStream, state: &Mutex<State>) -> Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream);
    // Envoy may open a connection and never use it (pre-connect); that is not an error.
    let Some(head) = http1::read_head(&mut reader).context("reading a request head")? else {
        return Ok(());
    };
    let mut parts = head.start_line.split(' ');
    let (Some(method), Some(path), Some(_version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        anyhow::bail!("malformed request line {:?}", head.start_line);
    };
    let framing = http1::framing(&head.headers, false)?;
    let body = http1::read_body(&mut reader, framing).context("reading a request body")?;

    let request = RecordedRequest {
        method: method.to_owned(),
        path: path.to_owned(),
        headers: head.headers,
        body,
    };
    // Record before answering: once the client has the response, the request is visible.
    let reply = {
        let mut state = lock(state);
        state.requests.push(request.clone());
        state.reply.clone()
    };
    std::thread::sleep(reply.delay);
    let body = reply.body.unwrap_or(request.body);
    let start_line = format!("HTTP/1.1 {} {}", reply.status, reason(reply.status));
    let wire = match reply.framing {
        ReplyFraming::ContentLength => http1::encode(&start_line, &reply.headers, &body),
        ReplyFraming::Chunked => http1::encode_chunked(&start_line, &reply.headers, &body),
        ReplyFraming::CloseDelimited => http1::encode_unframed(&start_line, &reply.headers, &body),
        ReplyFraming::Reset => return Ok(()),
    };
    (&*stream).write_all(&wire).context("writing the reply")?;
    Ok(())
}

/// Envoy ignores reason phrases; a plausible one keeps captures readable.
fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}
