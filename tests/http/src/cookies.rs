//! A browser's cookie jar (RFC 6265), as far as loopback tests need it.
//!
//! Kept like a browser: cookies are per host, not per port (so a plugin in Envoy on one port
//! and the provider on another see each other's cookies, as real browsers would on one host);
//! `Path`, `Domain`, `Max-Age` and `Expires` are honoured; the `__Secure-` and `__Host-`
//! prefixes are enforced. `Secure` cookies are accepted and sent over plain HTTP only for
//! loopback hosts, which browsers treat as secure contexts. `SameSite` is recorded but not
//! applied: every host here is the same site.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use url::Url;

/// One stored cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cookie {
    /// The cookie name.
    pub name: String,
    /// The cookie value, exactly as set.
    pub value: String,
    /// The host (host-only cookies) or domain it is sent to, lower case.
    pub domain: String,
    /// Whether it goes only to `domain` itself (no `Domain` attribute was given).
    pub host_only: bool,
    /// The path it is sent under.
    pub path: String,
    /// The `Secure` attribute.
    pub secure: bool,
    /// The `HttpOnly` attribute.
    pub http_only: bool,
    /// The `SameSite` attribute as given, if any.
    pub same_site: Option<String>,
    /// When it expires; `None` is a session cookie.
    pub expires: Option<SystemTime>,
}

/// Cookies in the order they were first set.
#[derive(Debug, Clone, Default)]
pub struct CookieJar {
    cookies: Vec<Cookie>,
}

impl CookieJar {
    /// Stores what `Set-Cookie` header values received from `url` ask for. Values a browser
    /// would ignore (bad prefix, foreign domain, `Secure` from a non-secure origin) are
    /// skipped; expired ones delete the stored cookie of the same name, domain and path.
    pub fn store(&mut self, url: &Url, set_cookie_values: &[&str]) {
        for value in set_cookie_values {
            if let Some(cookie) = parse_set_cookie(url, value) {
                self.insert(cookie);
            }
        }
    }

    /// Adds or replaces a cookie as-is (for tests that plant or tamper cookies); an expired
    /// one removes the stored cookie with the same name, domain and path.
    pub fn insert(&mut self, cookie: Cookie) {
        let same = |c: &Cookie| {
            c.name == cookie.name && c.domain == cookie.domain && c.path == cookie.path
        };
        let expired = cookie.expires.is_some_and(|t| t <= SystemTime::now());
        match self.cookies.iter().position(same) {
            Some(i) if expired => {
                self.cookies.remove(i);
            }
            // Replacing keeps the original position, as the creation time is kept (RFC 6265).
            Some(i) => self.cookies[i] = cookie,
            None if expired => {}
            None => self.cookies.push(cookie),
        }
    }

    /// The `Cookie` header value a browser would send to `url`, if any cookie applies.
    pub fn header_for(&self, url: &Url) -> Option<String> {
        let host = url.host_str()?.to_ascii_lowercase();
        let secure_origin = url.scheme() == "https" || is_loopback(&host);
        let now = SystemTime::now();
        let mut matching: Vec<&Cookie> = self
            .cookies
            .iter()
            .filter(|c| c.expires.is_none_or(|t| t > now))
            .filter(|c| !c.secure || secure_origin)
            .filter(|c| {
                if c.host_only {
                    c.domain == host
                } else {
                    domain_matches(&host, &c.domain)
                }
            })
            .filter(|c| path_matches(url.path(), &c.path))
            .collect();
        // Longer paths first; the stable sort keeps creation order among equals.
        matching.sort_by_key(|c| std::cmp::Reverse(c.path.len()));
        let pairs: Vec<String> = matching
            .iter()
            .map(|c| format!("{}={}", c.name, c.value))
            .collect();
        (!pairs.is_empty()).then(|| pairs.join("; "))
    }

    /// The first live cookie called `name`, whatever its domain and path.
    pub fn get(&self, name: &str) -> Option<&Cookie> {
        let now = SystemTime::now();
        self.cookies
            .iter()
            .find(|c| c.name == name && c.expires.is_none_or(|t| t > now))
    }

    /// Every stored cookie (expired ones included until they are replaced).
    pub fn iter(&self) -> impl Iterator<Item = &Cookie> {
        self.cookies.iter()
    }

    /// Removes every cookie called `name`; returns how many there were.
    pub fn remove(&mut self, name: &str) -> usize {
        let before = self.cookies.len();
        self.cookies.retain(|c| c.name != name);
        before - self.cookies.len()
    }

    /// Forgets everything, like a new private window.
    pub fn clear(&mut self) {
        self.cookies.clear();
    }
}

fn parse_set_cookie(url: &Url, header: &str) -> Option<Cookie> {
    let host = url.host_str()?.to_ascii_lowercase();
    let mut parts = header.split(';');
    let (name, value) = parts.next()?.split_once('=')?;
    let (name, value) = (name.trim(), value.trim());
    if name.is_empty() {
        return None;
    }
    let mut cookie = Cookie {
        name: name.to_owned(),
        value: value.to_owned(),
        domain: host.clone(),
        host_only: true,
        path: default_path(url.path()),
        secure: false,
        http_only: false,
        same_site: None,
        expires: None,
    };
    let mut max_age: Option<i64> = None;
    let mut path_given = false;
    let mut domain_given = false;
    for attribute in parts {
        let (key, val) = match attribute.split_once('=') {
            Some((k, v)) => (k.trim(), v.trim()),
            None => (attribute.trim(), ""),
        };
        match key.to_ascii_lowercase().as_str() {
            "expires" => {
                if let Ok(t) = httpdate::parse_http_date(val) {
                    cookie.expires = Some(t);
                }
            }
            "max-age" => max_age = val.parse().ok(),
            "domain" if !val.is_empty() => {
                let domain = val.trim_start_matches('.').to_ascii_lowercase();
                if !domain_matches(&host, &domain) {
                    return None;
                }
                cookie.domain = domain;
                domain_given = true;
                // An IP address has no subdomains: the cookie stays host-only there.
                cookie.host_only = host.parse::<IpAddr>().is_ok();
            }
            "path" if val.starts_with('/') => {
                cookie.path = val.to_owned();
                path_given = true;
            }
            "secure" => cookie.secure = true,
            "httponly" => cookie.http_only = true,
            "samesite" => cookie.same_site = Some(val.to_owned()),
            _ => {}
        }
    }
    if let Some(seconds) = max_age {
        cookie.expires = Some(if seconds <= 0 {
            SystemTime::UNIX_EPOCH
        } else {
            SystemTime::now() + Duration::from_secs(seconds.unsigned_abs())
        });
    }
    let secure_origin = url.scheme() == "https" || is_loopback(&host);
    if cookie.secure && !secure_origin {
        return None;
    }
    if name.starts_with("__Secure-") && !cookie.secure {
        return None;
    }
    if name.starts_with("__Host-")
        && (!cookie.secure || domain_given || !path_given || cookie.path != "/")
    {
        return None;
    }
    Some(cookie)
}

/// RFC 6265 §5.1.4: the request path up to (not including) its last `/`, or `/`.
fn default_path(request_path: &str) -> String {
    match request_path.rfind('/') {
        Some(0) | None => "/".to_owned(),
        Some(i) => request_path[..i].to_owned(),
    }
}

/// RFC 6265 §5.1.4 path-match.
fn path_matches(request_path: &str, cookie_path: &str) -> bool {
    request_path == cookie_path
        || (request_path.starts_with(cookie_path)
            && (cookie_path.ends_with('/')
                || request_path.as_bytes().get(cookie_path.len()) == Some(&b'/')))
}

/// RFC 6265 §5.1.3 domain-match (IP addresses only match themselves).
fn domain_matches(host: &str, domain: &str) -> bool {
    host == domain
        || (host.parse::<IpAddr>().is_err()
            && host.ends_with(domain)
            && host.as_bytes().get(host.len() - domain.len() - 1) == Some(&b'.'))
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).expect("test URL")
    }

    #[test]
    fn cookies_follow_host_and_path_but_not_port() {
        let mut jar = CookieJar::default();
        jar.store(
            &url("http://127.0.0.1:1000/realms/x/auth"),
            &["a=1; Path=/realms/x"],
        );
        jar.store(&url("http://127.0.0.1:1000/app/page"), &["b=2"]);
        assert_eq!(
            jar.header_for(&url("http://127.0.0.1:2000/realms/x/token"))
                .as_deref(),
            Some("a=1")
        );
        assert_eq!(
            jar.header_for(&url("http://127.0.0.1:2000/app/other"))
                .as_deref(),
            Some("b=2")
        );
        assert_eq!(
            jar.header_for(&url("http://127.0.0.1:1000/realms/xy")),
            None
        );
        assert_eq!(jar.header_for(&url("http://localhost:1000/realms/x")), None);
    }

    #[test]
    fn expiry_deletes_and_prefixes_are_enforced() {
        let mut jar = CookieJar::default();
        let origin = url("http://127.0.0.1:1/");
        jar.store(&origin, &["s=1; Path=/", "__Host-ok=1; Secure; Path=/"]);
        jar.store(
            &origin,
            &["__Host-nopath=1; Secure", "__Host-insecure=1; Path=/"],
        );
        jar.store(
            &origin,
            &[
                "__Secure-no=1; Path=/",
                "__Host-dom=1; Secure; Path=/; Domain=127.0.0.1",
            ],
        );
        assert_eq!(jar.header_for(&origin).as_deref(), Some("s=1; __Host-ok=1"));
        jar.store(
            &origin,
            &["s=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT"],
        );
        jar.store(&origin, &["__Host-ok=; Secure; Path=/; Max-Age=0"]);
        assert_eq!(jar.header_for(&origin), None);
    }

    #[test]
    fn secure_cookies_need_a_secure_or_loopback_origin() {
        let mut jar = CookieJar::default();
        jar.store(&url("http://example.test/"), &["x=1; Secure; Path=/"]);
        assert_eq!(jar.iter().count(), 0);
        jar.store(&url("http://localhost:9/"), &["x=1; Secure; Path=/"]);
        assert_eq!(
            jar.header_for(&url("http://localhost:8/a")).as_deref(),
            Some("x=1")
        );
    }
}
