//! Test identity provider (real keys, generated per run), a policy server started on
//! 127.0.0.1 with a config written to a temporary directory, and an HTTP client.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_simple::prelude::*;
use policy_server::{Config, PolicyServer};
use serde_json::{json, Value};
use tempfile::TempDir;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub const IDP_ISSUER: &str = "https://idp.test";
pub const IDP_AUDIENCE: &str = "policy-server";
pub const RSA_KID: &str = "idp-rsa-1";
pub const EC_KID: &str = "idp-ec-1";

/// Every request in these tests is bounded by this.
pub const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The identity provider's signing keys. RSA generation is slow, so one per test binary.
pub struct Idp {
    pub rsa: RS256KeyPair,
    pub ec: ES256KeyPair,
}

pub fn idp() -> &'static Idp {
    static IDP: OnceLock<Idp> = OnceLock::new();
    IDP.get_or_init(|| Idp {
        rsa: RS256KeyPair::generate(2048)
            .expect("RSA key generation")
            .with_key_id(RSA_KID),
        ec: ES256KeyPair::generate().with_key_id(EC_KID),
    })
}

/// Extra claims of a test user token.
#[derive(Serialize, Deserialize, Default)]
pub struct UserExtra {
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub groups: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub padding: Option<String>,
}

/// Claims an honest identity provider would issue for `subject`, valid for 5 minutes.
pub fn user_claims(subject: &str, groups: &[&str]) -> JWTClaims<UserExtra> {
    let extra = UserExtra {
        groups: groups.iter().map(|g| g.to_string()).collect(),
        padding: None,
    };
    Claims::with_custom_claims(extra, Duration::from_secs(300))
        .with_issuer(IDP_ISSUER)
        .with_audience(IDP_AUDIENCE)
        .with_subject(subject)
}

impl Idp {
    /// The identity provider's public keys as a JWKS document.
    pub fn jwks(&self) -> String {
        let rsa: Value = serde_json::from_str(&self.rsa.public_key().to_jwk()).unwrap();
        let ec: Value = serde_json::from_str(&self.ec.public_key().to_jwk()).unwrap();
        json!({ "keys": [rsa, ec] }).to_string()
    }

    /// An RS256 token for `subject` in `groups`.
    pub fn token(&self, subject: &str, groups: &[&str]) -> String {
        self.rsa.sign(user_claims(subject, groups)).unwrap()
    }
}

/// base64url of a JSON value.
pub fn b64_json(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

/// The decoded payload of a compact JWS.
pub fn payload_of(token: &str) -> Value {
    let payload = token
        .split('.')
        .nth(1)
        .expect("a compact JWS has a payload");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// The ACL most tests use.
pub const ACL_YAML: &str = "\
subjects:
  alice:
    functions: [read_data, write_data]
    files: [/data/alice]
groups:
  readers:
    functions: [read_data]
    files: [/data/public]
  auditors:
    files: [/data/audit]
";

/// A running policy server and the directory its files live in.
pub struct RunningServer {
    pub address: SocketAddr,
    pub dir: TempDir,
    pub client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<anyhow::Result<()>>,
}

/// Config text for a server whose keys come from `jwks_source` (a `jwks_file:` or
/// `jwks_url:` line) and whose ACL is `ACL_YAML`; `extra` is appended at top level.
pub fn config_yaml(jwks_source: &str, user_extra: &str, extra: &str) -> String {
    format!(
        "listen: 127.0.0.1:0\n\
         acl_file: acl.yaml\n\
         user_token:\n  issuers: [{IDP_ISSUER}]\n  audiences: [{IDP_AUDIENCE}]\n  {jwks_source}\n{user_extra}\
         issued_token:\n  signing_key: signing.pem\n{extra}"
    )
}

/// [`config_yaml`] with the identity provider's keys read from the JWKS file.
pub fn file_config(user_extra: &str, extra: &str) -> String {
    config_yaml("jwks_file: idp-jwks.json", user_extra, extra)
}

/// Starts a server with the standard files (IdP JWKS file, ACL, ES256 signing key) in a
/// fresh directory, using `config` (see [`config_yaml`]).
pub async fn start_with(config: &str, prepare: impl FnOnce(&Path)) -> RunningServer {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("idp-jwks.json"), idp().jwks()).unwrap();
    std::fs::write(dir.path().join("acl.yaml"), ACL_YAML).unwrap();
    policy_server::write_new_key(
        &dir.path().join("signing.pem"),
        policy_server::Algorithm::ES256,
    )
    .unwrap();
    prepare(dir.path());
    let config_path = dir.path().join("policy-server.yaml");
    std::fs::write(&config_path, config).unwrap();
    let config = Config::load(&config_path).expect("test config loads");
    let server = PolicyServer::from_config(&config)
        .await
        .expect("server starts");
    let listener = tokio::net::TcpListener::bind(config.listen).await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(server.serve(listener, async {
        let _ = stopped.await;
    }));
    // reqwest is built without a default TLS crypto provider (as in the server).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .unwrap();
    RunningServer {
        address,
        dir,
        client,
        stop: Some(stop),
        task,
    }
}

/// A server with the IdP's JWKS as a file and the default settings.
pub async fn start_default() -> RunningServer {
    start_with(&file_config("", ""), |_| {}).await
}

/// What the server answered.
pub struct Answer {
    pub status: u16,
    pub content_type: Option<String>,
    pub www_authenticate: Option<String>,
    pub cache_control: Option<String>,
    pub body: String,
}

impl RunningServer {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.address, path)
    }

    /// POST /check the way acl-check does, with `authorization` as given (None: no header).
    pub async fn check(&self, authorization: Option<&str>) -> Answer {
        let mut request = self
            .client
            .post(self.url("/check"))
            .header("x-forwarded-method", "GET")
            .header("x-forwarded-uri", "/data/report?x=1")
            .header("x-forwarded-host", "app.test");
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        answer(request.send().await.expect("policy server answers")).await
    }

    /// POST /check with `Bearer <token>`.
    pub async fn check_token(&self, token: &str) -> Answer {
        self.check(Some(&format!("Bearer {token}"))).await
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(REQUEST_TIMEOUT, &mut self.task)
            .await
            .expect("server stops within the timeout")
            .unwrap()
            .unwrap();
    }
}

pub async fn answer(response: reqwest::Response) -> Answer {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let content_type = header("content-type");
    let www_authenticate = header("www-authenticate");
    let cache_control = header("cache-control");
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();
    Answer {
        status,
        content_type,
        www_authenticate,
        cache_control,
        body,
    }
}

/// The JWKS the server publishes, fetched over HTTP.
pub async fn published_jwks(server: &RunningServer) -> Value {
    let response = server
        .client
        .get(server.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    serde_json::from_str(&response.text().await.unwrap()).unwrap()
}

impl Answer {
    /// Asserts a 401 in the protocol's form: the Bearer challenge and a short body.
    #[track_caller]
    pub fn assert_unauthorized(&self, case: &str) {
        assert_eq!(self.status, 401, "{case}: status (body {:?})", self.body);
        assert_eq!(
            self.www_authenticate.as_deref(),
            Some("Bearer error=\"invalid_token\""),
            "{case}: WWW-Authenticate"
        );
        assert!(
            self.body.len() <= 32,
            "{case}: body should be a short reason, got {:?}",
            self.body
        );
    }
}
