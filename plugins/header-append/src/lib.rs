//! header-append: add, overwrite and remove request and response headers.
//!
//! Configuration (the WasmPlugin's `pluginConfig`):
//!
//! ```json
//! {
//!   "request_headers_to_add":  [{ "name": "x-team", "value": "payments", "action": "ADD_IF_ABSENT" }],
//!   "request_headers_to_remove": ["x-debug"],
//!   "response_headers_to_add": [{ "name": "x-frame-options", "value": "DENY", "action": "OVERWRITE_IF_EXISTS_OR_ADD" }],
//!   "response_headers_to_remove": ["server"]
//! }
//! ```
//!
//! Any other top-level key with a string value is Red Hat's flat form
//! (`first-header: some-value`): that header is appended to responses. Removals run before
//! additions, and additions run in the order listed, as in Envoy's route header options.

mod config;

pub use config::{Action, Config, Operation};

use weir::prelude::*;

/// The per-request filter: applies the shared configuration to each message's headers.
#[derive(Debug)]
pub struct HeaderAppend {
    cfg: Shared<Config>,
}

impl HttpFilter for HeaderAppend {
    fn on_request_headers(&mut self, req: &mut RequestHeaders) -> Result<Flow> {
        for name in &self.cfg.request_headers_to_remove {
            req.remove(name)?;
        }
        for op in &self.cfg.request_headers_to_add {
            apply(req, op.action, &op.name, &op.value)?;
        }
        Ok(Flow::Continue)
    }

    fn on_response_headers(&mut self, res: &mut ResponseHeaders) -> Result<Flow> {
        for name in &self.cfg.response_headers_to_remove {
            res.remove(name)?;
        }
        for op in &self.cfg.response_headers_to_add {
            apply(res, op.action, &op.name, &op.value)?;
        }
        for (name, value) in &self.cfg.flat {
            apply(res, Action::AppendIfExistsOrAdd, name, value)?;
        }
        Ok(Flow::Continue)
    }
}

/// One header operation with Envoy's `HeaderValueOption.append_action` semantics.
fn apply<M: weir::http::MapKind>(
    headers: &weir::Headers<M>,
    action: Action,
    name: &HeaderName,
    value: &HeaderValue,
) -> Result<()> {
    match action {
        Action::AppendIfExistsOrAdd => headers.add_value(name, value),
        Action::AddIfAbsent if !headers.contains(name)? => headers.add_value(name, value),
        Action::OverwriteIfExistsOrAdd => headers.set_value(name, value),
        Action::OverwriteIfExists if headers.contains(name)? => headers.set_value(name, value),
        Action::AddIfAbsent | Action::OverwriteIfExists => Ok(()),
    }
}

weir::http_plugin!(Config => |cfg| HeaderAppend { cfg });
