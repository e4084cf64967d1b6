//! header-append's flat form (`{"x-served-by": "weir", …}`: each entry appended to every
//! response), written the way a proxy-wasm filter is written by hand: the configuration is
//! parsed once per configure and shared by pointer, each stream holds that pointer and adds
//! the headers in its response-headers callback. No SDK.
//!
//! `make bench` and weir-runtime's `sdk_overhead` test compare header-append's Wasm
//! instructions per request with this filter's on the same requests.

use std::fmt;
use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};
use serde::de::{Deserializer, MapAccess, Visitor};

type Headers = Rc<Vec<(String, String)>>;

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root { headers: Rc::default() }) });
}}

struct Root {
    headers: Headers,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let config = self.get_plugin_configuration().unwrap_or_default();
        if config.is_empty() {
            self.headers = Rc::default();
            return true;
        }
        let mut json = serde_json::Deserializer::from_slice(&config);
        match json.deserialize_map(InOrder) {
            Ok(headers) => {
                self.headers = Rc::new(headers);
                true
            }
            Err(_) => false,
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Stream {
            headers: Rc::clone(&self.headers),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Stream {
    headers: Headers,
}

impl Context for Stream {}

impl HttpContext for Stream {
    fn on_http_response_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        for (name, value) in self.headers.iter() {
            self.add_http_response_header(name, value);
        }
        Action::Continue
    }
}

/// Reads a JSON object of strings into `(name, value)` pairs in document order (a
/// `serde_json::Map` would sort them), as header-append's flat form does.
struct InOrder;

impl<'de> Visitor<'de> for InOrder {
    type Value = Vec<(String, String)>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object of header: value strings")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut pairs = Vec::new();
        while let Some(pair) = map.next_entry()? {
            pairs.push(pair);
        }
        Ok(pairs)
    }
}
