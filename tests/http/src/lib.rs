//! The HTTP/1.1 test client, cookie jar and echo upstream that every Weir suite uses: the
//! Envoy suites (`weir-envoy-tests` re-exports them), `weir run`'s tests, the fidelity suite,
//! and the browser of the OpenID Provider fixture (`weir-idp-tests`).
//!
//! ```no_run
//! use weir_test_http::{EchoUpstream, HttpRequest, Reply};
//!
//! # fn main() -> anyhow::Result<()> {
//! let upstream = EchoUpstream::with_reply(Reply::status(200).header("x-d", "gone"))?;
//! let response = HttpRequest::get(&format!("http://{}/hello", upstream.addr()))?
//!     .header("x-a", "1")
//!     .send()?;
//! assert_eq!(response.status, 200);
//! assert_eq!(upstream.requests()[0].headers.get_all("x-a"), ["1"]);
//! # Ok(())
//! # }
//! ```
//!
//! Header fields keep their wire order and repetitions on both ends; neither end follows
//! redirects or merges repeated fields. [`CookieJar`] keeps cookies as a browser does, for
//! clients that walk a login one hop at a time. It is a crate of its own so that `weir-cli`'s
//! tests can use it without depending on `weir-envoy-tests`, which depends on `weir-cli`.

#![warn(missing_docs)]

mod client;
mod cookies;
mod headers;
mod http1;
mod upstream;

pub use client::{snippet, HttpRequest, HttpResponse};
pub use cookies::{Cookie, CookieJar};
pub use headers::Headers;
pub use upstream::{EchoUpstream, RecordedRequest, Reply, ReplyFraming};
