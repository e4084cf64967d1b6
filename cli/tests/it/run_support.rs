//! Support for the `weir run` suites: a running `weir run` (stopped with SIGINT when
//! dropped), WasmPlugin files, and a local HTTPS file server.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A `weir run` process and what it printed.
pub struct WeirRun {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    /// `http://127.0.0.1:PORT` of the listener.
    pub url: String,
    /// `127.0.0.1:PORT` of Envoy's admin API.
    pub admin: String,
}

fn pump(stream: impl std::io::Read + Send + 'static, into: Arc<Mutex<String>>) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            let mut text = into.lock().expect("output lock");
            text.push_str(&line);
            text.push('\n');
        }
    });
}

impl WeirRun {
    /// Starts `weir run ARGS` and waits (≤ 60 s) until Envoy is serving.
    pub fn start(args: &[&str]) -> WeirRun {
        let mut child = Command::new(env!("CARGO_BIN_EXE_weir"))
            .arg("run")
            .args(args)
            .env("DOCKER_CONFIG", "/nonexistent-weir-test-docker-config")
            .env("POD_NAME", "weir-test-pod")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("weir runs");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        pump(child.stdout.take().expect("stdout"), stdout.clone());
        pump(child.stderr.take().expect("stderr"), stderr.clone());
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if stderr.lock().expect("lock").contains("Envoy running") {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                std::thread::sleep(Duration::from_millis(100));
                panic!(
                    "weir run exited ({status}) before serving:\n{}\n{}",
                    stdout.lock().expect("lock"),
                    stderr.lock().expect("lock")
                );
            }
            assert!(
                Instant::now() < deadline,
                "weir run did not start in 60 s:\n{}",
                stderr.lock().expect("lock")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = stdout.lock().expect("lock").clone();
        let field = |name: &str| {
            out.lines()
                .find_map(|l| l.strip_prefix(name).map(|rest| rest.trim().to_string()))
                .unwrap_or_else(|| panic!("no `{name}` line in:\n{out}"))
        };
        let url = field("listening");
        let admin = field("admin").trim_start_matches("http://").to_string();
        WeirRun {
            child,
            stdout,
            stderr,
            url,
            admin,
        }
    }

    /// `weir run -f INPUT [--workload W] --cache-dir CACHE EXTRA…`.
    pub fn with(input: &Path, workload: Option<&Path>, cache: &Path, extra: &[&str]) -> WeirRun {
        let text = |p: &Path| p.to_str().expect("UTF-8 test path").to_string();
        let mut args = vec![
            "-f".to_string(),
            text(input),
            "--cache-dir".to_string(),
            text(cache),
        ];
        if let Some(w) = workload {
            args.extend(["--workload".to_string(), text(w)]);
        }
        args.extend(extra.iter().map(|a| a.to_string()));
        WeirRun::start(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// Everything printed to stdout so far.
    pub fn stdout(&self) -> String {
        self.stdout.lock().expect("lock").clone()
    }

    /// Everything printed to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("lock").clone()
    }

    /// GET `path` on the listener.
    pub fn get(&self, path: &str) -> weir_test_http::HttpResponse {
        weir_test_http::HttpRequest::get(&format!("{}{path}", self.url))
            .expect("request")
            .send()
            .expect("response")
    }

    /// Envoy's `/config_dump` (with EDS-less default sections).
    pub fn config_dump(&self) -> Value {
        let response =
            weir_test_http::HttpRequest::get(&format!("http://{}/config_dump", self.admin))
                .expect("request")
                .send()
                .expect("config_dump");
        serde_json::from_slice(&response.body).expect("config_dump is JSON")
    }

    /// Names of the listener's HTTP filters, in order.
    pub fn http_filter_names(&self) -> Vec<String> {
        let dump = self.config_dump();
        let listeners = dump["configs"]
            .as_array()
            .expect("configs")
            .iter()
            .find(|c| {
                c["@type"]
                    .as_str()
                    .is_some_and(|t| t.ends_with("ListenersConfigDump"))
            })
            .expect("listener dump")
            .clone();
        let listener = &listeners["dynamic_listeners"][0]["active_state"]["listener"];
        let hcm = listener["filter_chains"][0]["filters"]
            .as_array()
            .expect("filters")
            .last()
            .expect("hcm")
            .clone();
        hcm["typed_config"]["http_filters"]
            .as_array()
            .expect("http_filters")
            .iter()
            .map(|f| f["name"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// The extension configs Envoy holds, by name (from `/config_dump`'s ECDS section).
    pub fn extension_configs(&self) -> Vec<Value> {
        let dump = self.config_dump();
        dump["configs"]
            .as_array()
            .expect("configs")
            .iter()
            .filter(|c| {
                c["@type"]
                    .as_str()
                    .is_some_and(|t| t.ends_with("EcdsConfigDump"))
            })
            .flat_map(|c| c["ecds_filters"].as_array().cloned().unwrap_or_default())
            .map(|f| f["ecds_filter"].clone())
            .collect()
    }

    /// The extension config named `name`.
    pub fn extension_config(&self, name: &str) -> Value {
        self.extension_configs()
            .into_iter()
            .find(|c| c["name"] == name)
            .unwrap_or_else(|| panic!("no extension config {name}"))
    }

    /// Polls `check` every 50 ms until it holds or `timeout` passes; returns the time taken.
    pub fn wait_for(
        &self,
        timeout: Duration,
        what: &str,
        mut check: impl FnMut() -> bool,
    ) -> Duration {
        let start = Instant::now();
        while !check() {
            assert!(
                start.elapsed() < timeout,
                "{what}: not within {timeout:?}; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        start.elapsed()
    }

    /// SIGINT (Ctrl-C) and wait; returns the exit code.
    pub fn interrupt(&mut self) -> Option<i32> {
        // SAFETY: kill(2) on a child we spawned and have not reaped.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        panic!("weir run did not stop within 15 s of SIGINT");
    }
}

impl Drop for WeirRun {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: as in `interrupt`.
            unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
            // Bounded: a weir run that ignores SIGINT must not hang the suite (seen once
            // during a hot reload; the Ctrl-C test covers the normal path). Its Envoy goes
            // with it.
            let deadline = Instant::now() + Duration::from_secs(15);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            eprintln!(
                "weir run (pid {}) ignored SIGINT for 15 s; killing it and its Envoy",
                self.child.id()
            );
            let _ = std::process::Command::new("pkill")
                .args(["-KILL", "-P", &self.child.id().to_string()])
                .status();
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The header-append module, built once per test process.
pub fn header_append() -> PathBuf {
    weir_runtime::build::wasm_of(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugins/header-append"),
    )
    .expect("header-append builds")
}

/// `module` with a custom section appended: same behaviour, different bytes and digest
/// (a "rebuilt" module).
pub fn variant(module: &[u8], tag: &str) -> Vec<u8> {
    let mut out = module.to_vec();
    let name = b"weir-test";
    let payload_len = 1 + name.len() + tag.len();
    out.push(0);
    out.push(u8::try_from(payload_len).expect("short tag"));
    out.push(u8::try_from(name.len()).expect("short name"));
    out.extend_from_slice(name);
    out.extend_from_slice(tag.as_bytes());
    out
}

/// Writes `text` to `dir/name` atomically (as editors and `kubectl` tooling do).
pub fn write_yaml(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, text).expect("write yaml");
    std::fs::rename(&tmp, &path).expect("rename yaml");
    path
}

/// A Python HTTPS file server for `dir` on 127.0.0.1, killed when dropped.
pub struct HttpsServer {
    child: Child,
    /// `https://127.0.0.1:PORT`.
    pub base: String,
}

impl HttpsServer {
    /// Serves `dir` with `cert`/`key` (PEM files).
    pub fn start(dir: &Path, cert: &Path, key: &Path) -> HttpsServer {
        let script = "import functools,http.server,ssl,sys\n\
d,c,k=sys.argv[1:4]\n\
class H(http.server.SimpleHTTPRequestHandler):\n    def log_message(self,*a): pass\n\
s=http.server.ThreadingHTTPServer(('127.0.0.1',0),functools.partial(H,directory=d))\n\
x=ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\nx.load_cert_chain(c,k)\n\
s.socket=x.wrap_socket(s.socket,server_side=True)\n\
print(s.server_address[1],flush=True)\ns.serve_forever()\n";
        let mut child = Command::new("python3")
            .args(["-c", script])
            .arg(dir)
            .arg(cert)
            .arg(key)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("port line");
        let port: u16 = line.trim().parse().expect("the server prints its port");
        HttpsServer {
            child,
            base: format!("https://127.0.0.1:{port}"),
        }
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
