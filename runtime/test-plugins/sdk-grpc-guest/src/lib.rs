//! Calls cluster `grpc` through `weir::grpc` as the query asks, and answers the client with
//! what came back (status 200 and `x-grpc-code`, `x-grpc-message`, the response as the body;
//! 502 and the error as the body when the call could not be made):
//!
//! - `?unary=<text>`: `test.Echo/Unary` with the text as the message and metadata
//!   `x-probe: <text>`; `&timeout=<ms>` sets the timeout; `&cluster=<name>` another cluster.
//! - `?stream=<text>`: opens `test.Echo/Watch`, sends the text as its last message, and
//!   answers with every message received (joined by `,`), `x-grpc-count`, and the
//!   trailing metadata `x-t` in `x-trailer`.
//! - `?hold`: `test.Echo/Hold`, which never answers: the client goes away and the call
//!   must be cancelled. `?hold_stream`: the same on a stream.
//!
//! With `"tick": true` a background job calls `test.Echo/Tick` every second and logs
//! `tick: <code> <bytes>` (or `tick failed: <error>`).

use std::time::Duration;

use weir::background::Background;
use weir::grpc::Grpc;
use weir::prelude::*;
use weir::LocalReply;

#[derive(Deserialize)]
struct Config {
    #[serde(default)]
    tick: bool,
}

impl Validate for Config {}

struct Guest;

impl HttpFilter for Guest {
    fn on_request_headers(&mut self, req: &mut RequestHeaders) -> Result<Flow> {
        let query = req.query()?;
        let cluster = query.get("cluster").unwrap_or("grpc").to_owned();
        if let Some(text) = query.get("unary") {
            let timeout = query
                .get("timeout")
                .and_then(|t| t.parse().ok())
                .unwrap_or(1000);
            let call = Grpc::call(cluster, "test.Echo", "Unary")
                .metadata("x-probe", text)
                .message(text.as_bytes().to_vec())
                .timeout(Duration::from_millis(timeout));
            return Ok(Flow::wait(async move {
                Ok(match call.send().await {
                    Ok(res) => LocalReply::new(200)
                        .header("x-grpc-code", res.code.to_string())
                        .header("x-grpc-message", res.message)
                        .body(res.body)
                        .into(),
                    Err(err) => LocalReply::new(502).body(err.to_string()).into(),
                })
            }));
        }
        if let Some(text) = query.get("stream") {
            let text = text.as_bytes().to_vec();
            let stream = Grpc::stream(cluster, "test.Echo", "Watch").open();
            return Ok(Flow::wait(async move {
                let mut stream = match stream {
                    Ok(stream) => stream,
                    Err(err) => return Ok(LocalReply::new(502).body(err.to_string()).into()),
                };
                stream.send_last(&text)?;
                let mut received = Vec::new();
                let end = loop {
                    match stream.message().await {
                        Ok(Some(message)) => {
                            received.push(String::from_utf8_lossy(&message).into_owned())
                        }
                        Ok(None) => break String::new(),
                        Err(err) => break err.to_string(),
                    }
                };
                let code = stream
                    .status()
                    .map_or_else(|| "open".to_owned(), |(code, _)| code.to_string());
                let trailer = stream
                    .trailing_metadata()
                    .unwrap_or_default()
                    .into_iter()
                    .find(|(n, _)| n == "x-t")
                    .map(|(_, v)| String::from_utf8_lossy(&v).into_owned())
                    .unwrap_or_default();
                Ok(LocalReply::new(200)
                    .header("x-grpc-code", code)
                    .header("x-grpc-count", received.len().to_string())
                    .header("x-grpc-error", end)
                    .header("x-trailer", trailer)
                    .body(received.join(","))
                    .into())
            }));
        }
        if query.get("hold").is_some() {
            let call = Grpc::call(cluster, "test.Echo", "Hold")
                .message(b"hold".to_vec())
                .timeout(Duration::from_secs(60))
                .send();
            return Ok(Flow::wait(async move {
                let res = call.await?;
                Ok(Flow::reply(if res.code.0 == 0 { 200 } else { 504 }))
            }));
        }
        if query.get("hold_stream").is_some() {
            let stream = Grpc::stream(cluster, "test.Echo", "HoldStream").open()?;
            stream.send(b"hold")?;
            let mut stream = stream;
            return Ok(Flow::wait(async move {
                while stream.message().await?.is_some() {}
                Ok(Flow::reply(200))
            }));
        }
        Ok(Flow::reply(404))
    }
}

fn start(cfg: &Shared<Config>, bg: &mut Background) {
    if !cfg.tick {
        return;
    }
    bg.every("tick", Duration::from_secs(1), || async {
        match Grpc::call("grpc", "test.Echo", "Tick")
            .message(b"tick".to_vec())
            .send()
            .await
        {
            Ok(res) => info!("tick: {} {}", res.code, res.body.len()),
            Err(err) => info!("tick failed: {err}"),
        }
        Ok(())
    });
}

weir::http_plugin!(Config => |_cfg| Guest, background = start);
