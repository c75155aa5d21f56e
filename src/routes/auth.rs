//! Resident sign-in with a provider, session refresh and logout, and the resident's own account.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, patch, post, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use super::extract::{Body, ResidentAuth};
use crate::error::ApiError;
use crate::identity::facts::VouchedFacts;
use crate::identity::oidc::OidcClient;
use crate::identity::session::{self, TokenPair};
use crate::identity::{AuthError, challenge, dev, residents};
use crate::state::AppState;

fn enabled(state: &AppState, provider: &str) -> Result<(), ApiError> {
    if state
        .settings
        .identity
        .providers
        .iter()
        .any(|p| p == provider)
    {
        Ok(())
    } else {
        Err(AuthError::ProviderDisabled.into())
    }
}

/// What the client needs to continue a sign-in.
#[derive(Serialize, ToSchema)]
pub struct StartedLogin {
    /// Send back with `complete` (and, for OIDC, it is the `state`).
    pub challenge_id: Uuid,
    /// JPKI: the bytes (base64) the card must sign with its user-authentication key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub challenge: Option<String>,
    /// OIDC: where to send the resident's browser.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorization_url: Option<String>,
    pub expires_in: i64,
}

/// Starts a sign-in: a single-use challenge (JPKI, dev) or an authorization URL (OIDC).
#[utoipa::path(
    tag = "identity",
    params(("provider" = String, Path, description = "jpki, oidc or dev")),
    responses((status = 200, body = StartedLogin), (status = 404, body = crate::error::Problem))
)]
#[post("/auth/{provider}/start")]
pub async fn start(
    state: web::Data<AppState>,
    provider: web::Path<String>,
) -> Result<web::Json<StartedLogin>, ApiError> {
    let provider = provider.into_inner();
    enabled(&state, &provider)?;
    let ttl = state.settings.identity.challenge_ttl_seconds;
    let mut connection = crate::db::connection(&state.pool).await?;
    match provider.as_str() {
        "dev" | "jpki" => {
            let created = challenge::create(&mut connection, &provider, ttl, None, None).await?;
            Ok(web::Json(StartedLogin {
                challenge_id: created.id,
                challenge: Some(BASE64.encode(&created.challenge)),
                authorization_url: None,
                expires_in: ttl,
            }))
        }
        "oidc" => {
            let client = state.oidc.as_ref().ok_or(AuthError::ProviderDisabled)?;
            Ok(web::Json(
                start_oidc(&mut connection, client, "oidc", ttl).await?,
            ))
        }
        _ => Err(AuthError::ProviderDisabled.into()),
    }
}

/// Starts a sign-in at an OpenID Provider: the challenge id is the OAuth `state`; the nonce and
/// PKCE verifier stay server-side in a challenge of kind `kind` (residents' and staff's apart).
pub(super) async fn start_oidc(
    connection: &mut diesel_async::AsyncPgConnection,
    client: &OidcClient,
    kind: &str,
    ttl: i64,
) -> Result<StartedLogin, ApiError> {
    let id = Uuid::now_v7();
    let request = client.authorization_request(&id.to_string());
    challenge::create_with_id(
        connection,
        id,
        kind,
        ttl,
        Some(request.nonce),
        Some(request.pkce_verifier),
    )
    .await?;
    Ok(StartedLogin {
        challenge_id: id,
        challenge: None,
        authorization_url: Some(request.url),
        expires_in: ttl,
    })
}

/// The challenge id (`state`) and code of a redirect back from `client`'s provider, after
/// refusing the provider's own error and (RFC 9207) a response from another issuer: a mix-up.
pub(super) fn read_callback(
    query: CallbackQuery,
    client: &OidcClient,
) -> Result<(Uuid, Option<String>), ApiError> {
    if let Some(error) = query.error {
        return Err(AuthError::ProviderRefused(error).into());
    }
    if query
        .iss
        .as_deref()
        .is_some_and(|iss| iss != client.issuer())
    {
        return Err(AuthError::InvalidChallenge.into());
    }
    let challenge_id = query
        .state
        .as_deref()
        .and_then(|state| Uuid::parse_str(state).ok())
        .ok_or(AuthError::InvalidChallenge)?;
    Ok((challenge_id, query.code))
}

/// The provider-specific proof.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteLogin {
    /// The id from `start` (for OIDC: the `state` the provider sent back).
    pub challenge_id: Uuid,
    /// oidc: the authorization code from the provider's redirect.
    pub code: Option<String>,
    /// dev: the fake card's holder id.
    pub subject: Option<String>,
    /// jpki: the user-authentication certificate, DER, base64.
    pub certificate: Option<String>,
    /// jpki: RSA PKCS#1 v1.5 SHA-256 signature of the challenge, base64.
    pub signature: Option<String>,
}

fn decode(field: &Option<String>, name: &str) -> Result<Vec<u8>, ApiError> {
    field
        .as_deref()
        .and_then(|text| BASE64.decode(text).ok())
        .ok_or_else(|| AuthError::Malformed(format!("`{name}` must be base64")).into())
}

/// Completes a sign-in and starts a session.
#[utoipa::path(
    tag = "identity",
    params(("provider" = String, Path, description = "jpki or dev")),
    request_body = CompleteLogin,
    responses((status = 200, body = TokenPair), (status = 401, body = crate::error::Problem))
)]
#[post("/auth/{provider}/complete")]
pub async fn complete(
    state: web::Data<AppState>,
    provider: web::Path<String>,
    body: Body<CompleteLogin>,
) -> Result<web::Json<TokenPair>, ApiError> {
    finish_login(&state, provider.into_inner(), body.into_inner()).await
}

async fn finish_login(
    state: &AppState,
    provider: String,
    body: CompleteLogin,
) -> Result<web::Json<TokenPair>, ApiError> {
    enabled(state, &provider)?;
    let mut connection = crate::db::connection(&state.pool).await?;
    let stored = challenge::consume(&mut connection, &provider, body.challenge_id).await?;
    let identity = match provider.as_str() {
        "dev" => {
            let subject = body
                .subject
                .as_deref()
                .filter(|s| !s.is_empty() && s.len() <= 64)
                .ok_or_else(|| AuthError::Malformed("`subject` is required".to_owned()))?;
            dev::identity(subject)
        }
        "jpki" => {
            let verifier = state.jpki.as_ref().ok_or(AuthError::ProviderDisabled)?;
            verifier.refresh_crl_if_stale().await;
            verifier.verify_login(
                &stored.challenge,
                &decode(&body.certificate, "certificate")?,
                &decode(&body.signature, "signature")?,
                chrono::Utc::now(),
            )?
        }
        "oidc" => {
            let client = state.oidc.as_ref().ok_or(AuthError::ProviderDisabled)?;
            let code = body
                .code
                .as_deref()
                .ok_or_else(|| AuthError::Malformed("`code` is required".to_owned()))?;
            let (Some(nonce), Some(verifier)) = (&stored.oidc_nonce, &stored.pkce_verifier) else {
                return Err(AuthError::InvalidChallenge.into());
            };
            client.complete(code, verifier, nonce).await?
        }
        _ => return Err(AuthError::ProviderDisabled.into()),
    };
    let resident = residents::sign_in(&mut connection, &identity).await?;
    let tokens =
        session::start_resident_session(&mut connection, &state.keyring, resident, &identity)
            .await?;
    tracing::info!(provider = identity.provider, "resident signed in");
    Ok(web::Json(tokens))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct CallbackQuery {
    pub code: Option<String>,
    pub state: Option<String>,
    /// RFC 9207: the issuer that sent the resident back; must be ours.
    pub iss: Option<String>,
    pub error: Option<String>,
}

/// Where the OpenID Provider sends the resident back (`redirect_uri`). Completes the sign-in.
#[utoipa::path(tag = "identity", params(CallbackQuery), responses((status = 200, body = TokenPair), (status = 401, body = crate::error::Problem)))]
#[get("/auth/oidc/callback")]
pub async fn oidc_callback(
    state: web::Data<AppState>,
    query: web::Query<CallbackQuery>,
) -> Result<web::Json<TokenPair>, ApiError> {
    let client = state.oidc.as_ref().ok_or(AuthError::ProviderDisabled)?;
    let (challenge_id, code) = read_callback(query.into_inner(), client)?;
    finish_login(
        &state,
        "oidc".to_owned(),
        CompleteLogin {
            challenge_id,
            code,
            subject: None,
            certificate: None,
            signature: None,
        },
    )
    .await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// Exchanges a refresh token for a new pair (the old one stops working).
#[utoipa::path(tag = "identity", request_body = RefreshRequest, responses((status = 200, body = TokenPair), (status = 401, body = crate::error::Problem)))]
#[post("/auth/refresh")]
pub async fn refresh(
    state: web::Data<AppState>,
    body: Body<RefreshRequest>,
) -> Result<web::Json<TokenPair>, ApiError> {
    let mut connection = crate::db::connection(&state.pool).await?;
    Ok(web::Json(
        session::refresh(&mut connection, &state.keyring, &body.refresh_token).await?,
    ))
}

/// Ends the session: the refresh token and every token rotated from it stop working.
#[utoipa::path(tag = "identity", request_body = RefreshRequest, responses((status = 204)))]
#[post("/auth/logout")]
pub async fn logout(
    state: web::Data<AppState>,
    body: Body<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let mut connection = crate::db::connection(&state.pool).await?;
    session::logout(&mut connection, &body.refresh_token).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Serialize, ToSchema)]
pub struct Me {
    #[serde(flatten)]
    pub resident: residents::Resident,
    pub assurance: crate::forms::Assurance,
}

/// The signed-in resident's account.
#[utoipa::path(tag = "identity", responses((status = 200, body = Me), (status = 401, body = crate::error::Problem)), security(("bearer" = [])))]
#[get("/me")]
pub async fn me(state: web::Data<AppState>, auth: ResidentAuth) -> Result<web::Json<Me>, ApiError> {
    let mut connection = crate::db::connection(&state.pool).await?;
    let resident = residents::find(&mut connection, auth.id)
        .await?
        .ok_or(AuthError::InvalidToken)?;
    Ok(web::Json(Me {
        resident,
        assurance: auth.assurance,
    }))
}

/// The basic facts the sign-in provider vouched for in this session (for example to fill in a
/// form's applicant fields); 404 when it vouched for none (a JPKI sign-in: the authentication
/// certificate carries no personal data).
#[utoipa::path(tag = "identity", responses((status = 200, body = VouchedFacts), (status = 401, body = crate::error::Problem), (status = 404, body = crate::error::Problem)), security(("bearer" = [])))]
#[get("/me/facts")]
pub async fn my_facts(
    state: web::Data<AppState>,
    auth: ResidentAuth,
) -> Result<web::Json<VouchedFacts>, ApiError> {
    let session = auth.session.ok_or_else(ApiError::not_found)?;
    let mut connection = crate::db::connection(&state.pool).await?;
    crate::identity::facts::of_session(&mut connection, session, auth.id)
        .await
        .map_err(crate::identity::AuthError::from)?
        .map(web::Json)
        .ok_or_else(ApiError::not_found)
}

#[derive(Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMe {
    /// Where notifications about my applications go.
    #[validate(email, length(max = 254))]
    pub email: Option<String>,
    /// `ja` or `en`.
    pub language: Option<String>,
}

/// Sets the resident's email address and language for notifications.
#[utoipa::path(tag = "identity", request_body = UpdateMe, responses((status = 204), (status = 422, body = crate::error::Problem)), security(("bearer" = [])))]
#[patch("/me")]
pub async fn update_me(
    state: web::Data<AppState>,
    auth: ResidentAuth,
    body: Body<UpdateMe>,
) -> Result<HttpResponse, ApiError> {
    let mut errors = crate::error::validation_errors(body.validate());
    if let Some(language) = &body.language
        && language != "ja"
        && language != "en"
    {
        errors.push(crate::messages::FieldError::new(
            "/language",
            "invalid_option",
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation("request.invalid", errors));
    }
    let mut connection = crate::db::connection(&state.pool).await?;
    residents::change_contact(
        &mut connection,
        auth.id,
        body.email.as_deref(),
        body.language.as_deref(),
        &state.settings.server.public_url,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConfirmEmail {
    /// The token from the link sent to the new address.
    pub token: String,
}

/// Confirms a new email address with the token from the link sent to it; from then on notices
/// go there. No sign-in needed: the token proves the mailbox.
#[utoipa::path(tag = "identity", request_body = ConfirmEmail, responses((status = 204), (status = 422, body = crate::error::Problem)))]
#[post("/me/email/confirm")]
pub async fn confirm_email(
    state: web::Data<AppState>,
    body: Body<ConfirmEmail>,
) -> Result<HttpResponse, ApiError> {
    let mut connection = crate::db::connection(&state.pool).await?;
    if residents::confirm_email(&mut connection, body.token.trim()).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::client(
            StatusCode::UNPROCESSABLE_ENTITY,
            "email.confirmation_invalid",
            "確認用のリンクが無効か、有効期限（24時間）が切れています。もう一度メールアドレスを登録してください。",
            "The confirmation link is invalid or has expired (24 hours); set the email address again.",
        ))
    }
}
