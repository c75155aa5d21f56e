//! A clerk's saved filters of a queue list: a name and the list's query string. Each statement
//! is keyed by the clerk's id as well, so one clerk's filters are never found by another (a
//! stranger's id is "not found"). The query string is stored as the edge wrote it; this module
//! only bounds its size and the number kept.

use diesel::prelude::*;
use diesel_async::scoped_futures::ScopedFutureExt;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use uuid::Uuid;

use super::QueueError;
use crate::db::schema::staff_saved_filters;
use crate::messages::Localized;

/// The most filters one clerk keeps per queue: the list stays one short menu.
pub const MAX_PER_QUEUE: i64 = 30;
pub const MAX_NAME_CHARS: usize = 60;
pub const MAX_QUERY_CHARS: usize = 2000;

#[derive(Debug, Clone, Serialize, Queryable)]
pub struct SavedFilter {
    pub id: Uuid,
    pub name: String,
    pub query: String,
}

fn name_of(name: &str) -> Result<String, QueueError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(QueueError::field(
            "/name",
            "required",
            Localized::new(
                "保存する条件の名前を入力してください。",
                "Enter a name for the filter.",
            ),
        ));
    }
    if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(QueueError::field(
            "/name",
            "invalid",
            Localized::new(
                "名前は改行を含まない60文字以内で入力してください。",
                "Give a name of at most 60 characters on one line.",
            ),
        ));
    }
    Ok(name.to_owned())
}

fn taken() -> QueueError {
    QueueError::field(
        "/name",
        "taken",
        Localized::new(
            "同じ名前の条件がすでにあります。別の名前にしてください。",
            "A filter of that name exists already; choose another name.",
        ),
    )
}

fn is_unique_violation(error: &diesel::result::Error) -> bool {
    matches!(
        error,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
    )
}

/// The clerk's filters of one queue, by name.
pub async fn list(
    connection: &mut AsyncPgConnection,
    staff_id: Uuid,
    queue_id: &str,
) -> Result<Vec<SavedFilter>, QueueError> {
    Ok(staff_saved_filters::table
        .filter(staff_saved_filters::staff_id.eq(staff_id))
        .filter(staff_saved_filters::queue_id.eq(queue_id))
        .order(staff_saved_filters::name.asc())
        .select((
            staff_saved_filters::id,
            staff_saved_filters::name,
            staff_saved_filters::query,
        ))
        .load(connection)
        .await?)
}

/// Saves `query` under `name`; a filter of the same name is replaced (saving again updates it).
pub async fn save(
    connection: &mut AsyncPgConnection,
    staff_id: Uuid,
    queue_id: &str,
    name: &str,
    query: &str,
) -> Result<Uuid, QueueError> {
    let name = name_of(name)?;
    if query.chars().count() > MAX_QUERY_CHARS {
        return Err(QueueError::field(
            "/name",
            "too_long",
            Localized::new(
                "この条件は長すぎて保存できません。",
                "These filters are too long to save.",
            ),
        ));
    }
    let queue_id = queue_id.to_owned();
    let query = query.to_owned();
    connection
        .transaction(|connection| {
            async move {
                // One save per clerk and queue at a time, whichever server takes it, so two saves
                // at once cannot both see room for one more.
                diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                    .bind::<diesel::sql_types::Text, _>(format!(
                        "saved-filters:{staff_id}:{queue_id}"
                    ))
                    .execute(connection)
                    .await?;
                insert_within_limit(connection, staff_id, &queue_id, &name, &query).await
            }
            .scope_boxed()
        })
        .await
}

/// Inserts or replaces the filter when the clerk keeps fewer than [`MAX_PER_QUEUE`] others; run
/// under the save's lock.
async fn insert_within_limit(
    connection: &mut AsyncPgConnection,
    staff_id: Uuid,
    queue_id: &str,
    name: &str,
    query: &str,
) -> Result<Uuid, QueueError> {
    let kept: i64 = staff_saved_filters::table
        .filter(staff_saved_filters::staff_id.eq(staff_id))
        .filter(staff_saved_filters::queue_id.eq(queue_id))
        .filter(staff_saved_filters::name.ne(name))
        .count()
        .get_result(connection)
        .await?;
    if kept >= MAX_PER_QUEUE {
        return Err(QueueError::field(
            "/name",
            "too_many",
            Localized::new(
                "保存できる条件は1つのキューにつき30件までです。不要なものを削除してください。",
                "At most 30 filters per queue; delete one you no longer need.",
            ),
        ));
    }
    Ok(diesel::insert_into(staff_saved_filters::table)
        .values((
            staff_saved_filters::id.eq(Uuid::now_v7()),
            staff_saved_filters::staff_id.eq(staff_id),
            staff_saved_filters::queue_id.eq(queue_id),
            staff_saved_filters::name.eq(name),
            staff_saved_filters::query.eq(query),
        ))
        .on_conflict((
            staff_saved_filters::staff_id,
            staff_saved_filters::queue_id,
            staff_saved_filters::name,
        ))
        .do_update()
        .set(staff_saved_filters::query.eq(query))
        .returning(staff_saved_filters::id)
        .get_result(connection)
        .await?)
}

/// Renames one of the clerk's own filters.
pub async fn rename(
    connection: &mut AsyncPgConnection,
    staff_id: Uuid,
    id: Uuid,
    name: &str,
) -> Result<(), QueueError> {
    let name = name_of(name)?;
    let changed = diesel::update(
        staff_saved_filters::table
            .filter(staff_saved_filters::id.eq(id))
            .filter(staff_saved_filters::staff_id.eq(staff_id)),
    )
    .set(staff_saved_filters::name.eq(&name))
    .execute(connection)
    .await;
    match changed {
        Ok(0) => Err(QueueError::NotFound),
        Ok(_) => Ok(()),
        Err(error) if is_unique_violation(&error) => Err(taken()),
        Err(error) => Err(error.into()),
    }
}

/// Deletes one of the clerk's own filters.
pub async fn delete(
    connection: &mut AsyncPgConnection,
    staff_id: Uuid,
    id: Uuid,
) -> Result<(), QueueError> {
    let deleted = diesel::delete(
        staff_saved_filters::table
            .filter(staff_saved_filters::id.eq(id))
            .filter(staff_saved_filters::staff_id.eq(staff_id)),
    )
    .execute(connection)
    .await?;
    if deleted == 0 {
        return Err(QueueError::NotFound);
    }
    Ok(())
}
