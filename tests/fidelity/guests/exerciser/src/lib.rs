//! The fidelity suite's raw `proxy-wasm` guest. Every request touches each host-function
//! area and writes what it saw into headers, so a scenario's outcome shows it on any
//! engine. The request path picks the extra step:
//!
//! - `/callout/…`: asks cluster `authz` (`GET /check?path=<path>`, header
//!   `x-exerciser-user` copied from `x-user`), pausing the request. `200` resumes it with
//!   `x-authz: <callout body>`; anything else ends it with a local `403`.
//! - `/callout-unknown`: calls cluster `no-such-cluster`; the refusal goes into `x-callout`.
//! - `/local-reply`: a local `418` with `x-reason: teapot`.
//! - `/body`: buffers the request body and upper-cases it; the response body is reversed.
//! - `/panic`: panics (std's default hook writes the message to stderr).
//!
//! - `/grpc/…`: gRPC calls and streams to cluster `grpc` (see `grpc.rs`).
//! - `/probe/…`: one host-function area at its edges, without the per-request reports
//!   above (see `probes.rs`): `resume-tick` and `resume-queue` (the root resumes the paused
//!   stream), `metrics`, `header-order`, `splice`, `foreign`, `resolve-queue`,
//!   `callout-body`, `callout-timeout`, `vms`, `log-panic`, `stream-statuses`,
//!   `foreign-edges`, and any `props-…` (on_log logs the properties Envoy derives per
//!   stream and how the response maps read, `log_probes.rs`): `props-local-request` and
//!   `props-local-response` answer locally from the request or the response headers.
//! - `/probe/trailers-pass` and `/probe/trailers-add`: trailers in every callback (HTTP/2
//!   scenarios, see `trailer_probes.rs`).
//! - Any request with an `x-report-maps` header: the response carries
//!   `x-request-headers`, how the request's header map answers from the response phase.
//! - `/callout/refused`, `/callout/no-host`, `/callout/unframed`: as `/callout/…`, also
//!   showing the callout response's headers (`x-authz-headers`).
//!
//! It deliberately never calls `proxy_wasm::set_log_level`: that would install the SDK's
//! own panic hook, and the suite checks that std's default hook reaches the host's log.

use std::time::Duration;

mod grpc;
mod log_probes;
mod probes;
mod trailer_probes;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType, LogLevel, MetricType, Status};
use trailer_probes::Side;

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| Box::new(Root::default()));
}}

/// Shared-data keys and the queue name, one place so root and stream agree.
const TICKED: &str = "exerciser.ticked";
const VISITS: &str = "exerciser.visits";
const QUEUE: &str = "exerciser.queue";
const QUEUE_SEEN: &str = "exerciser.queue-seen";

fn log(level: LogLevel, message: &str) {
    // A refused log call has nowhere better to be reported.
    let _ = hostcalls::log(level, message);
}

#[derive(Default)]
struct Root {
    config: String,
    /// The queue paused streams announce themselves on.
    resume_queue: Option<u32>,
    /// Ticks resume waiting streams (configuration `"resume"`).
    resumes_on_tick: bool,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_vm_start(&mut self, _size: usize) -> bool {
        probes::count(probes::VMS_STARTED);
        true
    }

    fn on_configure(&mut self, _size: usize) -> bool {
        probes::count(probes::VMS_CONFIGURED);
        let config = self.get_plugin_configuration().unwrap_or_default();
        self.config = String::from_utf8_lossy(&config).into_owned();
        if self.config.contains("\"reject\"") {
            log(
                LogLevel::Error,
                "exerciser: configuration rejected on request",
            );
            return false;
        }
        // Only scenarios about timers ask for ticks: on other scenarios a tick firing
        // during Envoy's start-up would make the "ticked" header timing-dependent.
        // The root registers the queue, as Envoy expects: `on_queue_ready` goes to the
        // registering context's root.
        self.register_shared_queue(QUEUE);
        self.resume_queue = hostcalls::register_shared_queue(probes::RESUME_QUEUE).ok();
        if self.config.contains("\"resume\"") {
            self.resumes_on_tick = true;
            self.set_tick_period(Duration::from_millis(5));
        }
        if self.config.contains("\"tick\"") {
            self.set_tick_period(Duration::from_millis(5));
        }
        log(
            LogLevel::Info,
            &format!("exerciser: configured with {}", self.config),
        );
        true
    }

    fn on_tick(&mut self) {
        if self.resumes_on_tick {
            probes::resume_waiting("tick");
            return;
        }
        // Envoy runs several VMs of one plugin, each with its own timer: the first tick of
        // any of them marks the data, and each stops its own timer.
        probes::count(probes::VMS_TICKED);
        let _ = self.set_shared_data(TICKED, Some(b"yes"), None);
        self.set_tick_period(Duration::ZERO);
    }

    fn on_queue_ready(&mut self, queue_id: u32) {
        if Some(queue_id) == self.resume_queue {
            while let Ok(Some(item)) = self.dequeue_shared_queue(queue_id) {
                let context = String::from_utf8_lossy(&item).parse().unwrap_or(0);
                probes::resume(context, "queue");
            }
            return;
        }
        // The stream dequeued the first item itself; the root takes what is left.
        let mut seen = Vec::new();
        while let Ok(Some(item)) = self.dequeue_shared_queue(queue_id) {
            seen.push(String::from_utf8_lossy(&item).into_owned());
        }
        let _ = self.set_shared_data(QUEUE_SEEN, Some(seen.join(",").as_bytes()), None);
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Stream {
            id: context_id,
            config: self.config.clone(),
            path: String::new(),
            splice: String::new(),
            grpc_events: Vec::new(),
            report_maps: false,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

pub(crate) struct Stream {
    id: u32,
    config: String,
    path: String,
    /// What the request-body splices returned (`/probe/splice`).
    splice: String,
    /// What a gRPC stream delivered so far (`/grpc/stream`).
    grpc_events: Vec<String>,
    /// The request asked for `x-request-headers` on its response (`x-report-maps`).
    report_maps: bool,
}

impl Stream {
    fn text_property(&self, path: Vec<&str>) -> String {
        match self.get_property(path) {
            Some(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
            None => "none".to_owned(),
        }
    }

    /// VM env, properties and the configuration, as request headers.
    fn report_context(&self) {
        let greeting = std::env::var("EXERCISER_GREETING").unwrap_or_else(|_| "unset".to_owned());
        self.add_http_request_header("x-env-greeting", &greeting);
        self.add_http_request_header("x-config", &self.config);
        self.add_http_request_header("x-prop-path", &self.text_property(vec!["request", "path"]));
        self.add_http_request_header(
            "x-prop-method",
            &self.text_property(vec!["request", "method"]),
        );
        self.add_http_request_header(
            "x-prop-root-id",
            &self.text_property(vec!["plugin_root_id"]),
        );
        self.add_http_request_header(
            "x-prop-plugin-name",
            &self.text_property(vec!["plugin_name"]),
        );
    }

    /// A counter and a gauge; the counter's value read back.
    fn report_metrics(&self) {
        let read = (|| -> Result<u64, Status> {
            let requests = hostcalls::define_metric(MetricType::Counter, "exerciser_requests")?;
            let last_size =
                hostcalls::define_metric(MetricType::Gauge, "exerciser_last_path_length")?;
            hostcalls::increment_metric(requests, 1)?;
            hostcalls::record_metric(last_size, self.path.len() as u64)?;
            hostcalls::get_metric(requests)
        })();
        self.add_http_request_header("x-metric-requests", &format!("{read:?}"));
    }

    /// Shared data with compare-and-swap: a write with the current CAS succeeds, a second
    /// write with the same (now stale) CAS is refused.
    fn report_shared_data(&self) {
        let (value, cas) = self.get_shared_data(VISITS);
        let before = value
            .map(|v| String::from_utf8_lossy(&v).into_owned())
            .unwrap_or_else(|| "none".to_owned());
        let first = self.set_shared_data(VISITS, Some(b"1"), cas);
        let (_, cas_after_first) = self.get_shared_data(VISITS);
        let second = self.set_shared_data(VISITS, Some(b"2"), cas_after_first);
        let stale = self.set_shared_data(VISITS, Some(b"3"), cas_after_first);
        let (now, _) = self.get_shared_data(VISITS);
        let now = now
            .map(|v| String::from_utf8_lossy(&v).into_owned())
            .unwrap_or_default();
        self.add_http_request_header(
            "x-shared",
            &format!("before={before} first={first:?} second={second:?} stale={stale:?} now={now}"),
        );
        let (ticked, _) = self.get_shared_data(TICKED);
        self.add_http_request_header("x-ticked", if ticked.is_some() { "yes" } else { "no" });
    }

    /// The root's queue, found by name; two items in, the first taken back here, the
    /// second left for the root's `on_queue_ready`.
    fn report_queue(&self) {
        let resolved = self.resolve_shared_queue("", QUEUE);
        let token = resolved.unwrap_or_default();
        let enqueued = self
            .enqueue_shared_queue(token, Some(b"first"))
            .and_then(|()| self.enqueue_shared_queue(token, Some(b"second")));
        let taken = match self.dequeue_shared_queue(token) {
            Ok(Some(item)) => String::from_utf8_lossy(&item).into_owned(),
            other => format!("{other:?}"),
        };
        self.add_http_request_header(
            "x-queue",
            &format!(
                "resolved={} enqueued={enqueued:?} took={taken}",
                resolved.is_some()
            ),
        );
    }

    /// Header edits: remove, replace, add, and every value of a repeated header.
    fn edit_request_headers(&self) {
        let repeated: Vec<String> = self
            .get_http_request_headers()
            .into_iter()
            .filter(|(name, _)| name == "x-multi")
            .map(|(_, value)| value)
            .collect();
        self.add_http_request_header(
            "x-multi-seen",
            &format!("{}:{}", repeated.len(), repeated.join("|")),
        );
        self.set_http_request_header("x-remove", None);
        self.set_http_request_header("x-replace", Some("replaced"));
        self.add_http_request_header("x-added", "added");
    }

    /// One area at its edges; the standard reports stay out of the way.
    fn probe(&mut self) -> Action {
        match self.path.as_str() {
            "/probe/resume-tick" => {
                probes::wait_for_tick(self.id);
                return Action::Pause;
            }
            "/probe/resume-queue" => {
                let queue = self
                    .resolve_shared_queue("", probes::RESUME_QUEUE)
                    .unwrap_or_default();
                let sent = self.enqueue_shared_queue(queue, Some(self.id.to_string().as_bytes()));
                self.add_http_request_header("x-enqueued", &format!("{sent:?}"));
                return Action::Pause;
            }
            "/probe/metrics" => self.add_http_request_header("x-metrics", &probes::metrics()),
            "/probe/props-local-request" => {
                self.send_http_response(401, vec![], Some(b"no\n"));
                return Action::Pause;
            }
            "/probe/stream-statuses" => {
                self.add_http_request_header("x-streams", &probes::stream_statuses())
            }
            "/probe/header-order" => {
                self.add_http_request_header("x-order", &probes::header_order())
            }
            "/probe/foreign" => {
                self.add_http_request_header("x-foreign", &probes::foreign_functions())
            }
            "/probe/foreign-edges" => {
                self.add_http_request_header("x-foreign", &probes::foreign_edges())
            }
            "/probe/resolve-queue" => {
                self.add_http_request_header("x-resolve", &probes::resolve_queue(QUEUE))
            }
            "/probe/vms" => {
                let vms = format!(
                    "started={} configured={} ticked={}",
                    probes::counted(probes::VMS_STARTED),
                    probes::counted(probes::VMS_CONFIGURED),
                    probes::counted(probes::VMS_TICKED)
                );
                self.add_http_request_header("x-vms", &vms);
            }
            "/probe/callout-body" | "/probe/callout-timeout" => {
                let (body, timeout): (&[u8], Duration) = if self.path.ends_with("body") {
                    (b"ping", Duration::from_secs(5))
                } else {
                    (b"", probes::HUGE_TIMEOUT)
                };
                let result = probes::callout("/probe", body, timeout);
                self.add_http_request_header("x-callout", &result);
                if result == "dispatched" {
                    return Action::Pause;
                }
            }
            _ => {}
        }
        Action::Continue
    }

    fn call_authz(&self) -> Action {
        let user = self.get_http_request_header("x-user").unwrap_or_default();
        let path = format!("/check?path={}", self.path);
        let headers = vec![
            (":method", "GET"),
            (":path", path.as_str()),
            (":authority", "authz"),
            ("x-exerciser-user", user.as_str()),
        ];
        match self.dispatch_http_call("authz", headers, None, vec![], Duration::from_secs(5)) {
            Ok(_) => Action::Pause,
            Err(status) => {
                self.add_http_request_header("x-callout", &format!("refused {status:?}"));
                Action::Continue
            }
        }
    }

    fn call_unknown_cluster(&self) -> Action {
        let headers = vec![
            (":method", "GET"),
            (":path", "/"),
            (":authority", "nowhere"),
        ];
        let result = self.dispatch_http_call(
            "no-such-cluster",
            headers,
            None,
            vec![],
            Duration::from_secs(1),
        );
        let text = match result {
            Ok(_) => "dispatched".to_owned(),
            Err(status) => format!("refused {status:?}"),
        };
        self.add_http_request_header("x-callout", &text);
        Action::Continue
    }
}

impl Context for Stream {
    fn on_grpc_call_response(&mut self, _token: u32, status: u32, size: usize) {
        grpc::on_call_response(self, status, size);
    }

    fn on_grpc_stream_initial_metadata(&mut self, _token: u32, _count: u32) {
        grpc::on_initial_metadata(self);
    }

    fn on_grpc_stream_message(&mut self, _token: u32, size: usize) {
        grpc::on_message(self, size);
    }

    fn on_grpc_stream_trailing_metadata(&mut self, _token: u32, _count: u32) {
        grpc::on_trailing_metadata(self);
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
        let response_headers = self.get_http_call_response_headers();
        let status = response_headers
            .iter()
            .find(|(name, _)| name == ":status")
            .map(|(_, value)| value.clone())
            .unwrap_or_else(|| format!("failed ({headers} headers)"));
        let body = self
            .get_http_call_response_body(0, body_size)
            .unwrap_or_default();
        let body = String::from_utf8_lossy(&body).into_owned();
        log(
            LogLevel::Info,
            &format!("exerciser: authz answered {status}"),
        );
        log(
            LogLevel::Info,
            &format!(
                "exerciser: callout map sizes {}",
                trailer_probes::callout_map_sizes()
            ),
        );
        // `/callout/refused`, `/callout/no-host` and `/callout/unframed` also show the
        // headers of the answer, as Envoy passed them.
        let seen: Vec<String> = response_headers
            .iter()
            .map(|(name, value)| match name.as_str() {
                // Milliseconds the cluster took: changes from run to run.
                "x-envoy-upstream-service-time" => format!("{name}=*"),
                _ => format!("{name}={value}"),
            })
            .collect();
        let seen = seen.join(",");
        let shows_headers = ["/callout/refused", "/callout/no-host", "/callout/unframed"]
            .contains(&self.path.as_str());
        if status == "200" {
            if shows_headers {
                self.set_http_request_header("x-authz-headers", Some(&seen));
            }
            self.set_http_request_header("x-authz", Some(body.trim()));
            self.resume_http_request();
        } else {
            let reply = format!("authz said {status}: {}\n", body.trim());
            let mut headers = vec![("x-denied-by", "authz")];
            if shows_headers {
                headers.push(("x-authz-headers", seen.as_str()));
            }
            self.send_http_response(403, headers, Some(reply.as_bytes()));
        }
    }
}

impl HttpContext for Stream {
    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        if self.trailer_probe().is_some() {
            trailer_probes::edit(Side::Request);
        }
        Action::Continue
    }

    fn on_http_response_trailers(&mut self, _num_trailers: usize) -> Action {
        if self.trailer_probe().is_some() {
            trailer_probes::edit(Side::Response);
        }
        Action::Continue
    }

    fn on_log(&mut self) {
        if self.trailer_probe().is_some() {
            trailer_probes::on_log();
        }
        if self.path == "/probe/log-panic" {
            panic!("exerciser panicked in on_log");
        }
        if self.path.starts_with("/probe/props") {
            log(
                LogLevel::Info,
                &format!("exerciser: on_log {}", probes::stream_properties()),
            );
            log(
                LogLevel::Info,
                &format!("exerciser: on_log attrs {}", log_probes::attributes()),
            );
            log(
                LogLevel::Info,
                &format!("exerciser: on_log maps {}", log_probes::maps()),
            );
        }
    }

    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        self.path = self.get_http_request_header(":path").unwrap_or_default();
        self.report_maps = self.get_http_request_header("x-report-maps").is_some();
        log(
            LogLevel::Info,
            &format!("exerciser: request to {}", self.path),
        );
        if self.trailer_probe().is_some() {
            trailer_probes::outside("on_request_headers", Side::Request);
            trailer_probes::outside("on_request_headers", Side::Response);
            return Action::Continue;
        }
        if self.path.starts_with("/probe/") {
            return self.probe();
        }
        if self.path.starts_with("/grpc/") {
            return grpc::start(self);
        }
        self.report_context();
        self.report_metrics();
        self.report_shared_data();
        self.report_queue();
        self.edit_request_headers();
        match self.path.as_str() {
            "/local-reply" => {
                self.send_http_response(
                    418,
                    vec![("x-reason", "teapot")],
                    Some(b"short and stout\n"),
                );
                Action::Pause
            }
            "/callout-unknown" => self.call_unknown_cluster(),
            "/panic" => panic!("exerciser panicked on purpose at {}", self.path),
            path if path.starts_with("/callout/") => self.call_authz(),
            _ => Action::Continue,
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if let Some(action) = self.trailer_body(Side::Request, "on_request_body", end_of_stream) {
            return action;
        }
        if self.path == "/probe/splice" {
            if !end_of_stream {
                return Action::Pause;
            }
            self.splice = probes::splice_request_body(body_size);
            return Action::Continue;
        }
        if self.path != "/body" {
            return Action::Continue;
        }
        // Pausing a body callback buffers: the next call sees the whole body so far.
        if !end_of_stream {
            return Action::Pause;
        }
        let body = self.get_http_request_body(0, body_size).unwrap_or_default();
        self.set_http_request_body(0, body_size, &body.to_ascii_uppercase());
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        if self.report_maps {
            let later = probes::request_headers_later();
            self.add_http_response_header("x-request-headers", &later);
        }
        if self.trailer_probe().is_some() {
            trailer_probes::outside("on_response_headers", Side::Response);
            trailer_probes::outside("on_response_headers", Side::Request);
            return Action::Continue;
        }
        if self.path == "/probe/props-local-response"
            && self.get_http_response_header(":status").as_deref() == Some("200")
        {
            self.send_http_response(502, vec![], Some(b"replaced\n"));
            return Action::Pause;
        }
        self.set_http_response_header("x-resp-remove", None);
        self.add_http_response_header("x-resp-added", "added");
        if !self.splice.is_empty() {
            self.add_http_response_header("x-splice", &self.splice);
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if let Some(action) = self.trailer_body(Side::Response, "on_response_body", end_of_stream) {
            return action;
        }
        if self.path == "/probe/splice" {
            if !end_of_stream {
                return Action::Pause;
            }
            let status = probes::splice_response_body();
            log(
                LogLevel::Info,
                &format!("exerciser: response splice {status}"),
            );
            return Action::Continue;
        }
        if self.path != "/body" {
            return Action::Continue;
        }
        if !end_of_stream {
            return Action::Pause;
        }
        let mut body = self
            .get_http_response_body(0, body_size)
            .unwrap_or_default();
        // Same length: the upstream's content-length stays right.
        body.reverse();
        self.set_http_response_body(0, body_size, &body);
        Action::Continue
    }
}
