//! A real, certified OpenID Provider on 127.0.0.1 for tests, and a browser to sign in with.
//!
//! ```
//! use weir_idp_tests::{Browser, Provider, TestClient};
//!
//! # fn main() -> anyhow::Result<()> {
//! let callback = "http://127.0.0.1:9/callback";
//! let idp = Provider::builder()
//!     .realm("ingress")
//!     .client(TestClient::new("rp", "rp-secret").redirect_uri(callback))
//!     .start()?;
//! assert!(idp.issuer().ends_with("/realms/ingress"));
//!
//! // A relying party (in the real tests: the plugin in Envoy) sends the browser here.
//! let mut auth = url::Url::parse(&idp.endpoint("authorization_endpoint")?)?;
//! auth.query_pairs_mut()
//!     .append_pair("client_id", "rp")
//!     .append_pair("response_type", "code")
//!     .append_pair("scope", "openid")
//!     .append_pair("redirect_uri", callback)
//!     .append_pair("state", "s1")
//!     .append_pair("code_challenge_method", "S256")
//!     .append_pair("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
//!
//! let mut browser = Browser::new();
//! let back = browser.sign_in(auth.as_str(), "alice", callback)?;
//! assert_eq!(back.param("state").as_deref(), Some("s1"));
//! assert!(back.code().is_ok());
//! # Ok(())
//! # }
//! ```
//!
//! The pieces:
//! - [`Provider::builder`] starts `oidc-provider` (npm, pinned in `provider/package.json`)
//!   on Node.js with the given [`TestClient`]s: authorization code flow only, PKCE S256
//!   required, refresh tokens for every client allowed the `refresh_token` grant, RP-initiated
//!   logout, ES256 or RS256 ID tokens with `kid`s, short configurable lifetimes.
//!   [`Provider::rotate_keys`] makes a new signing key current;
//!   [`Provider::tamper_next_id_token`] makes the next token response carry a bad ID token
//!   (wrong claims, `alg: none`, unknown key) for relying-party attack tests. The npm packages are
//!   installed by `tests/idp/install.sh`, which the first start in a process runs (it
//!   returns at once when they are up to date). Node.js is `$WEIR_NODE` or `node` on `PATH`.
//! - [`Browser`] keeps cookies like a browser (in `weir_test_http::CookieJar`) and makes one
//!   request per call with `weir_test_http::HttpRequest`, so each hop can be inspected or
//!   tampered with; [`Browser::sign_in`] and [`Browser::sign_out`] walk the provider's forms,
//!   found in the HTML by [`find_forms`]. Back-channel calls use `HttpRequest` directly.
//! - [`Jwt`] decodes ID tokens and checks their signatures against a JWKS.
//!
//! The provider's log (one line per request) is kept when a test panics, and its path is
//! printed.

#![warn(missing_docs)]

mod browser;
mod client;
mod html;
mod install;
mod jwt;
mod provider;
mod tamper;

pub use browser::{Browser, Callback, Hop, SignedOut, BROWSER_ACCEPT};
pub use client::{ClientAuth, SigningAlg, TestClient};
pub use html::{find_forms, Field, Form, SubmitButton};
pub use install::{ensure_installed, find_node, idp_dir};
pub use jwt::Jwt;
pub use provider::{KeyRotation, Provider, ProviderBuilder};
pub use tamper::{IdTokenTamper, TamperSigning};
