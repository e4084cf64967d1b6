//! Does what the query asks, through the Weir SDK: `?log=<text>` logs the text at info;
//! `?set=<value>` stores it under the shared-data key `k`; `?get` logs what `k` holds;
//! `?call` calls cluster `big` (`?call=<n>`: accepting at most `n` body bytes) and logs
//! the body's length or the error.
//!
//! Shared queues (`weir::queue`): every VM registers queue `q` when configured. With
//! `"queue_handler": true` a handler logs each run's items and, for an item `ship`, posts the
//! run's items to cluster `collector` and logs the answer; without it items stay queued.
//! `?enqueue=<v>` enqueues `v` on `q`; `?dequeue` takes one item; `?resolve=<name>` says
//! whether a queue `name` exists.

use weir::background::Background;
use weir::prelude::*;
use weir::queue::Queue;
use weir::{shared_data, Call};

#[derive(Deserialize)]
struct Config {
    #[serde(default)]
    queue_handler: bool,
}

impl Validate for Config {}

struct Guest;

impl HttpFilter for Guest {
    fn on_request_headers(&mut self, req: &mut RequestHeaders) -> Result<Flow> {
        let query = req.query()?;
        if let Some(text) = query.get("log") {
            info!("client sent: {text}");
        }
        if let Some(value) = query.get("set") {
            shared_data::set("k", value.as_bytes(), None)?;
            info!("stored under {}", shared_data::scoped("k")?);
        }
        if query.get("get").is_some() {
            let value =
                shared_data::get("k")?.map(|(v, _)| String::from_utf8_lossy(&v).into_owned());
            info!("k holds {value:?}");
        }
        if let Some(value) = query.get("enqueue") {
            match Queue::resolve("q")? {
                Some(q) => q.enqueue(value.as_bytes())?,
                None => info!("no queue q"),
            }
        }
        if query.get("dequeue").is_some() {
            let q = Queue::resolve("q")?.ok_or(Error::msg("no queue q"))?;
            let item = q
                .dequeue()?
                .map(|v| String::from_utf8_lossy(&v).into_owned());
            info!("dequeued {item:?}");
        }
        if let Some(name) = query.get("resolve") {
            let found = Queue::resolve(name)?.map(|q| q.name().to_owned());
            info!("resolve {name}: {found:?}");
        }
        if let Some(max) = query.get("call") {
            let mut call = Call::get("big", "/");
            if let Ok(max) = max.parse() {
                call = call.max_response_bytes(max);
            }
            return Ok(Flow::wait(async move {
                match call.send().await {
                    Ok(res) => info!("call body {} bytes", res.body.len()),
                    Err(err) => info!("call failed: {err}"),
                }
                Ok(Flow::reply(200))
            }));
        }
        Ok(Flow::reply(200))
    }
}

fn start(cfg: &Shared<Config>, bg: &mut Background) {
    let q = match Queue::register("q") {
        Ok(q) => q,
        Err(err) => return error!("{err}"),
    };
    info!("registered {} as {}", q.name(), q.id());
    if !cfg.queue_handler {
        return;
    }
    bg.on_queue(&q, |items| async move {
        let items: Vec<String> = items
            .iter()
            .map(|i| String::from_utf8_lossy(i).into_owned())
            .collect();
        info!("queue run: {}", items.join(","));
        if items.iter().any(|i| i == "ship") {
            let res = Call::post("collector", "/batch")
                .body(items.join(","))
                .send()
                .await?;
            info!("shipped {}: {}", items.join(","), res.status);
        }
        Ok(())
    });
}

weir::http_plugin!(Config => |_cfg| Guest, background = start);
