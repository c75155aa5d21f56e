//! Drafts: partial answers saved on one device and resumed on another. A draft is checked only
//! for what is filled in, and expires after `submissions.draft_ttl_days`. My Numbers in drafts
//! are sealed to the draft, as in applications.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::attachments::{self, Storage};
use super::sealing::{self, Owner, Scope, Sealer};
use super::{Context, SubmissionError};
use crate::db::schema::drafts;
use crate::forms::Catalog;
use crate::forms::lint::city_today;
use crate::forms::validate::{self, CheckOptions};

/// The resident's unexpired draft `id`, as a filter.
macro_rules! mine {
    ($resident_id:expr, $id:expr) => {
        drafts::table
            .filter(drafts::id.eq($id))
            .filter(drafts::resident_id.eq($resident_id))
            .filter(drafts::expires_at.gt(Utc::now()))
    };
}

#[derive(Debug, Clone, Serialize, Queryable, ToSchema)]
pub struct Draft {
    pub id: Uuid,
    pub procedure_id: String,
    #[schema(value_type = Object)]
    pub data: Value,
    pub updated_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

fn check_partial(
    catalog: &Catalog,
    procedure_id: &str,
    data: &Value,
) -> Result<(), SubmissionError> {
    let procedure = catalog.get(procedure_id).ok_or(SubmissionError::NotFound)?;
    let options = CheckOptions {
        today: city_today(),
        partial: true,
    };
    validate::validate(&procedure.definition, data, options)
        .map(|_| ())
        .map_err(SubmissionError::Invalid)
}

/// Limits that keep one resident from filling the service's storage.
#[derive(Debug, Clone, Copy)]
pub struct DraftLimits {
    pub ttl_days: i64,
    /// Unexpired drafts one resident may keep at once.
    pub max_per_resident: i64,
}

/// Saves a new draft or replaces one (`id`), after checking what is filled in. The answers are
/// stored as the resident typed them, except My Numbers, which are sealed to the draft; they
/// come back masked, and a masked number sent back unchanged keeps the sealed one.
pub async fn save(
    connection: &mut AsyncPgConnection,
    context: &Context<'_>,
    limits: DraftLimits,
    resident_id: Uuid,
    id: Option<Uuid>,
    procedure_id: &str,
    data: &Value,
) -> Result<Draft, SubmissionError> {
    let (catalog, sealer) = (context.catalog, context.sealer);
    let procedure = catalog.get(procedure_id).ok_or(SubmissionError::NotFound)?;
    let expires_at = Utc::now() + Duration::days(limits.ttl_days);
    let columns = (
        drafts::id,
        drafts::procedure_id,
        drafts::data,
        drafts::updated_at,
        drafts::expires_at,
    );
    let fields = || {
        procedure
            .definition
            .pages
            .iter()
            .flat_map(|p| p.fields.iter())
    };
    let draft = match id {
        None => {
            let id = Uuid::now_v7();
            check_partial(catalog, procedure_id, data)?;
            let open: i64 = drafts::table
                .filter(drafts::resident_id.eq(resident_id))
                .filter(drafts::expires_at.gt(Utc::now()))
                .count()
                .get_result(connection)
                .await?;
            if open >= limits.max_per_resident {
                return Err(SubmissionError::DraftLimit);
            }
            let sealed = seal(sealer, fields(), data, procedure_id, id);
            diesel::insert_into(drafts::table)
                .values((
                    drafts::id.eq(id),
                    drafts::resident_id.eq(resident_id),
                    drafts::procedure_id.eq(procedure_id),
                    drafts::data.eq(&sealed),
                    drafts::expires_at.eq(expires_at),
                ))
                .returning(columns)
                .get_result::<Draft>(connection)
                .await?
        }
        Some(id) => {
            let stored: Value = mine!(resident_id, id)
                .filter(drafts::procedure_id.eq(procedure_id))
                .select(drafts::data)
                .for_update()
                .first(connection)
                .await
                .optional()?
                .ok_or(SubmissionError::NotFound)?;
            let scope = Scope {
                procedure_id,
                owner: Owner::Draft(id),
            };
            let data = sealing::restore_masked(sealer, data, &stored, &scope);
            check_partial(catalog, procedure_id, &data)?;
            let sealed = seal(sealer, fields(), &data, procedure_id, id);
            diesel::update(drafts::table.find(id))
                .set((
                    drafts::data.eq(&sealed),
                    drafts::updated_at.eq(Utc::now()),
                    drafts::expires_at.eq(expires_at),
                ))
                .returning(columns)
                .get_result::<Draft>(connection)
                .await?
        }
    };
    Ok(masked(sealer, draft))
}

fn seal<'a>(
    sealer: &Sealer,
    fields: impl Iterator<Item = &'a crate::forms::model::Field>,
    data: &Value,
    procedure_id: &str,
    id: Uuid,
) -> Value {
    let scope = Scope {
        procedure_id,
        owner: Owner::Draft(id),
    };
    match data {
        Value::Object(map) => Value::Object(sealing::seal_answers(sealer, fields, map, &scope)),
        other => other.clone(),
    }
}

/// The draft as the resident sees it: My Numbers masked.
fn masked(sealer: &Sealer, mut draft: Draft) -> Draft {
    let scope = Scope {
        procedure_id: &draft.procedure_id,
        owner: Owner::Draft(draft.id),
    };
    draft.data = sealing::mask_answers(sealer, &draft.data, &scope);
    draft
}

/// The answers of an application made from draft `id`, with the My Numbers the resident saw
/// masked put back from the draft. Answers without a draft, or a draft that is gone, are used
/// as sent.
pub async fn restore_for_submission(
    connection: &mut AsyncPgConnection,
    sealer: &Sealer,
    resident_id: Uuid,
    id: Uuid,
    procedure_id: &str,
    data: &Value,
) -> Result<Value, SubmissionError> {
    let stored: Option<Value> = mine!(resident_id, id)
        .filter(drafts::procedure_id.eq(procedure_id))
        .select(drafts::data)
        .first(connection)
        .await
        .optional()?;
    let scope = Scope {
        procedure_id,
        owner: Owner::Draft(id),
    };
    Ok(match stored {
        Some(stored) => sealing::restore_masked(sealer, data, &stored, &scope),
        None => data.clone(),
    })
}

pub async fn list(
    connection: &mut AsyncPgConnection,
    sealer: &Sealer,
    resident_id: Uuid,
) -> Result<Vec<Draft>, SubmissionError> {
    let rows: Vec<Draft> = drafts::table
        .filter(drafts::resident_id.eq(resident_id))
        .filter(drafts::expires_at.gt(Utc::now()))
        .order(drafts::updated_at.desc())
        .select((
            drafts::id,
            drafts::procedure_id,
            drafts::data,
            drafts::updated_at,
            drafts::expires_at,
        ))
        .load(connection)
        .await?;
    Ok(rows
        .into_iter()
        .map(|draft| masked(sealer, draft))
        .collect())
}

pub async fn get(
    connection: &mut AsyncPgConnection,
    sealer: &Sealer,
    resident_id: Uuid,
    id: Uuid,
) -> Result<Draft, SubmissionError> {
    let draft: Draft = mine!(resident_id, id)
        .select((
            drafts::id,
            drafts::procedure_id,
            drafts::data,
            drafts::updated_at,
            drafts::expires_at,
        ))
        .first(connection)
        .await
        .optional()?
        .ok_or(SubmissionError::NotFound)?;
    Ok(masked(sealer, draft))
}

/// Discards the resident's draft and the files uploaded to it.
pub async fn discard(
    connection: &mut AsyncPgConnection,
    storage: &Storage,
    resident_id: Uuid,
    id: Uuid,
) -> Result<(), SubmissionError> {
    let keys = connection
        .transaction::<_, SubmissionError, _>(|connection| {
            Box::pin(async move {
                drafts::table
                    .filter(drafts::id.eq(id))
                    .filter(drafts::resident_id.eq(resident_id))
                    .select(drafts::id)
                    .for_update()
                    .first::<Uuid>(connection)
                    .await
                    .optional()?
                    .ok_or(SubmissionError::NotFound)?;
                // Files first: deleting the draft would only unlink them.
                let keys = attachments::detach_from_drafts(connection, &[id]).await?;
                diesel::delete(drafts::table.find(id))
                    .execute(connection)
                    .await?;
                Ok(keys)
            })
        })
        .await?;
    storage.delete_all(&keys).await;
    Ok(())
}

/// Deletes expired drafts and the files uploaded to them. Returns how many drafts went.
pub async fn purge_expired(
    connection: &mut AsyncPgConnection,
    storage: &Storage,
) -> Result<usize, diesel::result::Error> {
    let (drafts, keys) = connection
        .transaction::<_, diesel::result::Error, _>(|connection| {
            Box::pin(async move {
                let expired: Vec<Uuid> = drafts::table
                    .filter(drafts::expires_at.lt(Utc::now()))
                    .select(drafts::id)
                    .for_update()
                    .skip_locked()
                    .load(connection)
                    .await?;
                let keys = attachments::detach_from_drafts(connection, &expired).await?;
                diesel::delete(drafts::table.filter(drafts::id.eq_any(&expired)))
                    .execute(connection)
                    .await?;
                Ok((expired.len(), keys))
            })
        })
        .await?;
    storage.delete_all(&keys).await;
    Ok(drafts)
}
