//! Admins see the emails the worker gave up on, and send them again.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, get, post, web};
use uuid::Uuid;

use super::extract::StaffAuth;
use crate::error::ApiError;
use crate::notify::{self, FailedMessage};
use crate::startup::AppState;

fn require_admin(staff: &StaffAuth) -> Result<(), ApiError> {
    if staff.is_admin() {
        Ok(())
    } else {
        Err(ApiError::client(
            StatusCode::FORBIDDEN,
            "auth.role_required",
            "管理者のみが行える操作です。",
            "Only administrators can do this.",
        ))
    }
}

/// Emails that could not be delivered after every retry.
#[utoipa::path(tag = "staff", responses((status = 200, body = [FailedMessage]), (status = 403, body = crate::error::Problem)), security(("bearer" = [])))]
#[get("/staff/admin/outbox/failed")]
pub async fn failed(
    state: web::Data<AppState>,
    staff: StaffAuth,
) -> Result<web::Json<Vec<FailedMessage>>, ApiError> {
    require_admin(&staff)?;
    let mut connection = crate::db::connection(&state.pool).await?;
    Ok(web::Json(
        notify::failed(&mut connection)
            .await
            .map_err(crate::db::DbError::classify)?,
    ))
}

/// Queues a failed email again.
#[utoipa::path(tag = "staff", params(("id" = Uuid, Path)), responses((status = 204), (status = 404, body = crate::error::Problem)), security(("bearer" = [])))]
#[post("/staff/admin/outbox/{id}/retry")]
pub async fn retry(
    state: web::Data<AppState>,
    staff: StaffAuth,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    require_admin(&staff)?;
    let mut connection = crate::db::connection(&state.pool).await?;
    if notify::retry(&mut connection, *id)
        .await
        .map_err(crate::db::DbError::classify)?
    {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::not_found())
    }
}
