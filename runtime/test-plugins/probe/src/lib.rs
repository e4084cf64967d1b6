//! A raw `proxy-wasm` plugin for weir-runtime's tests. The `x-probe` request header picks
//! what a stream exercises; the plugin configuration (plain text) tunes the root context.

use std::time::Duration;

mod grpc;

use log::{error, info, warn};
use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext, StreamContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MetricType, PeerType};

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Trace);
    proxy_wasm::set_root_context(|_| Box::new(Root { config: String::new(), queue: 0, counter: 0, tcp: false }));
}}

struct Root {
    config: String,
    queue: u32,
    counter: u32,
    /// A root context serves either HTTP or TCP streams: root id `tcp` picks TCP.
    tcp: bool,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_vm_start(&mut self, _size: usize) -> bool {
        let vm_config = self.get_vm_configuration().unwrap_or_default();
        if vm_config == b"reject" {
            error!("vm configuration rejected");
            return false;
        }
        let greeting = std::env::var("GREETING").unwrap_or_else(|_| "unset".into());
        info!(
            "vm start, GREETING={greeting}, args={}",
            std::env::args().count()
        );
        self.queue = self.register_shared_queue("probe_queue");
        self.tcp = self.get_property(vec!["plugin_root_id"]).as_deref() == Some(b"tcp");
        true
    }

    fn on_configure(&mut self, _size: usize) -> bool {
        let config = self.get_plugin_configuration().unwrap_or_default();
        self.config = String::from_utf8_lossy(&config).into_owned();
        if self.config.contains("reject") {
            error!("bad configuration: {}", self.config);
            return false;
        }
        if self.config.contains("panic-on-configure") {
            panic!("configure exploded");
        }
        if self.config.contains("tick") {
            self.set_tick_period(Duration::from_millis(100));
        }
        self.counter = hostcalls::define_metric(MetricType::Counter, "probe_requests").unwrap_or(0);
        info!("configured: {}", self.config);
        true
    }

    fn on_tick(&mut self) {
        let ticks = hostcalls::define_metric(MetricType::Counter, "probe_ticks").unwrap_or(0);
        let _ = hostcalls::increment_metric(ticks, 1);
        let now = self.get_current_time();
        let since = now
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        info!("tick at {since}");
    }

    fn on_queue_ready(&mut self, queue_id: u32) {
        while let Ok(Some(item)) = self.dequeue_shared_queue(queue_id) {
            info!("queue item: {}", String::from_utf8_lossy(&item));
        }
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(if self.tcp {
            ContextType::StreamContext
        } else {
            ContextType::HttpContext
        })
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http {
            mode: String::new(),
            counter: self.counter,
        }))
    }

    fn create_stream_context(&self, _id: u32) -> Option<Box<dyn StreamContext>> {
        Some(Box::new(Tcp))
    }
}

pub(crate) struct Http {
    mode: String,
    counter: u32,
}

impl Context for Http {
    fn on_grpc_call_response(&mut self, token: u32, status: u32, size: usize) {
        grpc::on_call_response(self, token, status, size);
    }

    fn on_grpc_stream_initial_metadata(&mut self, token: u32, count: u32) {
        grpc::on_initial_metadata(self, token, count);
    }

    fn on_grpc_stream_message(&mut self, token: u32, size: usize) {
        grpc::on_message(self, token, size);
    }

    fn on_grpc_stream_trailing_metadata(&mut self, token: u32, count: u32) {
        grpc::on_trailing_metadata(self, token, count);
    }

    fn on_grpc_stream_close(&mut self, token: u32, status: u32) {
        grpc::on_close(self, token, status);
    }

    fn on_http_call_response(
        &mut self,
        _token: u32,
        headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        if headers == 0 {
            warn!("callout failed");
            self.send_http_response(503, vec![("x-callout", "failed")], Some(b"callout failed"));
            return;
        }
        let status = self
            .get_http_call_response_header(":status")
            .unwrap_or_default();
        let body = self
            .get_http_call_response_body(0, body_size)
            .unwrap_or_default();
        info!(
            "callout answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
        if status == "200" {
            self.set_http_request_header("x-auth", Some(&String::from_utf8_lossy(&body)));
            self.resume_http_request();
        } else {
            self.send_http_response(
                status.parse().unwrap_or(500),
                vec![],
                Some(b"denied by callout"),
            );
        }
    }
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, headers: usize, _end: bool) -> Action {
        self.mode = self.get_http_request_header("x-probe").unwrap_or_default();
        let _ = hostcalls::increment_metric(self.counter, 1);
        info!("request headers: {headers}");
        self.remove_http_request_header("x-remove-me");
        self.add_http_request_header("x-probe-seen", "1");
        let mode = self.mode.clone();
        match mode.as_str() {
            "reply" => {
                self.send_http_response(403, vec![("x-reason", "probe")], Some(b"denied"));
                Action::Pause
            }
            "callout" => {
                let call = self.dispatch_http_call(
                    "auth",
                    vec![
                        (":method", "GET"),
                        (":path", "/check"),
                        (":authority", "auth"),
                        ("x-user", "ann"),
                    ],
                    Some(b"who?"),
                    vec![],
                    Duration::from_millis(500),
                );
                match call {
                    Ok(_) => Action::Pause,
                    Err(status) => {
                        error!("dispatch failed: {status:?}");
                        Action::Continue
                    }
                }
            }
            "callout-unknown" => {
                let call = self.dispatch_http_call(
                    "nope",
                    vec![(":method", "GET"), (":path", "/"), (":authority", "x")],
                    None,
                    vec![],
                    Duration::from_secs(1),
                );
                warn!("unknown cluster: {call:?}");
                Action::Continue
            }
            mode if mode.starts_with("grpc") => grpc::start(self, mode).unwrap_or(Action::Continue),
            "panic" => panic!("probe panic: boom"),
            "loop" => {
                let mut x: u64 = 1;
                loop {
                    x = std::hint::black_box(x.wrapping_mul(3));
                }
            }
            "shared" => {
                let (old, cas) = self.get_shared_data("k");
                let value = self.get_http_request_header("x-value").unwrap_or_default();
                let result = self.set_shared_data("k", Some(value.as_bytes()), cas);
                // A write with a token that is no longer current must be refused.
                let stale =
                    self.set_shared_data("k", Some(b"stale"), Some(cas.unwrap_or(u32::MAX)));
                info!(
                    "shared old={:?} set={result:?} stale={stale:?}",
                    old.map(|o| String::from_utf8_lossy(&o).into_owned())
                );
                Action::Continue
            }
            "props" => {
                let get = |path: Vec<&str>| {
                    self.get_property(path)
                        .map(|v| String::from_utf8_lossy(&v).into_owned())
                        .unwrap_or_else(|| "<none>".into())
                };
                let port = self.get_property(vec!["destination", "port"]).map(|v| {
                    let mut raw = [0u8; 8];
                    raw.copy_from_slice(&v[..8]);
                    i64::from_le_bytes(raw)
                });
                self.set_property(vec!["wasm", "note"], Some(b"kept"));
                info!(
                    "props name={} root={} path={} host={} src={} ua={} custom={} note={} port={port:?}",
                    get(vec!["plugin_name"]),
                    get(vec!["plugin_root_id"]),
                    get(vec!["request", "path"]),
                    get(vec!["request", "host"]),
                    get(vec!["source", "address"]),
                    get(vec!["request", "headers", "user-agent"]),
                    get(vec!["custom", "value"]),
                    get(vec!["wasm", "note"]),
                );
                Action::Continue
            }
            "enqueue" => {
                let value = self.get_http_request_header("x-value").unwrap_or_default();
                match self.resolve_shared_queue("", "probe_queue") {
                    Some(queue) => info!(
                        "enqueue {:?}",
                        self.enqueue_shared_queue(queue, Some(value.as_bytes()))
                    ),
                    None => error!("queue not found"),
                }
                Action::Continue
            }
            "stop" => Action::Pause,
            "reset" => {
                self.reset_http_request();
                Action::Pause
            }
            _ => Action::Continue,
        }
    }

    fn on_http_request_body(&mut self, size: usize, end: bool) -> Action {
        info!("request body: {size} end={end}");
        if self.mode != "body" {
            return Action::Continue;
        }
        if !end {
            return Action::Pause;
        }
        let body = self.get_http_request_body(0, size).unwrap_or_default();
        self.set_http_request_body(0, size, &body.to_ascii_uppercase());
        Action::Continue
    }

    fn on_http_request_trailers(&mut self, trailers: usize) -> Action {
        info!("request trailers: {trailers}");
        self.add_http_request_trailer("x-trailer-seen", "1");
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _headers: usize, _end: bool) -> Action {
        info!(
            "request header in the response phase: status {}",
            request_header_status("x-probe")
        );
        self.set_http_response_header("x-probe-response", Some("1"));
        let histogram = hostcalls::define_metric(MetricType::Histogram, "probe_sizes").unwrap_or(0);
        let _ = hostcalls::record_metric(histogram, 42);
        Action::Continue
    }

    fn on_http_response_body(&mut self, size: usize, end: bool) -> Action {
        if self.mode == "body" && end {
            self.set_http_response_body(size, 0, b"!");
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        info!("stream done ({})", self.mode);
    }
}

/// The raw status of reading request header `name` (proxy-wasm's wrapper panics on
/// `BadArgument`, which is what Envoy answers once the request headers are forgotten).
fn request_header_status(name: &str) -> u32 {
    #[link(wasm_import_module = "env")]
    extern "C" {
        fn proxy_get_header_map_value(
            map: u32,
            key: *const u8,
            key_size: usize,
            value: *mut *mut u8,
            value_size: *mut usize,
        ) -> u32;
    }
    let (mut value, mut size) = (std::ptr::null_mut::<u8>(), 0usize);
    // SAFETY: the host writes a pointer and a size; a value it returns is leaked (a test guest).
    unsafe { proxy_get_header_map_value(0, name.as_ptr(), name.len(), &mut value, &mut size) }
}

struct Tcp;

impl Context for Tcp {}

impl StreamContext for Tcp {
    fn on_new_connection(&mut self) -> Action {
        info!("new connection");
        Action::Continue
    }

    fn on_downstream_data(&mut self, size: usize, end: bool) -> Action {
        let data = self.get_downstream_data(0, size).unwrap_or_default();
        if data.starts_with(b"block") {
            warn!("blocked");
            self.close_downstream();
            return Action::Pause;
        }
        if !end && !data.ends_with(b"\n") {
            return Action::Pause;
        }
        self.set_downstream_data(0, size, &data.to_ascii_uppercase());
        Action::Continue
    }

    fn on_upstream_data(&mut self, size: usize, _end: bool) -> Action {
        self.set_upstream_data(0, 0, b"<");
        info!("upstream data: {size}");
        Action::Continue
    }

    fn on_downstream_close(&mut self, peer: PeerType) {
        info!("downstream closed by {}", peer as u32);
    }
}
