//! Assertions and inputs shared by the chain's cases over both transports.

use weir_envoy_tests::{Envoy, HttpResponse, RecordedRequest};

/// Identity headers a client forges. Envoy passes header names with underscores by default
/// (as Istio configures it), and CGI-style upstreams read `x_user` as `x-user`.
pub const SPOOFS: [(&str, &str); 6] = [
    ("x-user", "mallory"),
    ("x_user", "mallory"),
    ("X_User", "root"),
    ("x_acl_user", "root"),
    ("authz-complete", "forged"),
    ("AUTHZ_COMPLETE", "forged"),
];

/// The response has `status`; a 401 carries a Bearer challenge.
pub fn assert_refused(res: &HttpResponse, status: u16, case: &str, envoy: &Envoy) {
    assert_eq!(
        res.status,
        status,
        "{case}: {res:?}\nEnvoy log:\n{}",
        envoy.log()
    );
    if status == 401 {
        let challenge = res.headers.get("www-authenticate").unwrap_or_default();
        assert!(
            challenge.starts_with("Bearer"),
            "{case}: 401 without a Bearer challenge: {res:?}"
        );
    }
}

/// Every spelling of `name` an upstream reads as the same header (`x_user` for `x-user`).
pub fn spellings(request: &RecordedRequest, name: &str) -> Vec<(String, String)> {
    request
        .headers
        .iter()
        .filter(|(k, _)| k.to_ascii_lowercase().replace('_', "-") == name)
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}
