//! A JWKS served by an Envoy cluster, like `jwt_authn`'s `remote_jwks` (features `jwt` and
//! `callout`): fetched by a background job when the plugin is configured and on a period,
//! kept in [shared data](crate::shared_data) so every VM (one per Envoy worker) uses one
//! copy, and refetched at once when a token names a `kid` the copy does not have — at most
//! once per `min_refetch` across all VMs, so a stream of tokens with made-up `kid`s cannot
//! turn into a stream of fetches.
//!
//! ```no_run
//! use std::time::Duration;
//! use weir::jwt::{RemoteJwks, Verifier};
//!
//! let jwks = RemoteJwks::new("idp", "/.well-known/jwks.json").refresh_every(Duration::from_secs(300));
//! let rules = Verifier::new().issuer("https://idp.example").audience("api");
//! // In a background job:   jwks.refresh().await?
//! // In a request:          jwks.verifier(&rules)? → Some(verifier) once a copy exists
//! # let _ = (jwks, rules);
//! ```

use super::Verifier;
use crate::callout::Call;
use crate::shared_data;
use crate::{Error, Result};
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

/// The largest JWKS document accepted (jwt_authn has no limit; a few keys take ~2 KB). A
/// larger answer is refused before it is read into the plugin's memory.
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// The longest period or interval a [`RemoteJwks`] takes; longer ones are cut to this.
pub const MAX_PERIOD: Duration = Duration::from_secs(7 * 24 * 3600);

/// A JWKS at `path` on an Envoy cluster, cached in shared data. See the [module docs](crate::jwt::remote).
pub struct RemoteJwks {
    cluster: String,
    path: String,
    key: String,
    refresh: Duration,
    min_refetch: Duration,
    timeout: Duration,
    /// This VM's verifier, with the shared-data version it was built from.
    local: RefCell<Option<(u32, Rc<Verifier>)>>,
}

impl std::fmt::Debug for RemoteJwks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteJwks")
            .field("cluster", &self.cluster)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl RemoteJwks {
    /// The JWKS at `path` on `cluster`: refreshed every 5 minutes (jwt_authn's default cache
    /// duration), refetched on an unknown `kid` at most every 30 s, 2 s fetch timeout.
    pub fn new(cluster: impl Into<String>, path: impl Into<String>) -> Self {
        let (cluster, path) = (cluster.into(), path.into());
        RemoteJwks {
            key: format!("weir.jwks {cluster} {path}"),
            cluster,
            path,
            refresh: Duration::from_secs(300),
            min_refetch: Duration::from_secs(30),
            timeout: Duration::from_secs(2),
            local: RefCell::new(None),
        }
    }

    /// How often the background job fetches the document (at most [`MAX_PERIOD`]).
    pub fn refresh_every(mut self, period: Duration) -> Self {
        self.refresh = period.min(MAX_PERIOD);
        self
    }

    /// The shortest time between two fetches caused by unknown `kid`s, across all VMs (at
    /// most [`MAX_PERIOD`]).
    pub fn min_refetch(mut self, interval: Duration) -> Self {
        self.min_refetch = interval.min(MAX_PERIOD);
        self
    }

    /// How long one fetch may take (at most [`MAX_PERIOD`]; Envoy cuts it further, see
    /// [`callout::MAX_TIMEOUT`](crate::callout::MAX_TIMEOUT)).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout.min(MAX_PERIOD);
        self
    }

    /// The refresh period, for [`Background::every`](crate::background::Background::every).
    pub fn refresh_period(&self) -> Duration {
        self.refresh
    }

    /// The background job's work: fetch and share the document. Every VM runs the job, but
    /// once a copy exists only one fetch per period happens: a VM skips when another stored
    /// a copy less than half a period ago or is fetching right now (its turn lapses after
    /// the fetch timeout, so a VM that went away mid-fetch does not block the others).
    /// Before the first copy exists every VM fetches, so the first answer serves all.
    pub async fn refresh(&self) -> Result<()> {
        if let Some(fetched_at) = self.fetched_at()? {
            if now() < fetched_at.saturating_add(self.refresh.as_secs() / 2) {
                return Ok(());
            }
            if !self.claim(
                "refresh",
                self.timeout.saturating_add(Duration::from_secs(1)),
            )? {
                return Ok(());
            }
        }
        let fetched = self.fetch().await;
        if fetched.is_err() {
            shared_data::set(&self.claim_key("refresh"), b"0", None)?;
        }
        fetched
    }

    /// When the shared copy was fetched, if there is one.
    fn fetched_at(&self) -> Result<Option<u64>> {
        let Some((bytes, _)) = shared_data::get(&self.key)? else {
            return Ok(None);
        };
        Ok(Some(split(&bytes)?.0))
    }

    /// Fetches now because a token named an unknown `kid` (or there is no copy yet), unless
    /// some VM already tried within `min_refetch`. Returns whether a new copy was stored.
    pub async fn refetch(&self) -> Result<bool> {
        if !self.claim("refetch", self.min_refetch)? {
            return Ok(false);
        }
        self.fetch().await?;
        Ok(true)
    }

    /// A verifier with `rules` and the keys of the current shared copy, or `None` before
    /// the first successful fetch. Rebuilt only when the shared copy changed.
    pub fn verifier(&self, rules: &Verifier) -> Result<Option<Rc<Verifier>>> {
        let Some((bytes, version)) = shared_data::get(&self.key)? else {
            return Ok(None);
        };
        if let Some((built, verifier)) = self.local.borrow().as_ref() {
            if *built == version {
                return Ok(Some(verifier.clone()));
            }
        }
        let (_, doc) = split(&bytes)?;
        let verifier = Rc::new(rules.with_jwks(doc)?);
        *self.local.borrow_mut() = Some((version, verifier.clone()));
        Ok(Some(verifier))
    }

    async fn fetch(&self) -> Result<()> {
        let what = || {
            format!(
                "fetching the JWKS from cluster '{}' path {}",
                self.cluster, self.path
            )
        };
        let res = Call::get(self.cluster.as_str(), &self.path)
            .header("accept", "application/json")
            .timeout(self.timeout)
            .max_response_bytes(MAX_JWKS_BYTES)
            .send()
            .await
            .map_err(|e| e.context(what()))?;
        if res.status != 200 {
            return Err(Error::msg(format!("{}: status {}", what(), res.status)));
        }
        let doc = res.text().map_err(|e| e.context(what()))?;
        // Checked before it is shared: a broken document must not replace a working one.
        Verifier::new().jwks(doc).map_err(|e| e.context(what()))?;
        let mut value = format!("{}\n", now()).into_bytes();
        value.extend_from_slice(doc.as_bytes());
        shared_data::set(&self.key, &value, None)?;
        Ok(())
    }

    fn claim_key(&self, what: &str) -> String {
        format!("{} {what}", self.key)
    }

    /// Takes this VM's turn to fetch: false if any VM took a turn for `what` within
    /// `interval`, or another VM took it between our read and our (compare-and-swap) write.
    fn claim(&self, what: &str, interval: Duration) -> Result<bool> {
        let key = self.claim_key(what);
        let now = now();
        let (last, version) = match shared_data::get(&key)? {
            Some((bytes, version)) => (
                std::str::from_utf8(&bytes)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok()),
                Some(version),
            ),
            None => (None, None),
        };
        if last.is_some_and(|last| last != 0 && now < last.saturating_add(interval.as_secs())) {
            return Ok(false);
        }
        shared_data::set(&key, now.to_string().as_bytes(), version)
    }
}

/// Splits a stored value, `<fetched at>\n<document>`.
fn split(bytes: &[u8]) -> Result<(u64, &str)> {
    let text = std::str::from_utf8(bytes).map_err(|_| Error::msg("cached JWKS is not UTF-8"))?;
    let (at, doc) = text
        .split_once('\n')
        .ok_or_else(|| Error::msg("cached JWKS is malformed"))?;
    Ok((
        at.parse()
            .map_err(|_| Error::msg("cached JWKS is malformed"))?,
        doc,
    ))
}

/// The host's clock in Unix seconds; 0 (long ago) if it cannot be read, which makes every
/// copy look stale and every turn free: fetching again is the safe side.
fn now() -> u64 {
    crate::unix_time().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_periods_are_cut_to_a_week_and_add_without_overflow() {
        let jwks = RemoteJwks::new("idp", "/jwks")
            .refresh_every(Duration::MAX)
            .min_refetch(Duration::MAX)
            .timeout(Duration::MAX);
        assert_eq!(jwks.refresh_period(), MAX_PERIOD);
        assert_eq!((jwks.min_refetch, jwks.timeout), (MAX_PERIOD, MAX_PERIOD));
        assert_eq!(
            u64::MAX.saturating_add(jwks.refresh.as_secs() / 2),
            u64::MAX
        );
    }
}
