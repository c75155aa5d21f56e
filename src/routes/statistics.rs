//! The usage statistics as JSON: the public report (the same suppressed tables as the page and
//! the open-data CSV), the staff report of their own divisions, and the counter counts staff
//! enter each month.

use actix_web::{HttpResponse, get, put, web};
use serde::Deserialize;
use utoipa::ToSchema;

use super::extract::{Body, StaffAuth};
use crate::error::ApiError;
use crate::forms::lint::city_today;
use crate::state::AppState;
use crate::statistics::report::StatisticsReport;

/// The city's usage statistics: applications, card signatures, online share, processing time,
/// returns, withdrawals and rejections per procedure and month, with the definition of each
/// measure. Counts under the configured minimum, and anything that would let one be worked out,
/// are null and listed in `hidden`.
#[utoipa::path(tag = "statistics", responses((status = 200, body = StatisticsReport)))]
#[get("/statistics")]
pub async fn public_report(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let report = state.statistics_report(None).await?;
    Ok(HttpResponse::Ok().json(report.as_ref()))
}

/// The same report for the procedures of my divisions only.
#[utoipa::path(
    tag = "statistics",
    responses((status = 200, body = StatisticsReport), (status = 401, body = crate::error::Problem)),
    security(("bearer" = []))
)]
#[get("/staff/statistics")]
pub async fn staff_report(
    state: web::Data<AppState>,
    auth: StaffAuth,
) -> Result<HttpResponse, ApiError> {
    let divisions = auth.divisions();
    let report = state.statistics_report(Some(&divisions)).await?;
    Ok(HttpResponse::Ok().json(report.as_ref()))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CounterCount {
    /// A procedure of one of my divisions.
    pub procedure_id: String,
    /// `YYYY-MM`, not after this month.
    pub month: String,
    /// Applications taken at the counter that month, 0–1000000.
    pub count: i64,
}

/// Enters (or corrects) a month's counter (窓口) count for a procedure of my divisions; 404 for
/// another division's procedure.
#[utoipa::path(
    tag = "statistics",
    request_body = CounterCount,
    responses((status = 204), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = []))
)]
#[put("/staff/statistics/counter")]
pub async fn put_counter(
    state: web::Data<AppState>,
    auth: StaffAuth,
    body: Body<CounterCount>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let (month, count) =
        crate::statistics::counter::parse(&body.month, &body.count.to_string(), city_today())?;
    let mut connection = crate::db::connection(&state.pool).await?;
    crate::statistics::counter::record(
        &mut connection,
        &state.catalog,
        auth.viewer(),
        &body.procedure_id,
        month,
        count,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
