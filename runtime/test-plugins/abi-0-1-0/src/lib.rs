//! An ABI 0.1.0 plugin in the style of Red Hat's header-append filter: set up in `_start`,
//! configuration through `proxy_get_configuration`, header callbacks without
//! `end_of_stream`, and a paused request resumed with `proxy_continue_request`.
//!
//! Configuration: a flat JSON object of strings (Red Hat's form), each entry added to the
//! response headers, in name order.

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, LogLevel};

/// ABI 0.1.0 guests register their root context from `_start` (a WASI command's entry):
/// hosts call it when the module has no `_initialize`.
#[no_mangle]
pub fn _start() {
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> {
        Box::new(Root {
            headers: Vec::new(),
        })
    });
}

struct Root {
    headers: Vec<(String, String)>,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_vm_start(&mut self, _size: usize) -> bool {
        log::info!("abi-0.1.0: vm started");
        true
    }

    fn on_configure(&mut self, _size: usize) -> bool {
        // 0.1.x reads the configuration with `proxy_get_configuration`.
        let config = self.get_configuration().unwrap_or_default();
        if config.is_empty() {
            self.headers.clear();
            log::info!("abi-0.1.0: configured with 0 headers");
            return true;
        }
        let parsed: Result<std::collections::BTreeMap<String, String>, _> =
            serde_json::from_slice(&config);
        match parsed {
            Ok(headers) => self.headers = headers.into_iter().collect(),
            Err(err) => {
                log::warn!("abi-0.1.0: bad configuration: {err}");
                return false;
            }
        }
        log::info!("abi-0.1.0: configured with {} headers", self.headers.len());
        true
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Stream {
            headers: self.headers.clone(),
        }))
    }

    fn get_type(&self) -> Option<proxy_wasm::types::ContextType> {
        Some(proxy_wasm::types::ContextType::HttpContext)
    }
}

struct Stream {
    headers: Vec<(String, String)>,
}

impl Context for Stream {}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _count: usize) -> Action {
        let path = self.get_http_request_header(":path").unwrap_or_default();
        if path == "/deny" {
            self.send_http_response(403, vec![("x-denied-by", "abi-0.1.0")], Some(b"denied\n"));
            return Action::Pause;
        }
        // ABI 0.1.0: a missing header is `Ok` with no value (0.2.0 made it `NotFound`).
        let missing = self.get_http_request_header("x-not-sent");
        self.set_http_request_header("x-abi", Some("0.1.0"));
        self.set_http_request_header("x-missing-header", Some(&format!("{missing:?}")));
        if path == "/pause" {
            // Paused, then resumed from the same callback through `proxy_continue_request`.
            self.resume_http_request();
            return Action::Pause;
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _count: usize) -> Action {
        for (name, value) in &self.headers {
            self.add_http_response_header(name, value);
        }
        Action::Continue
    }
}
