//! A scripted OpenID provider behind the `idp` cluster: discovery, JWKS, and a token endpoint
//! that checks the client's credentials, single use of codes, PKCE S256 and `redirect_uri`
//! like a real one. The test plays the user at the authorization endpoint
//! ([`Idp::authorize`]) and can make the next ID token bad, rotate keys or take the
//! provider down.

use ct_codecs::Encoder;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use weir_runtime::{Request, Response};
use weir_test_jwt::jwt_simple::prelude::*;
use weir_test_jwt::{Forger, Forgery};

pub const ISSUER: &str = "https://idp.example/realms/ingress";
pub const CLIENT_ID: &str = "weir-app";
pub const CLIENT_SECRET: &str = "s3cret:with/odd chars";

/// How to spoil the next ID token: the ID-token rules of OIDC Core (nonce, azp), or a
/// case of the one forgery matrix (weir-test-jwt) made from the token the provider would
/// have issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    WrongNonce,
    SecondAudNoAzp,
    ForeignAzp,
    Forged(Forgery),
}

/// The ID token size limit the plugin sets (`max_token_bytes`), for the oversized forgeries.
const MAX_ID_TOKEN_BYTES: usize = 16 * 1024;

struct Grant {
    nonce: String,
    challenge: String,
    redirect_uri: String,
    used: bool,
}

pub(crate) struct State {
    keys: Vec<ES256KeyPair>,
    /// Index of the signing key; the JWKS publishes `published`.
    signing: usize,
    published: Vec<usize>,
    grants: HashMap<String, Grant>,
    refresh: HashMap<String, String>,
    pub now: u64,
    pub id_token_ttl: u64,
    pub down: bool,
    pub tamper: Option<Tamper>,
    pub issue_refresh_tokens: bool,
    /// Requests seen per endpoint: discovery, jwks, token.
    pub hits: HashMap<&'static str, usize>,
    /// `client_secret_post` instead of `client_secret_basic`.
    pub expect_post_auth: bool,
    /// Bytes of padding claim in each ID token (to make the session span cookie chunks).
    pub padding: usize,
    /// Bytes of padding in each access token (a session too large for the cookie chunks).
    pub access_padding: usize,
    /// Delay of token endpoint answers.
    pub token_delay: Option<std::time::Duration>,
    next: usize,
}

#[derive(Clone)]
pub(crate) struct Idp {
    state: Arc<Mutex<State>>,
}

fn endpoint(name: &str) -> String {
    format!("{ISSUER}/protocol/openid-connect/{name}")
}

impl Idp {
    pub fn new(now: u64) -> Idp {
        let state = State {
            keys: vec![weir_test_jwt::es256_key("k1")],
            signing: 0,
            published: vec![0],
            grants: HashMap::new(),
            refresh: HashMap::new(),
            now,
            id_token_ttl: 300,
            down: false,
            tamper: None,
            issue_refresh_tokens: true,
            hits: HashMap::new(),
            expect_post_auth: false,
            padding: 0,
            access_padding: 0,
            token_delay: None,
            next: 0,
        };
        Idp {
            state: Arc::new(Mutex::new(state)),
        }
    }

    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn hits(&self, endpoint: &str) -> usize {
        self.state().hits.get(endpoint).copied().unwrap_or(0)
    }

    /// A new signing key `kid`, published alongside the old ones.
    pub fn rotate(&self, kid: &str) {
        let mut s = self.state();
        s.keys.push(weir_test_jwt::es256_key(kid));
        s.signing = s.keys.len() - 1;
        let i = s.signing;
        s.published.push(i);
    }

    /// The user signs in at the authorization endpoint `location` (the plugin's redirect):
    /// returns the callback path the provider would send the browser to.
    pub fn authorize(&self, location: &str) -> String {
        let url = url::Url::parse(location).expect("authorization redirect is a URL");
        assert!(location.starts_with(&endpoint("auth")), "{location}");
        let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
        assert_eq!(q["client_id"], CLIENT_ID);
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["code_challenge_method"], "S256");
        assert!(q["scope"].split(' ').any(|s| s == "openid"));
        let mut s = self.state();
        s.next += 1;
        let code = format!("code-{}", s.next);
        let grant = Grant {
            nonce: q["nonce"].clone(),
            challenge: q["code_challenge"].clone(),
            redirect_uri: q["redirect_uri"].clone(),
            used: false,
        };
        s.grants.insert(code.clone(), grant);
        let redirect = url::Url::parse(&q["redirect_uri"]).expect("redirect_uri is a URL");
        format!("{}?code={code}&state={}", redirect.path(), q["state"])
    }

    /// The `upstream` handler for the `idp` cluster.
    pub fn handler(&self) -> impl Fn(&Request) -> Response + Send + Sync + 'static {
        let idp = self.clone();
        move |req| idp.serve(req)
    }

    fn serve(&self, req: &Request) -> Response {
        let mut s = self.state();
        let path = req.path().to_string();
        let name = match path.as_str() {
            "/realms/ingress/.well-known/openid-configuration" => "discovery",
            "/realms/ingress/protocol/openid-connect/certs" => "jwks",
            "/realms/ingress/protocol/openid-connect/token" => "token",
            _ => "other",
        };
        *s.hits.entry(name).or_default() += 1;
        if s.down {
            return Response::status(503).body("down");
        }
        match name {
            "discovery" => json_response(
                200,
                json!({
                    "issuer": ISSUER,
                    "authorization_endpoint": endpoint("auth"),
                    "token_endpoint": endpoint("token"),
                    "jwks_uri": endpoint("certs"),
                    "end_session_endpoint": endpoint("logout"),
                }),
            ),
            "jwks" => {
                let keys: Vec<Value> = s
                    .published
                    .iter()
                    .map(|&i| weir_test_jwt::es256_jwk(&s.keys[i]))
                    .collect();
                json_response(200, json!({ "keys": keys }))
            }
            "token" => {
                let res = s.token(req);
                match s.token_delay {
                    Some(d) => res.delay(d),
                    None => res,
                }
            }
            _ => Response::status(404),
        }
    }
}

fn json_response(status: u16, body: Value) -> Response {
    Response::status(status)
        .header("content-type", "application/json")
        .body(body.to_string())
}

fn oauth_error(error: &str) -> Response {
    json_response(400, json!({ "error": error }))
}

impl State {
    fn token(&mut self, req: &Request) -> Response {
        assert_eq!(req.method(), "POST");
        let form: HashMap<String, String> = url::form_urlencoded::parse(req.body_bytes())
            .into_owned()
            .collect();
        let authenticated = if self.expect_post_auth {
            form.get("client_id").map(String::as_str) == Some(CLIENT_ID)
                && form.get("client_secret").map(String::as_str) == Some(CLIENT_SECRET)
        } else {
            use base64_like::basic;
            req.header_value("authorization") == Some(basic(CLIENT_ID, CLIENT_SECRET).as_str())
        };
        if !authenticated {
            return json_response(401, json!({ "error": "invalid_client" }));
        }
        match form.get("grant_type").map(String::as_str) {
            Some("authorization_code") => {
                let Some(grant) = form.get("code").and_then(|c| self.grants.get_mut(c)) else {
                    return oauth_error("invalid_grant");
                };
                if grant.used {
                    return oauth_error("invalid_grant");
                }
                grant.used = true;
                let verifier = form.get("code_verifier").cloned().unwrap_or_default();
                let challenge = ct_codecs::Base64UrlSafeNoPadding::encode_to_string(
                    hmac_sha256::Hash::hash(verifier.as_bytes()),
                )
                .expect("b64");
                if challenge != grant.challenge
                    || form.get("redirect_uri") != Some(&grant.redirect_uri)
                {
                    return oauth_error("invalid_grant");
                }
                let nonce = grant.nonce.clone();
                self.issue("alice", Some(&nonce))
            }
            Some("refresh_token") => match form
                .get("refresh_token")
                .and_then(|t| self.refresh.remove(t))
            {
                Some(sub) => self.issue(&sub, None),
                None => oauth_error("invalid_grant"),
            },
            _ => oauth_error("unsupported_grant_type"),
        }
    }

    fn issue(&mut self, sub: &str, nonce: Option<&str>) -> Response {
        let tamper = self.tamper.take();
        let mut claims = weir_test_jwt::claims(
            self.now,
            self.id_token_ttl,
            ISSUER,
            CLIENT_ID,
            sub,
            json!({}),
        );
        claims.invalid_before = None;
        match (nonce, tamper) {
            (Some(_), Some(Tamper::WrongNonce)) => claims = claims.with_nonce("not-the-nonce"),
            (Some(n), _) => claims = claims.with_nonce(n),
            _ => {}
        }
        if tamper == Some(Tamper::SecondAudNoAzp) {
            claims = claims.with_audiences(std::collections::HashSet::from([CLIENT_ID, "other"]));
        }
        if tamper == Some(Tamper::ForeignAzp) {
            claims.custom["azp"] = json!("other-client");
        }
        if self.padding > 0 {
            claims.custom["groups"] = json!("g".repeat(self.padding));
        }
        let key = &self.keys[self.signing];
        let id_token = match tamper {
            // The signing key's public bytes (SEC1) as the HMAC secret: what a verifier that
            // takes the key type from the token would use.
            Some(Tamper::Forged(forgery)) => Forger::new(key, claims, self.now)
                .max_bytes(MAX_ID_TOKEN_BYTES)
                .hmac_secret(&key.public_key().to_bytes())
                .forge(forgery)
                .expect("every forgery applies with a secret"),
            _ => key.sign(claims).expect("sign"),
        };
        let access_token = format!("at-{}{}", self.next, "a".repeat(self.access_padding));
        let mut body = json!({ "access_token": access_token, "token_type": "Bearer", "expires_in": self.id_token_ttl, "id_token": id_token });
        if self.issue_refresh_tokens {
            self.next += 1;
            let rt = format!("rt-{}", self.next);
            self.refresh.insert(rt.clone(), sub.to_string());
            body["refresh_token"] = json!(rt);
        }
        json_response(200, body)
    }
}

mod base64_like {
    use ct_codecs::Encoder;

    /// `Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1).
    pub fn basic(id: &str, secret: &str) -> String {
        let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        let pair = format!("{}:{}", enc(id), enc(secret));
        format!(
            "Basic {}",
            ct_codecs::Base64::encode_to_string(pair).expect("b64")
        )
    }
}
