//! Retries with exponential backoff, on the same errors Istio's fetcher retries: connection
//! failures, timeouts and 5xx except 501, 505 and 511.

use std::future::Future;
use std::time::Duration;

use oci_client::errors::OciDistributionError;

/// How often and how patiently to retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Total attempts, including the first.
    pub attempts: u32,
    /// Delay before the second attempt; doubles each time.
    pub initial_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            initial_backoff: Duration::from_millis(500),
        }
    }
}

/// Whether a failed registry call may succeed if tried again.
pub fn is_transient(err: &OciDistributionError) -> bool {
    match err {
        OciDistributionError::ServerError { code, .. } => {
            *code >= 500 && !matches!(code, 501 | 505 | 511)
        }
        // A TLS handshake failure (wrong CA, plain-HTTP server) will fail the same way again.
        OciDistributionError::RequestError(e) => {
            (e.is_connect() || e.is_timeout()) && !looks_like_tls_failure(&error_chain_text(e))
        }
        OciDistributionError::IoError(e) => matches!(
            e.kind(),
            std::io::ErrorKind::ConnectionReset
                | std::io::ErrorKind::ConnectionAborted
                | std::io::ErrorKind::UnexpectedEof
                | std::io::ErrorKind::TimedOut
        ),
        _ => false,
    }
}

/// Whether an error text (with its causes) describes a TLS problem rather than a network one.
pub fn looks_like_tls_failure(text: &str) -> bool {
    let lower = text.to_lowercase();
    [
        "certificate",
        "tls",
        "handshake",
        "invalidcontenttype",
        "corrupt message",
    ]
    .iter()
    .any(|w| lower.contains(w))
}

/// An error and its causes on one line, without repeats.
pub fn error_chain_text(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

/// Runs `op` until it succeeds, fails permanently, or the attempts are used up.
/// `on_retry(attempt, delay, error)` is told before each wait.
pub async fn with_retry<T, F, Fut>(
    policy: RetryPolicy,
    mut on_retry: impl FnMut(u32, Duration, &OciDistributionError),
    mut op: F,
) -> Result<T, OciDistributionError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, OciDistributionError>>,
{
    let mut delay = policy.initial_backoff;
    let mut attempt = 1;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) if attempt < policy.attempts.max(1) && is_transient(&e) => {
                on_retry(attempt, delay, &e);
                tokio::time::sleep(delay).await;
                delay = delay.saturating_mul(2);
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_status_codes_like_istio() {
        let server = |code| OciDistributionError::ServerError {
            code,
            url: String::new(),
            message: String::new(),
        };
        assert!(is_transient(&server(503)));
        assert!(is_transient(&server(500)));
        assert!(!is_transient(&server(501)));
        assert!(!is_transient(&server(511)));
        assert!(!is_transient(&server(404)));
    }

    #[tokio::test]
    async fn gives_up_after_the_configured_attempts() {
        let policy = RetryPolicy {
            attempts: 3,
            initial_backoff: Duration::from_millis(1),
        };
        let mut calls = 0;
        let mut retries = 0;
        let result: Result<(), _> = with_retry(
            policy,
            |_, _, _| retries += 1,
            || {
                calls += 1;
                async {
                    Err(OciDistributionError::ServerError {
                        code: 502,
                        url: String::new(),
                        message: String::new(),
                    })
                }
            },
        )
        .await;
        assert!(result.is_err());
        assert_eq!((calls, retries), (3, 2));
    }
}
