//! The resident's side: apply, drafts, attachments, my applications, withdraw, access log.

use actix_multipart::Multipart;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, delete, get, post, put, web};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::extract::{Body, OptionalBody, ResidentAuth};
use crate::error::ApiError;
use crate::forms::{Assurance, Procedure};
use crate::identity::AuthError;
use crate::identity::facts::{self, FactsSource, VouchedFacts};
use crate::state::AppState;
use crate::submissions::{
    self, AccessEntry, CardSignature, NewSubmission, SubmissionDetail, SubmissionError,
    SubmissionSummary, attachments, drafts, signing,
};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    /// The answers, keyed by field id.
    #[schema(value_type = Object)]
    pub data: Value,
    /// card-sign procedures: detached CMS (DER, base64) made with the card's signature
    /// certificate over the `signing_payload` returned by `…/validate` for these answers.
    pub signature: Option<String>,
    /// card-sign procedures: the `signing_nonce` returned by `…/validate` with that payload.
    pub signing_nonce: Option<String>,
    /// The draft these answers come from; it is removed once the application is stored.
    pub draft_id: Option<Uuid>,
}

/// The `Idempotency-Key` header, when present and usable (1–200 characters).
fn optional_idempotency_key(request: &HttpRequest) -> Option<String> {
    request
        .headers()
        .get("idempotency-key")
        .and_then(|value| value.to_str().ok())
        .map(str::trim)
        .filter(|key| !key.is_empty() && key.len() <= 200)
        .map(str::to_owned)
}

fn idempotency_key(request: &HttpRequest) -> Result<String, ApiError> {
    optional_idempotency_key(request).ok_or_else(|| {
            ApiError::client(
                StatusCode::BAD_REQUEST,
                "request.idempotency_key_required",
                "Idempotency-Key ヘッダーを付けて送信してください（再送しても二重に申請されないようにするためです）。",
                "Send an Idempotency-Key header, so that a retry never creates a second application.",
            )
        })
}

/// The card signature (base64 CMS) of an application to a card-sign procedure, verified over
/// the exact answers, this resident's account and the nonce issued with the signing payload (the
/// nonce is used up when the application is stored). A signature sent for another procedure
/// proves nothing it asks for and is ignored. Needs no database connection, so none is held
/// while a stale CRL is fetched.
async fn verify_card_signature(
    state: &AppState,
    procedure: &Procedure,
    auth: &ResidentAuth,
    signature: Option<&str>,
    nonce: Option<&str>,
    data: &Value,
) -> Result<Option<CardSignature>, ApiError> {
    let Some(encoded) = signature.filter(|_| procedure.definition.assurance == Assurance::CardSign)
    else {
        return Ok(None);
    };
    let nonce = nonce.ok_or(SubmissionError::SigningNonce)?;
    let cms = BASE64
        .decode(encoded)
        .map_err(|_| AuthError::Malformed("`signature` must be base64".to_owned()))?;
    let verifier = state.jpki.as_ref().ok_or(AuthError::ProviderDisabled)?;
    verifier.refresh_crl_if_stale().await;
    let payload = signing::payload(procedure, data, auth.id, nonce);
    let evidence = verifier.verify_signature(&cms, &payload, chrono::Utc::now())?;
    Ok(Some(CardSignature {
        cms,
        evidence,
        nonce: nonce.to_owned(),
    }))
}

/// The basic facts to keep with an application, only for a procedure that needs an identity
/// (card-auth, card-sign): the signature certificate's when the application is signed, else
/// those the provider vouched for when this session began (none for a JPKI sign-in).
async fn vouched_facts(
    connection: &mut diesel_async::AsyncPgConnection,
    auth: &ResidentAuth,
    procedure: &Procedure,
    signature: Option<&CardSignature>,
) -> Result<Option<VouchedFacts>, ApiError> {
    if procedure.definition.assurance < Assurance::CardAuth {
        return Ok(None);
    }
    if let Some(evidence) = signature
        .map(|signature| &signature.evidence)
        .filter(|evidence| !evidence.facts.is_empty())
    {
        return Ok(Some(VouchedFacts {
            source: FactsSource::Signature,
            issuer: evidence.signer.issuer.clone(),
            facts: evidence.facts.clone(),
            verified_at: evidence.verified_at,
        }));
    }
    let Some(session) = auth.session else {
        return Ok(None);
    };
    Ok(facts::of_session(connection, session, auth.id)
        .await
        .map_err(AuthError::from)?)
}

/// Applies. 201 with the reference number; a retry with the same Idempotency-Key returns the same
/// answer and creates nothing; 422 with every field error.
#[utoipa::path(
    tag = "submissions",
    params(
        ("id" = String, Path, description = "Procedure id"),
        ("Idempotency-Key" = String, Header, description = "Unique per application attempt; reuse it for retries"),
    ),
    request_body = SubmitRequest,
    responses(
        (status = 201, description = "Stored", body = Object),
        (status = 401, body = crate::error::Problem),
        (status = 403, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem),
        (status = 422, body = crate::error::Problem),
    ),
    security(("bearer" = []))
)]
#[post("/procedures/{id}/submissions")]
pub async fn submit(
    request: HttpRequest,
    state: web::Data<AppState>,
    auth: ResidentAuth,
    id: web::Path<String>,
    body: Body<SubmitRequest>,
) -> Result<HttpResponse, ApiError> {
    let key = idempotency_key(&request)?;
    let mut body = body.into_inner();
    let procedure = state.catalog.get(&id).ok_or_else(ApiError::not_found)?;
    if let Some(draft) = body.draft_id {
        // The answers of a resumed draft carry its My Numbers masked: put them back first, so
        // that the signature and the checks see what will be stored.
        let mut connection = crate::db::connection(&state.pool).await?;
        body.data = drafts::restore_for_submission(
            &mut connection,
            &state.sealer,
            auth.id,
            draft,
            &procedure.definition.id,
            &body.data,
        )
        .await?;
    }
    let signature = verify_card_signature(
        &state,
        procedure,
        &auth,
        body.signature.as_deref(),
        body.signing_nonce.as_deref(),
        &body.data,
    )
    .await?;
    let mut connection = crate::db::connection(&state.pool).await?;
    let vouched = vouched_facts(&mut connection, &auth, procedure, signature.as_ref()).await?;
    let stored = submissions::submit(
        &mut connection,
        &state.submissions(),
        NewSubmission {
            resident_id: auth.id,
            assurance: auth.assurance,
            procedure_id: id.into_inner(),
            data: body.data,
            idempotency_key: key,
            signature,
            draft_id: body.draft_id,
            vouched,
        },
    )
    .await?;
    Ok(
        HttpResponse::build(StatusCode::from_u16(stored.status).unwrap_or(StatusCode::CREATED))
            .json(stored.body),
    )
}

/// My applications, newest first (no answers in the list).
#[utoipa::path(tag = "submissions", responses((status = 200, body = [SubmissionSummary])), security(("bearer" = [])))]
#[get("/submissions")]
pub async fn list(
    state: web::Data<AppState>,
    auth: ResidentAuth,
) -> Result<web::Json<Vec<SubmissionSummary>>, ApiError> {
    let mut connection = crate::db::connection(&state.pool).await?;
    Ok(web::Json(
        submissions::list_for_resident(&mut connection, &state.catalog, auth.id).await?,
    ))
}

/// One of my applications with its answers (My Numbers masked) and status history.
#[utoipa::path(tag = "submissions", params(("id" = Uuid, Path)), responses((status = 200, body = SubmissionDetail), (status = 404, body = crate::error::Problem)), security(("bearer" = [])))]
#[get("/submissions/{id}")]
pub async fn detail(
    state: web::Data<AppState>,
    auth: ResidentAuth,
    id: web::Path<Uuid>,
) -> Result<web::Json<SubmissionDetail>, ApiError> {
    let mut connection = crate::db::connection(&state.pool).await?;
    Ok(web::Json(
        submissions::get_for_resident(&mut connection, &state.submissions(), auth.id, *id).await?,
    ))
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct WithdrawRequest {
    pub reason: Option<String>,
}

/// Withdraws (取下げ) an application that has no decision yet; 409 after a decision. The body
/// is optional: none at all (or `null`), or a JSON object with an optional `reason`; anything
/// else is refused (400, 413, 415 or 422) and withdraws nothing.
#[utoipa::path(tag = "submissions", params(("id" = Uuid, Path)), request_body(content = Option<WithdrawRequest>, content_type = "application/json", description = "Optional: no body, null, or this object"), responses((status = 200, body = Object), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)), security(("bearer" = [])))]
#[post("/submissions/{id}/withdraw")]
pub async fn withdraw(
    state: web::Data<AppState>,
    auth: ResidentAuth,
    id: web::Path<Uuid>,
    body: OptionalBody<WithdrawRequest>,
) -> Result<HttpResponse, ApiError> {
    let reason = body
        .0
        .and_then(|body| body.reason)
        .filter(|r| !r.trim().is_empty());
    let mut connection = crate::db::connection(&state.pool).await?;
    let status =
        submissions::withdraw(&mut connection, &state.submissions(), auth.id, *id, reason).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"id": *id, "status": status})))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResubmitRequest {
    /// The corrected answers, complete (as when applying).
    #[schema(value_type = Object)]
    pub data: Value,
    /// card-sign procedures: a new signature over the `signing_payload` of these answers.
    pub signature: Option<String>,
    /// card-sign procedures: the `signing_nonce` issued with that payload.
    pub signing_nonce: Option<String>,
}

/// Answers a return (差し戻し) with corrected answers: a new revision, back to submitted, the
/// due date moved by the business days the application was with me. 409 unless returned, or
/// when the form changed since I applied (`submission.definition_changed`). With an
/// `Idempotency-Key`, a retry gets the first answer instead of the 409.
#[utoipa::path(
    tag = "submissions",
    params(
        ("id" = Uuid, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "Recommended: a retry with the same key returns the first answer"),
    ),
    request_body = ResubmitRequest,
    responses(
        (status = 200, body = Object),
        (status = 404, body = crate::error::Problem),
        (status = 409, body = crate::error::Problem),
        (status = 422, body = crate::error::Problem),
    ),
    security(("bearer" = []))
)]
#[post("/submissions/{id}/resubmit")]
pub async fn resubmit(
    request: HttpRequest,
    state: web::Data<AppState>,
    auth: ResidentAuth,
    id: web::Path<Uuid>,
    body: Body<ResubmitRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let mut connection = crate::db::connection(&state.pool).await?;
    // The procedure is only known from the application itself; the owner check is repeated in
    // the domain under a row lock.
    let procedure_id = submissions::procedure_of(&mut connection, auth.id, *id).await?;
    let procedure = state
        .catalog
        .get(&procedure_id)
        .ok_or(SubmissionError::DefinitionChanged)?;
    let signature = verify_card_signature(
        &state,
        procedure,
        &auth,
        body.signature.as_deref(),
        body.signing_nonce.as_deref(),
        &body.data,
    )
    .await?;
    let vouched = vouched_facts(&mut connection, &auth, procedure, signature.as_ref()).await?;
    let answer = submissions::resubmit(
        &mut connection,
        &state.submissions(),
        submissions::Resubmission {
            resident_id: auth.id,
            assurance: auth.assurance,
            id: *id,
            data: body.data,
            signature,
            idempotency_key: optional_idempotency_key(&request),
            vouched,
        },
    )
    .await?;
    Ok(HttpResponse::Ok().json(answer))
}

/// Which staff opened my application, and when.
#[utoipa::path(tag = "submissions", params(("id" = Uuid, Path)), responses((status = 200, body = [AccessEntry]), (status = 404, body = crate::error::Problem)), security(("bearer" = [])))]
#[get("/submissions/{id}/access-log")]
pub async fn access_log(
    state: web::Data<AppState>,
    auth: ResidentAuth,
    id: web::Path<Uuid>,
) -> Result<web::Json<Vec<AccessEntry>>, ApiError> {
    let mut connection = crate::db::connection(&state.pool).await?;
    Ok(web::Json(
        submissions::access_log_for_resident(&mut connection, auth.id, *id).await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DraftRequest {
    pub procedure_id: String,
    #[schema(value_type = Object)]
    pub data: Value,
}

/// Saves partial answers to resume later, on any device. Only what is filled in is checked.
#[utoipa::path(tag = "drafts", request_body = DraftRequest, responses((status = 201, body = drafts::Draft), (status = 422, body = crate::error::Problem)), security(("bearer" = [])))]
#[post("/drafts")]
pub async fn create_draft(
    state: web::Data<AppState>,
    auth: ResidentAuth,
    body: Body<DraftRequest>,
) -> Result<HttpResponse, ApiError> {
    let mut connection = crate::db::connection(&state.pool).await?;
    let draft = drafts::save(
        &mut connection,
        &state.submissions(),
        state.draft_limits(),
        auth.id,
        None,
        &body.procedure_id,
        &body.data,
    )
    .await?;
    Ok(HttpResponse::Created().json(draft))
}

/// My unexpired drafts.
#[utoipa::path(tag = "drafts", responses((status = 200, body = [drafts::Draft])), security(("bearer" = [])))]
#[get("/drafts")]
pub async fn list_drafts(
    state: web::Data<AppState>,
    auth: ResidentAuth,
) -> Result<web::Json<Vec<drafts::Draft>>, ApiError> {
    let mut connection = crate::db::connection(&state.pool).await?;
    Ok(web::Json(
        drafts::list(&mut connection, &state.sealer, auth.id).await?,
    ))
}

#[utoipa::path(tag = "drafts", params(("id" = Uuid, Path)), responses((status = 200, body = drafts::Draft), (status = 404, body = crate::error::Problem)), security(("bearer" = [])))]
#[get("/drafts/{id}")]
pub async fn get_draft(
    state: web::Data<AppState>,
    auth: ResidentAuth,
    id: web::Path<Uuid>,
) -> Result<web::Json<drafts::Draft>, ApiError> {
    let mut connection = crate::db::connection(&state.pool).await?;
    Ok(web::Json(
        drafts::get(&mut connection, &state.sealer, auth.id, *id).await?,
    ))
}

#[utoipa::path(tag = "drafts", params(("id" = Uuid, Path)), request_body = DraftRequest, responses((status = 200, body = drafts::Draft), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)), security(("bearer" = [])))]
#[put("/drafts/{id}")]
pub async fn update_draft(
    state: web::Data<AppState>,
    auth: ResidentAuth,
    id: web::Path<Uuid>,
    body: Body<DraftRequest>,
) -> Result<web::Json<drafts::Draft>, ApiError> {
    let mut connection = crate::db::connection(&state.pool).await?;
    Ok(web::Json(
        drafts::save(
            &mut connection,
            &state.submissions(),
            state.draft_limits(),
            auth.id,
            Some(*id),
            &body.procedure_id,
            &body.data,
        )
        .await?,
    ))
}

#[utoipa::path(tag = "drafts", params(("id" = Uuid, Path)), responses((status = 204), (status = 404, body = crate::error::Problem)), security(("bearer" = [])))]
#[delete("/drafts/{id}")]
pub async fn discard_draft(
    state: web::Data<AppState>,
    auth: ResidentAuth,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let mut connection = crate::db::connection(&state.pool).await?;
    drafts::discard(&mut connection, &state.storage, auth.id, *id).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Deserialize, IntoParams)]
pub struct UploadQuery {
    /// The file field the upload is for.
    pub field: String,
}

/// Uploads one file (multipart part `file`) for a draft's file field. The type is checked from
/// the content, not the name. Returns the id to put in the field's answer.
#[utoipa::path(tag = "drafts", params(("id" = Uuid, Path), UploadQuery), request_body(content_type = "multipart/form-data", content = Object), responses((status = 201, body = attachments::AttachmentInfo), (status = 408, body = crate::error::Problem), (status = 413, body = crate::error::Problem), (status = 422, body = crate::error::Problem)), security(("bearer" = [])))]
#[post("/drafts/{id}/attachments")]
pub async fn upload(
    state: web::Data<AppState>,
    auth: ResidentAuth,
    id: web::Path<Uuid>,
    query: web::Query<UploadQuery>,
    payload: Multipart,
) -> Result<HttpResponse, ApiError> {
    let bytes = read_file_part(payload, &state.settings).await?;
    store_upload(
        &state,
        auth,
        attachments::UploadTarget::Draft(*id),
        &query.field,
        &bytes,
    )
    .await
}

/// Uploads one file for an application returned for correction; name its id in the answers of
/// the resubmission.
#[utoipa::path(tag = "submissions", params(("id" = Uuid, Path), UploadQuery), request_body(content_type = "multipart/form-data", content = Object), responses((status = 201, body = attachments::AttachmentInfo), (status = 408, body = crate::error::Problem), (status = 409, body = crate::error::Problem), (status = 413, body = crate::error::Problem), (status = 422, body = crate::error::Problem)), security(("bearer" = [])))]
#[post("/submissions/{id}/attachments")]
pub async fn upload_for_correction(
    state: web::Data<AppState>,
    auth: ResidentAuth,
    id: web::Path<Uuid>,
    query: web::Query<UploadQuery>,
    payload: Multipart,
) -> Result<HttpResponse, ApiError> {
    let bytes = read_file_part(payload, &state.settings).await?;
    store_upload(
        &state,
        auth,
        attachments::UploadTarget::Returned(*id),
        &query.field,
        &bytes,
    )
    .await
}

/// Reads the `file` part within `server.upload_body_timeout_seconds`: a client sending its body
/// slowly (or not at all) is answered 408 instead of holding the connection open forever.
async fn read_file_part(
    payload: Multipart,
    settings: &crate::config::Settings,
) -> Result<Vec<u8>, ApiError> {
    let bound = std::time::Duration::from_secs(settings.server.upload_body_timeout_seconds);
    let limit = settings.submissions.max_attachment_mb * 1024 * 1024;
    tokio::time::timeout(bound, read_file_bytes(payload, limit))
        .await
        .unwrap_or_else(|_| {
            Err(ApiError::client(
                StatusCode::REQUEST_TIMEOUT,
                "request.body_timeout",
                "ファイルの送信に時間がかかりすぎたため中断しました。通信環境を確認して、もう一度送ってください。",
                "The file took too long to arrive; check the connection and send it again.",
            ))
        })
}

async fn read_file_bytes(mut payload: Multipart, limit: usize) -> Result<Vec<u8>, ApiError> {
    let mut bytes = Vec::new();
    while let Some(part) = payload.next().await {
        let mut part = part.map_err(|_| malformed_upload())?;
        if part.name() != Some("file") {
            continue;
        }
        while let Some(chunk) = part.next().await {
            let chunk = chunk.map_err(|_| malformed_upload())?;
            if bytes.len() + chunk.len() > limit {
                return Err(crate::error::handlers::payload_too_large());
            }
            bytes.extend_from_slice(&chunk);
        }
        break;
    }
    if bytes.is_empty() {
        return Err(malformed_upload());
    }
    Ok(bytes)
}

async fn store_upload(
    state: &AppState,
    auth: ResidentAuth,
    target: attachments::UploadTarget,
    field_id: &str,
    bytes: &[u8],
) -> Result<HttpResponse, ApiError> {
    // The body is read; from here the request is bounded like any other (see routes::deadline).
    let bound = super::deadline::request_bound(state);
    let info = crate::db::bounded(bound, async {
        let mut connection = crate::db::connection(&state.pool).await?;
        attachments::upload(
            &mut connection,
            &state.catalog,
            &state.storage,
            attachments::Upload {
                resident_id: auth.id,
                target,
                field_id,
                bytes,
                max_per_draft: state.settings.submissions.max_attachments_per_draft,
                max_pending_bytes: state
                    .settings
                    .submissions
                    .max_pending_upload_mb_per_resident
                    * 1024
                    * 1024,
            },
        )
        .await
        .map_err(ApiError::from)
    })
    .await?;
    Ok(HttpResponse::Created().json(info))
}

fn malformed_upload() -> ApiError {
    ApiError::client(
        StatusCode::BAD_REQUEST,
        "request.invalid_upload",
        "ファイルを multipart/form-data の `file` として送ってください。",
        "Send the file as the `file` part of multipart/form-data.",
    )
}

/// Downloads one of my attachments.
#[utoipa::path(tag = "drafts", params(("id" = Uuid, Path)), responses((status = 200, description = "The file, with the type its content was checked to be", content((attachments::FileBytes = "application/pdf"), (attachments::FileBytes = "image/jpeg"), (attachments::FileBytes = "image/png"), (attachments::FileBytes = "image/heic"))), (status = 404, body = crate::error::Problem)), security(("bearer" = [])))]
#[get("/attachments/{id}")]
pub async fn download(
    state: web::Data<AppState>,
    auth: ResidentAuth,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let mut connection = crate::db::connection(&state.pool).await?;
    let (content_type, bytes) =
        attachments::download_for_resident(&mut connection, &state.storage, auth.id, *id).await?;
    Ok(file_response(&content_type, *id, bytes))
}

/// An attachment as a download, never rendered inline (no stored HTML can run in our origin).
pub fn file_response(content_type: &str, id: Uuid, bytes: bytes::Bytes) -> HttpResponse {
    let mut response = HttpResponse::Ok().body(bytes);
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{id}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

impl From<SubmissionError> for actix_web::Error {
    fn from(error: SubmissionError) -> Self {
        ApiError::from(error).into()
    }
}
