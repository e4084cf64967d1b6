//! Does what the query asks, through the Weir SDK: `?log=<text>` logs the text at info;
//! `?set=<value>` stores it under the shared-data key `k`; `?get` logs what `k` holds;
//! `?call` calls cluster `big` (`?call=<n>`: accepting at most `n` body bytes) and logs
//! the body's length or the error.

use weir::prelude::*;
use weir::{shared_data, Call};

#[derive(Deserialize)]
struct Config {}

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

weir::http_plugin!(Config => |_cfg| Guest);
