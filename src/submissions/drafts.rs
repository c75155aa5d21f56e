//! Drafts: partial answers saved on one device and resumed on another. A draft is checked only
//! for what is filled in, and expires after `submissions.draft_ttl_days`.

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::SubmissionError;
use crate::db::schema::drafts;
use crate::forms::Catalog;
use crate::forms::lint::city_today;
use crate::forms::validate::{self, CheckOptions};

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

/// Saves a new draft or replaces one (`id`), after checking what is filled in. The answers are
/// stored as the resident typed them, so resuming shows exactly their input.
pub async fn save(
    connection: &mut AsyncPgConnection,
    catalog: &Catalog,
    ttl_days: i64,
    resident_id: Uuid,
    id: Option<Uuid>,
    procedure_id: &str,
    data: &Value,
) -> Result<Draft, SubmissionError> {
    check_partial(catalog, procedure_id, data)?;
    let expires_at = Utc::now() + Duration::days(ttl_days);
    let columns = (
        drafts::id,
        drafts::procedure_id,
        drafts::data,
        drafts::updated_at,
        drafts::expires_at,
    );
    match id {
        None => Ok(diesel::insert_into(drafts::table)
            .values((
                drafts::id.eq(Uuid::now_v7()),
                drafts::resident_id.eq(resident_id),
                drafts::procedure_id.eq(procedure_id),
                drafts::data.eq(data),
                drafts::expires_at.eq(expires_at),
            ))
            .returning(columns)
            .get_result(connection)
            .await?),
        Some(id) => diesel::update(
            drafts::table
                .filter(drafts::id.eq(id))
                .filter(drafts::resident_id.eq(resident_id))
                .filter(drafts::procedure_id.eq(procedure_id))
                .filter(drafts::expires_at.gt(Utc::now())),
        )
        .set((
            drafts::data.eq(data),
            drafts::updated_at.eq(Utc::now()),
            drafts::expires_at.eq(expires_at),
        ))
        .returning(columns)
        .get_result(connection)
        .await
        .optional()?
        .ok_or(SubmissionError::NotFound),
    }
}

pub async fn list(
    connection: &mut AsyncPgConnection,
    resident_id: Uuid,
) -> Result<Vec<Draft>, SubmissionError> {
    Ok(drafts::table
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
        .await?)
}

pub async fn get(
    connection: &mut AsyncPgConnection,
    resident_id: Uuid,
    id: Uuid,
) -> Result<Draft, SubmissionError> {
    drafts::table
        .filter(drafts::id.eq(id))
        .filter(drafts::resident_id.eq(resident_id))
        .filter(drafts::expires_at.gt(Utc::now()))
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
        .ok_or(SubmissionError::NotFound)
}

pub async fn discard(
    connection: &mut AsyncPgConnection,
    resident_id: Uuid,
    id: Uuid,
) -> Result<(), SubmissionError> {
    let deleted = diesel::delete(
        drafts::table
            .filter(drafts::id.eq(id))
            .filter(drafts::resident_id.eq(resident_id)),
    )
    .execute(connection)
    .await?;
    if deleted == 0 {
        return Err(SubmissionError::NotFound);
    }
    Ok(())
}

/// Deletes expired drafts (their attachments stay until an application or a later clean-up
/// claims them). Returns how many went.
pub async fn purge_expired(
    connection: &mut AsyncPgConnection,
) -> Result<usize, diesel::result::Error> {
    diesel::delete(drafts::table.filter(drafts::expires_at.lt(Utc::now())))
        .execute(connection)
        .await
}
