//! Processing one application: open it (audited), reveal a My Number (audited, with a reason),
//! download an attachment (audited), notes, transitions (start, release, return with field
//! comments, complete, reject), assignment, and the diff between revisions.
//!
//! Every function finds the application with `division = ANY(<the viewer's divisions>)` in the
//! WHERE of the same statement, so another division's application is "not found", and writes
//! its audit row, event and notices in the transaction of the change.

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::diff::{self, Change};
use super::{QueueError, Viewer, is_overdue};
use crate::db::schema::{
    access_log, attachments, staff, staff_memberships, staff_notes, submission_events,
    submission_revisions, submissions,
};
use crate::forms::lint::city_today;
use crate::identity::staff::Role;
use crate::messages::Localized;
use crate::submissions::attachments::{AttachmentInfo, Storage};
use crate::submissions::lifecycle::{Action, Status};
use crate::submissions::sealing::{self, Scope, Sealer};
use crate::submissions::{
    ActorKind, Context, SubmissionError, SubmissionRef, notify_change, transition_with_comments,
};

const MAX_REASON: usize = 1000;
const MAX_NOTE: usize = 4000;

/// What the audit trail records; the resident sees these in their access log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessAction {
    View,
    RevealMyNumber,
    DownloadAttachment,
}

impl AccessAction {
    fn as_str(self) -> &'static str {
        match self {
            Self::View => "view",
            Self::RevealMyNumber => "reveal_my_number",
            Self::DownloadAttachment => "download_attachment",
        }
    }
}

async fn audit(
    connection: &mut AsyncPgConnection,
    submission_id: Uuid,
    staff_id: Uuid,
    action: AccessAction,
    reason: Option<&str>,
) -> Result<(), diesel::result::Error> {
    diesel::insert_into(access_log::table)
        .values((
            access_log::submission_id.eq(submission_id),
            access_log::staff_id.eq(staff_id),
            access_log::action.eq(action.as_str()),
            access_log::reason.eq(reason),
        ))
        .execute(connection)
        .await?;
    Ok(())
}

/// The essentials of an application the viewer may touch.
struct Located {
    id: Uuid,
    reference: String,
    procedure_id: String,
    status: Status,
    division: String,
    resident_id: Uuid,
    assignee_id: Option<Uuid>,
}

type LocatedRow = (Uuid, String, String, String, String, Uuid, Option<Uuid>);

/// Finds `id` among the viewer's divisions, locking the row when a change follows.
async fn locate(
    connection: &mut AsyncPgConnection,
    viewer: Viewer<'_>,
    id: Uuid,
    lock: bool,
) -> Result<Located, QueueError> {
    let query = submissions::table
        .filter(submissions::id.eq(id))
        .filter(submissions::division.eq_any(viewer.divisions()))
        .select((
            submissions::id,
            submissions::reference,
            submissions::procedure_id,
            submissions::status,
            submissions::division,
            submissions::resident_id,
            submissions::assignee_id,
        ));
    let row: Option<LocatedRow> = if lock {
        query.for_update().first(connection).await.optional()?
    } else {
        query.first(connection).await.optional()?
    };
    let (id, reference, procedure_id, status, division, resident_id, assignee_id) =
        row.ok_or(QueueError::NotFound)?;
    Ok(Located {
        id,
        reference,
        procedure_id,
        status: Status::parse(&status).ok_or(QueueError::NotFound)?,
        division,
        resident_id,
        assignee_id,
    })
}

fn required(path: &str, value: Option<&str>, max: usize) -> Result<String, QueueError> {
    let text = value.map(str::trim).unwrap_or_default();
    if text.is_empty() {
        return Err(QueueError::field(
            path,
            "required",
            crate::messages::message("required", None),
        ));
    }
    if text.chars().count() > max {
        return Err(QueueError::field(
            path,
            "too_long",
            crate::messages::message("too_long", None),
        ));
    }
    Ok(text.to_owned())
}

/// Like [`required`], but absent or blank is `None`.
fn optional(path: &str, value: Option<&str>, max: usize) -> Result<Option<String>, QueueError> {
    match value.map(str::trim).filter(|text| !text.is_empty()) {
        Some(text) => required(path, Some(text), max).map(Some),
        None => Ok(None),
    }
}

#[derive(Debug, Clone, Serialize, Queryable, ToSchema)]
pub struct StaffEvent {
    pub from_status: Option<String>,
    pub to_status: String,
    pub actor_kind: String,
    pub actor_id: Option<Uuid>,
    pub reason: Option<String>,
    /// On a return: `[{path, comment}]`.
    #[schema(value_type = Option<Vec<Object>>)]
    pub comments: Option<Value>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Queryable, ToSchema)]
pub struct RevisionInfo {
    pub revision: i32,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Queryable, ToSchema)]
pub struct Note {
    pub id: Uuid,
    pub staff_id: Uuid,
    pub staff_name: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
}

/// The staff view of one application: answers (My Numbers masked), history, revisions, internal
/// notes and attachments.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StaffSubmission {
    pub id: Uuid,
    pub reference: String,
    pub procedure_id: String,
    pub procedure_title: Localized,
    pub content_hash: String,
    pub status: Status,
    pub queue: String,
    pub division: String,
    pub assignee_id: Option<Uuid>,
    pub fee_yen: i64,
    pub submitted_at: DateTime<Utc>,
    pub due_date: Option<NaiveDate>,
    pub overdue: bool,
    pub returned_at: Option<DateTime<Utc>>,
    pub revision: i32,
    /// My Numbers appear masked (`********9018`); reveal one with a reason.
    #[schema(value_type = Object)]
    pub data: Value,
    pub history: Vec<StaffEvent>,
    pub revisions: Vec<RevisionInfo>,
    pub notes: Vec<Note>,
    pub attachments: Vec<AttachmentInfo>,
    /// Who the card says the applicant is (procedures that need an identity): compare it with
    /// the answers instead of asking for a copy of an ID.
    pub verified_identity: Option<crate::identity::facts::VouchedFacts>,
}

type DetailRow = (
    Uuid,
    String,
    String,
    String,
    String,
    String,
    String,
    Option<Uuid>,
    i64,
    DateTime<Utc>,
    Option<NaiveDate>,
    Option<DateTime<Utc>>,
    i32,
    Value,
);

async fn notes(
    connection: &mut AsyncPgConnection,
    submission_id: Uuid,
) -> Result<Vec<Note>, diesel::result::Error> {
    staff_notes::table
        .inner_join(staff::table)
        .filter(staff_notes::submission_id.eq(submission_id))
        .order((staff_notes::created_at, staff_notes::id))
        .select((
            staff_notes::id,
            staff_notes::staff_id,
            staff::display_name,
            staff_notes::body,
            staff_notes::created_at,
        ))
        .load(connection)
        .await
}

/// Opens an application for a staff member of its division; the view is written to the access
/// log (which the resident can read) in the same transaction.
pub async fn open(
    connection: &mut AsyncPgConnection,
    context: &Context<'_>,
    viewer: Viewer<'_>,
    id: Uuid,
) -> Result<StaffSubmission, QueueError> {
    let divisions = viewer.divisions();
    connection
        .transaction::<StaffSubmission, QueueError, _>(|connection| {
            Box::pin(async move {
                let row: DetailRow = submissions::table
                    .filter(submissions::id.eq(id))
                    .filter(submissions::division.eq_any(&divisions))
                    .select((
                        submissions::id,
                        submissions::reference,
                        submissions::procedure_id,
                        submissions::content_hash,
                        submissions::status,
                        submissions::queue,
                        submissions::division,
                        submissions::assignee_id,
                        submissions::fee_yen,
                        submissions::submitted_at,
                        submissions::due_date,
                        submissions::returned_at,
                        submissions::revision,
                        submissions::data,
                    ))
                    .first(connection)
                    .await
                    .optional()?
                    .ok_or(QueueError::NotFound)?;
                let (
                    id,
                    reference,
                    procedure_id,
                    content_hash,
                    status,
                    queue,
                    division,
                    assignee_id,
                    fee_yen,
                    submitted_at,
                    due_date,
                    returned_at,
                    revision,
                    data,
                ) = row;
                audit(connection, id, viewer.id, AccessAction::View, None).await?;
                let history: Vec<StaffEvent> = submission_events::table
                    .filter(submission_events::submission_id.eq(id))
                    .order(submission_events::id)
                    .select((
                        submission_events::from_status,
                        submission_events::to_status,
                        submission_events::actor_kind,
                        submission_events::actor_id,
                        submission_events::reason,
                        submission_events::comments,
                        submission_events::created_at,
                    ))
                    .load(connection)
                    .await?;
                let revisions: Vec<RevisionInfo> = submission_revisions::table
                    .filter(submission_revisions::submission_id.eq(id))
                    .order(submission_revisions::revision)
                    .select((
                        submission_revisions::revision,
                        submission_revisions::created_at,
                    ))
                    .load(connection)
                    .await?;
                let notes = notes(connection, id).await?;
                let attachments =
                    crate::submissions::attachments::for_submission(connection, id).await?;
                let verified_identity =
                    crate::identity::facts::of_submission(connection, id).await?;
                let status = Status::parse(&status).ok_or(QueueError::NotFound)?;
                tracing::info!(submission_id = %id, staff_id = %viewer.id, "opened by staff");
                Ok(StaffSubmission {
                    id,
                    reference,
                    procedure_title: context.catalog.get(&procedure_id).map_or_else(
                        || Localized::new(procedure_id.clone(), procedure_id.clone()),
                        |p| p.definition.title.clone(),
                    ),
                    data: sealing::mask_answers(
                        context.sealer,
                        &data,
                        &Scope::revision(&procedure_id, id, revision),
                    ),
                    procedure_id,
                    content_hash,
                    status,
                    queue,
                    division,
                    assignee_id,
                    fee_yen,
                    submitted_at,
                    due_date,
                    overdue: is_overdue(status, due_date, city_today()),
                    returned_at,
                    revision,
                    history,
                    revisions,
                    notes,
                    attachments,
                    verified_identity,
                })
            })
        })
        .await
}

/// The fewest characters a reveal's reason needs after trimming, and how many of them must be
/// letters or digits (of any script), so "." or "確認" does not pass for a reason.
const MIN_REASON_CHARS: usize = 10;
const MIN_REASON_WORD_CHARS: usize = 5;

/// Refuses a reveal reason too short or too empty to tell anyone why the number was needed.
fn specific_enough(reason: &str) -> Result<(), QueueError> {
    let word_chars = reason.chars().filter(|c| c.is_alphanumeric()).count();
    if reason.chars().count() >= MIN_REASON_CHARS && word_chars >= MIN_REASON_WORD_CHARS {
        return Ok(());
    }
    Err(QueueError::field(
        "/reason",
        "too_vague",
        Localized::new(
            format!("理由を具体的に（{MIN_REASON_CHARS}文字以上で）書いてください。"),
            format!("Give a specific reason, of at least {MIN_REASON_CHARS} characters."),
        ),
    ))
}

/// The clear My Number at `field_path` (a JSON pointer into the answers). Only the assignee, or
/// a supervisor or admin of the division, may reveal it; only while the application is open,
/// except for supervisors and admins; with a specific reason; and no more than `per_hour` times
/// an hour per staff member, counted from the access log (so the limit holds across servers).
/// The reveal and its reason go to the access log in the same transaction.
pub async fn reveal(
    connection: &mut AsyncPgConnection,
    sealer: &Sealer,
    viewer: Viewer<'_>,
    id: Uuid,
    field_path: &str,
    reason: Option<&str>,
    per_hour: i64,
) -> Result<String, QueueError> {
    let reason = required("/reason", reason, MAX_REASON)?;
    specific_enough(&reason)?;
    let field_path = field_path.to_owned();
    let divisions = viewer.divisions();
    connection
        .transaction::<String, QueueError, _>(|connection| {
            Box::pin(async move {
                let (procedure_id, revision, data, status, division, assignee_id): (
                    String,
                    i32,
                    Value,
                    String,
                    String,
                    Option<Uuid>,
                ) = submissions::table
                    .filter(submissions::id.eq(id))
                    .filter(submissions::division.eq_any(&divisions))
                    .select((
                        submissions::procedure_id,
                        submissions::revision,
                        submissions::data,
                        submissions::status,
                        submissions::division,
                        submissions::assignee_id,
                    ))
                    .first(connection)
                    .await
                    .optional()?
                    .ok_or(QueueError::NotFound)?;
                let supervising = viewer.role_in(&division) >= Some(Role::Supervisor);
                if !supervising && assignee_id != Some(viewer.id) {
                    return Err(QueueError::NotAssignee);
                }
                let open = Status::parse(&status).is_some_and(|status| !status.is_final());
                if !open && !supervising {
                    return Err(QueueError::RevealClosed);
                }
                // One reveal of a staff member at a time, whichever server takes it, so two at
                // once cannot both see room for one more.
                diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                    .bind::<diesel::sql_types::Text, _>(format!("reveal:{}", viewer.id))
                    .execute(connection)
                    .await?;
                let within_the_hour: i64 = access_log::table
                    .filter(access_log::staff_id.eq(viewer.id))
                    .filter(access_log::action.eq(AccessAction::RevealMyNumber.as_str()))
                    .filter(access_log::created_at.gt(Utc::now() - chrono::Duration::hours(1)))
                    .count()
                    .get_result(connection)
                    .await?;
                if within_the_hour >= per_hour {
                    return Err(QueueError::RevealLimit);
                }
                let not_a_my_number = || {
                    QueueError::field(
                        "/field_path",
                        "not_my_number",
                        Localized::new(
                            "指定された項目はマイナンバーではありません。",
                            "There is no My Number at this path.",
                        ),
                    )
                };
                let sealed = data
                    .pointer(&field_path)
                    .and_then(Value::as_str)
                    .filter(|text| Sealer::is_sealed(text))
                    .ok_or_else(not_a_my_number)?;
                // The sealing bound the procedure, this application's current revision and the
                // field's pointer: a value moved here from elsewhere does not open.
                let scope = Scope::revision(&procedure_id, id, revision);
                let plain = sealer.open(sealed, &scope, &field_path).map_err(|error| {
                    sealing::integrity_alarm(&scope, &field_path, &error);
                    QueueError::Sealing(error)
                })?;
                audit(
                    connection,
                    id,
                    viewer.id,
                    AccessAction::RevealMyNumber,
                    Some(&reason),
                )
                .await?;
                tracing::info!(submission_id = %id, staff_id = %viewer.id, "my number revealed");
                Ok(plain)
            })
        })
        .await
}

/// An attachment of an application of the viewer's divisions, logged as a download.
pub async fn download_attachment(
    connection: &mut AsyncPgConnection,
    storage: &Storage,
    viewer: Viewer<'_>,
    attachment_id: Uuid,
) -> Result<(String, bytes::Bytes), QueueError> {
    let divisions = viewer.divisions();
    connection
        .transaction::<(String, bytes::Bytes), QueueError, _>(|connection| {
            Box::pin(async move {
                let (submission_id, content_type, key): (Uuid, String, String) = attachments::table
                    .inner_join(submissions::table)
                    .filter(attachments::id.eq(attachment_id))
                    .filter(submissions::division.eq_any(&divisions))
                    .select((
                        submissions::id,
                        attachments::content_type,
                        attachments::storage_key,
                    ))
                    .first(connection)
                    .await
                    .optional()?
                    .ok_or(QueueError::NotFound)?;
                audit(
                    connection,
                    submission_id,
                    viewer.id,
                    AccessAction::DownloadAttachment,
                    None,
                )
                .await?;
                // A failed read rolls the record of the view back with it.
                let bytes = storage
                    .get(&key)
                    .await
                    .map_err(|error| QueueError::Submission(SubmissionError::Storage(error)))?;
                Ok((content_type, bytes))
            })
        })
        .await
}

/// Adds an internal note (never shown to the resident).
pub async fn add_note(
    connection: &mut AsyncPgConnection,
    viewer: Viewer<'_>,
    id: Uuid,
    body: Option<&str>,
) -> Result<Note, QueueError> {
    let body = required("/body", body, MAX_NOTE)?;
    connection
        .transaction::<Note, QueueError, _>(|connection| {
            Box::pin(async move {
                let located = locate(connection, viewer, id, false).await?;
                let note_id = Uuid::now_v7();
                diesel::insert_into(staff_notes::table)
                    .values((
                        staff_notes::id.eq(note_id),
                        staff_notes::submission_id.eq(located.id),
                        staff_notes::staff_id.eq(viewer.id),
                        staff_notes::body.eq(&body),
                    ))
                    .execute(connection)
                    .await?;
                notes(connection, located.id)
                    .await?
                    .into_iter()
                    .find(|note| note.id == note_id)
                    .ok_or(QueueError::NotFound)
            })
        })
        .await
}

/// What staff may do to an application through `…/transitions`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StaffAction {
    /// Take it up (the caller becomes the assignee).
    Start,
    /// Put it back in the queue unprocessed.
    Release,
    /// Ask the resident for corrections (reason required; field comments optional).
    Return,
    Complete,
    /// Refuse (reason required).
    Reject,
}

impl StaffAction {
    fn lifecycle(self) -> Action {
        match self {
            Self::Start => Action::Start,
            Self::Release => Action::Release,
            Self::Return => Action::Return,
            Self::Complete => Action::Complete,
            Self::Reject => Action::Reject,
        }
    }

    /// The notice event the change causes.
    fn event(self) -> Option<&'static str> {
        match self {
            Self::Return => Some("returned"),
            Self::Complete => Some("completed"),
            Self::Reject => Some("rejected"),
            Self::Start | Self::Release => None,
        }
    }
}

/// A comment on one answer, for the resident to correct.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldComment {
    /// JSON pointer of the answer, e.g. `/children/0/birth_date`.
    pub path: String,
    pub comment: String,
}

fn check_comments(action: StaffAction, comments: &[FieldComment]) -> Result<(), QueueError> {
    if comments.is_empty() {
        return Ok(());
    }
    if action != StaffAction::Return {
        return Err(QueueError::field(
            "/field_comments",
            "not_allowed",
            Localized::new(
                "項目へのコメントは差し戻しのときだけ付けられます。",
                "Field comments go with a return only.",
            ),
        ));
    }
    let mut errors = Vec::new();
    for (index, comment) in comments.iter().enumerate() {
        if !comment.path.starts_with('/') || comment.path.len() > 300 {
            errors.push(crate::messages::FieldError {
                path: format!("/field_comments/{index}/path"),
                code: "pattern_mismatch".to_owned(),
                message: Localized::new(
                    "項目は JSON ポインタ（/ で始まる）で指定してください。",
                    "Name the answer with a JSON pointer starting with /.",
                ),
            });
        }
        let text = comment.comment.trim();
        if text.is_empty() || text.chars().count() > MAX_REASON {
            let code = if text.is_empty() {
                "required"
            } else {
                "too_long"
            };
            errors.push(crate::messages::FieldError::new(
                &format!("/field_comments/{index}/comment"),
                code,
            ));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(QueueError::Invalid(errors))
    }
}

/// May the viewer act on work assigned to `assignee`? The assignee may; a supervisor (or admin)
/// of the division may act on anyone's.
fn may_act(viewer: Viewer<'_>, located: &Located) -> Result<(), QueueError> {
    let role = viewer
        .role_in(&located.division)
        .ok_or(QueueError::NotFound)?;
    if located.assignee_id == Some(viewer.id) || role >= Role::Supervisor {
        Ok(())
    } else {
        Err(QueueError::NotAssignee)
    }
}

/// Moves an application through the lifecycle for a staff member of its division, with the
/// event, the assignment change, the pause of the clock on a return, and the notices, all in one
/// transaction. Returns the new status.
pub async fn apply(
    connection: &mut AsyncPgConnection,
    context: &Context<'_>,
    viewer: Viewer<'_>,
    id: Uuid,
    action: StaffAction,
    reason: Option<&str>,
    comments: &[FieldComment],
) -> Result<Status, QueueError> {
    let reason = match action {
        StaffAction::Return | StaffAction::Reject => Some(required("/reason", reason, MAX_REASON)?),
        _ => optional("/reason", reason, MAX_REASON)?,
    };
    check_comments(action, comments)?;
    let comments =
        (!comments.is_empty()).then(|| serde_json::to_value(comments).unwrap_or(Value::Null));
    connection
        .transaction::<Status, QueueError, _>(|connection| {
            Box::pin(async move {
                let located = locate(connection, viewer, id, true).await?;
                if action != StaffAction::Start {
                    may_act(viewer, &located)?;
                }
                let (_, to) = transition_with_comments(
                    connection,
                    located.id,
                    action.lifecycle(),
                    ActorKind::Staff,
                    Some(viewer.id),
                    reason.as_deref(),
                    comments.as_ref(),
                )
                .await?;
                let target = submissions::table.find(located.id);
                match action {
                    StaffAction::Start => {
                        diesel::update(target)
                            .set(submissions::assignee_id.eq(viewer.id))
                            .execute(connection)
                            .await?;
                    }
                    StaffAction::Release => {
                        diesel::update(target)
                            .set(submissions::assignee_id.eq(None::<Uuid>))
                            .execute(connection)
                            .await?;
                    }
                    // The clock stops while the resident has it; whoever picks up the answer
                    // claims it afresh.
                    StaffAction::Return => {
                        diesel::update(target)
                            .set((
                                submissions::returned_at.eq(Utc::now()),
                                submissions::assignee_id.eq(None::<Uuid>),
                            ))
                            .execute(connection)
                            .await?;
                    }
                    StaffAction::Complete | StaffAction::Reject => {}
                }
                if let (Some(event), Some(procedure)) =
                    (action.event(), context.catalog.get(&located.procedure_id))
                {
                    let submission = SubmissionRef {
                        id: located.id,
                        reference: located.reference.clone(),
                        procedure,
                        status: to,
                        division: located.division.clone(),
                        resident_id: located.resident_id,
                    };
                    notify_change(connection, context, &submission, event).await?;
                }
                tracing::info!(submission_id = %located.id, staff_id = %viewer.id, to = to.as_str(), "transition");
                Ok(to)
            })
        })
        .await
}

/// A supervisor gives an application to a member of its division. A `submitted` one is started
/// (in progress) on the way; an `in_progress` one changes hands.
pub async fn assign(
    connection: &mut AsyncPgConnection,
    viewer: Viewer<'_>,
    id: Uuid,
    staff_id: Uuid,
) -> Result<Status, QueueError> {
    connection
        .transaction::<Status, QueueError, _>(|connection| {
            Box::pin(async move {
                let located = locate(connection, viewer, id, true).await?;
                let role = viewer
                    .role_in(&located.division)
                    .ok_or(QueueError::NotFound)?;
                if role < Role::Supervisor {
                    return Err(QueueError::RoleRequired);
                }
                let member: i64 = staff_memberships::table
                    .inner_join(staff::table)
                    .filter(staff_memberships::staff_id.eq(staff_id))
                    .filter(staff_memberships::division.eq(&located.division))
                    .filter(staff::active.eq(true))
                    .count()
                    .get_result(connection)
                    .await?;
                if member == 0 {
                    return Err(QueueError::field(
                        "/staff_id",
                        "not_a_member",
                        Localized::new(
                            "この課の職員ではありません。",
                            "This person is not a member of the division.",
                        ),
                    ));
                }
                let status = match located.status {
                    Status::Submitted => {
                        transition_with_comments(
                            connection,
                            located.id,
                            Action::Start,
                            ActorKind::Staff,
                            Some(viewer.id),
                            None,
                            None,
                        )
                        .await?
                        .1
                    }
                    Status::InProgress => Status::InProgress,
                    from => {
                        return Err(SubmissionError::NotAllowed {
                            from,
                            action: Action::Start,
                        }
                        .into());
                    }
                };
                diesel::update(submissions::table.find(located.id))
                    .set((
                        submissions::assignee_id.eq(staff_id),
                        submissions::updated_at.eq(Utc::now()),
                    ))
                    .execute(connection)
                    .await?;
                tracing::info!(submission_id = %located.id, staff_id = %viewer.id, assignee = %staff_id, "assigned");
                Ok(status)
            })
        })
        .await
}

/// The procedure of an application of the viewer's divisions (no view is recorded: nothing of
/// the answers is read).
pub async fn procedure_of(
    connection: &mut AsyncPgConnection,
    viewer: Viewer<'_>,
    id: Uuid,
) -> Result<String, QueueError> {
    Ok(locate(connection, viewer, id, false).await?.procedure_id)
}

/// What changed in revision `revision` against the one before (revision 1: against nothing).
/// My Numbers are masked; the look is logged as a view.
pub async fn revision_diff(
    connection: &mut AsyncPgConnection,
    sealer: &Sealer,
    viewer: Viewer<'_>,
    id: Uuid,
    revision: i32,
) -> Result<Vec<Change>, QueueError> {
    connection
        .transaction::<Vec<Change>, QueueError, _>(|connection| {
            Box::pin(async move {
                let located = locate(connection, viewer, id, false).await?;
                let rows: Vec<(i32, Value)> = submission_revisions::table
                    .filter(submission_revisions::submission_id.eq(located.id))
                    .filter(submission_revisions::revision.eq_any([revision - 1, revision]))
                    .select((submission_revisions::revision, submission_revisions::data))
                    .load(connection)
                    .await?;
                let new = rows
                    .iter()
                    .find(|(n, _)| *n == revision)
                    .map(|(_, data)| data)
                    .ok_or(QueueError::NotFound)?;
                let empty = Value::Object(serde_json::Map::new());
                let old = rows
                    .iter()
                    .find(|(n, _)| *n == revision - 1)
                    .map_or(&empty, |(_, data)| data);
                audit(connection, located.id, viewer.id, AccessAction::View, None).await?;
                let scope = |revision| Scope::revision(&located.procedure_id, located.id, revision);
                Ok(diff::changes(
                    sealer,
                    (&scope(revision - 1), old),
                    (&scope(revision), new),
                ))
            })
        })
        .await
}
