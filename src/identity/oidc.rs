//! OpenID Connect sign-in: the Digital Authentication App (デジタル認証アプリ), or any OpenID
//! Provider such as a city's own. Owns discovery, the authorization request (code flow, PKCE S256,
//! `state`, `nonce`), the code exchange (client_secret_basic or private_key_jwt) and the
//! verification of the ID token. Storing `state`/`nonce`/verifier between the two legs is the
//! caller's job (see [`super::challenge`]: the `state` is the challenge id).
//!
//! `openidconnect` does discovery, the JWKS and the authorization URL. The code exchange and the
//! ID token are done here with reqwest and jsonwebtoken because `openidconnect` parses every
//! standard claim strictly while decoding the token response: one claim in an unexpected shape
//! (an `address` string instead of an object, say) would fail every login, and the Digital
//! Authentication App's claim formats are not confirmed. Here only `sub`, `nonce`, `aud`, `azp`,
//! `email`, for residents the basic facts (leniently, see [`basic_facts`]) and for staff the
//! configured login claim are read; nothing else is interpreted.
//!
//! The ID token is verified with exactly one algorithm, the configured one; the token header's
//! `alg` is only compared with it, never trusted.
//!
//! Assurance comes from configuration: the Digital Authentication App signs residents in with the
//! My Number Card ([`Assurance::CardAuth`]); a city's own IdP without the card proves less.
//!
//! The same client signs staff in through the city's own IdP (`[staff.oidc]`); error messages
//! name the setting without its section, which the caller adds as context.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreJsonWebKeySet, CoreProviderMetadata,
};
use openidconnect::{
    ClientId, CsrfToken, EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl,
    JsonWebKeySetUrl, Nonce, PkceCodeChallenge, RedirectUrl, Scope,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{AuthError, BasicFacts, VerifiedIdentity};
use crate::config::OidcSettings;
use crate::forms::Assurance;

/// Bounds every call to the provider.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);
/// An ID token signed with an unknown `kid` triggers a JWKS refetch (key rotation), at most this
/// often, so forged tokens cannot make us hammer the provider.
const JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(60);
/// Lifetime of a private_key_jwt client assertion.
const CLIENT_ASSERTION_TTL_SECONDS: i64 = 60;

type DiscoveredClient = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// A client of one OpenID Provider, built once at startup by [`OidcClient::discover`].
pub struct OidcClient {
    http: reqwest::Client,
    core: DiscoveredClient,
    issuer: String,
    client_id: String,
    redirect_uri: String,
    token_endpoint: String,
    userinfo_endpoint: Option<String>,
    jwks_uri: JsonWebKeySetUrl,
    scopes: Vec<String>,
    algorithm: Algorithm,
    assurance: Assurance,
    authentication: ClientAuthentication,
    keys: Mutex<KeyCache>,
}

impl std::fmt::Debug for OidcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcClient")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("algorithm", &self.algorithm)
            .finish_non_exhaustive()
    }
}

/// What the caller sends the resident to, and what it must keep (with the `state`) until the
/// callback.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    pub url: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// The signing key of private_key_jwt and its algorithm, from a PEM private key: RSA (RS256) or
/// EC P-256 in PKCS#8 (ES256).
fn client_assertion_key(pem: &[u8]) -> anyhow::Result<(EncodingKey, Algorithm)> {
    if let Ok(key) = EncodingKey::from_rsa_pem(pem) {
        return Ok((key, Algorithm::RS256));
    }
    Ok((EncodingKey::from_ec_pem(pem)?, Algorithm::ES256))
}

/// How this client proves itself at the token endpoint.
enum ClientAuthentication {
    /// client_secret_basic.
    Secret(SecretString),
    /// private_key_jwt (RFC 7523), RS256 with an RSA key or ES256 with an EC P-256 key.
    PrivateKeyJwt {
        key: EncodingKey,
        algorithm: Algorithm,
        key_id: Option<String>,
    },
}

struct KeyCache {
    keys: Arc<Vec<Jwk>>,
    fetched_at: Instant,
}

impl OidcClient {
    /// Discovery (`/.well-known/openid-configuration`) and the JWKS. The HTTP client never
    /// follows redirects (openidconnect's security note: a redirect could point it anywhere).
    pub async fn discover(settings: &OidcSettings) -> anyhow::Result<Self> {
        let algorithm: Algorithm = settings.id_token_algorithm.parse().map_err(|_| {
            anyhow!(
                "id_token_algorithm `{}` is not a JWS algorithm",
                settings.id_token_algorithm
            )
        })?;
        if matches!(
            algorithm,
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512
        ) {
            bail!("id_token_algorithm: symmetric (HS*) ID tokens are not accepted");
        }
        if settings.client_id.is_empty() {
            bail!("client_id is empty");
        }
        let authentication = if !settings.client_secret.expose_secret().is_empty() {
            ClientAuthentication::Secret(settings.client_secret.clone())
        } else if !settings.private_key_path.is_empty() {
            let pem = tokio::fs::read(&settings.private_key_path)
                .await
                .with_context(|| {
                    format!("reading private_key_path {}", settings.private_key_path)
                })?;
            let (key, algorithm) = client_assertion_key(&pem).with_context(|| {
                format!(
                    "private_key_path {} is neither an RSA nor an EC P-256 private key in PEM",
                    settings.private_key_path
                )
            })?;
            ClientAuthentication::PrivateKeyJwt {
                key,
                algorithm,
                key_id: Some(settings.private_key_id.clone()).filter(|kid| !kid.is_empty()),
            }
        } else {
            bail!("set client_secret, or private_key_path for private_key_jwt");
        };

        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .build()
            .context("building the HTTP client for OpenID Connect")?;
        let issuer_url = IssuerUrl::new(settings.issuer.clone())
            .with_context(|| format!("issuer `{}` is not a URL", settings.issuer))?;
        let metadata = CoreProviderMetadata::discover_async(issuer_url, &http)
            .await
            .with_context(|| format!("OpenID Connect discovery at {}", settings.issuer))?;

        let token_endpoint = metadata
            .token_endpoint()
            .map(|url| url.as_str().to_owned())
            .ok_or_else(|| anyhow!("{} advertises no token_endpoint", settings.issuer))?;
        let advertised = metadata
            .id_token_signing_alg_values_supported()
            .iter()
            .filter_map(|alg| serde_json::to_value(alg).ok())
            .any(|alg| alg.as_str() == Some(settings.id_token_algorithm.as_str()));
        if !advertised {
            tracing::warn!(
                issuer = %settings.issuer,
                algorithm = %settings.id_token_algorithm,
                "the provider does not advertise the configured ID token algorithm; logins will fail"
            );
        }
        let userinfo_endpoint = metadata
            .userinfo_endpoint()
            .map(|url| url.as_str().to_owned());
        let keys = jwks_to_jsonwebtoken(metadata.jwks());
        let jwks_uri = metadata.jwks_uri().clone();
        let issuer = metadata.issuer().as_str().to_owned();
        let redirect = RedirectUrl::new(settings.redirect_uri.clone())
            .with_context(|| format!("redirect_uri `{}` is not a URL", settings.redirect_uri))?;
        // The secret is never given to `core`: it only builds authorization URLs.
        let core = CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(settings.client_id.clone()),
            None,
        )
        .set_redirect_uri(redirect);

        Ok(Self {
            http,
            core,
            issuer,
            client_id: settings.client_id.clone(),
            redirect_uri: settings.redirect_uri.clone(),
            token_endpoint,
            userinfo_endpoint,
            jwks_uri,
            scopes: settings.scopes.clone(),
            algorithm,
            assurance: settings.assurance,
            authentication,
            keys: Mutex::new(KeyCache {
                keys: Arc::new(keys),
                fetched_at: Instant::now(),
            }),
        })
    }

    /// The provider's issuer identifier, as accounts are keyed on it.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The authorization URL for the code flow with PKCE S256, the given `state` (the challenge
    /// id), a fresh nonce and the configured scopes.
    pub fn authorization_request(&self, state: &str) -> AuthorizationRequest {
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let state = state.to_owned();
        let mut request = self
            .core
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                move || CsrfToken::new(state),
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        // openidconnect always sends `openid` itself.
        for scope in self
            .scopes
            .iter()
            .filter(|scope| scope.as_str() != "openid")
        {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, _state, nonce) = request.url();
        AuthorizationRequest {
            url: url.to_string(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        }
    }

    /// Exchanges the authorization code and verifies the ID token: signature by the provider's
    /// JWKS with only the configured algorithm, `iss`, `aud` (this client alone), `exp`, `nonce`.
    pub async fn complete(
        &self,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
    ) -> Result<VerifiedIdentity, AuthError> {
        Ok(self.finish(code, pkce_verifier, nonce, "", true).await?.0)
    }

    /// As [`Self::complete`] for staff: no basic facts, and the ID token's string claim `claim`
    /// (the login) too. `email` counts only if the provider has verified it.
    pub async fn complete_with_claim(
        &self,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
        claim: &str,
    ) -> Result<(VerifiedIdentity, Option<String>), AuthError> {
        self.finish(code, pkce_verifier, nonce, claim, false).await
    }

    async fn finish(
        &self,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
        claim: &str,
        read_facts: bool,
    ) -> Result<(VerifiedIdentity, Option<String>), AuthError> {
        let tokens = self.exchange_code(code, pkce_verifier).await?;
        let id_token = tokens.id_token.ok_or_else(|| {
            tracing::warn!(issuer = %self.issuer, "token response without an id_token");
            AuthError::InvalidToken
        })?;
        let mut claims = self.verify_id_token(&id_token, nonce).await?;
        let mut facts = if read_facts {
            basic_facts(&claims.other)
        } else {
            BasicFacts::default()
        };
        if read_facts
            && facts.is_empty()
            && self.asks_for_basic_facts()
            && let Some(access_token) = &tokens.access_token
        {
            facts = self.userinfo_facts(access_token, &claims.sub).await;
        }
        let verified = claims.email_verified.as_ref().is_some_and(is_true);
        let email = match (claims.email, claims.email_verified) {
            // An address the provider says it has not verified is not vouched for.
            (_, Some(verified)) if is_false(&verified) => None,
            (Some(serde_json::Value::String(email)), _) if !email.is_empty() => Some(email),
            _ => None,
        };
        let claimed = match claim {
            "" => None,
            // An address names an account only when the provider says it checked it: silence
            // is not enough, as many providers let users type any address.
            "email" => email.clone().filter(|_| verified),
            "sub" => Some(claims.sub.clone()),
            other => match claims.other.remove(other) {
                Some(serde_json::Value::String(value)) if !value.is_empty() => Some(value),
                _ => None,
            },
        };
        let identity = VerifiedIdentity {
            provider: "oidc",
            issuer: self.issuer.clone(),
            subject: claims.sub,
            assurance: self.assurance,
            email,
            facts: Some(facts).filter(|facts| !facts.is_empty()),
        };
        Ok((identity, claimed))
    }

    /// Whether the configured scopes ask for any of the basic facts.
    fn asks_for_basic_facts(&self) -> bool {
        self.scopes
            .iter()
            .any(|scope| ["name", "address", "birthdate", "gender"].contains(&scope.as_str()))
    }

    /// The basic facts from the UserInfo endpoint, for providers that put them there rather than
    /// in the ID token. The sign-in is already proven, so a failure here only means no facts.
    async fn userinfo_facts(&self, access_token: &str, subject: &str) -> BasicFacts {
        let Some(endpoint) = &self.userinfo_endpoint else {
            return BasicFacts::default();
        };
        let response = self
            .http
            .get(endpoint)
            .bearer_auth(access_token)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .and_then(reqwest::Response::error_for_status);
        let claims = match response {
            Ok(response) => {
                response
                    .json::<serde_json::Map<String, serde_json::Value>>()
                    .await
            }
            Err(error) => Err(error),
        };
        match claims {
            // OIDC Core 5.3.2: the UserInfo `sub` must be the ID token's, or the answer is not
            // about this person.
            Ok(claims) if claims.get("sub").and_then(|sub| sub.as_str()) == Some(subject) => {
                basic_facts(&claims)
            }
            Ok(_) => {
                tracing::warn!(issuer = %self.issuer, "UserInfo answered for another subject; its facts are ignored");
                BasicFacts::default()
            }
            Err(error) => {
                tracing::warn!(issuer = %self.issuer, error = %error, "UserInfo failed (a signed UserInfo is not supported); signed in without basic facts");
                BasicFacts::default()
            }
        }
    }

    /// POSTs the code to the token endpoint.
    async fn exchange_code(
        &self,
        code: &str,
        pkce_verifier: &str,
    ) -> Result<TokenResponse, AuthError> {
        let mut form = vec![
            ("grant_type", "authorization_code".to_owned()),
            ("code", code.to_owned()),
            ("redirect_uri", self.redirect_uri.clone()),
            ("code_verifier", pkce_verifier.to_owned()),
        ];
        let mut request = self
            .http
            .post(&self.token_endpoint)
            .header(reqwest::header::ACCEPT, "application/json");
        match &self.authentication {
            ClientAuthentication::Secret(secret) => {
                // RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
                request = request.basic_auth(
                    form_urlencode(&self.client_id),
                    Some(form_urlencode(secret.expose_secret())),
                );
            }
            ClientAuthentication::PrivateKeyJwt {
                key,
                algorithm,
                key_id,
            } => {
                form.push(("client_id", self.client_id.clone()));
                form.push((
                    "client_assertion_type",
                    "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned(),
                ));
                form.push((
                    "client_assertion",
                    self.client_assertion(key, *algorithm, key_id)?,
                ));
            }
        }
        let response = request
            .form(&form)
            .send()
            .await
            .map_err(|error| AuthError::Internal(anyhow!(error).context("token request")))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|error| AuthError::Internal(anyhow!(error).context("token response")))?;
        if status.is_success() {
            return serde_json::from_slice(&body).map_err(|error| {
                AuthError::Internal(anyhow!(error).context("token response is not JSON"))
            });
        }
        match serde_json::from_slice::<TokenErrorResponse>(&body) {
            Ok(refusal) => {
                tracing::warn!(
                    issuer = %self.issuer,
                    status = status.as_u16(),
                    error = %refusal.error,
                    description = refusal.error_description.as_deref().unwrap_or(""),
                    "the provider refused the authorization code"
                );
                Err(AuthError::ProviderRefused(refusal.error))
            }
            Err(_) => Err(AuthError::Internal(anyhow!(
                "token endpoint answered {status} without an OAuth error"
            ))),
        }
    }

    /// A fresh RFC 7523 client assertion: iss = sub = client_id, aud = the token endpoint.
    fn client_assertion(
        &self,
        key: &EncodingKey,
        algorithm: Algorithm,
        key_id: &Option<String>,
    ) -> Result<String, AuthError> {
        let now = chrono::Utc::now().timestamp();
        let claims = ClientAssertion {
            iss: &self.client_id,
            sub: &self.client_id,
            aud: &self.token_endpoint,
            jti: uuid::Uuid::new_v4().to_string(),
            iat: now,
            exp: now + CLIENT_ASSERTION_TTL_SECONDS,
        };
        let mut header = Header::new(algorithm);
        header.kid.clone_from(key_id);
        jsonwebtoken::encode(&header, &claims, key).map_err(|error| {
            AuthError::Internal(anyhow!(error).context("signing the client assertion"))
        })
    }

    async fn verify_id_token(&self, token: &str, nonce: &str) -> Result<IdTokenClaims, AuthError> {
        let rejected = |reason: &str| {
            tracing::warn!(issuer = %self.issuer, reason, "ID token rejected");
            AuthError::InvalidToken
        };
        // `alg: none` and unknown algorithms fail to parse here.
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| rejected("malformed header"))?;
        if header.alg != self.algorithm {
            return Err(rejected("algorithm is not the configured one"));
        }
        let key = self.decoding_key(header.kid.as_deref()).await?;
        let mut validation = Validation::new(self.algorithm);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.client_id]);
        validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<IdTokenClaims>(token, &key, &validation)
            .map_err(|error| {
                tracing::warn!(issuer = %self.issuer, reason = ?error.kind(), "ID token rejected");
                AuthError::InvalidToken
            })?
            .claims;
        // OIDC Core 3.1.3.7: no other audience may share this token, and `azp` must be us.
        if claims.aud.iter().any(|aud| aud != &self.client_id) {
            return Err(rejected("untrusted additional audience"));
        }
        if claims
            .azp
            .as_ref()
            .is_some_and(|azp| azp != &self.client_id)
        {
            return Err(rejected("azp is another client"));
        }
        let matches = claims
            .nonce
            .as_deref()
            .is_some_and(|claimed| Sha256::digest(claimed) == Sha256::digest(nonce));
        if !matches {
            return Err(rejected("nonce mismatch"));
        }
        if claims.sub.is_empty() {
            return Err(rejected("empty sub"));
        }
        Ok(claims)
    }

    /// The one key of the provider's JWKS that may verify this token: the `kid` if any, of a type
    /// fit for the configured algorithm. An unknown `kid` refetches the JWKS (rate-limited).
    async fn decoding_key(&self, kid: Option<&str>) -> Result<DecodingKey, AuthError> {
        let (keys, may_refetch) = {
            let mut cache = self
                .keys
                .lock()
                .map_err(|_| AuthError::Internal(anyhow!("JWKS cache lock poisoned")))?;
            let stale = cache.fetched_at.elapsed() >= JWKS_REFETCH_INTERVAL;
            let found = select_keys(&cache.keys, kid, self.algorithm).len();
            let may_refetch = found == 0 && stale;
            if may_refetch {
                // Claim the refetch before the await so concurrent callers do not all fetch.
                cache.fetched_at = Instant::now();
            }
            (Arc::clone(&cache.keys), may_refetch)
        };
        let keys = if may_refetch {
            let fetched = CoreJsonWebKeySet::fetch_async(&self.jwks_uri, &self.http)
                .await
                .map_err(|error| {
                    AuthError::Internal(anyhow!(error).context("refetching the JWKS"))
                })?;
            let fresh = Arc::new(jwks_to_jsonwebtoken(&fetched));
            if let Ok(mut cache) = self.keys.lock() {
                cache.keys = Arc::clone(&fresh);
            }
            fresh
        } else {
            keys
        };
        match select_keys(&keys, kid, self.algorithm).as_slice() {
            [jwk] => DecodingKey::from_jwk(jwk).map_err(|_| {
                tracing::warn!(issuer = %self.issuer, "unusable key in the provider's JWKS");
                AuthError::InvalidToken
            }),
            [] => {
                tracing::warn!(issuer = %self.issuer, kid, "no key of the provider's JWKS fits the ID token");
                Err(AuthError::InvalidToken)
            }
            _ => {
                tracing::warn!(issuer = %self.issuer, "ID token without kid and several candidate keys");
                Err(AuthError::InvalidToken)
            }
        }
    }
}

/// The keys of `keys` that may verify a token with this `kid` and algorithm.
fn select_keys<'k>(keys: &'k [Jwk], kid: Option<&str>, algorithm: Algorithm) -> Vec<&'k Jwk> {
    keys.iter()
        .filter(|jwk| kid.is_none() || jwk.common.key_id.as_deref() == kid)
        .filter(|jwk| {
            !matches!(&jwk.common.public_key_use, Some(use_) if *use_ != PublicKeyUse::Signature)
        })
        .filter(|jwk| {
            jwk.common.key_algorithm.is_none_or(|key_alg| {
                serde_json::to_value(key_alg).ok() == serde_json::to_value(algorithm).ok()
            })
        })
        .filter(|jwk| {
            matches!(
                (&jwk.algorithm, algorithm),
                (
                    AlgorithmParameters::RSA(_),
                    Algorithm::RS256
                        | Algorithm::RS384
                        | Algorithm::RS512
                        | Algorithm::PS256
                        | Algorithm::PS384
                        | Algorithm::PS512
                ) | (
                    AlgorithmParameters::EllipticCurve(_),
                    Algorithm::ES256 | Algorithm::ES384
                ) | (AlgorithmParameters::OctetKeyPair(_), Algorithm::EdDSA)
            )
        })
        .collect()
}

/// openidconnect's JWKS in jsonwebtoken's form; keys jsonwebtoken cannot read are skipped (as
/// openidconnect itself skips keys it cannot read).
fn jwks_to_jsonwebtoken(jwks: &CoreJsonWebKeySet) -> Vec<Jwk> {
    jwks.keys()
        .iter()
        .filter_map(|key| serde_json::to_value(key).ok())
        .filter_map(|value| serde_json::from_value::<Jwk>(strip_nulls(value)).ok())
        .collect()
}

fn strip_nulls(value: serde_json::Value) -> serde_json::Value {
    match value {
        serde_json::Value::Object(map) => {
            serde_json::Value::Object(map.into_iter().filter(|(_, v)| !v.is_null()).collect())
        }
        other => other,
    }
}

fn form_urlencode(value: &str) -> String {
    openidconnect::url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn is_true(value: &serde_json::Value) -> bool {
    matches!(value, serde_json::Value::Bool(true))
        || value
            .as_str()
            .is_some_and(|s| s.eq_ignore_ascii_case("true"))
}

fn is_false(value: &serde_json::Value) -> bool {
    matches!(value, serde_json::Value::Bool(false))
        || value
            .as_str()
            .is_some_and(|s| s.eq_ignore_ascii_case("false"))
}

#[derive(Deserialize)]
struct TokenResponse {
    id_token: Option<String>,
    access_token: Option<String>,
}

/// The basic facts among standard OIDC claims, read leniently: the Digital Authentication App's
/// formats are not confirmed, so a claim in an unexpected shape is skipped, never an error.
/// `address` may be an object (its `formatted`, else its parts joined) or a string; `name` may be
/// missing when `family_name` and `given_name` are there.
fn basic_facts(claims: &serde_json::Map<String, serde_json::Value>) -> BasicFacts {
    let text = |name: &str| {
        claims
            .get(name)
            .and_then(|value| value.as_str())
            .map(str::trim)
            .filter(|value| !value.is_empty())
            .map(str::to_owned)
    };
    let name = text("name").or_else(|| match (text("family_name"), text("given_name")) {
        (Some(family), Some(given)) => Some(format!("{family}\u{3000}{given}")),
        (family, given) => family.or(given),
    });
    let address = match claims.get("address") {
        Some(serde_json::Value::String(address)) => Some(address.trim().to_owned()),
        Some(serde_json::Value::Object(parts)) => {
            let part = |name: &str| parts.get(name).and_then(|v| v.as_str()).unwrap_or("");
            let formatted = part("formatted").trim();
            if formatted.is_empty() {
                Some(
                    ["region", "locality", "street_address"]
                        .map(part)
                        .concat()
                        .trim()
                        .to_owned(),
                )
            } else {
                Some(formatted.to_owned())
            }
        }
        _ => None,
    }
    .filter(|address| !address.is_empty());
    BasicFacts {
        name,
        gender: text("gender"),
        birth_date: text("birthdate"),
        address,
        ..BasicFacts::default()
    }
}

#[derive(Deserialize)]
struct TokenErrorResponse {
    error: String,
    error_description: Option<String>,
}

#[derive(Serialize)]
struct ClientAssertion<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    jti: String,
    iat: i64,
    exp: i64,
}

/// What is read from an ID token. Other claims (the basic facts included) are kept as raw JSON,
/// so a claim in an unexpected shape can never fail a sign-in. `iss`, `exp` and `iat` are checked
/// by jsonwebtoken.
#[derive(Deserialize)]
struct IdTokenClaims {
    sub: String,
    #[serde(deserialize_with = "one_or_many")]
    aud: Vec<String>,
    azp: Option<String>,
    nonce: Option<String>,
    email: Option<serde_json::Value>,
    email_verified: Option<serde_json::Value>,
    /// Every other claim, in whatever shape the provider sends it.
    #[serde(flatten)]
    other: serde_json::Map<String, serde_json::Value>,
}

fn one_or_many<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }
    Ok(match OneOrMany::deserialize(deserializer)? {
        OneOrMany::One(aud) => vec![aud],
        OneOrMany::Many(auds) => auds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rsa_jwk(kid: &str, alg: Option<&str>, use_: Option<&str>) -> Jwk {
        let mut value = serde_json::json!({"kty": "RSA", "kid": kid, "n": "AQAB", "e": "AQAB"});
        if let Some(alg) = alg {
            value["alg"] = alg.into();
        }
        if let Some(use_) = use_ {
            value["use"] = use_.into();
        }
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn keys_are_chosen_by_kid_type_alg_and_use() {
        let keys = vec![
            rsa_jwk("a", Some("RS256"), Some("sig")),
            rsa_jwk("b", None, None),
            rsa_jwk("c", Some("PS256"), None),
            rsa_jwk("d", None, Some("enc")),
        ];
        let kid = |k: Vec<&Jwk>| -> Vec<String> {
            k.iter().map(|j| j.common.key_id.clone().unwrap()).collect()
        };
        assert_eq!(kid(select_keys(&keys, Some("a"), Algorithm::RS256)), ["a"]);
        assert_eq!(
            kid(select_keys(&keys, Some("a"), Algorithm::PS256)),
            Vec::<String>::new()
        );
        assert_eq!(kid(select_keys(&keys, None, Algorithm::RS256)), ["a", "b"]);
        assert_eq!(
            kid(select_keys(&keys, Some("d"), Algorithm::RS256)),
            Vec::<String>::new()
        );
        assert!(select_keys(&keys, None, Algorithm::ES256).is_empty());
    }

    #[test]
    fn basic_facts_are_read_leniently() {
        let claims = |value: serde_json::Value| value.as_object().cloned().unwrap_or_default();
        let standard = basic_facts(&claims(serde_json::json!({
            "name": "加賀 花子",
            "address": {"formatted": "石川県加賀市大聖寺南町ニ４１", "country": "JP"},
            "birthdate": "1985-04-01",
            "gender": "female",
        })));
        assert_eq!(
            standard,
            BasicFacts {
                name: Some("加賀 花子".to_owned()),
                gender: Some("female".to_owned()),
                birth_date: Some("1985-04-01".to_owned()),
                address: Some("石川県加賀市大聖寺南町ニ４１".to_owned()),
                ..BasicFacts::default()
            }
        );
        let other_shapes = basic_facts(&claims(serde_json::json!({
            "family_name": "加賀",
            "given_name": "花子",
            "address": {"region": "石川県", "locality": "加賀市", "street_address": "大聖寺南町ニ４１"},
            "birthdate": 19850401,
        })));
        assert_eq!(other_shapes.name.as_deref(), Some("加賀\u{3000}花子"));
        assert_eq!(
            other_shapes.address.as_deref(),
            Some("石川県加賀市大聖寺南町ニ４１")
        );
        assert_eq!(other_shapes.birth_date, None, "a number is not a date here");
        assert!(basic_facts(&claims(serde_json::json!({"address": ""}))).is_empty());
    }

    #[test]
    fn audience_is_one_or_many() {
        let one: IdTokenClaims =
            serde_json::from_value(serde_json::json!({"sub": "s", "aud": "x"})).unwrap();
        assert_eq!(one.aud, ["x"]);
        let many: IdTokenClaims = serde_json::from_value(
            serde_json::json!({"sub": "s", "aud": ["x", "y"], "address": "a string"}),
        )
        .unwrap();
        assert_eq!(many.aud, ["x", "y"]);
    }
}
