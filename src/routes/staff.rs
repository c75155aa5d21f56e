//! Staff accounts at the edge: password sign-in, sign-in through the city's own OpenID Provider,
//! and admins managing the staff of their division.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, delete, get, patch, post, put, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use super::auth::{CallbackQuery, StartedLogin, read_callback, start_oidc};
use super::extract::{Body, StaffAuth, StaffSelf};
use crate::error::ApiError;
use crate::forms::Assurance;
use crate::identity::AuthError;
use crate::identity::oidc::OidcClient;
use crate::identity::session::{self, Principal, TokenPair};
use crate::identity::staff::{self, Membership, Role, StaffListing};
use crate::identity::staff_admin::{self, AccountEvent, AdminError};
use crate::messages::FieldError;
use crate::state::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StaffLogin {
    pub login: String,
    pub password: String,
}

/// Staff sign-in with login and password; the same token pair as residents get. After repeated
/// failures each further attempt must wait longer; whatever went wrong, the answer is 401
/// `auth.bad_credentials`.
#[utoipa::path(
    tag = "staff",
    request_body = StaffLogin,
    responses((status = 200, body = TokenPair), (status = 401, body = crate::error::Problem), (status = 429, body = crate::error::Problem))
)]
#[post("/staff/login")]
pub async fn login(
    request: actix_web::HttpRequest,
    state: web::Data<AppState>,
    body: Body<StaffLogin>,
) -> Result<web::Json<TokenPair>, ApiError> {
    if !state.settings.staff.allows("password") {
        return Err(AuthError::ProviderDisabled.into());
    }
    // Behind the proxies of `server.trusted_proxies`, the address they forwarded; otherwise the
    // peer, so a forged X-Forwarded-For cannot buy more attempts.
    let mut connection = crate::db::connection(&state.pool).await?;
    if let Some(peer) = request.peer_addr().map(|address| address.ip())
        && !crate::identity::throttle::admit(
            &mut connection,
            crate::client_address::client_address(peer, request.headers(), &state.trusted_proxies),
            state.settings.staff.login_attempts_per_minute,
        )
        .await
        .map_err(crate::db::DbError::classify)?
    {
        return Err(ApiError::client(
            actix_web::http::StatusCode::TOO_MANY_REQUESTS,
            "auth.too_many_attempts",
            "ログインの試行が多すぎます。しばらくしてからお試しください。",
            "Too many sign-in attempts; please wait a minute.",
        ));
    }
    let id = staff::sign_in(
        &mut connection,
        &state.settings.staff,
        &body.login,
        &body.password,
    )
    .await?;
    let tokens = session::start_session(
        &mut connection,
        &state.keyring,
        Principal::Staff,
        id,
        Assurance::None,
        None,
    )
    .await?;
    tracing::info!(staff_id = %id, method = "password", "staff signed in");
    Ok(web::Json(tokens))
}

fn staff_oidc(state: &AppState) -> Result<&OidcClient, ApiError> {
    Ok(state
        .staff_oidc
        .as_ref()
        .ok_or(AuthError::ProviderDisabled)?)
}

/// Starts a staff sign-in through the city's own OpenID Provider (`staff.sign_in` has `oidc`):
/// send the browser to `authorization_url`.
#[utoipa::path(
    tag = "staff",
    responses((status = 200, body = StartedLogin), (status = 404, body = crate::error::Problem))
)]
#[post("/staff/auth/oidc/start")]
pub async fn oidc_start(state: web::Data<AppState>) -> Result<web::Json<StartedLogin>, ApiError> {
    let client = staff_oidc(&state)?;
    let mut connection = crate::db::connection(&state.pool).await?;
    Ok(web::Json(
        start_oidc(
            &mut connection,
            client,
            staff::OIDC_CHALLENGE,
            state.settings.identity.challenge_ttl_seconds,
        )
        .await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteStaffOidc {
    /// The `state` the provider sent back (the `challenge_id` from `start`).
    pub challenge_id: Uuid,
    /// The authorization code from the provider's redirect.
    pub code: String,
}

/// Completes a staff sign-in when the staff web app received the provider's redirect itself.
#[utoipa::path(
    tag = "staff",
    request_body = CompleteStaffOidc,
    responses((status = 200, body = TokenPair), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem))
)]
#[post("/staff/auth/oidc/complete")]
pub async fn oidc_complete(
    state: web::Data<AppState>,
    body: Body<CompleteStaffOidc>,
) -> Result<web::Json<TokenPair>, ApiError> {
    let body = body.into_inner();
    finish_oidc_sign_in(&state, body.challenge_id, &body.code).await
}

/// Where the city's OpenID Provider sends staff back (`staff.oidc.redirect_uri`).
#[utoipa::path(
    tag = "staff",
    params(CallbackQuery),
    responses((status = 200, body = TokenPair), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem))
)]
#[get("/staff/auth/oidc/callback")]
pub async fn oidc_callback(
    state: web::Data<AppState>,
    query: web::Query<CallbackQuery>,
) -> Result<web::Json<TokenPair>, ApiError> {
    let (challenge_id, code) = read_callback(query.into_inner(), staff_oidc(&state)?)?;
    let code = code.ok_or_else(|| AuthError::Malformed("`code` is required".to_owned()))?;
    finish_oidc_sign_in(&state, challenge_id, &code).await
}

async fn finish_oidc_sign_in(
    state: &AppState,
    challenge_id: Uuid,
    code: &str,
) -> Result<web::Json<TokenPair>, ApiError> {
    let client = staff_oidc(state)?;
    let id = staff::complete_provider_sign_in(
        &state.pool,
        client,
        &state.settings.staff.oidc.login_claim,
        challenge_id,
        code,
    )
    .await?;
    let mut connection = crate::db::connection(&state.pool).await?;
    let tokens = session::start_session(
        &mut connection,
        &state.keyring,
        Principal::Staff,
        id,
        Assurance::None,
        None,
    )
    .await?;
    tracing::info!(staff_id = %id, method = "oidc", "staff signed in");
    Ok(web::Json(tokens))
}

#[derive(Deserialize, Validate, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewStaff {
    #[validate(length(min = 1, max = 64))]
    pub login: String,
    #[validate(length(min = 1, max = 100))]
    pub display_name: String,
    #[validate(email, length(max = 254))]
    pub email: Option<String>,
    /// At least 12 characters. Leave it out for someone who signs in only through the city's
    /// OpenID Provider (`staff.sign_in` has `oidc`; `login` is then their login there).
    pub password: Option<String>,
    /// A division the caller is admin of.
    pub division: String,
    pub role: Role,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedStaff {
    pub id: Uuid,
}

/// An admin creates a staff account in a division they administer.
#[utoipa::path(
    tag = "staff",
    request_body = NewStaff,
    responses(
        (status = 201, body = CreatedStaff),
        (status = 403, body = crate::error::Problem),
        (status = 409, body = crate::error::Problem),
        (status = 422, body = crate::error::Problem),
    ),
    security(("bearer" = []))
)]
#[post("/staff/admin/staff")]
pub async fn create_staff(
    state: web::Data<AppState>,
    auth: StaffAuth,
    body: Body<NewStaff>,
) -> Result<HttpResponse, ApiError> {
    auth.require_role(&body.division, Role::Admin)?;
    let mut errors = crate::error::validation_errors(body.validate());
    match &body.password {
        None if !state.settings.staff.allows("oidc") => {
            errors.push(FieldError::new("/password", "required"));
        }
        Some(password) => errors.extend(short_password("/password", password)),
        None => {}
    }
    if !errors.is_empty() {
        return Err(ApiError::validation("request.invalid", errors));
    }
    let mut connection = crate::db::connection(&state.pool).await?;
    let id = staff::create(
        &mut connection,
        &body.login,
        &body.display_name,
        body.email.as_deref(),
        body.password.as_deref(),
        &[Membership {
            division: body.division.clone(),
            role: body.role,
        }],
        Some(auth.id),
    )
    .await?;
    tracing::info!(staff_id = %id, created_by = %auth.id, "staff account created");
    Ok(HttpResponse::build(StatusCode::CREATED).json(CreatedStaff { id }))
}

/// The staff of the divisions the caller administers.
#[utoipa::path(
    tag = "staff",
    responses((status = 200, body = [StaffListing]), (status = 403, body = crate::error::Problem)),
    security(("bearer" = []))
)]
#[get("/staff/admin/staff")]
pub async fn list_staff(
    state: web::Data<AppState>,
    auth: StaffAuth,
) -> Result<web::Json<Vec<StaffListing>>, ApiError> {
    let administered = administered_divisions(&auth)?;
    let mut connection = crate::db::connection(&state.pool).await?;
    Ok(web::Json(
        staff::list_in_divisions(&mut connection, &administered).await?,
    ))
}

impl From<AdminError> for ApiError {
    fn from(error: AdminError) -> Self {
        match error {
            AdminError::NotFound => Self::not_found(),
            AdminError::OutsideDivisions => Self::client(
                StatusCode::FORBIDDEN,
                "staff.outside_divisions",
                "この職員は管理権限のない課にも所属しているため、変更できません。",
                "This person also works in divisions you do not administer, so you cannot change the account.",
            ),
            AdminError::LastAdmin => Self::client(
                StatusCode::CONFLICT,
                "staff.last_admin",
                "課の管理者が一人もいなくなるため、変更できません。先に別の管理者を指名してください。",
                "The division would have no admin left; make someone else admin first.",
            ),
            AdminError::NotAdmin => super::extract::role_required(),
            AdminError::Auth(error) => error.into(),
        }
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MembershipChange {
    pub role: Role,
}

/// An admin adds a staff member to a division they administer, or changes their role there.
/// Adding someone who also works in divisions the caller does not administer is refused (403
/// `staff.outside_divisions`). The last admin of a division cannot be demoted (409).
#[utoipa::path(
    tag = "staff",
    params(("id" = Uuid, Path), ("division" = String, Path)),
    request_body = MembershipChange,
    responses((status = 204), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)),
    security(("bearer" = []))
)]
#[put("/staff/admin/staff/{id}/memberships/{division}")]
pub async fn put_membership(
    state: web::Data<AppState>,
    auth: StaffAuth,
    path: web::Path<(Uuid, String)>,
    body: Body<MembershipChange>,
) -> Result<HttpResponse, ApiError> {
    let (id, division) = path.into_inner();
    auth.require_role(&division, Role::Admin)?;
    let administered = administered_divisions(&auth)?;
    let mut connection = crate::db::connection(&state.pool).await?;
    staff_admin::set_membership(
        &mut connection,
        auth.id,
        id,
        &division,
        body.role,
        &administered,
    )
    .await?;
    tracing::info!(staff_id = %id, %division, role = body.role.as_str(), changed_by = %auth.id, "staff membership set");
    Ok(HttpResponse::NoContent().finish())
}

/// An admin takes a staff member out of a division they administer.
#[utoipa::path(
    tag = "staff",
    params(("id" = Uuid, Path), ("division" = String, Path)),
    responses((status = 204), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)),
    security(("bearer" = []))
)]
#[delete("/staff/admin/staff/{id}/memberships/{division}")]
pub async fn delete_membership(
    state: web::Data<AppState>,
    auth: StaffAuth,
    path: web::Path<(Uuid, String)>,
) -> Result<HttpResponse, ApiError> {
    let (id, division) = path.into_inner();
    auth.require_role(&division, Role::Admin)?;
    let mut connection = crate::db::connection(&state.pool).await?;
    staff_admin::remove_membership(&mut connection, auth.id, id, &division).await?;
    tracing::info!(staff_id = %id, %division, changed_by = %auth.id, "staff membership removed");
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountChange {
    /// false: the person can no longer sign in and their sessions end now. true: active again,
    /// and unlocked.
    pub active: bool,
}

/// An admin deactivates (someone leaves or changes post) or reactivates a staff account. Only an
/// admin of every division the account works in may do it.
#[utoipa::path(
    tag = "staff",
    params(("id" = Uuid, Path)),
    request_body = AccountChange,
    responses((status = 204), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)),
    security(("bearer" = []))
)]
#[patch("/staff/admin/staff/{id}")]
pub async fn update_account(
    state: web::Data<AppState>,
    auth: StaffAuth,
    id: web::Path<Uuid>,
    body: Body<AccountChange>,
) -> Result<HttpResponse, ApiError> {
    let administered = administered_divisions(&auth)?;
    let id = id.into_inner();
    let mut connection = crate::db::connection(&state.pool).await?;
    staff_admin::set_active(&mut connection, auth.id, id, body.active, &administered).await?;
    tracing::info!(staff_id = %id, active = body.active, changed_by = %auth.id, "staff account changed");
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordReset {
    /// At least 12 characters; the person must replace it at first use.
    pub password: String,
}

/// An admin gives someone who forgot their password a new one (to be replaced at first use);
/// the account is unlocked and every session of it ends. Only an admin of every division the
/// person works in may do it.
#[utoipa::path(
    tag = "staff",
    params(("id" = Uuid, Path)),
    request_body = PasswordReset,
    responses((status = 204), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = []))
)]
#[put("/staff/admin/staff/{id}/password")]
pub async fn reset_password(
    state: web::Data<AppState>,
    auth: StaffAuth,
    id: web::Path<Uuid>,
    body: Body<PasswordReset>,
) -> Result<HttpResponse, ApiError> {
    let administered = administered_divisions(&auth)?;
    if let Some(error) = short_password("/password", &body.password) {
        return Err(ApiError::validation("request.invalid", vec![error]));
    }
    let id = id.into_inner();
    let mut connection = crate::db::connection(&state.pool).await?;
    staff_admin::reset_password(&mut connection, auth.id, id, &body.password, &administered)
        .await?;
    tracing::info!(staff_id = %id, changed_by = %auth.id, "staff password reset");
    Ok(HttpResponse::NoContent().finish())
}

/// The audit trail of a staff account of a division the caller administers: who created it,
/// gave roles, took it out of a division, deactivated or reactivated it, when its password
/// changed and when it was linked to the city's IdP.
#[utoipa::path(
    tag = "staff",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = [AccountEvent]), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)),
    security(("bearer" = []))
)]
#[get("/staff/admin/staff/{id}/history")]
pub async fn account_history(
    state: web::Data<AppState>,
    auth: StaffAuth,
    id: web::Path<Uuid>,
) -> Result<web::Json<Vec<AccountEvent>>, ApiError> {
    let administered = administered_divisions(&auth)?;
    let mut connection = crate::db::connection(&state.pool).await?;
    Ok(web::Json(
        staff_admin::history(&mut connection, id.into_inner(), &administered).await?,
    ))
}

/// A field error when a new staff password at `path` is too short.
fn short_password(path: &str, password: &str) -> Option<FieldError> {
    (!staff::long_enough(password)).then(|| FieldError::new(path, "too_short"))
}

/// The divisions the caller administers; 403 when none.
fn administered_divisions(auth: &StaffAuth) -> Result<Vec<String>, ApiError> {
    let administered: Vec<String> = auth
        .memberships
        .iter()
        .filter(|m| m.role == Role::Admin)
        .map(|m| m.division.clone())
        .collect();
    if administered.is_empty() {
        Err(super::extract::role_required())
    } else {
        Ok(administered)
    }
}

/// The signed-in staff member's account and memberships.
#[utoipa::path(
    tag = "staff",
    responses((status = 200, body = staff::OwnAccount), (status = 401, body = crate::error::Problem)),
    security(("bearer" = []))
)]
#[get("/staff/me")]
pub async fn me(
    state: web::Data<AppState>,
    auth: StaffSelf,
) -> Result<web::Json<staff::OwnAccount>, ApiError> {
    let mut connection = crate::db::connection(&state.pool).await?;
    Ok(web::Json(
        staff::own_account(&mut connection, auth.id, auth.memberships).await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    pub current_password: String,
    /// At least 12 characters.
    pub new_password: String,
}

/// A staff member changes their own password; the first one an admin gave them must be changed
/// before anything else (403 `auth.password_change_required` everywhere else until then).
/// Every session of the account ends; a new token pair for this one is returned.
#[utoipa::path(
    tag = "staff",
    request_body = PasswordChange,
    responses((status = 200, body = TokenPair), (status = 401, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = []))
)]
#[post("/staff/me/password")]
pub async fn change_password(
    state: web::Data<AppState>,
    auth: StaffSelf,
    body: Body<PasswordChange>,
) -> Result<web::Json<TokenPair>, ApiError> {
    if !state.settings.staff.allows("password") {
        return Err(AuthError::ProviderDisabled.into());
    }
    if let Some(error) = short_password("/new_password", &body.new_password) {
        return Err(ApiError::validation("request.invalid", vec![error]));
    }
    let mut connection = crate::db::connection(&state.pool).await?;
    match staff::change_password(
        &mut connection,
        &state.settings.staff,
        auth.id,
        &body.current_password,
        &body.new_password,
    )
    .await
    {
        Err(AuthError::BadCredentials) => {
            return Err(ApiError::validation(
                "request.invalid",
                vec![FieldError {
                    path: "/current_password".to_owned(),
                    code: "incorrect".to_owned(),
                    message: crate::messages::Localized::new(
                        "現在のパスワードが違います。",
                        "The current password is wrong.",
                    ),
                }],
            ));
        }
        other => other?,
    }
    let tokens = session::start_session(
        &mut connection,
        &state.keyring,
        Principal::Staff,
        auth.id,
        Assurance::None,
        None,
    )
    .await?;
    tracing::info!(staff_id = %auth.id, "staff password changed; other sessions ended");
    Ok(web::Json(tokens))
}
