//! A browser-like client: cookie jar, redirects one hop at a time, and the provider's
//! sign-in, consent and sign-out forms filled in from the HTML.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use url::Url;

use weir_test_http::{snippet, CookieJar, HttpRequest, HttpResponse};

use crate::html::{find_forms, Form, SubmitButton};

/// What a browser navigating to a page sends as `Accept`; plugins tell browsers from API
/// clients by it.
pub const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

/// The password typed into sign-in forms (the provider's development login takes any).
const PASSWORD: &str = "weir-test-password";

/// One request the browser made and what it got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hop {
    /// The method.
    pub method: String,
    /// The URL requested.
    pub url: Url,
    /// The response status.
    pub status: u16,
    /// The resolved `Location`, for redirects.
    pub location: Option<Url>,
}

/// Where a sign-in ended: the redirect to the relying party's callback, not yet requested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callback {
    /// The full callback URL with its query (`code`, `state`, `iss`, or `error`).
    pub url: Url,
}

impl Callback {
    /// A query parameter of the callback URL.
    pub fn param(&self, name: &str) -> Option<String> {
        self.url
            .query_pairs()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.into_owned())
    }

    /// The authorization code; an error naming the provider's `error` if there is none.
    pub fn code(&self) -> Result<String> {
        self.param("code").with_context(|| {
            format!(
                "the provider redirected to the callback without a code: error {:?} ({:?})",
                self.param("error"),
                self.param("error_description")
            )
        })
    }
}

/// How a sign-out ended.
#[derive(Debug, Clone)]
pub enum SignedOut {
    /// Redirected to the relying party's post-logout URI (not yet requested).
    Redirected(Url),
    /// The provider showed its own "signed out" page.
    Page(HttpResponse),
}

/// A cookie-keeping HTTP client that never follows redirects by itself.
///
/// [`Browser::get`], [`Browser::follow`] and [`Browser::submit`] each make exactly one
/// request, so a test can look at (or tamper with) every hop; [`Browser::sign_in`] and
/// [`Browser::sign_out`] walk the provider's pages with those same steps.
#[derive(Debug, Clone)]
pub struct Browser {
    timeout: Duration,
    jar: CookieJar,
    history: Vec<Hop>,
    max_hops: usize,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    /// A browser with an empty cookie jar, 10 s per request and at most 20 hops per walk.
    pub fn new() -> Self {
        Self::with_timeout(Duration::from_secs(10))
    }

    /// A browser whose every request ends within `timeout`.
    pub fn with_timeout(timeout: Duration) -> Self {
        Self {
            timeout,
            jar: CookieJar::default(),
            history: Vec::new(),
            max_hops: 20,
        }
    }

    /// The cookie jar.
    pub fn cookies(&self) -> &CookieJar {
        &self.jar
    }

    /// The cookie jar, to plant, change or drop cookies between hops.
    pub fn cookies_mut(&mut self) -> &mut CookieJar {
        &mut self.jar
    }

    /// Every request made so far, in order.
    pub fn history(&self) -> &[Hop] {
        &self.history
    }

    /// Sends `request` as this browser: adds `Cookie` from the jar (unless the request
    /// carries its own) and a browser `Accept` (unless given), then stores `Set-Cookie`.
    pub fn send(&mut self, mut request: HttpRequest) -> Result<HttpResponse> {
        let url = parse_http_url(request.url())?;
        if !request.has_header("cookie") {
            if let Some(cookie) = self.jar.header_for(&url) {
                request = request.header("cookie", &cookie);
            }
        }
        if !request.has_header("accept") {
            request = request.header("accept", BROWSER_ACCEPT);
        }
        let request = request.timeout(self.timeout);
        let response = request.send()?;
        self.jar
            .store(&url, &response.headers.get_all("set-cookie"));
        self.history.push(Hop {
            method: request.method().to_owned(),
            url,
            status: response.status,
            location: response.location().ok().flatten(),
        });
        Ok(response)
    }

    /// Navigates to `url` (one `GET`, redirects not followed).
    pub fn get(&mut self, url: &str) -> Result<HttpResponse> {
        self.send(HttpRequest::get(url)?)
    }

    /// Follows one redirect with a `GET`, as browsers do for 301, 302 and 303.
    pub fn follow(&mut self, response: &HttpResponse) -> Result<HttpResponse> {
        let location = response.location()?.with_context(|| {
            format!(
                "{} answered {} without a Location",
                response.url, response.status
            )
        })?;
        match response.status {
            301..=303 => self.send(HttpRequest::get(without_fragment(location).as_str())?),
            307 | 308 => bail!(
                "{} answered {}, which repeats the method and body: send that request yourself",
                response.url,
                response.status
            ),
            other => bail!("{} answered {other}, which is not a redirect", response.url),
        }
    }

    /// Submits `form` as if `pressed` were clicked (`None`: as if Enter were pressed).
    pub fn submit(&mut self, form: &Form, pressed: Option<&SubmitButton>) -> Result<HttpResponse> {
        let data = form.data(pressed)?;
        let action = without_fragment(form.action.clone());
        if form.method == "POST" {
            self.send(HttpRequest::post_form(action.as_str(), &data)?)
        } else {
            let mut url = action;
            url.query_pairs_mut().clear().extend_pairs(&data);
            self.send(HttpRequest::get(url.as_str())?)
        }
    }

    /// Opens `authorization_url` and walks the provider's pages as `username`: fills in the
    /// sign-in form (its text field gets the username, password fields any password),
    /// submits the consent form, and follows redirects until one points at `redirect_uri`.
    /// Returns that redirect without requesting it. A provider that still has a session
    /// redirects at once, and no form is shown.
    pub fn sign_in(
        &mut self,
        authorization_url: &str,
        username: &str,
        redirect_uri: &str,
    ) -> Result<Callback> {
        let first = self.get(authorization_url)?;
        self.sign_in_from(first, username, redirect_uri)
    }

    /// Like [`Browser::sign_in`], from a response already in hand (such as a plugin's
    /// redirect to the authorization endpoint).
    pub fn sign_in_from(
        &mut self,
        response: HttpResponse,
        username: &str,
        redirect_uri: &str,
    ) -> Result<Callback> {
        let target = parse_http_url(redirect_uri)?;
        let end = self.walk(response, Some(&target), |page, forms| {
            let form = pick_one_form(page, forms)?;
            let mut form = form;
            if form.fields.iter().any(|f| f.kind == "password") {
                fill_sign_in(&mut form, username)?;
            }
            let button = form.buttons.first().cloned();
            Ok(Some((form, button)))
        })?;
        match end {
            WalkEnd::Redirect(url) => Ok(Callback { url }),
            WalkEnd::Page(page) => bail!(
                "signing in stopped at {} ({}) before reaching {redirect_uri}: {}",
                page.url,
                page.status,
                snippet(&page.text())
            ),
        }
    }

    /// Opens `end_session_url` (the provider's `end_session_endpoint` with its query),
    /// confirms the sign-out form with its first button ("Yes, sign me out"), and follows
    /// redirects until one points at `post_logout_redirect_uri` (returned unrequested) or a
    /// page without forms is shown.
    pub fn sign_out(
        &mut self,
        end_session_url: &str,
        post_logout_redirect_uri: Option<&str>,
    ) -> Result<SignedOut> {
        let target = post_logout_redirect_uri.map(parse_http_url).transpose()?;
        let first = self.get(end_session_url)?;
        let end = self.walk(first, target.as_ref(), |page, forms| {
            if forms.is_empty() {
                return Ok(None);
            }
            let form = pick_one_form(page, forms)?;
            let button = form.buttons.first().cloned();
            Ok(Some((form, button)))
        })?;
        Ok(match end {
            WalkEnd::Redirect(url) => SignedOut::Redirected(url),
            WalkEnd::Page(page) => SignedOut::Page(page),
        })
    }

    fn walk(
        &mut self,
        mut response: HttpResponse,
        target: Option<&Url>,
        mut on_page: impl FnMut(
            &HttpResponse,
            Vec<Form>,
        ) -> Result<Option<(Form, Option<SubmitButton>)>>,
    ) -> Result<WalkEnd> {
        for _ in 0..self.max_hops {
            if response.is_redirect() {
                let location = response.location()?.context("redirect without Location")?;
                if target.is_some_and(|t| same_resource(&location, t)) {
                    return Ok(WalkEnd::Redirect(location));
                }
                response = self.follow(&response)?;
                continue;
            }
            let is_html = response
                .headers
                .get("content-type")
                .is_some_and(|t| t.starts_with("text/html"));
            if response.status != 200 || !is_html {
                bail!(
                    "{} answered {} ({}) where a page or redirect was expected: {}",
                    response.url,
                    response.status,
                    response
                        .headers
                        .get("content-type")
                        .unwrap_or("no content-type"),
                    snippet(&response.text())
                );
            }
            let forms = find_forms(&response.text(), &parse_http_url(&response.url)?)?;
            match on_page(&response, forms)? {
                Some((form, button)) => response = self.submit(&form, button.as_ref())?,
                None => return Ok(WalkEnd::Page(response)),
            }
        }
        bail!(
            "gave up after {} hops; last: {} ({})",
            self.max_hops,
            response.url,
            response.status
        )
    }
}

enum WalkEnd {
    Redirect(Url),
    Page(HttpResponse),
}

/// Whether `location` is `target` apart from its query and fragment.
fn same_resource(location: &Url, target: &Url) -> bool {
    let mut bare = location.clone();
    bare.set_query(None);
    bare.set_fragment(None);
    let mut target = target.clone();
    target.set_query(None);
    target.set_fragment(None);
    bare == target
}

fn pick_one_form(page: &HttpResponse, mut forms: Vec<Form>) -> Result<Form> {
    match forms.len() {
        1 => Ok(forms.remove(0)),
        0 => bail!("{} shows no form: {}", page.url, snippet(&page.text())),
        n => bail!(
            "{} shows {n} forms; pick one with html::find_forms and Browser::submit: {:?}",
            page.url,
            forms.iter().map(|f| f.action.as_str()).collect::<Vec<_>>()
        ),
    }
}

/// Types the username into the first text-like field and a password into password fields.
fn fill_sign_in(form: &mut Form, username: &str) -> Result<()> {
    let user_field = form
        .fields
        .iter()
        .find(|f| matches!(f.kind.as_str(), "text" | "email"))
        .map(|f| f.name.clone())
        .with_context(|| format!("the sign-in form for {} has no text field", form.action))?;
    form.set(&user_field, username)?;
    for field in form.fields.iter_mut().filter(|f| f.kind == "password") {
        field.value = PASSWORD.to_owned();
    }
    Ok(())
}

/// Parses an absolute `http://` URL.
fn parse_http_url(url: &str) -> Result<Url> {
    let parsed = Url::parse(url).with_context(|| format!("{url:?} is not an absolute URL"))?;
    if parsed.scheme() != "http" {
        bail!("only http:// URLs are used here (everything runs on 127.0.0.1), got {url:?}");
    }
    Ok(parsed)
}

/// `url` as a browser requests it: the fragment stays in the browser.
fn without_fragment(mut url: Url) -> Url {
    url.set_fragment(None);
    url
}
