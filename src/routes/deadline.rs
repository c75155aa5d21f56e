//! Time bounds on every request: its body must arrive, and its database work must finish.
//!
//! `statement_timeout` is enforced by PostgreSQL, so it cannot help when the server itself stops
//! answering without closing its connections (frozen, a partition): such a request would wait
//! for as long as that lasts. Here every handler gets `database.request_timeout_seconds`; past
//! it the request is answered 503 with Retry-After.
//!
//! The body is read first, within `server.body_timeout_seconds` (408 past it), so a client that
//! sends slowly is told so rather than blamed on the database. File uploads are left out: they
//! read a large body themselves under their own bound, and their database part is bounded on
//! its own ([`crate::db::bounded`]).

use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use actix_web::middleware::Next;
use actix_web::web::{self, Bytes, BytesMut};
use actix_web::{HttpMessage, ResponseError};
use futures_util::StreamExt;

use crate::db::DbError;
use crate::error::ApiError;
use crate::state::AppState;
use crate::telemetry::{REQUEST_ID_HEADER, RequestId};

/// The bound for one request's database work.
pub fn request_bound(state: &AppState) -> Duration {
    Duration::from_secs(state.settings.database.request_timeout_seconds)
}

/// Middleware. A refused request is answered through actix's error path (the request was
/// handed to the router, which needs it alone), so the answer is the usual problem+json.
pub async fn deadline(
    mut request: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(state) = request.app_data::<web::Data<AppState>>().cloned() else {
        return passed_on(next.call(request).await);
    };
    let is_upload = request
        .headers()
        .get(CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"multipart/"));
    if is_upload {
        return passed_on(next.call(request).await);
    }
    if has_body(&request) {
        let server = &state.settings.server;
        let bound = Duration::from_secs(server.body_timeout_seconds);
        let payload = request.take_payload();
        // Still ours: a refusal here is answered directly.
        match tokio::time::timeout(bound, read_body(payload, server.max_json_body_bytes)).await {
            Ok(Ok(body)) => request.set_payload(actix_web::dev::Payload::from(body)),
            Ok(Err(error)) => return Ok(request.error_response(error).map_into_right_body()),
            Err(_) => {
                return Ok(request
                    .error_response(body_too_slow())
                    .map_into_right_body());
            }
        }
    }
    let bound = request_bound(&state);
    let request_id = request.extensions().get::<RequestId>().cloned();
    match tokio::time::timeout(bound, next.call(request)).await {
        Ok(response) => passed_on(response),
        Err(_) => Err(Refused {
            error: DbError::timed_out(bound).into(),
            request_id,
        }
        .into()),
    }
}

fn passed_on<B>(
    response: Result<ServiceResponse<B>, actix_web::Error>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    response.map(ServiceResponse::map_into_left_body)
}

fn has_body(request: &ServiceRequest) -> bool {
    let headers = request.headers();
    headers.contains_key(TRANSFER_ENCODING)
        || headers
            .get(CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|length| length.trim() != "0")
}

/// The whole body, refused with 413 as soon as it grows past `limit`.
async fn read_body(
    mut payload: actix_web::dev::Payload,
    limit: usize,
) -> Result<Bytes, actix_web::Error> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk?;
        if body.len() + chunk.len() > limit {
            return Err(crate::error::handlers::payload_too_large().into());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

fn body_too_slow() -> ApiError {
    ApiError::client(
        StatusCode::REQUEST_TIMEOUT,
        "request.body_timeout",
        "送信に時間がかかりすぎたため中断しました。通信環境を確認して、もう一度送ってください。",
        "The request took too long to arrive; check the connection and send it again.",
    )
}

/// The request bound's refusal leaves as an error (the router holds the request), past the
/// middleware that adds the request id to responses: it carries the id itself.
#[derive(Debug)]
struct Refused {
    error: ApiError,
    request_id: Option<RequestId>,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(formatter)
    }
}

impl ResponseError for Refused {
    fn status_code(&self) -> StatusCode {
        self.error.status_code()
    }

    fn error_response(&self) -> actix_web::HttpResponse {
        let mut response = self.error.error_response();
        if let Some(RequestId(id)) = &self.request_id {
            response.headers_mut().insert(
                actix_web::http::header::HeaderName::from_static(REQUEST_ID_HEADER),
                id.clone(),
            );
        }
        response
    }
}
