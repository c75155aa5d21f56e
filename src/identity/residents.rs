//! Resident accounts, keyed on (issuer, subject).

use chrono::{Duration, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use serde::Serialize;
use sha2::{Digest, Sha256};
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
            // The provider verified the address it vouches for.
            residents::email_confirmed.eq(identity.email.is_some()),
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
    /// Where notifications go, once confirmed; residents set it themselves.
    pub email: Option<String>,
    /// Whether `email` was confirmed (notices go only to a confirmed address).
    pub email_confirmed: bool,
    /// An address set but not yet confirmed through the link sent to it.
    pub pending_email: Option<String>,
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
            residents::email_confirmed,
            residents::pending_email,
            residents::language,
        ))
        .first(connection)
        .await
        .optional()?)
}

/// How long the link that confirms a new email address works.
pub const EMAIL_TOKEN_TTL_HOURS: i64 = 24;

/// Sets the language, and a new email address as pending: notices keep going to the confirmed
/// address (if any) until the new one is confirmed. Returns the confirmation token to send to
/// the new address (only its hash is stored).
pub async fn update_contact(
    connection: &mut AsyncPgConnection,
    id: Uuid,
    email: Option<&str>,
    language: Option<&str>,
) -> Result<Option<String>, AuthError> {
    if let Some(language) = language {
        diesel::update(residents::table.find(id))
            .set(residents::language.eq(language))
            .execute(connection)
            .await?;
    }
    let Some(email) = email else {
        return Ok(None);
    };
    let token = hex::encode(super::challenge::random_bytes(32));
    diesel::update(residents::table.find(id))
        .set((
            residents::pending_email.eq(email),
            residents::email_token_hash.eq(Sha256::digest(token.as_bytes()).to_vec()),
            residents::email_token_expires_at
                .eq(Utc::now() + Duration::hours(EMAIL_TOKEN_TTL_HOURS)),
        ))
        .execute(connection)
        .await?;
    Ok(Some(token))
}

/// [`update_contact`] and, for a new address, the email with its confirmation link, in one
/// transaction: the link is sent exactly when the address is recorded as pending.
pub async fn change_contact(
    connection: &mut AsyncPgConnection,
    id: Uuid,
    email: Option<&str>,
    language: Option<&str>,
    public_url: &str,
) -> Result<(), AuthError> {
    connection
        .transaction::<_, AuthError, _>(|connection| {
            Box::pin(async move {
                let token = update_contact(connection, id, email, language).await?;
                if let (Some(token), Some(address)) = (token, email) {
                    // In the language just chosen, else the one the resident has.
                    let language = match language {
                        Some(language) => language.to_owned(),
                        None => {
                            residents::table
                                .find(id)
                                .select(residents::language)
                                .first(connection)
                                .await?
                        }
                    };
                    let notice =
                        crate::notify::email_confirmation(address, &language, public_url, &token);
                    crate::notify::enqueue(connection, &[notice]).await?;
                }
                Ok(())
            })
        })
        .await
}

/// Confirms the pending address whose link carried `token`: it becomes the address notices go
/// to. `false` for an unknown, used or expired token.
pub async fn confirm_email(
    connection: &mut AsyncPgConnection,
    token: &str,
) -> Result<bool, AuthError> {
    let confirmed = diesel::update(
        residents::table
            .filter(residents::email_token_hash.eq(Sha256::digest(token.as_bytes()).to_vec()))
            .filter(residents::email_token_expires_at.gt(Utc::now()))
            .filter(residents::pending_email.is_not_null()),
    )
    .set((
        residents::email.eq(residents::pending_email),
        residents::email_confirmed.eq(true),
        residents::pending_email.eq(None::<String>),
        residents::email_token_hash.eq(None::<Vec<u8>>),
        residents::email_token_expires_at.eq(None::<chrono::DateTime<Utc>>),
    ))
    .execute(connection)
    .await?;
    Ok(confirmed == 1)
}
