//! Applications: submitting (with idempotency and card signatures), the resident's views,
//! withdrawal and answering a return, drafts and attachments.
//!
//! A submission, its first event, its first revision, its queue placement, its signature evidence
//! and its notices are written in ONE transaction: an acknowledged application is complete, and a
//! failed one leaves nothing behind.

pub mod attachments;
pub mod drafts;
mod insert;
pub mod lifecycle;
pub mod reference;
pub mod sealing;
pub mod signing;

use chrono::{DateTime, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use futures_util::TryFutureExt;
use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

use self::lifecycle::{Action, Status};
use self::sealing::{Scope, Sealer};
use crate::calendar::BusinessCalendar;
use crate::db::DbError;
use crate::db::schema::{
    access_log, attachments as attachment_rows, drafts as draft_rows, idempotency_keys, residents,
    staff, staff_memberships, submission_events, submission_revisions, submission_signatures,
    submissions,
};
use crate::forms::fees::FeeBreakdown;
use crate::forms::lint::city_today;
use crate::forms::model::PaymentTiming;
use crate::forms::model::{Field, FieldType};
use crate::forms::validate::{self, CheckOptions, Validated};
use crate::forms::{Assurance, Catalog, Procedure};
use crate::identity::facts::VouchedFacts;
use crate::identity::jpki::SignatureEvidence;
use crate::messages::{FieldError, Localized};
use crate::notify::{self, Notice, NoticeData};

#[derive(Debug, thiserror::Error)]
pub enum SubmissionError {
    #[error("not found")]
    NotFound,
    #[error("invalid answers")]
    Invalid(Vec<FieldError>),
    #[error("the idempotency key was used for a different request")]
    IdempotencyKeyReused,
    #[error("{action:?} is not possible while {from:?}")]
    NotAllowed { from: Status, action: Action },
    #[error("this procedure must be signed with the My Number Card")]
    SignatureRequired,
    #[error("this procedure needs a stronger sign-in")]
    InsufficientAssurance,
    /// The signature certificate's address shows a requester the law does not let apply
    /// online (a non-resident asking for a resident record).
    #[error("only residents of the city may request this online")]
    ResidentsOnly,
    /// The form changed since the application was made: answering a return against another
    /// version of the form would mix two sets of rules.
    #[error("the form was changed since the application was made")]
    DefinitionChanged,
    #[error("the resident keeps as many drafts as allowed")]
    DraftLimit,
    #[error("the resident's pending uploads reach their storage allowance")]
    UploadQuota,
    /// The nonce in the signed bytes was not issued to this resident, was used, or expired.
    #[error("the signing nonce is unknown, used or expired")]
    SigningNonce,
    /// Reading or writing attachment files failed (not the database).
    #[error("attachment storage failed")]
    Storage(#[source] crate::storage::StorageError),
    #[error(transparent)]
    Database(#[from] DbError),
}

impl From<diesel::result::Error> for SubmissionError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Database(DbError::classify(error))
    }
}

/// What the submission code needs from the application, borrowed.
pub struct Context<'a> {
    pub catalog: &'a Catalog,
    pub sealer: &'a Sealer,
    pub calendar: &'a BusinessCalendar,
    pub public_url: &'a str,
    /// Online payment is on: an application whose fee is due at submission waits for it.
    pub payments_online: bool,
    /// The statistics' breakdown the city opted into: what to derive from the card's facts.
    pub breakdown: &'a crate::statistics_breakdown::Breakdown,
}

/// A card signature over [`signing::payload`], verified, with the nonce its bytes carry.
#[derive(Debug, Clone)]
pub struct CardSignature {
    pub cms: Vec<u8>,
    pub evidence: SignatureEvidence,
    pub nonce: String,
}

pub struct NewSubmission {
    pub resident_id: Uuid,
    pub assurance: Assurance,
    pub procedure_id: String,
    pub data: Value,
    pub idempotency_key: String,
    /// For card-sign procedures: the verified signature.
    pub signature: Option<CardSignature>,
    /// The draft this comes from, deleted on success. The caller has put back the My Numbers
    /// the resident saw masked ([`drafts::restore_for_submission`]).
    pub draft_id: Option<Uuid>,
    /// Who the card says the applicant is, for procedures that need an identity.
    pub vouched: Option<VouchedFacts>,
}

/// The answer to a submission request, stored with the idempotency key and replayed verbatim.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResponse {
    pub status: u16,
    pub body: Value,
}

/// Checks the sign-in against the procedure before anything else is looked at.
pub fn check_assurance(
    procedure: &Procedure,
    assurance: Assurance,
    signed: bool,
) -> Result<(), SubmissionError> {
    match procedure.definition.assurance {
        Assurance::None => Ok(()),
        Assurance::CardAuth if assurance >= Assurance::CardAuth => Ok(()),
        Assurance::CardSign if assurance >= Assurance::CardAuth && signed => Ok(()),
        Assurance::CardSign if assurance >= Assurance::CardAuth => {
            Err(SubmissionError::SignatureRequired)
        }
        _ => Err(SubmissionError::InsufficientAssurance),
    }
}

/// The law's rule on who may request a certificate online (`requesters.who` of the form),
/// decided on the signature certificate's verified address.
pub fn check_requester(
    procedure: &Procedure,
    city: Option<&crate::forms::model::City>,
    signature: Option<&SignatureEvidence>,
) -> Result<(), SubmissionError> {
    let Some(requesters) = &procedure.definition.requesters else {
        return Ok(());
    };
    let address = signature.and_then(|evidence| evidence.facts.address.as_deref());
    if requesters.admits(city, address) {
        Ok(())
    } else {
        Err(SubmissionError::ResidentsOnly)
    }
}

/// Validates the answers against the current definition.
pub fn check_answers(procedure: &Procedure, data: &Value) -> Result<Validated, SubmissionError> {
    validate::validate(
        &procedure.definition,
        data,
        CheckOptions::complete(city_today()),
    )
    .map_err(SubmissionError::Invalid)
}

/// The breakdown as stored: frozen with the application, so later changes to the definition or
/// to postage rates never change what this application costs.
fn breakdown_json(validated: &Validated) -> Option<Value> {
    validated
        .breakdown
        .as_ref()
        .and_then(|breakdown| serde_json::to_value(breakdown).ok())
}

/// What an idempotency key's hash covers. The fields are in alphabetical order, the order a
/// `serde_json` map writes them in, so the bytes are those of the `json!` object this used to
/// build (a hash stored before a deploy still matches the retry after it); serialising a struct
/// of references straight into the hasher spares copying the answers first.
#[derive(Serialize)]
struct HashedRequest<'a> {
    data: &'a Value,
    procedure_id: &'a str,
    signed: bool,
}

fn request_hash(procedure_id: &str, data: &Value, signed: bool) -> Vec<u8> {
    let mut hasher = Sha256::new();
    let request = HashedRequest {
        data,
        procedure_id,
        signed,
    };
    // Writing into a hasher cannot fail, and a Value always serialises (its keys are strings).
    if serde_json::to_writer(&mut hasher, &request).is_err() {
        return Vec::new();
    }
    hasher.finalize().to_vec()
}

/// Applies, guarded by the resident's idempotency key.
///
/// An application with nothing else to change (no signature nonce to use up, no attachments to
/// bind, no draft to remove) is stored by its one statement alone ([`insert`]), which is atomic
/// without a transaction: two round trips fewer, and no lock. A concurrent retry waits on the
/// key's primary key until the first commits, fails, and replays the first answer. Anything else
/// runs in a transaction that takes the key's lock first.
pub async fn submit(
    connection: &mut AsyncPgConnection,
    context: &Context<'_>,
    request: NewSubmission,
) -> Result<StoredResponse, SubmissionError> {
    let procedure = context
        .catalog
        .get(&request.procedure_id)
        .ok_or(SubmissionError::NotFound)?;
    check_assurance(procedure, request.assurance, request.signature.is_some())?;
    check_requester(
        procedure,
        context.catalog.organisation.city.as_ref(),
        request
            .signature
            .as_ref()
            .map(|signature| &signature.evidence),
    )?;
    let hash = request_hash(
        &request.procedure_id,
        &request.data,
        request.signature.is_some(),
    );
    let resident_id = request.resident_id;

    if request.signature.is_none() && request.draft_id.is_none() {
        match check_answers(procedure, &request.data) {
            Ok(validated)
                if attachment_ids(&procedure.definition.pages, &validated.data).is_empty() =>
            {
                let (application, answer) =
                    new_application(context, procedure, &request, &validated, hash.clone());
                let id = application.id;
                return match application.execute(connection).await {
                    Ok(_) => {
                        tracing::info!(submission_id = %id, procedure = %procedure.definition.id, "application received");
                        Ok(answer)
                    }
                    Err(error) if is_taken_key(&error) => {
                        stored_answer(connection, resident_id, &request.idempotency_key, &hash)
                            .await?
                            .ok_or_else(|| error.into())
                    }
                    Err(error) => Err(error.into()),
                };
            }
            // Attachments to bind: the transaction below.
            Ok(_) => {}
            // A reused key is reported as such whatever the answers, as in the transaction.
            Err(invalid) => {
                return match stored_answer(connection, resident_id, &request.idempotency_key, &hash)
                    .await?
                {
                    Some(previous) => Ok(previous),
                    None => Err(invalid),
                };
            }
        }
    }

    connection
        .transaction::<StoredResponse, SubmissionError, _>(|connection| {
            Box::pin(async move {
                let key = &request.idempotency_key;
                if let Some(previous) = earlier_answer(connection, resident_id, key, &hash).await? {
                    return Ok(previous);
                }

                // After the key check: a reused key is reported as such, whatever the answers,
                // and a retry of a signed application gets its first answer.
                if let Some(signature) = &request.signature {
                    signing::consume_nonce(connection, request.resident_id, &request.procedure_id, &signature.nonce).await?;
                }
                let validated = check_answers(procedure, &request.data)?;
                let attachment_errors =
                    claimable_attachments(connection, &procedure.definition.pages, &validated.data, request.resident_id, None).await?;
                if !attachment_errors.is_empty() {
                    return Err(SubmissionError::Invalid(attachment_errors));
                }
                let (application, answer) = new_application(context, procedure, &request, &validated, hash);
                let id = application.id;
                application.execute(connection).await?;
                if let Some(signature) = &request.signature {
                    store_signature(connection, id, 1, signature).await?;
                }
                bind_attachments(connection, &procedure.definition.pages, &validated.data, id).await?;
                if let Some(draft) = request.draft_id {
                    diesel::delete(
                        draft_rows::table
                            .filter(draft_rows::id.eq(draft))
                            .filter(draft_rows::resident_id.eq(request.resident_id)),
                    )
                    .execute(connection)
                    .await?;
                }
                tracing::info!(submission_id = %id, procedure = %procedure.definition.id, "application received");
                Ok(answer)
            })
        })
        .await
}

/// The rows of a new application (its first revision), and the answer the resident gets.
fn new_application(
    context: &Context<'_>,
    procedure: &Procedure,
    request: &NewSubmission,
    validated: &Validated,
    hash: Vec<u8>,
) -> (insert::NewApplication, StoredResponse) {
    let id = Uuid::now_v7();
    let reference = reference::generate();
    let now = Utc::now();
    let today = city_today();
    let definition = &procedure.definition;
    let due_date = (definition.processing_days > 0).then(|| {
        context
            .calendar
            .add_business_days(today, definition.processing_days)
    });
    let division = division_of(context.catalog, &validated.queue);
    // Only the district code or the age band, and only if the city opted in.
    let card_facts = request
        .signature
        .as_ref()
        .map(|signature| &signature.evidence.facts)
        .or(request.vouched.as_ref().map(|vouched| &vouched.facts));
    let derived = context.breakdown.derive(card_facts, today);
    // The application is stored before any money moves; it reaches the queue when paid.
    let status = if context.payments_online
        && validated
            .breakdown
            .as_ref()
            .is_some_and(|b| b.timing == Some(PaymentTiming::AtSubmit) && b.total_yen > 0)
    {
        Status::AwaitingPayment
    } else {
        Status::Submitted
    };
    let scope = Scope::revision(&definition.id, id, 1);
    let sealed = Value::Object(sealing::seal_answers(
        context.sealer,
        definition.pages.iter().flat_map(|p| p.fields.iter()),
        &validated.data,
        &scope,
    ));
    let body = json!({
        "id": id,
        "reference": reference,
        "procedure_id": definition.id,
        "status": status,
        "fee_yen": validated.fee,
        "fee_breakdown": validated.breakdown,
        "submitted_at": now,
        "due_date": due_date,
    });
    let answer = StoredResponse { status: 201, body };
    // An application awaiting payment tells nobody yet: it reaches the queue when paid.
    let summary = SubmissionRef {
        id,
        reference: reference.clone(),
        procedure,
        status,
        division: division.clone(),
        resident_id: request.resident_id,
    };
    let tells =
        |to: &[String]| status == Status::Submitted && to.iter().any(|event| event == "received");
    let (resident_notice_ja, resident_notice_en) = if tells(&definition.notify.applicant) {
        let payload = |language| {
            serde_json::to_value(notice_data(context, &summary, "received", language, false))
                .unwrap_or_default()
        };
        (Some(payload("ja")), Some(payload("en")))
    } else {
        (None, None)
    };
    let (division_recipient, division_notice) =
        match context.catalog.organisation.divisions.get(&division) {
            Some(office) if tells(&definition.notify.division) => (
                Some(office.email.clone()),
                Some(
                    serde_json::to_value(notice_data(context, &summary, "received", "ja", true))
                        .unwrap_or_default(),
                ),
            ),
            _ => (None, None),
        };
    let application = insert::NewApplication {
        id,
        reference,
        resident_id: request.resident_id,
        procedure_id: definition.id.clone(),
        content_hash: procedure.content_hash.clone(),
        status: status.as_str(),
        data: sealed,
        fee_yen: validated.fee as i64,
        fee_breakdown: breakdown_json(validated),
        queue: validated.queue.clone(),
        division,
        submitted_at: now,
        due_date,
        district_code: derived.district_code,
        age_band: derived.age_band,
        facts_source: request
            .vouched
            .as_ref()
            .map(|vouched| vouched.source.as_str()),
        facts_issuer: request
            .vouched
            .as_ref()
            .map(|vouched| vouched.issuer.clone()),
        facts: request
            .vouched
            .as_ref()
            .map(|vouched| crate::identity::facts::to_json(&vouched.facts)),
        facts_verified_at: request.vouched.as_ref().map(|vouched| vouched.verified_at),
        resident_notice_ja,
        resident_notice_en,
        division_recipient,
        division_notice,
        notice_ids: [Uuid::now_v7(), Uuid::now_v7()],
        idempotency_key: request.idempotency_key.clone(),
        request_hash: hash,
        response_status: answer.status as i16,
        response_body: answer.body.clone(),
    };
    (application, answer)
}

/// Whether storing failed because the idempotency key was taken meanwhile (by a retry that
/// committed first).
fn is_taken_key(error: &diesel::result::Error) -> bool {
    matches!(
        error,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, info)
            if info.constraint_name() == Some("idempotency_keys_pkey")
    )
}

/// The answer already given to the resident's request with idempotency key `key`, whatever
/// its answers were: lets an edge that re-reads the answers from a draft (gone once the
/// application is stored) replay the first answer to a repeated attempt.
pub async fn answer_for_key(
    connection: &mut AsyncPgConnection,
    resident_id: Uuid,
    key: &str,
) -> Result<Option<StoredResponse>, SubmissionError> {
    let previous: Option<(i16, Value)> = idempotency_keys::table
        .find((resident_id, key))
        .select((
            idempotency_keys::response_status,
            idempotency_keys::response_body,
        ))
        .first(connection)
        .await
        .optional()?;
    Ok(previous.map(|(status, body)| StoredResponse {
        status: status as u16,
        body,
    }))
}

/// Inside the caller's transaction: waits for any concurrent request with the same key (a
/// transaction-scoped advisory lock, so retries queue up and the first one's commit decides),
/// then returns the answer stored for the key, if any ([`stored_answer`]).
async fn earlier_answer(
    connection: &mut AsyncPgConnection,
    resident_id: Uuid,
    key: &str,
    hash: &[u8],
) -> Result<Option<StoredResponse>, SubmissionError> {
    // The lock and the lookup are sent together (pipelined): one round trip instead of two.
    // try_join polls the lock first, so it is sent first; PostgreSQL runs them in order, and the
    // lookup's snapshot is taken when it starts, after the lock is held, so it sees any answer
    // committed by the holder before us.
    let lock = AdvisoryXactLock {
        key: format!("{resident_id}:{key}"),
    };
    let mut shared: &AsyncPgConnection = connection;
    let locked = lock.execute(&mut shared).map_err(SubmissionError::from);
    let (_, previous) =
        futures_util::future::try_join(locked, stored_answer(shared, resident_id, key, hash))
            .await?;
    Ok(previous)
}

/// The answer stored for the key, if any, to replay. A key first used for another request is an
/// error rather than a wrong replay. Takes the connection shared, so it can be pipelined.
async fn stored_answer(
    mut connection: &AsyncPgConnection,
    resident_id: Uuid,
    key: &str,
    hash: &[u8],
) -> Result<Option<StoredResponse>, SubmissionError> {
    let previous: Option<(Vec<u8>, i16, Value)> = idempotency_keys::table
        .find((resident_id, key))
        .select((
            idempotency_keys::request_hash,
            idempotency_keys::response_status,
            idempotency_keys::response_body,
        ))
        .first(&mut connection)
        .await
        .optional()?;
    match previous {
        Some((stored_hash, status, body)) if stored_hash == hash => Ok(Some(StoredResponse {
            status: status as u16,
            body,
        })),
        Some(_) => Err(SubmissionError::IdempotencyKeyReused),
        None => Ok(None),
    }
}

/// `SELECT pg_advisory_xact_lock(hashtextextended(key, 0))`: waits for, then holds until the
/// transaction ends, the lock named by `key`. A query type of its own rather than `sql_query`,
/// because diesel prepares it once per connection where a `sql_query` is parsed again on every
/// submission (one round trip more each time).
#[derive(diesel::query_builder::QueryId)]
struct AdvisoryXactLock {
    key: String,
}

impl diesel::query_builder::QueryFragment<diesel::pg::Pg> for AdvisoryXactLock {
    fn walk_ast<'b>(
        &'b self,
        mut out: diesel::query_builder::AstPass<'_, 'b, diesel::pg::Pg>,
    ) -> diesel::QueryResult<()> {
        out.push_sql("SELECT pg_advisory_xact_lock(hashtextextended(");
        out.push_bind_param::<Text, _>(&self.key)?;
        out.push_sql(", 0))");
        Ok(())
    }
}

/// Stores the answer under the key, in the same transaction as the change it reports.
async fn remember_answer(
    connection: &mut AsyncPgConnection,
    resident_id: Uuid,
    key: &str,
    hash: &[u8],
    answer: &StoredResponse,
) -> Result<(), SubmissionError> {
    diesel::insert_into(idempotency_keys::table)
        .values((
            idempotency_keys::resident_id.eq(resident_id),
            idempotency_keys::key.eq(key),
            idempotency_keys::request_hash.eq(hash),
            idempotency_keys::response_status.eq(answer.status as i16),
            idempotency_keys::response_body.eq(&answer.body),
        ))
        .execute(connection)
        .await?;
    Ok(())
}

/// Keeps the card signature of one revision with its evidence (certificate, digest, revocation
/// time, verification time), as IDENTITY.md asks.
async fn store_signature(
    connection: &mut AsyncPgConnection,
    submission_id: Uuid,
    revision: i32,
    signature: &CardSignature,
) -> Result<(), diesel::result::Error> {
    let (cms, evidence) = (&signature.cms, &signature.evidence);
    diesel::insert_into(submission_signatures::table)
        .values((
            submission_signatures::submission_id.eq(submission_id),
            submission_signatures::revision.eq(revision),
            submission_signatures::cms.eq(cms),
            submission_signatures::certificate.eq(&evidence.certificate_der),
            submission_signatures::digest.eq(&evidence.digest),
            submission_signatures::revocation_checked_at.eq(evidence.revocation_checked_at),
            submission_signatures::verified_at.eq(evidence.verified_at),
        ))
        .execute(connection)
        .await?;
    Ok(())
}

fn division_of(catalog: &Catalog, queue: &str) -> String {
    catalog
        .organisation
        .queues
        .get(queue)
        .map_or_else(|| queue.to_owned(), |extra| extra.division.clone())
}

/// Attachment ids named by file fields (top level and in groups).
fn attachment_ids(
    fields: &[crate::forms::model::Page],
    data: &Map<String, Value>,
) -> Vec<(String, Uuid)> {
    fn walk<'a>(
        fields: impl Iterator<Item = &'a Field>,
        data: &Map<String, Value>,
        prefix: &str,
        out: &mut Vec<(String, Uuid)>,
    ) {
        for field in fields {
            // The pointer is built only for the fields that can name attachments: this walk
            // runs for every application, and most have none.
            let pointer = || format!("{prefix}/{}", field.id);
            match (field.kind(), data.get(&field.id)) {
                (FieldType::File, Some(Value::Array(items))) => {
                    let pointer = pointer();
                    for item in items {
                        if let Some(id) = item.as_str().and_then(|id| Uuid::parse_str(id).ok()) {
                            out.push((pointer.clone(), id));
                        }
                    }
                }
                (FieldType::Group, Some(Value::Array(items))) => {
                    let pointer = pointer();
                    for (index, item) in items.iter().enumerate() {
                        if let Value::Object(object) = item {
                            walk(
                                field.fields.iter(),
                                object,
                                &format!("{pointer}/{index}"),
                                out,
                            );
                        }
                    }
                }
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    walk(
        fields.iter().flat_map(|page| page.fields.iter()),
        data,
        "",
        &mut out,
    );
    out
}

/// Every named attachment must be the resident's own and not yet part of an application (or,
/// when answering a return, already part of this one).
async fn claimable_attachments(
    connection: &mut AsyncPgConnection,
    pages: &[crate::forms::model::Page],
    data: &Map<String, Value>,
    resident_id: Uuid,
    resubmitting: Option<Uuid>,
) -> Result<Vec<FieldError>, SubmissionError> {
    let named = attachment_ids(pages, data);
    if named.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<Uuid> = named.iter().map(|(_, id)| *id).collect();
    let usable: Vec<Uuid> = attachment_rows::table
        .filter(attachment_rows::id.eq_any(&ids))
        .filter(attachment_rows::resident_id.eq(resident_id))
        .filter(
            attachment_rows::submission_id
                .is_null()
                .or(attachment_rows::submission_id.nullable().eq(resubmitting)),
        )
        .select(attachment_rows::id)
        .load(connection)
        .await?;
    let mut errors: Vec<FieldError> = named
        .into_iter()
        .filter(|(_, id)| !usable.contains(id))
        .map(|(path, _)| FieldError {
            code: "invalid_attachment".to_owned(),
            message: crate::messages::message("invalid_attachment", None),
            path,
        })
        .collect();
    errors.dedup();
    Ok(errors)
}

async fn bind_attachments(
    connection: &mut AsyncPgConnection,
    pages: &[crate::forms::model::Page],
    data: &Map<String, Value>,
    submission_id: Uuid,
) -> Result<(), SubmissionError> {
    let ids: Vec<Uuid> = attachment_ids(pages, data)
        .into_iter()
        .map(|(_, id)| id)
        .collect();
    if !ids.is_empty() {
        diesel::update(attachment_rows::table.filter(attachment_rows::id.eq_any(ids)))
            .set((
                attachment_rows::submission_id.eq(submission_id),
                attachment_rows::draft_id.eq(None::<Uuid>),
            ))
            .execute(connection)
            .await?;
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorKind {
    Resident,
    Staff,
    System,
}

impl ActorKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Resident => "resident",
            Self::Staff => "staff",
            Self::System => "system",
        }
    }
}

pub async fn record_event(
    connection: &mut AsyncPgConnection,
    submission_id: Uuid,
    actor: ActorKind,
    actor_id: Option<Uuid>,
    from: Option<Status>,
    to: Status,
    reason: Option<&str>,
) -> Result<(), diesel::result::Error> {
    record_event_with_comments(
        connection,
        submission_id,
        actor,
        actor_id,
        from,
        to,
        reason,
        None,
    )
    .await
}

/// [`record_event`] with field comments (`[{path, comment}]`) attached, as a return has.
#[allow(clippy::too_many_arguments)]
pub async fn record_event_with_comments(
    connection: &mut AsyncPgConnection,
    submission_id: Uuid,
    actor: ActorKind,
    actor_id: Option<Uuid>,
    from: Option<Status>,
    to: Status,
    reason: Option<&str>,
    comments: Option<&Value>,
) -> Result<(), diesel::result::Error> {
    diesel::insert_into(submission_events::table)
        .values((
            submission_events::submission_id.eq(submission_id),
            submission_events::actor_kind.eq(actor.as_str()),
            submission_events::actor_id.eq(actor_id),
            submission_events::from_status.eq(from.map(Status::as_str)),
            submission_events::to_status.eq(to.as_str()),
            submission_events::reason.eq(reason),
            submission_events::comments.eq(comments),
        ))
        .execute(connection)
        .await?;
    Ok(())
}

/// Inside the caller's transaction: the fee of an application awaiting payment (or expired
/// unpaid) has been paid, so it enters its division's queue and the usual notices go out. A fee
/// staff asked for after review (事後決済) returns the application to its assignee, in progress,
/// without a second "received" notice. Anything else is left alone (a repeated success changes
/// nothing).
pub async fn payment_received(
    connection: &mut AsyncPgConnection,
    context: &Context<'_>,
    id: Uuid,
) -> Result<bool, SubmissionError> {
    type Row = (
        String,
        String,
        String,
        String,
        Uuid,
        Option<Uuid>,
        Option<chrono::DateTime<Utc>>,
    );
    let row: Option<Row> = submissions::table
        .find(id)
        .select((
            submissions::status,
            submissions::reference,
            submissions::procedure_id,
            submissions::division,
            submissions::resident_id,
            submissions::assignee_id,
            submissions::payment_requested_at,
        ))
        .for_update()
        .first(connection)
        .await
        .optional()?;
    let Some((status, reference, procedure_id, division, resident_id, assignee, requested)) = row
    else {
        return Err(SubmissionError::NotFound);
    };
    let from = Status::parse(&status).unwrap_or(Status::Submitted);
    if !matches!(from, Status::AwaitingPayment | Status::PaymentExpired) {
        return Ok(false);
    }
    let after_review = requested.is_some();
    if after_review {
        let to = if assignee.is_some() {
            Status::InProgress
        } else {
            Status::Submitted
        };
        diesel::update(submissions::table.find(id))
            .set((
                submissions::status.eq(to.as_str()),
                submissions::updated_at.eq(Utc::now()),
            ))
            .execute(connection)
            .await?;
        record_event(
            connection,
            id,
            ActorKind::System,
            None,
            Some(from),
            to,
            Some("paid"),
        )
        .await?;
        return Ok(true);
    }
    diesel::update(submissions::table.find(id))
        .set((
            submissions::status.eq(Status::Submitted.as_str()),
            submissions::submitted_at.eq(Utc::now()),
            submissions::updated_at.eq(Utc::now()),
        ))
        .execute(connection)
        .await?;
    record_event(
        connection,
        id,
        ActorKind::System,
        None,
        Some(from),
        Status::Submitted,
        Some("paid"),
    )
    .await?;
    if let Some(procedure) = context.catalog.get(&procedure_id) {
        let summary = SubmissionRef {
            id,
            reference,
            procedure,
            status: Status::Submitted,
            division,
            resident_id,
        };
        notify_change(connection, context, &summary, "received").await?;
    }
    Ok(true)
}

/// Applications awaiting payment past their time, with no payment still open or paid, expire:
/// `at_submit` ones `minutes` after submission, those asked to pay after review
/// `after_review_hours` after the request. Rows locked by another worker are skipped (`SKIP
/// LOCKED`), so several workers never expire one twice. Returns the ids expired, for the caller
/// to tell the residents in the same transaction.
pub async fn expire_unpaid(
    connection: &mut AsyncPgConnection,
    minutes: i64,
    after_review_hours: i64,
) -> Result<Vec<Uuid>, SubmissionError> {
    let expired: Vec<Uuid> = diesel::sql_query(
        "UPDATE submissions s SET status = 'payment_expired', updated_at = now()
          WHERE s.id IN (
              SELECT c.id FROM submissions c
               WHERE c.status = 'awaiting_payment'
                 AND CASE WHEN c.payment_requested_at IS NULL
                          THEN c.submitted_at < now() - make_interval(mins => $1::int)
                          ELSE c.payment_requested_at < now() - make_interval(hours => $2::int)
                     END
                 AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.submission_id = c.id
                                   AND p.status IN ('created', 'pending', 'succeeded'))
               ORDER BY c.submitted_at
               LIMIT 500
               FOR UPDATE SKIP LOCKED)
          RETURNING s.id",
    )
    .bind::<diesel::sql_types::Integer, _>(minutes as i32)
    .bind::<diesel::sql_types::Integer, _>(after_review_hours as i32)
    .load::<ExpiredRow>(connection)
    .await?
    .into_iter()
    .map(|row| row.id)
    .collect();
    for id in &expired {
        record_event(
            connection,
            *id,
            ActorKind::System,
            None,
            Some(Status::AwaitingPayment),
            Status::PaymentExpired,
            None,
        )
        .await?;
    }
    Ok(expired)
}

#[derive(QueryableByName)]
struct ExpiredRow {
    #[diesel(sql_type = diesel::sql_types::Uuid)]
    id: Uuid,
}

/// Enough about a submission to tell people about it.
pub struct SubmissionRef<'a> {
    pub id: Uuid,
    pub reference: String,
    pub procedure: &'a Procedure,
    pub status: Status,
    pub division: String,
    pub resident_id: Uuid,
}

/// Writes the notices an event causes (resident and/or division), per the form's `notify`.
pub async fn notify_change(
    connection: &mut AsyncPgConnection,
    context: &Context<'_>,
    submission: &SubmissionRef<'_>,
    event: &str,
) -> Result<(), diesel::result::Error> {
    let definition = &submission.procedure.definition;
    let mut notices = Vec::new();
    if definition.notify.applicant.iter().any(|e| e == event) {
        // Only to an address the resident confirmed.
        let contact: Option<(Option<String>, String)> = residents::table
            .find(submission.resident_id)
            .filter(residents::email_confirmed)
            .select((residents::email, residents::language))
            .first(connection)
            .await
            .optional()?;
        if let Some((Some(email), language)) = contact {
            notices.push(Notice {
                template: "resident_status",
                data: notice_data(context, submission, event, &language, false),
                language,
                recipient: email,
                submission_id: Some(submission.id),
            });
        }
    }
    if definition.notify.division.iter().any(|e| e == event)
        && let Some(division) = context
            .catalog
            .organisation
            .divisions
            .get(&submission.division)
    {
        notices.push(Notice {
            template: "division_status",
            language: "ja".to_owned(),
            recipient: division.email.clone(),
            data: notice_data(context, submission, event, "ja", true),
            submission_id: Some(submission.id),
        });
    }
    notify::enqueue(connection, &notices).await
}

/// What a notice about `submission` says in `language`, linking to the resident's page or, for
/// the division, the staff console's.
fn notice_data(
    context: &Context<'_>,
    submission: &SubmissionRef<'_>,
    event: &str,
    language: &str,
    for_staff: bool,
) -> NoticeData {
    let definition = &submission.procedure.definition;
    let status = if language == "en" {
        submission.status.label_en()
    } else {
        submission.status.label_ja()
    };
    // The console's and the portal's page of the application (the pages, not the JSON API).
    let page = if for_staff {
        "staff/applications"
    } else {
        "applications"
    };
    NoticeData {
        event: event.to_owned(),
        reference: submission.reference.clone(),
        procedure_title_ja: definition.title.ja.clone(),
        procedure_title_en: definition.title.en.clone(),
        status: status.to_owned(),
        link: format!("{}/{page}/{}", context.public_url, submission.id),
        payment: None,
    }
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SubmissionSummary {
    pub id: Uuid,
    pub reference: String,
    pub procedure_id: String,
    pub procedure_title: Localized,
    pub status: Status,
    pub fee_yen: i64,
    pub submitted_at: DateTime<Utc>,
    pub due_date: Option<NaiveDate>,
}

type SummaryRow = (
    Uuid,
    String,
    String,
    String,
    i64,
    DateTime<Utc>,
    Option<NaiveDate>,
);

fn summary(catalog: &Catalog, row: SummaryRow) -> SubmissionSummary {
    let (id, reference, procedure_id, status, fee_yen, submitted_at, due_date) = row;
    let procedure_title = catalog.get(&procedure_id).map_or_else(
        || Localized::new(procedure_id.clone(), procedure_id.clone()),
        |p| p.definition.title.clone(),
    );
    SubmissionSummary {
        id,
        reference,
        procedure_title,
        procedure_id,
        status: Status::parse(&status).unwrap_or(Status::Submitted),
        fee_yen,
        submitted_at,
        due_date,
    }
}

/// The resident's own applications, newest first. No answers: lists never carry personal data.
pub async fn list_for_resident(
    connection: &mut AsyncPgConnection,
    catalog: &Catalog,
    resident_id: Uuid,
) -> Result<Vec<SubmissionSummary>, SubmissionError> {
    let rows: Vec<SummaryRow> = submissions::table
        .filter(submissions::resident_id.eq(resident_id))
        .order(submissions::submitted_at.desc())
        .limit(200)
        .select((
            submissions::id,
            submissions::reference,
            submissions::procedure_id,
            submissions::status,
            submissions::fee_yen,
            submissions::submitted_at,
            submissions::due_date,
        ))
        .load(connection)
        .await?;
    Ok(rows.into_iter().map(|row| summary(catalog, row)).collect())
}

/// One page of the resident's own applications, newest first, and whether another page follows.
pub async fn page_for_resident(
    connection: &mut AsyncPgConnection,
    catalog: &Catalog,
    resident_id: Uuid,
    page: i64,
    per_page: i64,
) -> Result<(Vec<SubmissionSummary>, bool), SubmissionError> {
    let mut rows: Vec<SummaryRow> = submissions::table
        .filter(submissions::resident_id.eq(resident_id))
        .order((submissions::submitted_at.desc(), submissions::id.desc()))
        .offset(page.max(0) * per_page)
        // One more than shown, to know whether there is a next page.
        .limit(per_page + 1)
        .select((
            submissions::id,
            submissions::reference,
            submissions::procedure_id,
            submissions::status,
            submissions::fee_yen,
            submissions::submitted_at,
            submissions::due_date,
        ))
        .load(connection)
        .await?;
    let more = rows.len() as i64 > per_page;
    rows.truncate(per_page as usize);
    Ok((
        rows.into_iter().map(|row| summary(catalog, row)).collect(),
        more,
    ))
}

#[derive(Debug, Clone, Serialize, Queryable, ToSchema)]
pub struct Event {
    pub from_status: Option<String>,
    pub to_status: String,
    pub actor_kind: String,
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
    /// On a return: what to correct, per field (`[{path, comment}]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub comments: Option<Value>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SubmissionDetail {
    #[serde(flatten)]
    pub summary: SubmissionSummary,
    /// The answers as submitted; My Numbers masked.
    #[schema(value_type = Object)]
    pub data: Value,
    pub revision: i32,
    pub content_hash: String,
    pub history: Vec<Event>,
    pub attachments: Vec<attachments::AttachmentInfo>,
    /// What the application costs, frozen when it was submitted; absent when free.
    pub fee_breakdown: Option<FeeBreakdown>,
    /// Who the card said I am when I applied (procedures that need an identity).
    pub verified_identity: Option<VouchedFacts>,
}

/// One of the resident's applications; `NotFound` for anyone else's.
pub async fn get_for_resident(
    connection: &mut AsyncPgConnection,
    context: &Context<'_>,
    resident_id: Uuid,
    id: Uuid,
) -> Result<SubmissionDetail, SubmissionError> {
    let row: (SummaryRow, Value, i32, String, Option<Value>) = submissions::table
        .filter(submissions::id.eq(id))
        .filter(submissions::resident_id.eq(resident_id))
        .select((
            (
                submissions::id,
                submissions::reference,
                submissions::procedure_id,
                submissions::status,
                submissions::fee_yen,
                submissions::submitted_at,
                submissions::due_date,
            ),
            submissions::data,
            submissions::revision,
            submissions::content_hash,
            submissions::fee_breakdown,
        ))
        .first(connection)
        .await
        .optional()?
        .ok_or(SubmissionError::NotFound)?;
    let (summary_row, data, revision, content_hash, fee_breakdown) = row;
    let procedure_id = summary_row.2.clone();
    let history = history(connection, id).await?;
    let attachments = attachments::for_submission(connection, id).await?;
    let verified_identity = crate::identity::facts::of_submission(connection, id).await?;
    Ok(SubmissionDetail {
        summary: summary(context.catalog, summary_row),
        data: sealing::mask_answers(
            context.sealer,
            &data,
            &Scope::revision(&procedure_id, id, revision),
        ),
        revision,
        content_hash,
        history,
        attachments,
        fee_breakdown: fee_breakdown.and_then(|value| serde_json::from_value(value).ok()),
        verified_identity,
    })
}

pub async fn history(
    connection: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<Vec<Event>, SubmissionError> {
    Ok(submission_events::table
        .filter(submission_events::submission_id.eq(id))
        .order(submission_events::id)
        .select((
            submission_events::from_status,
            submission_events::to_status,
            submission_events::actor_kind,
            submission_events::reason,
            submission_events::created_at,
            submission_events::comments,
        ))
        .load(connection)
        .await?)
}

/// Moves a submission through the lifecycle under a row lock, recording the event. Returns the
/// new status. Callers check who may act before calling.
pub async fn transition(
    connection: &mut AsyncPgConnection,
    id: Uuid,
    action: Action,
    actor: ActorKind,
    actor_id: Option<Uuid>,
    reason: Option<&str>,
) -> Result<(Status, Status), SubmissionError> {
    transition_with_comments(connection, id, action, actor, actor_id, reason, None).await
}

/// [`transition`] with field comments stored on the event (a return).
pub async fn transition_with_comments(
    connection: &mut AsyncPgConnection,
    id: Uuid,
    action: Action,
    actor: ActorKind,
    actor_id: Option<Uuid>,
    reason: Option<&str>,
    comments: Option<&Value>,
) -> Result<(Status, Status), SubmissionError> {
    let current: String = submissions::table
        .find(id)
        .select(submissions::status)
        .for_update()
        .first(connection)
        .await
        .optional()?
        .ok_or(SubmissionError::NotFound)?;
    let from = Status::parse(&current).ok_or(SubmissionError::NotFound)?;
    let to = lifecycle::next(from, action).ok_or(SubmissionError::NotAllowed { from, action })?;
    let now = Utc::now();
    diesel::update(submissions::table.find(id))
        .set((
            submissions::status.eq(to.as_str()),
            submissions::updated_at.eq(now),
        ))
        .execute(connection)
        .await?;
    if to.is_final() {
        diesel::update(submissions::table.find(id))
            .set(submissions::decided_at.eq(now))
            .execute(connection)
            .await?;
    }
    record_event_with_comments(
        connection,
        id,
        actor,
        actor_id,
        Some(from),
        to,
        reason,
        comments,
    )
    .await?;
    Ok((from, to))
}

/// The resident withdraws (取下げ) an application that has no decision yet.
pub async fn withdraw(
    connection: &mut AsyncPgConnection,
    context: &Context<'_>,
    resident_id: Uuid,
    id: Uuid,
    reason: Option<String>,
) -> Result<Status, SubmissionError> {
    connection
        .transaction::<Status, SubmissionError, _>(|connection| {
            Box::pin(async move {
                let (reference, procedure_id, division): (String, String, String) =
                    submissions::table
                        .filter(submissions::id.eq(id))
                        .filter(submissions::resident_id.eq(resident_id))
                        .select((
                            submissions::reference,
                            submissions::procedure_id,
                            submissions::division,
                        ))
                        .first(connection)
                        .await
                        .optional()?
                        .ok_or(SubmissionError::NotFound)?;
                let (_, to) = transition(
                    connection,
                    id,
                    Action::Withdraw,
                    ActorKind::Resident,
                    Some(resident_id),
                    reason.as_deref(),
                )
                .await?;
                // A fee already paid is owed back: flagged for a supervisor to refund (a city may
                // keep it by ordinance, so a person decides), in the withdrawal's transaction.
                diesel::update(
                    crate::db::schema::payments::table
                        .filter(crate::db::schema::payments::submission_id.eq(id))
                        .filter(crate::db::schema::payments::status.eq("succeeded"))
                        .filter(crate::db::schema::payments::attention.is_null()),
                )
                .set((
                    crate::db::schema::payments::attention.eq("refund_due"),
                    crate::db::schema::payments::updated_at.eq(Utc::now()),
                ))
                .execute(connection)
                .await?;
                if let Some(procedure) = context.catalog.get(&procedure_id) {
                    let submission = SubmissionRef {
                        id,
                        reference,
                        procedure,
                        status: to,
                        division,
                        resident_id,
                    };
                    notify_change(connection, context, &submission, "withdrawn").await?;
                }
                Ok(to)
            })
        })
        .await
}

/// The procedure of one of the resident's applications (to verify a signature before answering
/// a return); `NotFound` for anyone else's.
pub async fn procedure_of(
    connection: &mut AsyncPgConnection,
    resident_id: Uuid,
    id: Uuid,
) -> Result<String, SubmissionError> {
    submissions::table
        .filter(submissions::id.eq(id))
        .filter(submissions::resident_id.eq(resident_id))
        .select(submissions::procedure_id)
        .first(connection)
        .await
        .optional()?
        .ok_or(SubmissionError::NotFound)
}

/// The date in the city (Japan, UTC+9, no daylight saving) of an instant.
pub fn city_date(at: DateTime<Utc>) -> NaiveDate {
    (at + chrono::Duration::hours(9)).date_naive()
}

/// Answers for a resubmission that were shown masked (the correction page shows the stored
/// answers, My Numbers as `********9018`): where `incoming` still holds the masked form of the
/// My Number sealed at the same place in the current revision, the number is put back. Anything
/// the resident changed is left as typed. `NotFound` for anyone else's application.
pub async fn restore_for_resubmission(
    connection: &mut AsyncPgConnection,
    sealer: &Sealer,
    resident_id: Uuid,
    id: Uuid,
    incoming: &Value,
) -> Result<Value, SubmissionError> {
    let (procedure_id, revision, stored): (String, i32, Value) = submissions::table
        .filter(submissions::id.eq(id))
        .filter(submissions::resident_id.eq(resident_id))
        .select((
            submissions::procedure_id,
            submissions::revision,
            submissions::data,
        ))
        .first(connection)
        .await
        .optional()?
        .ok_or(SubmissionError::NotFound)?;
    let scope = Scope::revision(&procedure_id, id, revision);
    Ok(sealing::restore_masked(sealer, incoming, &stored, &scope))
}

/// A resident's answer to a return (差し戻し): corrected answers, signed again for card-sign
/// procedures.
pub struct Resubmission {
    pub resident_id: Uuid,
    pub assurance: Assurance,
    pub id: Uuid,
    pub data: Value,
    /// For card-sign procedures: the verified signature over these answers.
    pub signature: Option<CardSignature>,
    /// When given, a retry with the same key gets the first answer instead of a 409.
    pub idempotency_key: Option<String>,
    /// Who the card says the applicant is, for procedures that need an identity.
    pub vouched: Option<VouchedFacts>,
}

/// Answers a return: only while `returned`; validated against the version of the form the
/// application pinned (when the catalog now serves another version, `DefinitionChanged`: the
/// resident withdraws and applies again, as at a counter when the form changed); stored as the
/// next revision; back to `submitted` through the lifecycle. The processing-period clock was
/// paused while the application sat with the resident, so the due date moves by the business
/// days between the return and today. The application stays in its queue (routing is decided
/// once, at submission) and goes back to being unclaimed.
pub async fn resubmit(
    connection: &mut AsyncPgConnection,
    context: &Context<'_>,
    request: Resubmission,
) -> Result<Value, SubmissionError> {
    let hash = request_hash(
        &format!("resubmit:{}", request.id),
        &request.data,
        request.signature.is_some(),
    );
    connection
        .transaction::<Value, SubmissionError, _>(|connection| {
            Box::pin(async move {
                if let Some(key) = &request.idempotency_key
                    && let Some(previous) = earlier_answer(connection, request.resident_id, key, &hash).await?
                {
                    return Ok(previous.body);
                }
                type Row = (String, String, String, i32, Option<DateTime<Utc>>, Option<NaiveDate>, String, String);
                let (status, procedure_id, content_hash, revision, returned_at, due_date, reference, division): Row =
                    submissions::table
                        .filter(submissions::id.eq(request.id))
                        .filter(submissions::resident_id.eq(request.resident_id))
                        .select((
                            submissions::status,
                            submissions::procedure_id,
                            submissions::content_hash,
                            submissions::revision,
                            submissions::returned_at,
                            submissions::due_date,
                            submissions::reference,
                            submissions::division,
                        ))
                        .for_update()
                        .first(connection)
                        .await
                        .optional()?
                        .ok_or(SubmissionError::NotFound)?;
                let from = Status::parse(&status).ok_or(SubmissionError::NotFound)?;
                if lifecycle::next(from, Action::Resubmit).is_none() {
                    return Err(SubmissionError::NotAllowed { from, action: Action::Resubmit });
                }
                let procedure = context
                    .catalog
                    .get(&procedure_id)
                    .filter(|procedure| procedure.content_hash == content_hash)
                    .ok_or(SubmissionError::DefinitionChanged)?;
                check_assurance(procedure, request.assurance, request.signature.is_some())?;
                check_requester(
                    procedure,
                    context.catalog.organisation.city.as_ref(),
                    request.signature.as_ref().map(|signature| &signature.evidence),
                )?;
                if let Some(signature) = &request.signature {
                    signing::consume_nonce(connection, request.resident_id, &procedure_id, &signature.nonce).await?;
                }
                let validated = check_answers(procedure, &request.data)?;
                let definition = &procedure.definition;
                let attachment_errors = claimable_attachments(
                    connection,
                    &definition.pages,
                    &validated.data,
                    request.resident_id,
                    Some(request.id),
                )
                .await?;
                if !attachment_errors.is_empty() {
                    return Err(SubmissionError::Invalid(attachment_errors));
                }

                let revision = revision + 1;
                let scope = Scope::revision(&definition.id, request.id, revision);
                let sealed = Value::Object(sealing::seal_answers(
                    context.sealer,
                    definition.pages.iter().flat_map(|p| p.fields.iter()),
                    &validated.data,
                    &scope,
                ));
                let paused = returned_at.map_or(0, |at| {
                    context.calendar.business_days_between(city_date(at), city_today())
                });
                let due_date = due_date.map(|due| context.calendar.add_business_days(due, paused));
                let (_, to) = transition(
                    connection,
                    request.id,
                    Action::Resubmit,
                    ActorKind::Resident,
                    Some(request.resident_id),
                    None,
                )
                .await?;
                diesel::update(submissions::table.find(request.id))
                    .set((
                        submissions::data.eq(&sealed),
                        submissions::revision.eq(revision),
                        submissions::fee_yen.eq(validated.fee as i64),
                        submissions::fee_breakdown.eq(breakdown_json(&validated)),
                        submissions::due_date.eq(due_date),
                        submissions::returned_at.eq(None::<DateTime<Utc>>),
                        submissions::assignee_id.eq(None::<Uuid>),
                    ))
                    .execute(connection)
                    .await?;
                diesel::insert_into(submission_revisions::table)
                    .values((
                        submission_revisions::submission_id.eq(request.id),
                        submission_revisions::revision.eq(revision),
                        submission_revisions::data.eq(&sealed),
                    ))
                    .execute(connection)
                    .await?;
                if let Some(signature) = &request.signature {
                    store_signature(connection, request.id, revision, signature).await?;
                }
                if let Some(vouched) = &request.vouched {
                    crate::identity::facts::attach(connection, request.id, revision, vouched).await?;
                }
                bind_attachments(connection, &definition.pages, &validated.data, request.id).await?;
                let summary = SubmissionRef {
                    id: request.id,
                    reference: reference.clone(),
                    procedure,
                    status: to,
                    division,
                    resident_id: request.resident_id,
                };
                notify_change(connection, context, &summary, "resubmitted").await?;
                tracing::info!(submission_id = %request.id, revision, paused_business_days = paused, "return answered");
                let body = json!({
                    "id": request.id,
                    "reference": reference,
                    "status": to,
                    "revision": revision,
                    "fee_yen": validated.fee,
                    "due_date": due_date,
                });
                if let Some(key) = &request.idempotency_key {
                    let answer = StoredResponse { status: 200, body };
                    remember_answer(connection, request.resident_id, key, &hash, &answer).await?;
                    return Ok(answer.body);
                }
                Ok(body)
            })
        })
        .await
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccessEntry {
    /// The staff member's display name: residents may know who looked at their application.
    pub staff_name: String,
    /// The staff member's division: the application's own when they belong to it (the usual
    /// case), else the first they belong to; none for an account without a division.
    pub division: Option<String>,
    pub action: String,
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
}

/// Which staff opened the resident's application, and when.
pub async fn access_log_for_resident(
    connection: &mut AsyncPgConnection,
    resident_id: Uuid,
    id: Uuid,
) -> Result<Vec<AccessEntry>, SubmissionError> {
    let owned: i64 = submissions::table
        .filter(submissions::id.eq(id))
        .filter(submissions::resident_id.eq(resident_id))
        .count()
        .get_result(connection)
        .await?;
    if owned == 0 {
        return Err(SubmissionError::NotFound);
    }
    let own_division: String = submissions::table
        .find(id)
        .select(submissions::division)
        .first(connection)
        .await?;
    type Row = (Uuid, String, String, Option<String>, DateTime<Utc>);
    let rows: Vec<Row> = access_log::table
        .inner_join(staff::table)
        .filter(access_log::submission_id.eq(id))
        .order(access_log::id)
        .select((
            staff::id,
            staff::display_name,
            access_log::action,
            access_log::reason,
            access_log::created_at,
        ))
        .load(connection)
        .await?;
    let staff_ids: Vec<Uuid> = rows.iter().map(|row| row.0).collect();
    let memberships: Vec<(Uuid, String)> = staff_memberships::table
        .filter(staff_memberships::staff_id.eq_any(&staff_ids))
        .order((staff_memberships::staff_id, staff_memberships::division))
        .select((staff_memberships::staff_id, staff_memberships::division))
        .load(connection)
        .await?;
    let division_of = |staff_id: Uuid| {
        let mut theirs = memberships
            .iter()
            .filter(|(member, _)| *member == staff_id)
            .map(|(_, division)| division);
        let first = theirs.clone().next().cloned();
        theirs
            .find(|division| **division == own_division)
            .cloned()
            .or(first)
    };
    Ok(rows
        .into_iter()
        .map(|(staff_id, staff_name, action, reason, at)| AccessEntry {
            division: division_of(staff_id),
            staff_name,
            action,
            reason,
            at,
        })
        .collect())
}

/// Counts applications, for tests and metrics.
pub async fn count(connection: &mut AsyncPgConnection) -> Result<i64, SubmissionError> {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        count: i64,
    }
    Ok(
        diesel::sql_query("SELECT count(*) AS count FROM submissions")
            .get_result::<Count>(connection)
            .await?
            .count,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_hash_is_that_of_the_json_object_it_replaced() {
        let data = json!({"name": "加賀 太郎", "members": [{"b": 1, "a": [true, null]}], "n": 2.5});
        for signed in [false, true] {
            let object = json!({"procedure_id": "juminhyo", "data": data, "signed": signed});
            let before = Sha256::digest(serde_json::to_vec(&object).unwrap()).to_vec();
            assert_eq!(request_hash("juminhyo", &data, signed), before);
        }
        assert_ne!(
            request_hash("juminhyo", &data, false),
            request_hash("juminhyo", &data, true)
        );
    }
}
