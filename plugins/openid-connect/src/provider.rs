//! What the plugin knows about the provider: the discovery document and the JWKS, fetched
//! with callouts to `openid_server` and cached in shared data, so every VM (Envoy runs one
//! per worker) uses one copy. Each VM keeps the parsed verifier and rebuilds it when the
//! shared copy changes.
//!
//! There is no timer: the first request after `provider_refresh_seconds` refreshes the copy
//! (and keeps using the old one if the provider is down). After a failed fetch a VM waits
//! `retry_after_seconds` before asking again. An ID token whose `kid` is unknown
//! triggers a JWKS refetch, at most once per `jwks_min_refetch_seconds` across all VMs.

use crate::config::{url_authority, url_path, Config};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use weir::jwt::Verifier;
use weir::{shared_data, Call, Error, Result};

/// Largest discovery document or JWKS accepted (real ones are a few KB).
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// The provider's endpoints and keys, as cached in shared data.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Doc {
    /// `issuer` from discovery.
    pub issuer: String,
    /// Where browsers sign in.
    pub authorization_endpoint: String,
    /// Where codes and refresh tokens are exchanged.
    pub token_endpoint: String,
    /// RP-initiated logout, when offered.
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
    /// `jwks_uri`.
    pub jwks_uri: String,
    /// The JWKS document as served.
    pub jwks: String,
    /// When discovery was last read (Unix seconds).
    pub fetched_at: u64,
    /// When the JWKS was last read.
    pub jwks_fetched_at: u64,
}

/// A usable provider: its document and a verifier over its keys.
#[derive(Debug)]
pub struct Provider {
    /// The cached document.
    pub doc: Doc,
    /// Verifies ID tokens: signature by `kid`, algorithm allow-list, `iss`, `aud`, `exp`,
    /// `nbf`, `iat`. `azp` and `nonce` are checked by the caller.
    pub verifier: Verifier,
}

thread_local! {
    /// This VM's parsed copy, with the shared-data version it was built from.
    static LOCAL: RefCell<Option<(u32, Rc<Provider>)>> = const { RefCell::new(None) };
    /// Whether a stream of this VM is fetching discovery now.
    static FETCHING: Cell<bool> = const { Cell::new(false) };
    /// After a failed fetch, no new attempt before this time (Unix seconds): otherwise every
    /// request would call an unreachable provider and wait for the timeout.
    static NEXT_ATTEMPT: Cell<u64> = const { Cell::new(0) };
}

/// Clears [`FETCHING`] however the fetch ends, including the stream going away mid-call.
struct FetchGuard;

impl FetchGuard {
    fn take() -> Option<FetchGuard> {
        (!FETCHING.with(|f| f.replace(true))).then_some(FetchGuard)
    }
}

impl Drop for FetchGuard {
    fn drop(&mut self) {
        FETCHING.with(|f| f.set(false));
    }
}

/// The host's clock in Unix seconds (0 if unreadable: copies then look stale).
pub fn now() -> u64 {
    weir::unix_time().unwrap_or(0)
}

/// Where the provider copy lives: one per cluster, client and discovery document, so two
/// configurations naming different issuers never share one.
fn shared_key(cfg: &Config) -> String {
    format!(
        "openid-connect/{}/{}/{}",
        cfg.cluster, cfg.client_id, cfg.discovery_path
    )
}

/// The provider from this VM's copy or shared data, without any call.
pub fn cached(cfg: &Config) -> Option<Rc<Provider>> {
    let (bytes, cas) = shared_data::get(&shared_key(cfg)).ok()??;
    if let Some(hit) = LOCAL.with(|l| {
        l.borrow()
            .as_ref()
            .filter(|(v, _)| *v == cas)
            .map(|(_, p)| p.clone())
    }) {
        return Some(hit);
    }
    let doc: Doc = serde_json::from_slice(&bytes).ok()?;
    // Shared data is writable by every plugin of this VM id: what is read back gets the
    // same issuer check as what discovery returned.
    if let Err(err) = check_issuer(cfg, &doc.issuer) {
        log::warn!("ignoring the provider copy in shared data: {err}");
        return None;
    }
    let provider = Rc::new(build(cfg, doc).ok()?);
    LOCAL.with(|l| *l.borrow_mut() = Some((cas, provider.clone())));
    Some(provider)
}

fn build(cfg: &Config, doc: Doc) -> Result<Provider> {
    let mut verifier = Verifier::new()
        .jwks(&doc.jwks)?
        .algorithms(cfg.algorithms.iter().cloned())
        .issuer(doc.issuer.clone())
        .audience(cfg.client_id.clone())
        .clock_skew_seconds(cfg.clock_skew);
    verifier = verifier.max_token_bytes(16 * 1024);
    Ok(Provider { doc, verifier })
}

fn store(cfg: &Config, doc: &Doc) -> Result<Rc<Provider>> {
    let provider = Rc::new(build(cfg, doc.clone())?);
    let bytes = serde_json::to_vec(doc)?;
    // No CAS: two VMs storing what they just fetched may overwrite each other harmlessly.
    shared_data::set(&shared_key(cfg), &bytes, None)
        .map_err(|e| e.context("cannot store the provider in shared data"))?;
    Ok(provider)
}

/// What [`ensure`] found.
#[derive(Debug)]
pub enum Known {
    /// Usable now.
    Ready(Rc<Provider>),
    /// Not known yet and another stream of this VM is fetching it.
    Pending,
}

/// The provider, fetching discovery and JWKS first when there is no copy or it is stale.
/// A stale copy is kept when the refresh fails; no copy and a failed fetch is an `Err`.
pub async fn ensure(cfg: &Config) -> Result<Known> {
    let current = cached(cfg);
    let now = now();
    if let Some(p) = &current {
        if p.doc.fetched_at.saturating_add(cfg.provider_refresh) > now {
            return Ok(Known::Ready(p.clone()));
        }
    }
    if NEXT_ATTEMPT.with(Cell::get) > now {
        return match current {
            Some(p) => Ok(Known::Ready(p)),
            None => Err(Error::msg(
                "the OpenID provider was unreachable moments ago; not asking again yet",
            )),
        };
    }
    let Some(_guard) = FetchGuard::take() else {
        return Ok(current.map_or(Known::Pending, Known::Ready));
    };
    let fetched = fetch(cfg, now).await.and_then(|doc| store(cfg, &doc));
    if fetched.is_err() {
        NEXT_ATTEMPT.with(|n| n.set(now.saturating_add(cfg.retry_after)));
    }
    match fetched {
        Ok(p) => Ok(Known::Ready(p)),
        Err(err) => match current {
            Some(p) => {
                log::warn!("provider refresh failed, keeping the cached copy: {err}");
                Ok(Known::Ready(p))
            }
            None => Err(err.context("cannot discover the OpenID provider")),
        },
    }
}

/// The background job: refreshes an existing copy once it is stale, without waiting for a
/// request. Without a copy there is nothing to refresh (discovery happens on demand).
pub async fn refresh_if_stale(cfg: &Config) -> Result<()> {
    match cached(cfg) {
        Some(p) if p.doc.fetched_at.saturating_add(cfg.provider_refresh) <= now() => {
            ensure(cfg).await.map(|_| ())
        }
        _ => Ok(()),
    }
}

/// After a token named an unknown `kid`: refetches the JWKS unless that happened less than
/// `jwks_min_refetch_seconds` ago. Returns the new provider when the keys changed.
pub async fn refetch_jwks(cfg: &Config, current: &Provider) -> Option<Rc<Provider>> {
    let now = now();
    let latest = cached(cfg);
    let doc = latest.as_ref().map_or(&current.doc, |p| &p.doc);
    if doc.jwks_fetched_at.saturating_add(cfg.jwks_min_refetch) > now {
        // Another VM or stream may have fetched new keys meanwhile.
        return latest.filter(|p| p.doc.jwks != current.doc.jwks);
    }
    let mut doc = doc.clone();
    // Recorded first, so a failing provider is not asked again and again.
    doc.jwks_fetched_at = now;
    let _ = store(cfg, &doc);
    match get_json(cfg, &doc.jwks_uri).await {
        Ok((_, text)) => {
            doc.jwks = text;
            match store(cfg, &doc) {
                Ok(p) => Some(p),
                Err(err) => {
                    log::warn!("the provider's new JWKS is unusable: {err}");
                    None
                }
            }
        }
        Err(err) => {
            log::warn!("JWKS refetch failed: {err}");
            None
        }
    }
}

/// The `:authority` for calls to `url` on the provider's cluster.
pub fn authority<'a>(cfg: &'a Config, url: &'a str) -> &'a str {
    match &cfg.provider_authority {
        Some(a) => a,
        None if url.contains("://") => url_authority(url),
        None => &cfg.cluster,
    }
}

async fn get_json(cfg: &Config, url: &str) -> Result<(Value, String)> {
    let res = Call::get(cfg.cluster.as_str(), url_path_query(url))
        .authority(authority(cfg, url))
        .header("accept", "application/json")
        .timeout(cfg.timeout)
        .send()
        .await?;
    if res.status != 200 {
        return Err(Error::msg(format!("{} answered {}", url, res.status)));
    }
    if res.body.len() > MAX_DOCUMENT_BYTES {
        return Err(Error::msg(format!(
            "{url} answered {} bytes, more than the {MAX_DOCUMENT_BYTES} a discovery document or JWKS may have",
            res.body.len()
        )));
    }
    let text = res.text()?.to_string();
    let value = serde_json::from_str(&text)?;
    Ok((value, text))
}

/// Path and query of an absolute URL, for a call on the provider's cluster.
pub fn url_path_query(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.find('/').map_or("/", |i| &rest[i..])
}

/// The issuer a provider document names must be the configured one (or, with only a realm
/// configured, one in that realm's path).
fn check_issuer(cfg: &Config, issuer: &str) -> Result<()> {
    match (&cfg.issuer, &cfg.realm_suffix) {
        (Some(want), _) if want != issuer => Err(Error::msg(format!(
            "discovery names issuer {issuer:?}, configured issuer is {want:?}"
        ))),
        (None, Some(suffix))
            if !url_path(issuer)
                .trim_end_matches('/')
                .ends_with(suffix.as_str()) =>
        {
            Err(Error::msg(format!(
            "discovery names issuer {issuer:?}, which is not in realm path {suffix}; set issuer"
        )))
        }
        _ => Ok(()),
    }
}

async fn fetch(cfg: &Config, now: u64) -> Result<Doc> {
    let discovery_url = match &cfg.issuer {
        Some(iss) if cfg.provider_authority.is_none() => {
            format!("http://{}{}", url_authority(iss), cfg.discovery_path)
        }
        _ => cfg.discovery_path.clone(),
    };
    let (disc, _) = get_json(cfg, &discovery_url).await?;
    let text = |name: &str| disc.get(name).and_then(Value::as_str).map(str::to_string);
    let need = |name: &str| {
        text(name).ok_or_else(|| Error::msg(format!("discovery document has no {name}")))
    };
    let issuer = need("issuer")?;
    check_issuer(cfg, &issuer)?;
    let jwks_uri = need("jwks_uri")?;
    let (_, jwks) = get_json(cfg, &jwks_uri).await?;
    Ok(Doc {
        issuer,
        authorization_endpoint: need("authorization_endpoint")?,
        token_endpoint: need("token_endpoint")?,
        end_session_endpoint: text("end_session_endpoint"),
        jwks_uri,
        jwks,
        fetched_at: now,
        jwks_fetched_at: now,
    })
}
