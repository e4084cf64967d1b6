//! Randomized requests for fuzzing a plugin: header names and values (including bytes that
//! are not UTF-8, control characters and 20 KB values), JWT-shaped tokens and mutations of
//! tokens the test supplies, bodies, and upstream responses. Deterministic per seed, so a
//! failure reproduces with `WEIR_FUZZ_SEED=<seed>`.
//!
//! Test-only conveniences over the embedding API ([`Plugin`]): nothing here is needed to
//! embed a plugin.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::message::{Request, Response};
use crate::outcome::Outcome;
use crate::plugin::Plugin;

/// Requests in a short run, when `WEIR_FUZZ_REQUESTS` is unset (inside `cargo test`).
pub const DEFAULT_FUZZ_REQUESTS: u64 = 3_000;

/// A deterministic source of random requests (splitmix64: fast, no dependencies).
#[derive(Clone, Debug)]
pub struct Fuzzer {
    state: u64,
    names: Vec<String>,
    tokens: Vec<String>,
}

const METHODS: [&str; 8] = [
    "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "G\u{e9}T",
];
const B64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

impl Fuzzer {
    /// A fuzzer starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Fuzzer {
            state: seed,
            names: vec!["authorization".into(), "content-type".into()],
            tokens: Vec::new(),
        }
    }

    /// Header names the plugin reads: they are picked far more often than random ones.
    pub fn header_names(mut self, names: &[&str]) -> Self {
        self.names.extend(names.iter().map(|n| n.to_string()));
        self
    }

    /// Valid tokens to send as they are and mutated (bit flips, cut, spliced segments).
    pub fn tokens(mut self, tokens: impl IntoIterator<Item = String>) -> Self {
        self.tokens.extend(tokens);
        self
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// Up to `max` bytes of anything.
    pub fn bytes(&mut self, max: usize) -> Vec<u8> {
        let len = self.below(max + 1);
        (0..len).map(|_| self.next_u64() as u8).collect()
    }

    fn ascii(&mut self, max: usize, alphabet: &[u8]) -> String {
        let len = self.below(max + 1);
        (0..len).map(|_| *self.pick(alphabet) as char).collect()
    }

    /// A header value as text: printable ASCII, base64url, control characters, UTF-8.
    fn text_value(&mut self) -> String {
        match self.below(10) {
            0 => String::new(),
            1 => "x".repeat(self.below(20_000)),
            2 => self.ascii(40, b" \t\r\n\0\x01\x7f\"\\;,=."),
            3 => "\u{1F600}\u{e9}\u{202e}".repeat(self.below(8)),
            4..=6 => self.token(),
            7 => format!("Bearer {}", self.token()),
            _ => self.ascii(64, &(0x20..0x7f).collect::<Vec<u8>>()),
        }
    }

    /// A JWT-shaped string: a supplied token, a mutation of one, or random segments.
    pub fn token(&mut self) -> String {
        if !self.tokens.is_empty() && self.chance(60) {
            let token = self.pick(&self.tokens.clone()).clone();
            return self.mutate(token);
        }
        let segments = 1 + self.below(5);
        let parts: Vec<String> = (0..segments).map(|_| self.ascii(120, B64URL)).collect();
        parts.join(".")
    }

    fn mutate(&mut self, token: String) -> String {
        let mut bytes = token.into_bytes();
        match self.below(6) {
            0 => {}
            1 if !bytes.is_empty() => {
                let i = self.below(bytes.len());
                bytes[i] = *self.pick(B64URL);
            }
            2 => bytes.truncate(self.below(bytes.len() + 1)),
            3 => {
                let extra = self.bytes(8);
                bytes.extend(extra);
            }
            4 => {
                let segments: Vec<&[u8]> = bytes.split(|&b| b == b'.').collect();
                let mut shuffled: Vec<&[u8]> =
                    (0..segments.len()).map(|_| *self.pick(&segments)).collect();
                shuffled.truncate(3);
                bytes = shuffled.join(&b'.');
            }
            _ => bytes = bytes.repeat(1 + self.below(3)),
        }
        String::from_utf8_lossy(&bytes).into_owned()
    }

    fn name(&mut self) -> String {
        if self.chance(60) {
            return self.pick(&self.names.clone()).clone();
        }
        let mut name = self.ascii(24, b"abcdefghijklmnopqrstuvwxyz0123456789-_.:~");
        if name.is_empty() {
            name.push('x');
        }
        name
    }

    /// A random request: method, path, 0–12 header fields (some raw bytes), maybe a body.
    pub fn request(&mut self) -> Request {
        let path = format!(
            "/{}",
            self.ascii(60, b"abcdefghijklmnopqrstuvwxyz0123456789/%?&=#.;~-_ ")
        );
        let method = *self.pick(&METHODS);
        let mut request = Request::new(method, &path);
        if self.chance(10) {
            let host = self.text_value();
            request = request.authority(&host);
        }
        for _ in 0..self.below(13) {
            let name = self.name();
            request = if self.chance(15) {
                let value = self.bytes(64);
                request.header_bytes(&name, &value)
            } else {
                let value = self.text_value();
                request.header(&name, &value)
            };
        }
        if self.chance(30) {
            request = request.body(self.bytes(4096));
        }
        request
    }

    /// A random callout response: also a failed call or a timeout.
    pub fn callout_response(&mut self) -> Response {
        match self.below(12) {
            0 => Response::failure(),
            1 => Response::timeout(),
            _ => self.response(),
        }
    }

    /// A random upstream response.
    pub fn response(&mut self) -> Response {
        let status = *self.pick(&[
            200, 200, 200, 201, 204, 301, 400, 401, 403, 404, 500, 503, 0, 999,
        ]);
        let mut response = Response::status(status);
        for _ in 0..self.below(6) {
            let (name, value) = (self.name(), self.text_value());
            response = response.header(&name, &value);
        }
        match self.below(4) {
            0 => response,
            1 => response.body(self.token()),
            2 => response.body(self.bytes(2048)),
            _ => response.body(self.text_value()),
        }
    }
}

/// The seed to use: `WEIR_FUZZ_SEED` if set, else the clock.
pub fn fuzz_seed() -> u64 {
    std::env::var("WEIR_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0)
        })
}

/// How many requests to send: `WEIR_FUZZ_REQUESTS` if set, else [`DEFAULT_FUZZ_REQUESTS`].
pub fn fuzz_requests() -> u64 {
    std::env::var("WEIR_FUZZ_REQUESTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_FUZZ_REQUESTS)
}

/// Sends `count` random requests (with random upstream responses) through `plugin` and
/// panics at the first trap, naming the seed and request number that reproduce it.
/// `check` sees every outcome, for plugin-specific invariants. Returns the requests sent.
pub fn fuzz_http(
    plugin: &Plugin,
    mut fuzzer: Fuzzer,
    seed: u64,
    count: u64,
    mut check: impl FnMut(&Request, &Outcome),
) -> u64 {
    eprintln!("fuzzing {count} requests with WEIR_FUZZ_SEED={seed}");
    for i in 0..count {
        let request = fuzzer.request();
        let response = fuzzer.response();
        let out = plugin
            .http()
            .request(request.clone())
            .response(response)
            .run();
        if let Some(trap) = out.trap() {
            panic!("request #{i} trapped with WEIR_FUZZ_SEED={seed}: {trap:?}\nrequest: {request:?}\nlogs: {:?}", out.logs());
        }
        check(&request, &out);
    }
    count
}
