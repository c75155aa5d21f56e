//! A client-side bound on every request's database work.
//!
//! `statement_timeout` is enforced by PostgreSQL, so it cannot help when the server itself stops
//! answering without closing its connections (frozen, a partition): such a request would wait
//! for as long as that lasts. Here every handler gets `database.request_timeout_seconds`; past
//! it the request is answered 503 with Retry-After. File uploads are left out because they read
//! a large body from the client first; their database part is bounded on its own
//! ([`crate::db::bounded`]).

use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::CONTENT_TYPE;
use actix_web::middleware::Next;
use actix_web::web;

use crate::db::DbError;
use crate::error::ApiError;
use crate::state::AppState;

/// The bound for one request's database work.
pub fn request_bound(state: &AppState) -> Duration {
    Duration::from_secs(state.settings.database.request_timeout_seconds)
}

/// Middleware. A timed-out request is answered through actix's error path (the request was
/// handed to the router, which needs it alone), so the answer is the same problem+json 503.
pub async fn deadline(
    request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let bound = request
        .app_data::<web::Data<AppState>>()
        .map(|state| request_bound(state));
    let is_upload = request
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"multipart/"));
    match bound {
        Some(bound) if !is_upload => match tokio::time::timeout(bound, next.call(request)).await {
            Ok(response) => response,
            Err(_) => Err(ApiError::from(DbError::timed_out(bound)).into()),
        },
        _ => next.call(request).await,
    }
}
