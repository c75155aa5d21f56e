//! Admins see the emails of their divisions the worker gave up on, and send them again. Another
//! division's messages are not theirs: not listed, and 404 to retry.

use actix_web::{HttpResponse, get, post, web};
use uuid::Uuid;

use super::extract::StaffAuth;
use crate::error::ApiError;
use crate::identity::staff::Role;
use crate::notify::{self, DivisionsScope, FailedMessage};
use crate::state::AppState;

/// The divisions the caller administers and their notice addresses; 403 when none.
fn administered(
    state: &AppState,
    staff: &StaffAuth,
) -> Result<(Vec<String>, Vec<String>), ApiError> {
    let divisions: Vec<String> = staff
        .memberships
        .iter()
        .filter(|membership| membership.role == Role::Admin)
        .map(|membership| membership.division.clone())
        .collect();
    if divisions.is_empty() {
        return Err(super::extract::role_required());
    }
    let emails = notify::division_emails(&state.catalog, &divisions);
    Ok((divisions, emails))
}

/// Emails about the caller's divisions that could not be delivered after every retry.
#[utoipa::path(tag = "staff", responses((status = 200, body = [FailedMessage]), (status = 403, body = crate::error::Problem)), security(("bearer" = [])))]
#[get("/staff/admin/outbox/failed")]
pub async fn failed(
    state: web::Data<AppState>,
    staff: StaffAuth,
) -> Result<web::Json<Vec<FailedMessage>>, ApiError> {
    let (divisions, emails) = administered(&state, &staff)?;
    let scope = DivisionsScope {
        divisions: &divisions,
        emails: &emails,
    };
    let mut connection = crate::db::connection(&state.pool).await?;
    Ok(web::Json(
        notify::failed(&mut connection, &scope)
            .await
            .map_err(crate::db::DbError::classify)?,
    ))
}

/// Queues a failed email about one of the caller's divisions again.
#[utoipa::path(tag = "staff", params(("id" = Uuid, Path)), responses((status = 204), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem)), security(("bearer" = [])))]
#[post("/staff/admin/outbox/{id}/retry")]
pub async fn retry(
    state: web::Data<AppState>,
    staff: StaffAuth,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let (divisions, emails) = administered(&state, &staff)?;
    let scope = DivisionsScope {
        divisions: &divisions,
        emails: &emails,
    };
    let mut connection = crate::db::connection(&state.pool).await?;
    if notify::retry(&mut connection, *id, &scope)
        .await
        .map_err(crate::db::DbError::classify)?
    {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::not_found())
    }
}
