//! Resident accounts, keyed on (issuer, subject).

use chrono::Utc;
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use uuid::Uuid;

use super::{AuthError, VerifiedIdentity};
use crate::db::schema::residents;

/// Finds or creates the account for a verified identity and records the login.
pub async fn sign_in(
    connection: &mut AsyncPgConnection,
    identity: &VerifiedIdentity,
) -> Result<Uuid, AuthError> {
    let id: Uuid = diesel::insert_into(residents::table)
        .values((
            residents::id.eq(Uuid::now_v7()),
            residents::provider.eq(identity.provider),
            residents::issuer.eq(&identity.issuer),
            residents::subject.eq(&identity.subject),
            residents::email.eq(&identity.email),
            residents::last_login_at.eq(Utc::now()),
        ))
        .on_conflict((residents::issuer, residents::subject))
        .do_update()
        // The email a provider vouched for is taken at the first login only; afterwards the
        // resident's own choice stands.
        .set(residents::last_login_at.eq(Utc::now()))
        .returning(residents::id)
        .get_result(connection)
        .await?;
    Ok(id)
}

#[derive(Debug, Clone, Serialize, Queryable, utoipa::ToSchema)]
pub struct Resident {
    pub id: Uuid,
    pub provider: String,
    /// Where notifications go; residents set it themselves.
    pub email: Option<String>,
    /// `ja` or `en`: the language of emails.
    pub language: String,
}

pub async fn find(
    connection: &mut AsyncPgConnection,
    id: Uuid,
) -> Result<Option<Resident>, AuthError> {
    Ok(residents::table
        .find(id)
        .select((
            residents::id,
            residents::provider,
            residents::email,
            residents::language,
        ))
        .first(connection)
        .await
        .optional()?)
}

pub async fn update_contact(
    connection: &mut AsyncPgConnection,
    id: Uuid,
    email: Option<&str>,
    language: Option<&str>,
) -> Result<(), AuthError> {
    if let Some(email) = email {
        diesel::update(residents::table.find(id))
            .set(residents::email.eq(email))
            .execute(connection)
            .await?;
    }
    if let Some(language) = language {
        diesel::update(residents::table.find(id))
            .set(residents::language.eq(language))
            .execute(connection)
            .await?;
    }
    Ok(())
}
