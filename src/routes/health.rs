//! Liveness, readiness and Prometheus metrics.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, web};
use diesel_async::RunQueryDsl;
use secrecy::ExposeSecret;
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

use crate::config::ServerSettings;
use crate::error::ApiError;
use crate::state::AppState;
use crate::telemetry::Metrics;

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

/// The process is up. Says nothing about its dependencies.
#[utoipa::path(tag = "operations", responses((status = 200, body = Health)))]
#[get("/healthz")]
pub async fn healthz() -> web::Json<Health> {
    web::Json(Health { status: "ok" })
}

/// Ready to serve: the database answers.
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, body = Health),
        (status = 503, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> Result<web::Json<Health>, ApiError> {
    // Its own bound, shorter than a request's: a balancer polling a frozen database must hear
    // "not ready" soon, not after the pool's wait.
    let bound = std::time::Duration::from_millis(state.settings.database.readiness_timeout_ms);
    crate::db::bounded(bound, async {
        let mut connection = crate::db::connection(&state.pool).await?;
        diesel::sql_query("SELECT 1")
            .execute(&mut connection)
            .await
            .map_err(|error| ApiError::Unavailable(error.into()))
    })
    .await?;
    Ok(web::Json(Health { status: "ready" }))
}

/// Prometheus text exposition: open in development, in production only with the configured
/// bearer token (`server.metrics_token`); 404 otherwise, as if there were nothing here.
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, content_type = "text/plain"),
        (status = 404, body = crate::error::Problem, content_type = "application/problem+json"),
    )
)]
#[get("/metrics")]
pub async fn metrics(
    request: HttpRequest,
    metrics: web::Data<Metrics>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    if !metrics_allowed(&request, &state.settings.server) {
        return Err(ApiError::not_found());
    }
    let pool_status = state.pool.status();
    metrics.pool_size.set(pool_status.size as i64);
    metrics.pool_available.set(pool_status.available as i64);
    if state.payments.is_some() {
        // A database that does not answer leaves the last counts; the scrape still succeeds.
        if let Ok(mut connection) = crate::db::connection(&state.pool).await
            && let Ok(counts) = crate::payments::counts(&mut connection).await
        {
            for (provider, status, count) in counts {
                metrics
                    .payments
                    .with_label_values(&[provider.as_str(), status.as_str()])
                    .set(count);
            }
        }
    }
    let body = prometheus::TextEncoder::new()
        .encode_to_string(&metrics.registry.gather())
        .map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(body))
}

fn metrics_allowed(request: &HttpRequest, server: &ServerSettings) -> bool {
    let token = server.metrics_token.expose_secret();
    if token.is_empty() {
        return server.metrics_open;
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default();
    // Digests compared, so the comparison's time says nothing about the token.
    Sha256::digest(presented.as_bytes()) == Sha256::digest(token.as_bytes())
}
