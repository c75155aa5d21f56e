//! Staff accounts at the edge: password sign-in, and admins managing the staff of their division.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;
use validator::Validate;

use super::extract::StaffAuth;
use crate::error::ApiError;
use crate::forms::Assurance;
use crate::identity::session::{self, Principal, TokenPair};
use crate::identity::staff::{self, Membership, Role, StaffListing};
use crate::startup::AppState;

#[derive(Deserialize, ToSchema)]
pub struct StaffLogin {
    pub login: String,
    pub password: String,
}

/// Staff sign-in with login and password; the same token pair as residents get. Repeated
/// failures lock the account for a while (401 `auth.locked`).
#[utoipa::path(
    tag = "staff",
    request_body = StaffLogin,
    responses((status = 200, body = TokenPair), (status = 401, body = crate::error::Problem), (status = 429, body = crate::error::Problem))
)]
#[post("/staff/login")]
pub async fn login(
    request: actix_web::HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<StaffLogin>,
) -> Result<web::Json<TokenPair>, ApiError> {
    // Behind a load balancer, configure it to pass the client address; the peer is used here so
    // a forged X-Forwarded-For cannot buy more attempts.
    if let Some(ip) = request.peer_addr().map(|address| address.ip())
        && state.staff_login_limiter.check_key(&ip).is_err()
    {
        return Err(ApiError::client(
            actix_web::http::StatusCode::TOO_MANY_REQUESTS,
            "auth.too_many_attempts",
            "ログインの試行が多すぎます。しばらくしてからお試しください。",
            "Too many sign-in attempts; please wait a minute.",
        ));
    }
    let mut connection = crate::db::connection(&state.pool).await?;
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
    tracing::info!(staff_id = %id, "staff signed in");
    Ok(web::Json(tokens))
}

#[derive(Deserialize, Validate, ToSchema)]
pub struct NewStaff {
    #[validate(length(min = 1, max = 64))]
    pub login: String,
    #[validate(length(min = 1, max = 100))]
    pub display_name: String,
    #[validate(email, length(max = 254))]
    pub email: Option<String>,
    /// At least 12 characters; the person changes it on first use.
    pub password: String,
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
    body: web::Json<NewStaff>,
) -> Result<HttpResponse, ApiError> {
    auth.require_role(&body.division, Role::Admin)?;
    let errors = crate::error::validation_errors(body.validate());
    if !errors.is_empty() {
        return Err(ApiError::validation("request.invalid", errors));
    }
    let mut connection = crate::db::connection(&state.pool).await?;
    let id = staff::create(
        &mut connection,
        &body.login,
        &body.display_name,
        body.email.as_deref(),
        &body.password,
        &[Membership {
            division: body.division.clone(),
            role: body.role,
        }],
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
    let administered: Vec<String> = auth
        .memberships
        .iter()
        .filter(|m| m.role == Role::Admin)
        .map(|m| m.division.clone())
        .collect();
    if administered.is_empty() {
        return Err(super::extract::role_required());
    }
    let mut connection = crate::db::connection(&state.pool).await?;
    Ok(web::Json(
        staff::list_in_divisions(&mut connection, &administered).await?,
    ))
}
