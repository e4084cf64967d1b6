//! openid-connect's `.wasm` in weir-runtime against a scripted provider ([`idp`]): the login
//! flow, refresh and logout ([`login`]), and the attack matrix ([`attacks`]), each attack
//! checked never to reach the upstream. The real provider (oidc-provider) is exercised by
//! the Envoy suite.

mod attacks;
mod hardening;
mod idp;
mod login;

use idp::{Idp, CLIENT_SECRET};
use serde_json::{json, Value};
use std::time::Duration;
use url::Url;
use weir_runtime::{Outcome, Plugin, Request};
use weir_test_http::{Cookie, CookieJar};

pub const SESSION_KEY: &str = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
pub const SESSION: &str = "__Host-oidc-session";
pub const LOGIN: &str = "__Host-oidc-login";
/// weir-runtime's virtual clock starts at 2026-01-01T00:00:00Z; `Plugin::now` counts from there.
pub(crate) const CLOCK_START: u64 = weir_runtime::CLOCK_START.as_secs();

pub fn config(extra: Value) -> Value {
    let mut cfg = json!({ "openid_server": "idp", "openid_realm": "ingress", "client_id": idp::CLIENT_ID, "pass_through_prefixes": ["/public/"], "allowed_hosts": ["example.com"] });
    if let (Some(cfg), Value::Object(extra)) = (cfg.as_object_mut(), extra) {
        cfg.extend(extra);
    }
    cfg
}

/// The browser's cookies for the site, kept by weir-test-http's jar (`Max-Age=0` deletes).
/// Every cookie the plugin sets is checked to be `__Host-`, `Secure`, `HttpOnly`, `Path=/`.
#[derive(Debug, Default, Clone)]
pub struct Jar(CookieJar);

/// The site the plugin guards, as the browser sees it.
fn site() -> Url {
    Url::parse("https://example.com/").expect("site URL")
}

impl Jar {
    /// A jar holding `pairs` as the browser would after the site set them.
    pub fn with(pairs: &[(String, String)]) -> Jar {
        let mut jar = Jar::default();
        for (name, value) in pairs {
            jar.set(name, value);
        }
        jar
    }

    pub fn apply(&mut self, out: &Outcome) {
        let Some(res) = out.response() else { return };
        let lines = res.headers().get_all("set-cookie");
        self.0.store(&site(), &lines);
        for line in &lines {
            let (pair, attrs) = line.split_once(';').unwrap_or((line, ""));
            let (name, value) = pair.split_once('=').expect("set-cookie has name=value");
            assert!(
                attrs.contains("Secure") && attrs.contains("HttpOnly") && attrs.contains("Path=/"),
                "{line}"
            );
            assert!(name.starts_with("__Host-"), "{line}");
            let kept = if attrs.contains("Max-Age=0") {
                None
            } else {
                Some(value)
            };
            assert_eq!(self.get(name), kept, "the browser keeps {line}");
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|c| c.value.as_str())
    }

    /// Plants (or replaces) a cookie as if the site had set it.
    pub fn set(&mut self, name: &str, value: &str) {
        self.0.insert(Cookie {
            name: name.to_owned(),
            value: value.to_owned(),
            domain: "example.com".to_owned(),
            host_only: true,
            path: "/".to_owned(),
            secure: true,
            http_only: true,
            same_site: None,
            expires: None,
        });
    }

    /// Forgets the cookie called `name`.
    pub fn remove(&mut self, name: &str) {
        self.0.remove(name);
    }

    /// Forgets every cookie.
    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// `(name, value)` of every cookie, in the order the browser sends them.
    pub fn pairs(&self) -> Vec<(String, String)> {
        self.0
            .iter()
            .map(|c| (c.name.clone(), c.value.clone()))
            .collect()
    }

    /// The `Cookie` header the browser sends to the site (empty when there is none).
    pub fn header(&self) -> String {
        self.0.header_for(&site()).unwrap_or_default()
    }
}

pub(crate) struct Harness {
    pub plugin: Plugin,
    pub idp: Idp,
    pub jar: Jar,
}

pub(crate) fn start(extra: Value) -> Harness {
    let idp = Idp::new(0);
    let plugin = Plugin::build(env!("CARGO_MANIFEST_DIR"))
        .config(config(extra))
        .env("OIDC_CLIENT_SECRET", CLIENT_SECRET)
        .env("OIDC_SESSION_KEY", SESSION_KEY)
        .upstream("idp", idp.handler())
        .start()
        .expect("openid-connect starts");
    idp.state().now = CLOCK_START + plugin.now().as_secs();
    Harness {
        plugin,
        idp,
        jar: Jar::default(),
    }
}

impl Harness {
    /// A browser navigation to `path` with the jar's cookies; applies the `Set-Cookie`s.
    pub fn browse(&mut self, path: &str) -> Outcome {
        let mut req = Request::get(path)
            .header("accept", "text/html,application/xhtml+xml")
            .header("cookie", "theme=dark");
        if !self.jar.header().is_empty() {
            req = req.header("cookie", &self.jar.header());
        }
        let out = self.plugin.http().request(req).run();
        assert!(out.trap().is_none(), "trap: {:?}", out.trap());
        self.jar.apply(&out);
        out
    }

    /// One exchange on the first VM, checked not to trap.
    pub fn run(&self, req: Request) -> Outcome {
        let out = self.plugin.http().request(req).run();
        assert!(out.trap().is_none(), "trap: {:?}", out.trap());
        out
    }

    /// Signs out as the site's own sign-out form does: a same-origin POST.
    pub fn logout(&mut self) -> Outcome {
        let req = Request::post("/oauth2/logout")
            .header("sec-fetch-site", "same-origin")
            .header("cookie", &self.jar.header());
        let out = self.plugin.http().request(req).run();
        assert!(out.trap().is_none(), "trap: {:?}", out.trap());
        self.jar.apply(&out);
        out
    }

    /// Follows a login from `path`: the plugin's redirect, the user at the provider, the
    /// callback. Returns the callback's outcome.
    pub fn login(&mut self, path: &str) -> Outcome {
        let out = self.browse(path);
        let location = location(&out);
        let callback = self.idp.authorize(&location);
        self.browse(&callback)
    }

    pub fn advance(&self, seconds: u64) {
        self.plugin.advance(Duration::from_secs(seconds));
        self.idp.state().now = CLOCK_START + self.plugin.now().as_secs();
    }
}

pub fn location(out: &Outcome) -> String {
    let res = out.response().expect("a response");
    assert_eq!(
        res.status_code(),
        302,
        "expected a redirect; logs: {:?}",
        out.logs()
    );
    res.header_value("location")
        .expect("location header")
        .to_string()
}

/// The request was answered by the plugin with `status` and never reached the upstream.
pub fn assert_refused(out: &Outcome, status: u16) {
    assert!(out.trap().is_none(), "trap: {:?}", out.trap());
    assert!(
        out.upstream_request().is_none(),
        "the upstream must not see it; logs: {:?}",
        out.logs()
    );
    assert_eq!(
        out.local_reply().map(|r| r.status()),
        Some(status),
        "logs: {:?}",
        out.logs()
    );
}

/// The request reached the upstream with the session's ID token and without plugin cookies.
pub fn assert_forwarded(out: &Outcome) -> String {
    assert!(out.trap().is_none(), "trap: {:?}", out.trap());
    let up = out
        .upstream_request()
        .unwrap_or_else(|| panic!("reaches the upstream; logs: {:?}", out.logs()));
    let auth = up.headers().get_all("authorization");
    assert_eq!(auth.len(), 1, "{auth:?}");
    let token = auth[0]
        .strip_prefix("Bearer ")
        .expect("Bearer token")
        .to_string();
    assert_eq!(token.split('.').count(), 3);
    for cookie in up.headers().get_all("cookie") {
        assert!(
            !cookie.contains("__Host-oidc"),
            "plugin cookies reach the upstream: {cookie}"
        );
    }
    token
}

/// The `Set-Cookie` values of the response the client got.
pub fn set_cookies(out: &Outcome) -> Vec<String> {
    let Some(res) = out.response() else {
        return Vec::new();
    };
    res.headers()
        .get_all("set-cookie")
        .into_iter()
        .map(str::to_string)
        .collect()
}
