//! A scripted OpenID provider behind the `idp` cluster: discovery, JWKS, and a token endpoint
//! that checks the client's credentials, single use of codes, PKCE S256 and `redirect_uri`
//! like a real one. The test plays the user at the authorization endpoint
//! ([`Idp::authorize`]) and can make the next ID token bad, rotate keys or take the
//! provider down.

use ct_codecs::Encoder;
use jwt_simple::prelude::*;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use weir_runtime::{Request, Response};

pub const ISSUER: &str = "https://idp.example/realms/ingress";
pub const CLIENT_ID: &str = "weir-app";
pub const CLIENT_SECRET: &str = "s3cret:with/odd chars";

/// How to spoil the next ID token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tamper {
    AlgNone,
    WrongAud,
    WrongNonce,
    WrongIss,
    NoExp,
    SecondAudNoAzp,
    ForeignAzp,
    FutureIat,
    /// Signed by a key the JWKS does not hold, under the current key's `kid`.
    ForgedSignature,
    /// Signed by a key with a `kid` the JWKS never publishes.
    UnknownKid,
    /// `exp` an hour ago (and `iat` before it).
    Expired,
    /// `nbf` an hour ahead.
    FutureNbf,
    /// A valid ES256 signature over a header with `crit: ["exp"]` (RFC 7515 §4.1.11: a
    /// verifier that does not implement the named extension must refuse).
    Crit,
    /// HS256, keyed with the signing key's public key bytes (SEC1, compressed), under its `kid`: the
    /// algorithm-confusion attack on verifiers that take the key type from the token.
    HmacWithPublicKey,
    /// As [`Tamper::HmacWithPublicKey`], keyed with the public JWK as published.
    HmacWithPublicJwk,
}

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
            keys: vec![ES256KeyPair::generate().with_key_id("k1")],
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
        s.keys.push(ES256KeyPair::generate().with_key_id(kid));
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
                    .map(|&i| serde_json::from_str(&s.keys[i].public_key().to_jwk()).expect("jwk"))
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
        let mut claims =
            Claims::create(jwt_simple::prelude::Duration::from_secs(self.id_token_ttl))
                .with_issuer(if tamper == Some(Tamper::WrongIss) {
                    "https://evil.example"
                } else {
                    ISSUER
                })
                .with_subject(sub)
                .with_audience(if tamper == Some(Tamper::WrongAud) {
                    "someone-else"
                } else {
                    CLIENT_ID
                });
        let iat = match tamper {
            Some(Tamper::FutureIat) => self.now + 3600,
            Some(Tamper::Expired) => self.now - 7200,
            _ => self.now,
        };
        claims.issued_at = Some(UnixTimeStamp::from_secs(iat));
        claims.invalid_before =
            (tamper == Some(Tamper::FutureNbf)).then(|| UnixTimeStamp::from_secs(self.now + 3600));
        claims.expires_at = match tamper {
            Some(Tamper::NoExp) => None,
            Some(Tamper::Expired) => Some(UnixTimeStamp::from_secs(self.now - 3600)),
            _ => Some(UnixTimeStamp::from_secs(self.now + self.id_token_ttl)),
        };
        match (nonce, tamper) {
            (Some(_), Some(Tamper::WrongNonce)) => claims = claims.with_nonce("not-the-nonce"),
            (Some(n), _) => claims = claims.with_nonce(n),
            _ => {}
        }
        if tamper == Some(Tamper::SecondAudNoAzp) {
            claims = claims.with_audiences(std::collections::HashSet::from([CLIENT_ID, "other"]));
        }
        let mut claims = serde_json::to_value(&claims).expect("claims");
        if tamper == Some(Tamper::ForeignAzp) {
            claims["azp"] = json!("other-client");
        }
        if self.padding > 0 {
            claims["groups"] = json!("g".repeat(self.padding));
        }
        let id_token = match tamper {
            Some(Tamper::AlgNone) => {
                let b64 =
                    |v: &[u8]| ct_codecs::Base64UrlSafeNoPadding::encode_to_string(v).expect("b64");
                format!(
                    "{}.{}.",
                    b64(br#"{"alg":"none","kid":"k1"}"#),
                    b64(claims.to_string().as_bytes())
                )
            }
            Some(Tamper::UnknownKid) => sign(
                &ES256KeyPair::generate().with_key_id("never-published"),
                &claims,
            ),
            Some(Tamper::ForgedSignature) => {
                let kid = self.keys[self.signing].key_id().clone().unwrap_or_default();
                let forger = ES256KeyPair::generate().with_key_id(&kid);
                sign(&forger, &claims)
            }
            Some(Tamper::Crit) => sign_with_crit(&self.keys[self.signing], &claims),
            Some(Tamper::HmacWithPublicKey) => {
                let public = self.keys[self.signing].public_key();
                hmac_sign(&public.to_bytes(), public.key_id().clone(), &claims)
            }
            Some(Tamper::HmacWithPublicJwk) => {
                let public = self.keys[self.signing].public_key();
                hmac_sign(public.to_jwk().as_bytes(), public.key_id().clone(), &claims)
            }
            _ => sign(&self.keys[self.signing], &claims),
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

/// `claims` as jwt-simple's claims: standard claims ride in the custom map verbatim and
/// the empty JWTClaims adds nothing.
fn verbatim(claims: &Value) -> JWTClaims<serde_json::Map<String, Value>> {
    let custom: serde_json::Map<String, Value> = claims.as_object().cloned().unwrap_or_default();
    let mut wrapper =
        Claims::with_custom_claims(custom, jwt_simple::prelude::Duration::from_secs(0));
    wrapper.issued_at = None;
    wrapper.expires_at = None;
    wrapper.invalid_before = None;
    wrapper
}

fn sign(key: &ES256KeyPair, claims: &Value) -> String {
    key.sign(verbatim(claims)).expect("sign")
}

fn b64(bytes: &[u8]) -> String {
    ct_codecs::Base64UrlSafeNoPadding::encode_to_string(bytes).expect("b64")
}

fn hmac_sign(secret: &[u8], kid: Option<String>, claims: &Value) -> String {
    let mut key = HS256Key::from_bytes(secret);
    if let Some(kid) = kid {
        key = key.with_key_id(&kid);
    }
    key.authenticate(verbatim(claims)).expect("hmac")
}

/// An ES256 JWS with a `crit` header, signed with p256 directly (jwt-simple writes no `crit`).
fn sign_with_crit(key: &ES256KeyPair, claims: &Value) -> String {
    use p256::ecdsa::signature::Signer;
    let kid = key.key_id().clone().unwrap_or_default();
    let header = json!({ "alg": "ES256", "kid": kid, "typ": "JWT", "crit": ["exp"] });
    let input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    );
    let signer = p256::ecdsa::SigningKey::from_slice(&key.to_bytes()).expect("p256 key");
    let signature: p256::ecdsa::Signature = signer.sign(input.as_bytes());
    format!("{input}.{}", b64(&signature.to_bytes()))
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
