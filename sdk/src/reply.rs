//! Sending local replies.

use crate::LocalReply;
use proxy_wasm::hostcalls;

/// Sends `reply` on the current stream. Invalid headers are dropped (and logged) rather
/// than sent; if the host refuses the reply altogether the stream stays paused, which fails
/// closed: the request never reaches the upstream.
pub(crate) fn send(reply: LocalReply) {
    let headers: Vec<(&str, &str)> = reply
        .headers
        .iter()
        .filter(|(name, value)| {
            let ok = crate::config::check_name(name).is_ok()
                && crate::config::check_value(value).is_ok();
            if !ok {
                log::error!("local reply: dropping invalid header {name}");
            }
            ok
        })
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let body = (!reply.body.is_empty()).then_some(reply.body.as_slice());
    // Logged as u32, whose formatting the module has anyway; a u16 one would be extra code.
    let code = u32::from(reply.status);
    if let Some(details) = &reply.details {
        log::debug!("local reply {code}: {details}");
    }
    if let Err(status) = hostcalls::send_http_response(code, headers, body) {
        log::error!("local reply {code} refused by the host: {}", status as u32);
    }
}
