//! One keep-alive HTTP/1.1 connection for the benchmarks' load loops: requests go out one
//! after another on the same connection, so the figures measure Envoy and its filters, not
//! connection set-up. Answers are read by `content-length` (Envoy's local replies and the
//! echo upstream's answers carry one).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{bail, Context, Result};

/// An open connection; see the module docs.
#[derive(Debug)]
pub struct KeepAlive {
    reader: BufReader<TcpStream>,
    stream: TcpStream,
    /// The `host` header: the address, as a browser would send it (the oauth2 filter's
    /// session cookies are bound to the host they were set for).
    host: String,
}

impl KeepAlive {
    /// Connects to `addr` (`host:port`).
    pub fn open(addr: &str) -> Result<Self> {
        let stream = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        Ok(KeepAlive {
            reader: BufReader::new(stream.try_clone()?),
            stream,
            host: addr.to_owned(),
        })
    }

    /// Sends `GET path` with `headers` and returns the status once the whole answer is read.
    pub fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> Result<u16> {
        let mut request = format!("GET {path} HTTP/1.1\r\nhost: {}\r\n", self.host);
        for (name, value) in headers {
            request += &format!("{name}: {value}\r\n");
        }
        request += "\r\n";
        self.stream.write_all(request.as_bytes())?;
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("bad status line {line:?}"))?;
        let mut length = 0;
        loop {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                bail!("connection closed mid-response");
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse()?;
                }
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body)?;
        Ok(status)
    }
}
