//! The relying parties (OAuth clients) a test provider is started with.

use serde_json::{json, Value};

/// How a client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// `client_secret_basic`: HTTP Basic with the URL-encoded id and secret.
    SecretBasic,
    /// `client_secret_post`: `client_id` and `client_secret` in the form body.
    SecretPost,
}

impl ClientAuth {
    /// The registered `token_endpoint_auth_method` value.
    pub fn method(self) -> &'static str {
        match self {
            Self::SecretBasic => "client_secret_basic",
            Self::SecretPost => "client_secret_post",
        }
    }
}

/// The algorithm the provider signs a client's ID tokens with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningAlg {
    /// ECDSA P-256 with SHA-256.
    Es256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (2048-bit keys).
    Rs256,
}

impl SigningAlg {
    /// The JOSE name (`ES256`, `RS256`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Rs256 => "RS256",
        }
    }
}

/// A confidential web client doing the authorization-code flow with PKCE and refresh tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestClient {
    /// `client_id`.
    pub client_id: String,
    /// `client_secret`.
    pub client_secret: String,
    /// Registered `redirect_uris` (exact match at the provider).
    pub redirect_uris: Vec<String>,
    /// Registered `post_logout_redirect_uris`.
    pub post_logout_redirect_uris: Vec<String>,
    /// Token endpoint authentication.
    pub auth: ClientAuth,
    /// ID token signing algorithm; `None` uses the provider's default (see
    /// [`crate::ProviderBuilder::default_alg`]).
    pub id_token_alg: Option<SigningAlg>,
}

impl TestClient {
    /// A client with `client_secret_basic`, no redirect URIs yet and the default algorithm.
    pub fn new(client_id: &str, client_secret: &str) -> Self {
        Self {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            auth: ClientAuth::SecretBasic,
            id_token_alg: None,
        }
    }

    /// Registers a redirect URI (the relying party's callback).
    pub fn redirect_uri(mut self, uri: &str) -> Self {
        self.redirect_uris.push(uri.to_owned());
        self
    }

    /// Registers a post-logout redirect URI.
    pub fn post_logout_redirect_uri(mut self, uri: &str) -> Self {
        self.post_logout_redirect_uris.push(uri.to_owned());
        self
    }

    /// Sets the token endpoint authentication method.
    pub fn auth(mut self, auth: ClientAuth) -> Self {
        self.auth = auth;
        self
    }

    /// Sets the ID token signing algorithm for this client.
    pub fn id_token_alg(mut self, alg: SigningAlg) -> Self {
        self.id_token_alg = Some(alg);
        self
    }

    /// The client metadata handed to the provider.
    pub(crate) fn metadata(&self) -> Value {
        let mut metadata = json!({
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "redirect_uris": self.redirect_uris,
            "post_logout_redirect_uris": self.post_logout_redirect_uris,
            "token_endpoint_auth_method": self.auth.method(),
            "response_types": ["code"],
            "grant_types": ["authorization_code", "refresh_token"],
        });
        if let Some(alg) = self.id_token_alg {
            metadata["id_token_signed_response_alg"] = json!(alg.name());
        }
        metadata
    }
}
