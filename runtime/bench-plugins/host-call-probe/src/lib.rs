//! A filter that, on every request's headers, performs the operations named in its
//! configuration (a space-separated list), so a benchmark can price each host call and a
//! stretch of plain Wasm work in Envoy by comparing configurations:
//!
//! - `pairs`: read the request header map (`proxy_get_header_map_pairs`, which calls back
//!   into the module's allocator);
//! - `get:NAME`: read one header (`proxy_get_header_map_value`);
//! - `remove:NAME`: remove a request header (`proxy_remove_header_map_value`);
//! - `set:NAME`: replace a request header (`proxy_replace_header_map_value`);
//! - `time`: read the clock (`proxy_get_current_time_nanoseconds`);
//! - `counter`: increment a counter defined at start (`proxy_increment_metric`);
//! - `spin:N`: N rounds of a data-dependent loop with no host call (Wasm work alone).

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MapType, MetricType};
use std::rc::Rc;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Warn);
    proxy_wasm::set_root_context(|_| Box::new(Root { ops: Rc::new(Vec::new()), counter: 0 }));
}}

#[derive(Clone)]
enum Op {
    Pairs,
    Get(String),
    Remove(String),
    Set(String),
    Time,
    Counter,
    Spin(u32),
}

struct Root {
    ops: Rc<Vec<Op>>,
    counter: u32,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, size: usize) -> bool {
        let config =
            hostcalls::get_buffer(proxy_wasm::types::BufferType::PluginConfiguration, 0, size)
                .ok()
                .flatten()
                .unwrap_or_default();
        let config = String::from_utf8_lossy(&config);
        let mut ops = Vec::new();
        for word in config.split_whitespace() {
            let (name, arg) = word.split_once(':').unwrap_or((word, ""));
            ops.push(match name {
                "pairs" => Op::Pairs,
                "get" => Op::Get(arg.to_owned()),
                "remove" => Op::Remove(arg.to_owned()),
                "set" => Op::Set(arg.to_owned()),
                "time" => Op::Time,
                "counter" => Op::Counter,
                "spin" => match arg.parse() {
                    Ok(n) => Op::Spin(n),
                    Err(_) => return false,
                },
                _ => return false,
            });
        }
        self.ops = Rc::new(ops);
        self.counter = match hostcalls::define_metric(MetricType::Counter, "probe.requests") {
            Ok(id) => id,
            Err(_) => return false,
        };
        true
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Stream {
            ops: self.ops.clone(),
            counter: self.counter,
        }))
    }
}

struct Stream {
    ops: Rc<Vec<Op>>,
    counter: u32,
}

impl Context for Stream {}

impl HttpContext for Stream {
    fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
        let mut sink = 0u64;
        for op in self.ops.iter() {
            match op {
                Op::Pairs => {
                    let bytes = hostcalls::get_map_bytes(MapType::HttpRequestHeaders);
                    sink += bytes.map_or(0, |pairs| pairs.len() as u64);
                }
                Op::Get(name) => {
                    let value = hostcalls::get_map_value_bytes(MapType::HttpRequestHeaders, name);
                    sink += value.ok().flatten().map_or(0, |v| v.len() as u64);
                }
                Op::Remove(name) => {
                    let _ = hostcalls::remove_map_value(MapType::HttpRequestHeaders, name);
                }
                Op::Set(name) => {
                    let _ = hostcalls::set_map_value_bytes(
                        MapType::HttpRequestHeaders,
                        name,
                        Some(b"probe"),
                    );
                }
                Op::Time => {
                    sink += hostcalls::get_current_time().map_or(0, |t| {
                        t.duration_since(std::time::UNIX_EPOCH)
                            .map_or(0, |d| d.as_nanos() as u64)
                    });
                }
                Op::Counter => {
                    let _ = hostcalls::increment_metric(self.counter, 1);
                }
                Op::Spin(rounds) => {
                    let mut x = sink | 1;
                    for _ in 0..*rounds {
                        x = std::hint::black_box(x.rotate_left(5) ^ x.wrapping_mul(0x9e37_79b9));
                    }
                    sink = x;
                }
            }
        }
        std::hint::black_box(sink);
        Action::Continue
    }
}
