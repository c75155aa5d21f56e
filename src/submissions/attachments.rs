//! Attachments: uploaded into a draft, checked by their content (magic bytes, not the name),
//! stored outside the database in object storage ([`Storage`]), and readable only by their owner and the
//! staff processing the application.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use sha2::{Digest, Sha256};
use utoipa::ToSchema;
use uuid::Uuid;

use super::SubmissionError;
use super::lifecycle::{Action, Status};
use crate::db::schema::{attachments, drafts, submissions};
use crate::forms::Catalog;
use crate::forms::model::{Field, FieldType, FileKind};
use crate::messages::FieldError;
pub use crate::storage::Storage;

#[derive(Debug, Clone, Serialize, Queryable, ToSchema)]
pub struct AttachmentInfo {
    pub id: Uuid,
    pub content_type: String,
    pub size_bytes: i64,
    pub created_at: DateTime<Utc>,
}

/// Finds a file field by id anywhere in the definition (also inside groups).
fn find_field<'a>(fields: impl Iterator<Item = &'a Field>, id: &str) -> Option<&'a Field> {
    for field in fields {
        if field.id == id {
            return Some(field);
        }
        if field.kind() == FieldType::Group
            && let Some(found) = find_field(field.fields.iter(), id)
        {
            return Some(found);
        }
    }
    None
}

fn upload_error(code: &str, message_ja: &str, message_en: &str) -> SubmissionError {
    SubmissionError::Invalid(vec![FieldError {
        path: "/file".to_owned(),
        code: code.to_owned(),
        message: crate::messages::Localized::new(message_ja, message_en),
    }])
}

/// The bytes of a stored file: PDF, JPEG, PNG or HEIC, as its content was checked on upload.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct FileBytes(pub Vec<u8>);

/// What an upload belongs to until the application that uses it is stored.
#[derive(Debug, Clone, Copy)]
pub enum UploadTarget {
    /// A draft being filled in.
    Draft(Uuid),
    /// An application returned to the resident for correction (差し戻し).
    Returned(Uuid),
}

pub struct Upload<'a> {
    pub resident_id: Uuid,
    pub target: UploadTarget,
    pub field_id: &'a str,
    pub bytes: &'a [u8],
    pub max_per_draft: i64,
    /// What one resident may store that no application uses yet, in bytes.
    pub max_pending_bytes: i64,
}

/// Stores an upload for a draft's file field after checking the draft, the field's accepted
/// types (sniffed from the bytes) and size, and the number of files per draft.
pub async fn upload(
    connection: &mut AsyncPgConnection,
    catalog: &Catalog,
    storage: &Storage,
    upload: Upload<'_>,
) -> Result<AttachmentInfo, SubmissionError> {
    let procedure_id: String = match upload.target {
        UploadTarget::Draft(draft_id) => drafts::table
            .filter(drafts::id.eq(draft_id))
            .filter(drafts::resident_id.eq(upload.resident_id))
            .filter(drafts::expires_at.gt(Utc::now()))
            .select(drafts::procedure_id)
            .first(connection)
            .await
            .optional()?
            .ok_or(SubmissionError::NotFound)?,
        UploadTarget::Returned(submission_id) => {
            let (procedure_id, status): (String, String) = submissions::table
                .filter(submissions::id.eq(submission_id))
                .filter(submissions::resident_id.eq(upload.resident_id))
                .select((submissions::procedure_id, submissions::status))
                .first(connection)
                .await
                .optional()?
                .ok_or(SubmissionError::NotFound)?;
            let status = Status::parse(&status).unwrap_or(Status::Submitted);
            if status != Status::Returned {
                return Err(SubmissionError::NotAllowed {
                    from: status,
                    action: Action::Resubmit,
                });
            }
            procedure_id
        }
    };
    let procedure = catalog
        .get(&procedure_id)
        .ok_or(SubmissionError::NotFound)?;
    let field = find_field(
        procedure
            .definition
            .pages
            .iter()
            .flat_map(|page| page.fields.iter()),
        upload.field_id,
    )
    .filter(|field| field.kind() == FieldType::File)
    .ok_or_else(|| {
        upload_error(
            "unknown_field",
            "添付先の項目がこの手続にありません。",
            "This procedure has no such file field.",
        )
    })?;

    let accepted: Vec<FileKind> = field.accepted_kinds();
    let sniffed = infer::get(upload.bytes).map(|kind| kind.mime_type());
    let Some(kind) = accepted.iter().find(|kind| Some(kind.mime()) == sniffed) else {
        return Err(upload_error(
            "invalid_file_type",
            "このファイルの種類は添付できません（PDF・JPEG・PNG など指定の形式にしてください）。",
            "This kind of file cannot be attached (use PDF, JPEG, PNG or the listed types).",
        ));
    };
    let max_bytes = u64::from(field.size_limit_mb()) * 1024 * 1024;
    if upload.bytes.len() as u64 > max_bytes {
        return Err(upload_error(
            "file_too_large",
            "ファイルが大きすぎます。",
            "The file is too large.",
        ));
    }
    let existing: i64 = match upload.target {
        UploadTarget::Draft(draft_id) => {
            attachments::table
                .filter(attachments::draft_id.eq(draft_id))
                .count()
                .get_result(connection)
                .await?
        }
        // Uploads for a correction wait unbound (owned by the resident) until the resubmission.
        UploadTarget::Returned(submission_id) => {
            attachments::table
                .filter(attachments::resident_id.eq(upload.resident_id))
                .filter(
                    attachments::submission_id
                        .eq(submission_id)
                        .or(attachments::submission_id
                            .is_null()
                            .and(attachments::draft_id.is_null())),
                )
                .count()
                .get_result(connection)
                .await?
        }
    };
    if existing >= upload.max_per_draft {
        return Err(upload_error(
            "too_many_files",
            "添付できるファイルの数を超えています。",
            "Too many files for one application.",
        ));
    }
    let pending: i64 = attachments::table
        .filter(attachments::resident_id.eq(upload.resident_id))
        .filter(attachments::submission_id.is_null())
        .select(diesel::dsl::sql::<diesel::sql_types::BigInt>(
            "COALESCE(SUM(size_bytes), 0)::bigint",
        ))
        .get_result(connection)
        .await?;
    if pending + upload.bytes.len() as i64 > upload.max_pending_bytes {
        return Err(SubmissionError::UploadQuota);
    }

    // The key is the row's id, never the file's name. The object is written first: a crash
    // before the row commits leaves an orphan for the sweep, never a row without its object.
    let id = Uuid::now_v7();
    let key = id.to_string();
    storage
        .put(&key, upload.bytes)
        .await
        .map_err(SubmissionError::Storage)?;
    Ok(diesel::insert_into(attachments::table)
        .values((
            attachments::id.eq(id),
            attachments::resident_id.eq(upload.resident_id),
            attachments::draft_id.eq(match upload.target {
                UploadTarget::Draft(draft_id) => Some(draft_id),
                UploadTarget::Returned(_) => None,
            }),
            attachments::content_type.eq(kind.mime()),
            attachments::size_bytes.eq(upload.bytes.len() as i64),
            attachments::sha256.eq(Sha256::digest(upload.bytes).to_vec()),
            attachments::storage_key.eq(&key),
        ))
        .returning((
            attachments::id,
            attachments::content_type,
            attachments::size_bytes,
            attachments::created_at,
        ))
        .get_result(connection)
        .await?)
}

/// The bytes and type of one of the resident's attachments; `NotFound` for anyone else's.
pub async fn download_for_resident(
    connection: &mut AsyncPgConnection,
    storage: &Storage,
    resident_id: Uuid,
    id: Uuid,
) -> Result<(String, bytes::Bytes), SubmissionError> {
    let (content_type, key): (String, String) = attachments::table
        .filter(attachments::id.eq(id))
        .filter(attachments::resident_id.eq(resident_id))
        .select((attachments::content_type, attachments::storage_key))
        .first(connection)
        .await
        .optional()?
        .ok_or(SubmissionError::NotFound)?;
    let bytes = storage.get(&key).await.map_err(SubmissionError::Storage)?;
    Ok((content_type, bytes))
}

pub async fn for_submission(
    connection: &mut AsyncPgConnection,
    submission_id: Uuid,
) -> Result<Vec<AttachmentInfo>, SubmissionError> {
    Ok(attachments::table
        .filter(attachments::submission_id.eq(submission_id))
        .order(attachments::created_at)
        .select((
            attachments::id,
            attachments::content_type,
            attachments::size_bytes,
            attachments::created_at,
        ))
        .load(connection)
        .await?)
}

/// Deletes the attachments of drafts that are going away (inside the caller's transaction) and
/// returns their storage keys, for the caller to delete once the transaction has committed.
pub async fn detach_from_drafts(
    connection: &mut AsyncPgConnection,
    draft_ids: &[Uuid],
) -> Result<Vec<String>, diesel::result::Error> {
    diesel::delete(
        attachments::table
            .filter(attachments::draft_id.eq_any(draft_ids))
            .filter(attachments::submission_id.is_null()),
    )
    .returning(attachments::storage_key)
    .get_results(connection)
    .await
}

/// What a sweep removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Swept {
    /// Uploads no application took within their time (a discarded correction, a lost draft).
    pub unbound: usize,
    /// Files without a row (a crash between writing the file and committing its row).
    pub orphaned_files: usize,
}

/// The worker's sweep: uploads never bound to an application and older than `unbound_ttl`, and
/// files older than `grace` that no row names.
pub async fn sweep(
    connection: &mut AsyncPgConnection,
    storage: &Storage,
    unbound_ttl: chrono::Duration,
    grace: std::time::Duration,
) -> Result<Swept, SubmissionError> {
    let keys: Vec<String> = diesel::delete(
        attachments::table
            .filter(attachments::submission_id.is_null())
            .filter(attachments::draft_id.is_null())
            .filter(attachments::created_at.lt(Utc::now() - unbound_ttl)),
    )
    .returning(attachments::storage_key)
    .get_results(connection)
    .await?;
    storage.delete_all(&keys).await;

    let candidates = storage
        .keys_older_than(grace)
        .await
        .map_err(SubmissionError::Storage)?;
    let mut orphaned = Vec::new();
    for batch in candidates.chunks(500) {
        let known: Vec<String> = attachments::table
            .filter(attachments::storage_key.eq_any(batch))
            .select(attachments::storage_key)
            .load(connection)
            .await?;
        orphaned.extend(batch.iter().filter(|key| !known.contains(key)).cloned());
    }
    storage.delete_all(&orphaned).await;
    Ok(Swept {
        unbound: keys.len(),
        orphaned_files: orphaned.len(),
    })
}
