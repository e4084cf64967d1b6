//! An HTTP/2 server (h2c, no TLS) on 127.0.0.1: hyper over a small tokio runtime on its own
//! thread, each request answered by a handler. Serves [`crate::GrpcUpstream`] and the
//! fidelity suite's HTTP/2 upstream.

use std::future::Future;
use std::net::SocketAddr;
use std::thread::JoinHandle;

use anyhow::{Context, Result};
use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// A current-thread tokio runtime for HTTP/2 work: a server's thread, or a client's
/// exchange (the fidelity suite's h2c client).
pub fn h2_runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting a tokio runtime for HTTP/2")
}

/// An HTTP/2 server (no TLS) on 127.0.0.1, on its own thread, each request answered by
/// `handler`; dropping it stops it.
#[derive(Debug)]
pub struct H2Server {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl H2Server {
    /// Starts serving; `name` names the thread and the errors.
    pub fn start<H, F, B, E>(name: &str, handler: H) -> Result<Self>
    where
        H: Fn(Request<Incoming>) -> F + Clone + Send + 'static,
        F: Future<Output = Result<Response<B>, E>> + Send + 'static,
        B: hyper::body::Body + Send + 'static,
        B::Data: Send,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .with_context(|| format!("binding the {name} on 127.0.0.1"))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let runtime = h2_runtime()?;
        let thread = std::thread::Builder::new()
            .name(format!("{name}-{}", addr.port()))
            .spawn(move || {
                runtime.block_on(async move {
                    let mut stopped = stopped;
                    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                        return;
                    };
                    loop {
                        let accepted = tokio::select! {
                            _ = &mut stopped => return,
                            accepted = listener.accept() => accepted,
                        };
                        let Ok((io, _)) = accepted else { continue };
                        let handler = handler.clone();
                        tokio::spawn(async move {
                            let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                                .serve_connection(
                                    TokioIo::new(io),
                                    hyper::service::service_fn(handler),
                                )
                                .await;
                        });
                    }
                })
            })?;
        Ok(H2Server {
            addr,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for H2Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
