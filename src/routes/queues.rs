//! The staff side of processing: queues with counts, a queue page, claiming, and one
//! application (open, reveal, attachments, notes, transitions, assignment, revision diff).
//! Every handler passes the caller's divisions down; the domain puts them in the SQL.

use actix_web::{HttpResponse, get, post, web};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::extract::{Body, StaffAuth};
use crate::error::ApiError;
use crate::queues::diff::Change;
use crate::queues::processing::{self, FieldComment, Note, StaffAction, StaffSubmission};
use crate::queues::{self, AssigneeFilter, PageFilter, QueueItem, QueuePage, QueueSummary};
use crate::state::AppState;
use crate::submissions::lifecycle::Status;

/// The queues I may see (my divisions' queues), with counts of new, in-progress, returned,
/// overdue and due-soon work.
#[utoipa::path(tag = "staff", responses((status = 200, body = [QueueSummary])), security(("bearer" = [])))]
#[get("/staff/queues")]
pub async fn list_queues(
    state: web::Data<AppState>,
    auth: StaffAuth,
) -> Result<web::Json<Vec<QueueSummary>>, ApiError> {
    let mut connection = crate::db::connection(&state.pool).await?;
    Ok(web::Json(
        queues::queues_for(
            &mut connection,
            &state.catalog,
            &state.calendar,
            auth.viewer(),
        )
        .await?,
    ))
}

#[derive(Deserialize, IntoParams)]
pub struct PageQuery {
    pub status: Option<Status>,
    /// A procedure id.
    pub procedure: Option<String>,
    /// `me`, `none` (unclaimed) or a staff id.
    pub assignee: Option<String>,
    /// true: only overdue items; false: only the others.
    pub overdue: Option<bool>,
    /// Submitted on or after (YYYY-MM-DD, city time).
    pub from: Option<NaiveDate>,
    /// Submitted on or before (YYYY-MM-DD, city time).
    pub to: Option<NaiveDate>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// 1–200, default 50.
    pub limit: Option<i64>,
}

/// A queue page, oldest first, keyset-paginated. No answers in lists.
#[utoipa::path(
    tag = "staff",
    params(("queue" = String, Path), PageQuery),
    responses((status = 200, body = QueuePage), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = []))
)]
#[get("/staff/queues/{queue}/submissions")]
pub async fn queue_page(
    state: web::Data<AppState>,
    auth: StaffAuth,
    queue: web::Path<String>,
    query: web::Query<PageQuery>,
) -> Result<web::Json<QueuePage>, ApiError> {
    let query = query.into_inner();
    let assignee = query
        .assignee
        .as_deref()
        .map(str::parse::<AssigneeFilter>)
        .transpose()?;
    let filter = PageFilter {
        status: query.status,
        procedure: query.procedure,
        assignee,
        overdue: query.overdue,
        from: query.from,
        to: query.to,
        due_by: None,
        cursor: query.cursor,
        limit: query.limit,
    };
    let mut connection = crate::db::connection(&state.pool).await?;
    Ok(web::Json(
        queues::page(
            &mut connection,
            &state.catalog,
            auth.viewer(),
            &queue,
            filter,
        )
        .await?,
    ))
}

/// Claims the oldest unclaimed submitted item of the queue: 200 with it, 204 when nothing is
/// left. Safe under concurrency: each item goes to exactly one caller.
#[utoipa::path(
    tag = "staff",
    params(("queue" = String, Path)),
    responses((status = 200, body = QueueItem), (status = 204), (status = 404, body = crate::error::Problem)),
    security(("bearer" = []))
)]
#[post("/staff/queues/{queue}/claim")]
pub async fn claim(
    state: web::Data<AppState>,
    auth: StaffAuth,
    queue: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let mut connection = crate::db::connection(&state.pool).await?;
    match queues::claim(&mut connection, &state.catalog, auth.viewer(), &queue).await? {
        Some(item) => Ok(HttpResponse::Ok().json(item)),
        None => Ok(HttpResponse::NoContent().finish()),
    }
}

/// One application with its answers (My Numbers masked), history, revisions, notes and
/// attachments. Every call is written to the access log the resident can read.
#[utoipa::path(
    tag = "staff",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = StaffSubmission), (status = 404, body = crate::error::Problem)),
    security(("bearer" = []))
)]
#[get("/staff/submissions/{id}")]
pub async fn open(
    state: web::Data<AppState>,
    auth: StaffAuth,
    id: web::Path<Uuid>,
) -> Result<web::Json<StaffSubmission>, ApiError> {
    let mut connection = crate::db::connection(&state.pool).await?;
    Ok(web::Json(
        processing::open(&mut connection, &state.submissions(), auth.viewer(), *id).await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevealRequest {
    /// JSON pointer of the My Number in the answers, e.g. `/my_number`.
    pub field_path: String,
    /// Why it is needed; recorded and shown to the resident.
    pub reason: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Revealed {
    pub field_path: String,
    pub my_number: String,
}

/// Reveals one My Number: the assignee, or a supervisor or admin of the division (403
/// `staff.not_assignee`); while the application is open, unless a supervisor or admin (409
/// `my_number.application_closed`); with a reason of at least 10 characters (422 `required` or
/// `too_vague` at `/reason`); at most `staff.my_number_reveals_per_hour` an hour per staff member
/// (429 `my_number.reveal_limit`). The reveal and its reason are recorded in the access log.
#[utoipa::path(
    tag = "staff",
    params(("id" = Uuid, Path)),
    request_body = RevealRequest,
    responses((status = 200, body = Revealed), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem), (status = 429, body = crate::error::Problem)),
    security(("bearer" = []))
)]
#[post("/staff/submissions/{id}/reveal")]
pub async fn reveal(
    state: web::Data<AppState>,
    auth: StaffAuth,
    id: web::Path<Uuid>,
    body: Body<RevealRequest>,
) -> Result<web::Json<Revealed>, ApiError> {
    let body = body.into_inner();
    let mut connection = crate::db::connection(&state.pool).await?;
    let my_number = processing::reveal(
        &mut connection,
        &state.sealer,
        auth.viewer(),
        *id,
        &body.field_path,
        body.reason.as_deref(),
        state.settings.staff.my_number_reveals_per_hour,
    )
    .await?;
    Ok(web::Json(Revealed {
        field_path: body.field_path,
        my_number,
    }))
}

/// Downloads an attachment of an application of my divisions (logged).
#[utoipa::path(
    tag = "staff",
    params(("id" = Uuid, Path)),
    responses((status = 200, description = "The file, with the type its content was checked to be", content((crate::submissions::attachments::FileBytes = "application/pdf"), (crate::submissions::attachments::FileBytes = "image/jpeg"), (crate::submissions::attachments::FileBytes = "image/png"), (crate::submissions::attachments::FileBytes = "image/heic"))), (status = 404, body = crate::error::Problem)),
    security(("bearer" = []))
)]
#[get("/staff/attachments/{id}")]
pub async fn download(
    state: web::Data<AppState>,
    auth: StaffAuth,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let mut connection = crate::db::connection(&state.pool).await?;
    let (content_type, bytes) =
        processing::download_attachment(&mut connection, &state.storage, auth.viewer(), *id)
            .await?;
    Ok(super::submissions::file_response(&content_type, *id, bytes))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteRequest {
    pub body: Option<String>,
}

/// Adds an internal note; residents never see notes.
#[utoipa::path(
    tag = "staff",
    params(("id" = Uuid, Path)),
    request_body = NoteRequest,
    responses((status = 201, body = Note), (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = []))
)]
#[post("/staff/submissions/{id}/notes")]
pub async fn add_note(
    state: web::Data<AppState>,
    auth: StaffAuth,
    id: web::Path<Uuid>,
    body: Body<NoteRequest>,
) -> Result<HttpResponse, ApiError> {
    let mut connection = crate::db::connection(&state.pool).await?;
    let note =
        processing::add_note(&mut connection, auth.viewer(), *id, body.body.as_deref()).await?;
    Ok(HttpResponse::Created().json(note))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionRequest {
    pub action: StaffAction,
    /// Required for `return` and `reject`; shown to the resident.
    pub reason: Option<String>,
    /// `return` only: what to correct, per answer.
    #[serde(default)]
    pub field_comments: Vec<FieldComment>,
}

#[derive(Serialize, ToSchema)]
pub struct TransitionDone {
    pub id: Uuid,
    pub status: Status,
}

/// Moves an application through the lifecycle: start, release, return (reason, field
/// comments), complete, reject (reason). The assignee or a supervisor acts; 409 when the
/// lifecycle forbids it.
#[utoipa::path(
    tag = "staff",
    params(("id" = Uuid, Path)),
    request_body = TransitionRequest,
    responses(
        (status = 200, body = TransitionDone),
        (status = 403, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem),
        (status = 409, body = crate::error::Problem),
        (status = 422, body = crate::error::Problem),
    ),
    security(("bearer" = []))
)]
#[post("/staff/submissions/{id}/transitions")]
pub async fn transition(
    state: web::Data<AppState>,
    auth: StaffAuth,
    id: web::Path<Uuid>,
    body: Body<TransitionRequest>,
) -> Result<web::Json<TransitionDone>, ApiError> {
    let body = body.into_inner();
    let mut connection = crate::db::connection(&state.pool).await?;
    let status = processing::apply(
        &mut connection,
        &state.submissions(),
        auth.viewer(),
        *id,
        body.action,
        body.reason.as_deref(),
        &body.field_comments,
    )
    .await?;
    Ok(web::Json(TransitionDone { id: *id, status }))
}

/// Puts an application back in its queue (the assignee, or a supervisor for anyone's).
#[utoipa::path(
    tag = "staff",
    params(("id" = Uuid, Path)),
    responses((status = 200, body = TransitionDone), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem)),
    security(("bearer" = []))
)]
#[post("/staff/submissions/{id}/release")]
pub async fn release(
    state: web::Data<AppState>,
    auth: StaffAuth,
    id: web::Path<Uuid>,
) -> Result<web::Json<TransitionDone>, ApiError> {
    let mut connection = crate::db::connection(&state.pool).await?;
    let status = processing::apply(
        &mut connection,
        &state.submissions(),
        auth.viewer(),
        *id,
        StaffAction::Release,
        None,
        &[],
    )
    .await?;
    Ok(web::Json(TransitionDone { id: *id, status }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignRequest {
    pub staff_id: Uuid,
}

/// A supervisor gives an application to a member of its division.
#[utoipa::path(
    tag = "staff",
    params(("id" = Uuid, Path)),
    request_body = AssignRequest,
    responses((status = 200, body = TransitionDone), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem)),
    security(("bearer" = []))
)]
#[post("/staff/submissions/{id}/assign")]
pub async fn assign(
    state: web::Data<AppState>,
    auth: StaffAuth,
    id: web::Path<Uuid>,
    body: Body<AssignRequest>,
) -> Result<web::Json<TransitionDone>, ApiError> {
    let mut connection = crate::db::connection(&state.pool).await?;
    let status = processing::assign(&mut connection, auth.viewer(), *id, body.staff_id).await?;
    Ok(web::Json(TransitionDone { id: *id, status }))
}

/// What changed in a revision against the one before: JSON pointers with old and new values,
/// My Numbers masked. Logged as a view.
#[utoipa::path(
    tag = "staff",
    params(("id" = Uuid, Path), ("n" = i32, Path, description = "Revision number (1 = the first application)")),
    responses((status = 200, body = [Change]), (status = 404, body = crate::error::Problem)),
    security(("bearer" = []))
)]
#[get("/staff/submissions/{id}/revisions/{n}/diff")]
pub async fn revision_diff(
    state: web::Data<AppState>,
    auth: StaffAuth,
    path: web::Path<(Uuid, i32)>,
) -> Result<web::Json<Vec<Change>>, ApiError> {
    let (id, revision) = path.into_inner();
    let mut connection = crate::db::connection(&state.pool).await?;
    Ok(web::Json(
        processing::revision_diff(&mut connection, &state.sealer, auth.viewer(), id, revision)
            .await?,
    ))
}
